//! The billing use cases: subscribe, change plan, cancel, webhook events, time-driven sweeps
//! and the request gate that enforces `restricted` and `canceled`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use whatpro_entitlements::{EntitlementsService, PlanId};
use whatpro_iam::{PlatformScope, TenantScope};
use whatpro_kernel::{AccountId, Clock};

use crate::error::BillingError;
use crate::model::{
    BillingAccount, BillingStatus, BillingType, CustomerInfo, EventOutcome, GatewayEvent,
    NewSubscription, PaymentView, StatusChange,
};
use crate::ports::{BillingStore, PaymentGateway, SaveError};
use crate::rules::{apply_payment, apply_subscription, sweep};

/// Tunables of billing.
#[derive(Debug, Clone)]
pub struct BillingSettings {
    /// Days from `past_due` to `restricted` (`HUB_BILLING_GRACE_DAYS`).
    pub grace_days: u32,
    /// How long the request gate reuses an account's status on this instance.
    pub gate_ttl: Duration,
    /// How many recent payments `GET .../billing` shows.
    pub recent_payments: i64,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            grace_days: 7,
            gate_ttl: Duration::from_secs(1),
            recent_payments: 10,
        }
    }
}

/// What a request is, for the billing gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The request changes something (not GET/HEAD).
    pub write: bool,
    /// The request is a billing route (always allowed, so the account can pay).
    pub billing: bool,
}

/// Billing of accounts.
pub struct BillingService {
    store: Arc<dyn BillingStore>,
    gateway: Option<Arc<dyn PaymentGateway>>,
    entitlements: Arc<EntitlementsService>,
    clock: Arc<dyn Clock>,
    settings: BillingSettings,
    gate_cache: Mutex<HashMap<AccountId, (Instant, BillingStatus)>>,
}

impl std::fmt::Debug for BillingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillingService")
            .field("gateway", &self.gateway.is_some())
            .finish_non_exhaustive()
    }
}

/// What processing one stored gateway event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedEvent {
    /// The gateway's event id.
    pub event_id: String,
    /// The outcome stored with it.
    pub outcome: EventOutcome,
    /// The account it was applied to, if any.
    pub account: Option<AccountId>,
}

/// Attempts of a read-modify-save before giving up with `Conflict`.
const SAVE_ATTEMPTS: usize = 5;

