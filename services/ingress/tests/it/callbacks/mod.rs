//! Provider callbacks over real NATS and Postgres: each provider's receipts and
//! inbound messages are verified with its own scheme and the route's
//! credentials, stored on FOCO_RECEIPTS as the sender's messages, deduplicated,
//! and refused (storing nothing) when anything is off. Twilio here; the others
//! in their modules.

mod infobip;
mod telnyx;
mod vonage;

use std::time::{SystemTime, UNIX_EPOCH};

use foco_bus::ReceiptKind;
use foco_ingress::signature::signing;
use foco_proto::v1::{DeliveryReceipt, InboundSms, ReceiptStatus, UpsertProviderRouteRequest};
use prost::Message as _;
use serde_json::Value;

use crate::harness::{ACCOUNT, Harness, ProblemAnswer, assert_problem, problem};
use crate::presets::{PUBLIC_URL, start, twilio_form};

const AUTH_TOKEN: &str = "twilio-auth-token-123";

/// Creates (or replaces) a provider route of the test account; returns the
/// account's id, which callback URLs name.
pub(crate) async fn provider_route(
    harness: &mut Harness,
    name: &str,
    kind: &str,
    settings: &[(&str, &str)],
    credentials: &[(&str, &str)],
    is_default: bool,
) -> String {
    account_provider_route(
        harness,
        ACCOUNT,
        name,
        kind,
        settings,
        credentials,
        is_default,
    )
    .await
}

/// Creates (or replaces) a provider route of `account`; returns the account's id.
async fn account_provider_route(
    harness: &mut Harness,
    account: &str,
    name: &str,
    kind: &str,
    settings: &[(&str, &str)],
    credentials: &[(&str, &str)],
    is_default: bool,
) -> String {
    let owned = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    };
    harness
        .api
        .upsert_provider_route(UpsertProviderRouteRequest {
            account: account.to_owned(),
            name: name.to_owned(),
            kind: kind.to_owned(),
            settings: owned(settings),
            credentials: owned(credentials),
            is_default,
        })
        .await
        .unwrap_or_else(|status| panic!("create {kind} route: {status}"))
        .into_inner()
        .account_id
}

async fn twilio_route(harness: &mut Harness, name: &str) -> String {
    account_twilio_route(harness, ACCOUNT, name).await
}

async fn account_twilio_route(harness: &mut Harness, account: &str, name: &str) -> String {
    account_provider_route(
        harness,
        account,
        name,
        "twilio",
        &[("from", "+15005550006")],
        &[
            ("account_sid", "AC00000000000000000000000000000000"),
            ("auth_token", AUTH_TOKEN),
        ],
        true,
    )
    .await
}

pub(crate) fn unix_now() -> i64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(elapsed.as_secs()).unwrap()
}

/// A message on this test's receipts stream.
pub(crate) struct StoredReceipt {
    pub subject: String,
    pub msg_id: String,
    pub payload: bytes::Bytes,
}

impl StoredReceipt {
    pub fn receipt(&self) -> DeliveryReceipt {
        DeliveryReceipt::decode(self.payload.clone()).expect("a DeliveryReceipt")
    }

    pub fn inbound(&self) -> InboundSms {
        InboundSms::decode(self.payload.clone()).expect("an InboundSms")
    }

    /// Checks it went to the account's subject for `kind`, under `msg_id`.
    pub fn assert_stored_as(
        &self,
        harness: &Harness,
        account_id: &str,
        kind: ReceiptKind,
        msg_id: &str,
    ) {
        let subject = harness.names.receipts_subject(account_id, kind);
        assert_eq!(self.subject, subject);
        assert_eq!(self.msg_id, msg_id);
    }
}

/// Every message on this test's receipts stream, in order.
pub(crate) async fn stored_receipts(harness: &Harness) -> Vec<StoredReceipt> {
    let stream = harness
        .jetstream
        .get_stream(harness.names.receipts_stream())
        .await
        .expect("receipts stream");
    let count = stream.get_info().await.unwrap().state.messages;
    let mut messages = Vec::new();
    for sequence in 1..=count {
        let message = stream.get_raw_message(sequence).await.unwrap();
        messages.push(StoredReceipt {
            subject: message.subject.to_string(),
            msg_id: message
                .headers
                .get(foco_bus::MSG_ID_HEADER)
                .map(|value| value.as_str().to_owned())
                .unwrap_or_default(),
            payload: message.payload,
        });
    }
    messages
}

