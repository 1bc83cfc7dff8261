//! JSON log lines that carry the OpenTelemetry `trace_id` and `span_id` of the
//! span they were logged in, so a log search leads to the trace and back, and
//! the fields of the unit of work they were logged in when it is not a span
//! (`scope`).
//!
//! tracing-subscriber's JSON formatter writes the line; the ids and the unit of
//! work's `span` object are added before its closing brace. Otherwise the
//! formatter is used as it is.

use std::fmt;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt;
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent};
use tracing_subscriber::registry::LookupSpan;

/// The subscriber the formatter runs in. A formatter is called from inside the
/// subscriber, where `tracing::dispatcher::get_default` answers "none", so the
/// OpenTelemetry layer is reached through this instead.
#[derive(Clone, Default)]
pub struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

/// A layer that only fills its [`DispatchSlot`] when the subscriber is built.
/// (Not wrapped in `Option`: an optional layer is not told of the dispatch.)
pub struct CaptureDispatch(pub Option<DispatchSlot>);

impl<S: Subscriber> Layer<S> for CaptureDispatch {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        if let Some(slot) = &self.0 {
            let _ = slot.0.set(subscriber.downgrade());
        }
    }
}

/// How the JSON formatter writes a line: the event's fields at the top level,
/// and the current span's as `span`.
pub fn line_format() -> Format<Json> {
    tracing_subscriber::fmt::format()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
}

pub struct JsonWithTraceIds {
    inner: Format<Json>,
    /// `None`: no OpenTelemetry layer, lines as tracing-subscriber writes them.
    dispatch: Option<DispatchSlot>,
}

impl JsonWithTraceIds {
    pub fn new(inner: Format<Json>, dispatch: Option<DispatchSlot>) -> Self {
        Self { inner, dispatch }
    }
}

impl<S> FormatEvent<S, JsonFields> for JsonWithTraceIds
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ids = self.dispatch.as_ref().and_then(|slot| trace_ids(ctx, slot));
        // A unit of work kept as fields (no spans): its object is the line's
        // `span`, where a span's would be.
        let work = if ctx.event_scope().is_none() {
            super::scope::current_object()
        } else {
            None
        };
        if ids.is_none() && work.is_none() {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let Some(end) = line.rfind('}') else {
            return writer.write_str(&line);
        };
        writer.write_str(&line[..end])?;
        if let Some((trace_id, span_id)) = ids {
            write!(
                writer,
                ",\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\""
            )?;
        }
        if let Some(object) = work {
            write!(writer, ",\"span\":{object}")?;
        }
        writer.write_str(&line[end..])
    }
}

/// The ids of the span the event belongs to, when it is part of a trace.
fn trace_ids<S>(
    ctx: &FmtContext<'_, S, JsonFields>,
    slot: &DispatchSlot,
) -> Option<(opentelemetry::trace::TraceId, opentelemetry::trace::SpanId)>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    let id = ctx.event_scope()?.next()?.id();
    let dispatch = slot.0.get()?.upgrade()?;
    let context = tracing_opentelemetry::get_otel_context(&id, &dispatch)?;
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    span_context
        .is_valid()
        .then(|| (span_context.trace_id(), span_context.span_id()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(with_trace_ids: bool) -> (serde_json::Value, String, String) {
        let provider = SdkTracerProvider::builder().build();
        let lines = Lines::default();
        let writer = lines.clone();
        let json = line_format();
        let slot = with_trace_ids.then(DispatchSlot::default);
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(CaptureDispatch(slot.clone()))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .event_format(JsonWithTraceIds::new(json, slot))
                    .with_writer(move || writer.clone()),
            );
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("job", job_id = "job_1");
            let _entered = span.enter();
            tracing::info!(attempt = 1, "sms sent");
            let context = span.context();
            let otel_span = context.span();
            let ids = otel_span.span_context();
            (ids.trace_id().to_string(), ids.span_id().to_string())
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let line = serde_json::from_str(text.trim()).expect("one JSON object");
        (line, trace_id, span_id)
    }

    #[test]
    fn log_lines_carry_the_span_trace_and_span_ids() {
        let (line, trace_id, span_id) = logged(true);
        assert_eq!(line["trace_id"], trace_id.as_str(), "{line}");
        assert_eq!(line["span_id"], span_id.as_str(), "{line}");
        assert_eq!(line["message"], "sms sent");
        assert_eq!(line["attempt"], 1);
        assert_eq!(line["span"]["job_id"], "job_1");
    }

    #[tokio::test]
    async fn a_unit_of_work_kept_as_fields_is_the_line_s_span() {
        use crate::telemetry::scope::{Fields, Work};
        let lines = Lines::default();
        let writer = lines.clone();
        let json = line_format();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .json()
                .event_format(JsonWithTraceIds::new(json, None))
                .with_writer(move || writer.clone()),
        );
        let _default = tracing::subscriber::set_default(subscriber);
        Work::Fields(Fields::new("sms_job").with("job_id", "job_1"))
            .instrument(async {
                tracing::info!(attempt = 1, "sms sent");
            })
            .await;
        tracing::info!("outside");
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["message"], "sms sent");
        assert_eq!(lines[0]["attempt"], 1);
        assert_eq!(
            lines[0]["span"],
            serde_json::json!({"job_id": "job_1", "name": "sms_job"})
        );
        assert!(lines[1].get("span").is_none(), "{text}");
    }

    #[test]
    fn without_export_the_line_is_unchanged() {
        let (line, _, _) = logged(false);
        assert!(line.get("trace_id").is_none(), "{line}");
        assert_eq!(line["message"], "sms sent");
    }
}
