//! Latency histograms: per-task tallies, merging them and turning them into summary numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::AnyResult;

/// Largest latency the histograms track, in microseconds (one minute); larger values saturate.
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// What one load-generating task observed during the measured window.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latency of every completed exchange (2xx or not), in microseconds.
    pub hist: Histogram<u64>,
    /// Exchanges that failed outright (connect / I/O / protocol / query error, timeout).
    pub errors: u64,
    /// Completed HTTP exchanges whose status was not 2xx (also in `hist`).
    pub non_2xx: u64,
    /// The non-2xx exchanges by status code.
    pub statuses: BTreeMap<u16, u64>,
}

impl Tally {
    /// An empty tally.
    ///
    /// # Errors
    /// Only if hdrhistogram rejects the (constant) bounds.
    pub fn new() -> AnyResult<Self> {
        Ok(Self {
            hist: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?,
            errors: 0,
            non_2xx: 0,
            statuses: BTreeMap::new(),
        })
    }

    /// Records one completed exchange: `non_2xx` is its status when that was not a success
    /// (`None` for a 2xx answer or a non-HTTP success such as a query).
    pub fn record(&mut self, latency: Duration, non_2xx: Option<u16>) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.hist.saturating_record(micros.clamp(1, MAX_LATENCY_US));
        if let Some(status) = non_2xx {
            self.non_2xx += 1;
            *self.statuses.entry(status).or_default() += 1;
        }
    }

    /// Adds `other`'s observations to this tally.
    ///
    /// # Errors
    /// Only if the histograms are incompatible (they never are when made by [`Tally::new`]).
    pub fn merge(&mut self, other: &Self) -> AnyResult<()> {
        self.hist.add(&other.hist)?;
        self.errors += other.errors;
        self.non_2xx += other.non_2xx;
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_default() += count;
        }
        Ok(())
    }

    /// Merges many tallies into one.
    ///
    /// # Errors
    /// As [`Tally::merge`].
    pub fn merge_all<'a>(tallies: impl IntoIterator<Item = &'a Self>) -> AnyResult<Self> {
        let mut total = Self::new()?;
        for t in tallies {
            total.merge(t)?;
        }
        Ok(total)
    }
}

/// Summary of one scenario at one concurrency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Completed exchanges in the measured window.
    pub requests: u64,
    /// Completed exchanges per second of measured time.
    pub rps: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 90th percentile latency, milliseconds.
    pub p90_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Largest latency seen, milliseconds.
    pub max_ms: f64,
    /// Failed exchanges.
    pub errors: u64,
    /// Completed exchanges with a non-2xx status.
    pub non_2xx: u64,
    /// Those exchanges by status code (empty when all were 2xx).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub non_2xx_statuses: BTreeMap<u16, u64>,
}

/// Summarises a merged tally measured over `measured` wall time.
pub fn summarize(tally: &Tally, measured: Duration) -> Stats {
    let requests = tally.hist.len();
    let secs = measured.as_secs_f64();
    let rps = if secs > 0.0 {
        requests as f64 / secs
    } else {
        0.0
    };
    let ms = |q: f64| {
        if requests == 0 {
            0.0
        } else {
            tally.hist.value_at_quantile(q) as f64 / 1000.0
        }
    };
    Stats {
        requests,
        rps,
        p50_ms: ms(0.50),
        p90_ms: ms(0.90),
        p99_ms: ms(0.99),
        max_ms: if requests == 0 {
            0.0
        } else {
            tally.hist.max() as f64 / 1000.0
        },
        errors: tally.errors,
        non_2xx: tally.non_2xx,
        non_2xx_statuses: tally.statuses.clone(),
    }
}

impl Stats {
    /// Every exchange started in the measured window: completed (any status) plus failed.
    pub fn attempts(&self) -> u64 {
        self.requests + self.errors
    }

    /// The non-2xx statuses as `429×12, 503×1` (empty when there were none).
    pub fn status_summary(&self) -> String {
        self.non_2xx_statuses
            .iter()
            .map(|(status, count)| format!("{status}×{count}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally_of(latencies_us: &[u64], errors: u64) -> Tally {
        let mut t = Tally::new().unwrap();
        for &us in latencies_us {
            t.record(Duration::from_micros(us), None);
        }
        t.errors = errors;
        t
    }

    #[test]
    fn merge_adds_counts_and_errors() {
        let a = tally_of(&[100; 50], 1);
        let mut b = tally_of(&[1000; 50], 2);
        b.record(Duration::from_micros(5000), Some(429));
        let mut c = tally_of(&[], 0);
        c.record(Duration::from_micros(5000), Some(429));
        c.record(Duration::from_micros(5000), Some(503));
        let total = Tally::merge_all([&a, &b, &c]).unwrap();
        assert_eq!(total.hist.len(), 103);
        assert_eq!(total.errors, 3);
        assert_eq!(total.non_2xx, 3);
        let stats = summarize(&total, Duration::from_secs(1));
        assert_eq!(stats.status_summary(), "429×2, 503×1");
        assert_eq!(stats.attempts(), 106);
    }

    #[test]
    fn percentiles_and_rate() {
        // 1..=1000 µs, one each: p50 ≈ 0.5 ms, p99 ≈ 0.99 ms, max = 1 ms.
        let lat: Vec<u64> = (1..=1000).collect();
        let s = summarize(&tally_of(&lat, 0), Duration::from_secs(2));
        assert_eq!(s.requests, 1000);
        assert!((s.rps - 500.0).abs() < 1e-9);
        assert!((s.p50_ms - 0.5).abs() < 0.001, "{}", s.p50_ms);
        assert!((s.p90_ms - 0.9).abs() < 0.001, "{}", s.p90_ms);
        assert!((s.p99_ms - 0.99).abs() < 0.001, "{}", s.p99_ms);
        assert!((s.max_ms - 1.0).abs() < 0.001, "{}", s.max_ms);
    }

    #[test]
    fn empty_and_saturating() {
        let s = summarize(&Tally::new().unwrap(), Duration::ZERO);
        assert_eq!((s.requests, s.rps, s.p99_ms), (0, 0.0, 0.0));
        let mut t = Tally::new().unwrap();
        t.record(Duration::from_secs(3600), None);
        t.record(Duration::ZERO, None);
        assert_eq!(t.hist.len(), 2);
        assert!(t.hist.max() >= MAX_LATENCY_US);
    }
}
