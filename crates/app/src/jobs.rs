//! Background jobs of one Hub instance: the usage-counter flush, billing sweeps, the periodic
//! inbox re-sync and the provider health scheduler. They start with the server and stop
//! after it, with a last flush so a clean shutdown loses no metering.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use whatpro_entitlements::Metric;
use whatpro_iam::PlatformScope;

use crate::health_scheduler::{HEALTH_CONCURRENCY, HealthScheduler};
use crate::state::AppState;

/// Most accounts one scheduled inbox-sync round syncs (the rest wait for the next round).
const INBOX_SYNC_BATCH: i64 = 1000;

/// How often stored billing events are looked at when no webhook wakes the worker (failed
/// events are retried after their 60 s lease).
const EVENT_POLL: Duration = Duration::from_secs(5);

/// How often time-driven billing transitions run.
const BILLING_SWEEP: Duration = Duration::from_secs(60);

/// Running background jobs; [`Jobs::stop`] ends them.
pub struct Jobs {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

/// Runs `tick` every `period` until `stop` turns true, then once more when `final_run` is set.
fn every<F, Fut>(
    period: Duration,
    mut stop: watch::Receiver<bool>,
    final_run: bool,
    mut tick: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = interval.tick() => tick().await,
                _ = stop.changed() => break,
            }
        }
        if final_run {
            tick().await;
        }
    })
}

impl Jobs {
    /// Starts every job of `state` on the current Tokio runtime.
    pub fn start(state: &AppState) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();

        let metering = state.metering.clone();
        tasks.push(every(
            state.config.usage_flush_interval,
            stopped.clone(),
            true,
            move || {
                let metering = metering.clone();
                async move {
                    if let Err(e) = metering.flush().await {
                        tracing::warn!(error = %e, "usage flush failed; counters kept for the next one");
                    }
                }
            },
        ));

        // Billing: process stored gateway events as soon as they arrive (and retry failed
        // ones after their lease), and run time-driven transitions every minute.
        let billing = state.billing.clone();
        let metering = state.metering.clone();
        let wake = state.billing_events.clone();
        let mut stop_events = stopped.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                loop {
                    match billing
                        .process_next_event(&PlatformScope::for_system_jobs())
                        .await
                    {
                        Ok(Some(done)) => {
                            if let Some(account) = done.account {
                                metering.record(account, Metric::WebhooksProcessed, 1);
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "billing event failed; retried after its lease");
                            break;
                        }
                    }
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(EVENT_POLL) => {}
                    _ = stop_events.changed() => break,
                }
            }
        }));
        let billing = state.billing.clone();
        tasks.push(every(BILLING_SWEEP, stopped.clone(), false, move || {
            let billing = billing.clone();
            async move {
                if let Err(e) = billing.sweep(&PlatformScope::for_system_jobs()).await {
                    tracing::warn!(error = %e, "billing sweep failed");
                }
            }
        }));

        // Inbox mirror: re-sync every connected account once per interval.
        let inbox = state.inbox.clone();
        let interval = state.config.inbox_sync_interval;
        tasks.push(every(interval, stopped.clone(), false, move || {
            let inbox = inbox.clone();
            async move {
                match inbox
                    .sync_due(
                        &PlatformScope::for_system_jobs(),
                        interval,
                        INBOX_SYNC_BATCH,
                    )
                    .await
                {
                    Ok(round) => tracing::debug!(?round, "scheduled inbox sync round"),
                    Err(e) => tracing::warn!(error = %e, "scheduled inbox sync round failed"),
                }
            }
        }));

        // Provider health: probe every instance about once per interval.
        let scheduler = HealthScheduler::new(state.health.clone(), HEALTH_CONCURRENCY);
        let stop_health = stopped.clone();
        tasks.push(tokio::spawn(
            async move { scheduler.run(stop_health).await },
        ));

        Self { stop, tasks }
    }

    /// Stops every job and waits for their last run (the final usage flush).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
