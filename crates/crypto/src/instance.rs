//! Instance tokens of the embedded UI: PASETO `v4.local` with the claims `iss`,
//! `aud=whatpro:embed`, `typ=instance`, `sub`, `account_id`, `scopes`, `iat`, `nbf`, `exp`,
//! `jti`; bound to a web origin through the implicit assertion `{"origin":"<origin>"}` (compact
//! JSON); footer `{"kid":"<lid>","typ":"instance"}`.
//!
//! The footer's `typ` is a non-secret hint (the footer is authenticated, not encrypted) that lets
//! the server pick the verifier of a Bearer credential without trial decryption. An instance
//! token never opens as an access token (it has an implicit assertion and another `aud`/`typ`),
//! and an access token is never taken for an instance token (no `typ` in its footer).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use pasetors::Local;
use pasetors::token::UntrustedToken;
use pasetors::version4::{LocalToken, V4};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;
use whatpro_iam::{InstanceClaims, InstanceTokens, ScopeSet, TokenError};
use whatpro_kernel::{AccountId, UserId};

use crate::access::ISSUER;
use crate::keyring::KeyRing;

/// `aud` of instance tokens.
pub const EMBED_AUDIENCE: &str = "whatpro:embed";
/// `typ` of instance tokens, in the claims and in the footer.
pub const INSTANCE_TYPE: &str = "instance";

#[derive(Serialize, Deserialize)]
struct Footer {
    kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

#[derive(Serialize)]
struct Assertion<'a> {
    origin: &'a str,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    typ: String,
    sub: String,
    account_id: i64,
    scopes: Vec<String>,
    iat: String,
    nbf: String,
    exp: String,
    jti: Uuid,
}

/// The implicit assertion binding a token to `origin`: `{"origin":"<origin>"}`.
fn assertion(origin: &str) -> Result<Vec<u8>, TokenError> {
    serde_json::to_vec(&Assertion { origin }).map_err(|e| TokenError::Internal(e.to_string()))
}

fn rfc3339(at: OffsetDateTime) -> Result<String, TokenError> {
    at.format(&Rfc3339)
        .map_err(|e| TokenError::Internal(e.to_string()))
}

fn parse_time(text: &str) -> Result<OffsetDateTime, TokenError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TokenError::Invalid)
}

/// Most verified (token, origin) pairs remembered by one process (emptied when full).
const VERIFIED_CAPACITY: usize = 50_000;

/// Issues and verifies instance tokens with the token key ring (`HUB_TOKEN_KEYS`).
///
/// The embedded UI presents the same token for its whole life, so a successful decryption is
/// remembered per (origin, token): later requests skip the cipher and the claim parsing, and
/// only the time checks run again. Failures are never remembered.
#[derive(Clone)]
pub struct PasetoInstanceTokens {
    keys: KeyRing,
    /// The encoded footer of an instance token for each key of the ring.
    footers: Vec<String>,
    verified: Arc<RwLock<HashMap<(String, String), InstanceClaims>>>,
}

impl std::fmt::Debug for PasetoInstanceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasetoInstanceTokens")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl PasetoInstanceTokens {
    /// Tokens made with the ring's current key; every key of the ring opens them.
    pub fn new(keys: KeyRing) -> Self {
        let footers = keys
            .kids()
            .into_iter()
            .filter_map(|kid| instance_footer(kid).ok())
            .map(|footer| base64url(&footer))
            .collect();
        Self {
            keys,
            footers,
            verified: Arc::default(),
        }
    }

    /// Decrypts and checks everything but time.
    fn decode(&self, token: &str, origin: &str) -> Result<InstanceClaims, TokenError> {
        let untrusted =
            UntrustedToken::<Local, V4>::try_from(token).map_err(|_| TokenError::Malformed)?;
        let footer = footer_of(&untrusted)?;
        if footer.typ.as_deref() != Some(INSTANCE_TYPE) {
            return Err(TokenError::Invalid);
        }
        let key = self.keys.find(&footer.kid).ok_or(TokenError::UnknownKey)?;
        let implicit = assertion(origin)?;
        let trusted = LocalToken::decrypt(
            key,
            &untrusted,
            Some(untrusted.untrusted_footer()),
            Some(&implicit),
        )
        .map_err(|_| TokenError::OriginMismatch)?;
        let claims: Claims =
            serde_json::from_str(trusted.payload()).map_err(|_| TokenError::Invalid)?;
        if claims.iss != ISSUER || claims.aud != EMBED_AUDIENCE || claims.typ != INSTANCE_TYPE {
            return Err(TokenError::Invalid);
        }
        let user: i64 = claims.sub.parse().map_err(|_| TokenError::Invalid)?;
        let scopes = ScopeSet::parse(&claims.scopes).map_err(|_| TokenError::Invalid)?;
        let issued_at = parse_time(&claims.iat)?;
        let not_before = parse_time(&claims.nbf)?;
        let expires_at = parse_time(&claims.exp)?;
        if not_before != issued_at {
            return Err(TokenError::Invalid);
        }
        Ok(InstanceClaims {
            token_id: claims.jti,
            user_id: UserId::new(user),
            account_id: AccountId::new(claims.account_id),
            scopes,
            issued_at,
            expires_at,
            origin: origin.to_owned(),
        })
    }
}

