//! The scheduler issue's acceptance, multi-process on PostgreSQL and RabbitMQ with two
//! scheduler processes: while a load generator sends ≥ 100 volume creates per second, the
//! chain is swapped (activation) and swapped back (rollback). Every request succeeds, both
//! schedulers switch within 1 s of each activation, and every placement a scheduler logs was
//! decided by the chain it had active at that moment (no placement by the old chain after the
//! switch).

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

fn chain(name: &str, m: f64) -> Value {
    json!({"chain": {"name": name,
        "filters": [{"plugin": "availability_zone_filter"}, {"plugin": "capacity_filter"},
                    {"plugin": "capabilities_filter"}],
        "weighers": [{"plugin": "capacity_weigher", "multiplier": m,
                      "config": {"capacity_weight_multiplier": m.to_string()}}]}})
}

/// When `log` says chain `name` became active (seconds of day), waiting up to 10 s.
fn activated_at(k: &Kiln, name: &str) -> f64 {
    let started = Instant::now();
    loop {
        let text = k.log_text();
        let hits: Vec<f64> = text
            .lines()
            .filter(|l| l.contains("scheduler chain active") && l.contains(name))
            .filter_map(line_of_day)
            .collect();
        if let Some(t) = hits.last() {
            return *t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} never active:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A number after `key=` in a log line.
fn field(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(&format!("{key}="))? + key.len() + 1..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn chain_of(line: &str) -> String {
    if line.contains("prefer-small") {
        "small"
    } else if line.contains("prefer-big") {
        "big"
    } else {
        "other"
    }
    .to_string()
}

/// (decision number, chain) pairs.
type Numbered = Vec<(u64, String)>;

/// Every placement's (decision number, chain) and every activation's (decisions made before
/// it, chain), numbered by the scheduler itself, so the order log lines land in does not
/// matter (a placement is logged after its database write, an activation inside the lock).
fn placements_and_activations(text: &str) -> (Numbered, Numbered) {
    let mut placed = Vec::new();
    let mut activations = Vec::new();
    for l in text.lines() {
        if l.contains("scheduler chain active") {
            activations.push((field(l, "after_decisions").unwrap_or(0), chain_of(l)));
        } else if l.contains("volume placed") {
            placed.push((
                field(l, "decision").expect("placements are numbered"),
                chain_of(l),
            ));
        }
    }
    (placed, activations)
}

#[test]
fn chain_swap_under_load_with_two_schedulers_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
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
    let small = rt.block_on(async {
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
        let (s, big) = call(
            reqwest::Method::POST,
            format!("{api}/kiln-chains"),
            Some(chain("prefer-big", 1.0)),
        )
        .await;
        assert_eq!(s, 201, "{big}");
        let (s, small) = call(
            reqwest::Method::POST,
            format!("{api}/kiln-chains"),
            Some(chain("prefer-small", -1.0)),
        )
        .await;
        assert_eq!(s, 201, "{small}");
        let big = big["chain"]["version"].as_i64().unwrap();
        let small = small["chain"]["version"].as_i64().unwrap();
        let (s, b) = call(
            reqwest::Method::POST,
            format!("{api}/kiln-chains/{big}/activate"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{b}");
        small
    });
    activated_at(&s1, "prefer-big");
    activated_at(&s2, "prefer-big");

    // The load: one create every 8 ms (125/s) for 4 s; swap at 1.3 s, roll back at 2.6 s.
    let total = 500usize;
    let load_started = Instant::now();
    let mut tasks = Vec::new();
    // The swap and the rollback run beside the generator (which must not pause while an
    // activation validates: the load has to hold during the swap). Each records when its
    // request was sent and when the API answered it: it answers once the chain is validated,
    // recorded active and announced — the activation itself. The rollback waits for the
    // swap's answer if that comes after its own due time.
    let control = {
        let activate = call(
            reqwest::Method::POST,
            format!("{api}/kiln-chains/{small}/activate"),
            None,
        );
        let rollback = call(
            reqwest::Method::POST,
            format!("{api}/kiln-chains/rollback"),
            None,
        );
        let start = tokio::time::Instant::from_std(load_started);
        rt.spawn(async move {
            tokio::time::sleep_until(start + Duration::from_millis(8 * 160)).await;
            let swap_sent = now_of_day();
            let (s, b) = activate.await;
            let swap = (s, b, swap_sent, now_of_day());
            tokio::time::sleep_until(start + Duration::from_millis(8 * 320)).await;
            let rollback_sent = now_of_day();
            let (s, b) = rollback.await;
            (swap, (s, b, rollback_sent, now_of_day()))
        })
    };
    for i in 0..total {
        let due = Duration::from_millis(8 * i as u64);
        let wait = due.saturating_sub(load_started.elapsed());
        std::thread::sleep(wait);
        let url = format!("{api}/volumes");
        tasks.push(rt.spawn(call(
            reqwest::Method::POST,
            url,
            Some(json!({"volume": {"size": 1}})),
        )));
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

    // Every volume ends available: zero failed requests.
    let started = Instant::now();
    loop {
        let (_, body) = rt.block_on(call(
            reqwest::Method::GET,
            format!("{api}/volumes/detail"),
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
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{pending} still creating of {}",
            vols.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Both schedulers switched within 1 s of each activation.
    for (k, name) in [(&s1, "scheduler1"), (&s2, "scheduler2")] {
        let switched = activated_at(k, "prefer-small");
        eprintln!(
            "{name}: switched {:.3} s after the activation was answered ({:.3} s after it was sent)",
            switched - swap_at,
            switched - swap_sent
        );
        assert!(
            switched - swap_at < 1.0,
            "{name} switched {:.3} s after the activation",
            switched - swap_at
        );
        let text = k.log_text();
        let back = text
            .lines()
            .filter(|l| l.contains("scheduler chain active") && l.contains("prefer-big"))
            .filter_map(line_of_day)
            .fold(0.0, f64::max);
        eprintln!(
            "{name}: rolled back {:.3} s after the rollback was answered ({:.3} s after it was sent)",
            back - rollback_at,
            back - rollback_sent
        );
        assert!(
            back - rollback_at < 1.0,
            "{name} rolled back {:.3} s late",
            back - rollback_at
        );
        // Every placement was decided by the chain active at its decision.
        let (placements, activations) = placements_and_activations(&text);
        for (n, chain) in &placements {
            let active = activations
                .iter()
                .rfind(|(after, _)| after < n)
                .map(|(_, c)| c.clone())
                .unwrap_or_default();
            assert_eq!(
                chain, &active,
                "{name}: decision {n} by `{chain}` while `{active}` was active"
            );
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
}
