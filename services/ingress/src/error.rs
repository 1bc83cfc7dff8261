//! Errors: `IngressError` for a refused webhook (each maps to one
//! `foco_runtime::ErrorKind`, hence one HTTP status and problem `type`), and
//! `AppError` for starting and running the service.
//!
//! `Display` never includes the cause; the cause chain is logged once, where the
//! request ends, and clients only see the safe `detail`.

use axum::response::{IntoResponse, Response};
use foco_bus::PublishError;
use foco_control_client::LookupError;
use foco_runtime::ErrorKind;

use crate::problem::Problem;
use crate::signature::SignatureError;

/// Seconds a client is told to wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("no source has this token")]
    UnknownSource,
    #[error("the source is disabled")]
    SourceDisabled,
    #[error("the control API could not resolve the source")]
    ControlUnavailable(#[source] LookupError),
    #[error("control resolved the source without its settings")]
    IncompleteSource,
    #[error("the body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The body fits the source's limit, but the event (body and headers) is
    /// larger than the NATS server's `max_payload`.
    #[error("the event is larger than the bus's max_payload of {max_payload} bytes")]
    EventTooLarge { max_payload: usize },
    #[error("unsupported content type")]
    UnsupportedMediaType,
    #[error("the body could not be read")]
    UnreadableBody(#[source] axum::Error),
    #[error("the body is not valid JSON")]
    InvalidJson(#[source] serde_json::Error),
    #[error("the body is not valid form-encoded data")]
    InvalidForm(#[source] serde_urlencoded::de::Error),
    #[error("signature refused")]
    Signature(#[source] SignatureError),
    #[error("JetStream did not store the event")]
    PublishFailed(#[source] PublishError),
    #[error("the source is over its rate limit")]
    RateLimited { retry_after_seconds: u64 },
    #[error("no provider route matches the callback URL")]
    UnknownRoute,
    #[error("the callback has no {0}")]
    MissingField(&'static str),
    /// The callback parses but says something ingress does not know (an unknown
    /// status or event type), or has the wrong shape.
    #[error("the callback is not understood: {0}")]
    InvalidCallback(&'static str),
}

impl IngressError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownSource => ErrorKind::NotFound,
            Self::SourceDisabled => ErrorKind::Gone,
            Self::ControlUnavailable(_) | Self::PublishFailed(_) => ErrorKind::Unavailable,
            Self::IncompleteSource => ErrorKind::Internal,
            Self::BodyTooLarge { .. } | Self::EventTooLarge { .. } => ErrorKind::PayloadTooLarge,
            Self::UnsupportedMediaType => ErrorKind::UnsupportedMediaType,
            Self::UnreadableBody(_) | Self::InvalidJson(_) | Self::InvalidForm(_) => {
                ErrorKind::InvalidArgument
            }
            Self::Signature(_) => ErrorKind::Unauthenticated,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::UnknownRoute => ErrorKind::NotFound,
            Self::MissingField(_) | Self::InvalidCallback(_) => ErrorKind::InvalidArgument,
        }
    }

    /// Label for the `rejected` metric: one per distinct cause an operator would
    /// look into separately.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownSource => "unknown_source",
            Self::SourceDisabled => "source_disabled",
            Self::ControlUnavailable(_) => "control_unavailable",
            Self::IncompleteSource => "internal",
            Self::BodyTooLarge { .. } | Self::EventTooLarge { .. } => "body_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::UnreadableBody(_) => "unreadable_body",
            Self::InvalidJson(_) | Self::InvalidForm(_) => "invalid_body",
            Self::Signature(SignatureError::Stale { .. }) => "stale_timestamp",
            Self::Signature(error) if error.is_misconfiguration() => "source_misconfigured",
            Self::Signature(_) => "bad_signature",
            Self::PublishFailed(PublishError::StreamFull) => "backlog_full",
            Self::PublishFailed(_) => "bus_unavailable",
            Self::RateLimited { .. } => "rate_limited",
            Self::UnknownRoute => "unknown_route",
            Self::MissingField(_) | Self::InvalidCallback(_) => "invalid_body",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::UnknownSource => "Unknown source",
            Self::SourceDisabled => "Source disabled",
            Self::PublishFailed(PublishError::StreamFull) => "Backlog full",
            Self::ControlUnavailable(_) | Self::PublishFailed(_) => "Temporarily unavailable",
            Self::IncompleteSource => "Internal error",
            Self::BodyTooLarge { .. } | Self::EventTooLarge { .. } => "Body too large",
            Self::UnsupportedMediaType => "Unsupported content type",
            Self::UnreadableBody(_) | Self::InvalidJson(_) | Self::InvalidForm(_) => "Invalid body",
            Self::Signature(_) => "Invalid signature",
            Self::RateLimited { .. } => "Too many requests",
            Self::UnknownRoute => "Unknown provider route",
            Self::MissingField(_) | Self::InvalidCallback(_) => "Invalid body",
        }
    }

    /// What the client is told: enough to fix its request, nothing about our
    /// internals.
    fn detail(&self) -> String {
        match self {
            Self::UnknownSource => "no webhook source has this URL".to_owned(),
            Self::SourceDisabled => {
                "this webhook source is disabled; stop sending to it".to_owned()
            }
            Self::PublishFailed(PublishError::StreamFull) => {
                "the backlog of events waiting to be processed is full, so the event was not stored; retry later".to_owned()
            }
            Self::ControlUnavailable(_) | Self::PublishFailed(_) => {
                "the event was not stored; retry later".to_owned()
            }
            Self::IncompleteSource => "the request could not be handled".to_owned(),
            Self::BodyTooLarge { limit } => {
                format!("the body is larger than the limit of {limit} bytes")
            }
            Self::EventTooLarge { max_payload } => format!(
                "the body and headers together are larger than the limit of {max_payload} bytes"
            ),
            Self::UnsupportedMediaType => {
                "send application/json or application/x-www-form-urlencoded".to_owned()
            }
            Self::UnreadableBody(_) => "the request body could not be read".to_owned(),
            Self::InvalidJson(error) => format!(
                "the body is not valid JSON (line {}, column {})",
                error.line(),
                error.column()
            ),
            Self::InvalidForm(_) => "the body is not valid form-encoded data".to_owned(),
            // The source's configuration is our business, not the sender's.
            Self::Signature(error) if error.is_misconfiguration() => {
                "the webhook signature could not be verified".to_owned()
            }
            Self::Signature(error) => error.to_string(),
            Self::RateLimited {
                retry_after_seconds,
            } => format!(
                "this source sends more webhooks than its rate limit; retry in {retry_after_seconds} s"
            ),
            Self::UnknownRoute => "no provider route has this callback URL".to_owned(),
            Self::MissingField(field) => format!("the callback has no {field}"),
            Self::InvalidCallback(what) => format!("the callback is not understood: {what}"),
        }
    }

    /// Logs the error with its cause chain: warnings for what an operator should
    /// act on, debug for a sender's mistakes (which can be floods).
    pub fn log(&self) {
        let chain = cause_chain(self);
        match self {
            Self::ControlUnavailable(_) | Self::PublishFailed(_) | Self::IncompleteSource => {
                tracing::warn!(error = %chain, reason = self.reason(), "webhook not accepted");
            }
            Self::Signature(error) if error.is_misconfiguration() => {
                tracing::warn!(error = %chain, "source signature settings are unusable, refusing its webhooks");
            }
            _ => tracing::debug!(error = %chain, reason = self.reason(), "webhook refused"),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let problem = Problem::new(self.kind(), self.title(), self.detail());
        match self {
            Self::RateLimited {
                retry_after_seconds,
            } => problem.with_retry_after(*retry_after_seconds),
            _ if self.kind() == ErrorKind::Unavailable => {
                problem.with_retry_after(RETRY_AFTER_SECONDS)
            }
            _ => problem,
        }
    }
}

impl IntoResponse for IngressError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

pub use foco_runtime::error_chain as cause_chain;

/// Starting or running the service failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Nats(#[from] foco_bus::ConnectError),
    #[error("could not create the JetStream streams")]
    Streams(#[from] foco_bus::TopologyError),
    #[error("could not set up the control API client")]
    Control(#[from] foco_control_client::ControlClientError),
    #[error("could not subscribe to configuration changes")]
    WatchChanges(#[from] async_nats::SubscribeError),
    #[error("could not listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Serve(#[from] foco_runtime::serve::ServeError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::http::header::HeaderName;

    #[test]
    fn each_error_has_its_status() {
        let cases = [
            (IngressError::UnknownSource, StatusCode::NOT_FOUND),
            (IngressError::SourceDisabled, StatusCode::GONE),
            (
                IngressError::BodyTooLarge { limit: 1 },
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                IngressError::EventTooLarge { max_payload: 1 },
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                IngressError::UnsupportedMediaType,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                IngressError::Signature(SignatureError::Mismatch),
                StatusCode::UNAUTHORIZED,
            ),
            (
                IngressError::PublishFailed(PublishError::Disconnected),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                IngressError::RateLimited {
                    retry_after_seconds: 2,
                },
                StatusCode::TOO_MANY_REQUESTS,
            ),
            (IngressError::UnknownRoute, StatusCode::NOT_FOUND),
            (
                IngressError::MissingField("messageId"),
                StatusCode::BAD_REQUEST,
            ),
            (
                IngressError::InvalidCallback("an unknown status"),
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.kind().http_status(), status, "{error}");
        }
    }

    #[test]
    fn unavailable_errors_say_when_to_retry_and_hide_causes() {
        let problem = IngressError::PublishFailed(PublishError::Disconnected).to_problem();
        assert_eq!(problem.retry_after_seconds, Some(RETRY_AFTER_SECONDS));
        assert!(!problem.detail.contains("NATS"));
        let refused = IngressError::UnknownSource.to_problem();
        assert_eq!(refused.retry_after_seconds, None);
        let limited = IngressError::RateLimited {
            retry_after_seconds: 3,
        }
        .to_problem();
        assert_eq!(limited.retry_after_seconds, Some(3));
    }

    #[test]
    fn misconfiguration_details_stay_private() {
        let error = IngressError::Signature(SignatureError::NoSecret);
        assert_eq!(error.reason(), "source_misconfigured");
        assert!(!error.to_problem().detail.contains("secret"));
        let missing = IngressError::Signature(SignatureError::MissingHeader(
            HeaderName::from_static("x-sig"),
        ));
        assert_eq!(
            missing.to_problem().detail,
            "the signature header x-sig is missing"
        );
        assert_eq!(missing.reason(), "bad_signature");
    }

    #[test]
    fn cause_chains_are_joined() {
        let error = IngressError::PublishFailed(PublishError::Disconnected);
        assert_eq!(
            cause_chain(&error),
            "JetStream did not store the event: not connected to NATS"
        );
    }
}
