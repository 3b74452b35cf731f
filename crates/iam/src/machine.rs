//! Machine credentials: API keys (server to server) and instance tokens (the embedded UI).
//!
//! Both act for a user — an API key for its creator, an instance token for the member who asked
//! for it — with that user's *current* role in the credential's one account, narrowed by the
//! credential's scopes: a request passes only when the role allows the action and a scope
//! grants it (403 `forbidden` / `insufficient_scope` otherwise).
//!
//! API-key secrets are stored as argon2id hashes. Verifying one costs tens of milliseconds, so a
//! successful verification is remembered for a short while, keyed by a SHA-256 fingerprint of
//! the presented key, together with the exact hash it matched. A later request with the same key
//! re-reads the key's record (from the store's coherent cache) and skips argon2 only while the
//! record still carries that hash: a rotation (new hash) or a revocation seen by the store takes
//! effect at once, whichever instance did it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use whatpro_kernel::{AccountId, Limit};

use crate::credentials::{
    ApiKeyAuth, ApiKeyPage, ApiKeyRecord, ApiKeyRequest, InstanceAuth, InstanceClaims,
    InstanceTokenRecord, InstanceTokenRequest, IssuedApiKey, IssuedInstanceToken, KeyChange,
    KeyDenial, NewApiKey, PresentedKey,
};
use crate::error::IamError;
use crate::model::{AccountStatus, ApiKeyId, AuditContext, ChatwootCredential, Principal};
use crate::policy::{Action, Role};
use crate::ports::{HashError, IdentityError, TokenError};
use crate::scope::{Actor, TenantScope};
use crate::scopes::{Scope, ScopeSet};
use crate::service::{AuthContext, IamService};

/// Longest API-key name, in characters.
const MAX_KEY_NAME: usize = 100;
/// Most remembered verifications (the memory is emptied when full).
const VERIFIED_CAPACITY: usize = 50_000;
/// Most remembered `last_used_at` writes (emptied when full).
const TOUCHED_CAPACITY: usize = 50_000;
/// Attempts at finding a free key prefix.
const PREFIX_ATTEMPTS: usize = 3;

/// A remembered successful verification.
struct Verified {
    key: ApiKeyId,
    hash: String,
    at: OffsetDateTime,
}

/// What one instance remembers about API keys.
#[derive(Default)]
pub(crate) struct MachineState {
    /// Fingerprint of a presented key -> the key and the hash it matched.
    verified: Mutex<HashMap<[u8; 32], Verified>>,
    /// When this instance last wrote a key's `last_used_at`.
    touched: Mutex<HashMap<ApiKeyId, OffsetDateTime>>,
}

impl MachineState {
    fn recall(
        &self,
        fingerprint: &[u8; 32],
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Option<(ApiKeyId, String)> {
        let verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        verified
            .get(fingerprint)
            .filter(|v| now - v.at < ttl && now >= v.at)
            .map(|v| (v.key, v.hash.clone()))
    }

    fn remember(&self, fingerprint: [u8; 32], key: ApiKeyId, hash: String, now: OffsetDateTime) {
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(fingerprint, Verified { key, hash, at: now });
    }

    fn forget(&self, key: ApiKeyId) {
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, v| v.key != key);
    }

    /// Whether `last_used_at` of `key` should be written now (and notes it as written).
    fn claim_touch(&self, key: ApiKeyId, now: OffsetDateTime, interval: Duration) -> bool {
        let mut touched = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
        if touched
            .get(&key)
            .is_some_and(|at| now - *at < interval && now >= *at)
        {
            return false;
        }
        if touched.len() >= TOUCHED_CAPACITY {
            touched.clear();
        }
        touched.insert(key, now);
        true
    }

    fn release_touch(&self, key: ApiKeyId) {
        self.touched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    }

    /// Number of remembered verifications (for tests).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn hash_failed(err: HashError) -> IamError {
    IamError::Internal(err.to_string())
}

fn unknown_scope(name: &str) -> IamError {
    let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    IamError::UnknownScope(format!(
        "`{name}` is not a scope (known scopes: {})",
        known.join(", ")
    ))
}

/// Parses requested scope names: at least one, all known.
fn requested_scopes(names: &[String]) -> Result<ScopeSet, IamError> {
    if names.is_empty() {
        return Err(IamError::Invalid(
            "scopes must name at least one scope".to_owned(),
        ));
    }
    ScopeSet::parse(names).map_err(|e| unknown_scope(&e.0))
}

/// Checks that `scope` may do `action`: 403 `forbidden` when the role may not,
/// `insufficient_scope` when only the credential's scopes stand in the way.
pub(crate) fn require(scope: &TenantScope, action: Action) -> Result<(), IamError> {
    if scope.can(action) {
        Ok(())
    } else if scope.role().allows(action) {
        Err(IamError::InsufficientScope)
    } else {
        Err(IamError::Forbidden)
    }
}

/// A validated instance-token request.
struct InstancePlan {
    ttl: Duration,
    scopes: Option<ScopeSet>,
}

impl IamService {
    // -----------------------------------------------------------------------------------------
    // API keys: management.

