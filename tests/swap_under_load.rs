//! The scheduler issue's acceptance, multi-process on PostgreSQL and RabbitMQ with two
//! scheduler processes: while a load generator sends ≥ 100 volume creates per second, the
//! Capacity filter is swapped for a different, *uploaded* component — a C filter scaffolded by
//! `kiln plugin new --lang c` and built by `kiln plugin build` (it keeps pools with at least
//! `min_free_gb` free), uploaded through `POST /kiln-plugins` — and swapped back (rollback).
//!
//! The two chains place differently: both prefer the pool with the least free space (b, 10 000
//! GB, over a, 100 000 GB); the builtin CapacityFilter keeps both pools, so the old chain puts
//! volumes on b, while the uploaded filter with `min_free_gb = 50000` removes b, so the new
//! chain puts them on a. Checked for every created volume: it is `available` (zero failed
//! requests), it was placed once, by one scheduler, and where it landed
//! (`os-vol-host-attr:host`) is where the chain that scheduler had active when it started the
//! request places volumes (the chain is taken from the scheduler's own activation numbering,
//! not from the placement's label). Both schedulers switch within 1 s of each activation,
//! the new chain placed volumes, and after the rollback volumes land on b again.
//!
//! The C toolchain (clang-19, wasi-libc, `kiln-componentize` beside `kiln`) is what
//! `scripts/build-examples` installs; a missing one fails with `kiln plugin build`'s message.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kiln_integration_tests::process::{self as p, has, Kiln};
use serde_json::{json, Value};

fn config(db_url: &str, ns: &str, listen: &str, vols: &Path, host: &str, metrics: &str) -> String {
    format!(
        r#"host = "{host}"
report_interval = 1
service_down_time = 5
periodic_interval = 5
periodic_fuzzy_delay = 0
backend_stats_polling_interval = 1
enabled_backends = ["a", "b"]
[scheduler]
metrics_listen = "{metrics}"
[database]
url = "{db_url}"
max_connections = 20
[messaging]
url = "{amqp}"
namespace = "{ns}"
[api]
listen = "{listen}"
[backends.a]
path = "{vols}/a"
capacity_gb = 100000.0
[backends.b]
path = "{vols}/b"
capacity_gb = 10000.0
max_over_subscription_ratio = 1.0
"#,
        amqp = kiln_integration_tests::amqp_url(),
        vols = vols.display()
    )
}

/// Seconds since midnight UTC of now, and of a log line's leading RFC 3339 timestamp.
fn now_of_day() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        % 86_400.0
}

fn line_of_day(line: &str) -> Option<f64> {
    let t = line.get(11..26)?; // HH:MM:SS.ffffff
    let h: f64 = t.get(0..2)?.parse().ok()?;
    let m: f64 = t.get(3..5)?.parse().ok()?;
    let s: f64 = t.get(6..)?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// A chain preferring the pool with the least free space, with `capacity` as its capacity
/// filter stage.
fn chain(name: &str, capacity: Value) -> Value {
    json!({"chain": {"name": name,
        "filters": [{"plugin": "availability_zone_filter"}, capacity,
                    {"plugin": "capabilities_filter"}],
        "weighers": [{"plugin": "capacity_weigher", "multiplier": -1.0,
                      "config": {"capacity_weight_multiplier": "-1"}}]}})
}

/// The old chain (builtin CapacityFilter) and the new one (the uploaded filter).
const OLD: &str = "small-first";
const NEW: &str = "min-free";

/// Where each chain puts a 1 GB volume.
fn expected_backend(chain: &str) -> &'static str {
    match chain {
        OLD => "node1@b",
        NEW => "node1@a",
        other => panic!("no placement expected of chain `{other}`"),
    }
}

/// Scaffold and build the C filter (`min_free_gb`, default 10) as an author would; its bytes.
fn build_c_filter(dir: &Path) -> Vec<u8> {
    let (code, out, err) = p::kiln_run(
        dir,
        None,
        &[
            "plugin",
            "new",
            "--lang",
            "c",
            "--kind",
            "filter",
            "floor-filter",
        ],
    );
    assert_eq!(code, 0, "kiln plugin new: {out}{err}");
    let project = dir.join("floor-filter");
    let (code, out, err) = p::kiln_run(&project, None, &["plugin", "build"]);
    assert_eq!(
        code, 0,
        "kiln plugin build (clang-19, wasi-libc and kiln-componentize come with \
         scripts/build-examples): {out}{err}"
    );
    std::fs::read(project.join("build/floor_filter.wasm")).expect("the built component")
}

