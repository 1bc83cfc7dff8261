//! Errors of the console: those that stop it starting, and those a page can
//! meet. A page error becomes a status and an [`ErrorPage`] marker; the
//! error-page middleware renders it in the user's language (see
//! [`crate::routes`]). Control's own message is shown only for the kinds it
//! writes for clients (invalid input, not found, already exists, denied);
//! anything else is logged once here and shown as a generic message.

use std::net::SocketAddr;

use axum::response::{IntoResponse, Response};
use foco_runtime::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("could not bind {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not create the control API client")]
    Control(#[from] foco_control_client::ControlClientError),
    #[error("the templates do not compile")]
    Templates(#[from] minijinja::Error),
    #[error(transparent)]
    Serve(#[from] foco_runtime::serve::ServeError),
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("control refused the call")]
    Control(#[from] tonic::Status),
    #[error("the API key cannot be sent")]
    ApiKey(#[from] foco_control_client::ControlClientError),
    #[error("a page failed to render")]
    Render(#[from] minijinja::Error),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
}

/// Left on an error response for the error-page middleware to render.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub kind: ErrorKind,
    /// Shown to the user; `None`: the generic text for the kind.
    pub message: Option<String>,
}

/// Left on the response when control no longer accepts the session's key
/// (revoked or expired): the middleware ends the session.
#[derive(Debug, Clone, Copy)]
pub struct KeyRefused;

impl ConsoleError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Control(status) => kind_of(status.code()),
            Self::ApiKey(_) | Self::Invalid(_) => ErrorKind::InvalidArgument,
            Self::Render(_) => ErrorKind::Internal,
            Self::NotFound => ErrorKind::NotFound,
        }
    }

    /// What the user may read.
    pub fn user_message(&self) -> Option<String> {
        match self {
            Self::Control(status) => match kind_of(status.code()) {
                ErrorKind::InvalidArgument
                | ErrorKind::NotFound
                | ErrorKind::AlreadyExists
                | ErrorKind::PermissionDenied
                | ErrorKind::Gone => Some(status.message().to_owned()),
                _ => None,
            },
            Self::Invalid(message) => Some(message.clone()),
            Self::ApiKey(_) | Self::Render(_) | Self::NotFound => None,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        if kind == ErrorKind::Internal || kind == ErrorKind::Unavailable {
            tracing::error!(error = %foco_runtime::error_chain(&self), "page failed");
        }
        let mut response = (kind.http_status(), kind.slug()).into_response();
        if kind == ErrorKind::Unauthenticated {
            response.extensions_mut().insert(KeyRefused);
        }
        response.extensions_mut().insert(ErrorPage {
            kind,
            message: self.user_message(),
        });
        response
    }
}

/// The kind of a status control answered with.
pub fn kind_of(code: tonic::Code) -> ErrorKind {
    match code {
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange => ErrorKind::InvalidArgument,
        tonic::Code::Unauthenticated => ErrorKind::Unauthenticated,
        tonic::Code::PermissionDenied => ErrorKind::PermissionDenied,
        tonic::Code::NotFound => ErrorKind::NotFound,
        tonic::Code::AlreadyExists => ErrorKind::AlreadyExists,
        tonic::Code::FailedPrecondition => ErrorKind::Gone,
        tonic::Code::ResourceExhausted => ErrorKind::RateLimited,
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}
