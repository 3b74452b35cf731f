//! [`UrlGuard`]: vets a tenant-supplied URL before the Hub stores or calls it.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use url::{Host, Url};
use whatpro_inbox::{UrlCheck, UrlRejected};

use crate::ip::{self, AddressClass, NameClass};

/// The longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// How long [`UrlGuard::check`] waits for a DNS answer.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The setting that opens loopback and private addresses, named in error sentences.
pub const ALLOW_PRIVATE_SETTING: &str = "HUB_ALLOW_PRIVATE_UPSTREAMS";

/// Why a URL was refused. `Display` is a sentence fit for an API error message; it names the
/// field, the host or the address, never the rest of the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// Longer than [`MAX_URL_LEN`].
    #[error("{field} is longer than {MAX_URL_LEN} characters")]
    TooLong {
        /// The field the URL came from.
        field: &'static str,
    },
    /// Not a URL at all.
    #[error("{field} is not a valid URL")]
    Invalid {
        /// The field the URL came from.
        field: &'static str,
    },
    /// A scheme other than `http` or `https`.
    #[error("{field} must use http or https, not {scheme}")]
    Scheme {
        /// The field the URL came from.
        field: &'static str,
        /// The refused scheme.
        scheme: String,
    },
    /// A user name or password in the URL.
    #[error("{field} must not contain a user name or password")]
    Userinfo {
        /// The field the URL came from.
        field: &'static str,
    },
    /// No host (e.g. `http:///x`).
    #[error("{field} has no host")]
    NoHost {
        /// The field the URL came from.
        field: &'static str,
    },
    /// A cloud metadata host name; never allowed.
    #[error("{field} points to {host}, a cloud metadata service, which is never allowed")]
    MetadataHost {
        /// The field the URL came from.
        field: &'static str,
        /// The host name.
        host: String,
    },
    /// `localhost`, a `.local`/`.internal` name or a single-label name.
    #[error(
        "{field} points to a local host name ({host}); set {ALLOW_PRIVATE_SETTING}=true to allow it"
    )]
    LocalName {
        /// The field the URL came from.
        field: &'static str,
        /// The host name.
        host: String,
    },
    /// The host is, or resolves to, a non-public address.
    #[error("{}", forbidden_sentence(field, *addr, *class))]
    Forbidden {
        /// The field the URL came from.
        field: &'static str,
        /// The first refused address.
        addr: IpAddr,
        /// Its class.
        class: AddressClass,
    },
    /// DNS gave no address (or no answer within [`LOOKUP_TIMEOUT`]).
    #[error("{field} host {host} could not be resolved")]
    Unresolvable {
        /// The field the URL came from.
        field: &'static str,
        /// The host name.
        host: String,
    },
}

fn forbidden_sentence(field: &str, addr: IpAddr, class: AddressClass) -> String {
    if class.always_forbidden() {
        format!("{field} resolves to {class} ({addr}), which is never allowed")
    } else {
        format!(
            "{field} resolves to {class} ({addr}); set {ALLOW_PRIVATE_SETTING}=true to allow it"
        )
    }
}

/// The checks that need no DNS: length, scheme, userinfo, host presence, host names that are
/// refused by name, and IP-literal hosts. Returns the parsed URL and, for a host name that
/// still needs resolving, that name.
pub(crate) fn check_static(
    field: &'static str,
    raw: &str,
    allow_private: bool,
) -> Result<(Url, Option<String>), GuardError> {
    if raw.len() > MAX_URL_LEN {
        return Err(GuardError::TooLong { field });
    }
    let url = Url::parse(raw.trim()).map_err(|_| GuardError::Invalid { field })?;
    let name = check_parsed(field, &url, allow_private)?;
    Ok((url, name))
}

