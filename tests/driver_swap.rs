//! Volume-driver hot swap on a running `kiln all-in-one` (the issue's acceptance): a backend
//! served by the builtin qemu-img WASM driver is swapped — through `kiln backend driver-swap`
//! — to a second build of the driver (built by this test, stamped to report another
//! `driver_version`) while a stream of creates runs on it. No request fails or is lost, every
//! volume ends `available`, and the audit log shows which build ran each create: every create
//! sent after the swap answered ran on the new one. Candidates that fail validation (a filter
//! instead of a driver, a driver whose `do_setup` fails under its manifest, an unknown
//! component) are refused with a clear error and the old driver keeps serving. A rollback
//! returns to the configured driver, and a restart keeps a swapped driver.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{block_on, http, try_http, Cloud};
use kiln_integration_tests::process::{self as p, Kiln};
use serde_json::{json, Value};

const BACKEND: &str = "node1@qemu";
const V1: &str = env!("CARGO_PKG_VERSION");
const V2: &str = "0.1.0-swap.2";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The qemu-img driver built from source, stamped to report `V2`.
fn build_v2(out: &Path) -> PathBuf {
    let status = std::process::Command::new(repo().join("scripts/build-plugins"))
        .args(["--driver-version", V2])
        .arg(out)
        .status()
        .expect("run scripts/build-plugins");
    assert!(
        status.success(),
        "building the second driver version failed"
    );
    out.join("qemu_img_driver.wasm")
}

fn config(root: &Path) -> String {
    format!(
        r#"host = "node1"
enabled_backends = ["qemu"]
report_interval = 1
periodic_fuzzy_delay = 0
backend_stats_polling_interval = 300
[backends.qemu]
driver = "wasm"
plugin = "qemu_img_driver"
plugin_config = {{ root = "{}", capacity_gb = "100000" }}
"#,
        root.display()
    )
}

