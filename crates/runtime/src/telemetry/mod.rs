//! Structured logs (JSON, or human-readable on a terminal) and, when a collector
//! is configured, spans exported over OTLP (gRPC or HTTP/protobuf) through a
//! batch span processor. W3C trace context travels over HTTP, gRPC and NATS
//! (`propagation`), so one webhook is one trace across the services.
//!
//! With no collector configured there is no OpenTelemetry layer at all: spans
//! are only what the logs need, and nothing is propagated or exported; with JSON
//! lines, the hot path's units of work are not even spans (`scope`).

mod config;
mod json_log;
pub mod propagation;
pub mod scope;

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use config::{OtlpExporter, OtlpProtocol, TracingConfig};

use crate::env::{ConfigError, Env};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot build the OTLP span exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl LogFormat {
    /// `FOCO_LOG_FORMAT` = `json` | `pretty`; default: pretty on a terminal,
    /// JSON otherwise.
    pub fn from_lookup(env: &Env) -> Result<Self, ConfigError> {
        match env.optional("FOCO_LOG_FORMAT").as_deref() {
            Some("json") => Ok(Self::Json),
            Some("pretty") => Ok(Self::Pretty),
            Some(other) => Err(ConfigError::new("FOCO_LOG_FORMAT", other, "json or pretty")),
            None if std::io::stdout().is_terminal() => Ok(Self::Pretty),
            None => Ok(Self::Json),
        }
    }
}

/// Keeps the tracer provider alive; dropping it exports the spans still
/// batched (bounded by the exporter's timeout).
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports every finished span now (blocking). Tests use it instead of
    /// waiting for the batch delay.
    pub fn force_flush(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.force_flush();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the process-wide subscriber from the environment (`FOCO_LOG_FORMAT`,
/// `RUST_LOG`, and the `OTEL_*` variables of [`TracingConfig::from_lookup`]).
/// Call inside the Tokio runtime: the gRPC exporter needs it.
pub fn init(service_name: &'static str) -> Result<TelemetryGuard, TelemetryError> {
    let env = Env::process();
    let tracing = TracingConfig::from_lookup(service_name, &env)?;
    install(&tracing, LogFormat::from_lookup(&env)?)
}

/// Installs the process-wide subscriber as `tracing` says. A second call in the
/// same process leaves the first subscriber in place.
pub fn install(
    tracing: &TracingConfig,
    log_format: LogFormat,
) -> Result<TelemetryGuard, TelemetryError> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,h2=warn,hyper=warn,tower=warn,sqlx=warn"));
    let provider = tracing
        .exporter
        .as_ref()
        .map(|exporter| tracer_provider(tracing, exporter))
        .transpose()?;
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("foco"))
            // Spans carry what they are about; where in the code is noise.
            .with_location(false)
            .with_tracked_inactivity(false)
    });
    // The JSON formatter reaches the OpenTelemetry layer through this slot.
    let dispatch_slot = provider.as_ref().map(|_| json_log::DispatchSlot::default());
    scope::use_spans(scope::spans_needed(
        log_format == LogFormat::Json,
        provider.is_some(),
    ));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(otel_layer)
        .with(json_log::CaptureDispatch(dispatch_slot.clone()));
    match log_format {
        LogFormat::Json => {
            let json = json_log::line_format();
            let _ = registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .event_format(json_log::JsonWithTraceIds::new(json, dispatch_slot)),
                )
                .try_init();
        }
        LogFormat::Pretty => {
            let _ = registry.with(tracing_subscriber::fmt::layer()).try_init();
        }
    }
    Ok(TelemetryGuard { provider })
}

fn tracer_provider(
    tracing: &TracingConfig,
    exporter: &OtlpExporter,
) -> Result<SdkTracerProvider, TelemetryError> {
    let built = match exporter.protocol {
        OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&exporter.endpoint)
            .build(),
        OtlpProtocol::HttpProtobuf => {
            // reqwest is built without a default TLS provider; an https
            // collector needs one.
            let _ = rustls::crypto::ring::default_provider().install_default();
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(&exporter.endpoint)
                .build()
        }
    };
    let span_exporter = built.map_err(|source| TelemetryError::Exporter {
        endpoint: crate::env::redacted_url(&exporter.endpoint),
        source,
    })?;
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_attributes(tracing.resource_attributes.iter().cloned())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_service_name(tracing.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(span_exporter)
        .with_sampler(tracing.sampler.clone())
        .with_resource(resource)
        .build())
}

/// Masks a phone number for logs: keeps the country code and the last two digits.
pub fn mask_phone(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 5 {
        return "***".to_owned();
    }
    let head: String = digits[..2].iter().collect();
    let tail: String = digits[digits.len() - 2..].iter().collect();
    let plus = if number.trim_start().starts_with('+') {
        "+"
    } else {
        ""
    };
    format!("{plus}{head}******{tail}")
}

#[cfg(test)]
mod tests {
    use super::mask_phone;

    #[test]
    fn phones_are_masked() {
        assert_eq!(mask_phone("+5215512345678"), "+52******78");
        assert_eq!(mask_phone("123"), "***");
    }
}
