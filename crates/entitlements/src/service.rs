//! The use cases: quota reservations, feature checks, plan administration, usage reports.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::{Date, OffsetDateTime};
use whatpro_iam::{PlatformScope, TenantScope};
use whatpro_kernel::{AccountId, Clock, UserId};

use crate::error::EntitlementError;
use crate::meter::{ActiveUsers, Meter, Metric, UsageDay, UsageTotals};
use crate::model::{
    EffectiveEntitlements, Feature, Overrides, Plan, PlanId, QuotaClaim, Reservation, Resource,
    UsageExcess,
};
use crate::ports::{EntitlementStore, ReserveOutcome, UsageStore};

/// How long an account's effective entitlements are reused by feature checks on this
/// instance (changes made here drop the copy at once).
pub const ENTITLEMENTS_CACHE_TTL: Duration = Duration::from_secs(2);

/// The longest range a usage report covers.
pub const MAX_USAGE_RANGE_DAYS: i64 = 366;

/// Plans, limits, features and reservations.
pub struct EntitlementsService {
    store: Arc<dyn EntitlementStore>,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<AccountId, (Instant, Arc<EffectiveEntitlements>)>>,
}

impl std::fmt::Debug for EntitlementsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntitlementsService")
            .finish_non_exhaustive()
    }
}

