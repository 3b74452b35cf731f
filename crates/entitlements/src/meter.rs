//! Usage metering: counters kept in memory and flushed in batches, so a request never writes
//! to the database for its own metering.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use time::{Date, OffsetDateTime};
use whatpro_kernel::{AccountId, UserId};

/// A metered quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Messages sent (internal chat, provider test messages).
    MessagesSent,
    /// Conversations created or moved.
    ConversationsTouched,
    /// Webhooks received and processed.
    WebhooksProcessed,
    /// Authenticated API requests.
    ApiCalls,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 4] = [
        Metric::MessagesSent,
        Metric::ConversationsTouched,
        Metric::WebhooksProcessed,
        Metric::ApiCalls,
    ];

    /// The column / wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::MessagesSent => "messages_sent",
            Metric::ConversationsTouched => "conversations_touched",
            Metric::WebhooksProcessed => "webhooks_processed",
            Metric::ApiCalls => "api_calls",
        }
    }
}

/// Counters gathered since the last flush, bucketed by minute (so that each account's
/// local day can be computed exactly when they are written).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MeterSnapshot {
    /// `(account, unix minute, metric) -> count`.
    pub counts: HashMap<(AccountId, i64, Metric), i64>,
    /// `(account, unix minute, user)` seen active.
    pub active: HashSet<(AccountId, i64, UserId)>,
}

impl MeterSnapshot {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.active.is_empty()
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: MeterSnapshot) {
        for (key, n) in other.counts {
            *self.counts.entry(key).or_insert(0) += n;
        }
        self.active.extend(other.active);
    }
}

/// The in-memory counters of this process (cheap to share; one short lock per record).
#[derive(Debug, Default)]
pub struct Meter {
    pending: Mutex<MeterSnapshot>,
}

fn minute_of(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(60)
}

impl Meter {
    /// An empty meter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `n` of `metric` for `account` at `at`.
    pub fn record(&self, account: AccountId, metric: Metric, n: i64, at: OffsetDateTime) {
        if n == 0 {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending
            .counts
            .entry((account, minute_of(at), metric))
            .or_insert(0) += n;
    }

    /// Notes that `user` was active in `account` at `at`.
    pub fn record_active(&self, account: AccountId, user: UserId, at: OffsetDateTime) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.active.insert((account, minute_of(at), user));
    }

    /// Takes everything gathered so far, leaving the meter empty.
    pub fn take(&self) -> MeterSnapshot {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *pending)
    }

    /// Puts a batch back (its flush failed), so nothing is lost.
    pub fn restore(&self, batch: MeterSnapshot) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.merge(batch);
    }
}

/// One day of an account's usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDay {
    /// The local date in the account's time zone.
    pub date: Date,
    /// Messages sent.
    pub messages_sent: i64,
    /// Conversations touched.
    pub conversations_touched: i64,
    /// Webhooks processed.
    pub webhooks_processed: i64,
    /// API calls.
    pub api_calls: i64,
    /// Distinct active users that day.
    pub active_users: i64,
}

/// Active users as of today in the account's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveUsers {
    /// Today's local date.
    pub as_of: Date,
    /// The account's IANA time zone.
    pub time_zone: String,
    /// Distinct users today.
    pub dau: i64,
    /// Distinct users in the last 7 local days (today included).
    pub wau: i64,
    /// Distinct users in the last 30 local days (today included).
    pub mau: i64,
}

/// Usage totals across accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTotals {
    /// Accounts with any usage in the range.
    pub accounts: i64,
    /// Messages sent.
    pub messages_sent: i64,
    /// Conversations touched.
    pub conversations_touched: i64,
    /// Webhooks processed.
    pub webhooks_processed: i64,
    /// API calls.
    pub api_calls: i64,
    /// Distinct (account, user) pairs active in the range.
    pub active_users: i64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use time::macros::datetime;

    use super::*;

    #[test]
    fn counts_are_bucketed_by_account_minute_and_metric() {
        let meter = Meter::new();
        let a = AccountId::new(1);
        let b = AccountId::new(2);
        meter.record(a, Metric::ApiCalls, 1, datetime!(2026-11-30 10:00:05 UTC));
        meter.record(a, Metric::ApiCalls, 2, datetime!(2026-11-30 10:00:59 UTC));
        meter.record(a, Metric::ApiCalls, 1, datetime!(2026-11-30 10:01:00 UTC));
        meter.record(
            b,
            Metric::MessagesSent,
            4,
            datetime!(2026-11-30 10:00:00 UTC),
        );
        meter.record(
            b,
            Metric::MessagesSent,
            0,
            datetime!(2026-11-30 10:00:00 UTC),
        );
        let snap = meter.take();
        let minute = datetime!(2026-11-30 10:00:00 UTC).unix_timestamp() / 60;
        assert_eq!(snap.counts[&(a, minute, Metric::ApiCalls)], 3);
        assert_eq!(snap.counts[&(a, minute + 1, Metric::ApiCalls)], 1);
        assert_eq!(snap.counts[&(b, minute, Metric::MessagesSent)], 4);
        assert_eq!(snap.counts.len(), 3);
        assert!(meter.take().is_empty(), "take empties the meter");
    }

    #[test]
    fn active_users_are_deduplicated_within_a_minute() {
        let meter = Meter::new();
        let a = AccountId::new(1);
        let u = UserId::new(5);
        meter.record_active(a, u, datetime!(2026-11-30 10:00:01 UTC));
        meter.record_active(a, u, datetime!(2026-11-30 10:00:40 UTC));
        meter.record_active(a, UserId::new(6), datetime!(2026-11-30 10:00:40 UTC));
        assert_eq!(meter.take().active.len(), 2);
    }

    #[test]
    fn a_restored_batch_is_merged_with_newer_counts() {
        let meter = Meter::new();
        let a = AccountId::new(1);
        let at = datetime!(2026-11-30 10:00:00 UTC);
        meter.record(a, Metric::WebhooksProcessed, 2, at);
        let failed = meter.take();
        meter.record(a, Metric::WebhooksProcessed, 3, at);
        meter.restore(failed);
        let snap = meter.take();
        assert_eq!(
            snap.counts[&(a, at.unix_timestamp() / 60, Metric::WebhooksProcessed)],
            5
        );
    }
}
