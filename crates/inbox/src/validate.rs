//! Checks of tenant-supplied values (names, tokens), shared by the services.

use crate::error::InboxError;
use crate::provider::ProviderType;

/// Longest provider label.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest instance name at a provider.
pub const MAX_INSTANCE_NAME_CHARS: usize = 200;
/// Longest Chatwoot token accepted.
pub const MAX_TOKEN_CHARS: usize = 512;
/// Longest base URL.
pub const MAX_BASE_URL_CHARS: usize = 2048;

/// A label: trimmed, 1-100 characters, no control characters.
///
/// # Errors
/// `Invalid` naming `field`.
pub fn label(field: &'static str, text: &str) -> Result<String, InboxError> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || text.chars().any(char::is_control) {
        return Err(InboxError::invalid(
            field,
            format!("{field} must be 1-{MAX_NAME_CHARS} characters without control characters"),
        ));
    }
    Ok(text.to_owned())
}

/// An instance name at a provider of `provider_type` (see
/// [`ProviderType::instance_name_meaning`]): trimmed, 1-200 printable characters, not `.` or
/// `..`; digits only for WhatsApp Cloud (the phone-number id).
///
/// # Errors
/// `Invalid` naming `name`.
pub fn instance_name(provider_type: ProviderType, text: &str) -> Result<String, InboxError> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0
        || chars > MAX_INSTANCE_NAME_CHARS
        || text.chars().any(char::is_control)
        || text == "."
        || text == ".."
    {
        return Err(InboxError::invalid(
            "name",
            format!(
                "name ({}) must be 1-{MAX_INSTANCE_NAME_CHARS} printable characters",
                provider_type.instance_name_meaning()
            ),
        ));
    }
    if provider_type == ProviderType::WhatsappCloud && !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InboxError::invalid(
            "name",
            "name must be the WhatsApp Cloud phone-number id (digits only)",
        ));
    }
    Ok(text.to_owned())
}

/// A Chatwoot personal access token: trimmed, 1-512 visible ASCII characters.
///
/// # Errors
/// `Invalid` naming `api_access_token`.
pub fn chatwoot_token(text: &str) -> Result<String, InboxError> {
    let text = text.trim();
    if text.is_empty()
        || text.len() > MAX_TOKEN_CHARS
        || !text.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(InboxError::invalid(
            "api_access_token",
            format!("api_access_token must be 1-{MAX_TOKEN_CHARS} visible ASCII characters"),
        ));
    }
    Ok(text.to_owned())
}

/// A base URL's shape before the SSRF guard resolves it: trimmed, at most 2048 characters.
///
/// # Errors
/// `Invalid` naming `base_url`.
pub fn base_url_shape(text: &str) -> Result<String, InboxError> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_BASE_URL_CHARS {
        return Err(InboxError::invalid(
            "base_url",
            format!("base_url must be an http(s) URL of at most {MAX_BASE_URL_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(label("name", "  Evo  ").unwrap(), "Evo");
        assert!(label("name", " ").is_err());
        assert!(label("name", &"x".repeat(101)).is_err());
        assert!(label("name", "a\u{7}b").is_err());
        assert_eq!(
            label("name", &"ç".repeat(100)).unwrap().chars().count(),
            100
        );
    }

    #[test]
    fn instance_names() {
        assert!(instance_name(ProviderType::Evolution, "tenant7f3c-suporte").is_ok());
        for bad in ["", ".", "..", "a\nb"] {
            assert!(
                instance_name(ProviderType::Evolution, bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(instance_name(ProviderType::WhatsappCloud, "106540352242922").is_ok());
        assert!(instance_name(ProviderType::WhatsappCloud, "abc").is_err());
    }

    #[test]
    fn tokens_and_urls() {
        assert_eq!(chatwoot_token(" abc ").unwrap(), "abc");
        assert!(chatwoot_token("a b").is_err());
        assert!(chatwoot_token("").is_err());
        assert!(chatwoot_token(&"x".repeat(513)).is_err());
        assert!(base_url_shape("").is_err());
        assert!(base_url_shape(&format!("https://{}", "x".repeat(2048))).is_err());
        assert_eq!(
            base_url_shape(" https://evo.example ").unwrap(),
            "https://evo.example"
        );
    }
}
