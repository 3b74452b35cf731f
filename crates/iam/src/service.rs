//! The IAM use cases: SSO, refresh, authentication of each request, scopes, sessions.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use whatpro_kernel::{AccountId, Clock, IdGen};

use crate::error::IamError;
use crate::machine::MachineState;
use crate::model::{
    AccessClaims, AccountStatus, AuditContext, ChatwootCredential, DeviceInfo, LoginRecord,
    NewRefreshToken, Principal, RefreshRotation, RotateOutcome, SessionId, SessionRecord,
    SessionRevocation,
};
use crate::policy::{Action, Role};
use crate::ports::{
    AccessTokens, ChatwootIdentity, CredentialStore, IdentityError, IdentityStore, InstanceTokens,
    IssuedAccessToken, RefreshTokens, SecretHasher,
};
use crate::scope::{Actor, PlatformScope, TenantScope};

/// Lifetimes and the super_admin list.
#[derive(Debug, Clone)]
pub struct IamSettings {
    /// A session ends when not refreshed for this long (7 days).
    pub session_idle: Duration,
    /// A session ends this long after login whatever happens (30 days).
    pub session_absolute: Duration,
    /// A used refresh token presented again within this window gets the same successor (5 s).
    pub refresh_grace: Duration,
    /// Lower-cased emails of super_admins.
    pub super_admin_emails: Vec<String>,
    /// How long a successful API-key verification is remembered, so repeated uses of the same
    /// key skip argon2 (60 s).
    pub api_key_verify_ttl: Duration,
    /// `last_used_at` of an API key is written at most this often per key and instance (60 s).
    pub api_key_touch_interval: Duration,
    /// Instance-token lifetime when none is asked (15 min).
    pub instance_token_default_ttl: Duration,
    /// Longest instance-token lifetime (60 min).
    pub instance_token_max_ttl: Duration,
}

impl Default for IamSettings {
    fn default() -> Self {
        Self {
            session_idle: Duration::days(7),
            session_absolute: Duration::days(30),
            refresh_grace: Duration::seconds(5),
            super_admin_emails: Vec::new(),
            api_key_verify_ttl: Duration::seconds(60),
            api_key_touch_interval: Duration::seconds(60),
            instance_token_default_ttl: Duration::minutes(15),
            instance_token_max_ttl: Duration::minutes(60),
        }
    }
}

/// The adapters the IAM service works through.
pub struct IamPorts {
    /// Users, memberships, sessions, refresh tokens.
    pub store: Arc<dyn IdentityStore>,
    /// API keys and instance tokens.
    pub credentials: Arc<dyn CredentialStore>,
    /// Chatwoot's verdict on Chatwoot credentials.
    pub chatwoot: Arc<dyn ChatwootIdentity>,
    /// Access tokens.
    pub access: Arc<dyn AccessTokens>,
    /// Refresh tokens and sealed credentials.
    pub refresh: Arc<dyn RefreshTokens>,
    /// Instance tokens.
    pub instance: Arc<dyn InstanceTokens>,
    /// API key material and argon2id.
    pub hasher: Arc<dyn SecretHasher>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// New ids.
    pub ids: Arc<dyn IdGen>,
}

/// What a login or a refresh hands to the client.
#[derive(Debug, Clone)]
pub struct LoginResult {
    /// The new access token.
    pub access_token: IssuedAccessToken,
    /// The refresh token (only ever shown here).
    pub refresh_token: String,
    /// The session.
    pub session: SessionRecord,
    /// The user and usable memberships.
    pub principal: Arc<Principal>,
}

/// A request's verified identity: token claims, a live session, the principal.
#[derive(Debug, Clone)]
pub struct AuthContext {
    /// The verified claims.
    pub claims: AccessClaims,
    /// The live session.
    pub session: Arc<SessionRecord>,
    /// The user and memberships.
    pub principal: Arc<Principal>,
}

