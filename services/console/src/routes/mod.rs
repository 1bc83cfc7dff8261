//! The console's pages and the layers around them: security headers on every
//! response, the CSRF check before any state-changing handler, and error pages
//! rendered in the user's language.

mod auth;
mod delivery;
mod messages;
mod overview;
mod providers;
mod rule_errors;
mod rules;
mod sources;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::context;

use crate::csrf::{self, CsrfRefused};
use crate::error::{ErrorPage, KeyRefused};
use crate::headers;
use crate::i18n::Lang;
use crate::render::Frame;
use crate::session::{self, Session};
use crate::state::AppState;

pub const STYLESHEET: &str = include_str!("../../static/console.css");
pub const SCRIPT: &str = include_str!("../../static/console.js");

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/overview") }))
        .route("/overview", get(overview::show))
        .route("/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .route("/sign-out", post(auth::sign_out))
        .route("/lang/{code}", get(auth::switch_language))
        .route("/sources", get(sources::list).post(sources::create))
        .route("/sources/{source}", get(sources::show))
        .route("/sources/{source}/secret", post(sources::set_secret))
        .route("/sources/{source}/rules", post(rules::submit))
        .route(
            "/sources/{source}/rules/preview",
            post(rules::preview_fragment),
        )
        .route("/sources/{source}/rules/new", get(rules::new_rule))
        .route("/sources/{source}/rules/{rule}", get(rules::edit_rule))
        .route("/providers", get(providers::list).post(providers::save))
        .route("/providers/new", get(providers::new_route))
        .route("/providers/routes/{name}", get(providers::edit_route))
        .route("/providers/test-send", post(providers::test_send))
        .route("/events/{event_id}", get(messages::event))
        .route("/messages", get(messages::list))
        .route("/messages/{job_id}", get(messages::show))
        .route("/messages/{job_id}/cancel", post(messages::cancel))
        .route("/jobs", get(delivery::jobs))
        .route("/jobs/{job_id}/cancel", post(delivery::cancel_job))
        .route("/dead-letters", get(delivery::dead_letters))
        .route(
            "/dead-letters/{job_id}/retry",
            post(delivery::retry_dead_letter),
        )
        .route(
            "/opt-outs",
            get(delivery::opt_outs).post(delivery::add_opt_out),
        )
        .route("/static/console.css", get(stylesheet))
        .route("/static/console.js", get(script))
        .fallback(not_found)
        .layer(from_fn_with_state(state.clone(), csrf::require_token))
        .layer(from_fn_with_state(state.clone(), error_pages))
        .layer(from_fn(headers::security_headers))
        .with_state(state)
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLESHEET,
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        SCRIPT,
    )
}

async fn not_found() -> crate::error::ConsoleError {
    crate::error::ConsoleError::NotFound
}

/// Renders the [`ErrorPage`] a handler or layer left on its response, keeping
/// its status; when control refused the session's key, ends the session and
/// sends the user to sign in again.
async fn error_pages(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let lang = Lang::of_request(request.headers());
    let jar = session::jar(request.headers(), &state.session_key());
    let session = Session::from_jar(&jar);
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    if response.extensions().get::<KeyRefused>().is_some() {
        return (Session::clear(jar), Redirect::to("/sign-in")).into_response();
    }
    let Some(page) = response.extensions().get::<ErrorPage>().cloned() else {
        return response;
    };
    let frame = Frame {
        lang,
        path,
        notice: None,
    };
    let message = if response.extensions().get::<CsrfRefused>().is_some() {
        frame.text("csrf_refused").to_owned()
    } else {
        page.message.unwrap_or_else(|| {
            frame
                .text(&format!("error_{}", page.kind.slug()))
                .to_owned()
        })
    };
    let status = response.status();
    match state.templates().page(
        &frame,
        session.as_ref(),
        "error.html",
        frame.text("error_title"),
        "",
        context! { message },
    ) {
        Ok(html) => (status, html).into_response(),
        Err(error) => {
            tracing::error!(error = %foco_runtime::error_chain(&error), "error page failed to render");
            response
        }
    }
}
