//! Tenancy of the Hub: accounts as the platform sees them, the members of an account and their
//! Hub roles, the audit log, and the Hub's installation in accounts (Platform App events,
//! Chatwoot Dashboard App registration).
//!
//! Every port method on tenant data takes `&TenantScope` first, so forgetting the tenant does
//! not compile; cross-account reads take `&PlatformScope`. No I/O here: the PostgreSQL
//! adapters live in `whatpro-db`.

mod error;
mod model;
mod platform_app;
mod ports;
mod service;

pub use error::TenancyError;
pub use model::{
    AccountSummary, AuditActor, AuditEntry, AuditQuery, Member, MemberPage, RoleChange,
};
pub use platform_app::{
    AccountInstallations, ChatwootDashboardApps, DashboardApp, DashboardAppError,
    InstallationChange, InstallationEvent, InstallationOutcome, MAX_ACCOUNT_NAME_CHARS,
    MAX_EVENT_ID_CHARS, NewDashboardApp, PlatformAppError, PlatformAppService, Registration,
};
pub use ports::{AccountDirectory, AuditLog, MemberRepository};
pub use service::TenancyService;

#[cfg(any(test, feature = "mocks"))]
pub use platform_app::{MockAccountInstallations, MockChatwootDashboardApps};
#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockAccountDirectory, MockAuditLog, MockMemberRepository};
