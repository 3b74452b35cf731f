//! Entitlements of an account: the plan it is on, the limits and feature flags that plan (and
//! any per-account override) grants, race-safe quota reservations that every create path
//! takes, and usage metering through in-memory counters flushed in batches.
//!
//! Port methods on tenant data take `&TenantScope` first; plan administration and platform
//! totals take `&PlatformScope`. No I/O here: the PostgreSQL adapters live in `whatpro-db`.

mod error;
mod meter;
mod model;
mod ports;
mod service;

pub use error::EntitlementError;
pub use meter::{ActiveUsers, Meter, MeterSnapshot, Metric, UsageDay, UsageTotals};
pub use model::{
    AccountEntitlements, EffectiveEntitlements, Feature, LimitValue, Overrides, Plan, PlanId,
    PlanIdError, QuotaClaim, Reservation, Resource, UsageExcess,
};
pub use ports::{EntitlementStore, ReserveOutcome, UsageStore};
pub use service::{EntitlementsService, MeteringService};

#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockEntitlementStore, MockUsageStore};
