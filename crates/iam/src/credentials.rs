//! The values of machine credentials: API keys (server to server) and instance tokens (the
//! embedded UI).

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;
use whatpro_kernel::{AccountId, UserId};

use crate::model::{ApiKeyId, AuditContext, Principal};
use crate::scope::Actor;
use crate::scopes::ScopeSet;

/// The text every API key starts with.
pub const API_KEY_PREFIX: &str = "whp_";

/// Freshly generated key material: the public lookup prefix and the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial {
    /// Unique, shown in lists, used to find the key.
    pub prefix: String,
    /// Shown once; stored only as an argon2id hash.
    pub secret: String,
}

impl KeyMaterial {
    /// The key as handed to the client: `whp_<prefix>_<secret>`.
    pub fn key(&self) -> String {
        format!("{API_KEY_PREFIX}{}_{}", self.prefix, self.secret)
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A presented API key split into its parts (nothing verified yet).
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    /// The lookup prefix.
    pub prefix: &'a str,
    /// The secret to verify.
    pub secret: &'a str,
}

impl fmt::Debug for PresentedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedKey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Longest prefix and secret accepted (generated ones are 16 and 64 characters).
const MAX_PART_LEN: usize = 128;

impl<'a> PresentedKey<'a> {
    /// Splits `whp_<prefix>_<secret>`; `None` when the text does not have that form (lower-case
    /// letters and digits in each part).
    pub fn parse(text: &'a str) -> Option<Self> {
        let rest = text.strip_prefix(API_KEY_PREFIX)?;
        let (prefix, secret) = rest.split_once('_')?;
        let part_ok = |part: &str| {
            !part.is_empty()
                && part.len() <= MAX_PART_LEN
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        (part_ok(prefix) && part_ok(secret)).then_some(Self { prefix, secret })
    }
}

/// A stored API key. `Debug` never shows the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Id.
    pub id: ApiKeyId,
    /// The account it works in (only there).
    pub account_id: AccountId,
    /// Lookup prefix (unique).
    pub prefix: String,
    /// argon2id PHC string of the secret.
    pub secret_hash: String,
    /// Label.
    pub name: String,
    /// What it may do (within its creator's current role).
    pub scopes: ScopeSet,
    /// Whose role it acts with.
    pub created_by: UserId,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last use (updated at most once a minute).
    pub last_used_at: Option<OffsetDateTime>,
    /// Stops working at this time, when set.
    pub expires_at: Option<OffsetDateTime>,
    /// Revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// Last rotation of its secret.
    pub rotated_at: Option<OffsetDateTime>,
}

impl fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("prefix", &self.prefix)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("created_by", &self.created_by)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// An API key to store, with the facts of its `api_key.created` audit row.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The key (without `last_used_at`, `revoked_at`, `rotated_at`).
    pub record: ApiKeyRecord,
    /// Who created it (a user, or an API key acting for its creator).
    pub actor: Actor,
    /// For the audit row.
    pub audit: AuditContext,
}

/// What an admin asks for when creating a key (validated by the service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRequest {
    /// 1-100 characters.
    pub name: String,
    /// Known scope names, at least one, each allowed to the creator.
    pub scopes: Vec<String>,
    /// In the future, when set.
    pub expires_at: Option<OffsetDateTime>,
}

/// A created (or rotated) key: its record and the full key, shown only this once.
#[derive(Clone)]
pub struct IssuedApiKey {
    /// The stored key.
    pub record: ApiKeyRecord,
    /// `whp_<prefix>_<secret>`.
    pub key: String,
}

impl fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// One page of an account's API keys, by id.
#[derive(Debug, Clone)]
pub struct ApiKeyPage {
    /// The keys.
    pub keys: Vec<ApiKeyRecord>,
    /// The last id of this page when there are more.
    pub next_after: Option<ApiKeyId>,
}