impl BillingService {
    /// A service; `gateway` is `None` when billing is not configured.
    pub fn new(
        store: Arc<dyn BillingStore>,
        gateway: Option<Arc<dyn PaymentGateway>>,
        entitlements: Arc<EntitlementsService>,
        clock: Arc<dyn Clock>,
        settings: BillingSettings,
    ) -> Self {
        Self {
            store,
            gateway,
            entitlements,
            clock,
            settings,
            gate_cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a gateway is configured.
    pub fn configured(&self) -> bool {
        self.gateway.is_some()
    }

    fn gateway(&self) -> Result<&Arc<dyn PaymentGateway>, BillingError> {
        self.gateway.as_ref().ok_or(BillingError::NotConfigured)
    }

    fn forget(&self, account: AccountId) {
        self.gate_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&account);
    }

    async fn save(
        &self,
        scope: &TenantScope,
        record: &BillingAccount,
        changes: Vec<StatusChange>,
        request_id: Option<String>,
    ) -> Result<BillingAccount, BillingError> {
        for change in &changes {
            tracing::info!(
                account_id = scope.account_id().get(),
                from = change.from.as_str(),
                to = change.to.as_str(),
                reason = %change.reason,
                "billing status changed"
            );
        }
        let saved = self
            .store
            .save(scope, record, changes, request_id)
            .await
            .map_err(|e| match e {
                SaveError::Stale => BillingError::Conflict,
                SaveError::Store(s) => s.into(),
            })?;
        self.forget(scope.account_id());
        Ok(saved)
    }

    /// The account's billing record and its recent payments.
    ///
    /// # Errors
    /// `Unavailable`/`Internal`.
    pub async fn overview(
        &self,
        scope: &TenantScope,
    ) -> Result<(BillingAccount, Vec<PaymentView>), BillingError> {
        let record = self.store.load(scope).await?;
        let payments = self
            .store
            .recent_payments(scope, self.settings.recent_payments)
            .await?;
        Ok((record, payments))
    }

    /// Subscribes the scope's account to a paid plan: creates or reuses the gateway customer,
    /// creates the subscription, moves to `pending` and applies the plan's entitlements.
    /// Repeating the call for the plan already subscribed answers the current record
    /// (`false`: nothing created).
    ///
    /// # Errors
    /// `NotConfigured`, `PlanNotFound`, `PlanNotBillable`, `AlreadySubscribed` (another plan),
    /// `UsageExceedsPlan`, gateway errors (the account keeps its state).
    pub async fn subscribe(
        &self,
        scope: &TenantScope,
        plan_id: &PlanId,
        billing_type: BillingType,
        customer: &CustomerInfo,
        request_id: Option<String>,
    ) -> Result<(BillingAccount, bool), BillingError> {
        let gateway = self.gateway()?;
        let plan = self.entitlements.plan(plan_id).await?;
        if plan.price_cents == 0 {
            return Err(BillingError::PlanNotBillable(plan.id.to_string()));
        }
        let record = self.store.load(scope).await?;
        if record.status.has_live_subscription() {
            return if record.plan_id.as_ref() == Some(plan_id) {
                Ok((record, false))
            } else {
                Err(BillingError::AlreadySubscribed)
            };
        }
        self.refuse_excess(scope, &plan).await?;
        let account = scope.account_id();
        let customer_id = gateway.ensure_customer(account, customer).await?;
        let today = self.clock.now().date();
        let subscription = gateway
            .create_subscription(&NewSubscription {
                customer_id: customer_id.clone(),
                billing_type,
                value_cents: plan.price_cents,
                next_due_date: today,
                description: format!("WhatPro Hub - plan {}", plan.name),
                external_reference: format!("whatpro-account-{account}"),
            })
            .await?;
        let mut next = record.clone();
        next.plan_id = Some(plan.id.clone());
        next.pending_plan_id = None;
        next.customer_id = Some(customer_id);
        next.subscription_id = Some(subscription.id.clone());
        next.next_due_date = subscription.next_due_date.or(Some(today));
        next.cancel_at_period_end = false;
        next.past_due_since = None;
        next.last_paid_due_date = None;
        next.status = BillingStatus::Pending;
        let change = StatusChange {
            from: record.status,
            to: BillingStatus::Pending,
            reason: format!("subscribed to plan {}", plan.id),
        };
        let saved = match self.save(scope, &next, vec![change], request_id).await {
            Ok(saved) => saved,
            Err(e) => {
                // Do not leave a subscription at the gateway that the Hub does not know.
                if let Err(undo) = gateway.cancel_subscription(&subscription.id).await {
                    tracing::error!(error = %undo, subscription = %subscription.id, "could not undo a subscription after a failed save");
                }
                return Err(e);
            }
        };
        self.entitlements
            .set_account(scope, Some(plan.id), None)
            .await?;
        Ok((saved, true))
    }

    async fn refuse_excess(
        &self,
        scope: &TenantScope,
        plan: &whatpro_entitlements::Plan,
    ) -> Result<(), BillingError> {
        let excess = self.entitlements.usage_excess(scope, plan).await?;
        if excess.is_empty() {
            return Ok(());
        }
        Err(BillingError::UsageExceedsPlan {
            plan: plan.id.to_string(),
            excess: excess
                .iter()
                .map(|e| (e.resource.limit_key(), e.limit, e.used))
                .collect(),
        })
    }

    /// Changes the plan: a plan at the same or a higher price applies now (pending payments
    /// are re-priced); a cheaper one applies at the end of the paid period, and is refused
    /// while current usage exceeds its limits.
    ///
    /// # Errors
    /// `NotConfigured`, `NotSubscribed`, `PlanNotFound`, `PlanNotBillable`,
    /// `UsageExceedsPlan`, gateway errors.
    pub async fn change_plan(
        &self,
        scope: &TenantScope,
        plan_id: &PlanId,
        request_id: Option<String>,
    ) -> Result<BillingAccount, BillingError> {
        let gateway = self.gateway()?;
        let target = self.entitlements.plan(plan_id).await?;
        if target.price_cents == 0 {
            return Err(BillingError::PlanNotBillable(target.id.to_string()));
        }
        let record = self.store.load(scope).await?;
        let (Some(subscription), true) = (
            record.subscription_id.clone(),
            record.status.has_live_subscription(),
        ) else {
            return Err(BillingError::NotSubscribed);
        };
        if record.plan_id.as_ref() == Some(plan_id) && record.pending_plan_id.is_none() {
            return Ok(record);
        }
        let current_price = match &record.plan_id {
            Some(id) => self.entitlements.plan(id).await?.price_cents,
            None => 0,
        };
        if target.price_cents >= current_price || record.plan_id.as_ref() == Some(plan_id) {
            gateway
                .change_subscription_value(&subscription, target.price_cents, true)
                .await?;
            let saved = self
                .update_for(scope, request_id, |r| {
                    r.plan_id = Some(target.id.clone());
                    r.pending_plan_id = None;
                    Vec::new()
                })
                .await?;
            self.entitlements
                .set_account(scope, Some(target.id), None)
                .await?;
            Ok(saved)
        } else {
            self.refuse_excess(scope, &target).await?;
            gateway
                .change_subscription_value(&subscription, target.price_cents, false)
                .await?;
            self.update_for(scope, request_id, |r| {
                r.pending_plan_id = Some(target.id.clone());
                Vec::new()
            })
            .await
        }
    }

    /// Asks for cancellation: the subscription ends at the end of the paid period (the
    /// status stays until then). Repeating it changes nothing.
    ///
    /// # Errors
    /// `NotConfigured`, `NotSubscribed`.
    pub async fn cancel(
        &self,
        scope: &TenantScope,
        request_id: Option<String>,
    ) -> Result<BillingAccount, BillingError> {
        self.gateway()?;
        let record = self.store.load(scope).await?;
        if !record.status.has_live_subscription() {
            return Err(BillingError::NotSubscribed);
        }
        if record.cancel_at_period_end {
            return Ok(record);
        }
        self.update_for(scope, request_id, |r| {
            if r.status.has_live_subscription() {
                r.cancel_at_period_end = true;
                r.pending_plan_id = None;
            }
            Vec::new()
        })
        .await
    }

    /// Stores a received gateway event; `false` when it was a repeat.
    ///
    /// # Errors
    /// `Unavailable`/`Internal` (the sender must retry).
    pub async fn receive_event(
        &self,
        scope: &PlatformScope,
        event: &GatewayEvent,
        body: &[u8],
    ) -> Result<bool, BillingError> {
        Ok(self.store.store_event(scope, event, body).await?)
    }

    /// Processes the oldest stored event, if any, and says what it did (`None`: nothing was
    /// waiting). A failure leaves the event for a retry after its lease.
    ///
    /// # Errors
    /// Store failures; gateway failures (the event is retried later).
    pub async fn process_next_event(
        &self,
        scope: &PlatformScope,
    ) -> Result<Option<ProcessedEvent>, BillingError> {
        let Some(event) = self.store.claim_event(scope, 60).await? else {
            return Ok(None);
        };
        match self.process(scope, &event).await {
            Ok((outcome, account)) => {
                self.store
                    .finish_event(scope, &event.id, Some(outcome.clone()), None)
                    .await?;
                Ok(Some(ProcessedEvent {
                    event_id: event.id,
                    outcome,
                    account,
                }))
            }
            Err(e) => {
                self.store
                    .finish_event(scope, &event.id, None, Some(e.to_string()))
                    .await?;
                Err(e)
            }
        }
    }

    async fn process(
        &self,
        platform: &PlatformScope,
        event: &GatewayEvent,
    ) -> Result<(EventOutcome, Option<AccountId>), BillingError> {
        let gateway = self.gateway()?;
        let now = self.clock.now();
        if event.event.starts_with("PAYMENT_") {
            let Some(payment_id) = &event.payment_id else {
                return Ok((EventOutcome::Unknown, None));
            };
            // Never trust the event body: re-read the payment.
            let Some(payment) = gateway.payment(payment_id).await? else {
                return Ok((EventOutcome::Unknown, None));
            };
            let Some(subscription) = payment
                .subscription_id
                .clone()
                .or_else(|| event.subscription_id.clone())
            else {
                return Ok((EventOutcome::Unknown, None));
            };
            let Some(account) = self
                .store
                .account_of_subscription(platform, &subscription)
                .await?
            else {
                return Ok((EventOutcome::Unknown, None));
            };
            let scope = platform.tenant(account);
            self.store.record_payment(&scope, &payment).await?;
            self.update(&scope, |record| {
                if record.subscription_id.as_deref() != Some(subscription.as_str()) {
                    return Vec::new();
                }
                apply_payment(record, &payment, now, self.settings.grace_days)
            })
            .await?;
            Ok((EventOutcome::Applied, Some(account)))
        } else if event.event.starts_with("SUBSCRIPTION_") {
            let Some(subscription_id) = &event.subscription_id else {
                return Ok((EventOutcome::Unknown, None));
            };
            let Some(account) = self
                .store
                .account_of_subscription(platform, subscription_id)
                .await?
            else {
                return Ok((EventOutcome::Unknown, None));
            };
            let current = gateway.subscription(subscription_id).await?;
            let scope = platform.tenant(account);
            self.update(&scope, |record| {
                if record.subscription_id.as_deref() != Some(subscription_id.as_str()) {
                    return Vec::new();
                }
                apply_subscription(record, current.as_ref())
            })
            .await?;
            Ok((EventOutcome::Applied, Some(account)))
        } else {
            Ok((EventOutcome::Ignored, None))
        }
    }

    /// Load, apply `f`, save (retrying when another writer got there first).
    async fn update<F>(&self, scope: &TenantScope, f: F) -> Result<BillingAccount, BillingError>
    where
        F: Fn(&mut BillingAccount) -> Vec<StatusChange>,
    {
        self.update_for(scope, None, f).await
    }

    /// [`Self::update`] for a request (its id goes into the audit rows). The change is
    /// re-applied to a fresh copy when a webhook or a sweep saved the record in between, so a
    /// user's action never fails because the gateway's events arrived meanwhile.
    async fn update_for<F>(
        &self,
        scope: &TenantScope,
        request_id: Option<String>,
        f: F,
    ) -> Result<BillingAccount, BillingError>
    where
        F: Fn(&mut BillingAccount) -> Vec<StatusChange>,
    {
        for _ in 0..SAVE_ATTEMPTS {
            let loaded = self.store.load(scope).await?;
            let mut next = loaded.clone();
            let changes = f(&mut next);
            if next == loaded {
                return Ok(loaded);
            }
            match self.save(scope, &next, changes, request_id.clone()).await {
                Err(BillingError::Conflict) => continue,
                other => return other,
            }
        }
        Err(BillingError::Conflict)
    }

    /// Runs time-driven transitions (grace period over, downgrade or cancellation at the end
    /// of the period) for every account due; returns how many records changed.
    ///
    /// # Errors
    /// Store failures. A gateway failure for one account is logged and retried next sweep.
    pub async fn sweep(&self, platform: &PlatformScope) -> Result<usize, BillingError> {
        let now = self.clock.now();
        let mut changed = 0;
        for account in self.store.due_for_sweep(platform, now).await? {
            let scope = platform.tenant(account);
            let mut record = self.store.load(&scope).await?;
            let before = record.clone();
            let outcome = sweep(&mut record, now, self.settings.grace_days);
            let mut changes = outcome.changes;
            if outcome.end_subscription {
                let Some(subscription) = record.subscription_id.clone() else {
                    continue;
                };
                let ended = match self.gateway() {
                    Ok(gateway) => gateway.cancel_subscription(&subscription).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot end a cancelled subscription");
                        continue;
                    }
                };
                if let Err(e) = ended {
                    tracing::warn!(error = %e, account_id = account.get(), "ending a cancelled subscription failed; retried next sweep");
                    continue;
                }
                record.cancel_at_period_end = false;
                if record.status != BillingStatus::Canceled {
                    changes.push(StatusChange {
                        from: record.status,
                        to: BillingStatus::Canceled,
                        reason: "canceled at the end of the paid period".to_owned(),
                    });
                    record.status = BillingStatus::Canceled;
                }
            }
            if record == before {
                continue;
            }
            match self.save(&scope, &record, changes, None).await {
                Ok(_) => changed += 1,
                Err(BillingError::Conflict) => continue,
                Err(e) => return Err(e),
            }
            if outcome.plan_changed {
                self.entitlements
                    .set_account(&scope, record.plan_id.clone(), None)
                    .await?;
            }
        }
        Ok(changed)
    }

