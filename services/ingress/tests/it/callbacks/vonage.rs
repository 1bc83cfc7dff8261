//! Vonage SMS API callbacks: signed with the route's `signature_secret` (the
//! method in `signature_method`), accepted as form or JSON POSTs and as GETs.

use foco_bus::ReceiptKind;
use foco_ingress::signature::{VonageMethod, signing};
use foco_proto::v1::ReceiptStatus;
use serde_json::Value;

use super::{
    FORM, JSON, accepted, assert_refused, callback_url, post_callback, provider_route,
    stored_receipts, unix_now,
};
use crate::harness::{Harness, fixture};
use crate::presets::start;

const SIGNATURE_SECRET: &str = "vonage-signature-secret-0123456789";

async fn vonage_route(harness: &mut Harness, name: &str, method: Option<&str>) -> String {
    let mut settings = vec![("from", "AcmeInc")];
    if let Some(method) = method {
        settings.push(("signature_method", method));
    }
    provider_route(
        harness,
        name,
        "vonage",
        &settings,
        &[
            ("api_key", "abcd1234"),
            ("api_secret", "api-secret"),
            ("signature_secret", SIGNATURE_SECRET),
        ],
        true,
    )
    .await
}

/// A fixture's fields with `changes` applied, a fresh `timestamp`, signed.
fn signed(
    name: &str,
    changes: &[(&str, &str)],
    secret: &str,
    method: VonageMethod,
    timestamp: i64,
) -> Vec<(String, String)> {
    let shown: serde_json::Map<String, Value> = serde_json::from_slice(&fixture(name)).unwrap();
    let mut params: Vec<(String, String)> = shown
        .into_iter()
        .map(|(key, value)| (key, value.as_str().unwrap_or_default().to_owned()))
        .collect();
    for (key, value) in changes {
        params.retain(|(existing, _)| existing != key);
        params.push(((*key).to_owned(), (*value).to_owned()));
    }
    params.retain(|(key, _)| key != "timestamp");
    params.push(("timestamp".to_owned(), timestamp.to_string()));
    let sig = signing::vonage(secret, method, &params);
    params.push(("sig".to_owned(), sig));
    params
}

async fn post_form(
    harness: &Harness,
    path: &str,
    params: &[(String, String)],
) -> reqwest::Response {
    let form = serde_urlencoded::to_string(params).unwrap();
    post_callback(harness, path, FORM, form, &[]).await
}

async fn post_json(
    harness: &Harness,
    path: &str,
    params: &[(String, String)],
) -> reqwest::Response {
    let object: serde_json::Map<String, Value> = params
        .iter()
        .map(|(key, value)| (key.clone(), Value::from(value.as_str())))
        .collect();
    let body = serde_json::to_vec(&object).unwrap();
    post_callback(harness, path, JSON, body, &[]).await
}

async fn get_query(
    harness: &Harness,
    path: &str,
    params: &[(String, String)],
) -> reqwest::Response {
    let query = serde_urlencoded::to_string(params).unwrap();
    harness
        .http
        .get(format!("{}?{query}", callback_url(harness, path)))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_signed_vonage_receipt_is_stored_once_whether_posted_or_fetched() {
    let mut harness = start().await;
    let account_id = vonage_route(&mut harness, "eu", Some("sha256")).await;
    let path = format!("/v1/providers/vonage/{account_id}/eu/status");
    let sign = |changes: &[(&str, &str)]| {
        let receipt = "vonage__delivery_receipt.json";
        signed(
            receipt,
            changes,
            SIGNATURE_SECRET,
            VonageMethod::HmacSha256,
            unix_now(),
        )
    };
    let params = sign(&[]);

    let answer = accepted(post_form(&harness, &path, &params).await).await;
    assert_eq!(
        answer,
        serde_json::json!({"published": true, "duplicate": false})
    );
    // The same receipt again, as JSON and as a GET (Vonage retrying, or an
    // account switched to another format): stored once.
    let as_json = accepted(post_json(&harness, &path, &params).await).await;
    assert_eq!(as_json["duplicate"], true);
    let as_get = accepted(get_query(&harness, &path, &params).await).await;
    assert_eq!(as_get["duplicate"], true);

    let stored = stored_receipts(&harness).await;
    assert_eq!(stored.len(), 1);
    let msg_id =
        &foco_bus::receipt_msg_id(&account_id, "vonage", "0A0000001234567B", 0, "delivered");
    stored[0].assert_stored_as(&harness, &account_id, ReceiptKind::Status, msg_id);
    let receipt = stored[0].receipt();
    assert_eq!(receipt.account_id, account_id);
    assert_eq!(receipt.provider, "vonage");
    assert_eq!(receipt.provider_message_id, "0A0000001234567B");
    assert_eq!(receipt.job_id, "job_632ab8f835a57e3cc741a1fdee125517");
    assert_eq!(receipt.status, ReceiptStatus::Delivered as i32);

    // The receipt of the second part of the same message has its own id.
    let second_part = sign(&[
        ("messageId", "0A0000001234567C"),
        ("status", "failed"),
        ("err-code", "2"),
    ]);
    let answer = accepted(post_json(&harness, &path, &second_part).await).await;
    assert_eq!(answer["published"], true);
    let stored = stored_receipts(&harness).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[1].msg_id,
        foco_bus::receipt_msg_id(&account_id, "vonage", "0A0000001234567C", 0, "failed")
    );
    let part = stored[1].receipt();
    assert_eq!(part.status, ReceiptStatus::Undelivered as i32);
    assert_eq!(part.error_code, "2");

    // `buffered` is acknowledged and changes nothing.
    let buffered = sign(&[("status", "buffered")]);
    let answer = accepted(post_form(&harness, &path, &buffered).await).await;
    assert_eq!(
        answer,
        serde_json::json!({"published": false, "duplicate": false})
    );
    assert_eq!(stored_receipts(&harness).await.len(), 2);
}

