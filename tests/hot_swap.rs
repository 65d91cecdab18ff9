//! Hot swap of the scheduler chain on a running `kiln all-in-one`, through the admin API:
//! components are uploaded and validated (a broken one is refused and not kept), chain
//! versions recorded, activation switches the live scheduler (seen by dry runs and by where
//! the next volume lands), rollback restores the previous chain, and a chain that fails
//! validation leaves the live one untouched.

use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{block_on, http, Cloud};
use serde_json::{json, Value};

/// Two file backends; b allows no over-subscription, so the Capacity weigher (virtual free
/// space) ranks a first and a negative multiplier ranks b first.
const TWO_BACKENDS: &str = "host = \"node1\"\nenabled_backends = [\"a\", \"b\"]\n\
    [backends.a]\ndriver = \"file\"\n[backends.b]\ndriver = \"file\"\nmax_over_subscription_ratio = 1.0\n";

fn dry_run(cloud: &Cloud) -> Value {
    let (status, body) = http(
        "POST",
        &format!("{}/kiln-scheduler/dry-run", cloud.api),
        Some(json!({"volume": {"size": 1}})),
    );
    assert_eq!(status, 200, "{body}");
    body["dry_run"].clone()
}

fn chosen_backend(cloud: &Cloud) -> String {
    let d = dry_run(cloud);
    let chosen = d["chosen"].as_str().unwrap_or_default();
    chosen.split('#').next().unwrap_or_default().to_string()
}

fn chain(name: &str, weigher_multiplier: f64) -> Value {
    json!({"chain": {
        "name": name,
        "filters": [
            {"plugin": "availability_zone_filter"},
            {"plugin": "capacity_filter"},
            {"plugin": "capabilities_filter"}
        ],
        "weighers": [{
            "plugin": "capacity_weigher",
            "multiplier": weigher_multiplier,
            "config": {"capacity_weight_multiplier": weigher_multiplier.to_string()}
        }]
    }})
}

fn create_chain(cloud: &Cloud, body: Value) -> (u16, Value) {
    http("POST", &format!("{}/kiln-chains", cloud.api), Some(body))
}

fn activate(cloud: &Cloud, version: i64) -> Instant {
    let (status, body) = http(
        "POST",
        &format!("{}/kiln-chains/{version}/activate", cloud.api),
        None,
    );
    assert_eq!(status, 200, "{body}");
    Instant::now()
}

