//! Configuration: environment variables first, then an optional `whatpro.toml` holding the
//! same keys. Every value is parsed and checked once, here; a bad value stops start-up with
//! one line naming the variable.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use whatpro_crypto::KeyRing;

/// A configuration problem: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {var}: {problem}")]
pub struct ConfigError {
    /// The variable (or file) at fault.
    pub var: String,
    /// What is wrong, in one sentence.
    pub problem: String,
}

impl ConfigError {
    fn new(var: &str, problem: impl Into<String>) -> Self {
        Self {
            var: var.to_owned(),
            problem: problem.into(),
        }
    }
}

/// A secret string: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A web origin (`scheme://host[:port]`), normalised (lower-case host, default port dropped).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

impl Origin {
    /// Parses an origin: http or https, a host, nothing after it but an optional `/`.
    ///
    /// # Errors
    /// A sentence saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url =
            url::Url::parse(text.trim()).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{text}` must use http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("`{text}` has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{text}` must not contain credentials"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "`{text}` must be an origin without path, query or fragment"
            ));
        }
        Ok(Self(url.origin().ascii_serialization()))
    }

    /// The origin as sent in an `Origin` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this origin uses https.
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Log line format (`HUB_LOG_FORMAT`).
pub use whatpro_telemetry::LogFormat;

/// The whole, validated configuration of one Hub process.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`.
    pub database_url: Option<Secret>,
    /// `HUB_BIND`.
    pub bind: SocketAddr,
    /// `HUB_PUBLIC_URL` (an origin).
    pub public_url: Origin,
    /// `CHATWOOT_URL` (base URL; its origin is always allowed for CORS and framing).
    pub chatwoot_url: Option<url::Url>,
    /// `CHATWOOT_PLATFORM_TOKEN`.
    pub chatwoot_platform_token: Option<Secret>,
    /// `HUB_TOKEN_KEYS`.
    pub token_keys: Option<KeyRing>,
    /// `HUB_DATA_KEYS`.
    pub data_keys: Option<KeyRing>,
    /// `HUB_SUPER_ADMIN_EMAILS`, lower-cased.
    pub super_admin_emails: Vec<String>,
    /// `HUB_ALLOWED_ORIGINS`.
    pub allowed_origins: Vec<Origin>,
    /// `REDIS_URL`.
    pub redis_url: Option<Secret>,
    /// `ASAAS_URL` (includes the version path).
    pub asaas_url: url::Url,
    /// `ASAAS_API_KEY` (billing is off without it).
    pub asaas_api_key: Option<Secret>,
    /// `ASAAS_WEBHOOK_TOKEN`.
    pub asaas_webhook_token: Option<Secret>,
    /// `ASAAS_TIMEOUT_MS`: how long one Asaas call may take.
    pub asaas_timeout: Duration,
    /// `HUB_PLATFORM_APP_SECRET`.
    pub platform_app_secret: Option<Secret>,
    /// `HUB_ALLOW_PRIVATE_UPSTREAMS`.
    pub allow_private_upstreams: bool,
    /// `HUB_BILLING_GRACE_DAYS`.
    pub billing_grace_days: u32,
    /// `HUB_HEALTH_INTERVAL_SECS`.
    pub health_interval: Duration,
    /// `HUB_HEALTH_SILENT_SECS`.
    pub health_silent: Duration,
    /// `HUB_HEALTH_SLOW_MS`.
    pub health_slow: Duration,
    /// `HUB_HEALTH_PROBE_TIMEOUT_MS`.
    pub health_probe_timeout: Duration,
    /// `HUB_INBOX_SYNC_INTERVAL_SECS`.
    pub inbox_sync_interval: Duration,
    /// `HUB_USAGE_FLUSH_SECS`: how often usage counters are written (a crash loses at most
    /// this much metering).
    pub usage_flush_interval: Duration,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub otlp_endpoint: Option<url::Url>,
    /// `RUST_LOG`.
    pub log_filter: String,
    /// `HUB_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `HUB_BODY_LIMIT_BYTES`: largest accepted request body.
    pub body_limit: usize,
    /// `HUB_SHUTDOWN_TIMEOUT_SECS`: how long in-flight requests may run after SIGTERM.
    pub shutdown_timeout: Duration,
    /// `HUB_DB_POOL_SIZE`.
    pub db_pool_size: usize,
    /// `HUB_WORKERS`: HTTP worker threads (default: one per core).
    pub workers: Option<usize>,
    /// `HUB_TRUST_FORWARDED_FOR`: take the client IP from `X-Forwarded-For` (only behind a
    /// proxy that sets it; otherwise clients could pick their own IP for rate limits).
    pub trust_forwarded_for: bool,
    /// `HUB_SSO_RATE_PER_MINUTE`: SSO attempts allowed per client IP and minute.
    pub sso_rate_per_minute: u32,
    /// `HUB_API_KEY_RATE_PER_MINUTE`: requests allowed per API key and minute.
    pub api_key_rate_per_minute: u32,
}

