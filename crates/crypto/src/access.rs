//! Access tokens: PASETO `v4.local`, footer `{"kid":"<lid>"}`, no implicit assertion.

use pasetors::Local;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use pasetors::token::UntrustedToken;
use pasetors::version4::{LocalToken, V4};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use whatpro_iam::{AccessClaims, AccessTokens, IssuedAccessToken, SessionId, TokenError};
use whatpro_kernel::UserId;

use crate::keyring::KeyRing;

/// `iss` of every Hub token.
pub const ISSUER: &str = "whatpro-hub";
/// `aud` of access tokens.
pub const ACCESS_AUDIENCE: &str = "whatpro:api";
/// `typ` of access tokens.
const ACCESS_TYPE: &str = "access";
/// Lifetime of an access token.
pub const ACCESS_TTL: Duration = Duration::minutes(15);

#[derive(Serialize, Deserialize)]
pub(crate) struct Footer {
    pub(crate) kid: String,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    sid: Uuid,
    typ: String,
    iat: String,
    nbf: String,
    exp: String,
    jti: Uuid,
}

/// Issues and verifies access tokens with the token key ring.
#[derive(Debug, Clone)]
pub struct PasetoAccessTokens {
    keys: KeyRing,
    ttl: Duration,
    /// Tokens already decrypted and checked, with their claims: clients present the same token
    /// for up to 15 minutes, so the cipher and claim parsing run once per token, not per
    /// request. Only the time checks run on a hit. Bounded: cleared when full.
    verified: Arc<RwLock<VerifiedTokens>>,
}

/// Verified tokens and their claims, hashed with a per-process random seed (foldhash: the
/// ~350-byte token is hashed on every request, SipHash was a visible share of it). Only tokens
/// that decrypted are stored, so callers cannot choose the keys.
type VerifiedTokens = HashMap<String, (AccessClaims, OffsetDateTime), foldhash::fast::RandomState>;

/// Most tokens remembered by one process (about 40 MB at worst).
const VERIFIED_CAPACITY: usize = 100_000;

impl PasetoAccessTokens {
    /// Tokens that live [`ACCESS_TTL`].
    pub fn new(keys: KeyRing) -> Self {
        Self::with_ttl(keys, ACCESS_TTL)
    }

    /// Tokens with another lifetime (tests of expiry).
    pub fn with_ttl(keys: KeyRing, ttl: Duration) -> Self {
        Self {
            keys,
            ttl,
            verified: Arc::default(),
        }
    }

    /// Decrypts and checks everything but time; returns the claims and `nbf`.
    fn decode(&self, token: &str) -> Result<(AccessClaims, OffsetDateTime), TokenError> {
        let payload = open_local(&self.keys, token, None)?;
        let claims: Claims = serde_json::from_str(&payload).map_err(|_| TokenError::Invalid)?;
        if claims.iss != ISSUER || claims.aud != ACCESS_AUDIENCE || claims.typ != ACCESS_TYPE {
            return Err(TokenError::Invalid);
        }
        let user: i64 = claims.sub.parse().map_err(|_| TokenError::Invalid)?;
        let expires_at = parse_time(&claims.exp)?;
        let not_before = parse_time(&claims.nbf)?;
        parse_time(&claims.iat)?;
        let access = AccessClaims {
            user_id: UserId::new(user),
            session_id: SessionId::from_uuid(claims.sid),
            token_id: claims.jti,
            expires_at,
        };
        Ok((access, not_before))
    }
}

fn rfc3339(at: OffsetDateTime) -> Result<String, TokenError> {
    at.format(&Rfc3339)
        .map_err(|e| TokenError::Internal(e.to_string()))
}

fn parse_time(text: &str) -> Result<OffsetDateTime, TokenError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TokenError::Invalid)
}

/// Decrypts a `v4.local` token made with one of `keys`, returning its payload.
pub(crate) fn open_local(
    keys: &KeyRing,
    token: &str,
    implicit: Option<&[u8]>,
) -> Result<String, TokenError> {
    let untrusted =
        UntrustedToken::<Local, V4>::try_from(token).map_err(|_| TokenError::Malformed)?;
    let footer: Footer =
        serde_json::from_slice(untrusted.untrusted_footer()).map_err(|_| TokenError::Malformed)?;
    let key = keys.find(&footer.kid).ok_or(TokenError::UnknownKey)?;
    let trusted = LocalToken::decrypt(
        key,
        &untrusted,
        Some(untrusted.untrusted_footer()),
        implicit,
    )
    .map_err(|_| TokenError::Invalid)?;
    Ok(trusted.payload().to_owned())
}

/// Encrypts a payload with the ring's current key, footer `{"kid"}`.
pub(crate) fn seal_local(
    keys: &KeyRing,
    payload: &[u8],
    implicit: Option<&[u8]>,
) -> Result<String, TokenError> {
    let (kid, key) = keys.current();
    let footer = serde_json::to_vec(&Footer {
        kid: kid.to_owned(),
    })
    .map_err(|e| TokenError::Internal(e.to_string()))?;
    LocalToken::encrypt(key, payload, Some(&footer), implicit)
        .map_err(|e| TokenError::Internal(e.to_string()))
}