/// `YYYY-MM` of `at` (UTC): the period of monthly counters.
fn month_of(at: OffsetDateTime) -> String {
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

impl EntitlementsService {
    /// A service over `store`.
    pub fn new(store: Arc<dyn EntitlementStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The account's effective entitlements, from this instance's short-lived copy when fresh.
    ///
    /// # Errors
    /// `Unavailable` / `Internal` when the store fails (callers fail closed).
    pub async fn effective(
        &self,
        scope: &TenantScope,
    ) -> Result<Arc<EffectiveEntitlements>, EntitlementError> {
        let account = scope.account_id();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, value)) = cache.get(&account)
                && at.elapsed() < ENTITLEMENTS_CACHE_TTL
            {
                return Ok(Arc::clone(value));
            }
        }
        let stored = self.store.account(scope).await?;
        let value = Arc::new(EffectiveEntitlements::of(&stored));
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(account, (Instant::now(), Arc::clone(&value)));
        Ok(value)
    }

    fn forget(&self, account: AccountId) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.remove(&account);
    }

    /// Takes one slot of `resource` for the scope's account, or refuses with
    /// `QuotaExceeded { limit, used }`. Race-safe: concurrent callers never overshoot.
    ///
    /// # Errors
    /// `QuotaExceeded`; `Unavailable`/`Internal` (fail closed: nothing is created).
    pub async fn check_and_reserve(
        &self,
        scope: &TenantScope,
        resource: Resource,
    ) -> Result<Reservation, EntitlementError> {
        // The store reads the limit in the same statement that takes the slot: never a stale
        // copy, and one round trip.
        let period = self.period_of(resource);
        match self.store.reserve(scope, resource, &period).await? {
            ReserveOutcome::Granted { .. } => Ok(Reservation { resource, period }),
            ReserveOutcome::Exceeded { used, limit } => Err(EntitlementError::QuotaExceeded {
                resource,
                limit,
                used,
            }),
        }
    }

    /// The claim on one slot of `resource` that a create path hands to its store, which takes
    /// it inside the create's own transaction (see [`QuotaClaim`]), with the account's
    /// current limit (from the cache of [`effective`](Self::effective): a request that passed
    /// the gate has read it already).
    ///
    /// # Errors
    /// `Unavailable`/`Internal` (fail closed: nothing is created).
    pub async fn claim(
        &self,
        scope: &TenantScope,
        resource: Resource,
    ) -> Result<QuotaClaim, EntitlementError> {
        let limit = self.effective(scope).await?.limit(resource);
        Ok(QuotaClaim {
            resource,
            period: self.period_of(resource),
            limit,
        })
    }

    /// The counter period of `resource` now (`""` unless it is counted per month).
    fn period_of(&self, resource: Resource) -> String {
        if resource.is_monthly() {
            month_of(self.clock.now())
        } else {
            String::new()
        }
    }

    /// Gives a reserved slot back (the create failed, or the object was deleted).
    ///
    /// # Errors
    /// `Unavailable`/`Internal`.
    pub async fn release(
        &self,
        scope: &TenantScope,
        reservation: Reservation,
    ) -> Result<(), EntitlementError> {
        self.store
            .release(scope, reservation.resource, &reservation.period)
            .await?;
        Ok(())
    }

    /// Fails unless the account's plan includes `feature`. Any error fails closed.
    ///
    /// # Errors
    /// `FeatureDisabled`; `Unavailable`/`Internal`.
    pub async fn require_feature(
        &self,
        scope: &TenantScope,
        feature: Feature,
    ) -> Result<(), EntitlementError> {
        self.require_features(scope, &[feature]).await
    }

    /// Fails unless the plan includes every one of `features` (the entitlements are read
    /// once; nothing is read when the list is empty). Any error fails closed.
    ///
    /// # Errors
    /// `FeatureDisabled` (the first missing one); `Unavailable`/`Internal`.
    pub async fn require_features(
        &self,
        scope: &TenantScope,
        features: &[Feature],
    ) -> Result<(), EntitlementError> {
        if features.is_empty() {
            return Ok(());
        }
        let effective = self.effective(scope).await?;
        match features.iter().find(|f| !effective.has(**f)) {
            Some(missing) => Err(EntitlementError::FeatureDisabled(*missing)),
            None => Ok(()),
        }
    }

    /// Limits, features and current usage of the scope's account.
    ///
    /// # Errors
    /// `Unavailable`/`Internal`.
    pub async fn overview(
        &self,
        scope: &TenantScope,
    ) -> Result<(EffectiveEntitlements, BTreeMap<Resource, i64>), EntitlementError> {
        let stored = self.store.account(scope).await?;
        let usage = self.store.usage(scope, &month_of(self.clock.now())).await?;
        Ok((EffectiveEntitlements::of(&stored), usage))
    }

    /// Every plan, cheapest first.
    ///
    /// # Errors
    /// `Unavailable`/`Internal`.
    pub async fn plans(&self) -> Result<Vec<Plan>, EntitlementError> {
        Ok(self.store.list_plans().await?)
    }

    /// One plan.
    ///
    /// # Errors
    /// `PlanNotFound`; `Unavailable`/`Internal`.
    pub async fn plan(&self, id: &PlanId) -> Result<Plan, EntitlementError> {
        self.store
            .plan(id)
            .await?
            .ok_or_else(|| EntitlementError::PlanNotFound(id.to_string()))
    }

    /// Creates or replaces a plan (super_admin); `true` when created.
    ///
    /// # Errors
    /// `Invalid`; `Unavailable`/`Internal`.
    pub async fn save_plan(
        &self,
        scope: &PlatformScope,
        plan: &Plan,
    ) -> Result<bool, EntitlementError> {
        plan.validate().map_err(EntitlementError::Invalid)?;
        let created = self.store.save_plan(scope, plan).await?;
        // Every account on this plan may change: drop every cached copy on this instance.
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(created)
    }

    /// The overrides stored for the scope's account.
    ///
    /// # Errors
    /// `Unavailable`/`Internal`.
    pub async fn stored_overrides(
        &self,
        scope: &TenantScope,
    ) -> Result<Overrides, EntitlementError> {
        Ok(self.store.account(scope).await?.overrides)
    }

    /// Sets an account's plan and/or overrides (super_admin through `PlatformScope::tenant`,
    /// or billing).
    ///
    /// # Errors
    /// `PlanNotFound`, `AccountNotFound`, `Invalid`; `Unavailable`/`Internal`.
    pub async fn set_account(
        &self,
        scope: &TenantScope,
        plan: Option<PlanId>,
        overrides: Option<Overrides>,
    ) -> Result<EffectiveEntitlements, EntitlementError> {
        if let Some(o) = &overrides {
            for (resource, value) in &o.limits {
                if let Some(v) = value
                    && *v < 0
                {
                    return Err(EntitlementError::Invalid(format!(
                        "limits.{} must be null or >= 0",
                        resource.limit_key()
                    )));
                }
            }
        }
        let stored = self.store.set_account(scope, plan, overrides).await?;
        self.forget(scope.account_id());
        Ok(EffectiveEntitlements::of(&stored))
    }

    /// The resources whose current usage exceeds what `plan` (with the account's overrides)
    /// allows; empty when the account fits.
    ///
    /// # Errors
    /// `Unavailable`/`Internal`.
    pub async fn usage_excess(
        &self,
        scope: &TenantScope,
        plan: &Plan,
    ) -> Result<Vec<UsageExcess>, EntitlementError> {
        let mut stored = self.store.account(scope).await?;
        stored.plan = plan.clone();
        let target = EffectiveEntitlements::of(&stored);
        let usage = self.store.usage(scope, &month_of(self.clock.now())).await?;
        Ok(Resource::ALL
            .into_iter()
            // Inboxes over the limit are flagged, not refused; monthly counters restart.
            .filter(|r| !matches!(r, Resource::Inboxes) && !r.is_monthly())
            .filter_map(|resource| {
                let limit = target.limit(resource)?;
                let used = usage.get(&resource).copied().unwrap_or(0);
                (used > limit).then_some(UsageExcess {
                    resource,
                    limit,
                    used,
                })
            })
            .collect())
    }
}

