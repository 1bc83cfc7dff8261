//! Who is signed in: the API key and account, held in one private cookie
//! (encrypted and authenticated with the session key, HttpOnly,
//! SameSite=Strict, with an expiry inside the sealed value that the server
//! checks, whatever the browser keeps). No server-side store, so any replica
//! serves any user; control checks the key on every call, so revoking the key
//! ends every session made with it.
//!
//! Every form carries a CSRF token that must match the one sealed in the
//! session (or, before sign-in, in a short-lived sign-in cookie); the check is
//! one middleware over every state-changing request (see [`crate::csrf`]).

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar, SameSite};
use base64::Engine as _;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::state::AppState;

pub const SESSION_COOKIE: &str = "foco_session";
/// Holds the CSRF token of the sign-in form, before there is a session.
pub const SIGN_IN_COOKIE: &str = "foco_sign_in";
/// How long the sign-in form may stay open.
pub const SIGN_IN_TTL: Duration = Duration::from_secs(3600);

/// A signed-in user.
#[derive(Clone)]
pub struct Session {
    pub api_key: SecretString,
    /// The account's name, which every control call names.
    pub account: String,
    /// The account's IANA time zone, for the times pages show.
    pub timezone: String,
    /// The account's ISO 3166 country, for the amounts pages show.
    pub country: String,
    pub csrf_token: String,
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Session")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// The sealed cookie value.
#[derive(Serialize, Deserialize)]
struct Sealed {
    key: String,
    account: String,
    tz: String,
    /// Absent in cookies sealed before it existed.
    #[serde(default)]
    country: String,
    csrf: String,
    exp: i64,
}

impl Session {
    pub fn new(
        api_key: SecretString,
        account: String,
        timezone: String,
        country: String,
        ttl: Duration,
    ) -> Self {
        Self {
            api_key,
            account,
            timezone,
            country,
            csrf_token: random_token(),
            expires_at_ms: now_ms().saturating_add(millis(ttl)),
        }
    }

    /// The jar with this session's cookie added (and the sign-in cookie gone).
    pub fn store(&self, jar: PrivateCookieJar, secure: bool, ttl: Duration) -> PrivateCookieJar {
        let sealed = Sealed {
            key: self.api_key.expose_secret().to_owned(),
            account: self.account.clone(),
            tz: self.timezone.clone(),
            country: self.country.clone(),
            csrf: self.csrf_token.clone(),
            exp: self.expires_at_ms,
        };
        let value = serde_json::to_string(&sealed).unwrap_or_default();
        jar.remove(removal(SIGN_IN_COOKIE))
            .add(cookie(SESSION_COOKIE, value, secure, ttl))
    }

    /// The unexpired session in `jar`, if any.
    pub fn from_jar(jar: &PrivateCookieJar) -> Option<Self> {
        let cookie = jar.get(SESSION_COOKIE)?;
        let sealed: Sealed = serde_json::from_str(cookie.value()).ok()?;
        if sealed.exp <= now_ms() {
            return None;
        }
        Some(Self {
            api_key: SecretString::from(sealed.key),
            account: sealed.account,
            timezone: sealed.tz,
            country: sealed.country,
            csrf_token: sealed.csrf,
            expires_at_ms: sealed.exp,
        })
    }

    pub fn clear(jar: PrivateCookieJar) -> PrivateCookieJar {
        jar.remove(removal(SESSION_COOKIE))
    }
}

/// The sign-in form's CSRF token: the one in the jar, or a new one to store.
pub fn sign_in_token(jar: PrivateCookieJar, secure: bool) -> (PrivateCookieJar, String) {
    if let Some(token) = jar
        .get(SIGN_IN_COOKIE)
        .map(|cookie| cookie.value().to_owned())
    {
        return (jar, token);
    }
    let token = random_token();
    let jar = jar.add(cookie(SIGN_IN_COOKIE, token.clone(), secure, SIGN_IN_TTL));
    (jar, token)
}

/// The token a form posted to this jar's owner must carry: the session's, else
/// the sign-in form's.
pub fn expected_csrf_token(jar: &PrivateCookieJar) -> Option<String> {
    Session::from_jar(jar)
        .map(|session| session.csrf_token)
        .or_else(|| {
            jar.get(SIGN_IN_COOKIE)
                .map(|cookie| cookie.value().to_owned())
        })
}

fn cookie(name: &'static str, value: String, secure: bool, ttl: Duration) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        ))
        .build()
}

fn removal(name: &'static str) -> Cookie<'static> {
    Cookie::build((name, "")).path("/").build()
}

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Pages that need a session take `Session`; without one the browser is sent
/// to the sign-in page, and back here afterwards.
pub struct SignInRequired {
    next: String,
}

impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        let target = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &self.next)
            .finish();
        Redirect::to(&format!("/sign-in?{target}")).into_response()
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = SignInRequired;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let jar = PrivateCookieJar::from_headers(&parts.headers, state.session_key());
        Session::from_jar(&jar).ok_or_else(|| SignInRequired {
            next: local_path(parts.uri.path_and_query().map_or("/", |path| path.as_str()))
                .to_owned(),
        })
    }
}

/// `path` when it is a path on this site, else `/`: a `next=` parameter must
/// not send a signed-in user elsewhere (open redirect).
pub fn local_path(path: &str) -> &str {
    let on_this_site = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.contains(['\r', '\n']);
    if on_this_site { path } else { "/" }
}

/// The jar of a request, opened with the session key.
pub fn jar(headers: &axum::http::HeaderMap, key: &Key) -> PrivateCookieJar {
    PrivateCookieJar::from_headers(headers, key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_parameters_stay_on_this_site() {
        assert_eq!(local_path("/messages?status=sent"), "/messages?status=sent");
        for elsewhere in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "",
        ] {
            assert_eq!(local_path(elsewhere), "/", "{elsewhere}");
        }
    }

    #[test]
    fn a_session_survives_its_cookie_and_expires() {
        let key = Key::generate();
        let session = Session::new(
            SecretString::from("foco_key"),
            "tienda-ale".to_owned(),
            "America/Mexico_City".to_owned(),
            "MX".to_owned(),
            Duration::from_secs(60),
        );
        let jar = session.store(
            PrivateCookieJar::new(key.clone()),
            true,
            Duration::from_secs(60),
        );
        let read = Session::from_jar(&jar).expect("session");
        assert_eq!(read.account, "tienda-ale");
        assert_eq!(read.country, "MX");
        assert_eq!(read.api_key.expose_secret(), "foco_key");
        assert_eq!(read.csrf_token, session.csrf_token);

        let expired = Session {
            expires_at_ms: now_ms() - 1,
            ..session
        };
        let jar = expired.store(PrivateCookieJar::new(key), true, Duration::from_secs(60));
        assert!(Session::from_jar(&jar).is_none());
    }
}