/// `v4.local.` — the header of every token this module reads.
const TOKEN_HEADER: &str = "v4.local.";

/// The footer of an instance token made with key `kid`: `{"kid":"<kid>","typ":"instance"}`.
fn instance_footer(kid: &str) -> Result<Vec<u8>, TokenError> {
    serde_json::to_vec(&Footer {
        kid: kid.to_owned(),
        typ: Some(INSTANCE_TYPE.to_owned()),
    })
    .map_err(|e| TokenError::Internal(e.to_string()))
}

/// Unpadded base64url, as PASETO encodes its parts.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for sextet in sextets.iter().take(chunk.len() + 1) {
            out.push(char::from(ALPHABET[*sextet as usize]));
        }
    }
    out
}

fn footer_of(untrusted: &UntrustedToken<Local, V4>) -> Result<Footer, TokenError> {
    serde_json::from_slice(untrusted.untrusted_footer()).map_err(|_| TokenError::Malformed)
}

impl InstanceTokens for PasetoInstanceTokens {
    fn issue(&self, claims: &InstanceClaims) -> Result<String, TokenError> {
        let body = Claims {
            iss: ISSUER.to_owned(),
            aud: EMBED_AUDIENCE.to_owned(),
            typ: INSTANCE_TYPE.to_owned(),
            sub: claims.user_id.get().to_string(),
            account_id: claims.account_id.get(),
            scopes: claims.scopes.names(),
            iat: rfc3339(claims.issued_at)?,
            nbf: rfc3339(claims.issued_at)?,
            exp: rfc3339(claims.expires_at)?,
            jti: claims.token_id,
        };
        let payload = serde_json::to_vec(&body).map_err(|e| TokenError::Internal(e.to_string()))?;
        let (kid, key) = self.keys.current();
        let footer = instance_footer(kid)?;
        let implicit = assertion(&claims.origin)?;
        LocalToken::encrypt(key, &payload, Some(&footer), Some(&implicit))
            .map_err(|e| TokenError::Internal(e.to_string()))
    }

    fn recognizes(&self, token: &str) -> bool {
        // Every request's Bearer goes through here (access tokens too): compare the encoded
        // footer with the footers this ring makes instead of decoding anything.
        token.starts_with(TOKEN_HEADER)
            && token
                .rsplit_once('.')
                .is_some_and(|(_, footer)| self.footers.iter().any(|f| f == footer))
    }