/// POST raw bytes (a component upload); (status, JSON body).
fn upload(api: &str, name: &str, kind: &str, bytes: Vec<u8>) -> (u16, Value) {
    block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{api}/kiln-plugins"))
            .query(&[("name", name), ("kind", kind)])
            .header("X-Auth-Token", "alice:demo")
            .header("Content-Type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    })
}

/// The driver_version the scheduler has for the backend's pool.
fn pool_driver_version(api: &str) -> String {
    let (s, b) = http(
        "GET",
        &format!("{api}/scheduler-stats/get_pools?detail=true"),
        None,
    );
    assert_eq!(s, 200, "{b}");
    b["pools"][0]["capabilities"]["driver_version"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn wait_driver_version(api: &str, want: &str, log: &dyn Fn() -> String) {
    let started = Instant::now();
    loop {
        // The API may still be starting (after a restart).
        let up = try_http("GET", &format!("{api}/scheduler-stats/get_pools"), None)
            .is_ok_and(|(s, _)| s == 200);
        if up && pool_driver_version(api) == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "pools never reported driver_version {want}\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn swap(api: &str, body: Value) -> (u16, Value) {
    http(
        "POST",
        &format!("{api}/kiln-backends/{BACKEND}/driver"),
        Some(body),
    )
}

/// The plugin that ran `qemu-img create` for volume `id`, per the exec audit log.
fn creators(log: &str, id: &str) -> Vec<String> {
    let image = format!("volume-{id} ");
    log.lines()
        .filter(|l| l.contains("kiln::audit::exec") && l.contains(" create -q -f raw "))
        .filter(|l| l.contains(&image))
        .filter_map(|l| {
            let rest = &l[l.find("plugin=")? + 7..];
            Some(rest.split_whitespace().next()?.to_string())
        })
        .collect()
}

#[test]
fn driver_swap_under_a_stream_of_creates_loses_nothing() {
    let work = tempfile::tempdir().unwrap();
    let v2 = build_v2(&work.path().join("v2"));
    let root = work.path().join("images");
    std::fs::create_dir(&root).unwrap();
    let mut cloud = Cloud::start(&config(&root));
    let api = cloud.api.clone();
    let (s, b) = http(
        "PUT",
        &format!("{api}/os-quota-sets/demo"),
        Some(json!({"quota_set": {"volumes": -1, "gigabytes": -1}})),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(pool_driver_version(&api), V1);

    // Uploads: a filter is not a driver; the stamped build is.
    let filter = std::fs::read(repo().join("plugins/dist/capacity_filter.wasm")).unwrap();
    let (s, b) = upload(&api, "capacity", "driver", filter.clone());
    assert_eq!(s, 400, "{b}");
    let msg = b["badRequest"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("volume-driver"), "{msg}");
    let (s, b) = upload(
        &api,
        "qemu_img_driver_v2",
        "driver",
        std::fs::read(&v2).unwrap(),
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["plugin"]["kind"], "driver");
    let sha = b["plugin"]["sha256"].as_str().unwrap().to_string();

    // Refused candidates: the old driver keeps serving.
    let (s, b) = upload(&api, "capacity", "filter", filter);
    assert_eq!(s, 201, "{b}");
    let filter_sha = b["plugin"]["sha256"].as_str().unwrap().to_string();
    let (s, b) = swap(
        &api,
        json!({"driver": {"component": format!("sha256:{filter_sha}")}}),
    );
    assert_eq!(s, 400, "{b}");
    let msg = b["badRequest"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("uploaded as a filter, not as a driver"),
        "{msg}"
    );
    // A manifest without the `ls` grant: the new driver's do_setup is denied.
    let manifest = std::fs::read_to_string(repo().join("plugins/dist/qemu_img_driver.toml"))
        .unwrap()
        .replace(
            "program = \"/usr/bin/ls\"",
            "program = \"/usr/bin/qemu-img\"",
        );
    let (s, b) = swap(
        &api,
        json!({"driver": {"component": format!("sha256:{sha}"), "manifest": manifest}}),
    );
    assert_eq!(s, 400, "{b}");
    let msg = b["badRequest"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("failed validation in do_setup")
            && msg.contains("/usr/bin/ls")
            && msg.contains("old driver keeps serving"),
        "{msg}"
    );
    let (s, b) = swap(
        &api,
        json!({"driver": {"component": "sha256:".to_string() + &"0".repeat(64)}}),
    );
    assert_eq!(s, 400, "{b}");
    let (s, b) = swap(&api, json!({"driver": {"component": "nonsense"}}));
    assert_eq!(s, 400, "{b}");
    let (s, b) = http(
        "POST",
        &format!("{api}/kiln-backends/node9@nowhere/driver"),
        Some(json!({"driver": {"component": format!("sha256:{sha}")}})),
    );
    assert_eq!(s, 404, "{b}");
    let (s, b) = http(
        "POST",
        &format!("{api}/kiln-backends/{BACKEND}/driver/rollback"),
        None,
    );
    assert_eq!(s, 400, "nothing to roll back to yet: {b}");
    assert_eq!(pool_driver_version(&api), V1);
    let (_, shown) = http(
        "GET",
        &format!("{api}/kiln-backends/{BACKEND}/driver"),
        None,
    );
    assert_eq!(shown["driver"]["active"], Value::Null, "{shown}");

    // The stream: creates every 40 ms until 1.5 s after the swap answered; the swap goes in
    // after ~1.5 s.
    let creator_api = api.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_c = stop.clone();
    let stream = std::thread::spawn(move || {
        let mut sent = Vec::new();
        for i in 0..1000 {
            if stop_c.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let (s, b) = http(
                "POST",
                &format!("{creator_api}/volumes"),
                Some(json!({"volume": {"size": 1, "name": format!("s{i}")}})),
            );
            sent.push((
                Instant::now(),
                s,
                b["volume"]["id"].as_str().unwrap_or("").to_string(),
                b,
            ));
            std::thread::sleep(Duration::from_millis(40));
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(1500));
    let swap_sent = Instant::now();
    let (code, out, err) = p::kiln_run(
        cloud.dir.path(),
        None,
        &[
            "backend",
            "--url",
            &api,
            "--token",
            "alice:demo",
            "driver-swap",
            BACKEND,
            "--component",
            &format!("sha256:{sha}"),
            "--drain-timeout",
            "30",
        ],
    );
    let swap_done = Instant::now();
    assert_eq!(
        code,
        0,
        "driver-swap failed: {out}\n{err}\n{}",
        cloud.aio.log_text()
    );
    let outcome: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        outcome["driver"]["active"]["driver_version"], V2,
        "{outcome}"
    );
    assert_eq!(
        outcome["driver"]["previous"]["label"],
        "configured qemu_img_driver"
    );
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let sent = stream.join().unwrap();

    // Zero lost or failed requests: every create accepted, every volume available.
    for (_, s, _, b) in &sent {
        assert_eq!(*s, 202, "{b}");
    }
    let log = || cloud.aio.log_text();
    for (_, _, id, _) in &sent {
        let v = cloud.settle(id);
        assert_eq!(v["status"], "available", "{v}\n{}", log());
    }
    // Which build ran each create: one create each; after the swap answered, only v2.
    let text = log();
    let (mut old, mut new) = (0, 0);
    for (at, _, id, _) in &sent {
        let by = creators(&text, id);
        assert_eq!(by.len(), 1, "volume {id}: creates {by:?}");
        match by[0].as_str() {
            "qemu_img_driver" => {
                assert!(
                    *at < swap_done,
                    "volume {id} sent after the swap ran on the old driver"
                );
                old += 1;
            }
            "qemu_img_driver_v2" => new += 1,
            other => panic!("volume {id} created by {other}"),
        }
    }
    let after = sent.iter().filter(|(at, ..)| *at > swap_done).count();
    assert!(
        old > 0 && new >= after && after > 0,
        "old {old}, new {new}, sent after {after}"
    );
    eprintln!(
        "driver swap: {} creates, {old} on v1, {new} on v2, swap took {:?}, timings {}",
        sent.len(),
        swap_done - swap_sent,
        outcome["driver"]["timings"]
    );
    wait_driver_version(&api, V2, &log);
    let (_, shown) = http(
        "GET",
        &format!("{api}/kiln-backends/{BACKEND}/driver"),
        None,
    );
    assert_eq!(
        shown["driver"]["active"]["component_sha256"],
        sha.as_str(),
        "{shown}"
    );
    assert_eq!(shown["driver"]["active"]["driver_version"], V2);

    // Rollback (CLI): back to the configured driver, and new creates run on it.
    let (code, out, err) = p::kiln_run(
        cloud.dir.path(),
        None,
        &[
            "backend",
            "--url",
            &api,
            "--token",
            "alice:demo",
            "driver-rollback",
            BACKEND,
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    wait_driver_version(&api, V1, &log);
    let (s, b) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(s, 202, "{b}");
    let id = b["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.settle(&id)["status"], "available");
    assert_eq!(creators(&log(), &id), ["qemu_img_driver"]);

    // Swap again, then restart: the database keeps the swapped driver.
    let (s, b) = swap(&api, json!({"driver": {"component": sha.clone()}}));
    assert_eq!(s, 200, "{b}");
    cloud.aio.terminate(Duration::from_secs(20));
    let listen = api
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let cfg = cloud.dir.path().join("kiln.toml");
    cloud.aio = Kiln::start(
        "aio2",
        cloud.dir.path(),
        Some(&cfg),
        &["all-in-one", "--listen", &listen],
    );
    let log = || cloud.aio.log_text();
    wait_driver_version(&api, V2, &log);
    assert!(
        log().contains("serving with the recorded driver"),
        "{}",
        log()
    );
    let (s, b) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(s, 202, "{b}");
    let id = b["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.settle(&id)["status"], "available");
    assert_eq!(creators(&log(), &id), ["qemu_img_driver_v2"]);
    let (_, shown) = http(
        "GET",
        &format!("{api}/kiln-backends/{BACKEND}/driver"),
        None,
    );
    let history: Vec<Value> = shown["driver"]["history"].as_array().unwrap().clone();
    assert_eq!(history.len(), 3, "{shown}");
    assert_eq!(history[1]["component_sha256"], Value::Null, "the rollback");
}
