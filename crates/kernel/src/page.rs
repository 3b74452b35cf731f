//! Keyset pagination: `?limit=` (default 50, clamped to 200) and an opaque `?cursor=`.

use serde::{Deserialize, Serialize};

/// A page size between 1 and [`Limit::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u16);

impl Limit {
    /// The size used when the client asks for none.
    pub const DEFAULT: u16 = 50;
    /// The largest page; larger requests are clamped to it.
    pub const MAX: u16 = 200;

    /// Clamps a requested size into `1..=MAX`; `None` gives the default.
    pub fn clamped(requested: Option<u32>) -> Self {
        let value = requested.map_or(Self::DEFAULT, |r| {
            u16::try_from(r.clamp(1, u32::from(Self::MAX))).unwrap_or(Self::MAX)
        });
        Self(value)
    }

    /// The size as a number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

/// An opaque position in a keyset-ordered list: the sort key of the last item returned,
/// hex-encoded so clients treat it as a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

/// A cursor that the server did not issue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not valid")]
pub struct CursorError;

impl Cursor {
    /// Encodes a sort key.
    pub fn encode(key: &str) -> Self {
        let mut out = String::with_capacity(key.len() * 2);
        for byte in key.as_bytes() {
            out.push_str(&format!("{byte:02x}"));
        }
        Self(out)
    }

    /// Decodes the sort key carried by a cursor from a client.
    ///
    /// # Errors
    /// [`CursorError`] when the text is not a cursor this server issued.
    pub fn decode(token: &str) -> Result<String, CursorError> {
        if token.is_empty() || !token.len().is_multiple_of(2) || token.len() > 1024 {
            return Err(CursorError);
        }
        let bytes = (0..token.len())
            .step_by(2)
            .map(|i| {
                token
                    .get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or(CursorError)
            })
            .collect::<Result<Vec<u8>, _>>()?;
        String::from_utf8(bytes).map_err(|_| CursorError)
    }

    /// The token sent to clients.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page of a list: `{"data": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Where the next page starts, or `None` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_and_clamps() {
        assert_eq!(Limit::clamped(None).get(), 50);
        assert_eq!(Limit::clamped(Some(0)).get(), 1);
        assert_eq!(Limit::clamped(Some(10)).get(), 10);
        assert_eq!(Limit::clamped(Some(201)).get(), 200);
        assert_eq!(Limit::clamped(Some(u32::MAX)).get(), 200);
    }

    #[test]
    fn cursor_round_trips_and_rejects_foreign_tokens() {
        let cursor = Cursor::encode("2026-11-23T10:00:00Z|0193");
        assert_eq!(
            Cursor::decode(cursor.as_str()).as_deref(),
            Ok("2026-11-23T10:00:00Z|0193")
        );
        assert_eq!(Cursor::decode(""), Err(CursorError));
        assert_eq!(Cursor::decode("abc"), Err(CursorError));
        assert_eq!(Cursor::decode("zz"), Err(CursorError));
        assert_eq!(Cursor::decode("ff"), Err(CursorError));
    }

    #[test]
    fn page_serializes_with_null_cursor_on_last_page() {
        let page = Page {
            data: vec![1, 2],
            next_cursor: None,
        };
        let json = serde_json::to_string(&page).unwrap();
        assert_eq!(json, r#"{"data":[1,2],"next_cursor":null}"#);
    }
}
