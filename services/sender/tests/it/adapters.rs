//! Vonage, Infobip, SMS Masivos, Telnyx and the templated http provider against a
//! local fake that answers in each provider's own format, errors included.

use std::time::Duration;

use base64::Engine as _;
use foco_sender::providers::{Accepted, FailureKind, Price, Provider, ProviderOutcome, Repeat};
use foco_testkit::{FakeProvider, FakeResponse};

use crate::providers::{message, providers, route};

fn provider(kind: &str, settings: &[(&str, &str)], credentials: &[(&str, &str)]) -> Provider {
    providers(Duration::from_secs(3), true)
        .for_route(&route(kind, settings, credentials))
        .unwrap()
}

fn json(status: u16, body: &str) -> FakeResponse {
    FakeResponse::status(status, body).with_header("content-type", "application/json")
}

#[tokio::test]
async fn vonage_sends_a_form_and_reads_every_part() {
    let fake = FakeProvider::start().await;
    fake.push_responses([
        json(
            200,
            r#"{"message-count":"2","messages":[
                {"to":"525512345678","message-id":"0A00000001","status":"0","remaining-balance":"9.9","message-price":"0.03330000","network":"33401"},
                {"to":"525512345678","message-id":"0A00000002","status":"0","remaining-balance":"9.8","message-price":"0.03330000","network":"33401"}]}"#,
        ),
        json(200, r#"{"message-count":"1","messages":[{"status":"9","error-text":"Quota Exceeded - rejected"}]}"#),
        json(200, r#"{"message-count":"1","messages":[{"status":"1","error-text":"Throughput Rate Exceeded"}]}"#),
        json(200, r#"{"message-count":"1","messages":[{"status":"7","error-text":"Number barred"}]}"#),
        json(200, r#"{"message-count":"1","messages":[{"status":"4","error-text":"Bad Credentials"}]}"#),
        FakeResponse::status(200, "<html>oops</html>"),
    ]);
    let vonage = provider(
        "vonage",
        &[
            ("base_url", &fake.url()),
            ("from", "Foco"),
            ("currency", "USD"),
        ],
        &[("api_key", "vk-1"), ("api_secret", "vs-secret")],
    );
    let sms = message();
    assert_eq!(
        vonage.send(&sms).await,
        ProviderOutcome::Sent(Accepted {
            provider_message_id: "0A00000001".to_owned(),
            part_ids: vec!["0A00000001".to_owned(), "0A00000002".to_owned()],
            segments: 2,
            price: Some(Price {
                amount: "0.06660000".to_owned(),
                currency: "USD".to_owned()
            }),
        })
    );
    let request = fake.requests().remove(0);
    assert_eq!(request.path, "/sms/json");
    let form = request.form();
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(field("to"), Some("525512345678"));
    assert_eq!(field("from"), Some("Foco"));
    assert_eq!(field("api_key"), Some("vk-1"));
    assert_eq!(field("client-ref"), Some("job_0123"));
    // "código" is GSM-7 except for ó: Unicode.
    assert_eq!(field("type"), Some("unicode"));
    assert!(matches!(
        vonage.send(&sms).await,
        ProviderOutcome::Permanent {
            kind: FailureKind::NoCredit,
            ..
        }
    ));
    assert!(matches!(
        vonage.send(&sms).await,
        ProviderOutcome::Transient {
            throttled: true,
            ..
        }
    ));
    assert!(matches!(
        vonage.send(&sms).await,
        ProviderOutcome::Permanent {
            kind: FailureKind::Blocked,
            ..
        }
    ));
    assert!(matches!(
        vonage.send(&sms).await,
        ProviderOutcome::Permanent {
            kind: FailureKind::Provider,
            ..
        }
    ));
    // A 200 we cannot read may have sent the message.
    assert!(matches!(
        vonage.send(&sms).await,
        ProviderOutcome::Unknown { .. }
    ));
    assert!(!format!("{vonage:?}").contains("vs-secret"));
}

#[tokio::test]
async fn infobip_v3_request_and_answers() {
    let fake = FakeProvider::start().await;
    fake.push_responses([
        json(
            200,
            r#"{"bulkId":"b-1","messages":[{"messageId":"job_0123","status":{"groupId":1,"groupName":"PENDING","id":26,"name":"PENDING_ACCEPTED","description":"Message sent to next instance"},"destination":"525512345678","details":{"messageCount":2}}]}"#,
        ),
        json(
            200,
            r#"{"bulkId":"b-2","messages":[{"messageId":"job_0123","status":{"groupId":5,"groupName":"REJECTED","id":12,"name":"REJECTED_NOT_ENOUGH_CREDITS","description":"Not enough credits"}}]}"#,
        ),
        json(
            400,
            r#"{"errorCode":"E400","description":"Request cannot be processed.","action":"Check the syntax","violations":[{"property":"messages[0].destinations[0].to","violation":"must be a phone number"}],"resources":[]}"#,
        ),
        json(
            401,
            r#"{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}"#,
        ),
        json(429, r#"{"errorCode":"E429","description":"Too many requests"}"#).with_header("Retry-After", "2"),
    ]);
    let infobip = provider(
        "infobip",
        &[("base_url", &fake.url()), ("from", "FocoMX")],
        &[("api_key", "ib-secret")],
    );
    let sms = message();
    assert_eq!(
        infobip.send(&sms).await,
        ProviderOutcome::Sent(Accepted {
            provider_message_id: "job_0123".to_owned(),
            segments: 2,
            ..Accepted::default()
        })
    );
    let request = fake.requests().remove(0);
    assert_eq!(request.path, "/sms/3/messages");
    assert_eq!(request.header("authorization"), Some("App ib-secret"));
    let body = request.json();
    assert_eq!(body["messages"][0]["sender"], "FocoMX");
    assert_eq!(body["messages"][0]["destinations"][0]["to"], "525512345678");
    assert_eq!(
        body["messages"][0]["destinations"][0]["messageId"],
        "job_0123"
    );
    assert_eq!(body["messages"][0]["content"]["text"], sms.body.as_str());
    assert!(matches!(
        infobip.send(&sms).await,
        ProviderOutcome::Permanent { kind: FailureKind::NoCredit, ref reason } if reason.contains("REJECTED_NOT_ENOUGH_CREDITS")
    ));
    assert_eq!(
        infobip.send(&sms).await,
        ProviderOutcome::permanent(
            FailureKind::Rejected,
            "infobip E400: Request cannot be processed."
        )
    );
    assert_eq!(
        infobip.send(&sms).await,
        ProviderOutcome::permanent(
            FailureKind::Provider,
            "infobip UNAUTHORIZED: Invalid login details"
        )
    );
    assert_eq!(
        infobip.send(&sms).await,
        ProviderOutcome::throttled(
            Some(Duration::from_secs(2)),
            "infobip E429: Too many requests"
        )
    );
}

#[tokio::test]
async fn sms_masivos_sends_national_numbers_with_the_apikey_header() {
    let fake = FakeProvider::start().await;
    fake.push_responses([
        json(
            200,
            r#"{"success":true,"message":"Mensajes enviados","status":200,"code":"sms_01","references":[{"reference":"ref-77","number":"5512345678"}]}"#,
        ),
        json(401, r#"{"success":false,"message":"Llave privada inválida","status":401,"code":"auth_03"}"#),
        json(200, r#"{"success":false,"message":"Saldo insuficiente","status":400,"code":"sms_07"}"#),
        json(503, r#"{"success":false,"message":"Servicio no disponible","status":503,"code":"srv_01"}"#),
    ]);
    let masivos = provider(
        "smsmasivos",
        &[("base_url", &fake.url()), ("sandbox", "true")],
        &[("api_key", "sm-secret")],
    );
    let sms = message();
    assert_eq!(masivos.send(&sms).await, ProviderOutcome::sent("ref-77"));
    let request = fake.requests().remove(0);
    assert_eq!(request.path, "/sms/send");
    assert_eq!(request.header("apikey"), Some("sm-secret"));
    let form = request.form();
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(field("numbers"), Some("5512345678"));
    assert_eq!(field("country_code"), Some("52"));
    assert_eq!(field("message"), Some(sms.body.as_str()));
    assert_eq!(field("sandbox"), Some("1"));
    assert!(matches!(
        masivos.send(&sms).await,
        ProviderOutcome::Permanent {
            kind: FailureKind::Provider,
            ..
        }
    ));
    assert!(matches!(
        masivos.send(&sms).await,
        ProviderOutcome::Permanent {
            kind: FailureKind::NoCredit,
            ..
        }
    ));
    assert!(matches!(
        masivos.send(&sms).await,
        ProviderOutcome::Transient {
            throttled: false,
            ..
        }
    ));
}

#[tokio::test]
async fn telnyx_sends_the_job_id_as_idempotency_key() {
    let fake = FakeProvider::start().await;
    fake.push_responses([
        json(
            200,
            r#"{"data":{"record_type":"message","id":"40385f64-5717-4562-b3fc-2c963f66afa6","direction":"outbound","parts":1,"cost":{"amount":"0.0051","currency":"USD"},"to":[{"phone_number":"+525512345678","status":"queued"}]}}"#,
        ),
        json(
            400,
            r#"{"errors":[{"code":"40300","title":"Blocked due to STOP message","detail":"The recipient has opted out."}]}"#,
        ),
        json(
            422,
            r#"{"errors":[{"code":"10016","title":"Phone number must be in +E.164 format","detail":"The 'to' parameter is invalid."}]}"#,
        ),
        json(
            429,
            r#"{"errors":[{"code":"10011","title":"Too many requests","detail":"Slow down."}]}"#,
        ),
    ]);
    let telnyx = provider(
        "telnyx",
        &[("base_url", &fake.url()), ("from", "+15550001111")],
        &[("api_key", "KEYsecret")],
    );
    assert_eq!(telnyx.repeat(), Repeat::Deduplicated);
    let sms = message();
    assert_eq!(
        telnyx.send(&sms).await,
        ProviderOutcome::Sent(Accepted {
            provider_message_id: "40385f64-5717-4562-b3fc-2c963f66afa6".to_owned(),
            part_ids: Vec::new(),
            segments: 1,
            price: Some(Price {
                amount: "0.0051".to_owned(),
                currency: "USD".to_owned()
            }),
        })
    );
    let request = fake.requests().remove(0);
    assert_eq!(request.path, "/v2/messages");
    assert_eq!(request.header("authorization"), Some("Bearer KEYsecret"));
    assert_eq!(request.header("idempotency-key"), Some("job_0123"));
    assert_eq!(
        request.json(),
        serde_json::json!({"to": "+525512345678", "from": "+15550001111", "text": sms.body})
    );
    assert!(matches!(
        telnyx.send(&sms).await,
        ProviderOutcome::Permanent {
            kind: FailureKind::OptedOut,
            ..
        }
    ));
    assert!(matches!(
        telnyx.send(&sms).await,
        ProviderOutcome::Permanent {
            kind: FailureKind::InvalidNumber,
            ..
        }
    ));
    assert!(matches!(
        telnyx.send(&sms).await,
        ProviderOutcome::Transient {
            throttled: true,
            ..
        }
    ));
    assert!(!format!("{telnyx:?}").contains("KEYsecret"));
}

#[tokio::test]
async fn http_bodies_can_be_templated() {
    let fake = FakeProvider::start().await;
    fake.push_responses([json(200, r#"{"data": {"ref": 991}}"#)]);
    let gateway = provider(
        "http",
        &[
            ("url", &format!("{}/send", fake.url())),
            ("content_type", "application/x-www-form-urlencoded"),
            (
                "body_template",
                "dest={{ to_digits }}&msg={{ body | urlencode }}&ref={{ job_id }}",
            ),
            ("id_pointer", "/data/ref"),
            ("idempotent", "true"),
        ],
        &[("X-Token", "gw")],
    );
    assert_eq!(gateway.repeat(), Repeat::Deduplicated);
    assert_eq!(gateway.send(&message()).await, ProviderOutcome::sent("991"));
    let request = fake.requests().remove(0);
    assert_eq!(request.header("x-token"), Some("gw"));
    assert_eq!(
        request.form(),
        vec![
            ("dest".to_owned(), "525512345678".to_owned()),
            ("msg".to_owned(), "Hola Ale, tu código es 4921".to_owned()),
            ("ref".to_owned(), "job_0123".to_owned()),
        ]
    );

    let json_gateway = provider(
        "http",
        &[
            ("url", &format!("{}/send", fake.url())),
            (
                "body_template",
                r#"{"phone": {{ to | tojson }}, "text": {{ body | tojson }}}"#,
            ),
        ],
        &[],
    );
    json_gateway.send(&message()).await;
    let request = fake.requests().remove(1);
    assert_eq!(
        request.json(),
        serde_json::json!({"phone": "+525512345678", "text": "Hola Ale, tu código es 4921"})
    );
}

#[tokio::test]
async fn twilio_answers_carry_segments_and_price() {
    let fake = FakeProvider::start().await;
    fake.push_responses([json(
        201,
        r#"{"sid":"SM1","status":"queued","num_segments":"2","price":"-0.01580","price_unit":"USD"}"#,
    )]);
    let twilio = provider(
        "twilio",
        &[("base_url", &fake.url()), ("from", "+15005550006")],
        &[("account_sid", "AC1"), ("auth_token", "tw")],
    );
    assert_eq!(
        twilio.send(&message()).await,
        ProviderOutcome::Sent(Accepted {
            provider_message_id: "SM1".to_owned(),
            part_ids: Vec::new(),
            segments: 2,
            price: Some(Price {
                amount: "-0.01580".to_owned(),
                currency: "USD".to_owned()
            }),
        })
    );
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("AC1:tw")
    );
    assert_eq!(
        fake.requests()[0].header("authorization"),
        Some(expected.as_str())
    );
}

#[tokio::test]
async fn new_kinds_refuse_private_hosts_and_missing_credentials() {
    let guarded = providers(Duration::from_secs(1), false);
    for kind in ["vonage", "infobip", "smsmasivos", "telnyx"] {
        let refused = guarded.for_route(&route(
            kind,
            &[("base_url", "http://169.254.169.254")],
            &[("api_key", "k"), ("api_secret", "s")],
        ));
        assert!(refused.is_err(), "{kind}");
    }
    let open = providers(Duration::from_secs(1), true);
    assert!(open.for_route(&route("telnyx", &[], &[])).is_err());
    assert!(
        open.for_route(&route("vonage", &[], &[("api_key", "k")]))
            .is_err()
    );
    assert!(
        open.for_route(&route("infobip", &[], &[("api_key", "k")]))
            .is_err()
    );
}
