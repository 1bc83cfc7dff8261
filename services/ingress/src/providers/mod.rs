//! Provider callbacks: delivery receipts and inbound messages that SMS providers
//! post to a URL naming the account and the provider route the number belongs
//! to (`/v1/providers/<kind>/<account id>[/<route>]/...`; without a route, the
//! account's default). The paths, their methods and the credentials that
//! verify them are the `foco_providers` catalog's. The route's credentials —
//! held by control, fetched through the cached `ResolveRoute` lookup — verify
//! each provider's own scheme:
//!
//! | provider | scheme | route credential |
//! |---|---|---|
//! | Twilio | `X-Twilio-Signature` (HMAC-SHA1 over URL and form) | `auth_token` |
//! | Vonage | `sig` parameter (MD5 or HMAC over sorted parameters) | `signature_secret` |
//! | Telnyx | `telnyx-signature-ed25519` (Ed25519 over timestamp and body) | `public_key` |
//! | Infobip | basic auth password or `X-Foco-Webhook-Secret` | `webhook_secret` |
//!
//! A route without the credential refuses every callback (401): nothing is
//! accepted unverified. Verified callbacks go to FOCO_RECEIPTS before the 200;
//! the sender applies them (receipts to messages, STOP/START/HELP to the opt-out
//! list). SMS Masivos documents no callbacks, so it has no folder here.
//!
//! One folder per provider: `route.rs` (its handlers, their OpenAPI
//! annotations and its table of endpoints), `parse.rs` (its fields to receipts
//! and inbound messages) and `signature.rs` (its verification). What they
//! share is in `callback.rs` and `parse.rs` here. [`endpoints`] is the one
//! table the router and the OpenAPI document are built from.

pub(crate) mod callback;
pub(crate) mod infobip;
pub(crate) mod parse;
pub(crate) mod telnyx;
pub(crate) mod twilio;
pub(crate) mod vonage;

use std::collections::BTreeMap;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter, on};
use foco_providers::ProviderKind;
use utoipa::openapi::path::{HttpMethod, Operation, Paths};

use crate::routes::with_method_fallback;
use crate::state::AppState;

/// The tag of every callback in the OpenAPI document.
const TAG: &str = "providers";

/// One callback endpoint: a handler, and what its `#[utoipa::path]`
/// annotation says of it (path, method, operation).
pub(crate) struct Endpoint {
    path: String,
    methods: Vec<HttpMethod>,
    operation: Operation,
    handler: MethodRouter<AppState>,
}

impl Endpoint {
    /// `Doc` is the type `#[utoipa::path]` generated for `handler`: the handler
    /// is served at the path and for the methods its annotation documents.
    pub fn new<Doc, H, T>(handler: H) -> Self
    where
        Doc: utoipa::Path,
        H: Handler<T, AppState>,
        T: 'static,
    {
        let methods = Doc::methods();
        let filter = methods
            .iter()
            .map(method_filter)
            .reduce(MethodFilter::or)
            .unwrap_or(MethodFilter::POST);
        let mut operation = Doc::operation();
        operation.tags = Some(vec![TAG.to_owned()]);
        Self {
            path: Doc::path(),
            methods,
            operation,
            handler: on(filter, handler),
        }
    }
}

fn method_filter(method: &HttpMethod) -> MethodFilter {
    match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Put => MethodFilter::PUT,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Delete => MethodFilter::DELETE,
        HttpMethod::Options => MethodFilter::OPTIONS,
        HttpMethod::Head => MethodFilter::HEAD,
        HttpMethod::Patch => MethodFilter::PATCH,
        HttpMethod::Trace => MethodFilter::TRACE,
    }
}

fn method_name(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Put => "PUT",
        HttpMethod::Post => "POST",
        HttpMethod::Delete => "DELETE",
        HttpMethod::Options => "OPTIONS",
        HttpMethod::Head => "HEAD",
        HttpMethod::Patch => "PATCH",
        HttpMethod::Trace => "TRACE",
    }
}

/// Every provider's callback endpoints.
pub(crate) fn endpoints() -> Vec<(ProviderKind, Endpoint)> {
    ProviderKind::ALL
        .iter()
        .flat_map(|kind| {
            endpoints_of(*kind)
                .into_iter()
                .map(|endpoint| (*kind, endpoint))
        })
        .collect()
}

/// A kind's endpoints: those of its folder, none for kinds without callbacks
/// (a test holds this to the catalog's callback paths).
fn endpoints_of(kind: ProviderKind) -> Vec<Endpoint> {
    match kind {
        ProviderKind::Twilio => twilio::endpoints(),
        ProviderKind::Vonage => vonage::endpoints(),
        ProviderKind::Telnyx => telnyx::endpoints(),
        ProviderKind::Infobip => infobip::endpoints(),
        ProviderKind::Console | ProviderKind::Http | ProviderKind::SmsMasivos => Vec::new(),
    }
}

/// The callback routes; a method a path does not take is answered 405 with
/// `Allow`.
pub(crate) fn router() -> Router<AppState> {
    let mut by_path: BTreeMap<String, (ProviderKind, Vec<&'static str>, MethodRouter<AppState>)> =
        BTreeMap::new();
    for (kind, endpoint) in endpoints() {
        let names = endpoint.methods.iter().map(method_name);
        match by_path.remove(&endpoint.path) {
            Some((kind, mut methods, handler)) => {
                methods.extend(names);
                let merged = handler.merge(endpoint.handler);
                by_path.insert(endpoint.path, (kind, methods, merged));
            }
            None => {
                by_path.insert(endpoint.path, (kind, names.collect(), endpoint.handler));
            }
        }
    }
    by_path.into_iter().fold(
        Router::new(),
        |router, (path, (kind, mut methods, handler))| {
            methods.sort_unstable();
            let handler = with_method_fallback(handler, kind.display_name(), &methods);
            router.route(&path, handler)
        },
    )
}

/// Adds every callback's operation to the OpenAPI document's paths.
pub(crate) fn document(paths: &mut Paths) {
    for (_, endpoint) in endpoints() {
        paths.add_path_operation(&endpoint.path, endpoint.methods, endpoint.operation);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Each kind serves exactly the callbacks the catalog lists, with their
    /// methods: adding a callback to the catalog without a handler (or the
    /// other way round) fails here.
    #[test]
    fn endpoints_are_the_catalogs_callbacks() {
        let served: BTreeSet<(ProviderKind, String, &str)> = endpoints()
            .iter()
            .flat_map(|(kind, endpoint)| {
                endpoint
                    .methods
                    .iter()
                    .map(|method| (*kind, endpoint.path.clone(), method_name(method)))
            })
            .collect();
        let cataloged: BTreeSet<(ProviderKind, String, &str)> = ProviderKind::ALL
            .iter()
            .flat_map(|kind| {
                kind.callback_paths().flat_map(move |(path, methods)| {
                    methods
                        .iter()
                        .map(move |method| (*kind, path.clone(), method.as_str()))
                })
            })
            .collect();
        assert_eq!(served, cataloged);
    }
}