/// [`check_static`] on an already parsed URL.
pub(crate) fn check_parsed(
    field: &'static str,
    url: &Url,
    allow_private: bool,
) -> Result<Option<String>, GuardError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(GuardError::Scheme {
            field,
            scheme: url.scheme().chars().take(32).collect(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(GuardError::Userinfo { field });
    }
    match url.host() {
        None => Err(GuardError::NoHost { field }),
        Some(Host::Domain("")) => Err(GuardError::NoHost { field }),
        Some(Host::Ipv4(v4)) => check_ip(field, IpAddr::V4(v4), allow_private).map(|()| None),
        Some(Host::Ipv6(v6)) => check_ip(field, IpAddr::V6(v6), allow_private).map(|()| None),
        Some(Host::Domain(name)) => {
            check_name(field, name, allow_private)?;
            Ok(Some(name.to_owned()))
        }
    }
}

pub(crate) fn check_ip(
    field: &'static str,
    addr: IpAddr,
    allow_private: bool,
) -> Result<(), GuardError> {
    match ip::forbidden(addr, allow_private) {
        Some(class) => Err(GuardError::Forbidden { field, addr, class }),
        None => Ok(()),
    }
}

pub(crate) fn check_name(
    field: &'static str,
    name: &str,
    allow_private: bool,
) -> Result<(), GuardError> {
    match ip::classify_name(name) {
        Some(NameClass::Metadata) => Err(GuardError::MetadataHost {
            field,
            host: name.to_owned(),
        }),
        Some(NameClass::Local) if !allow_private => Err(GuardError::LocalName {
            field,
            host: name.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The SSRF guard for tenant-supplied URLs (provider base URLs, ...).
///
/// Accepts only `http`/`https` URLs of at most [`MAX_URL_LEN`] bytes, without user name or
/// password, whose host is — or resolves only to — public addresses (see
/// [`AddressClass`]). With `allow_private` (`HUB_ALLOW_PRIVATE_UPSTREAMS=true`, set by `dev`
/// and tests) loopback, private and the other special ranges are accepted too, but cloud
/// metadata endpoints never are.
///
/// A check is a point-in-time answer: DNS may change afterwards (rebinding). Clients built
/// with [`crate::guarded_client_builder`] repeat the address check at every connection.
#[derive(Debug, Clone)]
pub struct UrlGuard {
    allow_private: bool,
    field: &'static str,
}

impl UrlGuard {
    /// A guard; `allow_private` opens loopback/private addresses. Error sentences name the
    /// field `base_url` until [`with_field`](Self::with_field) says otherwise.
    pub fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            field: "base_url",
        }
    }

    /// The same guard naming `field` in its error sentences (e.g. `webhook_url`).
    #[must_use]
    pub fn with_field(mut self, field: &'static str) -> Self {
        self.field = field;
        self
    }

    /// Whether private upstreams are allowed.
    pub fn allow_private(&self) -> bool {
        self.allow_private
    }

    /// Vets `url` and returns it parsed. Host names are resolved (bounded by
    /// [`LOOKUP_TIMEOUT`]) and refused when *any* address is not allowed.
    ///
    /// # Errors
    /// [`GuardError`] naming the first problem found.
    pub async fn check(&self, url: &str) -> Result<Url, GuardError> {
        let field = self.field;
        let (parsed, name) = check_static(field, url, self.allow_private)?;
        let Some(name) = name else {
            return Ok(parsed);
        };
        let port = parsed.port_or_known_default().unwrap_or(80);
        let unresolvable = || GuardError::Unresolvable {
            field,
            host: name.clone(),
        };
        let lookup = tokio::net::lookup_host((name.as_str(), port));
        let addrs = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(_)) | Err(_) => return Err(unresolvable()),
        };
        let mut any = false;
        for addr in addrs {
            any = true;
            check_ip(field, addr.ip(), self.allow_private)?;
        }
        if !any {
            return Err(unresolvable());
        }
        Ok(parsed)
    }
}

#[async_trait]
impl UrlCheck for UrlGuard {
    async fn check(&self, url: &str) -> Result<(), UrlRejected> {
        UrlGuard::check(self, url)
            .await
            .map(|_| ())
            .map_err(|e| UrlRejected(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    async fn refused(url: &str) -> GuardError {
        UrlGuard::new(false).check(url).await.unwrap_err()
    }

    async fn class_of(url: &str) -> AddressClass {
        match refused(url).await {
            GuardError::Forbidden { class, .. } => class,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn accepts_public_ip_literals_with_any_port_and_path() {
        let guard = UrlGuard::new(false);
        for url in [
            "http://8.8.8.8",
            "https://93.184.216.34:8443/base/path?x=1",
            "HTTPS://1.1.1.1/",
            "http://[2606:4700:4700::1111]:8080/",
        ] {
            let parsed = guard.check(url).await.unwrap();
            assert!(matches!(parsed.scheme(), "http" | "https"), "{url}");
        }
    }

    #[tokio::test]
    async fn refuses_each_non_public_ipv4_range() {
        use AddressClass::*;
        for (url, class) in [
            ("http://0.0.0.0/", Unspecified),
            ("http://0.1.2.3/", ThisNetwork),
            ("http://10.0.0.5/", Private),
            ("http://172.16.4.4/", Private),
            ("http://172.31.0.1/", Private),
            ("http://192.168.0.10:8080/", Private),
            ("http://100.64.0.1/", SharedCgnat),
            ("http://127.0.0.1:21465/", Loopback),
            ("http://127.1/", Loopback),
            ("http://2130706433/", Loopback),
            ("http://0x7f.0.0.1/", Loopback),
            ("http://169.254.10.10/", LinkLocal),
            ("http://169.254.169.254/latest/meta-data/", CloudMetadata),
            ("http://224.0.0.251/", Multicast),
            ("http://255.255.255.255/", Broadcast),
            ("http://192.0.2.1/", Documentation),
            ("http://198.51.100.1/", Documentation),
            ("http://203.0.113.9/", Documentation),
            ("http://198.18.0.1/", Benchmarking),
            ("http://240.0.0.1/", Reserved),
        ] {
            assert_eq!(class_of(url).await, class, "{url}");
        }
    }

    #[tokio::test]
    async fn refuses_ipv6_ranges_and_mapped_forms() {
        use AddressClass::*;
        for (url, class) in [
            ("http://[::]/", Unspecified),
            ("http://[::1]:8080/", Loopback),
            ("http://[fe80::1]/", LinkLocal),
            ("http://[fc00::1]/", UniqueLocal),
            ("http://[fd00::5]/", UniqueLocal),
            ("http://[ff02::1]/", Multicast),
            ("http://[2001:db8::1]/", Documentation),
            ("http://[::ffff:127.0.0.1]/", Loopback),
            ("http://[::ffff:10.0.0.5]/", Private),
            ("http://[::ffff:169.254.169.254]/", CloudMetadata),
            ("http://[::ffff:100.64.1.1]/", SharedCgnat),
            ("http://[64:ff9b::192.168.1.1]/", Private),
            ("http://[2002:c0a8:101::1]/", Private),
            ("http://[fd00:ec2::254]/", CloudMetadata),
        ] {
            assert_eq!(class_of(url).await, class, "{url}");
        }
    }

    #[tokio::test]
    async fn sentences_name_the_field_the_address_and_the_setting() {
        assert_eq!(
            refused("http://10.0.0.5/").await.to_string(),
            "base_url resolves to a private address (10.0.0.5); set \
             HUB_ALLOW_PRIVATE_UPSTREAMS=true to allow it"
        );
        assert_eq!(
            UrlGuard::new(false)
                .with_field("webhook_url")
                .check("http://[::1]/")
                .await
                .unwrap_err()
                .to_string(),
            "webhook_url resolves to a loopback address (::1); set \
             HUB_ALLOW_PRIVATE_UPSTREAMS=true to allow it"
        );
        assert_eq!(
            refused("http://169.254.169.254/").await.to_string(),
            "base_url resolves to a cloud metadata address (169.254.169.254), which is never \
             allowed"
        );
        assert_eq!(
            refused("ftp://files.example.com/").await.to_string(),
            "base_url must use http or https, not ftp"
        );
    }

    #[tokio::test]
    async fn refuses_other_schemes() {
        for url in [
            "ftp://8.8.8.8/",
            "file:///etc/passwd",
            "gopher://8.8.8.8:70/",
            "ws://8.8.8.8/",
            "data:text/plain,hello",
            "javascript:alert(1)",
        ] {
            assert!(
                matches!(refused(url).await, GuardError::Scheme { .. }),
                "{url}"
            );
        }
        for url in ["", "not a url", "http://", "//8.8.8.8/", "http://[::1/"] {
            assert!(
                matches!(
                    refused(url).await,
                    GuardError::Invalid { .. } | GuardError::NoHost { .. }
                ),
                "{url:?}"
            );
        }
    }

    #[tokio::test]
    async fn refuses_userinfo_without_echoing_it() {
        for url in [
            "http://user@8.8.8.8/",
            "http://user:s3cret@8.8.8.8/",
            "https://:s3cret@8.8.8.8/",
        ] {
            let error = refused(url).await;
            assert!(matches!(error, GuardError::Userinfo { .. }), "{url}");
            assert!(!error.to_string().contains("s3cret"));
        }
    }

    #[tokio::test]
    async fn refuses_urls_longer_than_2048_bytes() {
        let base = "https://8.8.8.8/";
        let fits = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len()));
        assert!(UrlGuard::new(false).check(&fits).await.is_ok());
        let long = format!("{fits}a");
        assert_eq!(
            refused(&long).await,
            GuardError::TooLong { field: "base_url" }
        );
    }

    #[tokio::test]
    async fn refuses_metadata_and_local_names_before_any_lookup() {
        for url in [
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.GOOGLE.INTERNAL./",
            "http://metadata/",
        ] {
            for allow_private in [false, true] {
                let error = UrlGuard::new(allow_private).check(url).await.unwrap_err();
                assert!(
                    matches!(error, GuardError::MetadataHost { .. }),
                    "{url}: {error:?}"
                );
            }
        }
        for url in [
            "http://localhost:8080/",
            "http://evo.localhost/",
            "http://db.corp.internal/",
            "http://printer.local/",
            "http://redis:6379/",
        ] {
            assert!(
                matches!(refused(url).await, GuardError::LocalName { .. }),
                "{url}"
            );
        }
    }

    #[tokio::test]
    async fn allow_private_accepts_loopback_and_private_but_not_metadata() {
        let guard = UrlGuard::new(true);
        assert!(guard.allow_private());
        for url in [
            "http://127.0.0.1:21465/",
            "http://10.0.0.5/",
            "http://[::1]/",
            "http://[fd00::5]/",
            "http://[::ffff:192.168.1.1]/",
            // Resolved through /etc/hosts: no DNS traffic.
            "http://localhost:8080/",
        ] {
            assert!(guard.check(url).await.is_ok(), "{url}");
        }
        assert!(guard.check("http://169.254.169.254/").await.is_err());
        assert!(guard.check("ftp://127.0.0.1/").await.is_err());
        assert!(guard.check("http://u:p@127.0.0.1/").await.is_err());
    }

    #[tokio::test]
    async fn implements_the_url_check_port() {
        let guard: &dyn UrlCheck = &UrlGuard::new(false);
        assert_eq!(guard.check("https://8.8.8.8/").await, Ok(()));
        let rejected = guard.check("http://192.168.1.1/").await.unwrap_err();
        assert!(
            rejected
                .0
                .starts_with("base_url resolves to a private address (192.168.1.1)"),
            "{rejected}"
        );
    }
}
