//! The redirect policy of guarded clients.

use reqwest::redirect::{Attempt, Policy};
use url::Url;

use crate::guard::{self, GuardError};

/// Most redirects a guarded client follows in one call.
pub const MAX_REDIRECTS: usize = 3;

/// Why a redirect was not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectRefused {
    /// More than [`MAX_REDIRECTS`] hops.
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooMany,
    /// The target failed the static URL checks (scheme, userinfo, a refused host name or IP
    /// literal).
    #[error("redirect refused: {0}")]
    Target(GuardError),
}

/// Decides one redirect: `target` is the `Location` to follow, `hops` the number of URLs
/// requested so far in this call (reqwest's `Attempt::previous().len()`: 1 at the first
/// redirect).
///
/// Refuses a chain longer than [`MAX_REDIRECTS`], a scheme other than http(s), userinfo, a
/// cloud metadata or (unless `allow_private`) local host name, and an IP-literal host in a
/// forbidden range. Other host names are left to the [`crate::GuardedResolver`], which vets
/// their addresses when the connection is made.
///
/// # Errors
/// [`RedirectRefused`] naming the problem.
pub fn check_redirect(
    target: &Url,
    hops: usize,
    allow_private: bool,
) -> Result<(), RedirectRefused> {
    if hops > MAX_REDIRECTS {
        return Err(RedirectRefused::TooMany);
    }
    guard::check_parsed("the redirect target", target, allow_private)
        .map(|_| ())
        .map_err(RedirectRefused::Target)
}

/// A `Policy::custom` applying [`check_redirect`]: a refused redirect fails the call with a
/// redirect error (`reqwest::Error::is_redirect`).
pub fn redirect_policy(allow_private: bool) -> Policy {
    Policy::custom(move |attempt: Attempt<'_>| {
        match check_redirect(attempt.url(), attempt.previous().len(), allow_private) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn decide(target: &str, hops: usize, allow_private: bool) -> Result<(), RedirectRefused> {
        check_redirect(&Url::parse(target).unwrap(), hops, allow_private)
    }

    #[test]
    fn follows_public_http_targets_up_to_the_limit() {
        assert_eq!(decide("https://api.example.com/x", 1, false), Ok(()));
        assert_eq!(decide("http://93.184.216.34/", 3, false), Ok(()));
        assert_eq!(
            decide("https://api.example.com/x", 4, false),
            Err(RedirectRefused::TooMany)
        );
        assert_eq!(
            decide("https://api.example.com/x", 4, true),
            Err(RedirectRefused::TooMany)
        );
    }

    #[test]
    fn refuses_forbidden_ip_literals_unless_private_is_allowed() {
        for target in [
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://10.0.0.5/",
            "http://[::ffff:192.168.1.1]/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://[fe80::1]/",
        ] {
            let refused = decide(target, 1, false).unwrap_err();
            assert!(
                matches!(
                    refused,
                    RedirectRefused::Target(GuardError::Forbidden { .. })
                ),
                "{target}: {refused:?}"
            );
            assert_eq!(decide(target, 1, true), Ok(()), "{target}");
        }
    }

    #[test]
    fn refuses_other_schemes_userinfo_and_metadata_always() {
        for allow_private in [false, true] {
            for target in [
                "ftp://example.com/",
                "file:///etc/passwd",
                "gopher://example.com/",
                "http://user:pw@example.com/",
                "http://169.254.169.254/latest/meta-data/",
                "http://metadata.google.internal/computeMetadata/v1/",
            ] {
                assert!(
                    decide(target, 1, allow_private).is_err(),
                    "{target} allow_private={allow_private}"
                );
            }
        }
    }

    #[test]
    fn refuses_local_names_unless_private_is_allowed() {
        assert!(decide("http://localhost:1/", 1, false).is_err());
        assert_eq!(decide("http://localhost:1/", 1, true), Ok(()));
    }
}
