//! Shared helpers for Kiln's end-to-end tests: where the real servers are, fresh databases,
//! and starting / stopping real `kiln` processes.

use std::time::Duration;

/// The RabbitMQ the tests use (`KILN_TEST_AMQP_URL`, default the local broker as guest).
pub fn amqp_url() -> String {
    std::env::var("KILN_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A namespace no other test uses, so tests sharing one broker never see each other's queues.
pub fn unique_namespace(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Poll `f` every 50 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
pub mod cloud;
pub mod driver_suite;
pub mod plugin_tools;
pub mod process;
pub mod storage_tools;