/// Records usage in memory and writes it in batches.
pub struct MeteringService {
    meter: Meter,
    store: Arc<dyn UsageStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MeteringService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteringService").finish_non_exhaustive()
    }
}

impl MeteringService {
    /// A service writing to `store`.
    pub fn new(store: Arc<dyn UsageStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            meter: Meter::new(),
            store,
            clock,
        }
    }

    /// Counts `n` of `metric` for `account`, now (in memory only).
    pub fn record(&self, account: AccountId, metric: Metric, n: i64) {
        self.meter.record(account, metric, n, self.clock.now());
    }

    /// Counts one API call by `user` (when a user acts) in `account`, now.
    pub fn record_call(&self, account: AccountId, user: Option<UserId>) {
        let now = self.clock.now();
        self.meter.record(account, Metric::ApiCalls, 1, now);
        if let Some(user) = user {
            self.meter.record_active(account, user, now);
        }
    }

    /// Writes what was gathered since the last flush; on failure keeps it for the next one.
    /// Returns how many counters were written.
    ///
    /// # Errors
    /// `Unavailable`/`Internal` (nothing is lost).
    pub async fn flush(&self) -> Result<usize, EntitlementError> {
        let batch = self.meter.take();
        if batch.is_empty() {
            return Ok(0);
        }
        let written = batch.counts.len() + batch.active.len();
        if let Err(e) = self.store.flush(&batch).await {
            self.meter.restore(batch);
            return Err(e.into());
        }
        Ok(written)
    }

    fn check_range(from: Date, to: Date) -> Result<(), EntitlementError> {
        if from > to {
            return Err(EntitlementError::Invalid(
                "from must not be after to".to_owned(),
            ));
        }
        if (to - from).whole_days() >= MAX_USAGE_RANGE_DAYS {
            return Err(EntitlementError::Invalid(format!(
                "a usage range covers at most {MAX_USAGE_RANGE_DAYS} days"
            )));
        }
        Ok(())
    }

    /// Daily usage of the scope's account for `from..=to`.
    ///
    /// # Errors
    /// `Invalid` (range), `Unavailable`/`Internal`.
    pub async fn daily(
        &self,
        scope: &TenantScope,
        from: Date,
        to: Date,
    ) -> Result<Vec<UsageDay>, EntitlementError> {
        Self::check_range(from, to)?;
        Ok(self.store.daily(scope, from, to).await?)
    }

    /// DAU / WAU / MAU of the scope's account.
    ///
    /// # Errors
    /// `Unavailable`/`Internal`.
    pub async fn active_users(&self, scope: &TenantScope) -> Result<ActiveUsers, EntitlementError> {
        Ok(self.store.active_users(scope).await?)
    }

    /// Sets the account's IANA time zone (e.g. `America/Sao_Paulo`) for day boundaries of
    /// usage from now on (days already counted keep their dates).
    ///
    /// # Errors
    /// `Invalid` (unknown zone), `Unavailable`/`Internal`.
    pub async fn set_time_zone(
        &self,
        scope: &TenantScope,
        time_zone: &str,
    ) -> Result<(), EntitlementError> {
        let plausible = !time_zone.is_empty()
            && time_zone.len() <= 64
            && time_zone
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b));
        if plausible && self.store.set_time_zone(scope, time_zone).await? {
            Ok(())
        } else {
            Err(EntitlementError::Invalid(format!(
                "time_zone `{time_zone}` is not an IANA time zone such as America/Sao_Paulo"
            )))
        }
    }

    /// Totals across accounts (super_admin).
    ///
    /// # Errors
    /// `Invalid` (range), `Unavailable`/`Internal`.
    pub async fn totals(
        &self,
        scope: &PlatformScope,
        from: Date,
        to: Date,
    ) -> Result<UsageTotals, EntitlementError> {
        Self::check_range(from, to)?;
        Ok(self.store.totals(scope, from, to).await?)
    }

    /// Today's UTC date by this service's clock (default report range end).
    pub fn today(&self) -> Date {
        self.clock.now().date()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use mockall::predicate::eq;
    use time::macros::datetime;
    use whatpro_iam::{Role, StoreError};
    use whatpro_kernel::FixedClock;

    use super::*;
    use crate::meter::MeterSnapshot;
    use crate::model::AccountEntitlements;
    use crate::ports::{MockEntitlementStore, MockUsageStore};

    fn scope() -> TenantScope {
        TenantScope::for_tests(AccountId::new(1), UserId::new(5), Role::Admin)
    }

    fn clock() -> Arc<dyn Clock> {
        Arc::new(FixedClock::new(datetime!(2026-11-30 12:00:00 UTC)))
    }

    fn starter(max_providers: Option<i64>, providers_feature: bool) -> AccountEntitlements {
        AccountEntitlements {
            account_id: AccountId::new(1),
            plan: Plan {
                id: "starter".parse().unwrap(),
                name: "Starter".to_owned(),
                price_cents: 9900,
                limits: [(Resource::Providers, max_providers)].into(),
                features: [(Feature::Providers, providers_feature)].into(),
            },
            overrides: Overrides::default(),
        }
    }

    #[tokio::test]
    async fn a_reservation_over_the_limit_reports_limit_and_usage() {
        let mut store = MockEntitlementStore::new();
        store.expect_account().never();
        store
            .expect_reserve()
            .with(always(), eq(Resource::Providers), eq(""))
            .returning(|_, _, _| Ok(ReserveOutcome::Exceeded { used: 2, limit: 2 }));
        let service = EntitlementsService::new(Arc::new(store), clock());
        let err = service
            .check_and_reserve(&scope(), Resource::Providers)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            EntitlementError::QuotaExceeded {
                resource: Resource::Providers,
                limit: 2,
                used: 2
            }
        );
    }

    fn always<T>() -> impl mockall::Predicate<T> {
        mockall::predicate::always()
    }

    #[tokio::test]
    async fn monthly_resources_reserve_in_the_current_utc_month() {
        let mut store = MockEntitlementStore::new();
        store
            .expect_reserve()
            .with(always(), eq(Resource::MessagesPerMonth), eq("2026-11"))
            .returning(|_, _, _| Ok(ReserveOutcome::Granted { used: 1 }));
        let service = EntitlementsService::new(Arc::new(store), clock());
        let reservation = service
            .check_and_reserve(&scope(), Resource::MessagesPerMonth)
            .await
            .unwrap();
        assert_eq!(reservation.period, "2026-11");
    }

    #[tokio::test]
    async fn claims_carry_the_accounts_limit_and_the_counter_period() {
        let mut store = MockEntitlementStore::new();
        // One read of the account serves both claims; no slot is taken here (the store of
        // the create path takes it in its own transaction).
        store
            .expect_account()
            .times(1)
            .returning(|_| Ok(starter(Some(3), true)));
        store.expect_reserve().never();
        let service = EntitlementsService::new(Arc::new(store), clock());
        let providers = service.claim(&scope(), Resource::Providers).await.unwrap();
        assert_eq!(
            providers,
            QuotaClaim {
                resource: Resource::Providers,
                period: String::new(),
                limit: Some(3),
            }
        );
        let messages = service
            .claim(&scope(), Resource::MessagesPerMonth)
            .await
            .unwrap();
        assert_eq!(messages.period, "2026-11");
        assert_eq!(
            messages.limit, None,
            "a limit the plan does not set is unlimited"
        );
        assert_eq!(
            providers.exceeded(3, 3),
            EntitlementError::QuotaExceeded {
                resource: Resource::Providers,
                limit: 3,
                used: 3,
            }
        );
    }

    /// A service whose store cannot be reached.
    fn over_a_failing_store() -> EntitlementsService {
        let mut store = MockEntitlementStore::new();
        store
            .expect_account()
            .returning(|_| Err(StoreError::Unavailable("down".to_owned())));
        EntitlementsService::new(Arc::new(store), clock())
    }

    #[tokio::test]
    async fn claims_fail_closed_when_the_store_fails() {
        let service = over_a_failing_store();
        let err = service
            .claim(&scope(), Resource::Instances)
            .await
            .unwrap_err();
        assert!(matches!(err, EntitlementError::Unavailable(_)));
    }

    #[tokio::test]
    async fn overrides_beat_the_plan() {
        let mut account = starter(Some(1), false);
        account.overrides.limits.insert(Resource::Providers, None);
        account.overrides.features.insert(Feature::Providers, true);
        let effective = EffectiveEntitlements::of(&account);
        assert_eq!(effective.limit(Resource::Providers), None);
        assert!(effective.has(Feature::Providers));
        assert!(!effective.has(Feature::Kanban), "missing features are off");
    }

    #[tokio::test]
    async fn a_disabled_feature_is_refused() {
        let mut store = MockEntitlementStore::new();
        store
            .expect_account()
            .returning(|_| Ok(starter(None, false)));
        let service = EntitlementsService::new(Arc::new(store), clock());
        assert_eq!(
            service.require_feature(&scope(), Feature::Providers).await,
            Err(EntitlementError::FeatureDisabled(Feature::Providers))
        );
    }

    #[tokio::test]
    async fn feature_checks_fail_closed_when_the_store_fails() {
        let service = over_a_failing_store();
        let err = service
            .require_feature(&scope(), Feature::Providers)
            .await
            .unwrap_err();
        assert!(matches!(err, EntitlementError::Unavailable(_)));
    }

    #[tokio::test]
    async fn feature_checks_reuse_a_fresh_copy() {
        let mut store = MockEntitlementStore::new();
        store
            .expect_account()
            .times(1)
            .returning(|_| Ok(starter(None, true)));
        let service = EntitlementsService::new(Arc::new(store), clock());
        for _ in 0..3 {
            service
                .require_feature(&scope(), Feature::Providers)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_downgrade_check_lists_resources_over_the_new_limits() {
        let mut store = MockEntitlementStore::new();
        store
            .expect_account()
            .returning(|_| Ok(starter(None, true)));
        store.expect_usage().returning(|_, _| {
            Ok([
                (Resource::Providers, 3),
                (Resource::Inboxes, 50),
                (Resource::MessagesPerMonth, 9999),
            ]
            .into())
        });
        let service = EntitlementsService::new(Arc::new(store), clock());
        let small = starter(Some(1), true).plan;
        let mut small = small;
        small.limits.insert(Resource::Inboxes, Some(1));
        small.limits.insert(Resource::MessagesPerMonth, Some(10));
        let excess = service.usage_excess(&scope(), &small).await.unwrap();
        assert_eq!(
            excess,
            vec![UsageExcess {
                resource: Resource::Providers,
                limit: 1,
                used: 3
            }]
        );
    }

    #[tokio::test]
    async fn a_failed_flush_keeps_the_counters_for_the_next_one() {
        let mut store = MockUsageStore::new();
        let mut seq = mockall::Sequence::new();
        store
            .expect_flush()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Err(StoreError::Unavailable("down".to_owned())));
        store
            .expect_flush()
            .times(1)
            .in_sequence(&mut seq)
            .withf(|batch: &MeterSnapshot| batch.counts.values().sum::<i64>() == 3)
            .returning(|_| Ok(()));
        let service = MeteringService::new(Arc::new(store), clock());
        service.record_call(AccountId::new(1), Some(UserId::new(5)));
        service.record(AccountId::new(1), Metric::WebhooksProcessed, 1);
        assert!(service.flush().await.is_err());
        service.record_call(AccountId::new(1), None);
        assert_eq!(
            service.flush().await.unwrap(),
            3,
            "2 counters + 1 active user"
        );
        assert_eq!(service.flush().await.unwrap(), 0, "nothing left");
    }

    #[tokio::test]
    async fn usage_ranges_are_validated() {
        let service = MeteringService::new(Arc::new(MockUsageStore::new()), clock());
        let from = time::macros::date!(2026 - 11 - 30);
        let to = time::macros::date!(2026 - 11 - 01);
        assert!(matches!(
            service.daily(&scope(), from, to).await,
            Err(EntitlementError::Invalid(_))
        ));
        let far = time::macros::date!(2024 - 01 - 01);
        assert!(matches!(
            service.daily(&scope(), far, from).await,
            Err(EntitlementError::Invalid(_))
        ));
    }
}
