//! Cryptographic adapters of the Hub. For now: the PASETO `v4.local` key ring read from
//! `HUB_TOKEN_KEYS` / `HUB_DATA_KEYS` (PASERK `k4.local` keys, the first one signs, every key
//! is known by its PASERK `lid`). Token issuing and argon2id hashing build on it.

mod keyring;

pub use keyring::{KeyRing, KeyRingError};
