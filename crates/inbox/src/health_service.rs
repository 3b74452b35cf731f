//! [`HealthService`]: probing instances (on schedule or on demand) and storing what the health
//! machine makes of the answers. The scheduling loop itself (timing, bounded concurrency)
//! lives with the other background jobs in the app; this service claims due instances and
//! probes one instance at a time.

use std::sync::Arc;
use std::time::Duration;

use whatpro_iam::{Action, PlatformScope, TenantScope};
use whatpro_kernel::Clock;

use crate::error::InboxError;
use crate::health::{HealthSettings, evaluate_probe};
use crate::ids::{InstanceId, ProviderId};
use crate::model::{HealthSource, HealthTransition, HealthUpdate, ProbeTarget, ProviderInstance};
use crate::ports::{HealthEvents, ProviderStore, SecretSealer};
use crate::provider::{Credentials, ProbeOutcome, ProbeReport, ProbeRequest, ProviderProbe};
use crate::provider_service::save_with_retry;
use crate::secrets::{
    instance_credentials_purpose, open_credentials, provider_credentials_purpose,
};

/// Share of the interval by which each instance's next probe is moved earlier or later at
/// random, so probes do not bunch up.
pub const JITTER_RATIO: f64 = 0.1;

/// Probes instances and records their health.
pub struct HealthService {
    store: Arc<dyn ProviderStore>,
    probe: Arc<dyn ProviderProbe>,
    sealer: Arc<dyn SecretSealer>,
    events: Arc<dyn HealthEvents>,
    clock: Arc<dyn Clock>,
    settings: HealthSettings,
}

impl std::fmt::Debug for HealthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl HealthService {
    /// Wires the service.
    pub fn new(
        store: Arc<dyn ProviderStore>,
        probe: Arc<dyn ProviderProbe>,
        sealer: Arc<dyn SecretSealer>,
        events: Arc<dyn HealthEvents>,
        clock: Arc<dyn Clock>,
        settings: HealthSettings,
    ) -> Self {
        Self {
            store,
            probe,
            sealer,
            events,
            clock,
            settings,
        }
    }

    /// The thresholds in force.
    pub fn settings(&self) -> &HealthSettings {
        &self.settings
    }