    /// Creates an API key in the scope's account for the acting user (an admin). Its scopes
    /// must be known, at least one, and each grantable by the caller (the caller's role, and
    /// the caller's own scopes when the caller is itself a key or an instance token).
    ///
    /// # Errors
    /// `Forbidden` / `InsufficientScope` (the caller may not manage keys, or asks for scopes
    /// beyond what it may grant); `Invalid` (name, empty scopes, past expiry); `UnknownScope`;
    /// storage errors.
    pub async fn create_api_key(
        &self,
        scope: &TenantScope,
        request: ApiKeyRequest,
        audit: AuditContext,
    ) -> Result<IssuedApiKey, IamError> {
        require(scope, Action::ApiKeysWrite)?;
        let name = request.name.trim();
        let length = name.chars().count();
        if length == 0 || length > MAX_KEY_NAME || name.chars().any(char::is_control) {
            return Err(IamError::Invalid(format!(
                "name must be 1-{MAX_KEY_NAME} characters without control characters"
            )));
        }
        let scopes = requested_scopes(&request.scopes)?;
        let now = self.clock.now();
        if request.expires_at.is_some_and(|at| at <= now) {
            return Err(IamError::Invalid(
                "expires_at must be in the future".to_owned(),
            ));
        }
        if !scopes.is_subset(scope.grantable()) {
            return Err(IamError::InsufficientScope);
        }
        let created_by = scope.actor().user_id().ok_or(IamError::Forbidden)?;
        let id = ApiKeyId::from_uuid(self.ids.new_id());
        for _ in 0..PREFIX_ATTEMPTS {
            let material = self.hasher.generate();
            let secret_hash = self
                .hasher
                .hash(&material.secret)
                .await
                .map_err(hash_failed)?;
            let record = ApiKeyRecord {
                id,
                account_id: scope.account_id(),
                prefix: material.prefix.clone(),
                secret_hash,
                name: name.to_owned(),
                scopes,
                created_by,
                created_at: now,
                last_used_at: None,
                expires_at: request.expires_at,
                revoked_at: None,
                rotated_at: None,
            };
            let new = NewApiKey {
                record: record.clone(),
                actor: *scope.actor(),
                audit: audit.clone(),
            };
            if self.credentials.create_api_key(&new).await? {
                return Ok(IssuedApiKey {
                    record,
                    key: material.key(),
                });
            }
        }
        Err(IamError::Internal(
            "no free API key prefix after several attempts".to_owned(),
        ))
    }

    /// The scope's account's keys, by id (never their secrets).
    ///
    /// # Errors
    /// `Forbidden` / `InsufficientScope`; storage errors.
    pub async fn list_api_keys(
        &self,
        scope: &TenantScope,
        after: Option<ApiKeyId>,
        limit: Limit,
    ) -> Result<ApiKeyPage, IamError> {
        require(scope, Action::ApiKeysRead)?;
        Ok(self.credentials.list_api_keys(scope, after, limit).await?)
    }

    /// Gives a live key of the scope's account a new secret; the old one stops working at once
    /// (on every instance: the stored hash changes and the change is announced). A caller that
    /// is itself scoped may rotate only keys whose scopes it could grant.
    ///
    /// # Errors
    /// `ApiKeyNotFound` (not in this account), `ApiKeyAlreadyRevoked`, `Forbidden` /
    /// `InsufficientScope`, storage errors.
    pub async fn rotate_api_key(
        &self,
        scope: &TenantScope,
        id: ApiKeyId,
        audit: AuditContext,
    ) -> Result<IssuedApiKey, IamError> {
        require(scope, Action::ApiKeysWrite)?;
        let current = self
            .credentials
            .api_key(id)
            .await?
            .filter(|k| k.account_id == scope.account_id())
            .ok_or(IamError::ApiKeyNotFound)?;
        if current.revoked_at.is_some() {
            return Err(IamError::ApiKeyAlreadyRevoked);
        }
        if !current.scopes.is_subset(scope.grantable()) {
            return Err(IamError::InsufficientScope);
        }
        let secret = self.hasher.generate().secret;
        let hash = self.hasher.hash(&secret).await.map_err(hash_failed)?;
        let now = self.clock.now();
        let change = self
            .credentials
            .rotate_api_key(scope, id, &hash, &audit, now)
            .await;
        self.machine.forget(id);
        match change? {
            KeyChange::Done(record) => Ok(IssuedApiKey {
                key: format!(
                    "{}{}_{secret}",
                    crate::credentials::API_KEY_PREFIX,
                    record.prefix
                ),
                record,
            }),
            KeyChange::NotFound => Err(IamError::ApiKeyNotFound),
            KeyChange::Revoked => Err(IamError::ApiKeyAlreadyRevoked),
        }
    }

    /// Revokes a key of the scope's account (at once, on every instance). Revoking a revoked
    /// key changes nothing and succeeds.
    ///
    /// # Errors
    /// `ApiKeyNotFound`, `Forbidden` / `InsufficientScope`, storage errors.
    pub async fn revoke_api_key(
        &self,
        scope: &TenantScope,
        id: ApiKeyId,
        audit: AuditContext,
    ) -> Result<(), IamError> {
        require(scope, Action::ApiKeysWrite)?;
        let change = self
            .credentials
            .revoke_api_key(scope, id, &audit, self.clock.now())
            .await;
        self.machine.forget(id);
        match change? {
            KeyChange::Done(_) => Ok(()),
            KeyChange::NotFound | KeyChange::Revoked => Err(IamError::ApiKeyNotFound),
        }
    }

    // -----------------------------------------------------------------------------------------
    // API keys: use.

