//! API benchmark (issue 6): a real `kiln all-in-one` (file backend, SQLite, in-process bus)
//! driven over HTTP. `GET /volumes/detail` p50 / p95 with 100 and 1000 volumes, and 100 creates
//! at concurrency 10 measured from `POST` to `available` (total and p50 / p95).
//!
//! Run against a release binary: `cargo build --release -p kiln && KILN_BIN=<target>/release/kiln
//! cargo bench -p kiln-integration-tests --bench api`. Numbers go to docs/benchmarks.md.

use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{http, Cloud};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Create one volume and wait until it is available; the time it took.
fn create_until_available(cloud: &Cloud) -> Duration {
    let started = Instant::now();
    let (status, body) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(status, 202, "{body}");
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    loop {
        let (_, v) = cloud.show(&id);
        match v["volume"]["status"].as_str() {
            Some("available") => return started.elapsed(),
            Some("creating") => std::thread::sleep(Duration::from_millis(2)),
            other => panic!("volume {id} ended {other:?}"),
        }
    }
}

fn detail_latency(cloud: &Cloud, rounds: usize) -> (Duration, Duration) {
    let url = format!("{}/volumes/detail", cloud.api);
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            let (status, _) = http("GET", &url, None);
            assert_eq!(status, 200);
            t.elapsed()
        })
        .collect();
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.95))
}

fn main() {
    let binary = std::env::var("KILN_BIN").unwrap_or_else(|_| "debug build".into());
    let cloud = Cloud::start(
        "host = \"bench\"\nenabled_backends = [\"file\"]\nbackend_stats_polling_interval = 3600\n\
         [backends.file]\ndriver = \"file\"\ncapacity_gb = 100000\nmax_over_subscription_ratio = 1.0\n",
    );
    let (status, body) = http(
        "PUT",
        &format!("{}/os-quota-sets/demo", cloud.api),
        Some(json!({"quota_set": {"volumes": -1, "gigabytes": -1, "per_volume_gigabytes": -1}})),
    );
    assert_eq!(status, 200, "{body}");
    println!("kiln: {binary}");

    // 100 creates at concurrency 10, create → available.
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..10)
            .map(|_| {
                s.spawn(|| {
                    (0..10)
                        .map(|_| create_until_available(&cloud))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let total = started.elapsed();
    latencies.sort();
    println!(
        "100 creates at concurrency 10: total {:.0} ms, create→available p50 {:.1} ms, p95 {:.1} ms",
        ms(total),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.95))
    );

    let (p50, p95) = detail_latency(&cloud, 200);
    println!(
        "GET /volumes/detail, 100 volumes: p50 {:.2} ms, p95 {:.2} ms",
        ms(p50),
        ms(p95)
    );

    // Grow to 1000 volumes (concurrency 10 again), then list.
    std::thread::scope(|s| {
        for _ in 0..10 {
            s.spawn(|| {
                for _ in 0..90 {
                    create_until_available(&cloud);
                }
            });
        }
    });
    let (p50, p95) = detail_latency(&cloud, 50);
    println!(
        "GET /volumes/detail, 1000 volumes: p50 {:.2} ms, p95 {:.2} ms",
        ms(p50),
        ms(p95)
    );
}
