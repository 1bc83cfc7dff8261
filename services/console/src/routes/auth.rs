//! Signing in and out, and the language switch.
//!
//! Sign-in tries the key against control: with an account named, `GetAccount`
//! (an admin key may open any account, an account key only its own); without,
//! `ListAccounts`, which for an account key is its own account. The key then
//! lives only in the sealed session cookie.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::PrivateCookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use foco_proto::v1::{Account, GetAccountRequest, ListAccountsRequest};
use minijinja::context;
use secrecy::SecretString;
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::i18n::{LANG_COOKIE, Lang};
use crate::render::Frame;
use crate::session::{self, Session, local_path};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

pub async fn sign_in_page(
    State(state): State<AppState>,
    frame: Frame,
    jar: PrivateCookieJar,
    Query(query): Query<NextQuery>,
) -> Result<Response, ConsoleError> {
    let next = local_path(&query.next).to_owned();
    if Session::from_jar(&jar).is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    render_sign_in(&state, &frame, jar, &next, "", None)
}

fn render_sign_in(
    state: &AppState,
    frame: &Frame,
    jar: PrivateCookieJar,
    next: &str,
    account_name: &str,
    error: Option<&str>,
) -> Result<Response, ConsoleError> {
    let (jar, token) = session::sign_in_token(jar, state.config().secure_cookies);
    let mut page_context = frame.context(
        None,
        frame.text("sign_in_title"),
        "sign-in",
        context! { next, account_name, error },
    );
    // The sign-in form's token, before there is a session to hold one.
    page_context = context! { csrf => token, ..page_context };
    let html = state.templates().render("sign_in.html", page_context)?;
    let status = if error.is_some() {
        axum::http::StatusCode::UNAUTHORIZED
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, jar, axum::response::Html(html)).into_response())
}

#[derive(Deserialize)]
pub struct SignInForm {
    api_key: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    next: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    frame: Frame,
    jar: PrivateCookieJar,
    Form(form): Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    let next = local_path(&form.next).to_owned();
    let account_name = form.account.trim();
    let api_key = SecretString::from(form.api_key.trim().to_owned());
    let refused = |key: &str| {
        render_sign_in(
            &state,
            &frame,
            jar.clone(),
            &next,
            account_name,
            Some(frame.text(key)),
        )
    };
    let Ok(mut control) = state.control_with_key(&api_key) else {
        return refused("sign_in_refused");
    };
    let account: Result<Account, &str> = if account_name.is_empty() {
        match control.list_accounts(ListAccountsRequest {}).await {
            Ok(response) => {
                let mut accounts = response.into_inner().accounts;
                if accounts.len() == 1 {
                    Ok(accounts.remove(0))
                } else {
                    Err("sign_in_needs_account")
                }
            }
            Err(status) => Err(refusal(&status)?),
        }
    } else {
        match control
            .get_account(GetAccountRequest {
                account: account_name.to_owned(),
            })
            .await
        {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(refusal(&status)?),
        }
    };
    let account = match account {
        Ok(account) => account,
        Err(key) => return refused(key),
    };
    let config = state.config();
    let session = Session::new(
        api_key,
        account.name,
        account.timezone,
        account.default_country,
        config.session_ttl,
    );
    tracing::info!(account = %session.account, "signed in");
    let jar = session.store(jar, config.secure_cookies, config.session_ttl);
    Ok((jar, Redirect::to(&next)).into_response())
}

/// Which text explains a refused sign-in; control failing for another reason
/// is a page error, not a refusal.
fn refusal(status: &tonic::Status) -> Result<&'static str, ConsoleError> {
    match status.code() {
        tonic::Code::Unauthenticated => Ok("sign_in_refused"),
        tonic::Code::PermissionDenied | tonic::Code::NotFound => Ok("sign_in_no_account"),
        tonic::Code::InvalidArgument => Ok("sign_in_refused"),
        _ => Err(ConsoleError::Control(status.clone())),
    }
}

pub async fn sign_out(jar: PrivateCookieJar) -> impl IntoResponse {
    (Session::clear(jar), Redirect::to("/sign-in"))
}

/// `GET /lang/{code}?next=/path`: remembers the choice for a year and goes
/// back. A preference, not an action on the account, so a link is enough.
pub async fn switch_language(
    Path(code): Path<String>,
    Query(query): Query<NextQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::from_code(&code).unwrap_or_else(|| Lang::of_request(&headers));
    let cookie = Cookie::build((LANG_COOKIE, lang.code()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::days(365))
        .build();
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(&headers).add(cookie);
    (jar, Redirect::to(local_path(&query.next))).into_response()
}
