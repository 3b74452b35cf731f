//! API key material and argon2id hashing: the `whatpro_iam::SecretHasher` port.
//!
//! argon2id (the crate's defaults: 19 MiB, 2 passes, 1 lane) runs on Tokio's blocking pool, and
//! at most a few hashes run at once (one permit per core, at least two), so a burst of
//! verifications can neither stall the async workers nor allocate memory without bound.

use std::sync::Arc;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use async_trait::async_trait;
use rand::RngExt;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use whatpro_iam::{HashError, KeyMaterial, SecretHasher};

use crate::refresh::hex;

/// Random bytes of a key prefix (16 hex characters).
const PREFIX_BYTES: usize = 8;
/// Random bytes of a key secret (64 hex characters, 256 bits).
const SECRET_BYTES: usize = 32;

/// argon2id over Tokio's blocking pool, with bounded parallelism.
#[derive(Clone)]
pub struct Argon2SecretHasher {
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Argon2SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2SecretHasher")
            .field("parallel", &self.permits.available_permits())
            .finish()
    }
}

impl Default for Argon2SecretHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Argon2SecretHasher {
    /// At most one hash per core at a time (at least two).
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self {
            permits: Arc::new(Semaphore::new(cores.max(2))),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| HashError(format!("no hashing permit: {e}")))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError(format!("hashing task failed: {e}")))
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(buf.as_mut_slice());
    hex(&buf)
}

#[async_trait]
impl SecretHasher for Argon2SecretHasher {
    fn generate(&self) -> KeyMaterial {
        KeyMaterial {
            prefix: random_hex(PREFIX_BYTES),
            secret: random_hex(SECRET_BYTES),
        }
    }

    fn fingerprint(&self, presented: &str) -> [u8; 32] {
        Sha256::digest(presented.as_bytes()).into()
    }

    async fn hash(&self, secret: &str) -> Result<String, HashError> {
        let secret = secret.to_owned();
        self.run(move || {
            Argon2::default()
                .hash_password(secret.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| HashError(e.to_string()))
        })
        .await?
    }

    async fn verify(&self, secret: &str, hash: &str) -> Result<bool, HashError> {
        let (secret, hash) = (secret.to_owned(), hash.to_owned());
        self.run(move || {
            Argon2::default()
                .verify_password(secret.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_that_verify_only_their_secret() {
        let hasher = Argon2SecretHasher::new();
        let material = hasher.generate();
        assert_eq!(material.prefix.len(), 16);
        assert_eq!(material.secret.len(), 64);
        assert_ne!(hasher.generate().secret, material.secret);
        assert!(
            whatpro_iam::PresentedKey::parse(&material.key()).is_some(),
            "generated keys have the presented form"
        );

        let hash = hasher.hash(&material.secret).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains(&material.secret));
        assert!(hasher.verify(&material.secret, &hash).await.unwrap());
        assert!(!hasher.verify("another secret", &hash).await.unwrap());
        assert!(!hasher.verify(&material.secret, "not a hash").await.unwrap());
        // Same secret, new salt: another hash.
        assert_ne!(hasher.hash(&material.secret).await.unwrap(), hash);
    }

    #[test]
    fn fingerprints_are_sha256() {
        let hasher = Argon2SecretHasher::new();
        let a = hasher.fingerprint("whp_a_b");
        assert_eq!(a, hasher.fingerprint("whp_a_b"));
        assert_ne!(a, hasher.fingerprint("whp_a_c"));
        assert_eq!(
            hex(&hasher.fingerprint("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
