//! Third-party secrets at rest and webhook tokens.
//!
//! [`SecretBox`] seals any secret (a Chatwoot token, provider credentials) as a PASETO
//! `v4.local` token made with the current `HUB_DATA_KEYS` key (footer `{"kid"}`, so every key
//! still configured can open it after a rotation). The `purpose` is the token's implicit
//! assertion: a text sealed for one purpose (say, account 1's Chatwoot connection) cannot be
//! opened as another (account 2's). It implements the inbox domain's `SecretSealer` port.
//!
//! [`HubWebhookTokens`] makes per-instance webhook tokens (`whpw_` + 64 hex characters of
//! randomness) and their SHA-256, the only form stored.

use rand::RngExt;
use sha2::{Digest, Sha256};
use whatpro_inbox::{SealError, SecretSealer, WebhookTokens};

use crate::access::{open_local, seal_local};
use crate::keyring::KeyRing;
use crate::refresh::hex;

/// Prefix of webhook tokens (recognisable in logs and secret scanners).
pub const WEBHOOK_TOKEN_PREFIX: &str = "whpw_";

/// Seals and opens secrets with the data key ring.
#[derive(Clone)]
pub struct SecretBox {
    keys: KeyRing,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("kids", &self.keys.kids())
            .finish()
    }
}

impl SecretBox {
    /// A box over `HUB_DATA_KEYS` (the first key seals; all open).
    pub fn new(data_keys: KeyRing) -> Self {
        Self { keys: data_keys }
    }

    /// Seals `plaintext` (UTF-8 text: tokens, JSON) for `purpose`.
    ///
    /// # Errors
    /// [`SealError`] when encryption fails.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, SealError> {
        seal_local(&self.keys, plaintext, Some(purpose.as_bytes()))
            .map_err(|e| SealError(format!("cannot seal: {e}")))
    }

    /// Opens a text sealed for `purpose` with any key of the ring.
    ///
    /// # Errors
    /// [`SealError`] for another purpose, a key no longer configured or a corrupt text (the
    /// message never contains the text).
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        open_local(&self.keys, sealed, Some(purpose.as_bytes()))
            .map(String::into_bytes)
            .map_err(|e| SealError(format!("cannot open a sealed secret: {e}")))
    }
}

impl SecretSealer for SecretBox {
    fn seal(&self, purpose: &str, plaintext: &[u8]) -> Result<String, SealError> {
        SecretBox::seal(self, purpose, plaintext)
    }

    fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        SecretBox::open(self, purpose, sealed)
    }
}

/// Webhook tokens: 256 random bits, shown once, stored as SHA-256.
#[derive(Debug, Clone, Copy, Default)]
pub struct HubWebhookTokens;

impl WebhookTokens for HubWebhookTokens {
    fn generate(&self) -> (String, Vec<u8>) {
        let mut bytes = [0u8; 32];
        rand::rng().fill(&mut bytes);
        let token = format!("{WEBHOOK_TOKEN_PREFIX}{}", hex(&bytes));
        let hash = self.hash(&token);
        (token, hash)
    }

    fn hash(&self, presented: &str) -> Vec<u8> {
        Sha256::digest(presented.trim().as_bytes()).to_vec()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn seals_and_opens_for_the_same_purpose_only() {
        let sealed_box = SecretBox::new(KeyRing::generate().unwrap());
        let sealed = sealed_box
            .seal("chatwoot:1", b"kZ8yX7wV6uT5sR4qP3oN2mLk")
            .unwrap();
        assert!(sealed.starts_with("v4.local."));
        assert!(!sealed.contains("kZ8y"));
        assert_eq!(
            sealed_box.open("chatwoot:1", &sealed).unwrap(),
            b"kZ8yX7wV6uT5sR4qP3oN2mLk"
        );
        assert!(sealed_box.open("chatwoot:2", &sealed).is_err());
        assert!(sealed_box.open("chatwoot:1", "v4.local.garbage").is_err());
        let other = SecretBox::new(KeyRing::generate().unwrap());
        assert!(other.open("chatwoot:1", &sealed).is_err());
    }

    #[test]
    fn opens_after_a_rotation_while_the_old_key_is_configured() {
        let old = KeyRing::generate().unwrap();
        let sealed = SecretBox::new(old.clone()).seal("p", b"secret").unwrap();
        let new = KeyRing::generate().unwrap();
        let rotated = KeyRing::parse(&format!(
            "{},{}",
            new.to_paserk_list(),
            old.to_paserk_list()
        ))
        .unwrap();
        let rotated_box = SecretBox::new(rotated);
        assert_eq!(rotated_box.open("p", &sealed).unwrap(), b"secret");
        // New secrets are sealed with the new key: the old ring alone cannot open them.
        let fresh = rotated_box.seal("p", b"x").unwrap();
        assert!(SecretBox::new(old).open("p", &fresh).is_err());
    }

    #[test]
    fn webhook_tokens_are_random_and_only_their_hash_matches() {
        let tokens = HubWebhookTokens;
        let (a, hash_a) = tokens.generate();
        let (b, _) = tokens.generate();
        assert_ne!(a, b);
        assert!(a.starts_with(WEBHOOK_TOKEN_PREFIX));
        assert_eq!(a.len(), WEBHOOK_TOKEN_PREFIX.len() + 64);
        assert_eq!(tokens.hash(&a), hash_a);
        assert_ne!(tokens.hash(&b), hash_a);
        assert_eq!(hash_a.len(), 32);
    }
}