/// Wait until dry runs choose `backend`; how long it took.
fn switched_to(cloud: &Cloud, backend: &str, since: Instant) -> Duration {
    loop {
        if chosen_backend(cloud) == backend {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the scheduler never switched to a chain choosing {backend}: {}\n{}",
            dry_run(cloud),
            cloud.aio.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn upload(cloud: &Cloud, name: &str, kind: &str, bytes: Vec<u8>) -> (u16, Value) {
    block_on(async {
        let r = reqwest::Client::new()
            .post(format!(
                "{}/kiln-plugins?name={name}&kind={kind}",
                cloud.api
            ))
            .header("X-Auth-Token", "admin:demo")
            .header("Content-Type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    })
}

#[test]
fn chains_are_validated_activated_everywhere_and_rolled_back() {
    let cloud = Cloud::start(TWO_BACKENDS);
    // The configured preset: capacity weigher +1 → a.
    let d = dry_run(&cloud);
    assert_eq!(d["chain"], "preset default", "{d}");
    assert_eq!(chosen_backend(&cloud), "node1@a", "{d}");
    assert_eq!(d["weighed"].as_array().unwrap().len(), 2, "{d}");

    let (status, body) = create_chain(&cloud, chain("prefer-big", 1.0));
    assert_eq!(status, 201, "{body}");
    let big = body["chain"]["version"].as_i64().unwrap();
    assert_eq!(body["chain"]["validation"]["trial_candidates"], 2, "{body}");
    let (status, body) = create_chain(&cloud, chain("prefer-small", -1.0));
    assert_eq!(status, 201, "{body}");
    let small = body["chain"]["version"].as_i64().unwrap();

    let t = activate(&cloud, small);
    let took = switched_to(&cloud, "node1@b", t);
    assert!(took < Duration::from_secs(1), "switched in {took:?}");
    let d = dry_run(&cloud);
    assert!(d["chain"].as_str().unwrap().contains("prefer-small"), "{d}");

    // The next volume is placed by the new chain.
    let (_, body) = cloud.create(json!({"volume": {"size": 1}}));
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    let v = cloud.settle(&id);
    assert_eq!(v["status"], "available", "{v}");
    assert!(
        v["os-vol-host-attr:host"]
            .as_str()
            .unwrap()
            .starts_with("node1@b#"),
        "{v}"
    );

    // Prometheus metrics count the decision and time every plugin's calls.
    let origin = cloud.api.split("/v3").next().unwrap().to_string();
    let text = block_on(async {
        reqwest::get(format!("{origin}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        text.contains("kiln_scheduler_decisions_total{outcome=\"placed\"} 1"),
        "{text}"
    );
    for plugin in [
        "AvailabilityZoneFilter",
        "CapacityFilter",
        "CapabilitiesFilter",
        "CapacityWeigher",
    ] {
        assert!(
            text.contains(&format!(
                "kiln_plugin_call_seconds_count{{plugin=\"{plugin}\"}}"
            )),
            "{plugin} calls are timed: {text}"
        );
    }
    assert!(
        text.contains("kiln_scheduler_decision_seconds_bucket{chain="),
        "{text}"
    );

    let t = activate(&cloud, big);
    switched_to(&cloud, "node1@a", t);
    // Rollback: back to the chain active before the current one.
    let (status, body) = http("POST", &format!("{}/kiln-chains/rollback", cloud.api), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active_version"], small);
    switched_to(&cloud, "node1@b", Instant::now());

    let (_, list) = http("GET", &format!("{}/kiln-chains", cloud.api), None);
    assert_eq!(list["active_version"], small, "{list}");
    assert_eq!(list["chains"].as_array().unwrap().len(), 2);

    // A chain that cannot be built is refused, and the live chain stays.
    let mut broken = chain("broken", 1.0);
    broken["chain"]["filters"][0]["plugin"] = json!("capacity_weigher");
    let (status, body) = create_chain(&cloud, broken);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("listed as a Filter"),
        "{body}"
    );
    let (status, _) = create_chain(
        &cloud,
        json!({"chain": {"name": "x", "filters": [{"plugin": "sha256:00"}], "weighers": []}}),
    );
    assert_eq!(status, 400);
    // A stage's limits out of range: refused with the bounds.
    let mut greedy = chain("greedy", 1.0);
    greedy["chain"]["filters"][0]["limits"] = json!({"memory_mib": 100_000});
    let (status, body) = create_chain(&cloud, greedy);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("limits.memory_mib = 100000 is out of range: give 1 to 4096"),
        "{body}"
    );
    assert_eq!(
        chosen_backend(&cloud),
        "node1@b",
        "the live chain is untouched"
    );
}

#[test]
fn uploaded_components_are_validated_and_usable_by_hash() {
    let cloud = Cloud::start(TWO_BACKENDS);
    // Not a component at all, and a truncated one: refused, nothing kept.
    let (status, _) = upload(&cloud, "junk", "filter", b"hello".to_vec());
    assert_eq!(status, 400);
    let (status, body) = upload(
        &cloud,
        "truncated",
        "filter",
        b"\0asm\x0d\0\x01\0garbage".to_vec(),
    );
    assert_eq!(status, 400, "{body}");
    let (_, list) = http("GET", &format!("{}/kiln-plugins", cloud.api), None);
    assert_eq!(list["plugins"].as_array().unwrap().len(), 0, "{list}");

    // A weigher uploaded as a filter: the wrong world.
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist");
    let weigher = std::fs::read(dist.join("capacity_weigher.wasm")).unwrap();
    let (status, body) = upload(&cloud, "w", "filter", weigher.clone());
    assert_eq!(status, 400, "{body}");
    assert!(
        body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("filter"),
        "{body}"
    );

    // A real component: kept, validated with a trial over the live pools, usable by hash.
    let (status, body) = upload(&cloud, "my-capacity-weigher", "weigher", weigher);
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["plugin"]["validation"]["trial_candidates"], 2,
        "{body}"
    );
    let sha = body["plugin"]["sha256"].as_str().unwrap().to_string();
    let (status, body) = create_chain(
        &cloud,
        json!({"chain": {"name": "uploaded", "filters": [{"plugin": "capacity_filter"}],
               "weighers": [{"plugin": format!("sha256:{sha}"), "multiplier": -1.0,
                             "config": {"capacity_weight_multiplier": "-1.0"}}]}}),
    );
    assert_eq!(status, 201, "{body}");
    let v = body["chain"]["version"].as_i64().unwrap();
    let t = activate(&cloud, v);
    switched_to(&cloud, "node1@b", t);
}

#[test]
fn kiln_cli_drives_the_same_admin_api() {
    use kiln_integration_tests::process as p;
    let cloud = Cloud::start(TWO_BACKENDS);
    let spec = cloud.dir.path().join("small.json");
    std::fs::write(&spec, chain("cli-small", -1.0)["chain"].to_string()).unwrap();
    let url = cloud.api.clone();
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--url", url.as_str()]);
        let (code, out, err) = p::kiln_run(cloud.dir.path(), None, &all);
        assert_eq!(code, 0, "kiln {args:?}: {err}");
        serde_json::from_str::<Value>(&out)
            .unwrap_or_else(|e| panic!("kiln {args:?} printed no JSON ({e}): {out}"))
    };
    let created = run(&["chain", "create", spec.to_str().unwrap()]);
    let version = created["chain"]["version"].as_i64().unwrap();
    run(&["chain", "activate", &version.to_string()]);
    switched_to(&cloud, "node1@b", Instant::now());
    let listed = run(&["chain", "list"]);
    assert_eq!(listed["active_version"], version);
    let d = run(&["dry-run", "--size", "1", "--zone", "nova"]);
    assert!(
        d["dry_run"]["chosen"]
            .as_str()
            .unwrap()
            .starts_with("node1@b#"),
        "{d}"
    );
    // Errors come back as a non-zero exit with the API's message.
    let (code, _, err) = p::kiln_run(
        cloud.dir.path(),
        None,
        &["chain", "activate", "999", "--url", &url],
    );
    assert_ne!(code, 0);
    assert!(err.contains("404") && err.contains("999"), "{err}");
}

#[test]
fn shadow_chain_reports_where_it_would_place_differently() {
    let cloud = Cloud::start(TWO_BACKENDS);
    let (status, body) = create_chain(&cloud, chain("prefer-small", -1.0));
    assert_eq!(status, 201, "{body}");
    let small = body["chain"]["version"].as_i64().unwrap();
    let (status, body) = http(
        "POST",
        &format!("{}/kiln-chains/{small}/shadow", cloud.api),
        None,
    );
    assert_eq!(status, 202, "{body}");
    // Started by a fanout: wait until the scheduler runs it.
    let started = Instant::now();
    loop {
        let (_, body) = http("GET", &format!("{}/kiln-chains/shadow", cloud.api), None);
        if body["shadow"]["chain"]
            .as_str()
            .is_some_and(|c| c.contains("prefer-small"))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "shadow never started: {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..3 {
        let (_, body) = cloud.create(json!({"volume": {"size": 1}}));
        let id = body["volume"]["id"].as_str().unwrap().to_string();
        let v = cloud.settle(&id);
        assert!(
            v["os-vol-host-attr:host"]
                .as_str()
                .unwrap()
                .starts_with("node1@a#"),
            "the live chain (preset default) still places: {v}"
        );
    }
    let (status, body) = http("GET", &format!("{}/kiln-chains/shadow", cloud.api), None);
    assert_eq!(status, 200, "{body}");
    let r = &body["shadow"];
    assert_eq!(r["compared"], 3, "{r}");
    assert_eq!(r["differing"], 3, "{r}");
    let ex = &r["examples"][0];
    assert!(ex["live"].as_str().unwrap().starts_with("node1@a#"), "{r}");
    assert!(
        ex["shadow"].as_str().unwrap().starts_with("node1@b#"),
        "{r}"
    );
    assert!(r["chain"].as_str().unwrap().contains("prefer-small"), "{r}");

    let (status, _) = http("DELETE", &format!("{}/kiln-chains/shadow", cloud.api), None);
    assert_eq!(status, 202);
    let started = Instant::now();
    loop {
        let (_, body) = http("GET", &format!("{}/kiln-chains/shadow", cloud.api), None);
        if body["shadow"]["chain"].is_null() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "shadow never stopped: {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The database is the source of truth, the fanout only tells: a chain recorded active in the
/// database without any fanout (as a scheduler that missed it during a broker reconnect would
/// see it) is picked up by the scheduler's periodic reconciliation, within a few
/// `report_interval`s, without a restart or SIGHUP.
#[test]
fn a_scheduler_that_missed_the_activation_fanout_catches_up_from_the_database() {
    let cloud = Cloud::start(&format!(
        "report_interval = 1\nservice_down_time = 5\nperiodic_fuzzy_delay = 0\n{TWO_BACKENDS}"
    ));
    assert_eq!(chosen_backend(&cloud), "node1@a");
    let (status, body) = create_chain(&cloud, chain("prefer-b", -1.0));
    assert_eq!(status, 201, "{body}");
    let version = body["chain"]["version"].as_i64().unwrap();
    // Recording a version activates nothing.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(chosen_backend(&cloud), "node1@a");

    // Activate in the database only: no API call, so no fanout.
    block_on(async {
        use kiln::db::{Db, DbOptions};
        let url = format!(
            "sqlite://{}",
            cloud.dir.path().join("kiln-data/kiln.db").display()
        );
        let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
        db.chain_activate(version).await.unwrap();
    });
    let took = switched_to(&cloud, "node1@b", Instant::now());
    eprintln!("reconciled {took:?} after the database activation");
    assert!(
        dry_run(&cloud)["chain"]
            .as_str()
            .unwrap_or_default()
            .ends_with(" prefer-b"),
        "{}",
        dry_run(&cloud)
    );
    assert!(
        cloud
            .aio
            .log_text()
            .contains("scheduler chain differs from the database's; activating it"),
        "the catch-up was the reconciliation's"
    );
}
