//! Rate limiting for the Hub: how many events a key (a client IP, a session, a user, a tenant, an
//! API key ...) may cause per period.
//!
//! Callers depend on the [`RateLimiter`] port and build keys such as `"sso:ip:203.0.113.9"`; each
//! [`RateLimiter::check`] counts one event and answers a [`Decision`]. Two implementations:
//!
//! - [`LocalLimiter`] keeps counters in process. It runs one GCRA limiter from `governor` per
//!   distinct [`Quota`], keyed by the key string. A quota of `limit` per `period` allows a burst of
//!   `limit` events, then refills one event every `period / limit` (so `per_minute(10)` allows 10
//!   at once, then one more every 6 s). Keys that have fully refilled are forgotten by a sweep
//!   about once a minute, so memory stays bounded by the keys active in the last period.
//! - [`RedisLimiter`] shares counters between Hub instances through Redis (used when `REDIS_URL`
//!   is set). It is a fixed-window counter: the first event of a key starts a window of `period`
//!   (the Redis key `whatpro:rl:<limit>/<period_ms>:<key>` is created with that expiry) and every
//!   event increments it, in one atomic round trip (a Lua script). An event is allowed while the
//!   count is at most `limit`; once over, the answer is [`Decision::Limited`] with `retry_after`
//!   equal to the remaining life of the window (the key's `PTTL`). A fixed window may let up to
//!   twice `limit` through around a window boundary; that is the price of one cheap counter.
//!
//! **Redis failures fail open.** A limiter protects the service; it must not take it down. When a
//! Redis call errors or gets no answer within 200 ms (see [`RedisLimiter::connect_with_timeout`]), the
//! [`RedisLimiter`] logs a warning (at most one every 30 s, with a count of the failures it kept
//! quiet) and decides with an embedded [`LocalLimiter`] instead, so every instance still enforces
//! the limit on its own. After a failure it skips Redis for one second before trying again, so an
//! outage does not add the timeout to every request.

mod local;
mod shared;

use std::time::Duration;

pub use local::LocalLimiter;
pub use shared::{DEFAULT_TIMEOUT, RedisLimiter};

/// How many events per period.
///
/// A `limit` of 0 limits every event; a zero `period` (or one too short to split into `limit`
/// steps of at least a nanosecond) means "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Events allowed per period.
    pub limit: u32,
    /// The period the limit applies to.
    pub period: Duration,
}

impl Quota {
    /// `limit` events per `period`.
    pub const fn new(limit: u32, period: Duration) -> Self {
        Self { limit, period }
    }

    /// `limit` events per minute.
    pub const fn per_minute(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(60))
    }

    /// `limit` events per second.
    pub const fn per_second(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(1))
    }

    /// The answer when the quota needs no counting: it allows nothing or limits nothing.
    fn trivial_decision(self) -> Option<Decision> {
        if self.limit == 0 {
            Some(Decision::Limited {
                retry_after: self.period.max(MIN_RETRY_AFTER),
            })
        } else if (self.period / self.limit).is_zero() {
            Some(Decision::Allowed {
                remaining: self.limit,
            })
        } else {
            None
        }
    }
}

/// The smallest `retry_after` ever answered, so that callers never see a zero wait.
const MIN_RETRY_AFTER: Duration = Duration::from_millis(1);

/// The answer for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The event is allowed; `remaining` more would be allowed right now.
    Allowed {
        /// Events still allowed before the limit is reached.
        remaining: u32,
    },
    /// The event is over the limit; try again after `retry_after` (never zero).
    Limited {
        /// How long until an event for this key would be allowed again.
        retry_after: Duration,
    },
}

impl Decision {
    /// Whether the event is allowed.
    pub const fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }

    /// For a limited event, the wait in whole seconds, rounded up and at least 1 (the value of a
    /// `Retry-After` header); `None` when allowed.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Allowed { .. } => None,
            Self::Limited { retry_after } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Some(secs.max(1))
            }
        }
    }
}

/// Counts events per key and says whether each one is allowed.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one event for `key` (e.g. "sso:ip:203.0.113.9") under `quota`.
    ///
    /// Limits with different quotas are independent even when their keys are equal; still, give
    /// each use its own key prefix (`"sso:ip:"`, `"refresh:session:"` ...).
    async fn check(&self, key: &str, quota: Quota) -> Decision;
}

/// Why a [`RedisLimiter`] could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// The URL was invalid or the server refused or failed the connection.
    #[error("redis rate limiter: {0}")]
    Redis(#[from] redis::RedisError),
    /// The server did not answer in time.
    #[error("redis rate limiter: no answer from the server within {0:?}")]
    ConnectTimeout(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_secs_rounds_up_and_is_at_least_one() {
        let limited = |retry_after| Decision::Limited { retry_after };
        assert_eq!(
            limited(Duration::from_millis(1)).retry_after_secs(),
            Some(1)
        );
        assert_eq!(limited(Duration::ZERO).retry_after_secs(), Some(1));
        assert_eq!(limited(Duration::from_secs(6)).retry_after_secs(), Some(6));
        assert_eq!(
            limited(Duration::from_millis(6001)).retry_after_secs(),
            Some(7)
        );
        assert_eq!(Decision::Allowed { remaining: 3 }.retry_after_secs(), None);
    }

    #[test]
    fn quotas_that_need_no_counting() {
        assert_eq!(
            Quota::per_minute(0).trivial_decision(),
            Some(Decision::Limited {
                retry_after: Duration::from_secs(60)
            })
        );
        assert_eq!(
            Quota::new(5, Duration::ZERO).trivial_decision(),
            Some(Decision::Allowed { remaining: 5 })
        );
        assert_eq!(Quota::per_second(1_000).trivial_decision(), None);
    }
}
