//! foco-ingress receives webhooks at `POST /v1/hooks/{source_token}`, checks them
//! against their source (rate limit, size, content type, signature over the raw
//! bytes), wraps them in an `EventEnvelope` and answers `202 {"event_id",
//! "duplicate"}` only once JetStream has stored the event. When the bus cannot
//! take it the answer is 503 with `Retry-After`: never a 2xx for an event that is
//! not durably stored. Every error is RFC 9457 `application/problem+json` with a
//! stable `type` per kind of error.
//!
//! A source's preset (control expands it) chooses the signature scheme — Standard
//! Webhooks, Stripe, Shopify, WooCommerce, GitHub, Typeform, Calendly, HubSpot v3,
//! Mercado Pago, Tiendanube, Hotmart, Twilio, a generic HMAC, basic auth, bearer
//! or none (see [`signature`]) — and where the event type and id live. The event
//! id (the sender's own id, else a hash of the body) is the `Nats-Msg-Id`, so a
//! retry within JetStream's window is answered `duplicate: true`; the rules
//! service recognises later ones by the envelope's `external_id`.
//!
//! Provider callbacks — delivery receipts and inbound SMS from Twilio
//! (`/v1/providers/twilio/{account_id}[/{route}]/status` and `.../inbound`),
//! Vonage (same shape, GET or POST), Telnyx (`.../telnyx/{account_id}[/{route}]/events`)
//! and Infobip (`.../status`, `.../inbound`) — are verified with each provider's
//! own scheme and the route's credentials (see `providers`, one folder per
//! provider, at the paths of the `foco_providers` catalog) and stored
//! on FOCO_RECEIPTS for the sender. The OpenAPI document is served at
//! `/openapi.json` (and committed as `openapi.json`).
//!
//! Ingress owns no configuration: sources and routes come from control (cached,
//! dropped on change announcements), and it never evaluates rules or talks to SMS
//! providers.
//!
//! Environment (defaults in brackets): `FOCO_INGRESS_LISTEN` [0.0.0.0:8080],
//! `FOCO_ADMIN_LISTEN` [127.0.0.1:9092], `NATS_URL` and its NATS identity
//! (`foco_bus::NatsAuth`: `NATS_NKEY_FILE`, `NATS_CREDS_FILE` or
//! `NATS_USER`/`NATS_PASSWORD`, and `NATS_CA_FILE`), `FOCO_BUS_PREFIX`,
//! `FOCO_BUS_REPLICAS`, `FOCO_CONTROL_URL`, `FOCO_CONTROL_API_KEY` (its
//! service key, required), `FOCO_CONFIG_CACHE_TTL` [30s],
//! `FOCO_INGRESS_MAX_BODY` [1048576 bytes, a cap over every source's own limit,
//! which defaults to 256 KiB], `FOCO_PUBLISH_TIMEOUT` [5s],
//! `FOCO_INGRESS_REQUEST_TIMEOUT` [30s], `FOCO_SHUTDOWN_GRACE` [30s],
//! `FOCO_PUBLIC_URL` [unset: the URL senders call is rebuilt from
//! `X-Forwarded-Proto`/`X-Forwarded-Host` or `Host`; set it behind a proxy, since
//! Twilio and HubSpot sign the URL they called].

mod app;
mod body;
mod config;
mod error;
mod event_fields;
mod http_trace;
mod json_paths;
mod metrics;
mod openapi;
mod problem;
#[cfg(test)]
mod proptests;
mod providers;
mod publish;
mod rate_limit;
mod routes;
pub mod signature;
mod state;
mod woocommerce_ping;

pub use app::App;
pub use config::{Config, DEFAULT_SOURCE_MAX_BODY};
pub use error::{AppError, IngressError};
pub use openapi::{OPENAPI_ROUTE, document_json as openapi_document};
pub use problem::PROBLEM_CONTENT_TYPE;
pub use routes::WEBHOOK_ROUTE;
