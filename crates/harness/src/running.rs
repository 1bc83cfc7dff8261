//! Services run in tests on tasks of their own, watched: one that fails or
//! quits mid-test fails the test, even when what the test checks looks fine.

use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What went wrong with the services of a test: a service whose run failed,
/// or ended before it was asked to stop. The test fails on it when the
/// services stop or are dropped, whatever the test itself saw.
pub type Crashes = Arc<Mutex<Vec<String>>>;

/// A service's `run` on a task of its own, watched for crashes.
pub struct Running {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<()>,
}

impl Running {
    pub fn spawn<F, E>(
        name: &'static str,
        crashes: &Crashes,
        shutdown: CancellationToken,
        run: F,
    ) -> Self
    where
        F: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Debug,
    {
        let crashes = crashes.clone();
        let asked = shutdown.clone();
        let task = tokio::spawn(async move {
            let crash = match run.await {
                Err(error) => Some(format!("{name} failed: {error:?}")),
                Ok(()) if !asked.is_cancelled() => {
                    Some(format!("{name} stopped without being asked to"))
                }
                Ok(()) => None,
            };
            if let Some(crash) = crash {
                crashes.lock().unwrap().push(crash);
            }
        });
        Self { shutdown, task }
    }
}

/// Fails the test if a service failed or ended on its own so far.
pub fn assert_no_crash(crashes: &Crashes) {
    let crashes = crashes.lock().unwrap();
    assert!(crashes.is_empty(), "services crashed: {crashes:?}");
}

#[cfg(test)]
mod tests {
    use super::{Crashes, Running};
    use tokio_util::sync::CancellationToken;

    async fn outcome_of(result: Result<(), &'static str>, asked_to_stop: bool) -> Vec<String> {
        let crashes = Crashes::default();
        let shutdown = CancellationToken::new();
        if asked_to_stop {
            shutdown.cancel();
        }
        let running = Running::spawn("sender", &crashes, shutdown, async move { result });
        running.task.await.unwrap();
        crashes.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn a_service_that_fails_or_ends_on_its_own_is_a_crash() {
        assert_eq!(
            outcome_of(Err("bus gone"), true).await,
            ["sender failed: \"bus gone\""]
        );
        assert_eq!(
            outcome_of(Ok(()), false).await,
            ["sender stopped without being asked to"]
        );
        assert!(outcome_of(Ok(()), true).await.is_empty());
    }
}
