//! [`Aborts`]: the clean-ups of multipart uploads (aborts, and the search for uploads a
//! retried create left behind) run as tasks of their own, so nothing that ends a record
//! early (the deadline's cut-off drops its future) ends them too. Each clean-up is bounded
//! by [`ABORT_TIMEOUT`]; the Lambda loop and the CLI wait for the outstanding ones (bounded)
//! before they answer or exit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long one clean-up (its retries included) may take.
pub const ABORT_TIMEOUT: Duration = Duration::from_secs(30);

/// The clean-up tasks in flight (shared by clones; one per exporter).
#[derive(Debug, Clone)]
pub struct Aborts(Arc<watch::Sender<usize>>);

impl Default for Aborts {
    fn default() -> Self {
        Aborts(Arc::new(watch::Sender::new(0)))
    }
}

impl Aborts {
    /// Runs `work` as a task of its own: it runs to completion even when whoever spawned it
    /// is dropped. Awaiting the handle is optional. `work` bounds itself ([`bounded`]).
    pub fn spawn<F>(&self, work: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.send_modify(|n| *n += 1);
        let outstanding = Outstanding(self.0.clone());
        tokio::spawn(async move {
            let _outstanding = outstanding;
            work.await;
        })
    }

    /// Clean-ups still running.
    pub fn outstanding(&self) -> usize {
        *self.0.borrow()
    }

    /// Waits until no clean-up runs, for at most `within`; whether none is left.
    pub async fn settle(&self, within: Duration) -> bool {
        let mut idle = self.0.subscribe();
        let settled = tokio::time::timeout(within, idle.wait_for(|n| *n == 0))
            .await
            .is_ok();
        if !settled {
            tracing::warn!(
                outstanding = self.outstanding(),
                "multipart clean-ups still running; a lifecycle rule for incomplete uploads will remove what they leave"
            );
        }
        settled
    }
}

/// `work` (a clean-up: `what`), given up after [`ABORT_TIMEOUT`].
pub async fn bounded(what: &'static str, work: impl Future<Output = ()>) {
    if tokio::time::timeout(ABORT_TIMEOUT, work).await.is_err() {
        tracing::warn!(
            what,
            timeout = ?ABORT_TIMEOUT,
            "multipart clean-up timed out; a lifecycle rule for incomplete uploads will remove what is left"
        );
    }
}

/// Counts one task as outstanding until it ends (or is dropped with its runtime).
struct Outstanding(Arc<watch::Sender<usize>>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spawned_clean_up_outlives_its_spawner_and_is_awaited() {
        let aborts = Aborts::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let spawner = {
            let aborts = aborts.clone();
            async move {
                aborts.spawn(async move {
                    let _ = rx.await;
                });
                std::future::pending::<()>().await;
            }
        };
        // The spawner is dropped (as the cut-off drops a record); its clean-up is not.
        let _ = tokio::time::timeout(Duration::from_millis(10), spawner).await;
        assert_eq!(aborts.outstanding(), 1);
        assert!(!aborts.settle(Duration::from_millis(10)).await);
        tx.send(()).unwrap();
        assert!(aborts.settle(Duration::from_secs(5)).await);
        assert_eq!(aborts.outstanding(), 0);
    }
}
