//! Provider routes: the account's routes with their settings and the names of
//! their credentials (never the values), a form per route built from the
//! provider catalog (its settings as fields, its credentials as write-only
//! password fields), and a test send: one SMS to a number through a chosen
//! route, with the id of the message it made.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use foco_proto::v1::{
    ListProviderRoutesRequest, ProviderRoute, SendMessageRequest, UpsertProviderRouteRequest,
};
use foco_providers::{ProviderKind, Storage};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use crate::error::{ConsoleError, kind_of};
use crate::render::Frame;
use crate::routes::sources::path_segment;
use crate::session::Session;
use crate::state::AppState;

/// Form fields of a catalog setting and credential: `setting.<key>`,
/// `credential.<key>`.
const SETTING_FIELD: &str = "setting.";
const CREDENTIAL_FIELD: &str = "credential.";

async fn routes(state: &AppState, session: &Session) -> Result<Vec<ProviderRoute>, ConsoleError> {
    let mut routes = state
        .control(session)?
        .list_provider_routes(ListProviderRoutesRequest {
            account: session.account.clone(),
        })
        .await?
        .into_inner()
        .routes;
    routes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(routes)
}

fn kind_label(kind: &str) -> &str {
    ProviderKind::from_id(kind).map_or(kind, |kind| kind.spec().display_name)
}

fn route_view(route: &ProviderRoute) -> serde_json::Value {
    let mut settings: Vec<_> = route
        .settings
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    settings.sort();
    let mut credentials = route.credential_names.clone();
    credentials.sort();
    json!({
        "name": route.name, "kind": route.kind, "kind_label": kind_label(&route.kind),
        "is_default": route.is_default, "settings": settings, "credentials": credentials,
        "updated_at_ms": route.updated_at_ms,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// The id of the message a test send made.
    #[serde(default)]
    sent: String,
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
    Query(query): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let routes = routes(&state, &session).await?;
    let views: Vec<_> = routes.iter().map(route_view).collect();
    let kinds: Vec<_> = ProviderKind::ALL
        .iter()
        .map(|kind| json!({"id": kind.spec().id, "label": kind.spec().display_name}))
        .collect();
    let sent = query.sent.trim();
    let sent = (!sent.is_empty()).then_some(sent);
    state.page(
        &frame,
        &session,
        "providers.html",
        frame.text("providers_title"),
        "providers",
        context! {
            routes => crate::render::value(&views),
            kinds => crate::render::value(&kinds),
            sent,
            test_body => frame.text("test_send_default_body"),
        },
    )
}

/// What the route form shows: the route's name and kind, each catalog key of
/// the kind with its current setting value (credentials: only whether set).
struct RouteForm<'a> {
    name: &'a str,
    kind: ProviderKind,
    is_new: bool,
    is_default: bool,
    settings: &'a HashMap<String, String>,
    credential_names: &'a [String],
}

impl RouteForm<'_> {
    fn context(&self) -> minijinja::Value {
        let spec = self.kind.spec();
        let keys: Vec<_> = spec
            .keys
            .iter()
            .map(|key| {
                let secret = key.storage == Storage::Credential;
                json!({
                    "name": key.name,
                    "field": format!("{}{}", if secret { CREDENTIAL_FIELD } else { SETTING_FIELD }, key.name),
                    "id": format!("key-{}", key.name),
                    "secret": secret,
                    "required": key.required,
                    "about": key.about,
                    "default": key.default,
                    "value": if secret { "" } else { self.settings.get(key.name).map_or("", String::as_str) },
                    "is_set": secret && self.credential_names.iter().any(|name| name == key.name),
                })
            })
            .collect();
        let mut extra_settings: Vec<_> = self
            .settings
            .iter()
            .filter(|(name, _)| spec.key(name).is_none())
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        extra_settings.sort();
        let mut other_credentials: Vec<_> = self
            .credential_names
            .iter()
            .filter(|name| spec.key(name).is_none())
            .cloned()
            .collect();
        other_credentials.sort();
        let route = json!({
            "name": self.name, "kind": spec.id, "kind_label": spec.display_name,
            "summary": spec.summary, "is_new": self.is_new, "is_default": self.is_default,
            "keys": keys, "extra_settings": extra_settings.join("\n"),
            "header_credentials": spec.header_credentials,
            "other_credentials": other_credentials,
            "has_credentials": !self.credential_names.is_empty(),
        });
        context! { route => crate::render::value(route) }
    }
}

