//! Provider adapters against the fake provider: request formats and how answers
//! map to outcomes. No broker or database involved.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use foco_proto::v1::{ProviderRoute, ResolvedRoute};
use foco_sender::providers::{
    FailureKind, OutboundSms, Provider, ProviderOutcome, Providers, RouteConfigError,
};
use foco_testkit::{FakeProvider, FakeResponse};

pub fn providers(timeout: Duration, allow_private: bool) -> Providers {
    Providers::new(timeout, allow_private, None).unwrap()
}

pub fn route(kind: &str, settings: &[(&str, &str)], credentials: &[(&str, &str)]) -> ResolvedRoute {
    let owned = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    };
    ResolvedRoute {
        route: Some(ProviderRoute {
            name: "primary".to_owned(),
            kind: kind.to_owned(),
            settings: owned(settings),
            ..Default::default()
        }),
        account: None,
        credentials: owned(credentials),
        inbound_source_id: String::new(),
    }
}

pub fn message() -> OutboundSms {
    OutboundSms {
        job_id: "job_0123".to_owned(),
        account_id: "acc-1".to_owned(),
        event_id: "evt-1".to_owned(),
        to: "+525512345678".to_owned(),
        from: String::new(),
        body: "Hola Ale, tu código es 4921".to_owned(),
    }
}

fn http_provider(fake: &FakeProvider, timeout: Duration) -> Provider {
    let url = format!("{}/v1/messages", fake.url());
    providers(timeout, true)
        .for_route(&route(
            "http",
            &[("url", &url), ("from", "FOCO")],
            &[
                ("authorization", "Bearer t0k3n"),
                ("header:X-Api-Key", "k-1"),
            ],
        ))
        .unwrap()
}

