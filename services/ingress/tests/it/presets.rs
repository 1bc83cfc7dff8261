//! Every sender preset end to end, with the shared fixtures' real bodies where
//! there is one: a correctly signed request is stored with the preset's event type
//! and id; a tampered one, a wrong secret and (for timestamped schemes) a stale
//! one are refused and store nothing; after a rotation both secrets are accepted.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use foco_ingress::signature::{Algorithm, hmac, hmac_sha256, signing};
use foco_proto::v1::verification::Scheme;
use foco_proto::v1::{
    GenericHmac, HmacAlgorithm, SignatureEncoding, Source, UpsertSourceRequest, Verification,
};
use foco_testkit::wait_for;
use serde_json::Value;

use crate::accept::now;
use crate::harness::{Harness, IngressOptions, answer, fixture};

pub const PUBLIC_URL: &str = "https://hooks.example.com";

/// What a signer needs to know about the request it signs.
pub struct ToSign<'a> {
    pub secret: &'a str,
    pub body: &'a [u8],
    pub now: i64,
    /// The URL as the sender called it (ingress's public URL).
    pub url: &'a str,
}

type Signer = fn(&ToSign<'_>) -> Vec<(&'static str, String)>;

/// How a request is altered after signing to prove the scheme notices.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// One digit of the body changes.
    Body,
    /// The query changes (Mercado Pago signs `data.id` from it, not the body).
    Query(&'static str),
    /// The scheme signs nothing of the request (a shared token): only a wrong
    /// secret can be refused.
    Nothing,
}

pub struct Case {
    pub preset: &'static str,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// Appended to the hook URL (Mercado Pago puts `data.id` there).
    pub query: &'static str,
    /// Headers that are not the signature: event type and id headers.
    pub headers: Vec<(&'static str, &'static str)>,
    pub sign: Signer,
    pub event_type: &'static str,
    pub external_id: &'static str,
    /// The signature covers the body but not the id's header, nor a timestamp:
    /// the body names the event (a copy under a new id is the same event).
    pub named_by_body: bool,
    pub timestamped: bool,
    pub tamper: Tamper,
}

pub async fn start() -> Harness {
    Harness::start_with(
        foco_testkit::nats_url(),
        IngressOptions {
            public_url: Some(PUBLIC_URL.to_owned()),
            ..Default::default()
        },
    )
    .await
}

/// Creates a source of `preset` with `secrets` (current first).
pub async fn preset_source(
    harness: &mut Harness,
    name: &str,
    preset: &str,
    secrets: &[&str],
    verification: Option<Verification>,
) -> Source {
    harness
        .upsert_source(UpsertSourceRequest {
            name: name.to_owned(),
            preset: preset.to_owned(),
            secrets: secrets.iter().map(|secret| (*secret).to_owned()).collect(),
            verification,
            ..Default::default()
        })
        .await
}

/// Posts `case` signed with `secret` at `timestamp`, the body possibly tampered
/// after signing: the status and the JSON answer.
async fn post(
    harness: &Harness,
    source: &Source,
    case: &Case,
    secret: &str,
    timestamp: i64,
    tamper: bool,
) -> (u16, Value) {
    let signed_path = format!("/v1/hooks/{}{}", source.token, case.query);
    let public_url = format!("{PUBLIC_URL}{signed_path}");
    let path_and_query = match case.tamper {
        Tamper::Query(query) if tamper => format!("/v1/hooks/{}{query}", source.token),
        _ => signed_path,
    };
    let signed = (case.sign)(&ToSign {
        secret,
        body: &case.body,
        now: timestamp,
        url: &public_url,
    });
    let mut body = case.body.clone();
    if tamper && case.tamper == Tamper::Body {
        // Still the same length and (for JSON) still parseable: only the
        // signature can tell.
        let position = body.iter().position(u8::is_ascii_digit).unwrap_or(0);
        body[position] = if body[position] == b'9' {
            b'8'
        } else {
            body[position] + 1
        };
    }
    let mut request = harness
        .http
        .post(format!("http://{}{path_and_query}", harness.ingress_addr))
        .header("content-type", case.content_type)
        .body(body);
    for (name, value) in &case.headers {
        request = request.header(*name, *value);
    }
    for (name, value) in signed {
        request = request.header(name, value);
    }
    answer(request).await
}

