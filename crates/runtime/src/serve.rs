//! Running a service's listeners side by side (its main server and the admin
//! server): one that fails stops the others, and each one's end is reported by
//! name.

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// A listener that stopped with an error (or whose task panicked).
#[derive(Debug, thiserror::Error)]
#[error("the {server} server failed")]
pub struct ServeError {
    pub server: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// Runs `serve`; if it fails, cancels `stop` so the other listeners stop too
/// and `run` can report the failure.
pub async fn stop_on_error(
    stop: CancellationToken,
    serve: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    let result = serve.await;
    if result.is_err() {
        stop.cancel();
    }
    result
}

/// The outcome of a listener's task.
pub fn joined(
    server: &'static str,
    joined: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> Result<(), ServeError> {
    match joined {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(ServeError { server, source }),
        Err(join_error) => Err(ServeError {
            server,
            source: std::io::Error::other(join_error),
        }),
    }
}