#[tokio::test]
async fn http_posts_json_with_idempotency_key_and_credentials() {
    let fake = FakeProvider::start().await;
    fake.push_responses([FakeResponse::status(202, r#"{"message_id": "gw-77"}"#)]);
    let outcome = http_provider(&fake, Duration::from_secs(3))
        .send(&message())
        .await;
    assert_eq!(outcome, ProviderOutcome::sent("gw-77"));
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.header("idempotency-key"), Some("job_0123"));
    assert_eq!(request.header("authorization"), Some("Bearer t0k3n"));
    assert_eq!(request.header("x-api-key"), Some("k-1"));
    assert!(
        request
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(
        request.json(),
        serde_json::json!({
            "job_id": "job_0123",
            "to": "+525512345678",
            "from": "FOCO",
            "body": "Hola Ale, tu código es 4921",
            "account_id": "acc-1",
            "event_id": "evt-1",
        })
    );
}

#[tokio::test]
async fn http_answers_map_to_outcomes() {
    let fake = FakeProvider::start().await;
    fake.push_responses([
        FakeResponse::status(200, "not json"),
        FakeResponse::status(503, "busy"),
        FakeResponse::status(429, r#"{"error": "slow down"}"#).with_header("Retry-After", "7"),
        FakeResponse::status(400, r#"{"message": "invalid destination"}"#),
        FakeResponse::status(302, "").with_header("Location", "http://169.254.169.254/"),
    ]);
    let provider = http_provider(&fake, Duration::from_secs(3));
    let sms = message();
    assert_eq!(provider.send(&sms).await, ProviderOutcome::sent("job_0123"));
    assert_eq!(
        provider.send(&sms).await,
        ProviderOutcome::transient("HTTP 503: busy")
    );
    assert_eq!(
        provider.send(&sms).await,
        ProviderOutcome::throttled(Some(Duration::from_secs(7)), "HTTP 429: slow down")
    );
    assert_eq!(
        provider.send(&sms).await,
        ProviderOutcome::permanent(FailureKind::Rejected, "HTTP 400: invalid destination")
    );
    // Redirects are not followed (SSRF): the 302 is an answer, not a hop.
    assert!(matches!(
        provider.send(&sms).await,
        ProviderOutcome::Permanent { .. }
    ));
    assert_eq!(fake.request_count(), 5);
}

#[tokio::test]
async fn a_timeout_after_sending_is_unknown() {
    let fake = FakeProvider::start().await;
    fake.push_responses([FakeResponse::status(200, "{}").with_delay(Duration::from_secs(2))]);
    let outcome = http_provider(&fake, Duration::from_millis(300))
        .send(&message())
        .await;
    assert!(
        matches!(outcome, ProviderOutcome::Unknown { .. }),
        "{outcome:?}"
    );
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // Bind and drop a listener: nothing listens on that port any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{address}/sms");
    let provider = providers(Duration::from_secs(2), true)
        .for_route(&route("http", &[("url", &url)], &[]))
        .unwrap();
    let outcome = provider.send(&message()).await;
    assert!(
        matches!(outcome, ProviderOutcome::Transient { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn private_destinations_are_refused_unless_allowed() {
    let fake = FakeProvider::start().await;
    let guarded = providers(Duration::from_secs(2), false);
    // IP literal: refused when the route is read.
    let literal = guarded.for_route(&route("http", &[("url", &fake.url())], &[]));
    assert!(
        matches!(literal, Err(RouteConfigError::RefusedUrl { .. })),
        "{literal:?}"
    );
    // A name that resolves to loopback: refused by the resolver, before connecting.
    let port = fake.url().rsplit(':').next().unwrap().to_owned();
    let by_name = guarded
        .for_route(&route(
            "http",
            &[("url", &format!("http://localhost:{port}/sms"))],
            &[],
        ))
        .unwrap();
    let outcome = by_name.send(&message()).await;
    assert!(
        matches!(&outcome, ProviderOutcome::Permanent { reason, .. } if reason.contains("private")),
        "{outcome:?}"
    );
    let twilio = guarded.for_route(&route(
        "twilio",
        &[("base_url", "http://10.0.0.8")],
        &[("account_sid", "AC1"), ("auth_token", "t")],
    ));
    assert!(matches!(twilio, Err(RouteConfigError::RefusedUrl { .. })));
    assert_eq!(fake.request_count(), 0);
}

fn twilio_provider(fake: &FakeProvider) -> Provider {
    providers(Duration::from_secs(3), true)
        .for_route(&route(
            "twilio",
            &[("base_url", &fake.url()), ("from", "+15005550006")],
            &[
                ("account_sid", "AC0123456789abcdef"),
                ("auth_token", "tw-secret"),
            ],
        ))
        .unwrap()
}

#[tokio::test]
async fn twilio_request_format() {
    let fake = FakeProvider::start().await;
    fake.push_responses([FakeResponse::status(
        201,
        r#"{"sid": "SM0123456789abcdef", "status": "queued", "to": "+525512345678"}"#,
    )]);
    let outcome = twilio_provider(&fake).send(&message()).await;
    assert_eq!(outcome, ProviderOutcome::sent("SM0123456789abcdef"));
    let request = fake.requests().remove(0);
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json"
    );
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("AC0123456789abcdef:tw-secret")
    );
    assert_eq!(
        request.header("authorization"),
        Some(expected_auth.as_str())
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.form(),
        vec![
            ("To".to_owned(), "+525512345678".to_owned()),
            ("From".to_owned(), "+15005550006".to_owned()),
            ("Body".to_owned(), "Hola Ale, tu código es 4921".to_owned()),
        ]
    );
}

#[tokio::test]
async fn twilio_errors_map_to_outcomes() {
    let fake = FakeProvider::start().await;
    fake.push_responses([
        FakeResponse::status(
            400,
            r#"{"code": 21211, "message": "The 'To' number +5255 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#,
        ),
        FakeResponse::status(
            400,
            r#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}"#,
        ),
        FakeResponse::status(
            429,
            r#"{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}"#,
        )
        .with_header("Retry-After", "3"),
        FakeResponse::status(500, ""),
    ]);
    let provider = twilio_provider(&fake);
    let sms = message();
    assert_eq!(
        provider.send(&sms).await,
        ProviderOutcome::permanent(
            FailureKind::InvalidNumber,
            "21211: The 'To' number +5255 is not a valid phone number."
        )
    );
    assert_eq!(
        provider.send(&sms).await,
        ProviderOutcome::permanent(
            FailureKind::OptedOut,
            "21610: Attempt to send to unsubscribed recipient"
        )
    );
    assert_eq!(
        provider.send(&sms).await,
        ProviderOutcome::throttled(Some(Duration::from_secs(3)), "20429: Too Many Requests")
    );
    assert!(matches!(
        provider.send(&sms).await,
        ProviderOutcome::Transient { .. }
    ));
}

#[tokio::test]
async fn unknown_kinds_and_missing_settings_are_configuration_errors() {
    let providers = providers(Duration::from_secs(1), true);
    assert_eq!(
        providers
            .for_route(&route("carrier-pigeon", &[], &[]))
            .unwrap_err(),
        RouteConfigError::UnknownKind("carrier-pigeon".to_owned())
    );
    assert_eq!(
        providers.for_route(&route("http", &[], &[])).unwrap_err(),
        RouteConfigError::MissingSetting("url")
    );
}

#[tokio::test]
async fn a_console_route_works_only_when_the_operator_enables_it_and_never_picks_its_file() {
    let disabled = providers(Duration::from_secs(1), false).for_route(&route("console", &[], &[]));
    assert!(
        matches!(disabled, Err(RouteConfigError::ConsoleDisabled)),
        "{:?}",
        disabled.err()
    );

    let directory = tempfile::tempdir().unwrap();
    let outbox = directory.path().join("outbox.jsonl");
    let elsewhere = directory.path().join("elsewhere.jsonl");
    let enabled = Providers::new(Duration::from_secs(1), false, Some(outbox.clone())).unwrap();
    // A route stored before `path` was refused still cannot choose the file.
    let provider = enabled
        .for_route(&route(
            "console",
            &[("path", elsewhere.to_str().unwrap())],
            &[],
        ))
        .unwrap();
    assert_eq!(
        provider.send(&message()).await,
        ProviderOutcome::sent("console-job_0123")
    );
    assert_eq!(std::fs::read_to_string(&outbox).unwrap().lines().count(), 1);
    assert!(!elsewhere.exists());
}