impl AuthContext {
    /// The actor for scopes and audit.
    pub fn actor(&self) -> Actor {
        Actor::User {
            user_id: self.claims.user_id,
            session_id: self.claims.session_id,
        }
    }
}

/// The IAM service: the only place that mints [`TenantScope`] and [`PlatformScope`].
pub struct IamService {
    pub(crate) store: Arc<dyn IdentityStore>,
    pub(crate) credentials: Arc<dyn CredentialStore>,
    pub(crate) chatwoot: Arc<dyn ChatwootIdentity>,
    access: Arc<dyn AccessTokens>,
    refresh: Arc<dyn RefreshTokens>,
    pub(crate) instance: Arc<dyn InstanceTokens>,
    pub(crate) hasher: Arc<dyn SecretHasher>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdGen>,
    pub(crate) settings: IamSettings,
    /// In-process memory of verified API keys and of `last_used_at` writes.
    pub(crate) machine: MachineState,
}

impl IamService {
    /// Wires the service to its ports.
    pub fn new(ports: IamPorts, settings: IamSettings) -> Self {
        Self {
            store: ports.store,
            credentials: ports.credentials,
            chatwoot: ports.chatwoot,
            access: ports.access,
            refresh: ports.refresh,
            instance: ports.instance,
            hasher: ports.hasher,
            clock: ports.clock,
            ids: ports.ids,
            machine: MachineState::default(),
            settings,
        }
    }

    pub(crate) fn is_super_admin(&self, email: &str) -> bool {
        let email = email.to_lowercase();
        self.settings.super_admin_emails.contains(&email)
    }

    /// Signs a user in with a Chatwoot credential: verifies it with Chatwoot, refreshes the
    /// user's accounts and memberships, opens a session. With `account`, the user must be an
    /// active member of it.
    ///
    /// # Errors
    /// `ChatwootCredentialsInvalid`, `ChatwootUnavailable`, `ChatwootUpstream`, `NotAMember`,
    /// `Unavailable`, `Internal`.
    pub async fn sso(
        &self,
        credential: ChatwootCredential,
        account: Option<AccountId>,
        device: DeviceInfo,
        audit: AuditContext,
    ) -> Result<LoginResult, IamError> {
        let profile = match self.chatwoot.verify(&credential).await {
            Ok(profile) => profile,
            Err(IdentityError::InvalidCredentials) => {
                self.store
                    .record_login_failure(None, "chatwoot_credentials_invalid", &audit)
                    .await?;
                return Err(IamError::ChatwootCredentialsInvalid);
            }
            Err(other) => return Err(other.into()),
        };
        if let Some(account) = account {
            let member = profile
                .accounts
                .iter()
                .any(|m| m.account_id == account && m.status == AccountStatus::Active);
            if !member {
                self.store
                    .record_login_failure(Some(profile.user_id), "not_a_member", &audit)
                    .await?;
                return Err(IamError::NotAMember);
            }
        }
        let now = self.clock.now();
        let session_id = SessionId::from_uuid(self.ids.new_id());
        let (refresh_token, hash) = self.refresh.generate();
        let absolute = now + self.settings.session_absolute;
        let idle = (now + self.settings.session_idle).min(absolute);
        let record = LoginRecord {
            super_admin: self.is_super_admin(&profile.email),
            sealed_credential: self.refresh.seal(&credential),
            profile,
            session_id,
            device: device.clone(),
            refresh: NewRefreshToken {
                hash,
                expires_at: idle,
            },
            now,
            idle_expires_at: idle,
            absolute_expires_at: absolute,
            audit,
        };
        let principal = self.store.record_login(&record).await?;
        if let Some(account) = account
            && principal.membership(account).is_none()
        {
            // Chatwoot lists the account but the Hub does not serve it (uninstalled): the new
            // session must not outlive this refusal.
            self.store
                .revoke_session(
                    principal.user.id,
                    session_id,
                    SessionRevocation::Revoked,
                    &record.audit,
                    now,
                )
                .await?;
            return Err(IamError::NotAMember);
        }
        let access_token = self.access.issue(principal.user.id, session_id, now)?;
        let session = SessionRecord {
            id: session_id,
            user_id: principal.user.id,
            user_agent: device.user_agent,
            ip: device.ip,
            created_at: now,
            last_seen_at: now,
            idle_expires_at: idle,
            absolute_expires_at: absolute,
            revoked_at: None,
            revoked_reason: None,
            sealed_credential: record.sealed_credential,
        };
        Ok(LoginResult {
            access_token,
            refresh_token,
            session,
            principal: Arc::new(principal),
        })
    }

