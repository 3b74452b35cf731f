//! Refresh tokens and sealed Chatwoot credentials.
//!
//! A refresh token is 32 random bytes, hex-encoded; only its SHA-256 is stored. Its successor is
//! HMAC-SHA256(k, token) with `k` derived from the current token key, so a client repeating a
//! refresh within the grace window gets the very same successor while the Hub stores no
//! plaintext. (If the token keys rotate inside that 5-second window, the repeat counts as a
//! reuse; rotation is rare and announced.)

use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use whatpro_iam::{ChatwootCredential, RefreshTokens};

use crate::access::{open_local, seal_local};
use crate::keyring::KeyRing;

/// Implicit assertion binding sealed credentials to their purpose.
const SEAL_PURPOSE: &[u8] = b"whatpro:sealed:chatwoot-credential";
/// Length of a refresh token in hex characters.
const TOKEN_HEX_LEN: usize = 64;

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum SealedCredential {
    AccessToken {
        token: String,
    },
    Session {
        access_token: String,
        client: String,
        uid: String,
    },
}

/// The `RefreshTokens` port over the token ring (successors) and the data ring (sealing).
#[derive(Clone)]
pub struct HubRefreshTokens {
    successor_key: [u8; 32],
    data_keys: KeyRing,
}

impl std::fmt::Debug for HubRefreshTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubRefreshTokens").finish_non_exhaustive()
    }
}

impl HubRefreshTokens {
    /// Derives the successor key from the current token key.
    pub fn new(token_keys: &KeyRing, data_keys: KeyRing) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"whatpro refresh successor v1\0");
        hasher.update(token_keys.current().1.as_bytes());
        Self {
            successor_key: hasher.finalize().into(),
            data_keys,
        }
    }

    fn is_token(text: &str) -> bool {
        text.len() == TOKEN_HEX_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn sha256(text: &str) -> Vec<u8> {
    Sha256::digest(text.as_bytes()).to_vec()
}

impl RefreshTokens for HubRefreshTokens {
    fn generate(&self) -> (String, Vec<u8>) {
        let mut bytes = [0u8; 32];
        rand::rng().fill(&mut bytes);
        let token = hex(&bytes);
        let hash = sha256(&token);
        (token, hash)
    }

    fn successor(&self, presented: &str) -> Option<(String, Vec<u8>)> {
        if !Self::is_token(presented) {
            return None;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.successor_key).ok()?;
        mac.update(presented.as_bytes());
        let token = hex(&mac.finalize().into_bytes());
        let hash = sha256(&token);
        Some((token, hash))
    }

    fn hash(&self, presented: &str) -> Option<Vec<u8>> {
        Self::is_token(presented).then(|| sha256(presented))
    }

    fn seal(&self, credential: &ChatwootCredential) -> Option<String> {
        let sealed = match credential {
            ChatwootCredential::AccessToken(token) => SealedCredential::AccessToken {
                token: token.clone(),
            },
            ChatwootCredential::Session {
                access_token,
                client,
                uid,
            } => SealedCredential::Session {
                access_token: access_token.clone(),
                client: client.clone(),
                uid: uid.clone(),
            },
        };
        let payload = serde_json::to_vec(&sealed).ok()?;
        seal_local(&self.data_keys, &payload, Some(SEAL_PURPOSE)).ok()
    }

    fn open(&self, sealed: &str) -> Option<ChatwootCredential> {
        let payload = open_local(&self.data_keys, sealed, Some(SEAL_PURPOSE)).ok()?;
        Some(match serde_json::from_str(&payload).ok()? {
            SealedCredential::AccessToken { token } => ChatwootCredential::AccessToken(token),
            SealedCredential::Session {
                access_token,
                client,
                uid,
            } => ChatwootCredential::Session {
                access_token,
                client,
                uid,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> HubRefreshTokens {
        HubRefreshTokens::new(&KeyRing::generate().unwrap(), KeyRing::generate().unwrap())
    }

    #[test]
    fn generated_tokens_are_256_bit_hex_and_hash_consistently() {
        let t = tokens();
        let (a, hash) = t.generate();
        let (b, _) = t.generate();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(t.hash(&a), Some(hash.clone()));
        assert_eq!(hash.len(), 32);
    }

    #[test]
    fn successors_are_deterministic_per_key_and_distinct_from_the_parent() {
        let t = tokens();
        let (token, _) = t.generate();
        let (s1, h1) = t.successor(&token).unwrap();
        let (s2, h2) = t.successor(&token).unwrap();
        assert_eq!((s1.clone(), h1.clone()), (s2, h2));
        assert_ne!(s1, token);
        assert_eq!(t.hash(&s1), Some(h1));
        // Another deployment's key gives another successor.
        assert_ne!(tokens().successor(&token).unwrap().0, s1);
    }

    #[test]
    fn malformed_refresh_tokens_are_refused() {
        let t = tokens();
        for bad in ["", "abc", &"g".repeat(64), &"A".repeat(64), &"a".repeat(65)] {
            assert_eq!(t.hash(bad), None, "{bad}");
            assert!(t.successor(bad).is_none());
        }
    }

    #[test]
    fn credentials_seal_and_open_and_do_not_show_in_the_sealed_text() {
        let t = tokens();
        for credential in [
            ChatwootCredential::AccessToken("kZ8yX7wV6uT5sR4qP3oN2mLk".to_owned()),
            ChatwootCredential::Session {
                access_token: "tok".into(),
                client: "cli".into(),
                uid: "a@b.c".into(),
            },
        ] {
            let sealed = t.seal(&credential).unwrap();
            assert!(!sealed.contains("kZ8yX7wV6uT5sR4qP3oN2mLk"));
            assert_eq!(t.open(&sealed), Some(credential));
        }
        let sealed = t
            .seal(&ChatwootCredential::AccessToken("x".into()))
            .unwrap();
        assert_eq!(
            tokens().open(&sealed),
            None,
            "another data key cannot open it"
        );
    }
}