/// The whole check of one preset; `number` names its source.
pub async fn check_preset(harness: &mut Harness, case: &Case) {
    let name = format!("src-{}", case.preset);
    let before = harness.stored_events().await;
    let source = preset_source(harness, &name, case.preset, &["old-secret"], None).await;
    assert_eq!(source.preset, case.preset);

    let (status, answer) = post(harness, &source, case, "old-secret", now(), false).await;
    assert_eq!(status, 202, "{}: {answer}", case.preset);
    let stored = harness.stored_event(before + 1).await.envelope;
    assert_eq!(stored.event_type, case.event_type, "{}", case.preset);
    assert_eq!(stored.external_id, case.external_id, "{}", case.preset);
    let expected_id = if case.external_id.is_empty() || case.named_by_body {
        foco_bus::event_id_from_body(&source.id, &case.body)
    } else {
        foco_bus::event_id_from_external(&source.id, case.external_id)
    };
    assert_eq!(answer["event_id"], expected_id.as_str(), "{}", case.preset);

    if case.tamper != Tamper::Nothing {
        let (status, answer) = post(harness, &source, case, "old-secret", now(), true).await;
        assert_eq!(status, 401, "{} tampered: {answer}", case.preset);
        assert_eq!(answer["type"], "https://foco.dev/problems/unauthenticated");
    }
    let (status, _) = post(harness, &source, case, "wrong-secret", now(), false).await;
    assert_eq!(status, 401, "{} wrong secret", case.preset);
    if case.timestamped {
        let (status, answer) =
            post(harness, &source, case, "old-secret", now() - 3600, false).await;
        assert_eq!(status, 401, "{} stale", case.preset);
        assert!(
            answer["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("tolerance"),
            "{}: {answer}",
            case.preset
        );
    }
    assert_eq!(
        harness.stored_events().await,
        before + 1,
        "{}: refused requests stored nothing",
        case.preset
    );

    // Rotation: the new secret is current and the old one still valid.
    preset_source(
        harness,
        &name,
        case.preset,
        &["new-secret", "old-secret"],
        None,
    )
    .await;
    wait_for(
        "the rotated secret to be accepted",
        Duration::from_secs(5),
        || async {
            let (status, _) = post(harness, &source, case, "new-secret", now(), false).await;
            (status == 202).then_some(())
        },
    )
    .await;
    let (status, _) = post(harness, &source, case, "old-secret", now(), false).await;
    assert_eq!(
        status, 202,
        "{}: the previous secret stays valid",
        case.preset
    );
}

fn base64_hmac(to_sign: &ToSign<'_>) -> String {
    BASE64.encode(hmac_sha256(to_sign.secret.as_bytes(), &[to_sign.body]))
}

#[tokio::test]
async fn body_hmac_presets() {
    let mut harness = start().await;
    let cases = [
        Case {
            preset: "shopify",
            body: fixture("shopify__orders_create.json"),
            content_type: "application/json",
            query: "",
            // No Event-Id (older API versions): the Webhook-Id is the event's id.
            headers: vec![
                ("X-Shopify-Topic", "orders/create"),
                (
                    "X-Shopify-Webhook-Id",
                    "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
                ),
            ],
            sign: |s| vec![("X-Shopify-Hmac-Sha256", base64_hmac(s))],
            event_type: "orders/create",
            external_id: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            named_by_body: true,
            timestamped: false,
            tamper: Tamper::Body,
        },
        Case {
            preset: "woocommerce",
            body: fixture("woocommerce__order_created.json"),
            content_type: "application/json",
            query: "",
            headers: vec![
                ("X-WC-Webhook-Topic", "order.created"),
                ("X-WC-Webhook-Delivery-ID", "9f2c1a4e0b7d"),
            ],
            sign: |s| vec![("X-WC-Webhook-Signature", base64_hmac(s))],
            event_type: "order.created",
            external_id: "9f2c1a4e0b7d",
            named_by_body: true,
            timestamped: false,
            tamper: Tamper::Body,
        },
        Case {
            preset: "typeform",
            body: fixture("typeform__form_response.json"),
            content_type: "application/json",
            query: "",
            headers: vec![],
            sign: |s| vec![("Typeform-Signature", format!("sha256={}", base64_hmac(s)))],
            event_type: "form_response",
            external_id: "LtWXD3crgy",
            named_by_body: false,
            timestamped: false,
            tamper: Tamper::Body,
        },
        Case {
            preset: "github",
            body: br#"{"action":"opened","number":1,"repository":{"id":1296269}}"#.to_vec(),
            content_type: "application/json",
            query: "",
            headers: vec![
                ("X-GitHub-Event", "pull_request"),
                ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ],
            sign: |s| {
                let mac = hmac_sha256(s.secret.as_bytes(), &[s.body]);
                vec![(
                    "X-Hub-Signature-256",
                    format!("sha256={}", hex::encode(mac)),
                )]
            },
            event_type: "pull_request",
            external_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            named_by_body: true,
            timestamped: false,
            tamper: Tamper::Body,
        },
        Case {
            preset: "tiendanube",
            body: br#"{"store_id":123456,"event":"order/paid","id":987654321}"#.to_vec(),
            content_type: "application/json",
            query: "",
            headers: vec![],
            sign: |s| {
                let mac = hmac_sha256(s.secret.as_bytes(), &[s.body]);
                vec![("x-linkedstore-hmac-sha256", hex::encode(mac))]
            },
            event_type: "order/paid",
            // Tiendanube has no delivery id: the body hash is the event id.
            external_id: "",
            named_by_body: false,
            timestamped: false,
            tamper: Tamper::Body,
        },
    ];
    for case in &cases {
        check_preset(&mut harness, case).await;
    }
}

#[tokio::test]
#[allow(
    clippy::too_many_lines,
    reason = "one table of presets, checked in turn"
)]
async fn timestamped_presets() {
    let mut harness = start().await;
    let cases = [
        Case {
            preset: "stripe",
            body: fixture("stripe__checkout_session_completed.json"),
            content_type: "application/json",
            query: "",
            headers: vec![],
            sign: |s| vec![("Stripe-Signature", signing::stripe(s.secret, s.now, s.body))],
            event_type: "checkout.session.completed",
            external_id: "evt_000000000000000000000000",
            named_by_body: false,
            timestamped: true,
            tamper: Tamper::Body,
        },
        Case {
            preset: "calendly",
            body: br#"{"created_at":"2024-03-01T10:00:00.000000Z","event":"invitee.created","payload":{"email":"ale@example.com","name":"Ale Ruiz","text_reminder_number":"+52 55 1234 5678"}}"#.to_vec(),
            content_type: "application/json",
            query: "",
            headers: vec![],
            sign: |s| {
                vec![(
                    "Calendly-Webhook-Signature",
                    signing::calendly(s.secret, s.now, s.body),
                )]
            },
            event_type: "invitee.created",
            external_id: "",
            named_by_body: false,
            timestamped: true,
            tamper: Tamper::Body,
        },
        Case {
            preset: "hubspot",
            body: br#"[{"eventId":100,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#.to_vec(),
            content_type: "application/json",
            query: "",
            headers: vec![],
            sign: |s| {
                let timestamp_ms = s.now * 1000 + 123;
                vec![
                    (
                        "X-HubSpot-Signature-v3",
                        signing::hubspot_v3(s.secret, "POST", s.url, s.body, timestamp_ms),
                    ),
                    ("X-HubSpot-Request-Timestamp", timestamp_ms.to_string()),
                ]
            },
            event_type: "contact.creation",
            external_id: "100",
            named_by_body: false,
            timestamped: true,
            tamper: Tamper::Body,
        },
        Case {
            preset: "mercadopago",
            body: br#"{"action":"payment.updated","api_version":"v1","data":{"id":"123456"},"date_created":"2024-01-10T14:53:30Z","id":112233445566,"live_mode":true,"type":"payment","user_id":987654321}"#.to_vec(),
            content_type: "application/json",
            query: "?data.id=123456&type=payment",
            headers: vec![("x-request-id", "bb56a2f1-6aae-46ac-982e-9dcd3581d08e")],
            sign: |s| {
                vec![(
                    "x-signature",
                    signing::mercadopago(
                        s.secret,
                        Some("123456"),
                        Some("bb56a2f1-6aae-46ac-982e-9dcd3581d08e"),
                        s.now,
                    ),
                )]
            },
            event_type: "payment.updated",
            external_id: "112233445566",
            named_by_body: false,
            timestamped: true,
            tamper: Tamper::Query("?data.id=123457&type=payment"),
        },
        Case {
            preset: "standard-webhooks",
            body: br#"{"type":"user.created","data":{"id":7}}"#.to_vec(),
            content_type: "application/json",
            query: "",
            headers: vec![("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")],
            sign: |s| {
                // Standard Webhooks keys are base64 behind `whsec_`; a plain
                // secret is used as raw bytes.
                vec![
                    ("webhook-timestamp", s.now.to_string()),
                    (
                        "webhook-signature",
                        signing::standard_webhooks(
                            s.secret,
                            "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
                            s.now,
                            s.body,
                        ),
                    ),
                ]
            },
            event_type: "user.created",
            external_id: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            named_by_body: false,
            timestamped: true,
            tamper: Tamper::Body,
        },
    ];
    for case in &cases {
        check_preset(&mut harness, case).await;
    }
}

