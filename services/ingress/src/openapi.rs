//! The OpenAPI document of every ingress endpoint, generated from the handlers'
//! annotations (the provider callbacks' from the same table the router is built
//! from, `crate::providers::endpoints`), served at `/openapi.json` and
//! committed as `openapi.json` at the crate root. A test fails when the two drift; regenerate the file with
//! `FOCO_UPDATE_OPENAPI=1 cargo test -p foco-ingress openapi`.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use utoipa::OpenApi;

use crate::problem::Problem;
use crate::providers::callback::{BatchAccepted, CallbackAccepted};
use crate::routes::hooks;

pub const OPENAPI_ROUTE: &str = "/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Foco ingress",
        version = "1",
        description = "Receives webhooks (verified per source, stored durably before the answer) and SMS provider callbacks. Every error is application/problem+json with a stable `type` per kind of error."
    ),
    paths(hooks::receive_webhook, openapi_json),
    components(schemas(
        Problem,
        hooks::AcceptedBody,
        hooks::PingBody,
        CallbackAccepted,
        BatchAccepted
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
    let mut document = ApiDoc::openapi();
    crate::providers::document(&mut document.paths);
    let mut json = document
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
        let served: Vec<(String, Vec<&str>)> = foco_providers::ProviderKind::ALL
            .iter()
            .flat_map(|kind| kind.callback_paths())
            .map(|(path, methods)| (path, methods.iter().map(|method| method.as_str()).collect()))
            .chain([
                (crate::WEBHOOK_ROUTE.to_owned(), vec!["POST"]),
                (OPENAPI_ROUTE.to_owned(), vec!["GET"]),
            ])
            .collect();
        for (route, methods) in &served {
            assert!(paths.contains_key(route), "{route} is not in the document");
            for method in methods {
                let operation = &paths[route][method.to_ascii_lowercase()];
                assert!(operation.is_object(), "{method} {route}");
                if *method == "GET" {
                    assert!(
                        operation.get("requestBody").is_none(),
                        "GET {route} has no body"
                    );
                }
            }
        }
        assert_eq!(paths.len(), served.len(), "a documented path is not served");
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