/// What a rotation or revocation found.
#[derive(Debug, Clone)]
pub enum KeyChange {
    /// Done (for a revocation of a revoked key: nothing changed, the record as it is).
    Done(ApiKeyRecord),
    /// No such key in the scope's account.
    NotFound,
    /// The key is revoked (rotation only).
    Revoked,
}

/// Why a key use was refused after the key was verified, for the `api_key.denied` audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDenial {
    /// The scope the request needed (`None` when no scope can grant it).
    pub required_scope: Option<String>,
    /// The refusal code (`insufficient_scope`, `forbidden`, `token_account_mismatch`).
    pub reason: &'static str,
    /// The account the request was for.
    pub account_id: AccountId,
    /// For the audit row.
    pub audit: AuditContext,
    /// When.
    pub at: OffsetDateTime,
}

/// A verified API key with its creator as they are now.
#[derive(Debug, Clone)]
pub struct ApiKeyAuth {
    /// The key.
    pub key: ApiKeyRecord,
    /// Its creator's user and usable memberships.
    pub principal: Arc<Principal>,
}

/// The claims of an instance token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceClaims {
    /// `jti`.
    pub token_id: Uuid,
    /// `sub`.
    pub user_id: UserId,
    /// `account_id`.
    pub account_id: AccountId,
    /// `scopes`.
    pub scopes: ScopeSet,
    /// `iat` (and `nbf`).
    pub issued_at: OffsetDateTime,
    /// `exp`.
    pub expires_at: OffsetDateTime,
    /// The origin bound through the implicit assertion.
    pub origin: String,
}

/// What a member asks for (validated by the service; the origin already parsed by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTokenRequest {
    /// The account the token works in.
    pub account_id: AccountId,
    /// Known scope names; `None` asks for every scope the member's role allows.
    pub scopes: Option<Vec<String>>,
    /// Lifetime in minutes (default 15, at most 60).
    pub ttl_minutes: Option<u32>,
    /// The normalised web origin (`scheme://host[:port]`) the token is bound to.
    pub origin: String,
}

/// A stored instance token (every issued token is recorded, for revocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceTokenRecord {
    /// `jti`.
    pub token_id: Uuid,
    /// The account.
    pub account_id: AccountId,
    /// The user.
    pub user_id: UserId,
    /// The bound origin.
    pub origin: String,
    /// The scopes.
    pub scopes: ScopeSet,
    /// Issued.
    pub created_at: OffsetDateTime,
    /// Expiry.
    pub expires_at: OffsetDateTime,
    /// Revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// A freshly issued instance token.
#[derive(Clone)]
pub struct IssuedInstanceToken {
    /// The PASETO.
    pub token: String,
    /// Its claims.
    pub claims: InstanceClaims,
}

impl fmt::Debug for IssuedInstanceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedInstanceToken")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

/// A verified instance token with its user as they are now.
#[derive(Debug, Clone)]
pub struct InstanceAuth {
    /// The claims.
    pub claims: InstanceClaims,
    /// The user and usable memberships.
    pub principal: Arc<Principal>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_keys_split_into_prefix_and_secret() {
        let key = PresentedKey::parse("whp_0a1b2c_deadbeef").unwrap();
        assert_eq!((key.prefix, key.secret), ("0a1b2c", "deadbeef"));
        for bad in [
            "",
            "whp_",
            "whp__x",
            "whp_x_",
            "whp_ab",
            "wha_ab_cd",
            "whp_AB_cd",
            "whp_ab_c-d",
            "whp_ab_cd_ef",
            "v4.local.abc",
        ] {
            assert!(PresentedKey::parse(bad).is_none(), "{bad}");
        }
        let long = format!("whp_ab_{}", "a".repeat(129));
        assert!(PresentedKey::parse(&long).is_none());
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let material = KeyMaterial {
            prefix: "0a1b".into(),
            secret: "s3cr3t".into(),
        };
        assert_eq!(material.key(), "whp_0a1b_s3cr3t");
        assert!(!format!("{material:?}").contains("s3cr3t"));
    }
}