    /// Rotates a refresh token into a new pair. A repeat within the grace window returns the
    /// same successor; a reuse after it revokes the session. Memberships are re-checked with
    /// Chatwoot when the session kept the user's credential (an outage does not log users out;
    /// a rejected credential does).
    ///
    /// # Errors
    /// `RefreshInvalid`, `RefreshExpired`, `RefreshReused`, `SessionRevoked`,
    /// `SessionExpired`, `Unavailable`, `Internal`.
    pub async fn refresh(
        &self,
        presented: &str,
        audit: AuditContext,
    ) -> Result<LoginResult, IamError> {
        let hash = self
            .refresh
            .hash(presented)
            .ok_or(IamError::RefreshInvalid)?;
        let (successor, successor_hash) = self
            .refresh
            .successor(presented)
            .ok_or(IamError::RefreshInvalid)?;
        let now = self.clock.now();
        let idle = now + self.settings.session_idle;
        let rotation = RefreshRotation {
            presented_hash: hash,
            successor: NewRefreshToken {
                hash: successor_hash,
                expires_at: idle,
            },
            now,
            grace: self.settings.refresh_grace,
            idle_expires_at: idle,
            audit: audit.clone(),
        };
        let session = match self.store.rotate_refresh(&rotation).await? {
            RotateOutcome::Rotated(session) | RotateOutcome::Replayed(session) => session,
            RotateOutcome::Reused(_) => return Err(IamError::RefreshReused),
            RotateOutcome::Unknown => return Err(IamError::RefreshInvalid),
            RotateOutcome::Expired => return Err(IamError::RefreshExpired),
            RotateOutcome::SessionEnded => return Err(IamError::SessionExpired),
        };
        let principal = self.recheck_memberships(&session, &audit).await?;
        let access_token = self.access.issue(session.user_id, session.id, now)?;
        Ok(LoginResult {
            access_token,
            refresh_token: successor,
            session,
            principal,
        })
    }

    async fn recheck_memberships(
        &self,
        session: &SessionRecord,
        audit: &AuditContext,
    ) -> Result<Arc<Principal>, IamError> {
        let credential = session
            .sealed_credential
            .as_deref()
            .and_then(|s| self.refresh.open(s));
        if let Some(credential) = credential {
            match self.chatwoot.verify(&credential).await {
                Ok(profile) => {
                    let super_admin = self.is_super_admin(&profile.email);
                    return Ok(Arc::new(
                        self.store.sync_memberships(&profile, super_admin).await?,
                    ));
                }
                Err(IdentityError::InvalidCredentials) => {
                    self.store
                        .revoke_session(
                            session.user_id,
                            session.id,
                            SessionRevocation::ChatwootRejected,
                            audit,
                            self.clock.now(),
                        )
                        .await?;
                    return Err(IamError::SessionRevoked);
                }
                // Chatwoot down or erroring: keep the memberships we know.
                Err(IdentityError::Unavailable(_) | IdentityError::Upstream(_)) => {}
            }
        }
        self.store
            .principal(session.user_id)
            .await?
            .ok_or(IamError::SessionRevoked)
    }

