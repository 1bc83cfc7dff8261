//! What a unit of work is about (the webhook, event or job a task handles),
//! for the log lines written while it runs.
//!
//! Where spans are exported, or lines are written for a terminal, a unit of
//! work is a tracing span, as anywhere else. With JSON lines and nothing
//! exported, which is how the services run unless a collector is configured,
//! the spans of webhooks, events and jobs took 4 to 5 % of rules' and the
//! sender's CPU at 1,000 events/s, and 16 % of ingress's (two a webhook): the
//! subscriber formats a span's fields as JSON when it is created and runs its
//! layers at every poll, for fields that are read only when a line is
//! written, which is seldom there. So in that case the fields
//! are kept beside the task (a task-local) and the JSON formatter writes them
//! as the line's `span`, the object it writes for a span.
//!
//! Services create units of work with [`work_span!`](crate::work_span) and run
//! them with [`Work::instrument`]; fields known later are added with
//! [`record`].

use std::cell::RefCell;
use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::Instrument as _;

/// Whether units of work are spans. Until [`install`](super::install) decides,
/// they are (tests that set their own subscriber see spans).
static SPANS: AtomicBool = AtomicBool::new(true);

tokio::task_local! {
    static FIELDS: RefCell<Fields>;
}

/// Whether units of work are tracing spans (`false`: JSON lines, nothing
/// exported; their fields are kept beside the task).
pub fn spans() -> bool {
    SPANS.load(Ordering::Relaxed)
}

/// Spans are needed where they are exported, and where the human-readable
/// format, which has no place for fields kept beside the task, writes lines.
pub(super) fn spans_needed(json_lines: bool, exported: bool) -> bool {
    !json_lines || exported
}

pub(super) fn use_spans(spans: bool) {
    SPANS.store(spans, Ordering::Relaxed);
}

/// A unit of work's name and fields, kept as the JSON a log line's `span`
/// object is made of.
#[derive(Debug, Clone)]
pub struct Fields {
    name: &'static str,
    /// `"key":value,` for each field so far.
    json: Vec<u8>,
}

impl Fields {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            json: Vec::with_capacity(128),
        }
    }

    #[must_use]
    pub fn with(mut self, key: &'static str, value: impl FieldValue) -> Self {
        value.append_to(key, &mut self.json);
        self
    }

    /// The `span` object of a log line: the fields, then the name, as
    /// tracing-subscriber writes a span's.
    pub(super) fn object(&self) -> String {
        let mut object = Vec::with_capacity(self.json.len() + self.name.len() + 12);
        object.push(b'{');
        object.extend_from_slice(&self.json);
        object.extend_from_slice(b"\"name\":");
        json_string(self.name, &mut object);
        object.push(b'}');
        String::from_utf8(object).unwrap_or_default()
    }
}

