//! Structured logs (JSON, or human-readable on a terminal) and an OpenTelemetry
//! tracer so spans have W3C trace ids that travel over HTTP, gRPC and NATS.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Keeps the tracer provider alive; drop it at exit to flush spans.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Installs the process-wide subscriber. `FOCO_LOG_FORMAT` = `json` | `pretty`
/// (default: pretty on a terminal, JSON otherwise); `RUST_LOG` filters.
pub fn init(service_name: &'static str) -> TelemetryGuard {
    let provider = SdkTracerProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name)
                .build(),
        )
        .build();
    let tracer = provider.tracer(service_name);
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,h2=warn,hyper=warn,tower=warn,sqlx=warn"));
    let json = match std::env::var("FOCO_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("pretty") => false,
        _ => !std::io::stdout().is_terminal(),
    };
    let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer);
    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    if json {
        let _ = registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init();
    } else {
        let _ = registry.with(tracing_subscriber::fmt::layer()).try_init();
    }
    TelemetryGuard { provider }
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
