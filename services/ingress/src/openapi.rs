//! The OpenAPI document of every ingress endpoint, generated from the handlers'
//! annotations, served at `/openapi.json` and committed as `openapi.json` at the
//! crate root. A test fails when the two drift; regenerate the file with
//! `FOCO_UPDATE_OPENAPI=1 cargo test -p foco-ingress openapi`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use utoipa::OpenApi;

use crate::problem::Problem;
use crate::routes::hooks;
use crate::routes::providers::{self, infobip, telnyx, twilio, vonage};

pub const OPENAPI_ROUTE: &str = "/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Foco ingress",
        version = "1",
        description = "Receives webhooks (verified per source, stored durably before the answer) and SMS provider callbacks. Every error is application/problem+json with a stable `type` per kind of error."
    ),
    paths(
        hooks::receive_webhook,
        twilio::twilio_status,
        twilio::twilio_status_default,
        twilio::twilio_inbound,
        twilio::twilio_inbound_default,
        vonage::vonage_status,
        vonage::vonage_status_query,
        vonage::vonage_status_default,
        vonage::vonage_status_default_query,
        vonage::vonage_inbound,
        vonage::vonage_inbound_query,
        vonage::vonage_inbound_default,
        vonage::vonage_inbound_default_query,
        telnyx::telnyx_events,
        telnyx::telnyx_events_default,
        infobip::infobip_status,
        infobip::infobip_status_default,
        infobip::infobip_inbound,
        infobip::infobip_inbound_default,
        openapi_json,
    ),
    components(schemas(
        Problem,
        hooks::AcceptedBody,
        hooks::PingBody,
        providers::CallbackAccepted,
        providers::BatchAccepted
    )),
    tags(
        (name = "webhooks", description = "Events from the systems a business uses"),
        (name = "providers", description = "Delivery receipts and inbound SMS from SMS providers"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

/// The document as pretty JSON with a trailing newline, exactly as committed.
pub fn document_json() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(document: Bytes) -> Response {
    let mut response = document.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_openapi_document_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let generated = document_json();
        if std::env::var_os("FOCO_UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).expect("write openapi.json");
            return;
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "services/ingress/openapi.json is out of date with the handlers; run \
             `FOCO_UPDATE_OPENAPI=1 cargo test -p foco-ingress openapi` and commit it"
        );
    }

    #[test]
    fn every_route_is_documented() {
        let document: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
        let paths = document["paths"].as_object().unwrap();
        let routes = [
            crate::WEBHOOK_ROUTE,
            providers::TWILIO_STATUS_ROUTE,
            providers::TWILIO_INBOUND_ROUTE,
            providers::TWILIO_DEFAULT_STATUS_ROUTE,
            providers::TWILIO_DEFAULT_INBOUND_ROUTE,
            providers::VONAGE_STATUS_ROUTE,
            providers::VONAGE_INBOUND_ROUTE,
            providers::VONAGE_DEFAULT_STATUS_ROUTE,
            providers::VONAGE_DEFAULT_INBOUND_ROUTE,
            providers::TELNYX_EVENTS_ROUTE,
            providers::TELNYX_DEFAULT_EVENTS_ROUTE,
            providers::INFOBIP_STATUS_ROUTE,
            providers::INFOBIP_INBOUND_ROUTE,
            providers::INFOBIP_DEFAULT_STATUS_ROUTE,
            providers::INFOBIP_DEFAULT_INBOUND_ROUTE,
            OPENAPI_ROUTE,
        ];
        for route in routes {
            assert!(paths.contains_key(route), "{route} is not in the document");
        }
        assert_eq!(paths.len(), routes.len(), "a documented path is not served");
        // Vonage accounts may send callbacks as GET: both methods are documented.
        for route in [
            providers::VONAGE_STATUS_ROUTE,
            providers::VONAGE_INBOUND_ROUTE,
            providers::VONAGE_DEFAULT_STATUS_ROUTE,
            providers::VONAGE_DEFAULT_INBOUND_ROUTE,
        ] {
            assert!(paths[route].get("get").is_some(), "GET {route}");
            assert!(paths[route].get("post").is_some(), "POST {route}");
            assert!(
                paths[route]["get"].get("requestBody").is_none(),
                "GET {route} has no body"
            );
        }
        let mut operation_ids: Vec<&str> = paths
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|operation| operation["operationId"].as_str().unwrap())
            .collect();
        let count = operation_ids.len();
        operation_ids.sort_unstable();
        operation_ids.dedup();
        assert_eq!(operation_ids.len(), count, "operation ids are unique");
    }
}
