//! Cryptographic adapters of the Hub.
//!
//! - [`KeyRing`]: PASETO `v4.local` keys from `HUB_TOKEN_KEYS` / `HUB_DATA_KEYS` (PASERK
//!   `k4.local`, the first one encrypts, every key is known by its PASERK `lid`).
//! - [`PasetoAccessTokens`]: the `whatpro_iam::AccessTokens` port — access tokens with a `kid`
//!   footer, claims checked by our code against an injected time.
//! - [`HubRefreshTokens`]: the `whatpro_iam::RefreshTokens` port — 256-bit refresh tokens
//!   stored as SHA-256 hashes, keyed deterministic successors, and sealed Chatwoot credentials.
//! - [`PasetoInstanceTokens`]: the `whatpro_iam::InstanceTokens` port — origin-bound tokens of
//!   the embedded UI.
//! - [`Argon2SecretHasher`]: the `whatpro_iam::SecretHasher` port — API key material and
//!   argon2id hashes, computed on Tokio's blocking pool.
//! - [`SecretBox`]: the `whatpro_inbox::SecretSealer` port — third-party secrets (Chatwoot
//!   tokens, provider credentials) sealed with `HUB_DATA_KEYS`, bound to their purpose.
//! - [`HubWebhookTokens`]: the `whatpro_inbox::WebhookTokens` port — per-instance webhook
//!   tokens, stored as SHA-256.

mod access;
mod hasher;
mod instance;
mod keyring;
mod refresh;
mod secret_box;

pub use access::{ACCESS_AUDIENCE, ACCESS_TTL, ISSUER, PasetoAccessTokens};
pub use hasher::Argon2SecretHasher;
pub use instance::{EMBED_AUDIENCE, INSTANCE_TYPE, PasetoInstanceTokens};
pub use keyring::{KeyRing, KeyRingError};
pub use refresh::HubRefreshTokens;
pub use secret_box::{HubWebhookTokens, SecretBox, WEBHOOK_TOKEN_PREFIX};
