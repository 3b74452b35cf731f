//! [`Verdict`]: an outcome and its short explanation, and the mappings every provider shares.

use std::borrow::Cow;

use reqwest::StatusCode;
use whatpro_inbox::ProbeOutcome;

/// An outcome with its `detail` (mostly static phrases: no allocation on the happy path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub outcome: ProbeOutcome,
    pub detail: Cow<'static, str>,
}

impl Verdict {
    pub fn new(outcome: ProbeOutcome, detail: &'static str) -> Self {
        Self {
            outcome,
            detail: Cow::Borrowed(detail),
        }
    }

    pub fn owned(outcome: ProbeOutcome, detail: String) -> Self {
        Self {
            outcome,
            detail: Cow::Owned(detail),
        }
    }

    /// A 2xx body that does not parse or has an unexpected shape.
    pub fn unreadable() -> Self {
        Self::new(ProbeOutcome::BadAnswer, "unreadable answer")
    }

    /// A state string we do not know; the raw word is shown only when it is safe (see
    /// [`safe_word`]).
    pub fn unknown_state(what: &str, raw: &str, secrets: &[&str]) -> Self {
        match safe_word(raw, secrets) {
            Some(word) => Self::owned(ProbeOutcome::BadAnswer, format!("unknown {what} {word}")),
            None => Self::owned(ProbeOutcome::BadAnswer, format!("unknown {what}")),
        }
    }
}

/// The mapping of a non-2xx status when the provider gives nothing more specific: 401/403 →
/// `Unauthorized`, 404 → `NotFound`, 408/429/5xx → `Unreachable`, other → `BadAnswer`.
pub(crate) fn by_status(status: StatusCode) -> Verdict {
    let code = status.as_u16();
    let outcome = match code {
        401 | 403 => ProbeOutcome::Unauthorized,
        404 => ProbeOutcome::NotFound,
        408 | 429 | 500..=599 => ProbeOutcome::Unreachable,
        _ => ProbeOutcome::BadAnswer,
    };
    if status.is_redirection() {
        return Verdict::owned(outcome, format!("HTTP {code} (redirect not followed)"));
    }
    Verdict::owned(outcome, format!("HTTP {code}"))
}

/// `raw` when it is a short identifier-like word (at most 32 ASCII letters, digits, `_`, `-`,
/// `.`) that contains none of `secrets`; provider-controlled text is otherwise kept out of
/// details.
pub(crate) fn safe_word<'a>(raw: &'a str, secrets: &[&str]) -> Option<&'a str> {
    let plain = !raw.is_empty()
        && raw.len() <= 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    let leaks = secrets
        .iter()
        .any(|s| !s.is_empty() && (raw.contains(s) || s.contains(raw)));
    (plain && !leaks).then_some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        let outcome = |code| by_status(StatusCode::from_u16(code).unwrap_or_default()).outcome;
        assert_eq!(outcome(401), ProbeOutcome::Unauthorized);
        assert_eq!(outcome(403), ProbeOutcome::Unauthorized);
        assert_eq!(outcome(404), ProbeOutcome::NotFound);
        assert_eq!(outcome(429), ProbeOutcome::Unreachable);
        assert_eq!(outcome(500), ProbeOutcome::Unreachable);
        assert_eq!(outcome(503), ProbeOutcome::Unreachable);
        assert_eq!(outcome(400), ProbeOutcome::BadAnswer);
        assert_eq!(outcome(302), ProbeOutcome::BadAnswer);
        assert_eq!(by_status(StatusCode::BAD_GATEWAY).detail, "HTTP 502");
        assert_eq!(
            by_status(StatusCode::FOUND).detail,
            "HTTP 302 (redirect not followed)"
        );
    }

    #[test]
    fn only_safe_words_are_echoed() {
        assert_eq!(safe_word("PAIRING", &["tok"]), Some("PAIRING"));
        assert_eq!(safe_word("weird state", &[]), None);
        assert_eq!(safe_word("", &[]), None);
        assert_eq!(safe_word(&"x".repeat(33), &[]), None);
        assert_eq!(safe_word("abc123secret", &["123secret"]), None);
        assert_eq!(safe_word("secret", &["my-secret-token"]), None);
        assert_eq!(safe_word("<script>", &[]), None);
    }
}
