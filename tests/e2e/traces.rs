//! One webhook is one trace: an in-process OTLP collector receives, over gRPC,
//! the spans of a Shopify order through ingress, control, rules, the scheduler
//! and the sender down to the provider calls, all under the caller's trace id
//! and linked parent to child. Its own test binary: it installs the
//! process-wide subscriber with an exporter.

#[allow(dead_code)]
mod support;

use std::collections::{HashMap, HashSet};

use foco_harness::{ACCOUNT, TestSystem};
use foco_proto::v1::UpsertRuleRequest;
use foco_runtime::telemetry::{self, LogFormat, OtlpExporter, OtlpProtocol, TracingConfig};
use foco_testkit::{OtlpReceiver, ReceivedSpan, wait_for};

use support::{SHOPIFY_SECRET, WAIT, configure_shop, http, shopify_order};

const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[allow(clippy::too_many_lines, reason = "one scenario, step by step")]
async fn one_webhook_is_one_trace_from_ingress_to_the_provider_calls() {
    let receiver = OtlpReceiver::start().await;
    let config = TracingConfig::exporting(
        "foco-e2e",
        OtlpExporter {
            protocol: OtlpProtocol::Grpc,
            endpoint: receiver.grpc_endpoint(),
        },
    );
    let guard = telemetry::install(&config, LogFormat::Json).expect("telemetry installs");

    let system = TestSystem::start().await;
    let shop = configure_shop(&system).await;
    // The same order also schedules a thank-you that waits in Postgres.
    system
        .admin()
        .upsert_rule(UpsertRuleRequest {
            account: ACCOUNT.to_owned(),
            source: "shop".to_owned(),
            name: "thanks-later".to_owned(),
            when: r#"event_type == "orders/create""#.to_owned(),
            to: vec!["+52 55 1234 5678".to_owned()],
            body: "Gracias por tu compra".to_owned(),
            delay: "1s".to_owned(),
            ..Default::default()
        })
        .await
        .expect("create delayed rule");

    let body = shopify_order(|order| order["token"] = "traced-order".into());
    let signature = foco_e2e::hmac_sha256_base64(SHOPIFY_SECRET, &body);
    let response = http()
        .post(format!("{}/v1/hooks/{}", system.ingress_url, shop.token))
        .header("content-type", "application/json")
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-event-id", "traced-order")
        .header("x-shopify-hmac-sha256", signature)
        .header(
            "traceparent",
            format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"),
        )
        .body(body)
        .send()
        .await
        .expect("post to ingress");
    assert_eq!(response.status(), 202);

    wait_for("both SMS at the provider", WAIT, || async {
        (system.provider.requests().len() >= 2).then_some(())
    })
    .await;
    let spans = wait_for("both provider calls' spans", WAIT, || {
        let spans: Vec<ReceivedSpan> = receiver
            .spans()
            .into_iter()
            .filter(|span| span.trace_id == CALLER_TRACE_ID)
            .collect();
        let guard = &guard;
        // Spans are exported as they end, parents after their children: wait
        // until no span names a parent that has not arrived.
        let ids: HashSet<&str> = spans.iter().map(|span| span.span_id.as_str()).collect();
        let complete = spans.iter().all(|span| {
            span.parent_span_id == CALLER_SPAN_ID || ids.contains(span.parent_span_id.as_str())
        });
        let calls = spans
            .iter()
            .filter(|span| span.name == "provider.call")
            .count();
        async move {
            if calls >= 2 && complete {
                return Some(spans);
            }
            tokio::task::block_in_place(|| guard.force_flush());
            None
        }
    })
    .await;
    system.stop().await;

    let by_id: HashMap<&str, &ReceivedSpan> = spans
        .iter()
        .map(|span| (span.span_id.as_str(), span))
        .collect();
    let parent_of = |span: &ReceivedSpan| -> String {
        by_id.get(span.parent_span_id.as_str()).map_or_else(
            || format!("<{}>", span.parent_span_id),
            |parent| parent.name.clone(),
        )
    };
    let chain = |span: &ReceivedSpan| -> Vec<String> {
        let mut names = vec![span.name.clone()];
        let mut current = span;
        while let Some(parent) = by_id.get(current.parent_span_id.as_str()) {
            names.push(parent.name.clone());
            current = parent;
        }
        names.reverse();
        names
    };
    let mut shown: Vec<String> = spans
        .iter()
        .map(|span| format!("{}  (parent: {})", chain(span).join(" → "), parent_of(span)))
        .collect();
    shown.sort();
    println!("trace {CALLER_TRACE_ID}:\n{}", shown.join("\n"));

    let request = spans
        .iter()
        .find(|span| span.name == "http.request")
        .expect("ingress's request span");
    assert_eq!(request.parent_span_id, CALLER_SPAN_ID, "the caller's span");
    let mut provider_calls: Vec<Vec<String>> = spans
        .iter()
        .filter(|span| span.name == "provider.call")
        .map(chain)
        .collect();
    provider_calls.sort();
    let immediate = [
        "http.request",
        "ingress.webhook",
        "event",
        "sms_job",
        "provider.call",
    ];
    let delayed = [
        "http.request",
        "ingress.webhook",
        "event",
        "scheduled_job.publish",
        "sms_job",
        "provider.call",
    ];
    assert_eq!(
        provider_calls,
        vec![
            delayed.map(str::to_owned).to_vec(),
            immediate.map(str::to_owned).to_vec()
        ],
        "{shown:#?}"
    );
    // Control answered ingress's lookup of the source inside the same trace.
    let lookup = spans
        .iter()
        .find(|span| {
            span.name == "grpc.request" && span.attribute("rpc.method") == Some("ResolveSource")
        })
        .unwrap_or_else(|| panic!("control's span of ResolveSource in {shown:#?}"));
    assert_eq!(parent_of(lookup), "ingress.webhook");
}
