//! Supervision of a service's long-running tasks: a task that fails or panics is restarted
//! after a back-off (doubling from 100 ms up to 30 s, reset once it has run for a minute);
//! a task that returns `Ok` ends; every task ends when the service shuts down.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info};

/// Back-off policy of the supervisor.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A run at least this long resets the delay to `initial`.
    pub healthy_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(60),
        }
    }
}

/// Run `make()` under supervision until it returns `Ok` or `shutdown` turns true.
pub fn supervise<F, Fut>(
    name: &'static str,
    service: String,
    mut shutdown: watch::Receiver<bool>,
    backoff: Backoff,
    mut make: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut delay = backoff.initial;
        let mut restarts: u64 = 0;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let started = Instant::now();
            let outcome = tokio::select! {
                r = AssertUnwindSafe(make()).catch_unwind() => r,
                _ = shutdown.changed() => return,
            };
            let reason = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(panic) => panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into()),
            };
            if started.elapsed() >= backoff.healthy_after {
                delay = backoff.initial;
            }
            restarts += 1;
            error!(task = name, service = %service, restarts, retry_in_ms = delay.as_millis() as u64, reason = %reason, "service task crashed; restarting");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return,
            }
            delay = (delay * 2).min(backoff.max);
            info!(task = name, service = %service, "restarting service task");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn crashed_task_is_restarted_with_backoff_until_it_succeeds() {
        let (_tx, rx) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let backoff = Backoff {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(20),
            healthy_after: Duration::from_secs(60),
        };
        let h = supervise("t", "svc".into(), rx, backoff, move || {
            let r = r.clone();
            async move {
                let n = r.fetch_add(1, Ordering::SeqCst);
                match n {
                    0 => panic!("boom"),
                    1 => Err("failed".to_string()),
                    _ => Ok(()),
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(5), h)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "panic and error must both be restarted"
        );
    }

    #[tokio::test]
    async fn shutdown_ends_a_running_task() {
        let (tx, rx) = watch::channel(false);
        let h = supervise("t", "svc".into(), rx, Backoff::default(), || async {
            futures::future::pending::<()>().await;
            Ok(())
        });
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), h)
            .await
            .unwrap()
            .unwrap();
    }
}