impl AccessTokens for PasetoAccessTokens {
    fn issue(
        &self,
        user: UserId,
        session: SessionId,
        now: OffsetDateTime,
    ) -> Result<IssuedAccessToken, TokenError> {
        let token_id = Uuid::now_v7();
        let expires_at = now + self.ttl;
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: ACCESS_AUDIENCE.to_owned(),
            sub: user.get().to_string(),
            sid: session.as_uuid(),
            typ: ACCESS_TYPE.to_owned(),
            iat: rfc3339(now)?,
            nbf: rfc3339(now)?,
            exp: rfc3339(expires_at)?,
            jti: token_id,
        };
        let payload =
            serde_json::to_vec(&claims).map_err(|e| TokenError::Internal(e.to_string()))?;
        let token = seal_local(&self.keys, &payload, None)?;
        Ok(IssuedAccessToken {
            token,
            expires_at,
            token_id,
        })
    }

    fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, TokenError> {
        let known = self
            .verified
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned();
        let (claims, not_before) = match known {
            Some(hit) => hit,
            None => {
                let decoded = self.decode(token)?;
                let mut verified = self
                    .verified
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                if verified.len() >= VERIFIED_CAPACITY {
                    verified.clear();
                }
                verified.insert(token.to_owned(), decoded.clone());
                decoded
            }
        };
        if now >= claims.expires_at {
            return Err(TokenError::Expired);
        }
        if now < not_before {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> PasetoAccessTokens {
        PasetoAccessTokens::new(KeyRing::generate().unwrap())
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn sid() -> SessionId {
        SessionId::from_uuid(Uuid::now_v7())
    }

    #[test]
    fn issued_tokens_verify_with_their_claims() {
        let t = tokens();
        let s = sid();
        let issued = t.issue(UserId::new(5), s, now()).unwrap();
        assert!(issued.token.starts_with("v4.local."));
        let claims = t
            .verify(&issued.token, now() + Duration::minutes(14))
            .unwrap();
        assert_eq!(claims.user_id, UserId::new(5));
        assert_eq!(claims.session_id, s);
        assert_eq!(claims.token_id, issued.token_id);
        assert_eq!(claims.expires_at, now() + ACCESS_TTL);
    }

    #[test]
    fn remembered_tokens_still_expire_and_tampered_ones_are_not_remembered() {
        let t = tokens();
        let issued = t.issue(UserId::new(5), sid(), now()).unwrap();
        assert!(t.verify(&issued.token, now()).is_ok());
        assert!(
            t.verify(&issued.token, now() + Duration::minutes(1))
                .is_ok()
        );
        assert_eq!(
            t.verify(&issued.token, now() + ACCESS_TTL),
            Err(TokenError::Expired)
        );
        let tampered = format!("{}x", issued.token);
        assert!(t.verify(&tampered, now()).is_err());
        assert!(
            t.verify(&tampered, now()).is_err(),
            "a failure is never cached as success"
        );
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_refused() {
        let t = tokens();
        let issued = t.issue(UserId::new(5), sid(), now()).unwrap();
        assert_eq!(
            t.verify(&issued.token, now() + ACCESS_TTL),
            Err(TokenError::Expired)
        );
        assert_eq!(
            t.verify(&issued.token, now() - Duration::seconds(1)),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn tampered_truncated_foreign_and_unknown_key_tokens_are_refused() {
        let t = tokens();
        let token = t.issue(UserId::new(5), sid(), now()).unwrap().token;
        // Flip one character of the encrypted part.
        let mut tampered = token.clone().into_bytes();
        let i = 20;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(t.verify(&tampered, now()), Err(TokenError::Invalid));
        assert!(t.verify(&token[..token.len() - 30], now()).is_err());
        assert_eq!(t.verify("v2.local.AAAA", now()), Err(TokenError::Malformed));
        assert_eq!(t.verify("not a token", now()), Err(TokenError::Malformed));
        assert_eq!(t.verify("", now()), Err(TokenError::Malformed));
        // Made with a key we do not hold.
        let other = tokens().issue(UserId::new(5), sid(), now()).unwrap().token;
        assert_eq!(t.verify(&other, now()), Err(TokenError::UnknownKey));
    }

    #[test]
    fn a_rotated_ring_still_accepts_tokens_of_the_old_key() {
        let old = KeyRing::generate().unwrap();
        let new = KeyRing::generate().unwrap();
        let issued = PasetoAccessTokens::new(old.clone())
            .issue(UserId::new(1), sid(), now())
            .unwrap();
        let rotated = KeyRing::parse(&format!(
            "{},{}",
            new.to_paserk_list(),
            old.to_paserk_list()
        ))
        .unwrap();
        assert!(
            PasetoAccessTokens::new(rotated)
                .verify(&issued.token, now())
                .is_ok()
        );
    }

    #[test]
    fn tokens_of_another_type_or_audience_are_refused() {
        let keys = KeyRing::generate().unwrap();
        let t = PasetoAccessTokens::new(keys.clone());
        let forge = |aud: &str, typ: &str| {
            let claims = serde_json::json!({
                "iss": ISSUER, "aud": aud, "sub": "5", "sid": Uuid::now_v7(), "typ": typ,
                "iat": rfc3339(now()).unwrap(), "nbf": rfc3339(now()).unwrap(),
                "exp": rfc3339(now() + Duration::minutes(5)).unwrap(), "jti": Uuid::now_v7(),
            });
            seal_local(&keys, claims.to_string().as_bytes(), None).unwrap()
        };
        assert!(
            t.verify(&forge(ACCESS_AUDIENCE, ACCESS_TYPE), now())
                .is_ok()
        );
        assert_eq!(
            t.verify(&forge("whatpro:embed", "instance"), now()),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            t.verify(&forge(ACCESS_AUDIENCE, "instance"), now()),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            t.verify(&forge("other", ACCESS_TYPE), now()),
            Err(TokenError::Invalid)
        );
        // An implicit assertion (as instance tokens carry) makes it a different token.
        let with_assertion = {
            let claims = serde_json::json!({"iss": ISSUER});
            seal_local(
                &keys,
                claims.to_string().as_bytes(),
                Some(b"{\"origin\":\"https://x\"}"),
            )
            .unwrap()
        };
        assert_eq!(t.verify(&with_assertion, now()), Err(TokenError::Invalid));
    }
}
