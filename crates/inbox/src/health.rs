//! The health state machine, as pure functions: a probe report (or a provider's
//! `connection.update` event) plus what is known about the instance gives its new health.
//!
//! | observation | new state |
//! |---|---|
//! | connected, answered within `slow`, not silent | `healthy` |
//! | connected but slower than `slow` | `degraded` |
//! | connected, but no event for `silent` after the instance had sent events | `degraded` |
//! | connecting (pairing, reconnecting) | `degraded` |
//! | disconnected, credentials refused, instance unknown to the provider | `down` |
//! | no usable answer, first time in a row | `degraded` (`down` stays `down`) |
//! | no usable answer, second time in a row (or more) | `down` |
//!
//! `unknown` is the state of an instance that was never probed.

use std::time::Duration;

use time::OffsetDateTime;

use crate::ids::InstanceId;
use crate::model::{HealthSnapshot, HealthState, InstanceHealth};
use crate::provider::{ProbeOutcome, ProbeReport};

/// Probes in a row without an answer after which an instance is `down`.
pub const FAILURES_BEFORE_DOWN: i32 = 2;

/// Thresholds of the health machine (from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSettings {
    /// `HUB_HEALTH_INTERVAL_SECS`: time between two probes of one instance.
    pub interval: Duration,
    /// `HUB_HEALTH_SLOW_MS`: a probe slower than this makes the instance `degraded`.
    pub slow: Duration,
    /// `HUB_HEALTH_SILENT_SECS`: "connected" without events for this long is `degraded`.
    pub silent: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            slow: Duration::from_millis(2000),
            silent: Duration::from_secs(900),
        }
    }
}

/// A new health and failure count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The health to store.
    pub health: InstanceHealth,
    /// Probes in a row without an answer.
    pub consecutive_failures: i32,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn with_detail(text: &str, detail: &str) -> String {
    if detail.trim().is_empty() {
        text.to_owned()
    } else {
        format!("{text} ({})", detail.trim())
    }
}

/// The health after a probe answered `report` at `now`.
pub fn evaluate_probe(
    before: &HealthSnapshot,
    report: &ProbeReport,
    now: OffsetDateTime,
    settings: &HealthSettings,
) -> Evaluation {
    let latency_ms = millis(report.latency);
    let detail = report.detail.as_str();
    let (state, reason, failures) = match report.outcome {
        ProbeOutcome::Connected => {
            let silent_for = before
                .last_event_at
                .map(|at| now - at)
                .filter(|age| age.whole_milliseconds() > i128::from(millis(settings.silent)));
            if report.latency > settings.slow {
                (
                    HealthState::Degraded,
                    format!(
                        "slow: the provider answered in {latency_ms} ms (threshold {} ms)",
                        millis(settings.slow)
                    ),
                    0,
                )
            } else if let Some(age) = silent_for {
                (
                    HealthState::Degraded,
                    format!(
                        "the provider says connected, but no event arrived for {} s (threshold {} s)",
                        age.whole_seconds(),
                        settings.silent.as_secs()
                    ),
                    0,
                )
            } else {
                (HealthState::Healthy, with_detail("connected", detail), 0)
            }
        }
        ProbeOutcome::Connecting => (
            HealthState::Degraded,
            with_detail("pairing or reconnecting", detail),
            0,
        ),
        ProbeOutcome::Disconnected => (
            HealthState::Down,
            with_detail("the provider says disconnected", detail),
            0,
        ),
        ProbeOutcome::Unauthorized => (
            HealthState::Down,
            with_detail("the provider refused the credentials", detail),
            0,
        ),
        ProbeOutcome::NotFound => (
            HealthState::Down,
            with_detail("the provider does not know this instance", detail),
            0,
        ),
        ProbeOutcome::Unreachable | ProbeOutcome::BadAnswer => {
            let failures = before.consecutive_failures.saturating_add(1);
            let what = if report.outcome == ProbeOutcome::Unreachable {
                "no answer"
            } else {
                "unreadable answer"
            };
            if failures >= FAILURES_BEFORE_DOWN {
                (
                    HealthState::Down,
                    with_detail(&format!("{what} in {failures} probes in a row"), detail),
                    failures,
                )
            } else if before.health.state == HealthState::Down {
                (
                    HealthState::Down,
                    with_detail(&format!("still down; {what}"), detail),
                    failures,
                )
            } else {
                (
                    HealthState::Degraded,
                    with_detail(
                        &format!("{what} (down after {FAILURES_BEFORE_DOWN} in a row)"),
                        detail,
                    ),
                    failures,
                )
            }
        }
    };
    Evaluation {
        health: InstanceHealth {
            state,
            checked_at: Some(now),
            latency_ms: Some(latency_ms),
            reason: Some(reason),
        },
        consecutive_failures: failures,
    }
}