/// Every variable the Hub reads, for the `whatpro.toml` key check and the docs.
pub const KNOWN_VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "HUB_BIND",
    "HUB_PUBLIC_URL",
    "CHATWOOT_URL",
    "CHATWOOT_PLATFORM_TOKEN",
    "HUB_TOKEN_KEYS",
    "HUB_DATA_KEYS",
    "HUB_SUPER_ADMIN_EMAILS",
    "HUB_ALLOWED_ORIGINS",
    "REDIS_URL",
    "ASAAS_URL",
    "ASAAS_API_KEY",
    "ASAAS_WEBHOOK_TOKEN",
    "ASAAS_TIMEOUT_MS",
    "HUB_PLATFORM_APP_SECRET",
    "HUB_ALLOW_PRIVATE_UPSTREAMS",
    "HUB_BILLING_GRACE_DAYS",
    "HUB_HEALTH_INTERVAL_SECS",
    "HUB_HEALTH_SILENT_SECS",
    "HUB_HEALTH_SLOW_MS",
    "HUB_HEALTH_PROBE_TIMEOUT_MS",
    "HUB_INBOX_SYNC_INTERVAL_SECS",
    "HUB_USAGE_FLUSH_SECS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "RUST_LOG",
    "HUB_LOG_FORMAT",
    "HUB_BODY_LIMIT_BYTES",
    "HUB_SHUTDOWN_TIMEOUT_SECS",
    "HUB_DB_POOL_SIZE",
    "HUB_WORKERS",
    "HUB_TRUST_FORWARDED_FOR",
    "HUB_SSO_RATE_PER_MINUTE",
    "HUB_API_KEY_RATE_PER_MINUTE",
];

/// Default Asaas endpoint (sandbox).
pub const DEFAULT_ASAAS_URL: &str = "https://api-sandbox.asaas.com/v3";

/// Raw key/value sources, merged: environment over file.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    values: HashMap<String, String>,
}

