//! Vonage SMS API callbacks: delivery receipts and inbound messages, sent as a
//! query (GET), a form or JSON (POST) depending on the account's settings, and
//! signed with the `sig` parameter (the route's `signature_secret`, with the
//! method in the route's `signature_method` setting, default `md5hash`).

use axum::body::Body;
use axum::http::Method;
use axum::response::Response;
use foco_bus::ReceiptKind;
use foco_providers::keys::{SIGNATURE_METHOD, SIGNATURE_SECRET};
use foco_providers::{ProviderKind, RouteInPath, callback_path};
use serde_json::Value;

use super::parse as callbacks;
use super::signature::{VonageMethod, VonageSignature};
use crate::body::{BodyFormat, form_to_json};
use crate::error::IngressError;
use crate::providers::Endpoint;
use crate::providers::callback::{
    CALLBACK_MAX_BODY, Callback, CallbackAccepted, Handled, ProviderRequest, Refused,
    read_callback_body, respond, store_inbound, store_status,
};
use crate::routes::hooks::{unix_millis, unix_seconds};
use crate::signature::SignatureError;
use crate::state::AppState;

const KIND: ProviderKind = ProviderKind::Vonage;

/// Vonage's callback endpoints, at the catalog's paths; the router and the
/// OpenAPI document are both built from this table.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new::<__path_vonage_status, _, _>(vonage_status),
        Endpoint::new::<__path_vonage_status_query, _, _>(vonage_status_query),
        Endpoint::new::<__path_vonage_status_default, _, _>(vonage_status_default),
        Endpoint::new::<__path_vonage_status_default_query, _, _>(vonage_status_default_query),
        Endpoint::new::<__path_vonage_inbound, _, _>(vonage_inbound),
        Endpoint::new::<__path_vonage_inbound_query, _, _>(vonage_inbound_query),
        Endpoint::new::<__path_vonage_inbound_default, _, _>(vonage_inbound_default),
        Endpoint::new::<__path_vonage_inbound_default_query, _, _>(vonage_inbound_default_query),
    ]
}

/// Vonage delivery receipt (one per part of a long message), POSTed.
#[utoipa::path(
    post,
    path = callback_path(KIND, "status", RouteInPath::Named),
    params(
        ("account_id" = String, Path, description = "The account's id"),
        ("route" = String, Path, description = "The Vonage provider route's name"),
    ),
    request_body(
        content(("application/x-www-form-urlencoded"), ("application/json")),
        description = "Vonage's delivery receipt fields (messageId, status, err-code, client-ref, ...) with sig, timestamp and nonce (signed webhooks)"
    ),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS (or an intermediate status such as buffered, which changes nothing)", body = CallbackAccepted),
        (status = 400, description = "A required field is missing or the status is unknown", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "sig is missing, wrong or stale, or the route has no signature_secret", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No Vonage route of that name in that account", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither form-encoded nor JSON", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored; retry later", body = crate::problem::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn vonage_status(request: ProviderRequest) -> Response {
    respond_vonage(request, ReceiptKind::Status).await
}

/// Vonage delivery receipt sent as query parameters (accounts set to GET).
#[utoipa::path(
    get,
    path = callback_path(KIND, "status", RouteInPath::Named),
    params(
        ("account_id" = String, Path, description = "The account's id"),
        ("route" = String, Path, description = "The Vonage provider route's name"),
    ),
    description = "The same fields as the POST, as query parameters.",
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS", body = CallbackAccepted),
        Refused,
    )
)]
pub async fn vonage_status_query(request: ProviderRequest) -> Response {
    vonage_status(request).await
}

/// Vonage delivery receipt for the account's default route, POSTed.
#[utoipa::path(
    post,
    path = callback_path(KIND, "status", RouteInPath::Default),
    params(("account_id" = String, Path, description = "The account's id")),
    request_body(
        content(("application/x-www-form-urlencoded"), ("application/json")),
        description = "Vonage's delivery receipt fields, signed"
    ),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS", body = CallbackAccepted),
        Refused,
    )
)]
pub async fn vonage_status_default(request: ProviderRequest) -> Response {
    respond_vonage(request, ReceiptKind::Status).await
}

/// Vonage delivery receipt for the account's default route, sent as query parameters.
#[utoipa::path(
    get,
    path = callback_path(KIND, "status", RouteInPath::Default),
    params(("account_id" = String, Path, description = "The account's id")),
    description = "The same fields as the POST, as query parameters.",
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS", body = CallbackAccepted),
        Refused,
    )
)]
pub async fn vonage_status_default_query(request: ProviderRequest) -> Response {
    vonage_status_default(request).await
}

/// An SMS a customer sent to a number of the named Vonage route, POSTed.
#[utoipa::path(
    post,
    path = callback_path(KIND, "inbound", RouteInPath::Named),
    params(
        ("account_id" = String, Path, description = "The account's id"),
        ("route" = String, Path, description = "The Vonage provider route's name"),
    ),
    request_body(
        content(("application/x-www-form-urlencoded"), ("application/json")),
        description = "Vonage's inbound message fields (msisdn, to, messageId, text, type, concat-*, ...) with sig, timestamp and nonce"
    ),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS", body = CallbackAccepted),
        Refused,
    )
)]
pub async fn vonage_inbound(request: ProviderRequest) -> Response {
    respond_vonage(request, ReceiptKind::Inbound).await
}