    /// Claims up to `limit` instances due for a probe (across accounts) and schedules their
    /// next probe one interval (± [`JITTER_RATIO`]) from now.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn claim_due(
        &self,
        platform: &PlatformScope,
        limit: usize,
    ) -> Result<Vec<ProbeTarget>, InboxError> {
        let interval = millis(self.settings.interval);
        let jitter = (interval as f64 * JITTER_RATIO) as i64;
        Ok(self
            .store
            .claim_due(
                platform,
                self.clock.now(),
                interval,
                jitter,
                i64::try_from(limit).unwrap_or(i64::MAX),
            )
            .await?)
    }

    /// Probes one claimed instance and stores its new health (as its account's system job);
    /// returns the transition when the state changed (also published).
    ///
    /// # Errors
    /// Storage errors; `InstanceNotFound` when it was deleted meanwhile.
    pub async fn probe_claimed(
        &self,
        platform: &PlatformScope,
        target: ProbeTarget,
    ) -> Result<Option<HealthTransition>, InboxError> {
        let scope = platform.tenant(target.account_id);
        self.probe_and_save(&scope, target).await
    }

    /// Probes an instance now (admins, e.g. after fixing a provider) and answers it with its
    /// new health.
    ///
    /// # Errors
    /// `Forbidden`; `InstanceNotFound`; storage errors.
    pub async fn probe_now(
        &self,
        scope: &TenantScope,
        provider: ProviderId,
        id: InstanceId,
    ) -> Result<ProviderInstance, InboxError> {
        if !scope.can(Action::ProvidersWrite) {
            return Err(InboxError::Forbidden);
        }
        let target = self.store.probe_target(scope, provider, id).await?;
        self.probe_and_save(scope, target).await?;
        self.store.instance(scope, provider, id).await
    }

    async fn probe_and_save(
        &self,
        scope: &TenantScope,
        target: ProbeTarget,
    ) -> Result<Option<HealthTransition>, InboxError> {
        let report = self.run_probe(&target).await;
        let now = self.clock.now();
        let settings = self.settings;
        let (_, transition) = save_with_retry(
            self.store.as_ref(),
            self.events.as_ref(),
            scope,
            target.instance_id,
            target.snapshot,
            |snapshot| {
                let evaluation = evaluate_probe(snapshot, &report, now, &settings);
                HealthUpdate {
                    health: evaluation.health,
                    consecutive_failures: evaluation.consecutive_failures,
                    source: HealthSource::Probe,
                }
            },
        )
        .await?;
        Ok(transition)
    }

    /// Opens the credentials and asks the provider; credentials that no longer open (the data
    /// keys changed) count as refused credentials.
    async fn run_probe(&self, target: &ProbeTarget) -> ProbeReport {
        let provider_credentials = open_credentials(
            self.sealer.as_ref(),
            &provider_credentials_purpose(target.account_id, target.provider_id),
            &target.provider_credentials,
        );
        let instance_credentials = match &target.instance_credentials {
            Some(sealed) => open_credentials(
                self.sealer.as_ref(),
                &instance_credentials_purpose(target.account_id, target.instance_id),
                sealed,
            ),
            None => Ok(Credentials::default()),
        };
        let (Ok(provider_credentials), Ok(instance_credentials)) =
            (provider_credentials, instance_credentials)
        else {
            tracing::warn!(
                instance = %target.instance_id,
                "stored provider credentials cannot be opened with HUB_DATA_KEYS"
            );
            return ProbeReport {
                outcome: ProbeOutcome::Unauthorized,
                latency: Duration::ZERO,
                detail:
                    "the stored credentials cannot be decrypted with HUB_DATA_KEYS; save them again"
                        .to_owned(),
            };
        };
        let request = ProbeRequest {
            provider_type: target.provider_type,
            base_url: &target.base_url,
            provider_credentials: &provider_credentials,
            instance_name: &target.instance_name,
            instance_credentials: &instance_credentials,
        };
        self.probe.probe(&request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ProviderId;
    use crate::model::{HealthSnapshot, HealthState, InstanceHealth};
    use crate::ports::{HealthSaved, MockHealthEvents, MockProviderStore, MockSecretSealer};
    use crate::provider::{MockProviderProbe, ProviderType};
    use time::OffsetDateTime;
    use time::macros::datetime;
    use uuid::Uuid;
    use whatpro_iam::Role;
    use whatpro_kernel::{AccountId, FixedClock, UserId};

    const NOW: OffsetDateTime = datetime!(2026-12-01 10:00:00 UTC);

    fn target(failures: i32) -> ProbeTarget {
        ProbeTarget {
            account_id: AccountId::new(3),
            provider_id: ProviderId::from_uuid(Uuid::now_v7()),
            instance_id: InstanceId::from_uuid(Uuid::now_v7()),
            provider_type: ProviderType::Evolution,
            base_url: "http://evo.example".into(),
            provider_credentials: "p".into(),
            instance_name: "suporte".into(),
            instance_credentials: None,
            snapshot: HealthSnapshot {
                health: InstanceHealth {
                    state: HealthState::Degraded,
                    ..InstanceHealth::unknown()
                },
                consecutive_failures: failures,
                last_event_at: None,
                version: 9,
            },
        }
    }

    fn sealer(works: bool) -> MockSecretSealer {
        let mut sealer = MockSecretSealer::new();
        sealer.expect_open().returning(move |purpose, _| {
            if works && purpose.starts_with("whatpro:sealed:provider-credentials:3:") {
                Ok(br#"{"api_key":"k"}"#.to_vec())
            } else {
                Err(crate::ports::SealError("no key".into()))
            }
        });
        sealer
    }

    fn service(
        store: MockProviderStore,
        probe: MockProviderProbe,
        sealer: MockSecretSealer,
        events: MockHealthEvents,
    ) -> HealthService {
        HealthService::new(
            Arc::new(store),
            Arc::new(probe),
            Arc::new(sealer),
            Arc::new(events),
            Arc::new(FixedClock::new(NOW)),
            HealthSettings::default(),
        )
    }

    #[tokio::test]
    async fn a_second_probe_without_answer_takes_the_instance_down_and_is_published() {
        let mut probe = MockProviderProbe::new();
        probe
            .expect_probe()
            .withf(|r| {
                r.provider_credentials.get("api_key") == Some("k") && r.instance_name == "suporte"
            })
            .returning(|_| ProbeReport {
                outcome: ProbeOutcome::Unreachable,
                latency: Duration::from_secs(5),
                detail: "no answer within 5000 ms".into(),
            });
        let mut store = MockProviderStore::new();
        store
            .expect_save_health()
            .withf(|scope, _, version, update| {
                scope.account_id() == AccountId::new(3)
                    && *scope.actor() == whatpro_iam::Actor::System
                    && *version == 9
                    && update.health.state == HealthState::Down
                    && update.consecutive_failures == 2
                    && update.source == HealthSource::Probe
            })
            .returning(|scope, id, _, update| {
                Ok(HealthSaved::Changed(HealthTransition {
                    account_id: scope.account_id(),
                    provider_id: ProviderId::from_uuid(Uuid::nil()),
                    instance_id: id,
                    from: HealthState::Degraded,
                    to: update.health.state,
                    reason: update.health.reason.clone(),
                    source: update.source,
                    at: NOW,
                }))
            });
        let mut events = MockHealthEvents::new();
        events.expect_publish().times(1).return_const(());
        let transition = service(store, probe, sealer(true), events)
            .probe_claimed(&PlatformScope::for_system_jobs(), target(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(transition.to, HealthState::Down);
    }

    #[tokio::test]
    async fn unreadable_credentials_are_reported_without_calling_the_provider() {
        let mut probe = MockProviderProbe::new();
        probe.expect_probe().never();
        let mut store = MockProviderStore::new();
        store
            .expect_save_health()
            .withf(|_, _, _, u| {
                u.health.state == HealthState::Down
                    && u.health
                        .reason
                        .as_deref()
                        .is_some_and(|r| r.contains("HUB_DATA_KEYS"))
            })
            .returning(|_, _, _, _| Ok(HealthSaved::Unchanged));
        let mut events = MockHealthEvents::new();
        events.expect_publish().never();
        let transition = service(store, probe, sealer(false), events)
            .probe_claimed(&PlatformScope::for_system_jobs(), target(0))
            .await
            .unwrap();
        assert_eq!(transition, None);
    }

    #[tokio::test]
    async fn claims_use_the_interval_with_ten_percent_jitter() {
        let mut store = MockProviderStore::new();
        store
            .expect_claim_due()
            .withf(|_, now, interval, jitter, limit| {
                *now == NOW && *interval == 60_000 && *jitter == 6_000 && *limit == 64
            })
            .returning(|_, _, _, _, _| Ok(Vec::new()));
        let svc = service(
            store,
            MockProviderProbe::new(),
            MockSecretSealer::new(),
            MockHealthEvents::new(),
        );
        assert!(
            svc.claim_due(&PlatformScope::for_system_jobs(), 64)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn probing_on_demand_is_for_admins() {
        let mut store = MockProviderStore::new();
        store.expect_probe_target().never();
        let svc = service(
            store,
            MockProviderProbe::new(),
            MockSecretSealer::new(),
            MockHealthEvents::new(),
        );
        let scope = TenantScope::for_tests(AccountId::new(3), UserId::new(1), Role::Supervisor);
        let err = svc
            .probe_now(
                &scope,
                ProviderId::from_uuid(Uuid::now_v7()),
                InstanceId::from_uuid(Uuid::now_v7()),
            )
            .await
            .unwrap_err();
        assert_eq!(err, InboxError::Forbidden);
    }
}
