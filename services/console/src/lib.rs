//! foco-console is the owner's web console: sign in with an API key, connect a
//! platform (a source from a preset, its webhook URL and where to paste it),
//! write rules with a live preview of the text, its recipients, its encoding
//! and cost (against a recent real event of the source or a pasted one), and
//! follow every message from the event that caused it to the provider's
//! receipt; provider routes (credentials write-only) with a test send;
//! scheduled jobs, dead letters and opt-outs too. Pages
//! are rendered on the server (minijinja); one small script only refreshes the
//! preview and copies URLs, and every page works without it.
//!
//! It owns no data and holds no credentials of its own: every call goes to
//! control's gRPC API with the signed-in user's key, which lives only in the
//! user's sealed session cookie. Sessions are HttpOnly, SameSite=Strict and
//! expire; every form carries a CSRF token; pages are served with a strict
//! Content-Security-Policy; signing secrets are write-only.
//!
//! Environment (defaults in brackets): `FOCO_CONSOLE_LISTEN` [127.0.0.1:8081],
//! `FOCO_ADMIN_LISTEN` [127.0.0.1:9095], `FOCO_CONTROL_URL`
//! [http://127.0.0.1:50051], `FOCO_INGRESS_URL` [http://127.0.0.1:8080] (shown
//! in webhook URLs), `FOCO_CONSOLE_SESSION_KEY` (required, 64 random bytes in
//! base64), `FOCO_CONSOLE_SESSION_TTL` [12h], `FOCO_CONSOLE_SECURE_COOKIES`
//! [true], `FOCO_SHUTDOWN_GRACE` [10s].

mod app;
mod config;
mod csrf;
mod error;
mod headers;
mod i18n;
mod money;
mod presets;
mod render;
mod routes;
mod session;
mod state;

pub use app::App;
pub use axum_extra::extract::cookie::Key as SessionKey;
pub use config::{Config, SESSION_KEY_BYTES, parse_session_key};
pub use csrf::CSRF_FIELD;
pub use error::AppError;
pub use headers::CONTENT_SECURITY_POLICY_VALUE;
pub use session::{SESSION_COOKIE, SIGN_IN_COOKIE};
