//! SIGTERM/SIGINT become one cancelled `CancellationToken` that is passed down to
//! every server and consumer loop.

use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGTERM or SIGINT.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received, draining");
        token.cancel();
    });
}

/// A service's start: a token cancelled at the first SIGTERM or SIGINT, and
/// `build` run with it until it is done or the signal comes. `None` when the
/// signal came first (a start still waiting for its dependencies ends there,
/// and the process exits cleanly); otherwise what `build` gave.
pub async fn build_until_signal<T, F>(build: impl FnOnce(CancellationToken) -> F) -> Option<T>
where
    F: Future<Output = T>,
{
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    shutdown
        .clone()
        .run_until_cancelled_owned(build(shutdown))
        .await
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
