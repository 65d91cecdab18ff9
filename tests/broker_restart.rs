//! Nothing accepted is lost when the broker restarts: casts confirmed before, during and after
//! a RabbitMQ restart (`rabbitmqctl stop_app` / `start_app`) all reach the server, and calls
//! work again afterwards. Its own test binary because it restarts the shared broker; cargo
//! runs test binaries one at a time, so no other test sees the outage.

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln::rpc::amqp::AmqpTransport;
use kiln::rpc::server::RpcServer;
use kiln::rpc::{Dispatcher, RemoteError, RequestContext, RpcClient, Transport, Version};
use kiln_integration_tests::{amqp_url, unique_namespace, wait_for};

const CASTS: u64 = 2000;
const PRODUCERS: u64 = 4;
/// Stop the broker once this many casts were confirmed, so the outage falls mid-stream.
const STOP_AFTER: u64 = 400;

fn rabbitmqctl(args: &[&str]) {
    let output = match Command::new("rabbitmqctl").args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "rabbitmqctl is not on PATH: this test restarts the local RabbitMQ with \
             `rabbitmqctl stop_app` / `start_app`; install the RabbitMQ CLI tools (and run as a \
             user allowed to use them, e.g. root)"
        ),
        Err(e) => panic!("cannot run rabbitmqctl {args:?}: {e}"),
    };
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Restarts the broker's application when dropped, so a failing test never leaves it stopped.
struct BrokerStopped {
    started_again: bool,
}

impl BrokerStopped {
    fn stop() -> Self {
        rabbitmqctl(&["stop_app"]);
        BrokerStopped {
            started_again: false,
        }
    }

    fn start(mut self) {
        self.started_again = true;
        rabbitmqctl(&["start_app"]);
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        if !self.started_again {
            rabbitmqctl(&["start_app"]);
        }
    }
}

#[derive(Default)]
struct Seen {
    unique: Mutex<HashSet<u64>>,
    deliveries: AtomicU64,
}

fn dispatcher(seen: Arc<Seen>) -> Arc<Dispatcher> {
    #[derive(serde::Deserialize)]
    struct Args {
        n: u64,
    }
    let mut d = Dispatcher::new(Version::new(1, 0));
    d.register("record", move |_ctx, a: Args| {
        let seen = seen.clone();
        async move {
            seen.deliveries.fetch_add(1, Ordering::Relaxed);
            seen.unique.lock().unwrap().insert(a.n);
            Ok::<_, RemoteError>(())
        }
    });
    d.register("echo", |_ctx, a: serde_json::Value| async move {
        Ok::<_, RemoteError>(a)
    });
    Arc::new(d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_confirmed_cast_is_lost_and_calls_work_across_a_broker_restart() {
    rabbitmqctl(&["status"]); // fail early and clearly if the CLI is missing or not allowed
    let url = amqp_url();
    let ns = unique_namespace("kilntestrestart");
    let server_transport: Arc<dyn Transport> =
        Arc::new(AmqpTransport::connect(&url, &ns, 32).await.unwrap());
    let seen = Arc::new(Seen::default());
    let listener = server_transport.listen("volume", "host1").await.unwrap();
    let server = RpcServer::spawn(
        server_transport.clone(),
        listener,
        dispatcher(seen.clone()),
        16,
    );
    let client = RpcClient::new(
        Arc::new(AmqpTransport::connect(&url, &ns, 32).await.unwrap()),
        "volume",
        Duration::from_secs(20),
    );

    let confirmed = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let client = client.clone();
            let confirmed = confirmed.clone();
            tokio::spawn(async move {
                let ctx = RequestContext::internal();
                for n in (p..CASTS).step_by(PRODUCERS as usize) {
                    client
                        .cast(
                            &ctx,
                            None,
                            "record",
                            Version::new(1, 0),
                            serde_json::json!({ "n": n }),
                        )
                        .await
                        .unwrap_or_else(|e| panic!("cast {n} failed: {e}"));
                    confirmed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(4)).await;
                }
            })
        })
        .collect();

    // Restart the broker in the middle of the stream.
    let reached = wait_for(Duration::from_secs(60), || {
        let c = confirmed.load(Ordering::Relaxed);
        async move { (c >= STOP_AFTER).then_some(c) }
    })
    .await
    .expect("the producers did not get going");
    tokio::task::spawn_blocking(|| {
        let stopped = BrokerStopped::stop();
        std::thread::sleep(Duration::from_secs(2));
        stopped.start();
    })
    .await
    .expect("restarting the broker");
    let after_restart = Instant::now();
    let during = confirmed.load(Ordering::Relaxed);
    assert!(during < CASTS, "the producers finished before the broker came back ({during} of {CASTS}; stopped at {reached}): the restart did not fall mid-stream");

    for p in producers {
        tokio::time::timeout(Duration::from_secs(180), p)
            .await
            .expect("producers did not finish within 3 minutes of the restart")
            .expect("a producer panicked");
    }
    let all = wait_for(Duration::from_secs(60), || {
        let n = seen.unique.lock().unwrap().len() as u64;
        async move { (n == CASTS).then_some(()) }
    })
    .await;
    let unique = seen.unique.lock().unwrap().clone();
    let missing: Vec<u64> = (0..CASTS)
        .filter(|n| !unique.contains(n))
        .take(20)
        .collect();
    assert!(
        all.is_some(),
        "{} of {CASTS} casts never arrived (first missing: {missing:?})",
        CASTS - unique.len() as u64
    );
    println!(
        "all {CASTS} casts arrived ({} deliveries, {} duplicates); caught up {:?} after the restart",
        seen.deliveries.load(Ordering::Relaxed),
        seen.deliveries.load(Ordering::Relaxed) - CASTS,
        after_restart.elapsed()
    );

    let echoed: serde_json::Value = client
        .call(
            &RequestContext::internal(),
            None,
            "echo",
            Version::new(1, 0),
            serde_json::json!({"after": "restart"}),
        )
        .await
        .expect("a call after the broker restart");
    assert_eq!(echoed, serde_json::json!({"after": "restart"}));
    assert!(server.shutdown(Duration::from_secs(10)).await);
}
