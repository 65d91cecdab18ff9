//! Service lifecycle end to end, with real `kiln` processes: all-in-one with no config and no
//! servers; api, scheduler and two volume backends as separate processes on PostgreSQL and
//! RabbitMQ; heartbeats, up/down, graceful SIGTERM, SIGHUP reload, capability reports.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_integration_tests::process::{self as p, has, Kiln};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// GET `url` with a noauth admin token; (status, JSON body).
fn get(url: &str) -> (u16, serde_json::Value) {
    block_on(async {
        let r = reqwest::Client::new()
            .get(url)
            .header("X-Auth-Token", "admin:admin")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    })
}

/// POST `body` to `url` with a noauth admin token; (status, JSON body).
fn post(url: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .header("X-Auth-Token", "admin:admin")
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    })
}

/// The chain the scheduler runs, as its dry run names it ("preset default", "v2 name").
fn live_chain(listen: &str) -> String {
    let (status, body) = post(
        &format!("http://{listen}/v3/admin/kiln-scheduler/dry-run"),
        serde_json::json!({"volume": {"size": 1}}),
    );
    assert_eq!(status, 200, "{body}");
    body["dry_run"]["chain"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Pool names the scheduler reports through the API.
fn pool_names(api: &str) -> Vec<String> {
    let (status, body) = get(&format!("{api}/v3/admin/scheduler-stats/get_pools"));
    if status != 200 {
        return vec![];
    }
    let mut names: Vec<String> = body["pools"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn wait_pools(api: &str, want: &[&str], timeout: Duration, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let names = pool_names(api);
        if names == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}: pools are {names:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("kiln.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn all_in_one_runs_with_no_config_and_no_servers_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = p::free_port();
    let listen = format!("127.0.0.1:{port}");
    // No --config, no KILN_CONFIG: the defaults (./kiln-data, SQLite, in-process bus).
    let mut aio = Kiln::start(
        "aio",
        dir.path(),
        None,
        &["all-in-one", "--listen", &listen],
    );
    let rows = p::wait_status(
        dir.path(),
        None,
        Duration::from_secs(20),
        "api, scheduler and a volume service up",
        |rows| {
            rows.iter()
                .any(|r| r.binary == "kiln-api" && r.state == "up")
                && rows
                    .iter()
                    .any(|r| r.binary == "kiln-scheduler" && r.state == "up")
                && rows.iter().any(|r| {
                    r.binary == "kiln-volume" && r.host.ends_with("@file") && r.state == "up"
                })
        },
    );
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert!(
        dir.path().join("kiln-data/kiln.db").exists(),
        "the default data dir holds the SQLite file"
    );

    let (status, body) = get(&format!("http://{listen}/"));
    assert_eq!(status, 300);
    assert_eq!(body["versions"][0]["id"], "v3.0");
    let names = pool_names(&format!("http://{listen}"));
    assert_eq!(
        names.len(),
        1,
        "the file backend reported its pool: {names:?}"
    );

    let exit = aio
        .terminate(Duration::from_secs(10))
        .expect("exits within the grace period");
    assert!(
        exit.success(),
        "SIGTERM must exit 0, got {exit:?}\n{}",
        aio.log_text()
    );
}

#[test]
fn bad_config_stops_start_up_naming_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "report_interval = 10\nservice_down_time = 5\n");
    let (code, _out, err) = p::kiln_run(dir.path(), Some(&cfg), &["all-in-one"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("service_down_time") && err.contains("greater than report_interval"),
        "{err}"
    );

    let cfg = write_config(dir.path(), "[messaging]\nurl = \"kafka://x\"\n");
    let (code, _out, err) = p::kiln_run(dir.path(), Some(&cfg), &["scheduler"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("messaging.url"), "{err}");
}

#[test]
fn sighup_reloads_config_and_keeps_the_old_one_when_the_new_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", p::free_port());
    let conf = |interval: u32, chain: &str| {
        format!("host = \"hup\"\nservice_down_time = 60\nperiodic_fuzzy_delay = 0\nreport_interval = {interval}\n[scheduler]\nchain = \"{chain}\"\n[api]\nlisten = \"{listen}\"\n")
    };
    let cfg = write_config(dir.path(), &conf(30, "default"));
    let mut aio = Kiln::start("aio", dir.path(), Some(&cfg), &["all-in-one"]);
    p::wait_status(
        dir.path(),
        Some(&cfg),
        Duration::from_secs(20),
        "services up",
        |rows| rows.len() == 3,
    );

    assert_eq!(live_chain(&listen), "preset default");

    // An invalid file: the process keeps running on the old configuration.
    write_config(dir.path(), &conf(90, "simple"));
    aio.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        aio.wait_exit(Duration::ZERO).is_none(),
        "an invalid reload must not stop the process"
    );
    assert!(
        aio.log_text().contains("keeping the running one"),
        "{}",
        aio.log_text()
    );

    assert_eq!(
        live_chain(&listen),
        "preset default",
        "an invalid reload changed the chain"
    );

    // A valid one: heartbeats speed up from every 30 s to every second, and the scheduler
    // switches to the `simple` preset (start-up's activation path).
    write_config(dir.path(), &conf(1, "simple"));
    aio.signal(libc::SIGHUP);
    let started = Instant::now();
    while live_chain(&listen) != "preset simple" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGHUP did not switch scheduler.chain: {}\n{}",
            live_chain(&listen),
            aio.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = p::status(dir.path(), Some(&cfg));
    let count = |rows: &[p::StatusRow]| {
        rows.iter()
            .find(|r| r.binary == "kiln-api")
            .map(|r| r.report_count)
            .unwrap_or(0)
    };
    let start = count(&before);
    // The heartbeat sleeping on the old 30 s interval picks the new one up after its nap
    // (at most 30 s); then it beats every second.
    p::wait_status(
        dir.path(),
        Some(&cfg),
        Duration::from_secs(45),
        "faster heartbeats after SIGHUP",
        |rows| count(rows) >= start + 3,
    );
    assert!(aio
        .terminate(Duration::from_secs(10))
        .expect("exits")
        .success());
}

#[test]
fn multi_process_on_postgres_and_rabbitmq() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = block_on(p::fresh_pg_database());
    let ns = kiln_integration_tests::unique_namespace("lc");
    let listen = format!("127.0.0.1:{}", p::free_port());
    let api = format!("http://{listen}");
    let vols = dir.path().join("vols");
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"host = "node1"
report_interval = 1
service_down_time = 3
periodic_interval = 5
periodic_fuzzy_delay = 0
backend_stats_polling_interval = 60
graceful_shutdown_timeout = 10
enabled_backends = ["a", "b"]
[database]
url = "{db_url}"
[messaging]
url = "{amqp}"
namespace = "{ns}"
rpc_response_timeout = 5
[api]
listen = "{listen}"
[backends.a]
path = "{vols}/a"
[backends.b]
path = "{vols}/b"
"#,
            amqp = kiln_integration_tests::amqp_url(),
            vols = vols.display()
        ),
    );
    let c = Some(cfg.as_path());

    // An unmigrated database is refused, with the fix in the message.
    let (code, _, err) = p::kiln_run(dir.path(), c, &["scheduler"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("kiln db sync"), "{err}");
    let (code, out, err) = p::kiln_run(dir.path(), c, &["db", "sync"]);
    assert_eq!(code, 0, "{out}{err}");

    let mut scheduler = Kiln::start("scheduler", dir.path(), c, &["scheduler"]);
    let mut vol_a = Kiln::start("volume-a", dir.path(), c, &["volume", "--backend", "a"]);
    let mut vol_b = Kiln::start("volume-b", dir.path(), c, &["volume", "--backend", "b"]);
    let mut api_p = Kiln::start("api", dir.path(), c, &["api"]);
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

    // The scheduler holds both backends' reports within one report interval (1 s).
    let both = ["node1@a#a", "node1@b#b"];
    wait_pools(
        &api,
        &both,
        Duration::from_secs(1),
        "capability reports of both backends",
    );

    // A restarted scheduler asks for reports at once instead of waiting a polling interval
    // (60 s here): it holds both again within one report interval of being up.
    assert!(scheduler
        .terminate(Duration::from_secs(10))
        .expect("scheduler exits")
        .success());
    scheduler = Kiln::start("scheduler2", dir.path(), c, &["scheduler"]);
    let took = wait_pools(
        &api,
        &both,
        Duration::from_secs(15),
        "reports after a scheduler restart",
    );
    eprintln!("scheduler restart → both reports held after {took:?} (includes process start)");

    // SIGSTOP a volume process: down once service_down_time passes, and its pool leaves the
    // scheduler's view; SIGCONT: up again.
    vol_b.signal(libc::SIGSTOP);
    p::wait_status(
        dir.path(),
        c,
        Duration::from_secs(10),
        "node1@b down after SIGSTOP",
        |rows| has(rows, "kiln-volume", "node1@b", "down"),
    );
    wait_pools(
        &api,
        &["node1@a#a"],
        Duration::from_secs(5),
        "the stopped backend's pool dropped",
    );
    vol_b.signal(libc::SIGCONT);
    p::wait_status(
        dir.path(),
        c,
        Duration::from_secs(10),
        "node1@b up after SIGCONT",
        |rows| has(rows, "kiln-volume", "node1@b", "up"),
    );

    // os-services over HTTP agrees with kiln status.
    let (status, body) = get(&format!("{api}/v3/os-services"));
    assert_eq!(status, 200);
    assert_eq!(body["services"].as_array().unwrap().len(), 4, "{body}");

    // SIGTERM: every process exits 0 within the grace period.
    for k in [&mut api_p, &mut vol_a, &mut vol_b, &mut scheduler] {
        let exit = k
            .terminate(Duration::from_secs(12))
            .unwrap_or_else(|| panic!("{} did not exit", k.name));
        assert!(
            exit.success(),
            "{} exited {exit:?}\n{}",
            k.name,
            k.log_text()
        );
    }
}