fn json_string(value: &str, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// A value a unit of work's field can hold.
pub trait FieldValue {
    /// Appends `"key":value,` to `json`, or nothing for a field without a value.
    fn append_to(&self, key: &str, json: &mut Vec<u8>);
}

impl FieldValue for &str {
    fn append_to(&self, key: &str, json: &mut Vec<u8>) {
        json_string(key, json);
        json.push(b':');
        json_string(self, json);
        json.push(b',');
    }
}

macro_rules! number_field {
    ($($number:ty),*) => {$(
        impl FieldValue for $number {
            fn append_to(&self, key: &str, json: &mut Vec<u8>) {
                json_string(key, json);
                let _ = write!(json, ":{self},");
            }
        }
    )*};
}

number_field!(u32, u64);

/// A field declared for [`record`] to fill in later.
impl FieldValue for tracing::field::Empty {
    fn append_to(&self, _key: &str, _json: &mut Vec<u8>) {}
}

/// A unit of work: a span, or the fields a span would carry.
#[derive(Debug, Clone)]
pub enum Work {
    Span(tracing::Span),
    Fields(Fields),
}

impl Work {
    /// The span, when units of work are spans: to set its parent from the
    /// trace context that came with the work.
    pub fn span(&self) -> Option<&tracing::Span> {
        match self {
            Self::Span(span) => Some(span),
            Self::Fields(_) => None,
        }
    }

    /// Runs `future` as this unit of work: in its span, or with its fields.
    pub async fn instrument<F: Future>(self, future: F) -> F::Output {
        match self {
            Self::Span(span) => future.instrument(span).await,
            Self::Fields(fields) => FIELDS.scope(RefCell::new(fields), future).await,
        }
    }
}

/// A unit of work named `name` with the given fields: a span at the info level,
/// or its fields. Field values are `&str`, `u32`, `u64`, or
/// `tracing::field::Empty` for a field [`record`] fills in later.
#[macro_export]
macro_rules! work_span {
    ($name:literal $(, $key:ident = $value:expr)* $(,)?) => {
        if $crate::telemetry::scope::spans() {
            $crate::telemetry::scope::Work::Span(::tracing::info_span!($name $(, $key = $value)*))
        } else {
            $crate::telemetry::scope::Work::Fields(
                $crate::telemetry::scope::Fields::new($name)
                    $(.with(::core::stringify!($key), $value))*
            )
        }
    };
}

/// Adds `values` to the current unit of work: recorded on its span in one
/// call (the JSON format parses and writes a span's fields again at every
/// record), or added to its fields. Fields its span does not declare are
/// skipped.
pub fn record<const N: usize>(values: [(&'static str, &str); N]) {
    let kept_as_fields = FIELDS.try_with(|fields| {
        if let Ok(mut fields) = fields.try_borrow_mut() {
            for (key, value) in values {
                value.append_to(key, &mut fields.json);
            }
        }
    });
    if kept_as_fields.is_err() {
        record_on(&tracing::Span::current(), values);
    }
}

/// Records `values` on `span` in one call; fields it does not declare are
/// skipped.
fn record_on<const N: usize>(span: &tracing::Span, values: [(&'static str, &str); N]) {
    let Some(metadata) = span.metadata() else {
        return;
    };
    let fields = metadata.fields();
    let found = values.map(|(name, value)| (fields.field(name), value));
    if found.iter().any(|(field, _)| field.is_none()) {
        for (name, value) in values {
            span.record(name, value);
        }
        return;
    }
    let pairs = found.each_ref().map(|(field, value)| {
        (
            field.as_ref().expect("checked above"),
            Some(value as &dyn tracing::Value),
        )
    });
    span.record_all(&fields.value_set(&pairs));
}

/// The current unit of work's `span` object, when it is kept as fields.
pub(super) fn current_object() -> Option<String> {
    FIELDS
        .try_with(|fields| fields.try_borrow().ok().map(|fields| fields.object()))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::Subscriber;
    use tracing::span::{Attributes, Id, Record};
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::{Context, SubscriberExt};

    use super::*;

    #[test]
    fn fields_make_the_object_a_span_makes() {
        let fields = Fields::new("sms_job")
            .with("job_id", "job \"1\"")
            .with("stream_sequence", 42_u64)
            .with("event_type", tracing::field::Empty);
        let object: serde_json::Value = serde_json::from_str(&fields.object()).unwrap();
        assert_eq!(
            object,
            serde_json::json!({"job_id": "job \"1\"", "stream_sequence": 42, "name": "sms_job"})
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&Fields::new("bare").object()).unwrap(),
            serde_json::json!({"name": "bare"})
        );
    }

    #[test]
    fn only_json_lines_without_export_go_without_spans() {
        assert!(!spans_needed(true, false));
        assert!(spans_needed(true, true));
        assert!(spans_needed(false, false));
        assert!(spans_needed(false, true));
    }

    #[tokio::test]
    async fn fields_are_the_current_work_while_it_runs_and_take_records() {
        assert_eq!(current_object(), None);
        let work = Work::Fields(Fields::new("ingress.webhook").with("source_id", "src_1"));
        let inside = work
            .instrument(async {
                record([("event_id", "evt_1")]);
                tokio::task::yield_now().await;
                current_object()
            })
            .await;
        let object: serde_json::Value = serde_json::from_str(&inside.unwrap()).unwrap();
        assert_eq!(
            object,
            serde_json::json!({"source_id": "src_1", "event_id": "evt_1", "name": "ingress.webhook"})
        );
        assert_eq!(current_object(), None);
    }

    /// Counts record calls and the fields each carried.
    #[derive(Clone, Default)]
    struct Records(Arc<Mutex<Vec<Vec<String>>>>);

    impl<S: Subscriber> Layer<S> for Records {
        fn on_new_span(&self, _: &Attributes<'_>, _: &Id, _: Context<'_, S>) {}

        fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
            struct Names(Vec<String>);
            impl tracing::field::Visit for Names {
                fn record_debug(&mut self, field: &tracing::field::Field, _: &dyn std::fmt::Debug) {
                    self.0.push(field.name().to_owned());
                }
            }
            let mut names = Names(Vec::new());
            values.record(&mut names);
            self.0.lock().unwrap().push(names.0);
        }
    }

    #[test]
    fn fields_known_together_are_recorded_on_a_span_in_one_call() {
        let records = Records::default();
        let subscriber = tracing_subscriber::registry().with(records.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "ingress.webhook",
                source_id = tracing::field::Empty,
                account_id = tracing::field::Empty,
                event_id = tracing::field::Empty,
            );
            record_on(
                &span,
                [
                    ("source_id", "src_1"),
                    ("account_id", "acc_1"),
                    ("event_id", "evt_1"),
                ],
            );
            record_on(&span, [("event_type", "orders/create")]);
        });
        let calls = records.0.lock().unwrap().clone();
        assert_eq!(calls, vec![vec!["source_id", "account_id", "event_id"]]);
    }
}
