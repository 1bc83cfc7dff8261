//! Spans reach an OTLP collector over HTTP/protobuf, with the parent links that
//! the propagation helpers carry across HTTP headers and stored text. (gRPC
//! export is what the end-to-end trace test uses.) One test: it installs the
//! process-wide subscriber.

use std::time::Duration;

use axum::http::HeaderMap;
use foco_runtime::telemetry::propagation::{
    self, HttpHeaders, HttpHeadersRead, TRACEPARENT, current_context_text, set_parent_from,
    set_parent_from_text,
};
use foco_runtime::telemetry::{self, LogFormat, OtlpExporter, OtlpProtocol, TracingConfig};
use foco_testkit::{OtlpReceiver, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_http_with_their_parents() {
    let receiver = OtlpReceiver::start().await;
    let config = TracingConfig::exporting(
        "foco-runtime-test",
        OtlpExporter {
            protocol: OtlpProtocol::HttpProtobuf,
            endpoint: receiver.http_traces_endpoint(),
        },
    );
    let guard = telemetry::install(&config, LogFormat::Json).expect("telemetry installs");

    let mut headers = HeaderMap::new();
    let stored = {
        let outgoing = tracing::info_span!("test.outgoing");
        let _entered = outgoing.enter();
        assert!(propagation::in_trace());
        propagation::inject_current(&mut HttpHeaders(&mut headers));
        current_context_text()
    };
    assert!(headers.contains_key(TRACEPARENT), "{headers:?}");
    assert!(!stored.is_empty());
    {
        let incoming = tracing::info_span!("test.incoming");
        set_parent_from(&incoming, &HttpHeadersRead(&headers));
        let released = tracing::info_span!("test.released");
        set_parent_from_text(&released, &stored);
    }

    let spans = wait_for(
        "the three spans at the receiver",
        Duration::from_secs(20),
        || {
            let spans = receiver.spans();
            let guard = &guard;
            async move {
                if spans.len() >= 3 {
                    return Some(spans);
                }
                tokio::task::block_in_place(|| guard.force_flush());
                None
            }
        },
    )
    .await;
    let named = |name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("span {name} in {spans:?}"))
            .clone()
    };
    let outgoing = named("test.outgoing");
    let incoming = named("test.incoming");
    let released = named("test.released");
    assert_eq!(outgoing.service_name, "foco-runtime-test");
    assert_eq!(outgoing.parent_span_id, "");
    for child in [&incoming, &released] {
        assert_eq!(child.trace_id, outgoing.trace_id, "{child:?}");
        assert_eq!(child.parent_span_id, outgoing.span_id, "{child:?}");
    }
}
