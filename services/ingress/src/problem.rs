//! RFC 9457 problem details (`application/problem+json`), the shape of every error
//! ingress answers. The `type` comes from `foco_runtime::ErrorKind`, so it is the
//! same stable URI for the same kind of error in every Foco service.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use foco_runtime::ErrorKind;
use serde::Serialize;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem: every error ingress answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable per kind of error: `https://foco.dev/problems/<kind>`, e.g.
    /// `.../unauthenticated`, `.../rate-limited`, `.../unavailable`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong, safe to show (never internal causes).
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Sent as the `Retry-After` header (seconds), not in the body.
    #[serde(skip)]
    pub retry_after_seconds: Option<u64>,
}

impl Problem {
    pub fn new(kind: ErrorKind, title: &str, detail: impl Into<String>) -> Self {
        Self {
            problem_type: kind.problem_type(),
            title: title.to_owned(),
            status: kind.http_status().as_u16(),
            detail: detail.into(),
            instance: None,
            retry_after_seconds: None,
        }
    }

    /// A problem with no meaning beyond its HTTP status (RFC 9457 §4.2.1), for
    /// statuses that are not an error kind of their own, such as 405.
    pub fn about_blank(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            problem_type: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
            retry_after_seconds: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Gives a problem body to error responses produced outside the handlers (router
/// 404/405 rejections, the request timeout), which come without one, so that every
/// error a client sees has the same shape.
pub async fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let problem = match status {
        StatusCode::NOT_FOUND => Problem::new(ErrorKind::NotFound, "Not found", "no such endpoint"),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => Problem::new(
            ErrorKind::Unavailable,
            "Request timed out",
            "the request did not complete in time; retry later",
        )
        .with_retry_after(crate::error::RETRY_AFTER_SECONDS),
        other => Problem::about_blank(other, "the request could not be handled"),
    };
    let mut rendered = problem.into_response();
    *rendered.status_mut() = status;
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn problems_render_with_type_status_and_retry_after() {
        let response = Problem::new(ErrorKind::Unavailable, "Unavailable", "try later")
            .with_retry_after(5)
            .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            PROBLEM_CONTENT_TYPE
        );
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["type"], "https://foco.dev/problems/unavailable");
        assert_eq!(value["status"], 503);
        assert_eq!(value["title"], "Unavailable");
        assert_eq!(value["detail"], "try later");
        assert!(value.get("instance").is_none());
    }

    #[tokio::test]
    async fn bare_error_responses_get_a_problem_body() {
        let bare = StatusCode::METHOD_NOT_ALLOWED.into_response();
        let response = problem_for_bare_errors(bare).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            PROBLEM_CONTENT_TYPE
        );
        let ok = problem_for_bare_errors(StatusCode::ACCEPTED.into_response()).await;
        assert!(!ok.headers().contains_key(header::CONTENT_TYPE));
    }
}
