//! Ports of the entitlements domain.

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::Date;
use whatpro_iam::{PlatformScope, StoreError, TenantScope};

use crate::error::EntitlementError;
use crate::meter::{ActiveUsers, MeterSnapshot, UsageDay, UsageTotals};
use crate::model::{AccountEntitlements, Overrides, Plan, PlanId, Resource};

/// The answer of an atomic reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// A slot was taken; `used` counts it.
    Granted {
        /// Usage after the reservation.
        used: i64,
    },
    /// No slot left; nothing changed.
    Exceeded {
        /// Current usage.
        used: i64,
        /// The limit in force.
        limit: i64,
    },
}

/// Plans, accounts' plans and overrides, and the reservation counters.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EntitlementStore: Send + Sync {
    /// Every plan, cheapest first.
    async fn list_plans(&self) -> Result<Vec<Plan>, StoreError>;

    /// One plan.
    async fn plan(&self, id: &PlanId) -> Result<Option<Plan>, StoreError>;

    /// Creates or replaces a plan; `true` when it was created.
    async fn save_plan(&self, scope: &PlatformScope, plan: &Plan) -> Result<bool, StoreError>;

    /// The scope's account's plan and overrides (the trial plan when none was set).
    async fn account(&self, scope: &TenantScope) -> Result<AccountEntitlements, StoreError>;

    /// Sets the plan and/or replaces the overrides of the scope's account.
    ///
    /// # Errors
    /// `PlanNotFound`, `AccountNotFound`, `Unavailable`, `Internal`.
    async fn set_account(
        &self,
        scope: &TenantScope,
        plan: Option<PlanId>,
        overrides: Option<Overrides>,
    ) -> Result<AccountEntitlements, EntitlementError>;

    /// Usage of every resource (`month` = `YYYY-MM` for monthly ones).
    async fn usage(
        &self,
        scope: &TenantScope,
        month: &str,
    ) -> Result<BTreeMap<Resource, i64>, StoreError>;

    /// Atomically takes one slot of `resource` in `period` unless `used` already reached the
    /// account's limit, read in the same statement (the override when one is set, else the
    /// plan's; none: always granted). Safe under any concurrency, and one round trip: the
    /// quota check must cost a create path almost nothing.
    async fn reserve(
        &self,
        scope: &TenantScope,
        resource: Resource,
        period: &str,
    ) -> Result<ReserveOutcome, StoreError>;

    /// Gives one slot back (never below zero).
    async fn release(
        &self,
        scope: &TenantScope,
        resource: Resource,
        period: &str,
    ) -> Result<(), StoreError>;
}

/// Where metered usage is written and read.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Adds a batch of counters (one transaction; days computed in each account's time zone).
    async fn flush(&self, batch: &MeterSnapshot) -> Result<(), StoreError>;

    /// Daily usage of the scope's account for `from..=to` (its local dates), oldest first;
    /// days without usage are included with zeros.
    async fn daily(
        &self,
        scope: &TenantScope,
        from: Date,
        to: Date,
    ) -> Result<Vec<UsageDay>, StoreError>;

    /// DAU, WAU and MAU of the scope's account as of today in its time zone.
    async fn active_users(&self, scope: &TenantScope) -> Result<ActiveUsers, StoreError>;

    /// Sets the IANA time zone the scope's account's days are counted in; `false` when
    /// the zone is unknown (nothing changes).
    async fn set_time_zone(&self, scope: &TenantScope, time_zone: &str)
    -> Result<bool, StoreError>;

    /// Totals across accounts for `from..=to` (UTC dates of the accounts' local days).
    async fn totals(
        &self,
        scope: &PlatformScope,
        from: Date,
        to: Date,
    ) -> Result<UsageTotals, StoreError>;
}
