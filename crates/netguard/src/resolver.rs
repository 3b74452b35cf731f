//! [`GuardedResolver`]: a reqwest DNS resolver that never hands out a forbidden address, so
//! the address check happens again at every connection (a host name that was public when it
//! was stored and later resolves to `127.0.0.1` — DNS rebinding — cannot be reached).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::ip::{self, NameClass};

/// Why [`GuardedResolver`] gave no address. reqwest wraps it in a connect error; find it
/// with [`std::error::Error::source`] and `downcast_ref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRefused {
    host: String,
    reason: &'static str,
}

impl ResolveRefused {
    /// The host name that was refused.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl fmt::Display for ResolveRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.host, self.reason)
    }
}

impl std::error::Error for ResolveRefused {}

/// Resolves with the system resolver (`getaddrinfo` on tokio's blocking pool, as reqwest's
/// default does) and drops every address [`crate::forbidden`] refuses; fails when none is
/// left or the name itself is refused (cloud metadata names always, local names unless
/// private upstreams are allowed).
///
/// reqwest does not consult the resolver for IP-literal hosts: vet those with
/// [`crate::UrlGuard`] or [`crate::forbidden_literal`] before the call; redirects to them are
/// covered by [`crate::redirect_policy`].
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allow_private: bool,
    hosts: Arc<HashMap<String, Vec<IpAddr>>>,
}

impl GuardedResolver {
    /// A resolver; `allow_private` keeps loopback/private addresses.
    pub fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            hosts: Arc::default(),
        }
    }

    /// The same resolver answering `name` (ASCII case-insensitive) with `addrs` instead of
    /// asking DNS, like an `/etc/hosts` line. The answer is filtered like any other, so a test
    /// can make a public-looking name resolve to `127.0.0.1` and watch it being refused
    /// (reqwest's own `ClientBuilder::resolve` overrides would bypass this resolver).
    #[must_use]
    pub fn with_static_host(mut self, name: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        Arc::make_mut(&mut self.hosts)
            .insert(name.to_ascii_lowercase(), addrs.into_iter().collect());
        self
    }

    /// Whether private upstreams are allowed.
    pub fn allow_private(&self) -> bool {
        self.allow_private
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let hosts = Arc::clone(&self.hosts);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let refused = |reason| ResolveRefused {
                host: host.clone(),
                reason,
            };
            match ip::classify_name(&host) {
                Some(NameClass::Metadata) => {
                    return Err(refused("is a cloud metadata host name").into());
                }
                Some(NameClass::Local) if !allow_private => {
                    return Err(refused("is a local host name").into());
                }
                _ => {}
            }
            let permitted = |ip: &IpAddr| ip::forbidden(*ip, allow_private).is_none();
            let fixed = if hosts.is_empty() {
                None
            } else {
                hosts.get(host.to_ascii_lowercase().as_str())
            };
            let addrs: Vec<SocketAddr> = match fixed {
                Some(fixed) => fixed
                    .iter()
                    .filter(|ip| permitted(ip))
                    .map(|ip| SocketAddr::new(*ip, 0))
                    .collect(),
                None => tokio::net::lookup_host((host.as_str(), 0))
                    .await?
                    .filter(|addr| permitted(&addr.ip()))
                    .collect(),
            };
            if addrs.is_empty() {
                return Err(refused("resolves to no allowed address").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
