//! In-process limiter: one `governor` GCRA keyed limiter per distinct quota.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;

use crate::{Decision, MIN_RETRY_AFTER, Quota, RateLimiter};

/// One GCRA limiter for one quota, with a state per key.
type KeyedGcra = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// How often [`LocalLimiter`] forgets keys that have fully refilled.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Rate limiter with counters in this process (GCRA, see the crate docs).
pub struct LocalLimiter {
    limiters: RwLock<HashMap<Quota, Arc<KeyedGcra>>>,
    started: Instant,
    /// Milliseconds after `started` of the last sweep.
    last_sweep_ms: AtomicU64,
}

impl LocalLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self {
            limiters: RwLock::new(HashMap::new()),
            started: Instant::now(),
            last_sweep_ms: AtomicU64::new(0),
        }
    }

    /// Counts one event for `key` under `quota` right away; [`RateLimiter::check`] without the
    /// future.
    pub fn decide(&self, key: &str, quota: Quota) -> Decision {
        if let Some(decision) = quota.trivial_decision() {
            return decision;
        }
        self.sweep_if_due();
        let Some(limiter) = self.limiter_for(quota) else {
            return Decision::Allowed {
                remaining: quota.limit,
            };
        };
        match limiter.check_key(&key.to_owned()) {
            Ok(state) => Decision::Allowed {
                remaining: state.remaining_burst_capacity(),
            },
            Err(not_until) => Decision::Limited {
                retry_after: not_until
                    .wait_time_from(limiter.clock().now())
                    .max(MIN_RETRY_AFTER),
            },
        }
    }

    /// Forgets keys whose limit has fully refilled (they behave exactly like unseen keys). Runs by
    /// itself about once a minute during checks; call it to sweep now.
    pub fn retain_recent(&self) {
        for limiter in self.all_limiters() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many keys currently hold state, over all quotas.
    pub fn tracked_keys(&self) -> usize {
        self.all_limiters().iter().map(|l| l.len()).sum()
    }

    fn all_limiters(&self) -> Vec<Arc<KeyedGcra>> {
        let limiters = self.limiters.read().unwrap_or_else(PoisonError::into_inner);
        limiters.values().cloned().collect()
    }

    /// The limiter of `quota`, made on first use; `None` if governor cannot express the quota.
    fn limiter_for(&self, quota: Quota) -> Option<Arc<KeyedGcra>> {
        {
            let limiters = self.limiters.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(limiter) = limiters.get(&quota) {
                return Some(Arc::clone(limiter));
            }
        }
        let burst = NonZeroU32::new(quota.limit)?;
        let gcra = governor::Quota::with_period(quota.period / quota.limit)?.allow_burst(burst);
        let mut limiters = self
            .limiters
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let limiter = limiters.entry(quota).or_insert_with(|| {
            Arc::new(
                governor::RateLimiter::keyed(gcra).with_middleware::<StateInformationMiddleware>(),
            )
        });
        Some(Arc::clone(limiter))
    }

    fn sweep_if_due(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(SWEEP_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(last) >= interval
            && self
                .last_sweep_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.retain_recent();
        }
    }
}

impl Default for LocalLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LocalLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalLimiter")
            .field("tracked_keys", &self.tracked_keys())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl RateLimiter for LocalLimiter {
    async fn check(&self, key: &str, quota: Quota) -> Decision {
        self.decide(key, quota)
    }
}