    /// Verifies an access token and that its session is live (revocations, expiry).
    ///
    /// # Errors
    /// `TokenInvalid`, `TokenExpired`, `SessionRevoked`, `SessionExpired`, `Unavailable`.
    pub async fn authenticate(&self, bearer: &str) -> Result<AuthContext, IamError> {
        let now = self.clock.now();
        let claims = self.access.verify(bearer, now)?;
        if let Some((session, principal)) = self.store.remembered(claims.session_id, claims.user_id)
        {
            check_session(&session, &claims, now)?;
            return Ok(AuthContext {
                claims,
                session,
                principal,
            });
        }
        let session = self
            .store
            .session(claims.session_id)
            .await?
            .ok_or(IamError::SessionRevoked)?;
        check_session(&session, &claims, now)?;
        let principal = self
            .store
            .principal(claims.user_id)
            .await?
            .ok_or(IamError::SessionRevoked)?;
        Ok(AuthContext {
            claims,
            session,
            principal,
        })
    }

    /// The scope for `account`, if the user is an active member whose role allows `action`.
    ///
    /// # Errors
    /// `NotAMember` (not a member, left, or the account is suspended), `Forbidden`.
    pub fn tenant_scope(
        &self,
        ctx: &AuthContext,
        account: AccountId,
        action: Action,
    ) -> Result<TenantScope, IamError> {
        let membership = ctx
            .principal
            .membership(account)
            .ok_or(IamError::NotAMember)?;
        if !membership.role.allows(action) {
            return Err(IamError::Forbidden);
        }
        Ok(TenantScope::new(account, ctx.actor(), membership.role))
    }

    /// The platform scope, for super_admins only.
    ///
    /// # Errors
    /// `Forbidden` for everyone else.
    pub fn platform_scope(
        &self,
        ctx: &AuthContext,
        action: Action,
    ) -> Result<PlatformScope, IamError> {
        if ctx.principal.user.super_admin && Role::SuperAdmin.allows(action) {
            Ok(PlatformScope::new(ctx.actor()))
        } else {
            Err(IamError::Forbidden)
        }
    }

    /// Ends the caller's session.
    ///
    /// # Errors
    /// `Unavailable`, `Internal`.
    pub async fn logout(&self, ctx: &AuthContext, audit: &AuditContext) -> Result<(), IamError> {
        self.store
            .revoke_session(
                ctx.claims.user_id,
                ctx.claims.session_id,
                SessionRevocation::Logout,
                audit,
                self.clock.now(),
            )
            .await?;
        Ok(())
    }

    /// Ends the session a refresh token belongs to (logout with the refresh cookie alone).
    /// An unknown token changes nothing and is not an error (logout is idempotent).
    ///
    /// # Errors
    /// `Unavailable`, `Internal`.
    pub async fn logout_with_refresh(
        &self,
        presented: &str,
        audit: &AuditContext,
    ) -> Result<(), IamError> {
        let Some(hash) = self.refresh.hash(presented) else {
            return Ok(());
        };
        if let Some(session) = self.store.session_for_refresh(&hash).await? {
            self.store
                .revoke_session(
                    session.user_id,
                    session.id,
                    SessionRevocation::Logout,
                    audit,
                    self.clock.now(),
                )
                .await?;
        }
        Ok(())
    }

    /// The session a presented refresh token belongs to (used to rate-limit per session before
    /// anything is consumed); `None` for unknown or malformed tokens.
    ///
    /// # Errors
    /// `Unavailable`, `Internal`.
    pub async fn session_of_refresh(&self, presented: &str) -> Result<Option<SessionId>, IamError> {
        let Some(hash) = self.refresh.hash(presented) else {
            return Ok(None);
        };
        Ok(self.store.session_for_refresh(&hash).await?.map(|s| s.id))
    }

    /// The caller's live sessions, newest first.
    ///
    /// # Errors
    /// `Unavailable`, `Internal`.
    pub async fn sessions(&self, ctx: &AuthContext) -> Result<Vec<SessionRecord>, IamError> {
        Ok(self
            .store
            .live_sessions(ctx.claims.user_id, self.clock.now())
            .await?)
    }

