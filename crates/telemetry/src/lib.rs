//! Observability of the Hub: the `tracing` subscriber (JSON or pretty logs filtered by
//! `RUST_LOG`), OpenTelemetry trace export over OTLP/HTTP, and the Prometheus registry with the
//! HTTP and pool metrics.
//!
//! Nothing here knows about HTTP frameworks or databases; the app feeds the metrics.

mod metrics;

pub use metrics::Metrics;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (the default; for log shippers).
    Json,
    /// Human-readable lines (for a terminal).
    Pretty,
}

/// What [`init`] sets up.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// An `EnvFilter` directive such as `info` or `whatpro_app=debug,info`.
    pub filter: String,
    /// The log line format.
    pub format: LogFormat,
    /// Base URL of an OTLP/HTTP receiver (`OTEL_EXPORTER_OTLP_ENDPOINT`); traces are exported
    /// to `<base>/v1/traces` when set.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute of exported spans.
    pub service_name: String,
}

/// Set-up failures.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter could not be parsed.
    #[error("RUST_LOG is not a valid filter: {0}")]
    Filter(String),
    /// The OTLP exporter could not be built.
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT is not usable: {0}")]
    Exporter(String),
    /// A global subscriber was already installed.
    #[error("the tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps the trace pipeline alive; dropping it flushes and shuts the exporter down.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(err) = provider.force_flush() {
                eprintln!("trace flush failed: {err}");
            }
            if let Err(err) = provider.shutdown() {
                eprintln!("trace exporter shutdown failed: {err}");
            }
        }
    }
}

/// Installs the global subscriber: env filter, the chosen log format and, when an OTLP endpoint
/// is configured, a `tracing-opentelemetry` layer exporting spans in batches. Also installs the
/// W3C trace-context propagator so incoming `traceparent` headers continue a trace.
///
/// # Errors
/// See [`TelemetryError`].
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let filter =
        EnvFilter::try_new(&config.filter).map_err(|e| TelemetryError::Filter(e.to_string()))?;

    let provider = config
        .otlp_endpoint
        .as_deref()
        .map(|base| build_provider(base, &config.service_name))
        .transpose()?;
    let otel_layer = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(config.service_name.clone())));
    if let Some(p) = &provider {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(p.clone());
    }

    let (json, pretty) = match config.format {
        LogFormat::Json => (
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false),
            ),
            None,
        ),
        LogFormat::Pretty => (None, Some(tracing_subscriber::fmt::layer().compact())),
    };

    tracing_subscriber::registry()
        .with(filter)
        .with(otel_layer)
        .with(json)
        .with(pretty)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { provider })
}

/// For tests: logs to the test writer when `TEST_LOG` is set, otherwise nothing. Safe to call
/// many times.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

fn build_provider(base: &str, service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let endpoint = format!("{}/v1/traces", base.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Checks an `EnvFilter` directive without installing anything.
///
/// # Errors
/// The parser's complaint.
pub fn check_filter(filter: &str) -> Result<(), String> {
    EnvFilter::try_new(filter)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Makes `span` continue the trace of an incoming W3C `traceparent` (and `tracestate`), so a
/// caller's trace and ours join up. Does nothing when the header is absent or malformed, or
/// when no exporter is installed.
pub fn continue_remote_trace(
    span: &tracing::Span,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let Some(traceparent) = traceparent else {
        return;
    };
    let mut carrier = std::collections::HashMap::with_capacity(2);
    carrier.insert("traceparent".to_owned(), traceparent.to_owned());
    if let Some(state) = tracestate {
        carrier.insert("tracestate".to_owned(), state.to_owned());
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}