impl Sources {
    /// Values from the process environment (only the Hub's own variables), over those of
    /// `whatpro.toml` in `WHATPRO_CONFIG` or the working directory, when present.
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed, or holds an unknown key.
    pub fn from_process() -> Result<Self, ConfigError> {
        let file = std::env::var("WHATPRO_CONFIG").unwrap_or_else(|_| "whatpro.toml".to_owned());
        let mut sources = if Path::new(&file).exists() {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| ConfigError::new(&file, format!("cannot be read ({e})")))?;
            Self::from_toml(&file, &text)?
        } else if std::env::var_os("WHATPRO_CONFIG").is_some() {
            return Err(ConfigError::new(
                "WHATPRO_CONFIG",
                format!("file `{file}` does not exist"),
            ));
        } else {
            Self::default()
        };
        for name in KNOWN_VARIABLES {
            match std::env::var(name) {
                Ok(value) => {
                    sources.values.insert((*name).to_owned(), value);
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(ConfigError::new(name, "is not valid UTF-8"));
                }
                Err(std::env::VarError::NotPresent) => {}
            }
        }
        Ok(sources)
    }

    /// Values of a `whatpro.toml` document: top-level keys named like the variables, with
    /// string, integer or boolean values.
    ///
    /// # Errors
    /// When the text is not TOML, a key is unknown or a value is not a scalar.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigError::new(file, format!("is not valid TOML ({})", e.message()))
        })?;
        let mut values = HashMap::new();
        for (key, value) in table {
            if !KNOWN_VARIABLES.contains(&key.as_str()) {
                return Err(ConfigError::new(file, format!("unknown key `{key}`")));
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| item.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                _ => {
                    return Err(ConfigError::new(
                        &key,
                        format!("in {file} must be a string, number, boolean or list"),
                    ));
                }
            };
            values.insert(key, text);
        }
        Ok(Self { values })
    }

    /// Sources from explicit pairs (tests, `dev`).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Sets a value unless one is present (how `dev` supplies its embedded defaults).
    pub fn set_default(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .entry(key.to_owned())
            .or_insert_with(|| value.into());
    }

    /// Sets a value, replacing any present one.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_owned(), value.into());
    }

    /// Whether a non-empty value is present.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