/// When `k`'s log first says chain `name` became active at or after `since` (seconds of day),
/// waiting up to 10 s.
fn activated_at(k: &Kiln, name: &str, since: f64) -> f64 {
    let started = Instant::now();
    loop {
        let text = k.log_text();
        let first = text
            .lines()
            .filter(|l| l.contains("scheduler chain active") && chain_of(l) == name)
            .filter_map(line_of_day)
            .find(|t| *t >= since);
        if let Some(t) = first {
            return t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} never active on {}:\n{}",
            k.name,
            activation_lines(k)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `k`'s log lines about its chain, for failure messages.
fn activation_lines(k: &Kiln) -> String {
    k.log_text()
        .lines()
        .filter(|l| l.contains("chain"))
        .filter(|l| !l.contains("volume placed"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A number after `key=` in a log line.
fn field(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(&format!("{key}="))? + key.len() + 1..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The chain a log line names (`chain=v2 small-first`).
fn chain_of(line: &str) -> String {
    let Some(at) = line.find("chain=") else {
        return "other".into();
    };
    let rest = &line[at + "chain=".len()..];
    for name in [OLD, NEW] {
        if rest
            .split_whitespace()
            .nth(1)
            .is_some_and(|n| n.trim_end_matches(['"', ','].as_ref()) == name)
        {
            return name.into();
        }
    }
    "other".into()
}

/// The volume id of a `volume placed` line.
fn volume_of(line: &str) -> Option<String> {
    let rest = &line[line.find("volume_id=")? + "volume_id=".len()..];
    Some(rest.get(..36)?.to_string())
}

/// One placement a scheduler logged: its decision number, the chain its line names, the volume.
struct Placement {
    decision: u64,
    label: String,
    volume: String,
}

/// Every placement and every activation's (decisions made before it, chain), numbered by the
/// scheduler itself, so the order log lines land in does not matter (a placement is logged
/// after its database write, an activation inside the lock).
fn placements_and_activations(text: &str) -> (Vec<Placement>, Vec<(u64, String)>) {
    let mut placed = Vec::new();
    let mut activations = Vec::new();
    for l in text.lines() {
        if l.contains("scheduler chain active") {
            activations.push((field(l, "after_decisions").unwrap_or(0), chain_of(l)));
        } else if l.contains("volume placed") {
            placed.push(Placement {
                decision: field(l, "decision").expect("placements are numbered"),
                label: chain_of(l),
                volume: volume_of(l).expect("placements name their volume"),
            });
        }
    }
    (placed, activations)
}

#[test]
fn capacity_filter_swapped_for_an_uploaded_component_under_load_places_every_volume_by_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    // Built first: a toolchain problem shows before any process starts.
    let filter = build_c_filter(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let db_url = rt.block_on(p::fresh_pg_database());
    let ns = kiln_integration_tests::unique_namespace("swap");
    let listen = format!("127.0.0.1:{}", p::free_port());
    let vols = dir.path().join("vols");
    let c1 = dir.path().join("node1.toml");
    let c2 = dir.path().join("node2.toml");
    let m1 = format!("127.0.0.1:{}", p::free_port());
    let m2 = format!("127.0.0.1:{}", p::free_port());
    std::fs::write(&c1, config(&db_url, &ns, &listen, &vols, "node1", &m1)).unwrap();
    std::fs::write(&c2, config(&db_url, &ns, &listen, &vols, "node2", &m2)).unwrap();
    let (code, out, err) = p::kiln_run(dir.path(), Some(&c1), &["db", "sync"]);
    assert_eq!(code, 0, "{out}{err}");
    let _volume = Kiln::start("volume", dir.path(), Some(&c1), &["volume"]);
    let s1 = Kiln::start("scheduler1", dir.path(), Some(&c1), &["scheduler"]);
    let s2 = Kiln::start("scheduler2", dir.path(), Some(&c2), &["scheduler"]);
    let _api = Kiln::start("api", dir.path(), Some(&c1), &["api"]);
    p::wait_status(
        dir.path(),
        Some(&c1),
        Duration::from_secs(60),
        "every service up",
        |rows| {
            has(rows, "kiln-api", "node1", "up")
                && has(rows, "kiln-scheduler", "node1", "up")
                && has(rows, "kiln-scheduler", "node2", "up")
                && has(rows, "kiln-volume", "node1@a", "up")
                && has(rows, "kiln-volume", "node1@b", "up")
        },
    );
    let api = format!("http://{listen}/v3/demo");
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, url: String, body: Option<Value>| {
        let client = client.clone();
        async move {
            let mut r = client
                .request(method, url)
                .header("X-Auth-Token", "admin:demo");
            if let Some(b) = body {
                r = r.json(&b);
            }
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let create = || {
        call(
            reqwest::Method::POST,
            format!("{api}/volumes"),
            Some(json!({"volume": {"size": 1}})),
        )
    };
    let new = rt.block_on(async {
        // Both schedulers hold both pools before the load starts.
        let started = Instant::now();
        loop {
            let (_, d) = call(
                reqwest::Method::POST,
                format!("{api}/kiln-scheduler/dry-run"),
                Some(json!({"volume": {"size": 1}})),
            )
            .await;
            if d["dry_run"]["weighed"]
                .as_array()
                .is_some_and(|w| w.len() == 2)
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "pools never reported: {d}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (s, b) = call(
            reqwest::Method::PUT,
            format!("{api}/os-quota-sets/demo"),
            Some(json!({"quota_set": {"volumes": -1, "gigabytes": -1}})),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        // Upload the C filter through the REST API (validated by a scheduler on upload).
        let resp = client
            .post(format!("{api}/kiln-plugins?name=floor-filter&kind=filter"))
            .header("X-Auth-Token", "admin:demo")
            .header("Content-Type", "application/wasm")
            .body(filter)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let uploaded: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 201, "upload: {uploaded}");
        let sha = uploaded["plugin"]["sha256"].as_str().unwrap().to_string();
        let (s, old) = call(
            reqwest::Method::POST,
            format!("{api}/kiln-chains"),
            Some(chain(OLD, json!({"plugin": "capacity_filter"}))),
        )
        .await;
        assert_eq!(s, 201, "{old}");
        let (s, new) = call(
            reqwest::Method::POST,
            format!("{api}/kiln-chains"),
            Some(chain(
                NEW,
                json!({"plugin": format!("sha256:{sha}"), "config": {"min_free_gb": "50000"}}),
            )),
        )
        .await;
        assert_eq!(s, 201, "{new}");
        let old = old["chain"]["version"].as_i64().unwrap();
        let new = new["chain"]["version"].as_i64().unwrap();
        let (s, b) = call(
            reqwest::Method::POST,
            format!("{api}/kiln-chains/{old}/activate"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        new
    });
    activated_at(&s1, OLD, 0.0);
    activated_at(&s2, OLD, 0.0);

    // The load: one create every 8 ms (125/s) for 4.8 s; swap at 1.3 s, roll back at 2.9 s
    // or 1 s after the swap was answered, whichever is later (so the new chain has time to
    // place volumes even when the activation is slow on a loaded machine).
    let total = 600usize;
    let load_started = Instant::now();
    let mut tasks = Vec::new();
    // The swap and the rollback run beside the generator (which must not pause while an
    // activation validates: the load has to hold during the swap). Each records when its
    // request was sent and when the API answered it: it answers once the chain is validated,
    // recorded active and announced — the activation itself.
    let control = {
        let activate = call(
            reqwest::Method::POST,
            format!("{api}/kiln-chains/{new}/activate"),
            None,
        );
        let rollback = call(
            reqwest::Method::POST,
            format!("{api}/kiln-chains/rollback"),
            None,
        );
        let start = tokio::time::Instant::from_std(load_started);
        rt.spawn(async move {
            tokio::time::sleep_until(start + Duration::from_millis(1300)).await;
            let swap_sent = now_of_day();
            let (s, b) = activate.await;
            let swap = (s, b, swap_sent, now_of_day());
            let due = (start + Duration::from_millis(2900))
                .max(tokio::time::Instant::now() + Duration::from_secs(1));
            tokio::time::sleep_until(due).await;
            let rollback_sent = now_of_day();
            let (s, b) = rollback.await;
            (swap, (s, b, rollback_sent, now_of_day()))
        })
    };
    for i in 0..total {
        let due = Duration::from_millis(8 * i as u64);
        let wait = due.saturating_sub(load_started.elapsed());
        std::thread::sleep(wait);
        tasks.push(rt.spawn(create()));
    }
    let sent = load_started.elapsed();
    let (swap, rollback) = rt.block_on(control).unwrap();
    let (s, b, swap_sent, swap_at) = swap;
    assert_eq!(s, 200, "activation: {b}");
    let (s, b, rollback_sent, rollback_at) = rollback;
    assert_eq!(s, 200, "rollback: {b}");
    for t in tasks {
        let (status, body) = rt.block_on(t).unwrap();
        assert_eq!(status, 202, "every create is accepted: {body}");
    }
    let rate = total as f64 / sent.as_secs_f64();
    let answered = total as f64 / load_started.elapsed().as_secs_f64();
    eprintln!("load: {total} creates sent at {rate:.0}/s, all answered at {answered:.0}/s");
    assert!(
        rate >= 100.0,
        "the load generator sent only {rate:.0} creates/s"
    );
    // After the load, with the rollback in force everywhere: the old placement again.
    for k in [&s1, &s2] {
        let started = Instant::now();
        while k
            .log_text()
            .lines()
            .rfind(|l| l.contains("scheduler chain active"))
            .is_none_or(|l| chain_of(l) != OLD)
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} did not roll back",
                k.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (s, b) = rt.block_on(create());
    assert_eq!(s, 202, "{b}");
    let last = b["volume"]["id"].as_str().unwrap().to_string();
    let total = total + 1;

    // Every volume ends available: zero failed requests.
    let started = Instant::now();
    let volumes = loop {
        let (_, body) = rt.block_on(call(
            reqwest::Method::GET,
            format!("{api}/volumes/detail?limit=10000"),
            None,
        ));
        let vols = body["volumes"].as_array().cloned().unwrap_or_default();
        let pending = vols.iter().filter(|v| v["status"] == "creating").count();
        if vols.len() == total && pending == 0 {
            let failed: Vec<&Value> = vols.iter().filter(|v| v["status"] != "available").collect();
            if let Some(first) = failed.first() {
                let id = first["id"].as_str().unwrap_or_default().to_string();
                let why: Vec<String> = rt.block_on(async {
                    use sqlx::Row;
                    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
                    sqlx::query("SELECT detail FROM messages WHERE resource_uuid = $1")
                        .bind(&id)
                        .fetch_all(&pool)
                        .await
                        .unwrap()
                        .iter()
                        .map(|r| r.get::<String, _>("detail"))
                        .collect()
                });
                panic!("{} volumes failed, e.g. {first}: {why:?}", failed.len());
            }
            break vols;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{pending} still creating of {}",
            vols.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let landed: HashMap<String, String> = volumes
        .iter()
        .map(|v| {
            let host = v["os-vol-host-attr:host"].as_str().unwrap_or_default();
            (
                v["id"].as_str().unwrap().to_string(),
                host.split('#').next().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        landed[&last], "node1@b",
        "after the rollback a volume lands where the old chain puts it"
    );

    // Every volume was placed once, where the chain its scheduler had active places volumes.
    let mut by_chain: HashMap<String, usize> = HashMap::new();
    let mut placed_once: HashMap<String, usize> = HashMap::new();
    for (k, name) in [(&s1, "scheduler1"), (&s2, "scheduler2")] {
        let switched = activated_at(k, NEW, swap_sent);
        eprintln!(
            "{name}: switched {:.3} s after the activation was answered ({:.3} s after it was sent)",
            switched - swap_at,
            switched - swap_sent
        );
        assert!(
            switched - swap_at < 1.0,
            "{name} switched {:.3} s after the activation:\n{}",
            switched - swap_at,
            activation_lines(k)
        );
        let text = k.log_text();
        let back = activated_at(k, OLD, rollback_sent);
        eprintln!(
            "{name}: rolled back {:.3} s after the rollback was answered ({:.3} s after it was sent)",
            back - rollback_at,
            back - rollback_sent
        );
        assert!(
            back - rollback_at < 1.0,
            "{name} rolled back {:.3} s late:\n{}",
            back - rollback_at,
            activation_lines(k)
        );
        let (placements, activations) = placements_and_activations(&text);
        for pl in &placements {
            let active = activations
                .iter()
                .rfind(|(after, _)| *after < pl.decision)
                .map(|(_, c)| c.clone())
                .unwrap_or_default();
            assert_eq!(
                pl.label, active,
                "{name}: decision {} by `{}` while `{active}` was active",
                pl.decision, pl.label
            );
            let at = landed.get(&pl.volume).unwrap_or_else(|| {
                panic!("{name} placed {} which the API does not list", pl.volume)
            });
            assert_eq!(
                at,
                expected_backend(&active),
                "{name}: volume {} (decision {}) landed on {at} while `{active}` was active",
                pl.volume,
                pl.decision
            );
            *by_chain.entry(active).or_default() += 1;
            *placed_once.entry(pl.volume.clone()).or_default() += 1;
        }
        let placed = placements.len();
        // A standalone scheduler serves its own metrics.
        let metrics = if name == "scheduler1" { &m1 } else { &m2 };
        let text = rt.block_on(async {
            reqwest::get(format!("http://{metrics}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        let counted: u64 = text
            .lines()
            .find(|l| l.starts_with("kiln_scheduler_decisions_total{outcome=\"placed\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0);
        assert_eq!(
            counted as usize, placed,
            "{name}: /metrics counts its placements: {text}"
        );
        assert!(
            placed > 0,
            "{name} placed nothing: the two schedulers must share the load"
        );
    }
    assert_eq!(
        placed_once.len(),
        total,
        "every volume's placement was logged by a scheduler"
    );
    assert!(
        placed_once.values().all(|n| *n == 1),
        "a volume was placed twice"
    );
    eprintln!("placements by chain: {by_chain:?}");
    assert!(
        by_chain.get(NEW).copied().unwrap_or(0) > 0,
        "the uploaded filter's chain placed nothing: {by_chain:?}"
    );
    assert!(
        by_chain.get(OLD).copied().unwrap_or(0) > 0,
        "the builtin chain placed nothing: {by_chain:?}"
    );
}
