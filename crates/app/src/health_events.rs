//! The in-process implementation of the inbox domain's `HealthEvents` port: a Tokio broadcast
//! channel. The realtime layer subscribes to it and turns each transition into a WebSocket
//! event; until then transitions are only counted and logged. With `REDIS_URL` a shared bus
//! will replace it (ARCHITECTURE §1).

use tokio::sync::broadcast;
use whatpro_inbox::{HealthEvents, HealthTransition};

/// How many transitions a slow subscriber may fall behind before it misses some.
pub const HEALTH_EVENTS_CAPACITY: usize = 1024;

/// Publishes instance health transitions to in-process subscribers.
#[derive(Debug)]
pub struct BroadcastHealthEvents {
    sender: broadcast::Sender<HealthTransition>,
}

impl Default for BroadcastHealthEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl BroadcastHealthEvents {
    /// A channel with [`HEALTH_EVENTS_CAPACITY`] slots.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(HEALTH_EVENTS_CAPACITY);
        Self { sender }
    }

    /// A new subscriber: it receives every transition published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HealthTransition> {
        self.sender.subscribe()
    }
}

impl HealthEvents for BroadcastHealthEvents {
    fn publish(&self, transition: &HealthTransition) {
        tracing::info!(
            account_id = transition.account_id.get(),
            instance_id = %transition.instance_id,
            from = transition.from.as_str(),
            to = transition.to.as_str(),
            source = transition.source.as_str(),
            "instance health changed"
        );
        // No subscriber is not an error: the transition is stored and audited anyway.
        let _ = self.sender.send(transition.clone());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use time::OffsetDateTime;
    use uuid::Uuid;
    use whatpro_inbox::{HealthSource, HealthState, InstanceId, ProviderId};
    use whatpro_kernel::AccountId;

    fn transition() -> HealthTransition {
        HealthTransition {
            account_id: AccountId::new(1),
            provider_id: ProviderId::from_uuid(Uuid::now_v7()),
            instance_id: InstanceId::from_uuid(Uuid::now_v7()),
            from: HealthState::Healthy,
            to: HealthState::Down,
            reason: None,
            source: HealthSource::Probe,
            at: OffsetDateTime::now_utc(),
        }
    }

    #[tokio::test]
    async fn subscribers_receive_what_is_published_after_they_subscribed() {
        let events = BroadcastHealthEvents::new();
        events.publish(&transition());
        let mut receiver = events.subscribe();
        let sent = transition();
        events.publish(&sent);
        assert_eq!(receiver.recv().await.unwrap(), sent);
        assert!(receiver.try_recv().is_err());
    }
}