impl Config {
    /// Parses and checks every value.
    ///
    /// # Errors
    /// The first bad value, named.
    pub fn load(src: &Sources) -> Result<Self, ConfigError> {
        let bind: SocketAddr = parse_or(src, "HUB_BIND", "127.0.0.1:8080".parse().ok(), |v| {
            v.parse().map_err(|_| {
                format!("`{v}` is not a socket address (expected host:port, e.g. 127.0.0.1:8080)")
            })
        })?
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let public_url = match src.get("HUB_PUBLIC_URL") {
            Some(v) => Origin::parse(v).map_err(|p| ConfigError::new("HUB_PUBLIC_URL", p))?,
            None => Origin(format!("http://{bind}")),
        };
        let chatwoot_url = src
            .get("CHATWOOT_URL")
            .map(|v| parse_base_url(v).map_err(|p| ConfigError::new("CHATWOOT_URL", p)))
            .transpose()?;
        let allowed_origins = list(src, "HUB_ALLOWED_ORIGINS")
            .into_iter()
            .map(|v| Origin::parse(&v).map_err(|p| ConfigError::new("HUB_ALLOWED_ORIGINS", p)))
            .collect::<Result<Vec<_>, _>>()?;
        let super_admin_emails = list(src, "HUB_SUPER_ADMIN_EMAILS")
            .into_iter()
            .map(|e| {
                if e.contains('@') && !e.starts_with('@') && !e.ends_with('@') {
                    Ok(e.to_lowercase())
                } else {
                    Err(ConfigError::new(
                        "HUB_SUPER_ADMIN_EMAILS",
                        format!("`{e}` is not an email address"),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let redis_url = src
            .get("REDIS_URL")
            .map(|v| {
                let url = url::Url::parse(v)
                    .map_err(|e| ConfigError::new("REDIS_URL", format!("is not a URL ({e})")))?;
                if matches!(url.scheme(), "redis" | "rediss") {
                    Ok(Secret(v.to_owned()))
                } else {
                    Err(ConfigError::new(
                        "REDIS_URL",
                        "must start with redis:// or rediss://",
                    ))
                }
            })
            .transpose()?;
        let database_url = src
            .get("DATABASE_URL")
            .map(|v| {
                let url = url::Url::parse(v)
                    .map_err(|e| ConfigError::new("DATABASE_URL", format!("is not a URL ({e})")))?;
                if matches!(url.scheme(), "postgres" | "postgresql") {
                    Ok(Secret(v.to_owned()))
                } else {
                    Err(ConfigError::new(
                        "DATABASE_URL",
                        "must start with postgres:// or postgresql://",
                    ))
                }
            })
            .transpose()?;
        let asaas_url = parse_base_url(src.get("ASAAS_URL").unwrap_or(DEFAULT_ASAAS_URL))
            .map_err(|p| ConfigError::new("ASAAS_URL", p))?;
        let otlp_endpoint = src
            .get("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(|v| {
                parse_base_url(v).map_err(|p| ConfigError::new("OTEL_EXPORTER_OTLP_ENDPOINT", p))
            })
            .transpose()?;
        let log_format = match src.get("HUB_LOG_FORMAT").unwrap_or("json") {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => {
                return Err(ConfigError::new(
                    "HUB_LOG_FORMAT",
                    format!("`{other}` is not one of json, pretty"),
                ));
            }
        };
        let log_filter = src.get("RUST_LOG").unwrap_or("info").to_owned();
        tracing_subscriber_filter_check(&log_filter)?;

        Ok(Self {
            database_url,
            bind,
            public_url,
            chatwoot_url,
            chatwoot_platform_token: secret(src, "CHATWOOT_PLATFORM_TOKEN"),
            token_keys: keys(src, "HUB_TOKEN_KEYS")?,
            data_keys: keys(src, "HUB_DATA_KEYS")?,
            super_admin_emails,
            allowed_origins,
            redis_url,
            asaas_url,
            asaas_api_key: secret(src, "ASAAS_API_KEY"),
            asaas_webhook_token: secret(src, "ASAAS_WEBHOOK_TOKEN"),
            asaas_timeout: Duration::from_millis(number(
                src,
                "ASAAS_TIMEOUT_MS",
                10_000,
                1,
                120_000,
            )?),
            platform_app_secret: secret(src, "HUB_PLATFORM_APP_SECRET"),
            allow_private_upstreams: boolean(src, "HUB_ALLOW_PRIVATE_UPSTREAMS", false)?,
            billing_grace_days: number(src, "HUB_BILLING_GRACE_DAYS", 7, 0, 365)?,
            health_interval: Duration::from_secs(number(
                src,
                "HUB_HEALTH_INTERVAL_SECS",
                60,
                1,
                86_400,
            )?),
            health_silent: Duration::from_secs(number(
                src,
                "HUB_HEALTH_SILENT_SECS",
                900,
                1,
                604_800,
            )?),
            health_slow: Duration::from_millis(number(
                src,
                "HUB_HEALTH_SLOW_MS",
                2000,
                1,
                600_000,
            )?),
            health_probe_timeout: Duration::from_millis(number(
                src,
                "HUB_HEALTH_PROBE_TIMEOUT_MS",
                5000,
                1,
                600_000,
            )?),
            inbox_sync_interval: Duration::from_secs(number(
                src,
                "HUB_INBOX_SYNC_INTERVAL_SECS",
                900,
                1,
                604_800,
            )?),
            usage_flush_interval: Duration::from_secs(number(
                src,
                "HUB_USAGE_FLUSH_SECS",
                5,
                1,
                3600,
            )?),
            otlp_endpoint,
            log_filter,
            log_format,
            body_limit: number(
                src,
                "HUB_BODY_LIMIT_BYTES",
                1024 * 1024,
                1024,
                256 * 1024 * 1024,
            )?,
            shutdown_timeout: Duration::from_secs(number(
                src,
                "HUB_SHUTDOWN_TIMEOUT_SECS",
                30,
                0,
                3600,
            )?),
            db_pool_size: number(src, "HUB_DB_POOL_SIZE", 16, 1, 1000)?,
            trust_forwarded_for: boolean(src, "HUB_TRUST_FORWARDED_FOR", false)?,
            sso_rate_per_minute: number(src, "HUB_SSO_RATE_PER_MINUTE", 10, 1, 1_000_000)?,
            api_key_rate_per_minute: number(src, "HUB_API_KEY_RATE_PER_MINUTE", 600, 1, 1_000_000)?,
            workers: src
                .get("HUB_WORKERS")
                .map(|_| number(src, "HUB_WORKERS", 1, 1, 1024))
                .transpose()?,
        })
    }

    /// The checks `serve` adds: the values it cannot run without.
    ///
    /// # Errors
    /// The first missing variable.
    pub fn require_for_serve(&self) -> Result<(), ConfigError> {
        if self.database_url.is_none() {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "is required (e.g. postgres://user@127.0.0.1:5432/whatpro)",
            ));
        }
        if self.chatwoot_url.is_none() {
            return Err(ConfigError::new(
                "CHATWOOT_URL",
                "is required (the base URL of your Chatwoot, e.g. https://chat.example.com)",
            ));
        }
        for (var, keys) in [
            ("HUB_TOKEN_KEYS", &self.token_keys),
            ("HUB_DATA_KEYS", &self.data_keys),
        ] {
            if keys.is_none() {
                return Err(ConfigError::new(
                    var,
                    "is required (comma-separated PASERK k4.local keys; `whatpro-hub keygen` prints one)",
                ));
            }
        }
        Ok(())
    }

    /// The Chatwoot origin, when Chatwoot is configured.
    pub fn chatwoot_origin(&self) -> Option<Origin> {
        self.chatwoot_url
            .as_ref()
            .map(|u| Origin(u.origin().ascii_serialization()))
    }

    /// Origins allowed for CORS and framing: Chatwoot's plus `HUB_ALLOWED_ORIGINS`.
    pub fn trusted_origins(&self) -> Vec<Origin> {
        let mut origins: Vec<Origin> = self.chatwoot_origin().into_iter().collect();
        for origin in &self.allowed_origins {
            if !origins.contains(origin) {
                origins.push(origin.clone());
            }
        }
        origins
    }
}

fn parse_base_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` must be an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{text}` must not have a query or fragment"));
    }
    Ok(url)
}

