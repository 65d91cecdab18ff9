//! Which backends the scheduler may place on, end to end through real `kiln` processes:
//! - every backend's driver failing every create: the volume is rescheduled until
//!   `scheduler.max_attempts`, then ends `error` with a message naming the attempts and the
//!   backends tried (fewer attempts than backends: the rest are never tried);
//! - a volume service disabled through `os-services/disable` gets no new volume until it is
//!   enabled again;
//! - a volume service whose heartbeat is stale (its process stopped: down after
//!   `service_down_time`) gets no new volume, multi-process on PostgreSQL and RabbitMQ;
//! - an extend the database capacity check refuses gives back the growth it had consumed in
//!   the scheduler's memory.

use std::time::Duration;

use kiln_integration_tests::cloud::{block_on, Cloud};
use kiln_integration_tests::process::{self as p, has, Kiln};
use serde_json::{json, Value};

/// One request with a noauth *admin* token; (status, JSON body).
fn admin(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    block_on(async {
        let mut r = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .header("X-Auth-Token", "admin:demo");
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    })
}

/// The backend (`host@backend`) a settled volume landed on.
fn backend_of(v: &Value) -> String {
    v["os-vol-host-attr:host"]
        .as_str()
        .unwrap_or_default()
        .split('#')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Create a 1 GiB volume in `cloud` and wait for it to settle; its view.
fn create_and_settle(cloud: &Cloud) -> Value {
    let (status, body) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(status, 202, "{body}");
    cloud.settle(body["volume"]["id"].as_str().unwrap())
}

#[test]
fn every_backend_failing_ends_in_error_after_max_attempts_naming_attempts_and_backends() {
    // Three backends, two attempts: the third backend must never be tried.
    let cloud = Cloud::start(
        "host = \"node1\"\nenabled_backends = [\"a\", \"b\", \"c\"]\n\
         backend_stats_polling_interval = 3600\n[scheduler]\nmax_attempts = 2\n\
         [backends.a]\ndriver = \"file\"\n[backends.b]\ndriver = \"file\"\n\
         [backends.c]\ndriver = \"file\"\n",
    );
    // Break every backend: its volume directory becomes a file, so every create fails.
    for b in ["a", "b", "c"] {
        let d = cloud.volume_dir(b);
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::write(&d, b"not a directory").unwrap();
    }
    let (status, body) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(status, 202, "{body}");
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    let v = cloud.settle(&id);
    assert_eq!(v["status"], "error", "{v}");
    let messages = cloud.messages(&id);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    let prefix = format!(
        "Exceeded maximum number of scheduling attempts (2) for volume {id}. Backends tried: "
    );
    assert!(m.starts_with(&prefix), "{m}");
    let tried: Vec<&str> = m[prefix.len()..]
        .split(". ")
        .next()
        .unwrap()
        .split(", ")
        .collect();
    assert_eq!(tried.len(), 2, "two attempts, two backends tried: {m}");
    assert_ne!(tried[0], tried[1], "a backend is not tried twice: {m}");
    for t in &tried {
        assert!(
            ["node1@a", "node1@b", "node1@c"].contains(t),
            "{t} is a backend: {m}"
        );
    }
    assert!(
        m.contains("Last error: backend"),
        "the last driver error is quoted: {m}"
    );
    // Exactly two creates reached a driver: the third backend was never asked.
    let log = cloud.aio.log_text();
    let failures = log
        .lines()
        .filter(|l| l.contains(&id) && l.contains("driver failed to create the volume"))
        .count();
    assert_eq!(failures, 2, "{log}");
}

#[test]
fn a_disabled_volume_service_gets_no_new_volumes_until_enabled() {
    // b is bigger, so the Capacity weigher prefers it while it is enabled.
    let cloud = Cloud::start(
        "host = \"node1\"\nenabled_backends = [\"a\", \"b\"]\n\
         [backends.a]\ndriver = \"file\"\ncapacity_gb = 100.0\n\
         [backends.b]\ndriver = \"file\"\ncapacity_gb = 1000.0\n",
    );
    let services = format!("{}/os-services", cloud.api);
    assert_eq!(backend_of(&create_and_settle(&cloud)), "node1@b");

    let (status, body) = admin(
        "PUT",
        &format!("{services}/disable"),
        Some(json!({"host": "node1@b", "binary": "cinder-volume"})),
    );
    assert_eq!(status, 200, "{body}");
    for _ in 0..3 {
        let v = create_and_settle(&cloud);
        assert_eq!(v["status"], "available", "{v}");
        assert_eq!(
            backend_of(&v),
            "node1@a",
            "a disabled service got a volume: {v}"
        );
    }

    let (status, body) = admin(
        "PUT",
        &format!("{services}/enable"),
        Some(json!({"host": "node1@b", "binary": "cinder-volume"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(backend_of(&create_and_settle(&cloud)), "node1@b");
}

#[test]
fn a_volume_service_with_a_stale_heartbeat_gets_no_new_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = block_on(p::fresh_pg_database());
    let ns = kiln_integration_tests::unique_namespace("down");
    let listen = format!("127.0.0.1:{}", p::free_port());
    let vols = dir.path().join("vols");
    let cfg = dir.path().join("kiln.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"host = "node1"
report_interval = 1
service_down_time = 3
periodic_interval = 5
periodic_fuzzy_delay = 0
backend_stats_polling_interval = 60
enabled_backends = ["a", "b"]
[database]
url = "{db_url}"
[messaging]
url = "{amqp}"
namespace = "{ns}"
[api]
listen = "{listen}"
[backends.a]
path = "{vols}/a"
capacity_gb = 100.0
[backends.b]
path = "{vols}/b"
capacity_gb = 1000.0
"#,
            amqp = kiln_integration_tests::amqp_url(),
            vols = vols.display()
        ),
    )
    .unwrap();
    let c = Some(cfg.as_path());
    let (code, out, err) = p::kiln_run(dir.path(), c, &["db", "sync"]);
    assert_eq!(code, 0, "{out}{err}");
    let _scheduler = Kiln::start("scheduler", dir.path(), c, &["scheduler"]);
    let _vol_a = Kiln::start("volume-a", dir.path(), c, &["volume", "--backend", "a"]);
    let vol_b = Kiln::start("volume-b", dir.path(), c, &["volume", "--backend", "b"]);
    let _api = Kiln::start("api", dir.path(), c, &["api"]);
    p::wait_status(
        dir.path(),
        c,
        Duration::from_secs(30),
        "api, scheduler, node1@a and node1@b up",
        |rows| {
            has(rows, "kiln-api", "node1", "up")
                && has(rows, "kiln-scheduler", "node1", "up")
                && has(rows, "kiln-volume", "node1@a", "up")
                && has(rows, "kiln-volume", "node1@b", "up")
        },
    );
    let api = format!("http://{listen}/v3/demo");
    let create = || {
        let (status, body) = admin(
            "POST",
            &format!("{api}/volumes"),
            Some(json!({"volume": {"size": 1}})),
        );
        assert_eq!(status, 202, "{body}");
        body["volume"]["id"].as_str().unwrap().to_string()
    };
    let settle = |id: &str| {
        let started = std::time::Instant::now();
        loop {
            let (status, body) = admin("GET", &format!("{api}/volumes/{id}"), None);
            assert_eq!(status, 200, "{body}");
            if body["volume"]["status"] != "creating" {
                return body["volume"].clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "volume {id} stuck creating"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Both reporting (the dry run sees both pools): b, the bigger, is preferred.
    let started = std::time::Instant::now();
    loop {
        let (_, d) = admin(
            "POST",
            &format!("{api}/kiln-scheduler/dry-run"),
            Some(json!({"volume": {"size": 1}})),
        );
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
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(backend_of(&settle(&create())), "node1@b");

    // Stop b's process: its heartbeat goes stale, the service is down after 3 s, and the
    // scheduler's last report of it (still held) must not attract volumes.
    vol_b.signal(libc::SIGSTOP);
    p::wait_status(
        dir.path(),
        c,
        Duration::from_secs(15),
        "node1@b down after SIGSTOP",
        |rows| has(rows, "kiln-volume", "node1@b", "down"),
    );
    for _ in 0..3 {
        let v = settle(&create());
        assert_eq!(v["status"], "available", "{v}");
        assert_eq!(
            backend_of(&v),
            "node1@a",
            "a down service got a volume: {v}"
        );
    }
    vol_b.signal(libc::SIGCONT);
}

/// The scheduler's in-memory view of `pool` (its live chain's record, as `kiln plugin record`
/// reads it).
fn scheduler_pool(cloud: &Cloud, pool: &str) -> Value {
    let (status, body) = admin("GET", &format!("{}/kiln-scheduler/pools", cloud.api), None);
    assert_eq!(status, 200, "{body}");
    body["pools"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|p| {
                    format!(
                        "{}#{}",
                        p["backend"].as_str().unwrap_or(""),
                        p["pool"].as_str().unwrap_or("")
                    ) == pool
                })
                .cloned()
        })
        .unwrap_or_else(|| panic!("no pool {pool}: {body}"))
}

#[test]
fn an_extend_refused_by_the_database_check_gives_back_its_consumed_growth() {
    // Stats reported at start-up only (no fuzzy delay, then hourly): after that only
    // placements change the scheduler's view of the pool.
    let cloud = Cloud::start(
        "host = \"node1\"\nbackend_stats_polling_interval = 3600\nperiodic_fuzzy_delay = 0\n\
         enabled_backends = [\"a\"]\n\
         [backends.a]\ndriver = \"file\"\ncapacity_gb = 10.0\nmax_over_subscription_ratio = 1.0\n",
    );
    // Let the start-up reports (the service's own and the one the scheduler asks for) land.
    std::thread::sleep(Duration::from_secs(1));
    let v = create_and_settle(&cloud);
    assert_eq!(v["status"], "available", "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let pool = v["os-vol-host-attr:host"].as_str().unwrap().to_string();

    // Another scheduler's placement the scheduler never heard of: 8 GB more in the pool, as
    // the database sees it. The scheduler still believes ~9 GB are free.
    block_on(async {
        use kiln::db::placement::PoolLimit;
        use kiln::db::volumes::NewVolume;
        use kiln::db::{Db, DbOptions};
        let url = format!(
            "sqlite://{}",
            cloud.dir.path().join("kiln-data/kiln.db").display()
        );
        let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
        let other = uuid::Uuid::new_v4().to_string();
        db.volume_create(&NewVolume {
            id: other.clone(),
            project_id: "other".into(),
            user_id: "u".into(),
            size: 8,
            availability_zone: "nova".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        db.volume_place(&other, &pool, 8, PoolLimit { capacity_gb: None })
            .await
            .unwrap()
            .unwrap();
    });
    let before = scheduler_pool(&cloud, &pool);

    // 1 → 5 GB: the chain lets it through (memory), the database check refuses (1 + 8 + 4 > 10).
    let (status, body) = admin(
        "POST",
        &format!("{}/volumes/{id}/action", cloud.api),
        Some(json!({"os-extend": {"new_size": 5}})),
    );
    assert_eq!(status, 202, "{body}");
    let v = cloud.settle_extend(&id);
    assert_eq!(v["status"], "available", "{v}");
    assert_eq!(v["size"], 1, "the refused extend left the size: {v}");
    let messages = cloud.messages(&id).join("\n");
    assert!(
        messages.contains("would exceed its limit of 10 GB"),
        "refused by the database check, not the chain: {messages}"
    );
    let after = scheduler_pool(&cloud, &pool);
    assert_eq!(
        before, after,
        "the refused extend's consumed growth was not given back"
    );
}
