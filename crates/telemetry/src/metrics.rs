//! The Prometheus registry of one Hub process.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// HTTP and pool metrics, registered in a registry of their own (no global state, so tests
/// can build as many apps as they like).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    pool: IntGaugeVec,
}

impl Metrics {
    /// Creates the registry and registers every metric.
    ///
    /// # Errors
    /// Only if metric definitions clash, which would be a bug.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request head to response, by route pattern",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["method", "route"],
        )?;
        let pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        Ok(Self {
            registry,
            requests,
            duration,
            pool,
        })
    }

    /// Counts one answered request and its latency. `route` is the matched route pattern
    /// (e.g. `/api/v1/accounts/{account_id}`) or `unmatched`, never the raw path, so the label
    /// set stays bounded.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        self.requests
            .with_label_values(&[method, route, status.as_str()])
            .inc();
        self.duration
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// Sets the pool gauges (read at scrape time).
    pub fn set_pool(&self, idle: usize, in_use: usize) {
        self.pool
            .with_label_values(&["idle"])
            .set(i64::try_from(idle).unwrap_or(i64::MAX));
        self.pool
            .with_label_values(&["in_use"])
            .set(i64::try_from(in_use).unwrap_or(i64::MAX));
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %err, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_durations_and_pool_gauges() {
        let metrics = Metrics::new().unwrap();
        metrics.observe_request("GET", "/healthz", 200, 0.002);
        metrics.observe_request("GET", "unmatched", 404, 0.001);
        metrics.set_pool(3, 1);
        let text = metrics.render();
        assert!(
            text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#)
        );
        assert!(
            text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#)
        );
        assert!(text.contains(
            r#"http_request_duration_seconds_bucket{method="GET",route="/healthz",le="0.0025"} 1"#
        ));
        assert!(text.contains(r#"db_pool_connections{state="idle"} 3"#));
        assert!(text.contains(r#"db_pool_connections{state="in_use"} 1"#));
    }
}