fn render_form(
    state: &AppState,
    session: &Session,
    frame: &Frame,
    form: &RouteForm<'_>,
    save_error: Option<String>,
) -> Result<Response, ConsoleError> {
    let title = if form.is_new {
        frame.text("new_route").to_owned()
    } else {
        form.name.to_owned()
    };
    let status = if save_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = state.templates().page(
        frame,
        Some(session),
        "provider.html",
        &title,
        "providers",
        context! { save_error, ..form.context() },
    )?;
    Ok((status, page).into_response())
}

fn parse_kind(kind: &str) -> Result<ProviderKind, ConsoleError> {
    ProviderKind::from_id(kind.trim())
        .ok_or_else(|| ConsoleError::Invalid(format!("unknown provider kind {kind:?}")))
}

#[derive(Debug, Deserialize)]
pub struct NewQuery {
    kind: String,
}

pub async fn new_route(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
    Query(query): Query<NewQuery>,
) -> Result<Response, ConsoleError> {
    let kind = parse_kind(&query.kind)?;
    let settings = HashMap::new();
    let form = RouteForm {
        name: "",
        kind,
        is_new: true,
        is_default: false,
        settings: &settings,
        credential_names: &[],
    };
    render_form(&state, &session, &frame, &form, None)
}

pub async fn edit_route(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let routes = routes(&state, &session).await?;
    let route = routes
        .iter()
        .find(|route| route.name == name)
        .ok_or(ConsoleError::NotFound)?;
    let form = RouteForm {
        name: &route.name,
        kind: parse_kind(&route.kind)?,
        is_new: false,
        is_default: route.is_default,
        settings: &route.settings,
        credential_names: &route.credential_names,
    };
    render_form(&state, &session, &frame, &form, None)
}

/// `name=value` lines; blank lines are skipped.
fn pairs(field: &str, text: &str) -> Result<Vec<(String, String)>, ConsoleError> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            line.split_once('=')
                .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
                .ok_or_else(|| {
                    ConsoleError::Invalid(format!("{field}: {line:?} is not name=value"))
                })
        })
        .collect()
}

/// The route form as posted: the catalog's fields by name, the rest as lines.
struct PostedRoute {
    name: String,
    kind: ProviderKind,
    is_new: bool,
    is_default: bool,
    settings: HashMap<String, String>,
    credentials: HashMap<String, String>,
}

impl PostedRoute {
    fn parse(fields: &[(String, String)]) -> Result<Self, ConsoleError> {
        let field = |name: &str| field_value(fields, name);
        let kind = parse_kind(field("kind"))?;
        let mut settings = HashMap::new();
        let mut credentials = HashMap::new();
        for (name, value) in fields {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if let Some(key) = name.strip_prefix(SETTING_FIELD) {
                settings.insert(key.to_owned(), value.to_owned());
            } else if let Some(key) = name.strip_prefix(CREDENTIAL_FIELD) {
                credentials.insert(key.to_owned(), value.to_owned());
            }
        }
        settings.extend(pairs("extra_settings", field("extra_settings"))?);
        if kind.spec().header_credentials {
            credentials.extend(pairs("extra_credentials", field("extra_credentials"))?);
        }
        Ok(Self {
            name: field("name").trim().to_owned(),
            kind,
            is_new: !field("is_new").is_empty(),
            is_default: !field("is_default").is_empty(),
            settings,
            credentials,
        })
    }
}

/// The first value of the field `name`; empty when absent.
fn field_value<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(field, _)| field == name)
        .map_or("", |(_, value)| value.as_str())
}