    /// Revokes one of the caller's own sessions.
    ///
    /// # Errors
    /// `SessionNotFound` when it is not a live session of the caller.
    pub async fn revoke_session(
        &self,
        ctx: &AuthContext,
        session: SessionId,
        audit: &AuditContext,
    ) -> Result<(), IamError> {
        let revoked = self
            .store
            .revoke_session(
                ctx.claims.user_id,
                session,
                SessionRevocation::Revoked,
                audit,
                self.clock.now(),
            )
            .await?;
        if revoked {
            Ok(())
        } else {
            Err(IamError::SessionNotFound)
        }
    }

    /// Revokes every other session of the caller; returns how many.
    ///
    /// # Errors
    /// `Unavailable`, `Internal`.
    pub async fn revoke_other_sessions(
        &self,
        ctx: &AuthContext,
        audit: &AuditContext,
    ) -> Result<u64, IamError> {
        Ok(self
            .store
            .revoke_other_sessions(
                ctx.claims.user_id,
                ctx.claims.session_id,
                audit,
                self.clock.now(),
            )
            .await?)
    }

    /// Current time of the service's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

/// The session behind an access token must be the token's, not revoked and not expired.
fn check_session(
    session: &SessionRecord,
    claims: &AccessClaims,
    now: OffsetDateTime,
) -> Result<(), IamError> {
    if session.user_id != claims.user_id {
        return Err(IamError::TokenInvalid);
    }
    if session.revoked_at.is_some() {
        return Err(IamError::SessionRevoked);
    }
    if !session.is_live(now) {
        return Err(IamError::SessionExpired);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{ChatwootMembership, ChatwootProfile, ChatwootRole, Membership, User};
    use crate::ports::{
        MockAccessTokens, MockChatwootIdentity, MockCredentialStore, MockIdentityStore,
        MockInstanceTokens, MockRefreshTokens, MockSecretHasher, TokenError,
    };
    use uuid::Uuid;
    use whatpro_kernel::{FixedClock, UserId, UuidV7Gen};

    pub(crate) fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    pub(crate) fn profile() -> ChatwootProfile {
        ChatwootProfile {
            user_id: UserId::new(5),
            email: "Carlos@WhatPro.example".into(),
            name: "Carlos".into(),
            accounts: vec![
                ChatwootMembership {
                    account_id: AccountId::new(1),
                    account_name: "Demo".into(),
                    status: AccountStatus::Active,
                    role: ChatwootRole::Administrator,
                },
                ChatwootMembership {
                    account_id: AccountId::new(2),
                    account_name: "Off".into(),
                    status: AccountStatus::Suspended,
                    role: ChatwootRole::Agent,
                },
            ],
        }
    }

    pub(crate) fn principal(role: Role) -> Principal {
        Principal {
            user: User {
                id: UserId::new(5),
                email: "carlos@whatpro.example".into(),
                name: "Carlos".into(),
                super_admin: false,
            },
            memberships: vec![Membership {
                account_id: AccountId::new(1),
                account_name: "Demo".into(),
                role,
            }],
        }
    }

    pub(crate) fn session(revoked: bool) -> SessionRecord {
        SessionRecord {
            id: SessionId::from_uuid(Uuid::nil()),
            user_id: UserId::new(5),
            user_agent: None,
            ip: None,
            created_at: now(),
            last_seen_at: now(),
            idle_expires_at: now() + Duration::days(7),
            absolute_expires_at: now() + Duration::days(30),
            revoked_at: revoked.then(now),
            revoked_reason: None,
            sealed_credential: None,
        }
    }

    pub(crate) struct Ports {
        pub(crate) store: MockIdentityStore,
        pub(crate) credentials: MockCredentialStore,
        pub(crate) chatwoot: MockChatwootIdentity,
        pub(crate) access: MockAccessTokens,
        pub(crate) refresh: MockRefreshTokens,
        pub(crate) instance: MockInstanceTokens,
        pub(crate) hasher: MockSecretHasher,
    }

    impl Ports {
        pub(crate) fn new() -> Self {
            let mut refresh = MockRefreshTokens::new();
            refresh
                .expect_generate()
                .returning(|| ("a".repeat(64), vec![1; 32]));
            refresh.expect_seal().returning(|_| Some("sealed".into()));
            refresh
                .expect_hash()
                .returning(|t| (t.len() == 64).then(|| vec![1; 32]));
            refresh
                .expect_successor()
                .returning(|t| (t.len() == 64).then(|| ("b".repeat(64), vec![2; 32])));
            refresh.expect_open().returning(|_| None);
            let mut access = MockAccessTokens::new();
            access.expect_issue().returning(|_, _, now| {
                Ok(IssuedAccessToken {
                    token: "v4.local.x".into(),
                    expires_at: now + Duration::minutes(15),
                    token_id: Uuid::nil(),
                })
            });
            Self {
                store: MockIdentityStore::new(),
                credentials: MockCredentialStore::new(),
                chatwoot: MockChatwootIdentity::new(),
                access,
                refresh,
                instance: MockInstanceTokens::new(),
                hasher: MockSecretHasher::new(),
            }
        }

        pub(crate) fn service(self, settings: IamSettings) -> IamService {
            self.service_with_clock(settings, Arc::new(FixedClock::new(now())))
        }

        pub(crate) fn service_with_clock(
            self,
            settings: IamSettings,
            clock: Arc<FixedClock>,
        ) -> IamService {
            IamService::new(
                IamPorts {
                    store: Arc::new(self.store),
                    credentials: Arc::new(self.credentials),
                    chatwoot: Arc::new(self.chatwoot),
                    access: Arc::new(self.access),
                    refresh: Arc::new(self.refresh),
                    instance: Arc::new(self.instance),
                    hasher: Arc::new(self.hasher),
                    clock,
                    ids: Arc::new(UuidV7Gen),
                },
                settings,
            )
        }
    }

    #[tokio::test]
    async fn sso_records_the_login_with_super_admin_from_configuration() {
        let mut ports = Ports::new();
        ports.chatwoot.expect_verify().returning(|_| Ok(profile()));
        ports
            .store
            .expect_record_login()
            .withf(|login| {
                login.super_admin
                    && login.sealed_credential.as_deref() == Some("sealed")
                    && login.idle_expires_at == now() + Duration::days(7)
                    && login.absolute_expires_at == now() + Duration::days(30)
            })
            .returning(|_| Ok(principal(Role::Admin)));
        let settings = IamSettings {
            super_admin_emails: vec!["carlos@whatpro.example".into()],
            ..IamSettings::default()
        };
        let result = ports
            .service(settings)
            .sso(
                ChatwootCredential::AccessToken("t".into()),
                Some(AccountId::new(1)),
                DeviceInfo::default(),
                AuditContext::default(),
            )
            .await
            .unwrap();
        assert_eq!(result.refresh_token, "a".repeat(64));
        assert_eq!(result.principal.memberships.len(), 1);
    }

    #[tokio::test]
    async fn sso_maps_chatwoot_failures_and_audits_bad_credentials() {
        for (failure, expected) in [
            (
                IdentityError::InvalidCredentials,
                IamError::ChatwootCredentialsInvalid,
            ),
            (
                IdentityError::Unavailable("timeout".into()),
                IamError::ChatwootUnavailable,
            ),
            (
                IdentityError::Upstream("500".into()),
                IamError::ChatwootUpstream,
            ),
        ] {
            let mut ports = Ports::new();
            let f = failure.clone();
            ports
                .chatwoot
                .expect_verify()
                .returning(move |_| Err(f.clone()));
            let audited = usize::from(failure == IdentityError::InvalidCredentials);
            ports
                .store
                .expect_record_login_failure()
                .times(audited)
                .returning(|_, _, _| Ok(()));
            ports.store.expect_record_login().never();
            let err = ports
                .service(IamSettings::default())
                .sso(
                    ChatwootCredential::AccessToken("t".into()),
                    None,
                    DeviceInfo::default(),
                    AuditContext::default(),
                )
                .await
                .unwrap_err();
            assert_eq!(err, expected);
        }
    }

    #[tokio::test]
    async fn sso_into_a_foreign_or_suspended_account_is_refused_without_a_session() {
        for account in [3, 2] {
            let mut ports = Ports::new();
            ports.chatwoot.expect_verify().returning(|_| Ok(profile()));
            ports
                .store
                .expect_record_login_failure()
                .times(1)
                .returning(|_, _, _| Ok(()));
            ports.store.expect_record_login().never();
            let err = ports
                .service(IamSettings::default())
                .sso(
                    ChatwootCredential::AccessToken("t".into()),
                    Some(AccountId::new(account)),
                    DeviceInfo::default(),
                    AuditContext::default(),
                )
                .await
                .unwrap_err();
            assert_eq!(err, IamError::NotAMember, "account {account}");
        }
    }

    #[tokio::test]
    async fn refresh_outcomes_map_to_errors() {
        for (outcome, expected) in [
            (
                RotateOutcome::Reused(SessionId::from_uuid(Uuid::nil())),
                IamError::RefreshReused,
            ),
            (RotateOutcome::Unknown, IamError::RefreshInvalid),
            (RotateOutcome::Expired, IamError::RefreshExpired),
            (RotateOutcome::SessionEnded, IamError::SessionExpired),
        ] {
            let mut ports = Ports::new();
            let o = outcome.clone();
            ports
                .store
                .expect_rotate_refresh()
                .returning(move |_| Ok(o.clone()));
            let err = ports
                .service(IamSettings::default())
                .refresh(&"a".repeat(64), AuditContext::default())
                .await
                .unwrap_err();
            assert_eq!(err, expected);
        }
        let ports = Ports::new();
        let err = ports
            .service(IamSettings::default())
            .refresh("short", AuditContext::default())
            .await
            .unwrap_err();
        assert_eq!(err, IamError::RefreshInvalid);
    }

    #[tokio::test]
    async fn refresh_returns_the_deterministic_successor_with_a_grace_window() {
        let mut ports = Ports::new();
        ports
            .store
            .expect_rotate_refresh()
            .withf(|r| r.grace == Duration::seconds(5) && r.successor.hash == vec![2; 32])
            .returning(|_| Ok(RotateOutcome::Replayed(session(false))));
        ports
            .store
            .expect_principal()
            .returning(|_| Ok(Some(Arc::new(principal(Role::Agent)))));
        let result = ports
            .service(IamSettings::default())
            .refresh(&"a".repeat(64), AuditContext::default())
            .await
            .unwrap();
        assert_eq!(result.refresh_token, "b".repeat(64));
    }

    /// The claims of a live access token of user 5 for the nil session.
    fn live_claims() -> AccessClaims {
        AccessClaims {
            user_id: UserId::new(5),
            session_id: SessionId::from_uuid(Uuid::nil()),
            token_id: Uuid::nil(),
            expires_at: now() + Duration::minutes(5),
        }
    }

    #[tokio::test]
    async fn authenticate_uses_what_the_cache_remembers_and_still_checks_the_session() {
        let claims = live_claims();
        let cases: Vec<(SessionRecord, Option<IamError>)> = vec![
            (session(false), None),
            (session(true), Some(IamError::SessionRevoked)),
            (
                SessionRecord {
                    absolute_expires_at: now(),
                    ..session(false)
                },
                Some(IamError::SessionExpired),
            ),
            (
                SessionRecord {
                    user_id: UserId::new(6),
                    ..session(false)
                },
                Some(IamError::TokenInvalid),
            ),
        ];
        for (remembered, expected) in cases {
            let mut ports = Ports::new();
            let c = claims.clone();
            ports
                .access
                .expect_verify()
                .returning(move |_, _| Ok(c.clone()));
            // No expectation for `session` or `principal`: a hit must not reach the database.
            ports
                .store
                .expect_remembered()
                .withf(|s, u| *s == SessionId::from_uuid(Uuid::nil()) && *u == UserId::new(5))
                .returning(move |_, _| {
                    Some((
                        Arc::new(remembered.clone()),
                        Arc::new(principal(Role::Agent)),
                    ))
                });
            let result = ports
                .service(IamSettings::default())
                .authenticate("tok")
                .await;
            match expected {
                None => {
                    let ctx = result.unwrap();
                    assert_eq!(ctx.claims, claims);
                    assert_eq!(ctx.principal.user.id, UserId::new(5));
                }
                Some(err) => assert_eq!(result.unwrap_err(), err),
            }
        }
    }

    #[tokio::test]
    async fn authenticate_refuses_revoked_expired_and_foreign_sessions() {
        let claims = live_claims();
        let cases: Vec<(Option<SessionRecord>, IamError)> = vec![
            (None, IamError::SessionRevoked),
            (Some(session(true)), IamError::SessionRevoked),
            (
                Some(SessionRecord {
                    idle_expires_at: now(),
                    ..session(false)
                }),
                IamError::SessionExpired,
            ),
            (
                Some(SessionRecord {
                    user_id: UserId::new(6),
                    ..session(false)
                }),
                IamError::TokenInvalid,
            ),
        ];
        for (stored, expected) in cases {
            let mut ports = Ports::new();
            let c = claims.clone();
            ports
                .access
                .expect_verify()
                .returning(move |_, _| Ok(c.clone()));
            ports.store.expect_remembered().returning(|_, _| None);
            ports
                .store
                .expect_session()
                .returning(move |_| Ok(stored.clone().map(Arc::new)));
            ports
                .store
                .expect_principal()
                .returning(|_| Ok(Some(Arc::new(principal(Role::Agent)))));
            let err = ports
                .service(IamSettings::default())
                .authenticate("tok")
                .await
                .unwrap_err();
            assert_eq!(err, expected);
        }
        let mut ports = Ports::new();
        ports
            .access
            .expect_verify()
            .returning(|_, _| Err(TokenError::Expired));
        assert_eq!(
            ports
                .service(IamSettings::default())
                .authenticate("tok")
                .await
                .unwrap_err(),
            IamError::TokenExpired
        );
    }

    #[tokio::test]
    async fn scopes_follow_membership_and_policy() {
        let ports = Ports::new();
        let svc = ports.service(IamSettings::default());
        let ctx = |role| AuthContext {
            claims: AccessClaims {
                user_id: UserId::new(5),
                session_id: SessionId::from_uuid(Uuid::nil()),
                token_id: Uuid::nil(),
                expires_at: now(),
            },
            session: Arc::new(session(false)),
            principal: Arc::new(principal(role)),
        };
        let scope = svc
            .tenant_scope(&ctx(Role::Admin), AccountId::new(1), Action::MembersWrite)
            .unwrap();
        assert_eq!(scope.account_id(), AccountId::new(1));
        assert_eq!(scope.role(), Role::Admin);
        assert_eq!(
            svc.tenant_scope(&ctx(Role::Agent), AccountId::new(1), Action::MembersWrite)
                .unwrap_err(),
            IamError::Forbidden
        );
        assert_eq!(
            svc.tenant_scope(&ctx(Role::Admin), AccountId::new(9), Action::MembersRead)
                .unwrap_err(),
            IamError::NotAMember
        );
        assert_eq!(
            svc.platform_scope(&ctx(Role::Admin), Action::PlatformRead)
                .unwrap_err(),
            IamError::Forbidden
        );
    }
}
