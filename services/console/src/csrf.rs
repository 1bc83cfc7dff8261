//! One check for every state-changing request: a `POST` (or any method but
//! GET/HEAD) must carry the CSRF token sealed in the caller's session (or in
//! the sign-in cookie before there is one), as the form field `csrf` or the
//! `X-CSRF-Token` header (the preview script). Handlers never see a request
//! that failed it, so no form can forget it. SameSite=Strict cookies are the
//! second line: a cross-site form post carries no session at all.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use foco_runtime::ErrorKind;
use subtle::ConstantTimeEq as _;

use crate::error::ErrorPage;
use crate::session;
use crate::state::AppState;

/// Forms are small; the rule editor's sample payload is the largest part.
pub const MAX_FORM_BYTES: usize = 512 * 1024;

pub const CSRF_FIELD: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let jar = session::jar(request.headers(), &state.session_key());
    let Some(expected) = session::expected_csrf_token(&jar) else {
        return refused();
    };
    let from_header = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
    };
    let presented = from_header.or_else(|| {
        url::form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == CSRF_FIELD)
            .map(|(_, value)| value.into_owned())
    });
    let matches =
        presented.is_some_and(|token| bool::from(token.as_bytes().ct_eq(expected.as_bytes())));
    if !matches {
        return refused();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refused() -> Response {
    let mut response = (StatusCode::FORBIDDEN, "csrf").into_response();
    response.extensions_mut().insert(ErrorPage {
        kind: ErrorKind::PermissionDenied,
        message: None,
    });
    response.extensions_mut().insert(CsrfRefused);
    response
}

/// Marks a refusal for the error page, which then says the form expired.
#[derive(Debug, Clone, Copy)]
pub struct CsrfRefused;
