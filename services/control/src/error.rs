//! Errors of the control service: `ApiError` for one request (mapped to a gRPC
//! status through `foco_runtime::ErrorKind`, the one table), and `ControlError`
//! for start-up and serving.

use foco_runtime::ErrorKind;

use crate::crypto::CryptoError;

/// What a request can fail with. The `Display` of client-facing variants is the
/// message the client sees; internal variants are logged with their cause chain
/// and answered with a generic message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidArgument(String),
    /// An invalid request field: answered with a `google.rpc.BadRequest` detail
    /// naming it, so a client can point at the field.
    #[error("{field}: {message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    #[error("missing or invalid API key (send `authorization: Bearer <key>`)")]
    Unauthenticated,
    /// A known key that no longer works: revoked or expired.
    #[error("{0}")]
    KeyRefused(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("database query failed")]
    Database(#[from] sqlx::Error),
    #[error("stored secret could not be used")]
    Crypto(#[from] CryptoError),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    /// A dependency other than the database (NATS) cannot take the request now.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArgument(message.into())
    }

    pub fn invalid_field(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::PermissionDenied(message.into())
    }

    /// A unique violation becomes `AlreadyExists` with a domain message; any other
    /// database error stays internal.
    pub fn unique_or(error: sqlx::Error, message: impl Into<String>) -> Self {
        match &error {
            sqlx::Error::Database(database) if database.is_unique_violation() => {
                Self::AlreadyExists(message.into())
            }
            _ => Self::Database(error),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidArgument(_) | Self::InvalidField { .. } => ErrorKind::InvalidArgument,
            Self::Unauthenticated | Self::KeyRefused(_) => ErrorKind::Unauthenticated,
            Self::PermissionDenied(_) => ErrorKind::PermissionDenied,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Self::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            Self::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_))
            | Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Database(_) | Self::Crypto(_) | Self::Corrupt(_) => ErrorKind::Internal,
        }
    }

    /// The status sent to the client. Server-side failures are logged here, once,
    /// with their cause chain; the client gets a safe, stable message.
    pub fn into_status(self, method: &'static str) -> tonic::Status {
        let kind = self.kind();
        match kind {
            ErrorKind::Internal | ErrorKind::Unavailable => {
                tracing::error!(rpc.method = method, error = %cause_chain(&self), "request failed");
                let message = if let Self::Unavailable(message) = &self {
                    message.as_str()
                } else if kind == ErrorKind::Unavailable {
                    "the database is unavailable, retry later"
                } else {
                    "internal error"
                };
                kind.grpc_status(message)
            }
            _ => match &self {
                Self::InvalidField { field, message } => {
                    use tonic_types::{ErrorDetails, StatusExt as _};
                    tonic::Status::with_error_details(
                        kind.grpc_code(),
                        self.to_string(),
                        ErrorDetails::with_bad_request_violation(*field, message.clone()),
                    )
                }
                _ => kind.grpc_status(self.to_string()),
            },
        }
    }
}

pub use foco_runtime::error_chain as cause_chain;

/// Start-up and serving failures.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot connect to Postgres")]
    Database(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Nats(#[from] foco_bus::ConnectError),
    #[error("cannot bind {what} listener on {addr}")]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("gRPC reflection set-up failed")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed")]
    Serve(#[from] tonic::transport::Error),
    #[error("admin server failed")]
    Admin(#[source] std::io::Error),
    #[error("gRPC TLS")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot create the configured service keys")]
    ServiceKeys(#[source] sqlx::Error),
    #[error("the status webhooks' HTTP client could not be built")]
    WebhookClient(#[from] foco_outbound::ClientBuildError),
}
