//! RPC benchmarks: call round-trip latency (p50/p99) and end-to-end cast throughput, for the
//! in-process transport and for AMQP against a real broker (`KILN_BENCH_AMQP_URL`, else
//! `KILN_TEST_AMQP_URL`, else the local RabbitMQ as guest; skipped if unreachable).
//! Run: `cargo bench -p kiln --bench rpc`. Prints a markdown table; takes well under a minute.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln::rpc::amqp::AmqpTransport;
use kiln::rpc::inproc::InProcTransport;
use kiln::rpc::server::RpcServer;
use kiln::rpc::{Dispatcher, RemoteError, RequestContext, RpcClient, Transport, Version};

const WARMUP_CALLS: usize = 200;
/// Each measured phase stops at its count or its time budget, whichever comes first.
const CALL_BUDGET: Duration = Duration::from_secs(6);
const CAST_BUDGET: Duration = Duration::from_secs(6);
const CAST_PRODUCERS: u64 = 8;

struct Row {
    transport: &'static str,
    calls: usize,
    p50: Duration,
    p99: Duration,
    casts: u64,
    casts_per_sec: f64,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let mut rows = Vec::new();
        let inproc = InProcTransport::new();
        rows.push(bench("inproc", Arc::new(inproc.clone()), Arc::new(inproc), 20_000, 200_000).await);

        let url = std::env::var("KILN_BENCH_AMQP_URL")
            .or_else(|_| std::env::var("KILN_TEST_AMQP_URL"))
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        match amqp_pair(&url).await {
            Ok((server, client)) => rows.push(bench("amqp", server, client, 5_000, 50_000).await),
            Err(e) => println!("AMQP skipped: {e}"),
        }

        println!();
        println!("| transport | call p50 | call p99 | calls measured | cast throughput | casts measured |");
        println!("|---|---|---|---|---|---|");
        for r in rows {
            println!(
                "| {} | {:.0} µs | {:.0} µs | {} | {:.0} msg/s | {} |",
                r.transport,
                r.p50.as_secs_f64() * 1e6,
                r.p99.as_secs_f64() * 1e6,
                r.calls,
                r.casts_per_sec,
                r.casts
            );
        }
    });
}

/// A server and a client transport on separate connections, if the broker answers quickly.
async fn amqp_pair(url: &str) -> Result<(Arc<dyn Transport>, Arc<dyn Transport>), String> {
    let parsed = url
        .split('@')
        .next_back()
        .and_then(|rest| rest.trim_start_matches("amqp://").split('/').next())
        .unwrap_or("127.0.0.1:5672")
        .to_string();
    let addr = if parsed.contains(':') {
        parsed
    } else {
        format!("{parsed}:5672")
    };
    match tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("the broker at {addr} is unreachable: {e}")),
        Err(_) => return Err(format!("the broker at {addr} did not answer within 1 s")),
    }
    let ns = format!(
        "kilnbench{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let connect = |ns: String| async move {
        tokio::time::timeout(
            Duration::from_secs(10),
            AmqpTransport::connect(url, &ns, 64),
        )
        .await
        .map_err(|_| "connecting took over 10 s".to_string())?
        .map_err(|e| e.to_string())
    };
    let server = connect(ns.clone()).await?;
    let client = connect(ns).await?;
    Ok((Arc::new(server), Arc::new(client)))
}

async fn bench(
    name: &'static str,
    server_transport: Arc<dyn Transport>,
    client_transport: Arc<dyn Transport>,
    max_calls: usize,
    max_casts: u64,
) -> Row {
    let handled = Arc::new(AtomicU64::new(0));
    let mut dispatcher = Dispatcher::new(Version::new(1, 0));
    dispatcher.register("echo", |_ctx, v: serde_json::Value| async move {
        Ok::<_, RemoteError>(v)
    });
    let counter = handled.clone();
    dispatcher.register("count", move |_ctx, _: serde_json::Value| {
        counter.fetch_add(1, Ordering::Relaxed);
        async { Ok::<_, RemoteError>(()) }
    });
    let listener = server_transport
        .listen("bench", "b1")
        .await
        .expect("listen");
    let server = RpcServer::spawn(server_transport, listener, Arc::new(dispatcher), 64);
    let client = RpcClient::new(client_transport, "bench", Duration::from_secs(10));
    let ctx = RequestContext::internal();
    let payload =
        serde_json::json!({"volume_id": "6f1c2a8e-0000-4000-8000-000000000000", "size": 10});
    let v = Version::new(1, 0);

    for _ in 0..WARMUP_CALLS {
        let _: serde_json::Value = client
            .call(&ctx, None, "echo", v, &payload)
            .await
            .expect("warm-up call");
    }
    let mut latencies = Vec::with_capacity(max_calls);
    let started = Instant::now();
    while latencies.len() < max_calls && started.elapsed() < CALL_BUDGET {
        let t = Instant::now();
        let _: serde_json::Value = client
            .call(&ctx, None, "echo", v, &payload)
            .await
            .expect("call");
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];

    // Casts: producers send until the count or the budget, then wait until all are handled.
    let claimed = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let producers: Vec<_> = (0..CAST_PRODUCERS)
        .map(|_| {
            let (client, ctx, payload) = (client.clone(), ctx.clone(), payload.clone());
            let (claimed, sent) = (claimed.clone(), sent.clone());
            tokio::spawn(async move {
                while started.elapsed() < CAST_BUDGET
                    && claimed.fetch_add(1, Ordering::Relaxed) < max_casts
                {
                    client
                        .cast(&ctx, None, "count", v, &payload)
                        .await
                        .expect("cast");
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for p in producers {
        p.await.expect("producer");
    }
    let casts = sent.load(Ordering::Relaxed);
    while handled.load(Ordering::Relaxed) < casts {
        if started.elapsed() > CAST_BUDGET * 3 {
            println!(
                "{name}: only {} of {casts} casts handled",
                handled.load(Ordering::Relaxed)
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    server.shutdown(Duration::from_secs(5)).await;
    Row {
        transport: name,
        calls: latencies.len(),
        p50: pct(0.50),
        p99: pct(0.99),
        casts: handled.load(Ordering::Relaxed),
        casts_per_sec: handled.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
    }
}
