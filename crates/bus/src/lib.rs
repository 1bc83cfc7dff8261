//! The bus contract between the Foco services: JetStream stream and subject names,
//! the headers every message carries, the rules that derive stable message ids, the
//! encoding of the event envelope, an SMS job's deadline (`validity`), the status
//! feed's kinds and publisher (`status`), W3C trace-context propagation
//! through NATS headers, how a service connects and with which identity
//! (`connect`), and what each service's NATS user may publish and subscribe
//! to (`permissions`).
//!
//! Nothing outside this crate spells a subject or stream name. This crate knows
//! nothing about HTTP, Postgres or rules; it only describes and moves bus messages.

mod config;
mod connect;
pub mod describe;
mod envelope;
mod ids;
pub mod lag;
mod names;
mod permissions;
mod publish;
pub mod pull;
pub mod status;
mod together;
mod topology;
pub mod trace;
pub mod validity;

pub use config::{BusConfig, DEFAULT_NATS_URL};
pub use connect::{
    CA_FILE_VAR, CREDS_FILE_VAR, ConnectError, NKEY_FILE_VAR, NatsAuth, NatsCredentials,
    PASSWORD_VAR, USER_VAR, connect, connect_once, readiness_check,
};
pub use envelope::{EventParts, INBOUND_SMS_EVENT_TYPE, encode_envelope};
pub use ids::{
    api_job_id, event_id_from_body, event_id_from_external, help_event_id, inbound_event_id,
    inbound_msg_id, job_id, receipt_msg_id, release_msg_id, resend_msg_id, retry_msg_id,
    status_change_id,
};
pub use lag::ConsumerLag;
pub use names::{BusNames, InvalidPrefix, ReceiptKind};
pub use permissions::{
    Permissions, Service, server_authorization, server_user, services_authorization,
};
pub use publish::{PublishError, Published, Publisher, publish_durable, publish_with_headers};
pub use pull::{Handle, PullSettings};
pub use status::{StatusFeed, StatusFeedError, status_change};
pub use topology::{
    ConsumerSettings, DEFAULT_MAX_BYTES, DEFAULT_STATUS_MAX_AGE, DUPLICATE_WINDOW, StreamSettings,
    TopologyError, ensure_consumer, ensure_status_stream, ensure_streams,
};

/// Header carrying a message's stable id; JetStream drops a second publish with the
/// same id inside the stream's duplicate window.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
