//! Property tests: random bodies, headers, URLs and settings fed to every
//! verification scheme and to the parsing code. None of it may panic (a panic
//! would drop the connection instead of answering), and a random signature never
//! verifies. A few hundred cases each, so `make test` stays quick.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use foco_proto::v1::verification::Scheme;
use foco_proto::v1::{
    BasicAuth, CalendlySignature, GenericHmac, HmacSha256, HubspotSignatureV3,
    MercadoPagoSignature, StandardWebhooks, StaticToken, StripeSignature, TwilioSignature,
    Verification,
};
use proptest::prelude::*;

use crate::body::{BodyFormat, JsonReading, form_to_json, normalise, normalise_for};
use crate::event_fields::{BodyFields, read_event_fields, read_field};
use crate::providers::infobip::parse::{infobip_inbound, infobip_reports};
use crate::providers::telnyx::parse::telnyx_event;
use crate::providers::twilio::parse::{twilio_inbound, twilio_status};
use crate::providers::vonage::parse::{vonage_inbound, vonage_status};
use crate::signature::{
    InfobipSecret, SignatureScheme as _, TelnyxSignature, VonageMethod, VonageSignature,
};
use crate::signature::{SignedRequest, Verifier};

/// Header names the schemes read, plus a few others.
const HEADER_NAMES: [&str; 19] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "stripe-signature",
    "calendly-webhook-signature",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-signature",
    "x-request-id",
    "x-twilio-signature",
    "x-hotmart-hottok",
    "authorization",
    "content-type",
    "x-shopify-hmac-sha256",
    "x-timestamp",
    "host",
    "telnyx-signature-ed25519",
    "telnyx-timestamp",
    "x-foco-webhook-secret",
];

fn schemes(header: &str, template: &str) -> Vec<Verification> {
    let scheme = |scheme| Verification {
        scheme: Some(scheme),
    };
    vec![
        scheme(Scheme::StandardWebhooks(StandardWebhooks {
            tolerance_seconds: 0,
        })),
        scheme(Scheme::HmacSha256(HmacSha256 {
            header: header.to_owned(),
            encoding: 0,
            prefix: "sha256=".to_owned(),
        })),
        scheme(Scheme::Stripe(StripeSignature {
            tolerance_seconds: 0,
        })),
        scheme(Scheme::Calendly(CalendlySignature {
            tolerance_seconds: 1,
        })),
        scheme(Scheme::HubspotV3(HubspotSignatureV3 {
            tolerance_seconds: 0,
        })),
        scheme(Scheme::Mercadopago(MercadoPagoSignature {
            tolerance_seconds: 0,
        })),
        scheme(Scheme::Twilio(TwilioSignature {})),
        scheme(Scheme::StaticToken(StaticToken {
            header: header.to_owned(),
            prefix: "Bearer ".to_owned(),
        })),
        scheme(Scheme::BasicAuth(BasicAuth {})),
        scheme(Scheme::GenericHmac(GenericHmac {
            header: header.to_owned(),
            algorithm: 2,
            encoding: 1,
            prefix: String::new(),
            timestamp_header: "x-timestamp".to_owned(),
            signed_content: template.to_owned(),
            tolerance_seconds: 0,
        })),
    ]
}