#[tokio::test]
async fn token_and_twilio_presets() {
    let mut harness = start().await;
    let cases = [
        Case {
            preset: "hotmart",
            body: br#"{"id":"8d1f2a9c-1b7e-4c1d-9a3e-2f6b5c4d3e21","creation_date":1700000000000,"event":"PURCHASE_APPROVED","version":"2.0.0","data":{"buyer":{"name":"Ale Ruiz","checkout_phone":"5512345678"}}}"#.to_vec(),
            content_type: "application/json",
            query: "",
            headers: vec![],
            sign: |s| vec![("X-HOTMART-HOTTOK", s.secret.to_owned())],
            event_type: "PURCHASE_APPROVED",
            external_id: "8d1f2a9c-1b7e-4c1d-9a3e-2f6b5c4d3e21",
            named_by_body: false,
            timestamped: false,
            tamper: Tamper::Nothing,
        },
        Case {
            preset: "bearer",
            body: br#"{"alarm":"door","zone":3}"#.to_vec(),
            content_type: "application/json",
            query: "",
            headers: vec![],
            sign: |s| vec![("Authorization", format!("Bearer {}", s.secret))],
            event_type: "",
            external_id: "",
            named_by_body: false,
            timestamped: false,
            tamper: Tamper::Nothing,
        },
        Case {
            preset: "basic-auth",
            body: br#"{"alarm":"window","zone":4}"#.to_vec(),
            content_type: "application/json",
            query: "",
            headers: vec![],
            sign: |s| {
                let credentials = BASE64.encode(format!("alarms:{}", s.secret));
                vec![("Authorization", format!("Basic {credentials}"))]
            },
            event_type: "",
            external_id: "",
            named_by_body: false,
            timestamped: false,
            tamper: Tamper::Nothing,
        },
        Case {
            preset: "twilio",
            body: twilio_form("twilio__inbound_sms.json").into_bytes(),
            content_type: "application/x-www-form-urlencoded",
            query: "",
            headers: vec![],
            sign: |s| {
                let params: Vec<(String, String)> = serde_urlencoded::from_bytes(s.body).unwrap();
                vec![("X-Twilio-Signature", signing::twilio(s.secret, s.url, &params))]
            },
            event_type: "",
            external_id: "SMcea2a3bd6f50296f8fab60f377db03eb",
            named_by_body: false,
            timestamped: false,
            tamper: Tamper::Body,
        },
    ];
    for case in &cases {
        // Basic credentials are "user:password"; the others use the secret as is.
        if case.preset == "basic-auth" {
            check_basic_auth(&mut harness, case).await;
        } else {
            check_preset(&mut harness, case).await;
        }
    }
}