/// A connection state pushed by the provider (Evolution `connection.update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushedState {
    /// `open`.
    Open,
    /// `connecting`.
    Connecting,
    /// `close`.
    Close,
    /// `refused` (QR code attempt limit reached).
    Refused,
}

impl PushedState {
    /// Parses Evolution's state string.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(PushedState::Open),
            "connecting" => Some(PushedState::Connecting),
            "close" => Some(PushedState::Close),
            "refused" => Some(PushedState::Refused),
            _ => None,
        }
    }

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            PushedState::Open => "open",
            PushedState::Connecting => "connecting",
            PushedState::Close => "close",
            PushedState::Refused => "refused",
        }
    }
}

/// The health after the provider pushed `state` at `now` (`status_reason`: Evolution's
/// `statusReason`, e.g. the Baileys disconnect code).
pub fn evaluate_pushed_state(
    before: &HealthSnapshot,
    state: PushedState,
    status_reason: Option<i64>,
    now: OffsetDateTime,
) -> Evaluation {
    let code = status_reason
        .map(|c| format!(", statusReason {c}"))
        .unwrap_or_default();
    let (new_state, reason) = match state {
        PushedState::Open => (HealthState::Healthy, "connection.update: open".to_owned()),
        PushedState::Connecting => (
            HealthState::Degraded,
            "connection.update: connecting (pairing or reconnecting)".to_owned(),
        ),
        PushedState::Close => (
            HealthState::Down,
            format!("connection.update: close (the session ended{code})"),
        ),
        PushedState::Refused => (
            HealthState::Down,
            format!("connection.update: refused (QR code limit reached{code})"),
        ),
    };
    Evaluation {
        health: InstanceHealth {
            state: new_state,
            checked_at: Some(now),
            latency_ms: before.health.latency_ms,
            reason: Some(reason),
        },
        consecutive_failures: 0,
    }
}