    fn verify(
        &self,
        token: &str,
        origin: &str,
        now: OffsetDateTime,
    ) -> Result<InstanceClaims, TokenError> {
        let key = (origin.to_owned(), token.to_owned());
        let known = self
            .verified
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        let claims = match known {
            Some(claims) => claims,
            None => {
                let claims = self.decode(token, origin)?;
                let mut verified = self
                    .verified
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if verified.len() >= VERIFIED_CAPACITY {
                    verified.clear();
                }
                verified.insert(key, claims.clone());
                claims
            }
        };
        if now >= claims.expires_at {
            return Err(TokenError::Expired);
        }
        if now < claims.issued_at {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use whatpro_iam::{AccessTokens, Scope, SessionId};

    use super::*;
    use crate::access::PasetoAccessTokens;

    const ORIGIN: &str = "https://hub.example";

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn claims() -> InstanceClaims {
        InstanceClaims {
            token_id: Uuid::now_v7(),
            user_id: UserId::new(5),
            account_id: AccountId::new(1),
            scopes: [Scope::ChatRead, Scope::MembersRead].into_iter().collect(),
            issued_at: now(),
            expires_at: now() + Duration::minutes(15),
            origin: ORIGIN.to_owned(),
        }
    }

    #[test]
    fn tokens_verify_for_their_origin_only() {
        let t = PasetoInstanceTokens::new(KeyRing::generate().unwrap());
        let c = claims();
        let token = t.issue(&c).unwrap();
        assert!(token.starts_with("v4.local."));
        assert!(t.recognizes(&token));
        assert_eq!(t.verify(&token, ORIGIN, now()).unwrap(), c);
        for other in [
            "https://evil.example",
            "http://hub.example",
            "https://hub.example:8443",
            "",
        ] {
            assert_eq!(
                t.verify(&token, other, now()),
                Err(TokenError::OriginMismatch),
                "{other}"
            );
        }
        assert_eq!(
            t.verify(&token, ORIGIN, now() + Duration::minutes(15)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            t.verify(&token, ORIGIN, now() - Duration::seconds(1)),
            Err(TokenError::NotYetValid)
        );
        let other_ring = PasetoInstanceTokens::new(KeyRing::generate().unwrap());
        assert_eq!(
            other_ring.verify(&token, ORIGIN, now()),
            Err(TokenError::UnknownKey)
        );
        assert_eq!(
            t.verify("garbage", ORIGIN, now()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn recognition_compares_encoded_footers_of_every_key_of_the_ring() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        let old = KeyRing::generate().unwrap();
        let new = KeyRing::generate().unwrap();
        let old_token = PasetoInstanceTokens::new(old.clone())
            .issue(&claims())
            .unwrap();
        let rotated = KeyRing::parse(&format!(
            "{},{}",
            new.to_paserk_list(),
            old.to_paserk_list()
        ))
        .unwrap();
        let t = PasetoInstanceTokens::new(rotated);
        assert!(t.recognizes(&old_token), "a token of the old key");
        assert!(t.recognizes(&t.issue(&claims()).unwrap()));
        assert!(t.verify(&old_token, ORIGIN, now()).is_ok());
        let stranger = PasetoInstanceTokens::new(KeyRing::generate().unwrap())
            .issue(&claims())
            .unwrap();
        assert!(
            !t.recognizes(&stranger),
            "unknown keys are not instance tokens of ours"
        );
        for other in ["", "v4.local.", "v4.local.abc", "v2.local.x.y", "whp_a_b"] {
            assert!(!t.recognizes(other), "{other}");
        }
    }

    #[test]
    fn remembered_tokens_still_expire_and_stay_bound_to_their_origin() {
        let t = PasetoInstanceTokens::new(KeyRing::generate().unwrap());
        let token = t.issue(&claims()).unwrap();
        assert!(t.verify(&token, ORIGIN, now()).is_ok());
        assert!(
            t.verify(&token, ORIGIN, now() + Duration::minutes(1))
                .is_ok()
        );
        assert_eq!(
            t.verify(&token, ORIGIN, now() + Duration::minutes(15)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            t.verify(&token, "https://evil.example", now()),
            Err(TokenError::OriginMismatch),
            "remembering for one origin does not open it for another"
        );
        assert_eq!(
            t.verify(&token, "https://evil.example", now()),
            Err(TokenError::OriginMismatch),
            "a failure is never remembered as a success"
        );
    }

    #[test]
    fn the_footer_names_the_key_and_the_type_and_the_assertion_is_compact_json() {
        let keys = KeyRing::generate().unwrap();
        let token = PasetoInstanceTokens::new(keys.clone())
            .issue(&claims())
            .unwrap();
        let untrusted = UntrustedToken::<Local, V4>::try_from(token.as_str()).unwrap();
        let footer = String::from_utf8(untrusted.untrusted_footer().to_vec()).unwrap();
        assert_eq!(
            footer,
            format!("{{\"kid\":\"{}\",\"typ\":\"instance\"}}", keys.kids()[0])
        );
        assert_eq!(
            assertion(ORIGIN).unwrap(),
            br#"{"origin":"https://hub.example"}"#.to_vec()
        );
        // Opened by hand with the documented assertion: the documented claims.
        let (_, key) = keys.current();
        let trusted = LocalToken::decrypt(
            key,
            &untrusted,
            Some(untrusted.untrusted_footer()),
            Some(br#"{"origin":"https://hub.example"}"#),
        )
        .unwrap();
        let payload: serde_json::Value = serde_json::from_str(trusted.payload()).unwrap();
        assert_eq!(payload["aud"], "whatpro:embed");
        assert_eq!(payload["typ"], "instance");
        assert_eq!(payload["sub"], "5");
        assert_eq!(payload["account_id"], 1);
        assert_eq!(
            payload["scopes"],
            serde_json::json!(["chat:read", "members:read"])
        );
        assert_eq!(payload["exp"], "2027-01-15T08:15:00Z");
    }

    #[test]
    fn instance_and_access_tokens_never_stand_in_for_each_other() {
        let keys = KeyRing::generate().unwrap();
        let instance = PasetoInstanceTokens::new(keys.clone());
        let access = PasetoAccessTokens::new(keys);
        let instance_token = instance.issue(&claims()).unwrap();
        assert!(access.verify(&instance_token, now()).is_err());

        let access_token = access
            .issue(UserId::new(5), SessionId::from_uuid(Uuid::now_v7()), now())
            .unwrap()
            .token;
        assert!(!instance.recognizes(&access_token));
        assert_eq!(
            instance.verify(&access_token, ORIGIN, now()),
            Err(TokenError::Invalid)
        );
        assert!(!instance.recognizes("whp_0123_abcd"));
    }
}