fn parse_or<T>(
    src: &Sources,
    var: &str,
    default: Option<T>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    match src.get(var) {
        Some(v) => parse(v).map(Some).map_err(|p| ConfigError::new(var, p)),
        None => Ok(default),
    }
}

fn secret(src: &Sources, var: &str) -> Option<Secret> {
    src.get(var).map(|v| Secret(v.to_owned()))
}

fn list(src: &Sources, var: &str) -> Vec<String> {
    src.get(var)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn keys(src: &Sources, var: &str) -> Result<Option<KeyRing>, ConfigError> {
    src.get(var)
        .map(|v| KeyRing::parse(v).map_err(|e| ConfigError::new(var, e.to_string())))
        .transpose()
}

fn boolean(src: &Sources, var: &str, default: bool) -> Result<bool, ConfigError> {
    match src.get(var).map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::new(
            var,
            format!("`{other}` is not a boolean (true or false)"),
        )),
    }
}

fn number<T>(src: &Sources, var: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(text) = src.get(var) else {
        return Ok(default);
    };
    let value: T = text
        .parse()
        .map_err(|_| ConfigError::new(var, format!("`{text}` is not a whole number")))?;
    if value < min || value > max {
        return Err(ConfigError::new(
            var,
            format!("{value} is out of range ({min}..={max})"),
        ));
    }
    Ok(value)
}

