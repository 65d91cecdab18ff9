//! Volumes end to end through a real `kiln all-in-one`: the REST API records the volume, the
//! scheduler places it through the WASM plugin chain, the volume service creates it with the
//! file driver; a driver failure is rescheduled to another backend; an impossible request ends
//! in `error` with a message naming the filter, the pool and the reason; delete removes it.

use std::path::Path;
use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{block_on, http, http_v, Cloud};
use kiln_integration_tests::process as p;
use serde_json::json;

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

#[test]
fn volume_is_created_listed_shown_and_deleted() {
    let cloud = Cloud::start("host = \"node1\"\n");
    let (status, body) =
        cloud.create(json!({"volume": {"size": 1, "name": "data", "metadata": {"tier": "gold"}}}));
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["volume"]["status"], "creating");
    assert_eq!(body["volume"]["name"], "data");
    let id = body["volume"]["id"].as_str().unwrap().to_string();

    let v = cloud.settle(&id);
    assert_eq!(v["status"], "available", "{v}\n{}", cloud.aio.log_text());
    let host = v["os-vol-host-attr:host"].as_str().unwrap();
    assert!(
        host.starts_with("node1@file#"),
        "placed on the file backend: {host}"
    );
    assert_eq!(v["metadata"]["tier"], "gold");
    let file = cloud.volume_dir("file").join(format!("volume-{id}"));
    assert_eq!(
        file_size(&file),
        Some(1 << 30),
        "a 1 GiB sparse file at {file:?}"
    );

    let (_, list) = http("GET", &format!("{}/volumes", cloud.api), None);
    assert!(list["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == id.as_str()));
    let (_, detail) = http(
        "GET",
        &format!("{}/volumes/detail?name=data", cloud.api),
        None,
    );
    assert_eq!(detail["volumes"].as_array().unwrap().len(), 1);
    let (status, _) = http(
        "GET",
        &format!("{}/volumes/detail?limit=x", cloud.api),
        None,
    );
    assert_eq!(status, 400, "a bad limit is a bad request");

    // Extend: through the scheduler's chain (operation extend), then the driver.
    let action = format!("{}/volumes/{id}/action", cloud.api);
    let (status, body) = http("POST", &action, Some(json!({"os-extend": {"new_size": 1}})));
    assert_eq!(status, 400, "not larger: {body}");
    let (status, body) = http("POST", &action, Some(json!({"os-extend": {"new_size": 2}})));
    assert_eq!(status, 202, "{body}");
    let v = cloud.settle_extend(&id);
    assert_eq!(
        (v["status"].as_str(), v["size"].as_i64()),
        (Some("available"), Some(2)),
        "{v}"
    );
    assert_eq!(file_size(&file), Some(2 << 30), "the file grew to 2 GiB");
    // Lift the gigabytes quota so the request reaches the scheduler.
    let (status, body) = http(
        "PUT",
        &format!("{}/os-quota-sets/demo", cloud.api),
        Some(json!({"quota_set": {"gigabytes": -1, "per_volume_gigabytes": -1}})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = http(
        "POST",
        &action,
        Some(json!({"os-extend": {"new_size": 5_000_000}})),
    );
    assert_eq!(status, 202, "accepted, then refused by the scheduler");
    let v = cloud.settle_extend(&id);
    assert_eq!(
        (v["status"].as_str(), v["size"].as_i64()),
        (Some("available"), Some(2)),
        "{v}"
    );
    let m = cloud.messages(&id).join("\n");
    assert!(
        m.contains("cannot grow the volume to 5000000 GB (CapacityFilter:"),
        "{m}"
    );

    let (status, body) = http("DELETE", &format!("{}/volumes/{id}", cloud.api), None);
    assert_eq!(status, 202, "{body}");
    let started = Instant::now();
    while cloud.show(&id).0 != 404 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "volume never went away"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(file_size(&file), None, "the volume file is removed");
    let (status, body) = cloud.show(&id);
    assert_eq!(status, 404);
    assert_eq!(body["itemNotFound"]["code"], 404, "{body}");
}

#[test]
fn bad_requests_are_refused_and_nothing_is_created() {
    let cloud = Cloud::start("host = \"node1\"\n");
    for (body, needle) in [
        (json!({"volume": {"size": 0}}), "greater than 0"),
        (json!({"volume": {"size": "abc"}}), "greater than 0"),
        (json!({"volume": {}}), "'size' is a required property"),
        (
            json!({"volume": {"size": 1, "availability_zone": "mars"}}),
            "Availability zone 'mars' is invalid",
        ),
        (json!({"nothing": {}}), "'volume'"),
    ] {
        let (status, resp) = cloud.create(body.clone());
        assert_eq!(status, 400, "{body} → {resp}");
        let msg = resp["badRequest"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(needle),
            "{body}: message `{msg}` should mention `{needle}`"
        );
    }
    let (_, list) = http("GET", &format!("{}/volumes", cloud.api), None);
    assert_eq!(
        list["volumes"].as_array().unwrap().len(),
        0,
        "nothing was recorded"
    );
}

#[test]
fn impossible_volume_ends_in_error_naming_filter_pool_and_reason() {
    let cloud = Cloud::start("host = \"node1\"\n");
    // Lift the gigabytes quota so the request reaches the scheduler.
    let (status, body) = http(
        "PUT",
        &format!("{}/os-quota-sets/demo", cloud.api),
        Some(json!({"quota_set": {"gigabytes": -1, "per_volume_gigabytes": -1}})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = cloud.create(json!({"volume": {"size": 1_000_000}}));
    assert_eq!(status, 202, "{body}");
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    let v = cloud.settle(&id);
    assert_eq!(v["status"], "error");
    let messages = cloud.messages(&id);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert!(m.starts_with("No valid backend was found."), "{m}");
    assert!(
        m.contains("CapacityFilter removed 1 pool (node1@file#"),
        "{m}"
    );
    assert!(
        m.contains("would exceed max over-subscription ratio") || m.contains("needs 1000000 GB"),
        "the reason says why the pool cannot hold it: {m}"
    );
    // An errored volume can be deleted.
    let (status, _) = http("DELETE", &format!("{}/volumes/{id}", cloud.api), None);
    assert_eq!(status, 202);
}

#[test]
fn driver_failure_is_rescheduled_to_another_backend_then_explained_when_none_is_left() {
    // Backend b allows no over-subscription, so the Capacity weigher (virtual free space) prefers a.
    let cloud = Cloud::start(
        "host = \"node1\"\nenabled_backends = [\"a\", \"b\"]\nbackend_stats_polling_interval = 3600\n\
         [backends.a]\ndriver = \"file\"\n[backends.b]\ndriver = \"file\"\nmax_over_subscription_ratio = 1.0\n",
    );
    // Break a: its volume directory becomes a file, so creating a volume file there fails.
    let a = cloud.volume_dir("a");
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::write(&a, b"not a directory").unwrap();

    let (status, body) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(status, 202, "{body}");
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    let v = cloud.settle(&id);
    assert_eq!(
        v["status"],
        "available",
        "{v}\n{:?}\n{}",
        cloud.messages(&id),
        cloud.aio.log_text()
    );
    assert!(
        v["os-vol-host-attr:host"]
            .as_str()
            .unwrap()
            .starts_with("node1@b#"),
        "rescheduled to b after a failed: {v}"
    );
    let log = cloud.aio.log_text();
    assert!(
        log.contains("rescheduling"),
        "the failure on a was logged as a reschedule"
    );

    // Break b too: both fail, the third attempt finds no backend left to try.
    let b = cloud.volume_dir("b");
    std::fs::remove_dir_all(&b).unwrap();
    std::fs::write(&b, b"not a directory").unwrap();
    let (_, body) = cloud.create(json!({"volume": {"size": 1}}));
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    let v = cloud.settle(&id);
    assert_eq!(v["status"], "error", "{v}");
    let m = cloud.messages(&id).join("\n");
    assert!(
        m.contains("Every backend up and enabled was already tried: node1@a, node1@b")
            || m.contains("Every backend up and enabled was already tried: node1@b, node1@a"),
        "{m}"
    );
    assert!(
        m.contains("Last error: backend"),
        "the driver's error is quoted: {m}"
    );
}

/// Two schedulers, each with its own in-memory view, racing to fill one pool: the database
/// check at placement (a per-pool advisory lock on PostgreSQL) lets exactly as many volumes
/// in as the pool's limit allows.
#[test]
fn concurrent_placements_never_over_commit_a_pool_on_postgresql() {
    use kiln::db::placement::PoolLimit;
    use kiln::db::volumes::NewVolume;
    use kiln::db::{Db, DbOptions};
    block_on(async {
        let url = p::fresh_pg_database().await;
        let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
        db.migrate().await.unwrap();
        let limit = PoolLimit {
            capacity_gb: Some(10.0),
        };
        let mut ids = Vec::new();
        for i in 0..20 {
            let id = uuid::Uuid::new_v4().to_string();
            db.volume_create(&NewVolume {
                id: id.clone(),
                project_id: "p".into(),
                user_id: "u".into(),
                display_name: Some(format!("v{i}")),
                size: 1,
                availability_zone: "nova".into(),
                ..Default::default()
            })
            .await
            .unwrap();
            ids.push(id);
        }
        // Two connections pools, as two scheduler processes would have.
        let other = Db::connect(&url, &DbOptions::default()).await.unwrap();
        let tasks: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let db = if i % 2 == 0 {
                    db.clone()
                } else {
                    other.clone()
                };
                let id = id.clone();
                tokio::spawn(async move { db.volume_place(&id, "h@b#p", 1, limit).await.unwrap() })
            })
            .collect();
        let mut placed = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => placed += 1,
                Err(used) => assert_eq!(used, 10.0, "a refusal reports the GB already placed"),
            }
        }
        assert_eq!(placed, 10, "exactly the pool's 10 GB were placed");
    });
}

#[test]
fn volume_types_steer_placement_and_quotas_are_enforced() {
    let cloud = Cloud::start("host = \"node1\"\n");
    let root = cloud.api.clone();
    // A type asking for a capability no pool has: CapabilitiesFilter explains.
    let (status, body) = http(
        "POST",
        &format!("{root}/types"),
        Some(json!({"volume_type": {"name": "nvme"}})),
    );
    assert_eq!(status, 200, "{body}");
    let type_id = body["volume_type"]["id"].as_str().unwrap().to_string();
    let (status, body) = http(
        "POST",
        &format!("{root}/types/{type_id}/extra_specs"),
        Some(json!({"extra_specs": {"storage_protocol": "NVMe"}})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = cloud.create(json!({"volume": {"size": 1, "volume_type": "nvme"}}));
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["volume"]["volume_type"], "nvme");
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.settle(&id)["status"], "error");
    let m = cloud.messages(&id).join("\n");
    assert!(
        m.contains("CapabilitiesFilter removed 1 pool (node1@file#"),
        "{m}"
    );
    assert!(m.contains("storage_protocol"), "{m}");
    let (status, _) = cloud.create(json!({"volume": {"size": 1, "volume_type": "nope"}}));
    assert_eq!(status, 404, "an unknown type is not found");
    // The default type when none is named.
    let (_, body) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(body["volume"]["volume_type"], "__DEFAULT__", "{body}");

    // Quota: 2 volumes exist, but the errored one gave its quota back when its create failed:
    // 1 volume, 1 GB in use. Cap gigabytes at 2.
    let in_use = |resource: &str| {
        let (_, body) = http(
            "GET",
            &format!("{root}/os-quota-sets/demo?usage=true"),
            None,
        );
        body["quota_set"][resource]["in_use"].as_i64().unwrap()
    };
    assert_eq!((in_use("volumes"), in_use("gigabytes")), (1, 1));
    let (status, body) = http(
        "PUT",
        &format!("{root}/os-quota-sets/demo"),
        Some(json!({"quota_set": {"gigabytes": 2}})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = cloud.create(json!({"volume": {"size": 2}}));
    assert_eq!(status, 413, "{body}");
    let msg = body["overLimit"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("gigabytes"), "{msg}");
    let (status, _) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(status, 202, "1 GB still fits");
    assert_eq!((in_use("volumes"), in_use("gigabytes")), (2, 2));
    // Deleting the errored volume releases nothing a second time.
    let (status, _) = http("DELETE", &format!("{root}/volumes/{id}"), None);
    assert_eq!(status, 202);
    let started = Instant::now();
    while cloud.show(&id).0 != 404 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the errored volume was never deleted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!((in_use("volumes"), in_use("gigabytes")), (2, 2));
    let (status, _) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(status, 413, "the quota is still full");
}

#[test]
fn retype_without_migration_goes_through_the_chain() {
    let cloud = Cloud::start("host = \"node1\"\n");
    let root = cloud.api.clone();
    let new_type = |name: &str, specs: serde_json::Value| {
        let (status, body) = http(
            "POST",
            &format!("{root}/types"),
            Some(json!({"volume_type": {"name": name, "extra_specs": specs}})),
        );
        assert_eq!(status, 200, "{body}");
    };
    new_type("fast", json!({"volume_backend_name": "file"}));
    new_type("nvme", json!({"storage_protocol": "NVMe"}));
    let (_, body) = cloud.create(json!({"volume": {"size": 1}}));
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.settle(&id)["status"], "available");
    let retype = |body: serde_json::Value| {
        http(
            "POST",
            &format!("{root}/volumes/{id}/action"),
            Some(json!({ "os-retype": body })),
        )
    };
    let settle = || {
        let started = Instant::now();
        loop {
            let v = cloud.show(&id).1["volume"].clone();
            if v["status"] != "retyping" {
                return v;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "stuck retyping"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // The volume's pool satisfies `fast`: the type changes in place.
    let (status, body) = retype(json!({"new_type": "fast"}));
    assert_eq!(status, 202, "{body}");
    let v = settle();
    assert_eq!(
        (v["status"].as_str(), v["volume_type"].as_str()),
        (Some("available"), Some("fast"))
    );
    let (status, _) = retype(json!({"new_type": "fast"}));
    assert_eq!(status, 400, "the same type");

    // It does not satisfy `nvme`: refused with the filter's reason; nothing changes.
    let (status, _) = retype(json!({"new_type": "nvme"}));
    assert_eq!(status, 202);
    let v = settle();
    assert_eq!(
        (v["status"].as_str(), v["volume_type"].as_str()),
        (Some("available"), Some("fast"))
    );
    let m = cloud.messages(&id).join("\n");
    assert!(
        m.contains("CapabilitiesFilter") && m.contains("migration_policy is never"),
        "{m}"
    );
    let (status, _) = retype(json!({"new_type": "nvme", "migration_policy": "on-demand"}));
    assert_eq!(status, 202);
    settle();
    let m = cloud.messages(&id).join("\n");
    assert!(
        m.contains("no backend other than the source node1@file"),
        "on-demand tries a migration; with one backend there is nowhere to go: {m}"
    );

    // Bad requests.
    let (status, _) = retype(json!({"new_type": "nvme", "migration_policy": "sometimes"}));
    assert_eq!(status, 400);
    let (status, _) = retype(json!({"new_type": "nope"}));
    assert_eq!(status, 404);
    let (status, _) = retype(json!({}));
    assert_eq!(status, 400);
}

/// Cinder's per-volume-type quotas (`volumes_<type>`, `gigabytes_<type>`): a type's limit
/// refuses its volumes with 413 while other types go on, usage is shown per type, a retype
/// into a full type is refused and one into a type with room moves the volume's count.
#[test]
fn per_volume_type_quotas_are_enforced_and_follow_retypes() {
    let cloud = Cloud::start("host = \"node1\"\n");
    let root = cloud.api.clone();
    let (status, body) = http(
        "POST",
        &format!("{root}/types"),
        Some(json!({"volume_type": {"name": "gold"}})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        "PUT",
        &format!("{root}/os-quota-sets/demo"),
        Some(json!({"quota_set": {"volumes_gold": 1, "gigabytes_gold": 5}})),
    );
    assert_eq!(status, 200, "{body}");
    let create = |body: serde_json::Value| {
        let (status, body) = cloud.create(body);
        assert_eq!(status, 202, "{body}");
        let id = body["volume"]["id"].as_str().unwrap().to_string();
        assert_eq!(cloud.settle(&id)["status"], "available");
        id
    };
    let gold = create(json!({"volume": {"size": 2, "volume_type": "gold"}}));
    let (status, body) = cloud.create(json!({"volume": {"size": 1, "volume_type": "gold"}}));
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        body["overLimit"]["message"],
        "Maximum number of volumes allowed (1) exceeded for quota 'volumes_gold'."
    );
    let plain = create(json!({"volume": {"size": 4}}));
    let usage = || {
        let (status, body) = http(
            "GET",
            &format!("{root}/os-quota-sets/demo?usage=true"),
            None,
        );
        assert_eq!(status, 200, "{body}");
        let q = body["quota_set"].clone();
        let in_use = |k: &str| q[k]["in_use"].as_i64().unwrap_or(-99);
        (
            in_use("volumes_gold"),
            in_use("gigabytes_gold"),
            in_use("volumes___DEFAULT__"),
            in_use("volumes"),
        )
    };
    assert_eq!(
        usage(),
        (1, 2, 1, 2),
        "(volumes_gold, gigabytes_gold, default type, all)"
    );

    let retype = || {
        http(
            "POST",
            &format!("{root}/volumes/{plain}/action"),
            Some(json!({"os-retype": {"new_type": "gold"}})),
        )
    };
    let (status, body) = retype();
    assert_eq!(status, 413, "gold has no room for another volume: {body}");
    assert_eq!(cloud.show(&plain).1["volume"]["status"], "available");

    // The gold volume goes; the retype now fits (4 GB of gold's 5) and moves the count.
    let (status, _) = http("DELETE", &format!("{root}/volumes/{gold}"), None);
    assert_eq!(status, 202);
    let started = Instant::now();
    while cloud.show(&gold).0 != 404 {
        assert!(started.elapsed() < Duration::from_secs(20), "never deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(usage(), (0, 0, 1, 1));
    let (status, body) = retype();
    assert_eq!(status, 202, "{body}");
    let started = Instant::now();
    loop {
        let v = cloud.show(&plain).1["volume"].clone();
        if v["status"] != "retyping" {
            assert_eq!(v["volume_type"], "gold", "{v}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "stuck retyping"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(usage(), (1, 4, 0, 1));
}

/// A project's default volume type (`/default-types`, 3.62) is what a create that names no
/// type gets; a create that names a type still gets that one.
#[test]
fn a_projects_default_type_is_used_when_a_create_names_none() {
    let cloud = Cloud::start("host = \"node1\"\n");
    let root = cloud.api.clone();
    let (status, body) = http(
        "POST",
        &format!("{root}/types"),
        Some(json!({"volume_type": {"name": "gold"}})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_v(
        "PUT",
        &format!("{root}/default-types/demo"),
        Some(json!({"default_type": {"volume_type": "gold"}})),
        "3.62",
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["volume"]["volume_type"], "gold");
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.settle(&id)["volume_type"], "gold");
    let (status, body) = cloud.create(json!({"volume": {"size": 1, "volume_type": "__DEFAULT__"}}));
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["volume"]["volume_type"], "__DEFAULT__",
        "a named type wins"
    );
}