/// Basic auth's secret is the whole `user:password`, so it gets its own check.
async fn check_basic_auth(harness: &mut Harness, case: &Case) {
    let source = preset_source(
        harness,
        "alarms",
        "basic-auth",
        &["alarms:old-secret"],
        None,
    )
    .await;
    let (status, _) = post(harness, &source, case, "old-secret", now(), false).await;
    assert_eq!(status, 202);
    let (status, _) = post(harness, &source, case, "wrong", now(), false).await;
    assert_eq!(status, 401);
    preset_source(
        harness,
        "alarms",
        "basic-auth",
        &["alarms:new-secret", "alarms:old-secret"],
        None,
    )
    .await;
    wait_for("the new password", Duration::from_secs(5), || async {
        let (status, _) = post(harness, &source, case, "new-secret", now(), false).await;
        (status == 202).then_some(())
    })
    .await;
}

/// A fixture shown as a JSON object, form-encoded as Twilio sends it.
pub fn twilio_form(name: &str) -> String {
    let shown: serde_json::Map<String, Value> = serde_json::from_slice(&fixture(name)).unwrap();
    let pairs: Vec<(String, String)> = shown
        .into_iter()
        .map(|(key, value)| (key, value.as_str().unwrap_or_default().to_owned()))
        .collect();
    serde_urlencoded::to_string(pairs).unwrap()
}

