//! The health scheduler: probes every live instance about once per `HUB_HEALTH_INTERVAL_SECS`,
//! with at most [`HEALTH_CONCURRENCY`] probes in flight.
//!
//! Timing is per instance and jittered: an instance is first probed at a point of the interval
//! taken from its id, and each claim moves its next probe one interval ± 10 % ahead (random),
//! so probes spread evenly instead of arriving in waves. Claims are atomic in PostgreSQL
//! (`FOR UPDATE SKIP LOCKED`), so several Hub instances share the work without probing an
//! instance twice. The loop keeps the in-flight set topped up (it claims again whenever half
//! of the slots are free) and looks for due instances every [`HEALTH_POLL`] when idle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use whatpro_iam::PlatformScope;
use whatpro_inbox::HealthService;

/// Probes in flight at most.
pub const HEALTH_CONCURRENCY: usize = 64;

/// How often an idle scheduler looks for due instances.
pub const HEALTH_POLL: Duration = Duration::from_secs(1);

/// How long a stopping scheduler lets in-flight probes finish before abandoning them (their
/// instances are probed again one interval later).
pub const HEALTH_DRAIN: Duration = Duration::from_secs(2);

/// What a pass of [`HealthScheduler::probe_all_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassStats {
    /// Instances probed.
    pub probed: usize,
    /// Of those, how many changed state.
    pub transitions: usize,
    /// Probes whose result could not be stored.
    pub failed: usize,
}

/// Claims due instances and probes them with bounded concurrency.
#[derive(Debug, Clone)]
pub struct HealthScheduler {
    health: Arc<HealthService>,
    platform: PlatformScope,
    concurrency: usize,
}

/// How one probe task ended.
enum Probed {
    Changed,
    Unchanged,
    Failed,
}

impl HealthScheduler {
    /// A scheduler over `health` with `concurrency` probes in flight at most (at least one).
    pub fn new(health: Arc<HealthService>, concurrency: usize) -> Self {
        Self {
            health,
            platform: PlatformScope::for_system_jobs(),
            concurrency: concurrency.max(1),
        }
    }

    /// Claims up to `room` due instances and starts their probes; `true` when fewer were due
    /// (or the claim failed): nothing more is due right now.
    async fn refill(&self, inflight: &mut JoinSet<Probed>, room: usize) -> bool {
        match self.health.claim_due(&self.platform, room).await {
            Ok(targets) => {
                let exhausted = targets.len() < room;
                for target in targets {
                    let health = Arc::clone(&self.health);
                    let platform = self.platform.clone();
                    inflight.spawn(async move {
                        match health.probe_claimed(&platform, target).await {
                            Ok(Some(_)) => Probed::Changed,
                            Ok(None) => Probed::Unchanged,
                            Err(error) => {
                                tracing::warn!(error = %error, "could not store a probe's result");
                                Probed::Failed
                            }
                        }
                    });
                }
                exhausted
            }
            Err(error) => {
                tracing::warn!(error = %error, "could not claim due instances");
                true
            }
        }
    }

    fn count(stats: &mut PassStats, done: Result<Probed, tokio::task::JoinError>) {
        stats.probed += 1;
        match done {
            Ok(Probed::Changed) => stats.transitions += 1,
            Ok(Probed::Unchanged) => {}
            Ok(Probed::Failed) => stats.failed += 1,
            Err(error) => {
                tracing::error!(error = %error, "a probe task panicked");
                stats.failed += 1;
            }
        }
    }

    /// Runs until `stop` turns true (or its sender is dropped).
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        let mut inflight = JoinSet::new();
        let mut stats = PassStats::default();
        let mut idle = false;
        loop {
            let room = self.concurrency.saturating_sub(inflight.len());
            if !idle && room * 2 >= self.concurrency {
                idle = self.refill(&mut inflight, room).await;
            }
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                    Self::count(&mut stats, done);
                }
                () = tokio::time::sleep(HEALTH_POLL), if idle => idle = false,
            }
        }
        let drained = tokio::time::timeout(HEALTH_DRAIN, async {
            while let Some(done) = inflight.join_next().await {
                Self::count(&mut stats, done);
            }
        })
        .await;
        if drained.is_err() {
            inflight.abort_all();
        }
        tracing::debug!(
            probed = stats.probed,
            transitions = stats.transitions,
            "health scheduler stopped"
        );
    }

    /// Probes every instance due now, with bounded concurrency, until none is due (instances
    /// claimed during the pass are due again only an interval later). For benchmarks and
    /// tests; the server runs [`run`](Self::run).
    pub async fn probe_all_due(&self) -> (PassStats, Duration) {
        let started = Instant::now();
        let mut inflight = JoinSet::new();
        let mut stats = PassStats::default();
        let mut exhausted = false;
        loop {
            let room = self.concurrency.saturating_sub(inflight.len());
            if !exhausted && room * 2 >= self.concurrency {
                exhausted = self.refill(&mut inflight, room).await;
            }
            match inflight.join_next().await {
                Some(done) => Self::count(&mut stats, done),
                None if exhausted => break,
                None => {}
            }
        }
        (stats, started.elapsed())
    }
}