    /// Verifies a presented API key (`whp_<prefix>_<secret>`): it must exist, match, be neither
    /// revoked nor expired, and its creator must still exist. A repeat of a recently verified
    /// key skips argon2 while the key's stored hash is unchanged. Writes `last_used_at` at most
    /// once per key and interval.
    ///
    /// # Errors
    /// `ApiKeyInvalid` (malformed, unknown prefix, wrong or rotated-away secret),
    /// `ApiKeyRevoked`, `ApiKeyExpired`, `NotAMember` (creator gone), storage errors.
    pub async fn authenticate_api_key(&self, presented: &str) -> Result<ApiKeyAuth, IamError> {
        let parsed = PresentedKey::parse(presented).ok_or(IamError::ApiKeyInvalid)?;
        let now = self.clock.now();
        let fingerprint = self.hasher.fingerprint(presented);
        let mut found = None;
        if let Some((id, hash)) =
            self.machine
                .recall(&fingerprint, now, self.settings.api_key_verify_ttl)
        {
            found = self
                .credentials
                .api_key(id)
                .await?
                .filter(|k| k.secret_hash == hash && k.prefix == parsed.prefix);
        }
        let key = match found {
            Some(key) => key,
            None => {
                let key = self
                    .credentials
                    .api_key_by_prefix(parsed.prefix)
                    .await?
                    .ok_or(IamError::ApiKeyInvalid)?;
                let matches = self
                    .hasher
                    .verify(parsed.secret, &key.secret_hash)
                    .await
                    .map_err(hash_failed)?;
                if !matches {
                    return Err(IamError::ApiKeyInvalid);
                }
                self.machine
                    .remember(fingerprint, key.id, key.secret_hash.clone(), now);
                key
            }
        };
        if key.revoked_at.is_some() {
            return Err(IamError::ApiKeyRevoked);
        }
        if key.expires_at.is_some_and(|at| now >= at) {
            return Err(IamError::ApiKeyExpired);
        }
        let principal = self
            .store
            .principal(key.created_by)
            .await?
            .ok_or(IamError::NotAMember)?;
        if self
            .machine
            .claim_touch(key.id, now, self.settings.api_key_touch_interval)
            && self.credentials.touch_api_key(key.id, now).await.is_err()
        {
            // Not worth failing the request over; try again on the next one.
            self.machine.release_touch(key.id);
        }
        Ok(ApiKeyAuth { key, principal })
    }

    /// The scope of a verified key for `account`, if the key belongs to it, its creator is
    /// still an active member there, the creator's current role allows `action` and the key's
    /// scopes grant it. Refusals of a verified key are audited (`api_key.denied`).
    ///
    /// # Errors
    /// `TokenAccountMismatch`, `NotAMember`, `Forbidden`, `InsufficientScope`, storage errors.
    pub async fn api_key_scope(
        &self,
        auth: &ApiKeyAuth,
        account: AccountId,
        action: Action,
        audit: &AuditContext,
    ) -> Result<TenantScope, IamError> {
        let key = &auth.key;
        let error = if key.account_id == account {
            let role = auth
                .principal
                .membership(account)
                .ok_or(IamError::NotAMember)?
                .role;
            if !role.allows(action) {
                IamError::Forbidden
            } else if !key.scopes.allows(action) {
                IamError::InsufficientScope
            } else {
                let actor = Actor::ApiKey {
                    key_id: key.id,
                    created_by: key.created_by,
                };
                return Ok(TenantScope::scoped(account, actor, role, key.scopes));
            }
        } else {
            IamError::TokenAccountMismatch
        };
        let denial = KeyDenial {
            required_scope: Scope::for_action(action).map(|s| s.as_str().to_owned()),
            reason: error_code(&error),
            account_id: account,
            audit: audit.clone(),
            at: self.clock.now(),
        };
        self.credentials.record_api_key_denial(key, &denial).await?;
        Err(error)
    }

    // -----------------------------------------------------------------------------------------
    // Instance tokens.

    fn plan_instance_token(
        &self,
        request: &InstanceTokenRequest,
    ) -> Result<InstancePlan, IamError> {
        let max = self.settings.instance_token_max_ttl;
        let ttl = match request.ttl_minutes {
            None => self.settings.instance_token_default_ttl,
            Some(minutes) => {
                let ttl = Duration::minutes(i64::from(minutes));
                if minutes == 0 || ttl > max {
                    return Err(IamError::Invalid(format!(
                        "ttl_minutes must be between 1 and {}",
                        max.whole_minutes()
                    )));
                }
                ttl
            }
        };
        if request.origin.trim().is_empty() {
            return Err(IamError::Invalid("origin is required".to_owned()));
        }
        let scopes = request
            .scopes
            .as_deref()
            .map(requested_scopes)
            .transpose()?;
        Ok(InstancePlan { ttl, scopes })
    }

    /// Issues an instance token to a signed-in user (access token) who is an active member of
    /// the requested account.
    ///
    /// # Errors
    /// `Invalid` (TTL, origin, empty scopes), `UnknownScope`, `NotAMember`,
    /// `InsufficientScope` (scopes above the role), storage errors.
    pub async fn issue_instance_token(
        &self,
        ctx: &AuthContext,
        request: InstanceTokenRequest,
        audit: AuditContext,
    ) -> Result<IssuedInstanceToken, IamError> {
        let plan = self.plan_instance_token(&request)?;
        self.issue_for(&ctx.principal, plan, request, &audit).await
    }

    /// Issues an instance token to the user of a Chatwoot dashboard session, verified with
    /// Chatwoot exactly as at SSO (no Hub session is created); memberships are refreshed from
    /// the profile first.
    ///
    /// # Errors
    /// As [`IamService::issue_instance_token`], plus `ChatwootCredentialsInvalid`,
    /// `ChatwootUnavailable`, `ChatwootUpstream`.
    pub async fn issue_instance_token_with_chatwoot(
        &self,
        credential: ChatwootCredential,
        request: InstanceTokenRequest,
        audit: AuditContext,
    ) -> Result<IssuedInstanceToken, IamError> {
        let plan = self.plan_instance_token(&request)?;
        let profile = match self.chatwoot.verify(&credential).await {
            Ok(profile) => profile,
            Err(IdentityError::InvalidCredentials) => {
                return Err(IamError::ChatwootCredentialsInvalid);
            }
            Err(other) => return Err(other.into()),
        };
        let member = profile
            .accounts
            .iter()
            .any(|m| m.account_id == request.account_id && m.status == AccountStatus::Active);
        let super_admin = self.is_super_admin(&profile.email);
        let principal = self.store.sync_memberships(&profile, super_admin).await?;
        if !member {
            return Err(IamError::NotAMember);
        }
        self.issue_for(&principal, plan, request, &audit).await
    }