    /// The request gate: `restricted` refuses writes, `canceled` refuses everything, except
    /// billing routes. Uses this instance's copy of the status for up to `gate_ttl`.
    ///
    /// # Errors
    /// `PaymentRequired`; `Unavailable`/`Internal`.
    pub async fn check(&self, scope: &TenantScope, gate: Gate) -> Result<(), BillingError> {
        if gate.billing {
            return Ok(());
        }
        let account = scope.account_id();
        let cached = {
            let cache = self.gate_cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&account)
                .filter(|(at, _)| at.elapsed() < self.settings.gate_ttl)
                .map(|(_, status)| *status)
        };
        let status = match cached {
            Some(status) => status,
            None => {
                let status = self.store.status(account).await?;
                self.gate_cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(account, (Instant::now(), status));
                status
            }
        };
        match status {
            BillingStatus::Canceled => Err(BillingError::PaymentRequired(status)),
            BillingStatus::Restricted if gate.write => Err(BillingError::PaymentRequired(status)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use std::collections::BTreeMap;

    use time::macros::{date, datetime};
    use whatpro_entitlements::{
        AccountEntitlements, MockEntitlementStore, Overrides, Plan, ReserveOutcome,
    };
    use whatpro_iam::Role;
    use whatpro_kernel::{FixedClock, UserId};

    use super::*;
    use crate::error::GatewayError;
    use crate::model::{GatewayPayment, GatewaySubscription, PaymentState, SubscriptionState};
    use crate::ports::{MockBillingStore, MockPaymentGateway};
    use crate::{CpfCnpj, GatewayEvent};

    const NOW: time::OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

    fn plan(id: &str, price: i64) -> Plan {
        Plan {
            id: id.parse().unwrap(),
            name: id.to_owned(),
            price_cents: price,
            limits: BTreeMap::new(),
            features: BTreeMap::new(),
        }
    }

    fn entitlements() -> Arc<EntitlementsService> {
        let mut store = MockEntitlementStore::new();
        store.expect_plan().returning(|id| {
            Ok(match id.as_str() {
                "trial" => Some(plan("trial", 0)),
                "starter" => Some(plan("starter", 9900)),
                _ => None,
            })
        });
        store.expect_account().returning(|scope| {
            Ok(AccountEntitlements {
                account_id: scope.account_id(),
                plan: plan("trial", 0),
                overrides: Overrides::default(),
            })
        });
        store.expect_usage().returning(|_, _| Ok(BTreeMap::new()));
        store.expect_set_account().returning(|scope, _, _| {
            Ok(AccountEntitlements {
                account_id: scope.account_id(),
                plan: plan("starter", 9900),
                overrides: Overrides::default(),
            })
        });
        store
            .expect_reserve()
            .returning(|_, _, _| Ok(ReserveOutcome::Granted { used: 1 }));
        Arc::new(EntitlementsService::new(
            Arc::new(store),
            Arc::new(FixedClock::new(NOW)),
        ))
    }

    fn scope() -> TenantScope {
        TenantScope::for_tests(AccountId::new(1), UserId::new(5), Role::Admin)
    }

    fn customer() -> CustomerInfo {
        CustomerInfo {
            name: "Loja".to_owned(),
            cpf_cnpj: CpfCnpj::parse("52998224725").unwrap(),
            email: "a@example.com".to_owned(),
        }
    }

    fn service(store: MockBillingStore, gateway: Option<MockPaymentGateway>) -> BillingService {
        BillingService::new(
            Arc::new(store),
            gateway.map(|g| Arc::new(g) as Arc<dyn PaymentGateway>),
            entitlements(),
            Arc::new(FixedClock::new(NOW)),
            BillingSettings::default(),
        )
    }

    #[tokio::test]
    async fn a_free_plan_is_refused_before_the_gateway_is_called() {
        let service = service(MockBillingStore::new(), Some(MockPaymentGateway::new()));
        let err = service
            .subscribe(
                &scope(),
                &"trial".parse().unwrap(),
                BillingType::Pix,
                &customer(),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(err, BillingError::PlanNotBillable("trial".to_owned()));
    }

    #[tokio::test]
    async fn without_a_gateway_billing_is_not_configured() {
        let service = service(MockBillingStore::new(), None);
        let err = service
            .subscribe(
                &scope(),
                &"starter".parse().unwrap(),
                BillingType::Pix,
                &customer(),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(err, BillingError::NotConfigured);
    }

    #[tokio::test]
    async fn a_gateway_failure_leaves_the_record_untouched() {
        let mut store = MockBillingStore::new();
        store
            .expect_load()
            .returning(|scope| Ok(BillingAccount::trialing(scope.account_id())));
        store.expect_save().never();
        let mut gateway = MockPaymentGateway::new();
        gateway
            .expect_ensure_customer()
            .returning(|_, _| Ok("cus_1".to_owned()));
        gateway
            .expect_create_subscription()
            .returning(|_| Err(GatewayError::Unavailable("timeout".to_owned())));
        let service = service(store, Some(gateway));
        let err = service
            .subscribe(
                &scope(),
                &"starter".parse().unwrap(),
                BillingType::Pix,
                &customer(),
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            BillingError::Gateway(GatewayError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn subscribing_moves_to_pending_with_the_gateway_ids_and_is_audited() {
        let mut store = MockBillingStore::new();
        store
            .expect_load()
            .returning(|scope| Ok(BillingAccount::trialing(scope.account_id())));
        store
            .expect_save()
            .withf(|_, record, changes, _| {
                record.status == BillingStatus::Pending
                    && record.subscription_id.as_deref() == Some("sub_1")
                    && record.customer_id.as_deref() == Some("cus_1")
                    && changes.len() == 1
                    && changes[0].from == BillingStatus::Trialing
            })
            .returning(|_, record, _, _| Ok(record.clone()));
        let mut gateway = MockPaymentGateway::new();
        gateway
            .expect_ensure_customer()
            .returning(|_, _| Ok("cus_1".to_owned()));
        gateway
            .expect_create_subscription()
            .withf(|s| s.value_cents == 9900 && s.next_due_date == date!(2026 - 11 - 30))
            .returning(|_| {
                Ok(GatewaySubscription {
                    id: "sub_1".to_owned(),
                    state: SubscriptionState::Active,
                    deleted: false,
                    next_due_date: Some(date!(2026 - 11 - 30)),
                    value_cents: 9900,
                })
            });
        let service = service(store, Some(gateway));
        let (record, created) = service
            .subscribe(
                &scope(),
                &"starter".parse().unwrap(),
                BillingType::Pix,
                &customer(),
                None,
            )
            .await
            .unwrap();
        assert!(created);
        assert_eq!(record.status, BillingStatus::Pending);
    }

    #[tokio::test]
    async fn a_payment_the_gateway_does_not_know_changes_nothing() {
        let mut store = MockBillingStore::new();
        store.expect_claim_event().returning(|_, _| {
            Ok(Some(GatewayEvent {
                id: "evt_1".to_owned(),
                event: "PAYMENT_OVERDUE".to_owned(),
                payment_id: Some("pay_x".to_owned()),
                subscription_id: None,
            }))
        });
        store
            .expect_finish_event()
            .withf(|_, id, outcome, _| id == "evt_1" && *outcome == Some(EventOutcome::Unknown))
            .returning(|_, _, _, _| Ok(()));
        store.expect_save().never();
        let mut gateway = MockPaymentGateway::new();
        gateway.expect_payment().returning(|_| Ok(None));
        let service = service(store, Some(gateway));
        let done = service
            .process_next_event(&PlatformScope::for_system_jobs())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((done.outcome, done.account), (EventOutcome::Unknown, None));
    }

    #[tokio::test]
    async fn a_failed_gateway_read_leaves_the_event_for_a_retry() {
        let mut store = MockBillingStore::new();
        store.expect_claim_event().returning(|_, _| {
            Ok(Some(GatewayEvent {
                id: "evt_2".to_owned(),
                event: "PAYMENT_RECEIVED".to_owned(),
                payment_id: Some("pay_1".to_owned()),
                subscription_id: Some("sub_1".to_owned()),
            }))
        });
        store
            .expect_finish_event()
            .withf(|_, _, outcome, error| outcome.is_none() && error.is_some())
            .returning(|_, _, _, _| Ok(()));
        let mut gateway = MockPaymentGateway::new();
        gateway
            .expect_payment()
            .returning(|_| Err(GatewayError::Unavailable("down".to_owned())));
        let service = service(store, Some(gateway));
        assert!(
            service
                .process_next_event(&PlatformScope::for_system_jobs())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_received_payment_activates_the_account_it_belongs_to() {
        let mut store = MockBillingStore::new();
        store.expect_claim_event().returning(|_, _| {
            Ok(Some(GatewayEvent {
                id: "evt_3".to_owned(),
                event: "PAYMENT_RECEIVED".to_owned(),
                payment_id: Some("pay_1".to_owned()),
                subscription_id: None,
            }))
        });
        store
            .expect_account_of_subscription()
            .returning(|_, _| Ok(Some(AccountId::new(1))));
        store.expect_record_payment().returning(|_, _| Ok(()));
        store.expect_load().returning(|scope| {
            let mut record = BillingAccount::trialing(scope.account_id());
            record.status = BillingStatus::Pending;
            record.subscription_id = Some("sub_1".to_owned());
            record.version = 3;
            Ok(record)
        });
        store
            .expect_save()
            .withf(|_, record, changes, _| {
                record.status == BillingStatus::Active && changes[0].to == BillingStatus::Active
            })
            .returning(|_, record, _, _| Ok(record.clone()));
        store.expect_finish_event().returning(|_, _, _, _| Ok(()));
        let mut gateway = MockPaymentGateway::new();
        gateway.expect_payment().returning(|_| {
            Ok(Some(GatewayPayment {
                id: "pay_1".to_owned(),
                subscription_id: Some("sub_1".to_owned()),
                state: PaymentState::Received,
                value_cents: 9900,
                due_date: Some(date!(2026 - 11 - 30)),
                payment_date: Some(date!(2026 - 11 - 30)),
                deleted: false,
                invoice_url: None,
            }))
        });
        let service = service(store, Some(gateway));
        let done = service
            .process_next_event(&PlatformScope::for_system_jobs())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.account, Some(AccountId::new(1)));
    }

    #[tokio::test]
    async fn a_plan_change_is_reapplied_when_a_webhook_saved_the_record_meanwhile() {
        let mut store = MockBillingStore::new();
        store.expect_load().returning(|scope| {
            let mut record = BillingAccount::trialing(scope.account_id());
            record.status = BillingStatus::Active;
            record.plan_id = Some("trial".parse().unwrap());
            record.subscription_id = Some("sub_1".to_owned());
            record.version = 2;
            Ok(record)
        });
        let mut seq = mockall::Sequence::new();
        store
            .expect_save()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _, _| Err(SaveError::Stale));
        store
            .expect_save()
            .times(1)
            .in_sequence(&mut seq)
            .withf(|_, record, _, request| {
                record.plan_id.as_ref().map(PlanId::as_str) == Some("starter")
                    && request.as_deref() == Some("req-9")
            })
            .returning(|_, record, _, _| Ok(record.clone()));
        let mut gateway = MockPaymentGateway::new();
        gateway
            .expect_change_subscription_value()
            .times(1)
            .returning(|_, _, _| {
                Ok(GatewaySubscription {
                    id: "sub_1".to_owned(),
                    state: SubscriptionState::Active,
                    deleted: false,
                    next_due_date: None,
                    value_cents: 9900,
                })
            });
        let service = service(store, Some(gateway));
        let saved = service
            .change_plan(
                &scope(),
                &"starter".parse().unwrap(),
                Some("req-9".to_owned()),
            )
            .await
            .unwrap();
        assert_eq!(saved.plan_id.as_ref().map(PlanId::as_str), Some("starter"));
    }

    #[tokio::test]
    async fn the_gate_locks_writes_when_restricted_and_everything_but_billing_when_canceled() {
        for (status, write, billing, allowed) in [
            (BillingStatus::Active, true, false, true),
            (BillingStatus::PastDue, true, false, true),
            (BillingStatus::Restricted, false, false, true),
            (BillingStatus::Restricted, true, false, false),
            (BillingStatus::Restricted, true, true, true),
            (BillingStatus::Canceled, false, false, false),
            (BillingStatus::Canceled, true, true, true),
        ] {
            let mut store = MockBillingStore::new();
            store.expect_status().returning(move |_| Ok(status));
            let service = service(store, None);
            let result = service.check(&scope(), Gate { write, billing }).await;
            assert_eq!(
                result.is_ok(),
                allowed,
                "{status} write={write} billing={billing}"
            );
            if !allowed {
                assert_eq!(result, Err(BillingError::PaymentRequired(status)));
            }
        }
    }
}
