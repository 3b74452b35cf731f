//! A reqwest builder with the guard installed.

use reqwest::ClientBuilder;

use crate::redirect::redirect_policy;
use crate::resolver::GuardedResolver;

/// A `reqwest::ClientBuilder` with the [`GuardedResolver`] and the [`redirect_policy`]
/// installed, and proxies off (a proxy would resolve host names itself, out of the guard's
/// sight). Add timeouts, pool settings and a user agent on top.
///
/// Do not add `ClientBuilder::resolve` overrides afterwards: reqwest consults them before the
/// guarded resolver. IP-literal URLs never reach a resolver: vet them with
/// [`crate::UrlGuard::check`] or [`crate::forbidden_literal`] before calling.
pub fn guarded_client_builder(allow_private: bool) -> ClientBuilder {
    guarded_client_builder_with(GuardedResolver::new(allow_private))
}

/// [`guarded_client_builder`] with a given resolver (e.g. one with static hosts for tests).
pub fn guarded_client_builder_with(resolver: GuardedResolver) -> ClientBuilder {
    let allow_private = resolver.allow_private();
    reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(resolver)
        .redirect(redirect_policy(allow_private))
}
