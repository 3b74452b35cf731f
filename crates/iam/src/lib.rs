//! Identity and access of the Hub.
//!
//! Owns [`TenantScope`] — the proof that a caller was authenticated for exactly one Chatwoot
//! account, minted only by this crate — plus roles and the policy table, sessions and the
//! refresh-token rotation rules, and the ports their adapters implement: [`IdentityStore`]
//! (PostgreSQL), [`ChatwootIdentity`] (Chatwoot's API), [`AccessTokens`] and
//! [`RefreshTokens`] (cryptography).
//!
//! No I/O here and no infrastructure crates: adapters live in `whatpro-db`, `whatpro-chatwoot`
//! and `whatpro-crypto`.

mod error;
mod model;
mod policy;
mod ports;
mod scope;
mod service;

pub use error::{AuthError, IamError};
pub use model::{
    AccessClaims, AccountStatus, AuditContext, ChatwootCredential, ChatwootMembership,
    ChatwootProfile, ChatwootRole, DeviceInfo, LoginRecord, Membership, NewRefreshToken, Principal,
    RefreshRotation, RotateOutcome, SessionId, SessionRecord, SessionRevocation, User,
};
pub use policy::{Action, Role, RoleParseError};
pub use ports::{
    AccessTokens, ChatwootIdentity, IdentityError, IdentityStore, IssuedAccessToken, RefreshTokens,
    StoreError, TokenError,
};
pub use scope::{Actor, PlatformScope, TenantScope};
pub use service::{AuthContext, IamService, IamSettings, LoginResult};

#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockAccessTokens, MockChatwootIdentity, MockIdentityStore, MockRefreshTokens};
