//! What a command can fail with; `main` prints it and exits non-zero.

use crate::manifest::ManifestError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("no API key: pass --api-key or set FOCO_API_KEY (or FOCO_ADMIN_API_KEY)")]
    MissingApiKey,
    #[error("no account: pass --account or set FOCO_ACCOUNT")]
    MissingAccount,
    #[error("--account {flag:?} does not match the file's account {file:?}")]
    AccountMismatch { flag: String, file: String },
    #[error("cannot use the control API at {url}: {message}")]
    Connect { url: String, message: String },
    /// A call refused or failed; `what` says which, `context` where it came from
    /// (for apply: the file and YAML location).
    #[error("{context}{what}: {}", describe_status(status))]
    Api {
        context: String,
        what: String,
        status: tonic::Status,
    },
    /// A command-line input (payload file, header) that cannot be used.
    #[error("{what}: {message}")]
    Input { what: String, message: String },
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("cannot encode JSON output: {0}")]
    Json(#[from] serde_json::Error),
}

impl CliError {
    pub fn api(what: impl Into<String>, status: tonic::Status) -> Self {
        Self::Api {
            context: String::new(),
            what: what.into(),
            status,
        }
    }
}

fn describe_status(status: &tonic::Status) -> String {
    let reason = match status.code() {
        tonic::Code::Unavailable => "control is unreachable",
        tonic::Code::Unauthenticated => "the API key was not accepted",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::NotFound => "not found",
        tonic::Code::InvalidArgument => "invalid",
        tonic::Code::AlreadyExists => "already exists",
        tonic::Code::FailedPrecondition => "refused",
        _ => "failed",
    };
    if status.message().is_empty() {
        reason.to_owned()
    } else {
        format!("{reason}: {}", status.message())
    }
}
