use std::time::Duration;

use foco_harness::{ACCOUNT, TestSystem};
use foco_proto::v1::{
    CreateApiKeyRequest, HmacSha256, SignatureEncoding, Source, UpsertRuleRequest,
    UpsertSourceRequest, Verification, verification,
};

pub const TYPEFORM_RESPONSE: &[u8] = include_bytes!("../fixtures/typeform__form_response.json");
pub const SHOPIFY_ORDER: &[u8] = include_bytes!("../fixtures/shopify__orders_create.json");
pub const SHOPIFY_SECRET: &str = "shpss_test_secret";
pub const TYPEFORM_SECRET: &str = "typeform_test_secret";
pub const WAIT: Duration = Duration::from_secs(20);

fn hmac_source(
    name: &str,
    header: &str,
    prefix: &str,
    secret: &str,
    event_type_from: &str,
    event_id_from: &str,
) -> UpsertSourceRequest {
    UpsertSourceRequest {
        account: ACCOUNT.to_owned(),
        name: name.to_owned(),
        verification: Some(Verification {
            scheme: Some(verification::Scheme::HmacSha256(HmacSha256 {
                header: header.to_owned(),
                encoding: SignatureEncoding::Base64 as i32,
                prefix: prefix.to_owned(),
            })),
        }),
        secret: secret.to_owned(),
        event_type_from: event_type_from.to_owned(),
        event_id_from: event_id_from.to_owned(),
        enabled: None,
        max_body_bytes: 0,
        ..Default::default()
    }
}

/// A key of the test account, for the messaging API.
pub async fn account_key(system: &TestSystem) -> String {
    system
        .admin()
        .create_api_key(CreateApiKeyRequest {
            account: ACCOUNT.to_owned(),
            description: "internal service".to_owned(),
            ..Default::default()
        })
        .await
        .expect("create api key")
        .into_inner()
        .key
}

/// Scenario 4: a Shopify store whose sales of 100 or more alert the owner.
pub async fn configure_shop(system: &TestSystem) -> Source {
    let mut admin = system.admin();
    let source = admin
        .upsert_source(UpsertSourceRequest {
            account: ACCOUNT.to_owned(),
            name: "shop".to_owned(),
            preset: "shopify".to_owned(),
            secret: SHOPIFY_SECRET.to_owned(),
            ..Default::default()
        })
        .await
        .expect("create shop source")
        .into_inner();
    admin
        .upsert_rule(UpsertRuleRequest {
            account: ACCOUNT.to_owned(),
            source: "shop".to_owned(),
            name: "owner-alert".to_owned(),
            when: r#"event_type == "orders/create" && double(event.total_price) >= 100.0"#.to_owned(),
            to: vec!["+52 55 1234 5678".to_owned()],
            body: "{{ event.customer.first_name }} {{ event.customer.last_name }} acaba de comprar ${{ event.total_price }} {{ event.currency }}".to_owned(),
            ..Default::default()
        })
        .await
        .expect("create owner-alert rule");
    source
}

/// Scenario 1: a Typeform sign-up form whose responses get a discount code.
pub async fn configure_signup(system: &TestSystem) -> Source {
    let mut admin = system.admin();
    let source = admin
        .upsert_source(hmac_source(
            "signup-form",
            "Typeform-Signature",
            "sha256=",
            TYPEFORM_SECRET,
            "body:event_type",
            "body:event_id",
        ))
        .await
        .expect("create signup source")
        .into_inner();
    admin
        .upsert_rule(UpsertRuleRequest {
            account: ACCOUNT.to_owned(),
            source: "signup-form".to_owned(),
            name: "welcome-code".to_owned(),
            when: r#"event_type == "form_response""#.to_owned(),
            to: vec![r#"{{ (event.form_response.answers | selectattr("type", "eq", "phone_number") | first).phone_number }}"#.to_owned()],
            body: r#"Hola {{ (event.form_response.answers | selectattr("type", "eq", "text") | first).text }}, tu código de descuento es BIENVENIDA10"#.to_owned(),
            ..Default::default()
        })
        .await
        .expect("create welcome rule");
    source
}

/// A plain HTTP client for talking to ingress on loopback. reqwest is built without
/// a default TLS provider (the services pick ring explicitly), so install it here.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub struct Posted {
    pub status: u16,
    pub json: serde_json::Value,
}

/// Posts the order fixture as the order `event_id`. Distinct orders have distinct
/// bodies (the token differs): Shopify signs the body alone, so the body, not the
/// id header, tells one order from another.
pub async fn post_shopify_order(system: &TestSystem, source: &Source, event_id: &str) -> Posted {
    post_shopify(
        system,
        source,
        "orders/create",
        event_id,
        shopify_order(|order| order["token"] = event_id.into()),
    )
    .await
}

/// The order fixture as `edit` changes it.
pub fn shopify_order(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut order: serde_json::Value =
        serde_json::from_slice(SHOPIFY_ORDER).expect("fixture is JSON");
    edit(&mut order);
    serde_json::to_vec(&order).expect("serialise")
}

/// Posts `body` as Shopify would, signed, with its topic and event id headers.
pub async fn post_shopify(
    system: &TestSystem,
    source: &Source,
    topic: &str,
    event_id: &str,
    body: Vec<u8>,
) -> Posted {
    let signature = foco_e2e::hmac_sha256_base64(SHOPIFY_SECRET, &body);
    let request = http()
        .post(format!("{}/v1/hooks/{}", system.ingress_url, source.token))
        .header("content-type", "application/json")
        .header("x-shopify-topic", topic)
        .header("x-shopify-event-id", event_id)
        .header("x-shopify-hmac-sha256", signature)
        .body(body);
    send(request).await
}

pub async fn post_typeform_response(system: &TestSystem, source: &Source) -> Posted {
    post_typeform(system, source, TYPEFORM_RESPONSE.to_vec()).await
}

/// Posts `body` as Typeform would, signed.
pub async fn post_typeform(system: &TestSystem, source: &Source, body: Vec<u8>) -> Posted {
    let signature = format!(
        "sha256={}",
        foco_e2e::hmac_sha256_base64(TYPEFORM_SECRET, &body)
    );
    let request = http()
        .post(format!("{}/v1/hooks/{}", system.ingress_url, source.token))
        .header("content-type", "application/json")
        .header("typeform-signature", signature)
        .body(body);
    send(request).await
}

async fn send(request: reqwest::RequestBuilder) -> Posted {
    let response = request.send().await.expect("post to ingress");
    let status = response.status().as_u16();
    let json = response.json().await.unwrap_or(serde_json::Value::Null);
    Posted { status, json }
}

/// The Typeform fixture as another respondent: new event id, name, email and phone.
pub fn typeform_response_from(event_id: &str, name: &str, email: &str, phone: &str) -> Vec<u8> {
    let mut response: serde_json::Value =
        serde_json::from_slice(TYPEFORM_RESPONSE).expect("fixture is JSON");
    response["event_id"] = event_id.into();
    for answer in response["form_response"]["answers"]
        .as_array_mut()
        .expect("answers")
    {
        match answer["type"].as_str() {
            Some("text") => answer["text"] = name.into(),
            Some("email") => answer["email"] = email.into(),
            Some("phone_number") => answer["phone_number"] = phone.into(),
            _ => {}
        }
    }
    serde_json::to_vec(&response).expect("serialise")
}

/// The Shopify order fixture placed by `email` for the checkout `checkout_token`.
pub fn shopify_order_for(email: &str, checkout_token: &str) -> Vec<u8> {
    shopify_order(|order| {
        order["email"] = email.into();
        order["checkout_token"] = checkout_token.into();
    })
}