#[tokio::test]
async fn a_vonage_inbound_stop_reaches_the_receipts_stream_through_the_default_route() {
    let mut harness = start().await;
    // No signature_method: Vonage's default, md5hash.
    let account_id = vonage_route(&mut harness, "primary", None).await;
    let path = format!("/v1/providers/vonage/{account_id}/inbound");
    let params = signed(
        "vonage__inbound_sms.json",
        &[("text", "STOP"), ("keyword", "STOP")],
        SIGNATURE_SECRET,
        VonageMethod::Md5Hash,
        unix_now(),
    );
    let answer = accepted(get_query(&harness, &path, &params).await).await;
    assert_eq!(answer["published"], true);

    let stored = stored_receipts(&harness).await;
    assert_eq!(stored.len(), 1);
    let msg_id = &foco_bus::inbound_msg_id(&account_id, "vonage", "0A0000000123ABCD1");
    stored[0].assert_stored_as(&harness, &account_id, ReceiptKind::Inbound, msg_id);
    let inbound = stored[0].inbound();
    assert_eq!(inbound.body, "STOP");
    assert_eq!(inbound.from, "+447700900001");
    assert_eq!(inbound.to, "447700900000");
    assert_eq!(inbound.route, "primary");
    assert_eq!(inbound.provider, "vonage");
    assert!(inbound.received_at_ms > 0);
}

#[tokio::test]
async fn unverifiable_vonage_callbacks_are_refused_and_store_nothing() {
    let mut harness = start().await;
    let account_id = vonage_route(&mut harness, "eu", Some("sha512")).await;
    let path = format!("/v1/providers/vonage/{account_id}/eu/status");
    let now = unix_now();
    let sign = |changes: &[(&str, &str)], secret: &str, method, timestamp| {
        let receipt = "vonage__delivery_receipt.json";
        signed(receipt, changes, secret, method, timestamp)
    };
    let valid = sign(&[], SIGNATURE_SECRET, VonageMethod::HmacSha512, now);

    let wrong_key = sign(&[], "not-the-secret", VonageMethod::HmacSha512, now);
    let response = post_form(&harness, &path, &wrong_key).await;
    assert_refused(response, 401, "unauthenticated").await;
    // Signed with the right secret but another method than the route's.
    let wrong_method = sign(&[], SIGNATURE_SECRET, VonageMethod::Md5Hash, now);
    let response = post_form(&harness, &path, &wrong_method).await;
    assert_refused(response, 401, "unauthenticated").await;
    let stale = sign(&[], SIGNATURE_SECRET, VonageMethod::HmacSha512, now - 600);
    let response = post_form(&harness, &path, &stale).await;
    let answer = assert_refused(response, 401, "unauthenticated").await;
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("tolerance")
    );
    let mut tampered = valid.clone();
    for (key, value) in &mut tampered {
        if key == "client-ref" {
            *value = "job_someone_elses".to_owned();
        }
    }
    let response = post_json(&harness, &path, &tampered).await;
    assert_refused(response, 401, "unauthenticated").await;
    let mut unsigned = valid.clone();
    unsigned.retain(|(key, _)| key != "sig");
    let response = get_query(&harness, &path, &unsigned).await;
    assert_refused(response, 401, "unauthenticated").await;

    // Signed, but a status Vonage does not document.
    let unknown_status = sign(
        &[("status", "lost")],
        SIGNATURE_SECRET,
        VonageMethod::HmacSha512,
        now,
    );
    let response = post_form(&harness, &path, &unknown_status).await;
    assert_refused(response, 400, "invalid-argument").await;
    let unknown_route = format!("/v1/providers/vonage/{account_id}/backup/status");
    let response = post_form(&harness, &unknown_route, &valid).await;
    assert_refused(response, 404, "not-found").await;
    let response = harness
        .http
        .put(callback_url(&harness, &path))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST");

    // A route of another kind under the Vonage URL: not a Vonage route.
    provider_route(
        &mut harness,
        "sms-twilio",
        "twilio",
        &[],
        &[("account_sid", "AC0"), ("auth_token", "t")],
        false,
    )
    .await;
    let other_kind = format!("/v1/providers/vonage/{account_id}/sms-twilio/status");
    let response = post_form(&harness, &other_kind, &valid).await;
    assert_refused(response, 404, "not-found").await;

    // A Vonage route without a signature secret accepts nothing.
    provider_route(
        &mut harness,
        "unsigned",
        "vonage",
        &[("from", "AcmeInc")],
        &[("api_key", "abcd1234"), ("api_secret", "api-secret")],
        false,
    )
    .await;
    let unsigned_route = format!("/v1/providers/vonage/{account_id}/unsigned/status");
    let response = post_form(&harness, &unsigned_route, &valid).await;
    let answer = assert_refused(response, 401, "unauthenticated").await;
    assert!(!answer.body["detail"].as_str().unwrap().contains("secret"));

    assert!(stored_receipts(&harness).await.is_empty());
}