/// An inbound SMS sent as query parameters (accounts set to GET).
#[utoipa::path(
    get,
    path = callback_path(KIND, "inbound", RouteInPath::Named),
    params(
        ("account_id" = String, Path, description = "The account's id"),
        ("route" = String, Path, description = "The Vonage provider route's name"),
    ),
    description = "The same fields as the POST, as query parameters.",
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS", body = CallbackAccepted),
        Refused,
    )
)]
pub async fn vonage_inbound_query(request: ProviderRequest) -> Response {
    vonage_inbound(request).await
}

/// An inbound SMS to a number of the account's default route, POSTed.
#[utoipa::path(
    post,
    path = callback_path(KIND, "inbound", RouteInPath::Default),
    params(("account_id" = String, Path, description = "The account's id")),
    request_body(
        content(("application/x-www-form-urlencoded"), ("application/json")),
        description = "Vonage's inbound message fields, signed"
    ),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS", body = CallbackAccepted),
        Refused,
    )
)]
pub async fn vonage_inbound_default(request: ProviderRequest) -> Response {
    respond_vonage(request, ReceiptKind::Inbound).await
}

/// An inbound SMS to a number of the account's default route, sent as query parameters.
#[utoipa::path(
    get,
    path = callback_path(KIND, "inbound", RouteInPath::Default),
    params(("account_id" = String, Path, description = "The account's id")),
    description = "The same fields as the POST, as query parameters.",
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS", body = CallbackAccepted),
        Refused,
    )
)]
pub async fn vonage_inbound_default_query(request: ProviderRequest) -> Response {
    vonage_inbound_default(request).await
}

async fn respond_vonage(request: ProviderRequest, kind: ReceiptKind) -> Response {
    let handle = async |state: &AppState, callback, body| handle(state, kind, callback, body).await;
    respond(request, KIND, kind.as_str(), handle).await
}

async fn handle(
    state: &AppState,
    kind: ReceiptKind,
    callback: Callback,
    body: Body,
) -> Result<Handled, IngressError> {
    let route = &callback.route;
    let method = match route.setting(SIGNATURE_METHOD) {
        None => VonageMethod::Md5Hash,
        Some(name) => VonageMethod::parse(name).ok_or(IngressError::Signature(
            SignatureError::Misconfigured(
                "signature_method is not md5hash, md5, sha1, sha256 or sha512",
            ),
        ))?,
    };

    let parts = &callback.parts;
    let fields = if parts.method == Method::GET {
        form_to_json(parts.uri.query().unwrap_or_default().as_bytes())?
    } else {
        match read_callback_body(parts, body, None, CALLBACK_MAX_BODY).await? {
            (BodyFormat::Form, raw_body) => form_to_json(&raw_body)?,
            (BodyFormat::Json, raw_body) => {
                let value: Value =
                    serde_json::from_slice(&raw_body).map_err(IngressError::InvalidJson)?;
                if !value.is_object() {
                    return Err(IngressError::InvalidCallback(
                        "the body is not a JSON object",
                    ));
                }
                value
            }
        }
    };
    VonageSignature::new(method)
        .verify(
            &signed_params(&fields),
            unix_seconds(callback.received_at),
            std::slice::from_ref(&route.credential(SIGNATURE_SECRET)),
        )
        .map_err(IngressError::Signature)?;

    let stored = match kind {
        ReceiptKind::Status => {
            let receipt = callbacks::vonage_status(&route.account_id, &fields)?;
            store_status(state, &route.account_id, receipt).await?
        }
        ReceiptKind::Inbound => {
            let received_at_ms = unix_millis(callback.received_at);
            let inbound =
                callbacks::vonage_inbound(&route.account_id, &route.name, &fields, received_at_ms)?;
            store_inbound(state, &route.account_id, inbound).await?
        }
    };
    Ok(Handled::single(kind, stored))
}

/// The parameters Vonage signed, from the fields as received: texts as they
/// are, numbers and booleans as written, a repeated form field once per value.
fn signed_params(fields: &Value) -> Vec<(String, String)> {
    fn as_text(value: &Value) -> String {
        match value {
            Value::String(text) => text.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    let Some(object) = fields.as_object() else {
        return Vec::new();
    };
    let mut params = Vec::with_capacity(object.len());
    for (key, value) in object {
        match value {
            Value::Array(values) => {
                params.extend(values.iter().map(|item| (key.clone(), as_text(item))));
            }
            other => params.push((key.clone(), as_text(other))),
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_become_the_signed_parameters() {
        let fields = serde_json::json!({
            "messageId": "0A", "concat": true, "concat-part": 2, "tag": ["a", "b"], "none": null,
        });
        let mut params = signed_params(&fields);
        params.sort();
        let expected: Vec<(String, String)> = [
            ("concat", "true"),
            ("concat-part", "2"),
            ("messageId", "0A"),
            ("none", ""),
            ("tag", "a"),
            ("tag", "b"),
        ]
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
        assert_eq!(params, expected);
        assert!(signed_params(&serde_json::json!([1])).is_empty());
    }
}
