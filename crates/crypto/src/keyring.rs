//! An ordered set of symmetric keys: the first encrypts, all of them decrypt (rotation).

use std::fmt;

use pasetors::keys::{Generate, SymmetricKey};
use pasetors::paserk::{FormatAsPaserk, Id};
use pasetors::version4::V4;

/// Why a key list was rejected. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRingError {
    /// The list holds no key at all.
    #[error("no key given (expected comma-separated PASERK k4.local keys)")]
    Empty,
    /// The key at this 1-based position is not a PASERK `k4.local` key.
    #[error("key #{0} is not a PASERK k4.local key")]
    Malformed(usize),
    /// The same key appears twice.
    #[error("key #{0} repeats an earlier key")]
    Duplicate(usize),
    /// Generating a key failed (no system randomness).
    #[error("could not generate a key")]
    Generate,
}

/// Symmetric PASETO v4 keys with their PASERK ids (`k4.lid....`), newest first.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<(String, SymmetricKey<V4>)>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("kids", &self.kids())
            .finish()
    }
}

impl KeyRing {
    /// Parses comma-separated PASERK `k4.local.` keys; blanks around commas are ignored.
    ///
    /// # Errors
    /// See [`KeyRingError`].
    pub fn parse(list: &str) -> Result<Self, KeyRingError> {
        let mut keys: Vec<(String, SymmetricKey<V4>)> = Vec::new();
        for (index, text) in list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let key = SymmetricKey::<V4>::try_from(text)
                .map_err(|_| KeyRingError::Malformed(index + 1))?;
            let kid = lid(&key);
            if keys.iter().any(|(known, _)| *known == kid) {
                return Err(KeyRingError::Duplicate(index + 1));
            }
            keys.push((kid, key));
        }
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        Ok(Self { keys })
    }

    /// A ring with one freshly generated key (for `dev` and tests).
    ///
    /// # Errors
    /// [`KeyRingError::Generate`] when the system has no randomness.
    pub fn generate() -> Result<Self, KeyRingError> {
        let key = SymmetricKey::<V4>::generate().map_err(|_| KeyRingError::Generate)?;
        Ok(Self {
            keys: vec![(lid(&key), key)],
        })
    }

    /// The signing key and its id.
    pub fn current(&self) -> (&str, &SymmetricKey<V4>) {
        let (kid, key) = &self.keys[0];
        (kid, key)
    }

    /// The key with this PASERK id, if the ring holds it.
    pub fn find(&self, kid: &str) -> Option<&SymmetricKey<V4>> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }

    /// The ids of every key, signing key first.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|(kid, _)| kid.as_str()).collect()
    }

    /// The ring in its configuration form (comma-separated PASERK keys). Secret: print only when
    /// the operator asked for it (e.g. `dev` shows the key it generated).
    pub fn to_paserk_list(&self) -> String {
        self.keys
            .iter()
            .map(|(_, key)| paserk(key))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn paserk(value: &dyn FormatAsPaserk) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = value.fmt(&mut out);
    out
}

fn lid(key: &SymmetricKey<V4>) -> String {
    paserk(&Id::from(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ring_round_trips_through_its_paserk_form() {
        let ring = KeyRing::generate().unwrap();
        let text = ring.to_paserk_list();
        assert!(text.starts_with("k4.local."));
        let parsed = KeyRing::parse(&text).unwrap();
        assert_eq!(parsed.kids(), ring.kids());
        assert!(parsed.kids()[0].starts_with("k4.lid."));
    }

    #[test]
    fn several_keys_keep_their_order_and_are_found_by_id() {
        let a = KeyRing::generate().unwrap();
        let b = KeyRing::generate().unwrap();
        let ring =
            KeyRing::parse(&format!("{} , {}", a.to_paserk_list(), b.to_paserk_list())).unwrap();
        assert_eq!(ring.current().0, a.kids()[0]);
        assert!(ring.find(b.kids()[0]).is_some());
        assert!(ring.find("k4.lid.unknown").is_none());
    }

    #[test]
    fn rejects_empty_malformed_and_duplicate_lists() {
        let a = KeyRing::generate().unwrap().to_paserk_list();
        assert_eq!(KeyRing::parse(" , ").unwrap_err(), KeyRingError::Empty);
        assert_eq!(
            KeyRing::parse("k4.local.short").unwrap_err(),
            KeyRingError::Malformed(1)
        );
        assert_eq!(
            KeyRing::parse(&format!("{a},k2.local.AAAA")).unwrap_err(),
            KeyRingError::Malformed(2)
        );
        assert_eq!(
            KeyRing::parse(&format!("{a},{a}")).unwrap_err(),
            KeyRingError::Duplicate(2)
        );
    }
}