/// How long after its creation an instance is probed first: a fraction of `interval` taken
/// from the random bits of its id, so new instances spread evenly over the interval.
pub fn first_check_delay(id: InstanceId, interval: Duration) -> Duration {
    // UUID v7 keeps a counter in its first random bits (ids made in the same millisecond
    // follow each other); its last 32 bits are random.
    let bytes = id.as_uuid().into_bytes();
    let mut tail = [0u8; 4];
    tail.copy_from_slice(&bytes[12..]);
    let fraction = f64::from(u32::from_be_bytes(tail)) / (f64::from(u32::MAX) + 1.0);
    interval.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use uuid::Uuid;

    const NOW: OffsetDateTime = datetime!(2026-12-01 12:00:00 UTC);

    fn settings() -> HealthSettings {
        HealthSettings {
            interval: Duration::from_secs(60),
            slow: Duration::from_millis(2000),
            silent: Duration::from_secs(900),
        }
    }

    fn snapshot(
        state: HealthState,
        failures: i32,
        last_event_secs_ago: Option<i64>,
    ) -> HealthSnapshot {
        HealthSnapshot {
            health: InstanceHealth {
                state,
                checked_at: None,
                latency_ms: None,
                reason: None,
            },
            consecutive_failures: failures,
            last_event_at: last_event_secs_ago.map(|s| NOW - time::Duration::seconds(s)),
            version: 1,
        }
    }

    fn report(outcome: ProbeOutcome, ms: u64) -> ProbeReport {
        ProbeReport {
            outcome,
            latency: Duration::from_millis(ms),
            detail: "x".to_owned(),
        }
    }

    fn state_after(before: &HealthSnapshot, outcome: ProbeOutcome, ms: u64) -> (HealthState, i32) {
        let e = evaluate_probe(before, &report(outcome, ms), NOW, &settings());
        (e.health.state, e.consecutive_failures)
    }

    #[test]
    fn a_fast_connected_answer_is_healthy_from_any_state() {
        for from in [
            HealthState::Unknown,
            HealthState::Healthy,
            HealthState::Degraded,
            HealthState::Down,
        ] {
            let before = snapshot(from, 1, None);
            assert_eq!(
                state_after(&before, ProbeOutcome::Connected, 120),
                (HealthState::Healthy, 0),
                "{from}"
            );
        }
        let e = evaluate_probe(
            &snapshot(HealthState::Unknown, 0, None),
            &report(ProbeOutcome::Connected, 120),
            NOW,
            &settings(),
        );
        assert_eq!(e.health.latency_ms, Some(120));
        assert_eq!(e.health.checked_at, Some(NOW));
    }

    #[test]
    fn slow_answers_are_degraded() {
        let before = snapshot(HealthState::Healthy, 0, None);
        assert_eq!(
            state_after(&before, ProbeOutcome::Connected, 2000).0,
            HealthState::Healthy,
            "exactly the threshold is not slower than it"
        );
        let e = evaluate_probe(
            &before,
            &report(ProbeOutcome::Connected, 2001),
            NOW,
            &settings(),
        );
        assert_eq!(e.health.state, HealthState::Degraded);
        assert!(e.health.reason.unwrap().starts_with("slow"));
    }

    #[test]
    fn connected_but_silent_after_events_is_degraded() {
        // Never sent an event: silence says nothing.
        assert_eq!(
            state_after(
                &snapshot(HealthState::Healthy, 0, None),
                ProbeOutcome::Connected,
                10
            )
            .0,
            HealthState::Healthy
        );
        // Recent event.
        assert_eq!(
            state_after(
                &snapshot(HealthState::Healthy, 0, Some(899)),
                ProbeOutcome::Connected,
                10
            )
            .0,
            HealthState::Healthy
        );
        // Silent past the threshold while the provider claims connected.
        let e = evaluate_probe(
            &snapshot(HealthState::Healthy, 0, Some(901)),
            &report(ProbeOutcome::Connected, 10),
            NOW,
            &settings(),
        );
        assert_eq!(e.health.state, HealthState::Degraded);
        assert!(
            e.health
                .reason
                .unwrap()
                .contains("no event arrived for 901 s")
        );
    }

    #[test]
    fn the_providers_word_on_disconnection_is_down_at_once() {
        for outcome in [
            ProbeOutcome::Disconnected,
            ProbeOutcome::Unauthorized,
            ProbeOutcome::NotFound,
        ] {
            assert_eq!(
                state_after(
                    &snapshot(HealthState::Healthy, 1, None),
                    outcome.clone(),
                    10
                ),
                (HealthState::Down, 0),
                "{outcome:?}"
            );
        }
        assert_eq!(
            state_after(
                &snapshot(HealthState::Healthy, 0, None),
                ProbeOutcome::Connecting,
                10
            ),
            (HealthState::Degraded, 0)
        );
    }

    #[test]
    fn two_probes_in_a_row_without_answer_make_it_down() {
        let healthy = snapshot(HealthState::Healthy, 0, None);
        let (state, failures) = state_after(&healthy, ProbeOutcome::Unreachable, 5000);
        assert_eq!((state, failures), (HealthState::Degraded, 1));
        let after_one = snapshot(state, failures, None);
        assert_eq!(
            state_after(&after_one, ProbeOutcome::BadAnswer, 5),
            (HealthState::Down, 2)
        );
        // An answer in between resets the count.
        let (state, failures) = state_after(&after_one, ProbeOutcome::Connected, 5);
        assert_eq!((state, failures), (HealthState::Healthy, 0));
        assert_eq!(
            state_after(
                &snapshot(state, failures, None),
                ProbeOutcome::Unreachable,
                5
            ),
            (HealthState::Degraded, 1)
        );
        // Down stays down on a first failure.
        assert_eq!(
            state_after(
                &snapshot(HealthState::Down, 0, None),
                ProbeOutcome::Unreachable,
                5
            ),
            (HealthState::Down, 1)
        );
        // An instance never probed that does not answer is degraded, then down.
        assert_eq!(
            state_after(
                &snapshot(HealthState::Unknown, 0, None),
                ProbeOutcome::Unreachable,
                5
            ),
            (HealthState::Degraded, 1)
        );
    }

    #[test]
    fn pushed_states_map_like_probes() {
        let before = snapshot(HealthState::Healthy, 1, None);
        let cases = [
            (PushedState::Open, HealthState::Healthy),
            (PushedState::Connecting, HealthState::Degraded),
            (PushedState::Close, HealthState::Down),
            (PushedState::Refused, HealthState::Down),
        ];
        for (pushed, expected) in cases {
            let e = evaluate_pushed_state(&before, pushed, Some(401), NOW);
            assert_eq!(e.health.state, expected, "{pushed:?}");
            assert_eq!(e.consecutive_failures, 0);
            assert_eq!(PushedState::parse(pushed.as_str()), Some(pushed));
        }
        let e = evaluate_pushed_state(&before, PushedState::Close, Some(401), NOW);
        assert!(e.health.reason.unwrap().contains("statusReason 401"));
        assert_eq!(PushedState::parse("opened"), None);
    }

    #[test]
    fn first_checks_spread_over_the_interval() {
        let interval = Duration::from_secs(60);
        let mut buckets = [0usize; 6];
        for _ in 0..6000 {
            let delay = first_check_delay(InstanceId::from_uuid(Uuid::now_v7()), interval);
            assert!(delay < interval);
            let bucket = usize::try_from(delay.as_secs() / 10).unwrap();
            buckets[bucket] += 1;
        }
        for (i, n) in buckets.iter().enumerate() {
            assert!(
                (700..=1300).contains(n),
                "bucket {i} has {n} of 6000: {buckets:?}"
            );
        }
        let id = InstanceId::from_uuid(Uuid::now_v7());
        assert_eq!(
            first_check_delay(id, interval),
            first_check_delay(id, interval)
        );
    }
}
