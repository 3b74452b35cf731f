//! Identity and access of the Hub.
//!
//! Owns [`TenantScope`] — the proof that a caller was authenticated for exactly one Chatwoot
//! account, minted only by this crate — plus roles and the policy table, sessions and the
//! refresh-token rotation rules, machine credentials (API keys, instance tokens, their
//! [`Scope`]s), and the ports their adapters implement: [`IdentityStore`] and
//! [`CredentialStore`] (PostgreSQL), [`ChatwootIdentity`] (Chatwoot's API), [`AccessTokens`],
//! [`RefreshTokens`], [`InstanceTokens`] and [`SecretHasher`] (cryptography).
//!
//! No I/O here and no infrastructure crates: adapters live in `whatpro-db`, `whatpro-chatwoot`
//! and `whatpro-crypto`.

mod credentials;
mod error;
mod machine;
mod model;
mod policy;
mod ports;
mod scope;
mod scopes;
mod service;

pub use credentials::{
    API_KEY_PREFIX, ApiKeyAuth, ApiKeyPage, ApiKeyRecord, ApiKeyRequest, InstanceAuth,
    InstanceClaims, InstanceTokenRecord, InstanceTokenRequest, IssuedApiKey, IssuedInstanceToken,
    KeyChange, KeyDenial, KeyMaterial, NewApiKey, PresentedKey,
};

pub use error::{AuthError, IamError};
pub use model::{
    AccessClaims, AccountStatus, ApiKeyId, AuditContext, ChatwootCredential, ChatwootMembership,
    ChatwootProfile, ChatwootRole, DeviceInfo, LoginRecord, Membership, NewRefreshToken, Principal,
    RefreshRotation, RotateOutcome, SessionId, SessionRecord, SessionRevocation, User,
};
pub use policy::{Action, Role, RoleParseError};
pub use ports::{
    AccessTokens, ChatwootIdentity, CredentialStore, HashError, IdentityError, IdentityStore,
    InstanceTokens, IssuedAccessToken, RefreshTokens, SecretHasher, StoreError, TokenError,
};
pub use scope::{Actor, PlatformScope, TenantScope};
pub use scopes::{Scope, ScopeParseError, ScopeSet};
pub use service::{AuthContext, IamPorts, IamService, IamSettings, LoginResult};

#[cfg(any(test, feature = "mocks"))]
pub use ports::{
    MockAccessTokens, MockChatwootIdentity, MockCredentialStore, MockIdentityStore,
    MockInstanceTokens, MockRefreshTokens, MockSecretHasher,
};
