//! Tenancy of the Hub: accounts as the platform sees them, the members of an account and their
//! Hub roles, and the audit log.
//!
//! Every port method on tenant data takes `&TenantScope` first, so forgetting the tenant does
//! not compile; cross-account reads take `&PlatformScope`. No I/O here: the PostgreSQL
//! adapters live in `whatpro-db`.

mod error;
mod model;
mod ports;
mod service;

pub use error::TenancyError;
pub use model::{
    AccountSummary, AuditActor, AuditEntry, AuditQuery, Member, MemberPage, RoleChange,
};
pub use ports::{AccountDirectory, AuditLog, MemberRepository};
pub use service::TenancyService;

#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockAccountDirectory, MockAuditLog, MockMemberRepository};
