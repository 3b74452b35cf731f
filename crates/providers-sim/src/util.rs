//! Small helpers: percent-decoding, random ids and tokens, timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngExt;
use time::OffsetDateTime;
use time::macros::format_description;

/// Decodes `%XX` escapes of a path segment; `None` when an escape is malformed or the result
/// is not UTF-8.
pub(crate) fn percent_decode(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn random_from(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| {
            let index = rng.random_range(0..alphabet.len());
            char::from(alphabet.get(index).copied().unwrap_or(b'0'))
        })
        .collect()
}

/// A WPPConnect-style token: a bcrypt hash with `/` → `_` and `+` → `-`.
pub(crate) fn bcrypt_like_token() -> String {
    const ALPHABET: &[u8] = b"._ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    format!("$2b$10${}", random_from(ALPHABET, 53))
}

/// An Evolution/Baileys message id (20 upper-case hex digits).
pub(crate) fn message_id() -> String {
    random_from(b"0123456789ABCDEF", 20)
}

/// A uazapi instance id (`r` + 14 lower-case hex digits).
pub(crate) fn uazapi_id() -> String {
    format!("r{}", random_from(b"0123456789abcdef", 14))
}

/// A Graph API `fbtrace_id`.
pub(crate) fn fbtrace_id() -> String {
    random_from(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        23,
    )
}

/// Current Unix time in seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Current time as Evolution writes `date_time` (`2025-03-10T09:16:41.877Z`).
pub(crate) fn iso_now() -> String {
    OffsetDateTime::now_utc()
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("plain").unwrap(), "plain");
        assert_eq!(percent_decode("a%20b%2Fc%25").unwrap(), "a b/c%");
        assert_eq!(percent_decode("caf%C3%A9").unwrap(), "café");
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%ZZ"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn tokens_look_like_the_real_ones() {
        let token = bcrypt_like_token();
        assert!(token.starts_with("$2b$10$"));
        assert_eq!(token.len(), 60);
        assert!(!token.contains('/') && !token.contains('+'));
        assert_eq!(message_id().len(), 20);
        assert_eq!(uazapi_id().len(), 15);
        assert_eq!(iso_now().len(), 24);
    }
}