/// `POST /providers`: creates or updates a route. Credentials left empty keep
/// the stored ones; any credential given replaces them all (as control does).
pub async fn save(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let posted = PostedRoute::parse(&fields)?;
    let existing = routes(&state, &session)
        .await?
        .into_iter()
        .find(|route| route.name == posted.name);
    let refused = |message: String| {
        let credential_names: Vec<String> = existing
            .as_ref()
            .map(|route| route.credential_names.clone())
            .unwrap_or_default();
        let form = RouteForm {
            name: &posted.name,
            kind: posted.kind,
            is_new: posted.is_new,
            is_default: posted.is_default,
            settings: &posted.settings,
            credential_names: &credential_names,
        };
        render_form(&state, &session, &frame, &form, Some(message))
    };
    // Saving upserts: a new route must not replace one of the same name.
    if posted.is_new && existing.is_some() {
        return refused(format!(
            "{}: {}",
            posted.name,
            frame.text("error_already-exists")
        ));
    }
    let request = UpsertProviderRouteRequest {
        account: session.account.clone(),
        name: posted.name.clone(),
        kind: posted.kind.spec().id.to_owned(),
        settings: posted.settings.clone(),
        credentials: posted.credentials.clone(),
        is_default: posted.is_default,
    };
    match state
        .control(&session)?
        .upsert_provider_route(request)
        .await
    {
        Ok(_) => Ok(Redirect::to("/providers?done=route_saved").into_response()),
        Err(status) => match kind_of(status.code()) {
            foco_runtime::ErrorKind::InvalidArgument
            | foco_runtime::ErrorKind::AlreadyExists
            | foco_runtime::ErrorKind::NotFound => refused(status.message().to_owned()),
            _ => Err(status.into()),
        },
    }
}

#[derive(Debug, Deserialize)]
pub struct TestSend {
    to: String,
    body: String,
    /// A route's name; empty: the account's default route.
    #[serde(default)]
    route: String,
}

/// `POST /providers/test-send`: one SMS through control's `SendMessage`.
pub async fn test_send(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<TestSend>,
) -> Result<Response, ConsoleError> {
    let sent = state
        .messaging(&session)?
        .send_message(SendMessageRequest {
            account: session.account.clone(),
            to: form.to.trim().to_owned(),
            body: form.body.trim().to_owned(),
            route: form.route.trim().to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(Redirect::to(&format!(
        "/providers?sent={}",
        path_segment(&sent.message_id)
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn a_posted_route_splits_settings_from_credentials_and_skips_empty_ones() {
        let posted = PostedRoute::parse(&fields(&[
            ("name", " primary "),
            ("kind", "twilio"),
            ("setting.from", "+15005550006"),
            ("setting.base_url", ""),
            ("credential.account_sid", "AC123"),
            ("credential.auth_token", ""),
            ("extra_settings", "rate_per_second = 5\n\n"),
            ("extra_credentials", "X-Ignored=1"),
            ("is_default", "1"),
        ]))
        .unwrap();
        assert_eq!(posted.name, "primary");
        assert_eq!(posted.kind, ProviderKind::Twilio);
        assert!(posted.is_default && !posted.is_new);
        assert_eq!(posted.settings.len(), 2);
        assert_eq!(posted.settings["rate_per_second"], "5");
        assert_eq!(
            posted.credentials.len(),
            1,
            "twilio takes no header credentials"
        );
        assert_eq!(posted.credentials["account_sid"], "AC123");

        let http = PostedRoute::parse(&fields(&[
            ("kind", "http"),
            ("extra_credentials", "Authorization=Bearer x"),
        ]))
        .unwrap();
        assert_eq!(http.credentials["Authorization"], "Bearer x");
        assert!(PostedRoute::parse(&fields(&[("kind", "pigeon")])).is_err());
        assert!(PostedRoute::parse(&fields(&[("kind", "http"), ("extra_settings", "x")])).is_err());
    }
}