/// The URL of a callback path on the ingress under test.
pub(crate) fn callback_url(harness: &Harness, path: &str) -> String {
    format!("http://{}{path}", harness.ingress_addr)
}

pub(crate) const FORM: &str = "application/x-www-form-urlencoded";
pub(crate) const JSON: &str = "application/json";

/// Posts `body` as `content_type`, with `headers`, to a callback path.
pub(crate) async fn post_callback(
    harness: &Harness,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, String)],
) -> reqwest::Response {
    let mut request = harness
        .http
        .post(callback_url(harness, path))
        .header("content-type", content_type)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

/// The JSON answer to a callback the ingress accepted (200).
pub(crate) async fn accepted(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Checks a callback was refused with `status` and the problem type `slug`.
pub(crate) async fn assert_refused(
    response: reqwest::Response,
    status: u16,
    slug: &str,
) -> ProblemAnswer {
    let answer = problem(response).await;
    assert_problem(&answer, status, slug);
    answer
}

/// Posts a form signed with `token` for the URL Twilio would have called.
async fn post_signed(harness: &Harness, path: &str, form: &str, token: &str) -> reqwest::Response {
    let params: Vec<(String, String)> = serde_urlencoded::from_str(form).unwrap();
    let signature = signing::twilio(token, &format!("{PUBLIC_URL}{path}"), &params);
    post_form(harness, path, form, signature).await
}

async fn post_form(
    harness: &Harness,
    path: &str,
    form: &str,
    signature: String,
) -> reqwest::Response {
    let headers = [("X-Twilio-Signature", signature)];
    post_callback(harness, path, FORM, form.to_owned(), &headers).await
}

#[tokio::test]
async fn a_delivery_receipt_is_stored_once_for_the_sender() {
    let mut harness = start().await;
    let account_id = twilio_route(&mut harness, "primary").await;
    let path = format!("/v1/providers/twilio/{account_id}/primary/status");
    let form = twilio_form("twilio__message_status_delivered.json");

    let answer = accepted(post_signed(&harness, &path, &form, AUTH_TOKEN).await).await;
    assert_eq!(
        answer,
        serde_json::json!({"published": true, "duplicate": false})
    );
    // Twilio retries a callback that timed out: stored once, reported as such.
    let retry = accepted(post_signed(&harness, &path, &form, AUTH_TOKEN).await).await;
    assert_eq!(retry["duplicate"], true);

    let stored = stored_receipts(&harness).await;
    assert_eq!(stored.len(), 1);
    let msg_id = &foco_bus::receipt_msg_id(
        &account_id,
        "twilio",
        "SM1f0e8ae6ade43cb3c0ce4525424e404f",
        0,
        "delivered",
    );
    stored[0].assert_stored_as(&harness, &account_id, ReceiptKind::Status, msg_id);
    let receipt = stored[0].receipt();
    assert_eq!(receipt.account_id, account_id);
    assert_eq!(receipt.provider, "twilio");
    assert_eq!(
        receipt.provider_message_id,
        "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    );
    assert_eq!(receipt.status, ReceiptStatus::Delivered as i32);

    // An intermediate status is acknowledged and changes nothing.
    let queued = form.replace("delivered", "queued");
    let answer = accepted(post_signed(&harness, &path, &queued, AUTH_TOKEN).await).await;
    assert_eq!(answer["published"], false);
    assert_eq!(stored_receipts(&harness).await.len(), 1);
}

/// Providers number messages per provider account, not per Foco account: two
/// accounts may be told about the same message id, and each keeps its receipt.
#[tokio::test]
async fn receipts_of_two_accounts_for_the_same_provider_message_id_are_both_stored() {
    let mut harness = start().await;
    let first_account = twilio_route(&mut harness, "primary").await;
    harness.create_account("otra-tienda").await;
    let second_account = account_twilio_route(&mut harness, "otra-tienda", "primary").await;
    assert_ne!(first_account, second_account);

    let status = twilio_form("twilio__message_status_delivered.json");
    let inbound = twilio_form("twilio__inbound_sms.json");
    for account_id in [&first_account, &second_account] {
        let path = format!("/v1/providers/twilio/{account_id}/primary/status");
        let answer = accepted(post_signed(&harness, &path, &status, AUTH_TOKEN).await).await;
        assert_eq!(
            answer,
            serde_json::json!({"published": true, "duplicate": false}),
            "{account_id}"
        );
        let path = format!("/v1/providers/twilio/{account_id}/primary/inbound");
        let response = post_signed(&harness, &path, &inbound, AUTH_TOKEN).await;
        assert_eq!(response.status(), 200);
    }

    let stored = stored_receipts(&harness).await;
    assert_eq!(stored.len(), 4, "each account's receipt and inbound SMS");
    let sid = "SM1f0e8ae6ade43cb3c0ce4525424e404f";
    let inbound_sid = "SMcea2a3bd6f50296f8fab60f377db03eb";
    for (index, account_id) in [&first_account, &second_account].into_iter().enumerate() {
        let msg_id = foco_bus::receipt_msg_id(account_id, "twilio", sid, 0, "delivered");
        let receipt = &stored[2 * index];
        receipt.assert_stored_as(&harness, account_id, ReceiptKind::Status, &msg_id);
        assert_eq!(&receipt.receipt().account_id, account_id);
        let msg_id = foco_bus::inbound_msg_id(account_id, "twilio", inbound_sid);
        let message = &stored[2 * index + 1];
        message.assert_stored_as(&harness, account_id, ReceiptKind::Inbound, &msg_id);
        assert_eq!(&message.inbound().account_id, account_id);
    }
}

#[tokio::test]
async fn an_inbound_stop_reaches_the_receipts_stream_through_the_default_route() {
    let mut harness = start().await;
    let account_id = twilio_route(&mut harness, "primary").await;
    let form = twilio_form("twilio__inbound_sms.json").replace("Body=Ahoy%21", "Body=BAJA");
    // The default route's URL names only the account.
    let path = format!("/v1/providers/twilio/{account_id}/inbound");
    let response = post_signed(&harness, &path, &form, AUTH_TOKEN).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml")
    );
    assert!(response.text().await.unwrap().contains("<Response>"));

    let stored = stored_receipts(&harness).await;
    assert_eq!(stored.len(), 1);
    let msg_id =
        &foco_bus::inbound_msg_id(&account_id, "twilio", "SMcea2a3bd6f50296f8fab60f377db03eb");
    stored[0].assert_stored_as(&harness, &account_id, ReceiptKind::Inbound, msg_id);
    let inbound = stored[0].inbound();
    assert_eq!(inbound.body, "BAJA");
    assert_eq!(inbound.from, "+10123456789");
    assert_eq!(inbound.route, "primary");
    assert_eq!(
        inbound.provider_message_id,
        "SMcea2a3bd6f50296f8fab60f377db03eb"
    );
    assert!(inbound.received_at_ms > 0);
}

#[tokio::test]
async fn unverifiable_callbacks_are_refused_and_store_nothing() {
    let mut harness = start().await;
    let account_id = twilio_route(&mut harness, "primary").await;
    let form = twilio_form("twilio__message_status_delivered.json");
    let status_path = format!("/v1/providers/twilio/{account_id}/primary/status");

    let wrong_token = post_signed(&harness, &status_path, &form, "not-the-token").await;
    assert_refused(wrong_token, 401, "unauthenticated").await;

    // Signed for another URL (say, another account's): refused.
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&form).unwrap();
    let elsewhere = signing::twilio(AUTH_TOKEN, &format!("{PUBLIC_URL}/elsewhere"), &params);
    let response = post_form(&harness, &status_path, &form, elsewhere).await;
    assert_refused(response, 401, "unauthenticated").await;

    let unknown_route = format!("/v1/providers/twilio/{account_id}/backup/status");
    let response = post_signed(&harness, &unknown_route, &form, AUTH_TOKEN).await;
    assert_refused(response, 404, "not-found").await;
    let not_an_account = "/v1/providers/twilio/not-a-uuid/primary/status";
    let response = post_signed(&harness, not_an_account, &form, AUTH_TOKEN).await;
    assert_refused(response, 404, "not-found").await;

    let response = post_callback(&harness, &status_path, JSON, "{}", &[]).await;
    assert_refused(response, 415, "unsupported-media-type").await;

    let no_sid = "MessageStatus=delivered";
    let response = post_signed(&harness, &status_path, no_sid, AUTH_TOKEN).await;
    assert_refused(response, 400, "invalid-argument").await;

    assert!(stored_receipts(&harness).await.is_empty());
}