fn headers_from(pairs: &[(usize, Vec<u8>)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (index, value) in pairs {
        let name = HeaderName::from_static(HEADER_NAMES[index % HEADER_NAMES.len()]);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    headers
}

/// Header values shaped like signatures part of the time, random otherwise.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80),
        "t=[0-9]{1,12},v1=[0-9a-f]{0,64}(,v1=[0-9a-zA-Z]{0,8})?".prop_map(String::into_bytes),
        "ts=[0-9]{1,14},v1=[0-9a-f]{0,66}".prop_map(String::into_bytes),
        "v1,[A-Za-z0-9+/=]{0,48}( v1,[A-Za-z0-9+/=]{0,8})?".prop_map(String::into_bytes),
        "(Basic |Bearer |sha256=)?[A-Za-z0-9+/=:%]{0,48}".prop_map(String::into_bytes),
        "[0-9]{0,16}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verification_never_panics_and_random_signatures_fail(
        pairs in proptest::collection::vec((0usize..64, header_value()), 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        path in "/[a-zA-Z0-9/._~%-]{0,40}(\\?[a-zA-Z0-9=&.%+-]{0,40})?",
        now in 0i64..4_000_000_000,
        header in "[A-Za-z-]{0,12}|bad header",
        template in "[{}a-z:. ]{0,24}",
        secret in "[ -~]{0,24}",
        public in proptest::option::of("https?://[a-z.]{1,16}(:[0-9]{1,5})?"),
    ) {
        let headers = headers_from(&pairs);
        let request = SignedRequest {
            headers: &headers,
            raw_body: &body,
            now_unix_seconds: now,
            method: "POST",
            path_and_query: &path,
            public_base: public.as_deref(),
        };
        for verification in schemes(&header, &template) {
            let verifier = Verifier::from_proto(Some(&verification));
            let outcome = verifier.verify(&request, &[secret.clone(), "second".to_owned()]);
            // Shared-token schemes accept whatever carries the token; signatures
            // made of random bytes never verify.
            let shares_token = matches!(verifier, Verifier::StaticToken(_) | Verifier::BasicAuth(_));
            if !shares_token {
                prop_assert!(outcome.is_err(), "{} accepted a random request", verifier.name());
            }
            let _ = verifier.signature_headers();
            let _ = verifier.default_event_id(&headers);
        }
    }

    #[test]
    fn parsing_bodies_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
        let raw = Bytes::from(raw);
        // Checking alone and building the value agree on what is JSON.
        prop_assert_eq!(
            normalise(BodyFormat::Json, &raw).is_ok(),
            normalise_for(BodyFormat::Json, &raw, JsonReading::Check).is_ok()
        );
        if let Ok(body) = normalise(BodyFormat::Form, &raw) {
            // A form body always becomes a JSON object that parses back.
            prop_assert!(body.value.is_object());
            let reparsed: serde_json::Value = serde_json::from_slice(&body.payload).unwrap();
            prop_assert_eq!(reparsed, body.value);
        }
    }

    #[test]
    fn form_fields_and_locations_never_panic(
        form in "([A-Za-z0-9%+.]{0,12}=[A-Za-z0-9%+ ]{0,12}&?){0,8}",
        spec in "((header|body|query)?:?[A-Za-z0-9._ -]{0,20}\\|?){0,3}",
        pairs in proptest::collection::vec((0usize..64, header_value()), 0..4),
    ) {
        let headers = headers_from(&pairs);
        if let Ok(fields) = form_to_json(form.as_bytes()) {
            let _ = read_field(&spec, &headers, &fields);
            let _ = twilio_status("account", &fields);
            let _ = twilio_inbound("account", "route", &fields, 0);
            let _ = vonage_status("account", &fields);
            let _ = vonage_inbound("account", "route", &fields, 0);
        }
        let nested = serde_json::json!({"a": [{"b": 1}], "type": "x", "0": {"eventId": 2}});
        let _ = read_field(&spec, &headers, &nested);
    }

    /// JSON callbacks (Telnyx, Infobip) of any shape are refused or read, never
    /// a panic; and no random credentials verify.
    #[test]
    fn provider_callbacks_never_panic(
        raw in proptest::collection::vec(any::<u8>(), 0..256),
        pairs in proptest::collection::vec((0usize..64, header_value()), 0..4),
        params in proptest::collection::vec(("[a-z-]{1,8}", "[ -~]{0,12}"), 0..6),
        now in any::<i64>(),
    ) {
        let shapes = [
            serde_json::from_slice::<serde_json::Value>(&raw).ok(),
            Some(serde_json::json!({"data": {"event_type": "message.finalized", "payload": {"to": [1], "errors": "x"}}})),
            Some(serde_json::json!({"results": [{"messageId": 1, "status": [], "error": {"id": "x"}}]})),
        ];
        for body in shapes.into_iter().flatten() {
            let _ = telnyx_event("account", "route", &body, 0);
            let _ = infobip_reports("account", &body);
            let _ = infobip_inbound("account", "route", &body, 0);
        }
        let headers = headers_from(&pairs);
        let request = SignedRequest::new(&headers, &raw, now);
        prop_assert!(TelnyxSignature::default()
            .verify(&request, &["11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".to_owned()])
            .is_err());
        prop_assert!(InfobipSecret.verify(&request, &["a-secret-nobody-guesses".to_owned()]).is_err());
        let params: Vec<(String, String)> = params;
        prop_assert!(VonageSignature::new(VonageMethod::HmacSha256)
            .verify(&params, now, &["secret".to_owned()])
            .is_err());
    }

    #[test]
    fn url_helpers_never_panic(url in "[ -~]{0,60}") {
        let _ = crate::signature::hubspot_decode_uri(&url);
        let headers = HeaderMap::new();
        let mut request = SignedRequest::new(&headers, b"", 0);
        request.path_and_query = &url;
        let _ = request.public_url();
        let _ = request.query();
    }

    /// Reading fields straight from JSON bytes gives what reading them from the
    /// parsed value gives, and refuses exactly what does not parse.
    #[test]
    fn fields_read_from_json_bytes_match_the_parsed_value(
        value in json_value(),
        type_spec in field_spec(),
        id_spec in field_spec(),
        garbage in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let headers = HeaderMap::new();
        let raw = serde_json::to_vec(&value).unwrap();
        // Compared with the value parsed from the same text, so floats agree.
        let parsed: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        prop_assert_eq!(
            read_event_fields(&type_spec, &id_spec, &headers, BodyFields::Json(&raw)).unwrap(),
            read_event_fields(&type_spec, &id_spec, &headers, BodyFields::Value(&parsed)).unwrap()
        );
        let parses = serde_json::from_slice::<serde_json::Value>(&garbage).is_ok();
        prop_assert_eq!(
            read_event_fields("body:type", "", &headers, BodyFields::Json(&garbage)).is_ok(),
            parses
        );
    }
}

/// JSON of a few levels whose keys often match [`field_spec`]'s paths.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |number| number.is_finite())
            .prop_map(Value::from),
        "[ -~\\u{e9}\\u{1F4F1}]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![Just("type"), Just("id"), Just("a"), Just("0"), Just("d\"q")]
                    .prop_map(str::to_owned),
                inner,
                0..5
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Body paths (and a header) over the keys [`json_value`] uses, with alternatives.
fn field_spec() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("type"),
        Just("id"),
        Just("a"),
        Just("0"),
        Just("1"),
        Just("d\"q")
    ];
    let location = prop_oneof![
        proptest::collection::vec(segment, 1..4)
            .prop_map(|path| format!("body:{}", path.join("."))),
        Just("header:x-event".to_owned()),
    ];
    proptest::collection::vec(location, 0..3).prop_map(|alternatives| alternatives.join("|"))
}