    async fn issue_for(
        &self,
        principal: &Principal,
        plan: InstancePlan,
        request: InstanceTokenRequest,
        audit: &AuditContext,
    ) -> Result<IssuedInstanceToken, IamError> {
        let membership = principal
            .membership(request.account_id)
            .ok_or(IamError::NotAMember)?;
        let role = membership.role;
        if !role.allows(Action::InstanceTokensCreate) {
            return Err(IamError::Forbidden);
        }
        let grantable = ScopeSet::for_role(role);
        let scopes = match plan.scopes {
            None => grantable,
            Some(asked) if asked.is_subset(grantable) => asked,
            Some(_) => return Err(IamError::InsufficientScope),
        };
        let now = self.clock.now();
        let claims = InstanceClaims {
            token_id: self.ids.new_id(),
            user_id: principal.user.id,
            account_id: request.account_id,
            scopes,
            issued_at: now,
            expires_at: now + plan.ttl,
            origin: request.origin,
        };
        let token = self.instance.issue(&claims)?;
        let record = InstanceTokenRecord {
            token_id: claims.token_id,
            account_id: claims.account_id,
            user_id: claims.user_id,
            origin: claims.origin.clone(),
            scopes,
            created_at: now,
            expires_at: claims.expires_at,
            revoked_at: None,
        };
        self.credentials
            .record_instance_token(&record, audit)
            .await?;
        Ok(IssuedInstanceToken { token, claims })
    }

    /// Whether a Bearer credential is an instance token (by its authenticated footer's `typ`;
    /// no decryption).
    pub fn is_instance_token(&self, token: &str) -> bool {
        self.instance.recognizes(token)
    }

    /// Verifies an instance token for a request from `origin` (the request's `Origin`, or the
    /// Hub's own origin for same-origin requests without one): bound to that origin, not
    /// expired, not revoked, its user still an active member of its account.
    ///
    /// # Errors
    /// `TokenInvalid`, `TokenOriginMismatch` (other or no origin), `TokenExpired`,
    /// `TokenRevoked`, `NotAMember`, storage errors.
    pub async fn authenticate_instance_token(
        &self,
        token: &str,
        origin: Option<&str>,
    ) -> Result<InstanceAuth, IamError> {
        if !self.instance.recognizes(token) {
            return Err(IamError::TokenInvalid);
        }
        let origin = origin.ok_or(IamError::TokenOriginMismatch)?;
        let claims = self
            .instance
            .verify(token, origin, self.clock.now())
            .map_err(|e| match e {
                TokenError::OriginMismatch => IamError::TokenOriginMismatch,
                TokenError::Expired => IamError::TokenExpired,
                TokenError::Internal(detail) => IamError::Internal(detail),
                TokenError::Malformed
                | TokenError::UnknownKey
                | TokenError::Invalid
                | TokenError::NotYetValid => IamError::TokenInvalid,
            })?;
        let live = self
            .credentials
            .instance_token(claims.token_id)
            .await?
            .is_some_and(|r| {
                r.revoked_at.is_none()
                    && r.account_id == claims.account_id
                    && r.user_id == claims.user_id
            });
        if !live {
            return Err(IamError::TokenRevoked);
        }
        let principal = self
            .store
            .principal(claims.user_id)
            .await?
            .filter(|p| p.membership(claims.account_id).is_some())
            .ok_or(IamError::NotAMember)?;
        Ok(InstanceAuth { claims, principal })
    }

    /// The scope of a verified instance token for `account`.
    ///
    /// # Errors
    /// `TokenAccountMismatch`, `NotAMember`, `Forbidden`, `InsufficientScope`.
    pub fn instance_scope(
        &self,
        auth: &InstanceAuth,
        account: AccountId,
        action: Action,
    ) -> Result<TenantScope, IamError> {
        let claims = &auth.claims;
        if claims.account_id != account {
            return Err(IamError::TokenAccountMismatch);
        }
        let role = auth
            .principal
            .membership(account)
            .ok_or(IamError::NotAMember)?
            .role;
        let scope = TenantScope::scoped(
            account,
            Actor::InstanceToken {
                user_id: claims.user_id,
                token_id: claims.token_id,
            },
            role,
            claims.scopes,
        );
        require(&scope, action)?;
        Ok(scope)
    }

    /// Revokes an instance token: its own user or an admin of its account may; for anyone else
    /// it does not exist. Revoking a revoked token succeeds and changes nothing.
    ///
    /// # Errors
    /// `InstanceTokenNotFound`, storage errors.
    pub async fn revoke_instance_token(
        &self,
        ctx: &AuthContext,
        token_id: Uuid,
        audit: AuditContext,
    ) -> Result<(), IamError> {
        let record = self
            .credentials
            .instance_token(token_id)
            .await?
            .ok_or(IamError::InstanceTokenNotFound)?;
        let own = record.user_id == ctx.claims.user_id;
        let admin = ctx
            .principal
            .membership(record.account_id)
            .is_some_and(|m| m.role == Role::Admin);
        if !own && !admin {
            return Err(IamError::InstanceTokenNotFound);
        }
        let found = self
            .credentials
            .revoke_instance_token(token_id, ctx.claims.user_id, &audit, self.clock.now())
            .await?;
        if found {
            Ok(())
        } else {
            Err(IamError::InstanceTokenNotFound)
        }
    }
}