#[tokio::test]
async fn the_generic_preset() {
    let mut harness = start().await;
    let verification = Some(Verification {
        scheme: Some(Scheme::GenericHmac(GenericHmac {
            header: "X-Crm-Signature".to_owned(),
            algorithm: HmacAlgorithm::Sha512 as i32,
            encoding: SignatureEncoding::Hex as i32,
            prefix: "v1=".to_owned(),
            timestamp_header: "X-Crm-Timestamp".to_owned(),
            signed_content: "{timestamp}:{method}:{url}:{body}".to_owned(),
            tolerance_seconds: 0,
        })),
    });
    let source = preset_source(
        &mut harness,
        "crm",
        "generic",
        &["crm-secret"],
        verification,
    )
    .await;
    let body = br#"{"kind":"deal.won","amount":500}"#;
    let url = format!("{PUBLIC_URL}/v1/hooks/{}", source.token);
    let send = |timestamp: i64, secret: &'static str, body: &'static [u8]| {
        let text = format!("{timestamp}:POST:{url}:");
        let mac = hmac(
            Algorithm::Sha512,
            secret.as_bytes(),
            &[text.as_bytes(), br#"{"kind":"deal.won","amount":500}"#],
        );
        harness
            .http
            .post(harness.hook_url(&source.token))
            .header("content-type", "application/json")
            .header("X-Crm-Timestamp", timestamp.to_string())
            .header("X-Crm-Signature", format!("v1={}", hex::encode(mac)))
            .body(body)
            .send()
    };
    assert_eq!(send(now(), "crm-secret", body).await.unwrap().status(), 202);
    assert_eq!(
        send(now(), "crm-secret", br#"{"kind":"deal.won","amount":900}"#)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        send(now() - 900, "crm-secret", body)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(send(now(), "other", body).await.unwrap().status(), 401);
    assert_eq!(harness.stored_events().await, 1);
}

/// A signed body that says JSON but is not: sources fed by hand-written code
/// (bearer here) and sources whose event type or id is read from the body
/// (Stripe) answer 400 and store nothing; a platform preset that reads only
/// headers (Shopify) stores it byte for byte, and rules reports it on the event.
#[tokio::test]
async fn malformed_json_is_refused_where_it_is_read_or_hand_written() {
    let mut harness = start().await;
    let malformed = b"{\"id\": 820982911946154508, \"total_price\": ".to_vec();
    let case = |preset: &'static str, headers, sign: Signer| Case {
        preset,
        body: malformed.clone(),
        content_type: "application/json",
        query: "",
        headers,
        sign,
        event_type: "",
        external_id: "",
        named_by_body: false,
        timestamped: false,
        tamper: Tamper::Nothing,
    };
    let refused = [
        case("bearer", vec![], |s| {
            vec![("Authorization", format!("Bearer {}", s.secret))]
        }),
        case("stripe", vec![], |s| {
            vec![("Stripe-Signature", signing::stripe(s.secret, s.now, s.body))]
        }),
    ];
    let before = harness.stored_events().await;
    for case in &refused {
        let source = preset_source(&mut harness, case.preset, case.preset, &["s3cret"], None).await;
        let (status, answer) = post(&harness, &source, case, "s3cret", now(), false).await;
        assert_eq!(status, 400, "{}: {answer}", case.preset);
        assert_eq!(answer["type"], "https://foco.dev/problems/invalid-argument");
        assert!(
            answer["detail"].as_str().unwrap().contains("JSON"),
            "{}: {answer}",
            case.preset
        );
    }
    assert_eq!(harness.stored_events().await, before, "nothing was stored");

    let shopify = case(
        "shopify",
        vec![
            ("X-Shopify-Topic", "orders/create"),
            (
                "X-Shopify-Webhook-Id",
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            ),
        ],
        |s| vec![("X-Shopify-Hmac-Sha256", base64_hmac(s))],
    );
    let source = preset_source(&mut harness, "shop", "shopify", &["s3cret"], None).await;
    let (status, answer) = post(&harness, &source, &shopify, "s3cret", now(), false).await;
    assert_eq!(status, 202, "{answer}");
    let stored = harness.stored_event(before + 1).await.envelope;
    assert_eq!(stored.payload, malformed);
    assert_eq!(stored.event_type, "orders/create");
    // A tampered or unsigned copy is still refused: only the JSON check is skipped.
    let (status, _) = post(&harness, &source, &shopify, "wrong-secret", now(), false).await;
    assert_eq!(status, 401);
    assert_eq!(harness.stored_events().await, before + 1);
}
