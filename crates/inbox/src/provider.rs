//! WhatsApp provider types, the secrets each one needs, and the ports through which the Hub
//! probes an instance's status and vets a tenant-supplied base URL.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;

/// A WhatsApp API provider the Hub can talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderType {
    /// Evolution API v2 (self-hosted).
    Evolution,
    /// Z-API (SaaS).
    Zapi,
    /// WPPConnect-server (self-hosted).
    Wppconnect,
    /// uazapiGO v2 (SaaS).
    Uazapi,
    /// Meta's WhatsApp Cloud API.
    WhatsappCloud,
}

impl ProviderType {
    /// Every provider type, in the order documentation lists them.
    pub const ALL: [ProviderType; 5] = [
        ProviderType::Evolution,
        ProviderType::Zapi,
        ProviderType::Wppconnect,
        ProviderType::Uazapi,
        ProviderType::WhatsappCloud,
    ];

    /// The wire name (`evolution`, `zapi`, `wppconnect`, `uazapi`, `whatsapp_cloud`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Evolution => "evolution",
            ProviderType::Zapi => "zapi",
            ProviderType::Wppconnect => "wppconnect",
            ProviderType::Uazapi => "uazapi",
            ProviderType::WhatsappCloud => "whatsapp_cloud",
        }
    }

    /// Credential keys a provider of this type must carry.
    pub fn required_provider_credentials(self) -> &'static [&'static str] {
        match self {
            ProviderType::Evolution => &["api_key"],
            ProviderType::Zapi => &[],
            ProviderType::Wppconnect => &["secret_key"],
            ProviderType::Uazapi => &[],
            ProviderType::WhatsappCloud => &["access_token"],
        }
    }

    /// Credential keys a provider of this type may carry besides the required ones.
    pub fn optional_provider_credentials(self) -> &'static [&'static str] {
        match self {
            ProviderType::Evolution => &[],
            ProviderType::Zapi => &["client_token"],
            ProviderType::Wppconnect => &[],
            ProviderType::Uazapi => &["admin_token"],
            ProviderType::WhatsappCloud => &["app_secret"],
        }
    }

    /// Credential keys each instance of this type must carry (its own secret at the
    /// provider), beside the instance name.
    pub fn required_instance_credentials(self) -> &'static [&'static str] {
        match self {
            ProviderType::Zapi => &["instance_token"],
            ProviderType::Uazapi => &["token"],
            ProviderType::Evolution | ProviderType::Wppconnect | ProviderType::WhatsappCloud => &[],
        }
    }

    /// Credential keys an instance of this type may carry besides the required ones.
    pub fn optional_instance_credentials(self) -> &'static [&'static str] {
        match self {
            ProviderType::Evolution => &["instance_api_key"],
            ProviderType::Wppconnect => &["token"],
            _ => &[],
        }
    }

    /// What the instance `name` means at this provider.
    pub fn instance_name_meaning(self) -> &'static str {
        match self {
            ProviderType::Evolution => "the Evolution instance name",
            ProviderType::Zapi => "the Z-API instance id",
            ProviderType::Wppconnect => "the WPPConnect session name",
            ProviderType::Uazapi => "a label (the instance token identifies the instance)",
            ProviderType::WhatsappCloud => "the phone-number id",
        }
    }
}

impl fmt::Display for ProviderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider type name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a provider type (expected evolution, zapi, wppconnect, uazapi or whatsapp_cloud)"
)]
pub struct UnknownProviderType(pub String);

impl FromStr for ProviderType {
    type Err = UnknownProviderType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownProviderType(s.to_owned()))
    }
}

/// Secret key/value pairs (API keys, tokens). `Debug` never shows the values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials(BTreeMap<String, String>);

/// Credentials that do not fit their provider type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// A required key is absent or empty.
    #[error("credentials.{0} is required")]
    Missing(&'static str),
    /// A key this provider type does not use.
    #[error("credentials.{0} is not used by this provider type")]
    Unknown(String),
    /// A value longer than [`Credentials::MAX_VALUE_CHARS`] or with control characters.
    #[error("credentials.{0} must be 1-2048 printable characters")]
    BadValue(String),
}

impl Credentials {
    /// The longest accepted value.
    pub const MAX_VALUE_CHARS: usize = 2048;

    /// Wraps key/value pairs without checking them.
    pub fn new(pairs: BTreeMap<String, String>) -> Self {
        Self(pairs)
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The keys present (never the values).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Every pair (for encryption at rest).
    pub fn pairs(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Checks that every `required` key is present and non-empty, that no key falls outside
    /// `required` + `optional`, and that values are sane.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check(
        &self,
        required: &'static [&'static str],
        optional: &'static [&'static str],
    ) -> Result<(), CredentialsError> {
        for key in required {
            match self.0.get(*key) {
                Some(v) if !v.trim().is_empty() => {}
                _ => return Err(CredentialsError::Missing(key)),
            }
        }
        for (key, value) in &self.0 {
            if !required.contains(&key.as_str()) && !optional.contains(&key.as_str()) {
                return Err(CredentialsError::Unknown(key.clone()));
            }
            if value.is_empty()
                || value.chars().count() > Self::MAX_VALUE_CHARS
                || value.chars().any(char::is_control)
            {
                return Err(CredentialsError::BadValue(key.clone()));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// What the Hub needs to ask a provider about one instance.
#[derive(Debug, Clone, Copy)]
pub struct ProbeRequest<'a> {
    /// The provider's type.
    pub provider_type: ProviderType,
    /// The provider's base URL (already vetted when it was stored).
    pub base_url: &'a str,
    /// The provider's credentials.
    pub provider_credentials: &'a Credentials,
    /// The instance's name at the provider (see [`ProviderType::instance_name_meaning`]).
    pub instance_name: &'a str,
    /// The instance's own credentials.
    pub instance_credentials: &'a Credentials,
}

/// What the provider said about the instance, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Paired and online.
    Connected,
    /// Pairing (QR code) or reconnecting.
    Connecting,
    /// The provider says the instance has no session.
    Disconnected,
    /// The provider refused our credentials.
    Unauthorized,
    /// The provider does not know the instance.
    NotFound,
    /// No answer in time, a connection error, or a 5xx.
    Unreachable,
    /// An answer we cannot read.
    BadAnswer,
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The normalised outcome.
    pub outcome: ProbeOutcome,
    /// How long the provider took to answer (or until we gave up).
    pub latency: Duration,
    /// A short human explanation, e.g. the provider's raw state `close` or `HTTP 503`
    /// (never a credential).
    pub detail: String,
}

/// Asks a provider about one instance. Never fails: every failure is a [`ProbeOutcome`].
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ProviderProbe: Send + Sync {
    /// Probes the instance through its provider's status endpoint, within the configured
    /// timeout.
    async fn probe<'a>(&self, request: &ProbeRequest<'a>) -> ProbeReport;
}

/// Why a tenant-supplied URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlRejected(pub String);

/// Vets tenant-supplied URLs before the Hub stores or calls them (SSRF guard).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UrlCheck: Send + Sync {
    /// Accepts only http/https URLs whose host resolves to public addresses (unless the
    /// operator allows private upstreams).
    ///
    /// # Errors
    /// [`UrlRejected`] with a sentence that names the problem.
    async fn check(&self, url: &str) -> Result<(), UrlRejected>;
}