fn error_code(error: &IamError) -> &'static str {
    use whatpro_kernel::Classify;
    error.code()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use whatpro_kernel::{FixedClock, UserId};

    use super::*;
    use crate::credentials::KeyMaterial;
    use crate::model::SessionId;
    use crate::service::IamSettings;
    use crate::service::tests::{Ports, now, principal, profile, session};

    const KEY: &str = "whp_0123456789abcdef_secret";

    fn record(scopes: &[Scope]) -> ApiKeyRecord {
        ApiKeyRecord {
            id: ApiKeyId::from_uuid(Uuid::from_u128(7)),
            account_id: AccountId::new(1),
            prefix: "0123456789abcdef".into(),
            secret_hash: "$argon2id$v=19$hash-1".into(),
            name: "ci".into(),
            scopes: scopes.iter().copied().collect(),
            created_by: UserId::new(5),
            created_at: now(),
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
            rotated_at: None,
        }
    }

    fn fingerprints(ports: &mut Ports) {
        ports.hasher.expect_fingerprint().returning(|text| {
            let mut out = [0u8; 32];
            for (i, b) in text.bytes().enumerate() {
                out[i % 32] ^= b;
            }
            out
        });
    }

    fn auth(role: Role, scopes: &[Scope]) -> ApiKeyAuth {
        ApiKeyAuth {
            key: record(scopes),
            principal: Arc::new(principal(role)),
        }
    }

    fn ctx(role: Role) -> AuthContext {
        AuthContext {
            claims: crate::model::AccessClaims {
                user_id: UserId::new(5),
                session_id: SessionId::from_uuid(Uuid::nil()),
                token_id: Uuid::nil(),
                expires_at: now(),
            },
            session: Arc::new(session(false)),
            principal: Arc::new(principal(role)),
        }
    }

    fn scope_of(role: Role, scopes: Option<&[Scope]>) -> TenantScope {
        let actor = Actor::User {
            user_id: UserId::new(5),
            session_id: SessionId::from_uuid(Uuid::nil()),
        };
        match scopes {
            None => TenantScope::new(AccountId::new(1), actor, role),
            Some(s) => {
                TenantScope::scoped(AccountId::new(1), actor, role, s.iter().copied().collect())
            }
        }
    }

    #[tokio::test]
    async fn a_repeated_key_is_verified_with_argon2_once() {
        let mut ports = Ports::new();
        fingerprints(&mut ports);
        ports
            .credentials
            .expect_api_key_by_prefix()
            .times(1)
            .returning(|_| Ok(Some(record(&[Scope::MembersRead]))));
        ports
            .credentials
            .expect_api_key()
            .times(2)
            .returning(|_| Ok(Some(record(&[Scope::MembersRead]))));
        // The counting hasher: exactly one argon2 verification for three uses.
        ports
            .hasher
            .expect_verify()
            .times(1)
            .returning(|secret, _| Ok(secret == "secret"));
        ports
            .store
            .expect_principal()
            .returning(|_| Ok(Some(Arc::new(principal(Role::Admin)))));
        ports
            .credentials
            .expect_touch_api_key()
            .times(1)
            .returning(|_, _| Ok(()));
        let svc = ports.service(IamSettings::default());
        for _ in 0..3 {
            let auth = svc.authenticate_api_key(KEY).await.unwrap();
            assert_eq!(auth.key.prefix, "0123456789abcdef");
        }
        assert_eq!(svc.machine.remembered(), 1);
    }

    #[tokio::test]
    async fn a_changed_hash_or_an_expired_memory_goes_back_to_argon2() {
        let mut ports = Ports::new();
        fingerprints(&mut ports);
        let rotated = || ApiKeyRecord {
            secret_hash: "$argon2id$v=19$hash-2".into(),
            ..record(&[])
        };
        let mut by_prefix = 0;
        ports
            .credentials
            .expect_api_key_by_prefix()
            .times(2)
            .returning(move |_| {
                by_prefix += 1;
                Ok(Some(if by_prefix == 1 {
                    record(&[])
                } else {
                    rotated()
                }))
            });
        // The memory names hash-1 but the store now has hash-2 (rotated on any instance).
        ports
            .credentials
            .expect_api_key()
            .times(1)
            .returning(move |_| Ok(Some(rotated())));
        ports
            .hasher
            .expect_verify()
            .times(2)
            .returning(|_, hash| Ok(hash.ends_with("hash-1")));
        ports
            .store
            .expect_principal()
            .returning(|_| Ok(Some(Arc::new(principal(Role::Admin)))));
        ports
            .credentials
            .expect_touch_api_key()
            .returning(|_, _| Ok(()));
        let svc = ports.service(IamSettings::default());
        svc.authenticate_api_key(KEY).await.unwrap();
        assert_eq!(
            svc.authenticate_api_key(KEY).await.unwrap_err(),
            IamError::ApiKeyInvalid,
            "the rotated-away secret is dead"
        );

        // A remembered verification older than the TTL is not used.
        let clock = Arc::new(FixedClock::new(now()));
        let mut ports = Ports::new();
        fingerprints(&mut ports);
        ports
            .credentials
            .expect_api_key_by_prefix()
            .times(2)
            .returning(|_| Ok(Some(record(&[]))));
        ports.credentials.expect_api_key().never();
        ports
            .hasher
            .expect_verify()
            .times(2)
            .returning(|_, _| Ok(true));
        ports
            .store
            .expect_principal()
            .returning(|_| Ok(Some(Arc::new(principal(Role::Admin)))));
        ports
            .credentials
            .expect_touch_api_key()
            .times(2)
            .returning(|_, _| Ok(()));
        let svc = ports.service_with_clock(IamSettings::default(), Arc::clone(&clock));
        svc.authenticate_api_key(KEY).await.unwrap();
        clock.advance(Duration::seconds(61));
        svc.authenticate_api_key(KEY).await.unwrap();
    }

    #[tokio::test]
    async fn bad_keys_are_refused_with_distinct_codes() {
        // Malformed: nothing is looked up.
        let ports = Ports::new();
        let svc = ports.service(IamSettings::default());
        for bad in ["", "whp_", "v4.local.x", "whp_AB_cd"] {
            assert_eq!(
                svc.authenticate_api_key(bad).await.unwrap_err(),
                IamError::ApiKeyInvalid
            );
        }

        let cases: Vec<(Option<ApiKeyRecord>, bool, IamError)> = vec![
            (None, true, IamError::ApiKeyInvalid),
            (Some(record(&[])), false, IamError::ApiKeyInvalid),
            (
                Some(ApiKeyRecord {
                    revoked_at: Some(now()),
                    ..record(&[])
                }),
                true,
                IamError::ApiKeyRevoked,
            ),
            (
                Some(ApiKeyRecord {
                    expires_at: Some(now()),
                    ..record(&[])
                }),
                true,
                IamError::ApiKeyExpired,
            ),
        ];
        for (stored, secret_ok, expected) in cases {
            let mut ports = Ports::new();
            fingerprints(&mut ports);
            ports
                .credentials
                .expect_api_key_by_prefix()
                .returning(move |_| Ok(stored.clone()));
            ports
                .hasher
                .expect_verify()
                .returning(move |_, _| Ok(secret_ok));
            ports.credentials.expect_touch_api_key().never();
            let svc = ports.service(IamSettings::default());
            assert_eq!(svc.authenticate_api_key(KEY).await.unwrap_err(), expected);
            if !secret_ok {
                assert_eq!(svc.machine.remembered(), 0, "failures are not remembered");
            }
        }
    }

    #[tokio::test]
    async fn a_key_acts_with_its_creators_current_role_narrowed_by_its_scopes() {
        let mut ports = Ports::new();
        ports
            .credentials
            .expect_record_api_key_denial()
            .times(3)
            .withf(|_, d| d.audit.request_id == "req")
            .returning(|_, _| Ok(()));
        let svc = ports.service(IamSettings::default());
        let audit = AuditContext {
            request_id: "req".into(),
            ip: None,
        };
        let one = AccountId::new(1);

        let scope = svc
            .api_key_scope(
                &auth(Role::Admin, &[Scope::MembersRead]),
                one,
                Action::MembersRead,
                &audit,
            )
            .await
            .unwrap();
        assert_eq!(scope.role(), Role::Admin);
        assert!(matches!(scope.actor(), Actor::ApiKey { .. }));
        assert!(!scope.can(Action::MembersWrite), "a scope narrows the role");

        // Audited refusals: out of scope, beyond the (demoted) creator's role, another account.
        let refusals = [
            (
                auth(Role::Admin, &[Scope::MembersRead]),
                one,
                Action::MembersWrite,
                IamError::InsufficientScope,
            ),
            (
                auth(Role::Agent, &[Scope::MembersWrite]),
                one,
                Action::MembersWrite,
                IamError::Forbidden,
            ),
            (
                auth(Role::Admin, &[Scope::MembersRead]),
                AccountId::new(9),
                Action::MembersRead,
                IamError::TokenAccountMismatch,
            ),
        ];
        for (auth, account, action, expected) in refusals {
            assert_eq!(
                svc.api_key_scope(&auth, account, action, &audit)
                    .await
                    .unwrap_err(),
                expected
            );
        }

        // The creator left the account: refused, not audited as a scope problem.
        let mut gone = auth(Role::Admin, &[Scope::MembersRead]);
        Arc::make_mut(&mut gone.principal).memberships.clear();
        assert_eq!(
            svc.api_key_scope(&gone, one, Action::MembersRead, &audit)
                .await
                .unwrap_err(),
            IamError::NotAMember
        );
    }

    #[tokio::test]
    async fn key_creation_validates_and_never_exceeds_the_caller() {
        let mut ports = Ports::new();
        ports.hasher.expect_generate().returning(|| KeyMaterial {
            prefix: "0123456789abcdef".into(),
            secret: "s".repeat(64),
        });
        ports
            .hasher
            .expect_hash()
            .returning(|_| Ok("$argon2id$v=19$h".into()));
        let mut attempts = 0;
        ports
            .credentials
            .expect_create_api_key()
            .times(2)
            .withf(|new| new.record.scopes == ScopeSet::parse(&["members:read"]).unwrap())
            .returning(move |_| {
                attempts += 1;
                Ok(attempts > 1)
            });
        let svc = ports.service(IamSettings::default());
        let request = |name: &str, scopes: &[&str], expires_at| ApiKeyRequest {
            name: name.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            expires_at,
        };
        let admin = scope_of(Role::Admin, None);
        let issued = svc
            .create_api_key(
                &admin,
                request(" ci ", &["members:read"], None),
                AuditContext::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            issued.key,
            format!("whp_0123456789abcdef_{}", "s".repeat(64))
        );
        assert_eq!(issued.record.name, "ci");
        assert_eq!(issued.record.created_by, UserId::new(5));

        let cases = [
            (
                admin.clone(),
                request("", &["members:read"], None),
                "validation_failed",
            ),
            (
                admin.clone(),
                request(&"x".repeat(101), &["members:read"], None),
                "validation_failed",
            ),
            (admin.clone(), request("ci", &[], None), "validation_failed"),
            (
                admin.clone(),
                request("ci", &["members:read", "root"], None),
                "unknown_scope",
            ),
            (
                admin.clone(),
                request("ci", &["members:read"], Some(now())),
                "validation_failed",
            ),
            (
                scope_of(Role::Agent, None),
                request("ci", &["chat:read"], None),
                "forbidden",
            ),
            (
                scope_of(Role::Admin, Some(&[Scope::ApiKeysWrite])),
                request("ci", &["members:write"], None),
                "insufficient_scope",
            ),
            (
                scope_of(Role::Admin, Some(&[Scope::ApiKeysRead])),
                request("ci", &["api_keys:read"], None),
                "insufficient_scope",
            ),
        ];
        for (scope, request, code) in cases {
            let err = svc
                .create_api_key(&scope, request.clone(), AuditContext::default())
                .await
                .unwrap_err();
            assert_eq!(error_code(&err), code, "{request:?}");
        }
    }

    #[tokio::test]
    async fn a_scoped_caller_cannot_rotate_a_key_with_more_scopes_than_its_own() {
        let mut ports = Ports::new();
        ports
            .credentials
            .expect_api_key()
            .returning(|_| Ok(Some(record(&[Scope::MembersWrite]))));
        ports.credentials.expect_rotate_api_key().never();
        let svc = ports.service(IamSettings::default());
        let err = svc
            .rotate_api_key(
                &scope_of(Role::Admin, Some(&[Scope::ApiKeysWrite])),
                ApiKeyId::from_uuid(Uuid::from_u128(7)),
                AuditContext::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err, IamError::InsufficientScope);
    }

    fn token_request(scopes: Option<&[&str]>, ttl: Option<u32>) -> InstanceTokenRequest {
        InstanceTokenRequest {
            account_id: AccountId::new(1),
            scopes: scopes.map(|s| s.iter().map(|n| (*n).to_owned()).collect()),
            ttl_minutes: ttl,
            origin: "https://hub.example".into(),
        }
    }

    #[tokio::test]
    async fn instance_tokens_are_bounded_by_ttl_known_scopes_and_the_role() {
        let mut ports = Ports::new();
        ports
            .instance
            .expect_issue()
            .returning(|_| Ok("v4.local.t".into()));
        ports
            .credentials
            .expect_record_instance_token()
            .times(3)
            .returning(|_, _| Ok(()));
        let svc = ports.service(IamSettings::default());
        let audit = AuditContext::default;

        let issued = svc
            .issue_instance_token(&ctx(Role::Viewer), token_request(None, None), audit())
            .await
            .unwrap();
        assert_eq!(issued.claims.scopes, ScopeSet::for_role(Role::Viewer));
        assert!(
            issued.claims.scopes.iter().all(Scope::is_read),
            "viewers get reads only"
        );
        assert_eq!(issued.claims.expires_at, now() + Duration::minutes(15));
        let issued = svc
            .issue_instance_token(
                &ctx(Role::Agent),
                token_request(Some(&["chat:write"]), Some(60)),
                audit(),
            )
            .await
            .unwrap();
        assert_eq!(issued.claims.expires_at, now() + Duration::minutes(60));
        assert_eq!(issued.claims.origin, "https://hub.example");
        svc.issue_instance_token(
            &ctx(Role::Admin),
            token_request(Some(&["api_keys:write"]), Some(1)),
            audit(),
        )
        .await
        .unwrap();

        let cases = [
            (
                Role::Agent,
                token_request(None, Some(61)),
                "validation_failed",
            ),
            (
                Role::Agent,
                token_request(None, Some(0)),
                "validation_failed",
            ),
            (
                Role::Agent,
                token_request(Some(&[]), None),
                "validation_failed",
            ),
            (
                Role::Agent,
                token_request(Some(&["chat:read", "chat:admin"]), None),
                "unknown_scope",
            ),
            (
                Role::Viewer,
                token_request(Some(&["chat:write"]), None),
                "insufficient_scope",
            ),
            (
                Role::Agent,
                token_request(Some(&["members:write"]), None),
                "insufficient_scope",
            ),
            (
                Role::Agent,
                InstanceTokenRequest {
                    account_id: AccountId::new(9),
                    ..token_request(None, None)
                },
                "not_a_member",
            ),
            (
                Role::Agent,
                InstanceTokenRequest {
                    origin: " ".into(),
                    ..token_request(None, None)
                },
                "validation_failed",
            ),
        ];
        for (role, request, code) in cases {
            let err = svc
                .issue_instance_token(&ctx(role), request.clone(), audit())
                .await
                .unwrap_err();
            assert_eq!(error_code(&err), code, "{role} {request:?}");
        }
    }

    #[tokio::test]
    async fn the_chatwoot_session_path_syncs_memberships_and_needs_an_active_membership() {
        let mut ports = Ports::new();
        ports.chatwoot.expect_verify().returning(|_| Ok(profile()));
        ports
            .store
            .expect_sync_memberships()
            .times(2)
            .returning(|_, _| Ok(principal(Role::Admin)));
        ports
            .instance
            .expect_issue()
            .returning(|_| Ok("v4.local.t".into()));
        ports
            .credentials
            .expect_record_instance_token()
            .times(1)
            .returning(|_, _| Ok(()));
        let svc = ports.service(IamSettings::default());
        let credential = || ChatwootCredential::Session {
            access_token: "a".into(),
            client: "c".into(),
            uid: "u".into(),
        };
        svc.issue_instance_token_with_chatwoot(
            credential(),
            token_request(None, None),
            AuditContext::default(),
        )
        .await
        .unwrap();
        // Account 2 is suspended in the profile.
        let err = svc
            .issue_instance_token_with_chatwoot(
                credential(),
                InstanceTokenRequest {
                    account_id: AccountId::new(2),
                    ..token_request(None, None)
                },
                AuditContext::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err, IamError::NotAMember);
        // Bad input is refused before Chatwoot is asked.
        let err = svc
            .issue_instance_token_with_chatwoot(
                credential(),
                token_request(None, Some(61)),
                AuditContext::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, IamError::Invalid(_)));
    }

    /// What the verifier says, what the store holds, the request's origin, the expected error.
    type VerifyCase = (
        Result<InstanceClaims, TokenError>,
        Option<InstanceTokenRecord>,
        Option<&'static str>,
        IamError,
    );

    fn claims(scopes: &[Scope]) -> InstanceClaims {
        InstanceClaims {
            token_id: Uuid::from_u128(9),
            user_id: UserId::new(5),
            account_id: AccountId::new(1),
            scopes: scopes.iter().copied().collect(),
            issued_at: now(),
            expires_at: now() + Duration::minutes(15),
            origin: "https://hub.example".into(),
        }
    }

    fn stored(revoked: bool) -> InstanceTokenRecord {
        InstanceTokenRecord {
            token_id: Uuid::from_u128(9),
            account_id: AccountId::new(1),
            user_id: UserId::new(5),
            origin: "https://hub.example".into(),
            scopes: ScopeSet::EMPTY,
            created_at: now(),
            expires_at: now() + Duration::minutes(15),
            revoked_at: revoked.then(now),
        }
    }

    #[tokio::test]
    async fn instance_tokens_are_checked_for_origin_expiry_revocation_and_membership() {
        let cases: Vec<VerifyCase> = vec![
            (
                Ok(claims(&[])),
                Some(stored(false)),
                None,
                IamError::TokenOriginMismatch,
            ),
            (
                Err(TokenError::OriginMismatch),
                Some(stored(false)),
                Some("https://x"),
                IamError::TokenOriginMismatch,
            ),
            (
                Err(TokenError::Expired),
                Some(stored(false)),
                Some("https://x"),
                IamError::TokenExpired,
            ),
            (
                Err(TokenError::Invalid),
                Some(stored(false)),
                Some("https://x"),
                IamError::TokenInvalid,
            ),
            (
                Ok(claims(&[])),
                Some(stored(true)),
                Some("https://x"),
                IamError::TokenRevoked,
            ),
            (
                Ok(claims(&[])),
                None,
                Some("https://x"),
                IamError::TokenRevoked,
            ),
        ];
        for (verdict, record, origin, expected) in cases {
            let mut ports = Ports::new();
            ports.instance.expect_recognizes().returning(|_| true);
            ports
                .instance
                .expect_verify()
                .returning(move |_, _, _| verdict.clone());
            ports
                .credentials
                .expect_instance_token()
                .returning(move |_| Ok(record.clone()));
            ports
                .store
                .expect_principal()
                .returning(|_| Ok(Some(Arc::new(principal(Role::Agent)))));
            let svc = ports.service(IamSettings::default());
            assert_eq!(
                svc.authenticate_instance_token("t", origin)
                    .await
                    .unwrap_err(),
                expected
            );
        }

        // Valid, but the user left the account.
        let mut ports = Ports::new();
        ports.instance.expect_recognizes().returning(|_| true);
        ports
            .instance
            .expect_verify()
            .returning(|_, _, _| Ok(claims(&[])));
        ports
            .credentials
            .expect_instance_token()
            .returning(|_| Ok(Some(stored(false))));
        ports.store.expect_principal().returning(|_| {
            let mut p = principal(Role::Agent);
            p.memberships.clear();
            Ok(Some(Arc::new(p)))
        });
        let svc = ports.service(IamSettings::default());
        assert_eq!(
            svc.authenticate_instance_token("t", Some("https://hub.example"))
                .await
                .unwrap_err(),
            IamError::NotAMember
        );

        // Not an instance token at all (an access token or an API key).
        let mut ports = Ports::new();
        ports.instance.expect_recognizes().returning(|_| false);
        let svc = ports.service(IamSettings::default());
        assert_eq!(
            svc.authenticate_instance_token("v4.local.x", Some("https://hub.example"))
                .await
                .unwrap_err(),
            IamError::TokenInvalid
        );
    }

    #[tokio::test]
    async fn instance_scopes_need_the_account_the_role_and_the_scope() {
        let svc = Ports::new().service(IamSettings::default());
        let auth = InstanceAuth {
            claims: claims(&[Scope::MembersRead, Scope::MembersWrite]),
            principal: Arc::new(principal(Role::Agent)),
        };
        let scope = svc
            .instance_scope(&auth, AccountId::new(1), Action::MembersRead)
            .unwrap();
        assert!(matches!(scope.actor(), Actor::InstanceToken { .. }));
        assert_eq!(scope.actor().user_id(), Some(UserId::new(5)));
        for (account, action, expected) in [
            (9, Action::MembersRead, IamError::TokenAccountMismatch),
            (1, Action::MembersWrite, IamError::Forbidden),
            (1, Action::ChatRead, IamError::InsufficientScope),
        ] {
            assert_eq!(
                svc.instance_scope(&auth, AccountId::new(account), action)
                    .unwrap_err(),
                expected
            );
        }
    }

    #[tokio::test]
    async fn only_the_tokens_user_or_an_admin_of_its_account_may_revoke_it() {
        let mut ports = Ports::new();
        ports.credentials.expect_instance_token().returning(|_| {
            Ok(Some(InstanceTokenRecord {
                user_id: UserId::new(77),
                ..stored(false)
            }))
        });
        ports
            .credentials
            .expect_revoke_instance_token()
            .times(1)
            .returning(|_, by, _, _| Ok(by == UserId::new(5)));
        let svc = ports.service(IamSettings::default());
        let jti = Uuid::from_u128(9);
        assert_eq!(
            svc.revoke_instance_token(&ctx(Role::Agent), jti, AuditContext::default())
                .await
                .unwrap_err(),
            IamError::InstanceTokenNotFound
        );
        svc.revoke_instance_token(&ctx(Role::Admin), jti, AuditContext::default())
            .await
            .unwrap();
    }
}
