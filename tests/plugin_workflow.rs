//! The plugin author's workflow, as a new author would run it, against a running
//! `kiln all-in-one`: `kiln plugin new` scaffolds a Rust filter into a temp dir outside the
//! repository, `kiln plugin build` builds it (Debian's rustc-web or a rustup wasm32 target),
//! `kiln plugin inspect` checks it, `kiln plugin record` saves the scheduler's pools and
//! `kiln plugin test` runs the filter over them offline; then it is uploaded, put in a chain
//! and activated, and the next volume lands on another pool than before. A second test does
//! the same for a C filter (clang-19 + wasi-libc), when that toolchain is installed.

use std::path::Path;
use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{http, Cloud};
use kiln_integration_tests::process::kiln_run;
use serde_json::{json, Value};

/// Two file backends of declared sizes: a 30 GiB, b 100 GiB.
const TWO_BACKENDS: &str = "host = \"node1\"\nenabled_backends = [\"a\", \"b\"]\n\
    [backends.a]\ndriver = \"file\"\ncapacity_gb = 30.0\n\
    [backends.b]\ndriver = \"file\"\ncapacity_gb = 100.0\n";

/// `kiln ARGS` in `dir` against the cloud's API; stdout, or a panic with everything.
fn kiln(cloud: &Cloud, dir: &Path, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--url", &cloud.api, "--token", "admin:demo"]);
    let (code, out, err) = kiln_run(dir, None, &all);
    assert_eq!(
        code, 0,
        "kiln {args:?} failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// Where a 1 GiB volume lands now (backend of the created volume).
fn place_volume(cloud: &Cloud) -> String {
    let (status, body) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(status, 202, "{body}");
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    let v = cloud.settle(&id);
    assert_eq!(v["status"], "available", "{v}\n{}", cloud.aio.log_text());
    let host = v["os-vol-host-attr:host"].as_str().unwrap_or_default();
    host.split('#').next().unwrap_or_default().to_string()
}

/// A chain preferring the pool with the least free space, with `extra` filters first.
fn chain(name: &str, extra: Vec<Value>) -> Value {
    let mut filters = extra;
    filters.push(json!({"plugin": "capacity_filter"}));
    json!({
        "name": name,
        "filters": filters,
        "weighers": [{"plugin": "capacity_weigher", "multiplier": -1.0,
                      "config": {"capacity_weight_multiplier": "-1"}}]
    })
}

fn activate(cloud: &Cloud, dir: &Path, spec: Value) -> i64 {
    let file = dir.join(format!("{}.json", spec["name"].as_str().unwrap()));
    std::fs::write(&file, spec.to_string()).unwrap();
    let out = kiln(cloud, dir, &["chain", "create", file.to_str().unwrap()]);
    let created: Value = serde_json::from_str(&out).unwrap();
    let version = created["chain"]["version"].as_i64().unwrap();
    kiln(cloud, dir, &["chain", "activate", &version.to_string()]);
    wait_for_chain(cloud, spec["name"].as_str().unwrap());
    version
}

/// Activation reaches the schedulers by fanout: wait until dry runs use chain `name`.
fn wait_for_chain(cloud: &Cloud, name: &str) {
    let started = Instant::now();
    loop {
        let (status, d) = http(
            "POST",
            &format!("{}/kiln-scheduler/dry-run", cloud.api),
            Some(json!({"volume": {"size": 1}})),
        );
        assert_eq!(status, 200, "{d}");
        if d["dry_run"]["chain"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!(" {name}"))
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the scheduler never switched to {name}: {d}\n{}",
            cloud.aio.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Scaffold, build, inspect, record, test, upload, activate; the placement moves from a to b.
fn author_a_filter(lang: &str, name: &str) {
    let cloud = Cloud::start(TWO_BACKENDS);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    let out = kiln(
        &cloud,
        w,
        &["plugin", "new", "--lang", lang, "--kind", "filter", name],
    );
    assert!(out.contains("world kiln:plugin/filter@0.1.0"), "{out}");
    let project = w.join(name);
    assert!(project.join("kiln-plugin.toml").is_file());
    assert!(project.join("README.md").is_file());

    let out = kiln(&cloud, &project, &["plugin", "build"]);
    let wasm = project.join(format!("build/{}.wasm", name.replace('-', "_")));
    assert!(out.contains(wasm.to_str().unwrap()), "{out}");
    let wasm = wasm.to_str().unwrap();

    let out = kiln(&cloud, w, &["plugin", "inspect", wasm]);
    assert!(out.contains("world      kiln:plugin/filter@0.1.0"), "{out}");
    assert!(out.contains("kiln:plugin/pool-sync@0.1.0"), "{out}");
    assert!(out.contains("verdict    OK"), "{out}");
    assert!(!out.contains("wasi:"), "{out}");

    // The scheduler's pools, recorded before any volume exists: a 30 GiB free, b 100.
    let pools = w.join("pools.json");
    kiln(
        &cloud,
        w,
        &["plugin", "record", "--out", pools.to_str().unwrap()],
    );
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(&pools).unwrap()).unwrap();
    let list = recorded["pools"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{recorded}");
    assert_eq!(recorded["scheduler"], "node1", "{recorded}");
    let free: Vec<(String, f64)> = list
        .iter()
        .map(|p| {
            (
                p["backend"].as_str().unwrap().to_string(),
                p["free-capacity-gb"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(free.contains(&("node1@a".into(), 30.0)), "{free:?}");
    assert!(free.contains(&("node1@b".into(), 100.0)), "{free:?}");

    let request = w.join("request.json");
    std::fs::write(&request, r#"{"size-gb": 1}"#).unwrap();
    let out = kiln(
        &cloud,
        w,
        &[
            "plugin",
            "test",
            wasm,
            "--pools",
            pools.to_str().unwrap(),
            "--request",
            request.to_str().unwrap(),
            "--setting",
            "min_free_gb=50",
        ],
    );
    let line = |pool: &str| {
        out.lines()
            .find(|l| l.contains(pool))
            .unwrap_or_else(|| panic!("no line for {pool}: {out}"))
            .to_string()
    };
    assert!(
        line("node1@a#a").contains("reject  30 GB free, below min_free_gb 50"),
        "{out}"
    );
    assert!(line("node1@b#b").ends_with("pass"), "{out}");
    assert!(
        out.contains("chosen by a chain of only this plugin: node1@b#b"),
        "{out}"
    );

    // Without the filter, a chain preferring the least free space places on a.
    activate(&cloud, w, chain("least-free", vec![]));
    assert_eq!(place_volume(&cloud), "node1@a");

    // Upload the authored filter, add it to that chain, activate: a is now refused.
    let out = kiln(&cloud, w, &["plugin", "upload", wasm, "--kind", "filter"]);
    let uploaded: Value = serde_json::from_str(&out).unwrap();
    let sha = uploaded["plugin"]["sha256"].as_str().unwrap();
    let mine = json!({"plugin": format!("sha256:{sha}"), "config": {"min_free_gb": "50"}});
    activate(&cloud, w, chain("least-free-with-mine", vec![mine]));
    assert_eq!(place_volume(&cloud), "node1@b");
    // The dry run names the authored filter and its reason for a.
    let (status, d) = http(
        "POST",
        &format!("{}/kiln-scheduler/dry-run", cloud.api),
        Some(json!({"volume": {"size": 1}})),
    );
    assert_eq!(status, 200, "{d}");
    let text = d.to_string();
    assert!(text.contains("below min_free_gb 50"), "{text}");

    // Rollback: the previous chain places on a again.
    kiln(&cloud, w, &["chain", "rollback"]);
    wait_for_chain(&cloud, "least-free");
    assert_eq!(place_volume(&cloud), "node1@a");
}

#[test]
fn a_rust_filter_goes_from_scaffold_to_changing_placements() {
    author_a_filter("rust", "min-free-filter");
}

#[test]
fn a_c_filter_goes_from_scaffold_to_changing_placements() {
    if std::process::Command::new("clang-19")
        .arg("--version")
        .output()
        .is_err()
    {
        // scripts/build-examples installs clang-19; without it the C path cannot be tried.
        eprintln!("skipped: clang-19 is not installed (scripts/build-examples installs it)");
        return;
    }
    author_a_filter("c", "c-min-free");
}