fn tracing_subscriber_filter_check(filter: &str) -> Result<(), ConfigError> {
    whatpro_telemetry::check_filter(filter).map_err(|e| ConfigError::new("RUST_LOG", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(&Sources::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = load(&[]).unwrap();
        assert_eq!(config.bind, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.public_url.as_str(), "http://127.0.0.1:8080");
        assert_eq!(
            config.asaas_url.as_str(),
            "https://api-sandbox.asaas.com/v3"
        );
        assert_eq!(config.body_limit, 1024 * 1024);
        assert_eq!(config.billing_grace_days, 7);
        assert_eq!(config.health_interval, Duration::from_secs(60));
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(!config.allow_private_upstreams);
        assert_eq!(config.api_key_rate_per_minute, 600);
    }

    #[test]
    fn serve_requires_database_and_chatwoot() {
        let err = load(&[]).unwrap().require_for_serve().unwrap_err();
        assert_eq!(err.var, "DATABASE_URL");
        let err = load(&[("DATABASE_URL", "postgres://x@127.0.0.1/db")])
            .unwrap()
            .require_for_serve()
            .unwrap_err();
        assert_eq!(err.var, "CHATWOOT_URL");
        let key = KeyRing::generate().unwrap().to_paserk_list();
        let base = [
            ("DATABASE_URL", "postgres://x@127.0.0.1/db"),
            ("CHATWOOT_URL", "http://cw.local"),
        ];
        let err = load(&base).unwrap().require_for_serve().unwrap_err();
        assert_eq!(err.var, "HUB_TOKEN_KEYS");
        let with_token = [base[0], base[1], ("HUB_TOKEN_KEYS", key.as_str())];
        let err = load(&with_token).unwrap().require_for_serve().unwrap_err();
        assert_eq!(err.var, "HUB_DATA_KEYS");
        let complete = [
            base[0],
            base[1],
            ("HUB_TOKEN_KEYS", key.as_str()),
            ("HUB_DATA_KEYS", key.as_str()),
        ];
        assert!(load(&complete).unwrap().require_for_serve().is_ok());
    }

    #[test]
    fn each_malformed_value_is_named_in_one_line() {
        let cases = [
            ("HUB_BIND", "localhost"),
            ("HUB_PUBLIC_URL", "ftp://hub"),
            ("HUB_PUBLIC_URL", "https://hub.example.com/app"),
            ("CHATWOOT_URL", "not a url"),
            ("DATABASE_URL", "mysql://x/y"),
            ("REDIS_URL", "http://cache"),
            (
                "HUB_ALLOWED_ORIGINS",
                "https://ok.example.com,https://bad.example.com/path",
            ),
            ("HUB_TOKEN_KEYS", "k4.local.tooshort"),
            ("HUB_DATA_KEYS", "secret"),
            ("HUB_SUPER_ADMIN_EMAILS", "root"),
            ("HUB_ALLOW_PRIVATE_UPSTREAMS", "maybe"),
            ("HUB_BILLING_GRACE_DAYS", "-1"),
            ("HUB_HEALTH_INTERVAL_SECS", "0"),
            ("HUB_LOG_FORMAT", "xml"),
            ("RUST_LOG", "info,[="),
            ("HUB_BODY_LIMIT_BYTES", "lots"),
            ("HUB_API_KEY_RATE_PER_MINUTE", "0"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"),
        ];
        for (var, value) in cases {
            let err = load(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{var}={value} blamed {}", err.var);
            let line = err.to_string();
            assert!(
                line.starts_with(&format!("configuration error: {var}: ")),
                "{line}"
            );
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn origins_are_normalised_and_deduplicated() {
        let config = load(&[
            ("CHATWOOT_URL", "https://Chat.Example.com:443/app"),
            (
                "HUB_ALLOWED_ORIGINS",
                "https://chat.example.com, http://localhost:3000/",
            ),
        ])
        .unwrap();
        let origins: Vec<_> = config
            .trusted_origins()
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(
            origins,
            ["https://chat.example.com", "http://localhost:3000"]
        );
    }

    #[test]
    fn toml_file_holds_the_same_keys_and_environment_wins() {
        let mut sources = Sources::from_toml(
            "whatpro.toml",
            "HUB_BIND = \"0.0.0.0:9000\"\nHUB_BILLING_GRACE_DAYS = 3\nHUB_ALLOW_PRIVATE_UPSTREAMS = true\n",
        )
        .unwrap();
        sources.set("HUB_BIND", "127.0.0.1:9100");
        let config = Config::load(&sources).unwrap();
        assert_eq!(config.bind.port(), 9100);
        assert_eq!(config.billing_grace_days, 3);
        assert!(config.allow_private_upstreams);

        let err = Sources::from_toml("whatpro.toml", "HUB_BINDD = \"x\"").unwrap_err();
        assert_eq!(err.var, "whatpro.toml");
        assert!(err.problem.contains("HUB_BINDD"));
    }

    #[test]
    fn secrets_do_not_print() {
        let config = load(&[("ASAAS_API_KEY", "super-secret")]).unwrap();
        assert!(!format!("{config:?}").contains("super-secret"));
    }
}
