//! Limiter shared between instances: fixed-window counters in Redis, failing open to a
//! [`LocalLimiter`].

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::{Decision, LocalLimiter, MIN_RETRY_AFTER, Quota, RateLimitError, RateLimiter};

/// Prefix of every Redis key this crate writes.
const KEY_PREFIX: &str = "whatpro:rl:";

/// How long a check waits for Redis before deciding locally.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);

/// Extra time a check allows beyond its timeout before giving up on Redis itself.
const GUARD_MARGIN: Duration = Duration::from_millis(50);

/// How long [`RedisLimiter::connect`] waits for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long Redis is skipped after a failure.
const COOL_DOWN: Duration = Duration::from_secs(1);

/// At most one warning about Redis failures per this interval.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// Counts one event in the window of `KEYS[1]` (`ARGV[1]` = window length in ms) and answers
/// `{count, remaining ms of the window}`. The expiry is set when the window starts (and repaired
/// should the key ever lack one).
const WINDOW_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// Rate limiter whose counters live in Redis, shared by every instance that uses the same server
/// (fixed windows, failing open; see the crate docs).
pub struct RedisLimiter {
    conn: ConnectionManager,
    script: Script,
    timeout: Duration,
    fallback: LocalLimiter,
    health: Health,
}

impl RedisLimiter {
    /// Connects to the Redis server at `url` (e.g. `redis://127.0.0.1:6379/`) and loads the
    /// counting script; checks wait at most [`DEFAULT_TIMEOUT`] for Redis. Fails when the server
    /// cannot be reached now; later outages fail open.
    pub async fn connect(url: &str) -> Result<Self, RateLimitError> {
        Self::connect_with_timeout(url, DEFAULT_TIMEOUT).await
    }

    /// [`connect`](Self::connect), with checks that wait at most `timeout` for Redis.
    pub async fn connect_with_timeout(
        url: &str,
        timeout: Duration,
    ) -> Result<Self, RateLimitError> {
        let client = redis::Client::open(url)?;
        // A reply that does not come within `timeout` fails the call inside redis, which also
        // makes the connection manager reconnect (a silent connection is not kept forever).
        // Few retries per reconnect: checks trigger a new one anyway, at most once per cool-down.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2);
        let script = Script::new(WINDOW_SCRIPT);
        let setup = async {
            let mut conn = ConnectionManager::new_with_config(client, config).await?;
            script.prepare_invoke().load_async(&mut conn).await?;
            Ok::<_, RateLimitError>(conn)
        };
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, setup)
            .await
            .map_err(|_| RateLimitError::ConnectTimeout(CONNECT_TIMEOUT))??;
        Ok(Self {
            conn,
            script,
            timeout,
            fallback: LocalLimiter::new(),
            health: Health::new(),
        })
    }

    /// One round trip: count the event in Redis.
    async fn count(&self, key: &str, quota: Quota) -> redis::RedisResult<Decision> {
        let period_ms = u64::try_from(quota.period.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let redis_key = format!("{KEY_PREFIX}{}/{period_ms}:{key}", quota.limit);
        let mut conn = self.conn.clone();
        let (count, ttl_ms): (i64, i64) = self
            .script
            .key(redis_key)
            .arg(period_ms)
            .invoke_async(&mut conn)
            .await?;
        let count = u64::try_from(count).unwrap_or(0);
        let limit = u64::from(quota.limit);
        Ok(if count <= limit {
            Decision::Allowed {
                remaining: u32::try_from(limit - count).unwrap_or(0),
            }
        } else {
            let ttl_ms = u64::try_from(ttl_ms).unwrap_or(period_ms);
            Decision::Limited {
                retry_after: Duration::from_millis(ttl_ms).max(MIN_RETRY_AFTER),
            }
        })
    }
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("timeout", &self.timeout)
            .field("degraded", &self.health.degraded.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisLimiter {
    async fn check(&self, key: &str, quota: Quota) -> Decision {
        if let Some(decision) = quota.trivial_decision() {
            return decision;
        }
        if self.health.cooling_down() {
            return self.fallback.decide(key, quota);
        }
        // The response timeout inside redis normally fires first; this one also bounds waiting
        // for a reconnect.
        let guard = self.timeout.saturating_add(GUARD_MARGIN);
        match tokio::time::timeout(guard, self.count(key, quota)).await {
            Ok(Ok(decision)) => {
                self.health.succeeded();
                decision
            }
            Ok(Err(error)) => {
                self.health.failed(&error);
                self.fallback.decide(key, quota)
            }
            Err(_) => {
                self.health
                    .failed(&format_args!("no answer within {guard:?}"));
                self.fallback.decide(key, quota)
            }
        }
    }
}

/// Whether Redis is usable, and rate-limited logging of its failures.
struct Health {
    started: Instant,
    /// Milliseconds after `started` until which Redis is skipped.
    skip_until_ms: AtomicU64,
    /// Milliseconds after `started` of the last warning; `u64::MAX` before the first.
    last_warning_ms: AtomicU64,
    /// Failures since the last warning that were not logged.
    unlogged: AtomicU64,
    /// Whether the last call failed (to log the recovery once).
    degraded: AtomicBool,
}

impl Health {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            skip_until_ms: AtomicU64::new(0),
            last_warning_ms: AtomicU64::new(u64::MAX),
            unlogged: AtomicU64::new(0),
            degraded: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn cooling_down(&self) -> bool {
        self.now_ms() < self.skip_until_ms.load(Ordering::Relaxed)
    }

    fn succeeded(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!("redis rate limiter reachable again; counting in Redis");
        }
    }

    fn failed(&self, error: &dyn fmt::Display) {
        self.degraded.store(true, Ordering::Relaxed);
        let now = self.now_ms();
        self.skip_until_ms
            .store(now.saturating_add(millis(COOL_DOWN)), Ordering::Relaxed);
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= millis(WARN_EVERY);
        if due
            && self
                .last_warning_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                %error,
                unlogged_failures = unlogged,
                "redis rate limiter unavailable; deciding with the in-process limiter (fail open)"
            );
        } else {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
