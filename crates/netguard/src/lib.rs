//! `whatpro-netguard`: the SSRF guard for URLs a tenant gives the Hub (provider base URLs and
//! the like). Operator-set URLs (`CHATWOOT_URL`, `ASAAS_URL`) are trusted and do not go
//! through it.
//!
//! Three layers, each closing a gap the others leave:
//!
//! 1. [`UrlGuard::check`] when a URL is stored: http(s) only, no userinfo, at most
//!    [`MAX_URL_LEN`] bytes, and a host that is, or resolves only to, public addresses
//!    ([`AddressClass`] lists what is refused). It also implements the inbox domain's
//!    [`whatpro_inbox::UrlCheck`] port.
//! 2. [`GuardedResolver`], installed in reqwest, repeats the address check at every
//!    connection, so a name that later resolves to a private address (DNS rebinding) is not
//!    reached.
//! 3. [`redirect_policy`] refuses redirects to other schemes, to forbidden IP literals (which
//!    reqwest never passes to a resolver) and beyond [`MAX_REDIRECTS`] hops.
//!
//! [`guarded_client_builder`] installs 2 and 3. `allow_private`
//! (`HUB_ALLOW_PRIVATE_UPSTREAMS=true`, for `dev` and tests) opens loopback and private
//! ranges everywhere; cloud metadata endpoints stay closed.
//!
//! This crate owns no policy about *which* URLs are tenant-supplied; it must not depend on
//! the app, the database or a provider client.

mod client;
mod guard;
mod ip;
mod redirect;
mod resolver;

use std::net::IpAddr;

use url::{Host, Url};

pub use client::{guarded_client_builder, guarded_client_builder_with};
pub use guard::{ALLOW_PRIVATE_SETTING, GuardError, LOOKUP_TIMEOUT, MAX_URL_LEN, UrlGuard};
pub use ip::{AddressClass, classify, forbidden};
pub use redirect::{MAX_REDIRECTS, RedirectRefused, check_redirect, redirect_policy};
pub use resolver::{GuardedResolver, ResolveRefused};

/// The address and class when `url`'s host is an IP literal this setting refuses; `None` for
/// allowed literals and for host names (those are the resolver's business). Cheap: no DNS, no
/// allocation; meant to run before every call to a stored URL.
pub fn forbidden_literal(url: &Url, allow_private: bool) -> Option<(IpAddr, AddressClass)> {
    let addr = match url.host()? {
        Host::Ipv4(v4) => IpAddr::V4(v4),
        Host::Ipv6(v6) => IpAddr::V6(v6),
        Host::Domain(_) => return None,
    };
    forbidden(addr, allow_private).map(|class| (addr, class))
}
