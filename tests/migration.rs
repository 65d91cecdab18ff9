//! Volume migration and in-use extend against a real `kiln all-in-one` with two file backends
//! (`a`, the larger, where new volumes land, and `b`) — and, for a migration that cannot copy,
//! a third backend on the qemu-img WASM driver, whose volumes this host cannot open. Bytes
//! written into a volume's file before a migration are read back from the destination after
//! it; quota does not move; a failed migration leaves the volume as it was and says why.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{block_on, http, http_v, Cloud};
use serde_json::{json, Value};

const TWO_FILE_BACKENDS: &str = "host = \"node1\"\nenabled_backends = [\"a\", \"b\"]\n\
     [backends.a]\ndriver = \"file\"\ncapacity_gb = 100\n\
     [backends.b]\ndriver = \"file\"\ncapacity_gb = 50\n";

const MARK_AT: u64 = 512 << 20;

fn action(cloud: &Cloud, id: &str, body: Value, version: &str) -> (u16, Value) {
    http_v(
        "POST",
        &format!("{}/volumes/{id}/action", cloud.api),
        Some(body),
        version,
    )
}

/// A 1 GiB volume on backend `a` with two marks written into its file.
fn volume_with_marks(cloud: &Cloud, name: &str) -> (String, Vec<u8>) {
    let (status, body) = cloud.create(json!({"volume": {"size": 1, "name": name}}));
    assert_eq!(status, 202, "{body}");
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    let v = cloud.settle(&id);
    assert_eq!(v["status"], "available", "{v}");
    assert_eq!(
        v["os-vol-host-attr:host"], "node1@a#a",
        "the larger backend"
    );
    let mark = format!("kiln migration mark of {id}").into_bytes();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(file_on(cloud, "a", &id))
        .unwrap();
    f.write_all_at(&mark, 0).unwrap();
    f.write_all_at(&mark, MARK_AT).unwrap();
    f.sync_all().unwrap();
    (id, mark)
}

fn file_on(cloud: &Cloud, backend: &str, name_id: &str) -> PathBuf {
    cloud.volume_dir(backend).join(format!("volume-{name_id}"))
}

/// Wait until the migration of `id` has ended (`success` or `error`); the volume's view.
fn settle_migration(cloud: &Cloud, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, body) = cloud.show(id);
        let v = body["volume"].clone();
        if matches!(v["migration_status"].as_str(), Some("success" | "error")) {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "migration of {id} stuck: {v}\n{}",
            cloud.aio.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_marks(path: &PathBuf, mark: &[u8]) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for at in [0, MARK_AT] {
        let mut got = vec![0u8; mark.len()];
        f.read_exact_at(&mut got, at).unwrap();
        assert_eq!(got, mark, "{} at {at}", path.display());
    }
    assert_eq!(f.metadata().unwrap().len(), 1 << 30, "1 GiB");
}

fn gigabytes_in_use(cloud: &Cloud) -> i64 {
    let (status, body) = http(
        "GET",
        &format!("{}/os-quota-sets/demo?usage=true", cloud.api),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["quota_set"]["gigabytes"]["in_use"].as_i64().unwrap()
}

/// The user's volume ended on `backend` under a new backend name, with the bytes, and the old
/// copy and the temporary volume are gone.
fn assert_moved(cloud: &Cloud, v: &Value, id: &str, backend: &str, mark: &[u8]) {
    assert_eq!(
        (v["status"].as_str(), v["migration_status"].as_str()),
        (Some("available"), Some("success")),
        "{v}"
    );
    assert_eq!(
        v["os-vol-host-attr:host"],
        format!("node1@{backend}#{backend}")
    );
    let name_id = v["os-vol-mig-status-attr:name_id"]
        .as_str()
        .expect("the volume is known by the new copy's name")
        .to_string();
    assert_ne!(name_id, id);
    assert_marks(&file_on(cloud, backend, &name_id), mark);
    let started = Instant::now();
    while file_on(cloud, "a", id).exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the old copy is deleted from the source"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = cloud.show(&name_id);
    assert_eq!(status, 404, "the temporary volume is gone");
}

#[test]
fn migration_moves_the_bytes_to_the_named_or_chosen_backend_and_keeps_quota() {
    let cloud = Cloud::start(TWO_FILE_BACKENDS);
    let (id, mark) = volume_with_marks(&cloud, "explicit");
    let used = gigabytes_in_use(&cloud);

    // Bad requests change nothing.
    for (body, version, why) in [
        (
            json!({"os-migrate_volume": {}}),
            "3.15",
            "host is required before 3.16",
        ),
        (
            json!({"os-migrate_volume": {"host": "node1@a"}}),
            "3.16",
            "the current backend",
        ),
        (
            json!({"os-migrate_volume": {"host": "node9@x"}}),
            "3.16",
            "no such service",
        ),
        (
            json!({"os-migrate_volume": {"host": "node1@b", "lock_volume": "maybe"}}),
            "3.16",
            "a bad flag",
        ),
    ] {
        let (status, body) = action(&cloud, &id, body, version);
        assert_eq!(status, 400, "{why}: {body}");
        assert!(body["badRequest"]["message"].is_string(), "{body}");
    }
    let v = cloud.show(&id).1["volume"].clone();
    assert_eq!(
        (v["status"].as_str(), v["migration_status"].as_str()),
        (Some("available"), None)
    );

    // With a host, locked: the bytes follow the volume to b.
    let (status, body) = action(
        &cloud,
        &id,
        json!({"os-migrate_volume": {"host": "node1@b", "lock_volume": true, "force_host_copy": false}}),
        "3.0",
    );
    assert_eq!(status, 202, "{body}");
    let v = settle_migration(&cloud, &id);
    assert_moved(&cloud, &v, &id, "b", &mark);
    assert_eq!(gigabytes_in_use(&cloud), used, "quota is unchanged");

    // Without a host (3.16): the chain chooses, never the source backend.
    let (id2, mark2) = volume_with_marks(&cloud, "chosen");
    let (status, body) = action(&cloud, &id2, json!({"os-migrate_volume": {}}), "3.16");
    assert_eq!(status, 202, "{body}");
    let v = settle_migration(&cloud, &id2);
    assert_moved(&cloud, &v, &id2, "b", &mark2);

    // The migrated volume works as before: it grows (on its new backend's file) and deletes.
    let (status, body) = action(&cloud, &id, json!({"os-extend": {"new_size": 2}}), "3.0");
    assert_eq!(status, 202, "{body}");
    let v = cloud.settle_extend(&id);
    assert_eq!(v["size"], 2, "{v}");
    let name_id = v["os-vol-mig-status-attr:name_id"].as_str().unwrap();
    assert_eq!(
        std::fs::metadata(file_on(&cloud, "b", name_id))
            .unwrap()
            .len(),
        2 << 30
    );
    let (status, _) = http("DELETE", &format!("{}/volumes/{id}", cloud.api), None);
    assert_eq!(status, 202);
    let started = Instant::now();
    while cloud.show(&id).0 != 404 {
        assert!(started.elapsed() < Duration::from_secs(10), "delete");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!file_on(&cloud, "b", name_id).exists());
}

#[test]
fn a_migration_that_cannot_copy_leaves_the_volume_intact_and_says_why() {
    let images = tempfile::tempdir().unwrap();
    let config = format!(
        "host = \"node1\"\nenabled_backends = [\"a\", \"b\", \"c\"]\n\
         [backends.a]\ndriver = \"file\"\ncapacity_gb = 100\n\
         [backends.b]\ndriver = \"file\"\ncapacity_gb = 50\n\
         [backends.c]\ndriver = \"wasm\"\nplugin = \"qemu_img_driver\"\n\
         plugin_config = {{ root = \"{}\", capacity_gb = \"10\" }}\n",
        images.path().display()
    );
    let cloud = Cloud::start_with_pools(&config, 3);
    let (id, mark) = volume_with_marks(&cloud, "stays");
    let (status, body) = action(
        &cloud,
        &id,
        json!({"os-migrate_volume": {"host": "node1@c"}}),
        "3.16",
    );
    assert_eq!(status, 202, "{body}");
    let v = settle_migration(&cloud, &id);
    assert_eq!(
        (
            v["status"].as_str(),
            v["migration_status"].as_str(),
            v["os-vol-host-attr:host"].as_str()
        ),
        (Some("available"), Some("error"), Some("node1@a#a")),
        "{v}"
    );
    assert_eq!(v["os-vol-mig-status-attr:name_id"], Value::Null);
    assert_marks(&file_on(&cloud, "a", &id), &mark);
    let m = cloud.messages(&id).join("\n");
    assert!(
        m.contains("exposes no path to copy into") && m.contains("volume is unchanged"),
        "{m}"
    );
    // The temporary volume made on c is deleted there.
    let started = Instant::now();
    while std::fs::read_dir(images.path()).unwrap().next().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "temporary volume left on c: {:?}\n{}",
            std::fs::read_dir(images.path())
                .unwrap()
                .collect::<Vec<_>>(),
            cloud.aio.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // After the error the volume can be used (and migrated) again.
    let (status, body) = action(
        &cloud,
        &id,
        json!({"os-migrate_volume": {"host": "node1@b"}}),
        "3.16",
    );
    assert_eq!(status, 202, "{body}");
    let v = settle_migration(&cloud, &id);
    assert_moved(&cloud, &v, &id, "b", &mark);
}

#[test]
fn retype_on_demand_migrates_to_a_backend_of_the_new_type() {
    let cloud = Cloud::start(TWO_FILE_BACKENDS);
    let (status, body) = http(
        "POST",
        &format!("{}/types", cloud.api),
        Some(json!({"volume_type": {"name": "on-b", "extra_specs": {"volume_backend_name": "b"}}})),
    );
    assert_eq!(status, 200, "{body}");
    let (id, mark) = volume_with_marks(&cloud, "retyped");
    let settle = || {
        let started = Instant::now();
        loop {
            let v = cloud.show(&id).1["volume"].clone();
            if v["status"] != "retyping" {
                return v;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "stuck: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // `never`: refused with the filter's reason, nothing moves.
    let (status, _) = action(
        &cloud,
        &id,
        json!({"os-retype": {"new_type": "on-b"}}),
        "3.0",
    );
    assert_eq!(status, 202);
    let v = settle();
    assert_eq!(v["os-vol-host-attr:host"], "node1@a#a");
    assert_ne!(v["volume_type"], "on-b");
    // `on-demand`: migrated to b, with the new type.
    let (status, body) = action(
        &cloud,
        &id,
        json!({"os-retype": {"new_type": "on-b", "migration_policy": "on-demand"}}),
        "3.0",
    );
    assert_eq!(status, 202, "{body}");
    let v = settle();
    assert_eq!(v["volume_type"], "on-b", "{v}");
    assert_moved(&cloud, &v, &id, "b", &mark);
    // The swap moved the volume's per-type usage to the new type.
    let (_, q) = http(
        "GET",
        &format!("{}/os-quota-sets/demo?usage=true", cloud.api),
        None,
    );
    let in_use = |k: &str| q["quota_set"][k]["in_use"].as_i64();
    assert_eq!(
        (in_use("volumes_on-b"), in_use("volumes___DEFAULT__")),
        (Some(1), Some(0)),
        "{q}"
    );
}

#[test]
fn in_use_extend_through_the_attachments_api_ends_in_use() {
    let cloud = Cloud::start(TWO_FILE_BACKENDS);
    let (status, body) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(status, 202, "{body}");
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.settle(&id)["status"], "available");
    let (status, body) = http_v(
        "POST",
        &format!("{}/attachments", cloud.api),
        Some(json!({"attachment": {
            "volume_id": id,
            "instance_uuid": "6a1d5a7e-5c55-4a3a-8ad8-3c0f7b0a0042",
            "connector": {"host": "compute1", "initiator": "iqn.1993-08.org.debian:01:kiln"}
        }})),
        "3.44",
    );
    assert_eq!(status, 200, "{body}");
    let a = body["attachment"]["id"].as_str().unwrap().to_string();
    let (status, body) = http_v(
        "POST",
        &format!("{}/attachments/{a}/action", cloud.api),
        Some(json!({"os-complete": null})),
        "3.44",
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(cloud.show(&id).1["volume"]["status"], "in-use");

    // Before 3.42 an attached volume cannot be extended.
    let (status, body) = action(&cloud, &id, json!({"os-extend": {"new_size": 2}}), "3.41");
    assert_eq!(status, 400, "{body}");
    // The file backend reports online_extend_support.
    let (_, pools) = http(
        "GET",
        &format!("{}/scheduler-stats/get_pools?detail=true", cloud.api),
        None,
    );
    assert!(
        pools["pools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["capabilities"]["online_extend_support"] == true),
        "{pools}"
    );
    let (status, body) = action(&cloud, &id, json!({"os-extend": {"new_size": 2}}), "3.42");
    assert_eq!(status, 202, "{body}");
    let v = cloud.settle_extend(&id);
    assert_eq!(
        (v["status"].as_str(), v["size"].as_i64()),
        (Some("in-use"), Some(2)),
        "{v}"
    );
    assert_eq!(
        std::fs::metadata(file_on(&cloud, "a", &id)).unwrap().len(),
        2 << 30
    );
    assert_eq!(v["attachments"][0]["attachment_id"], a.as_str());
    // A growth the pool cannot take: back to in-use with the reason.
    let (status, body) = http(
        "PUT",
        &format!("{}/os-quota-sets/demo", cloud.api),
        Some(json!({"quota_set": {"gigabytes": -1, "per_volume_gigabytes": -1}})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = action(
        &cloud,
        &id,
        json!({"os-extend": {"new_size": 5_000_000}}),
        "3.42",
    );
    assert_eq!(status, 202);
    let v = cloud.settle_extend(&id);
    assert_eq!(
        (v["status"].as_str(), v["size"].as_i64()),
        (Some("in-use"), Some(2)),
        "{v}"
    );
    assert!(
        cloud.messages(&id).join("\n").contains("CapacityFilter"),
        "the refusal names the filter"
    );
    // An attached volume cannot be migrated (no compute service to swap the attachment).
    let (status, body) = action(
        &cloud,
        &id,
        json!({"os-migrate_volume": {"host": "node1@b"}}),
        "3.16",
    );
    assert_eq!(status, 400, "{body}");
}

/// Run `sql` on the all-in-one's database with `binds` (what a crash mid-migration leaves).
fn sql(cloud: &Cloud, sql: &str, binds: &[&str]) {
    let url = format!(
        "sqlite://{}",
        cloud.dir.path().join("kiln-data/kiln.db").display()
    );
    block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(*b);
        }
        assert_eq!(q.execute(&pool).await.unwrap().rows_affected(), 1, "{sql}");
    });
}

#[test]
fn a_restart_mid_migration_undoes_it_and_keeps_the_volume() {
    let mut cloud = Cloud::start(TWO_FILE_BACKENDS);
    let (id, mark) = volume_with_marks(&cloud, "interrupted");
    // The state a crash during the copy leaves: the volume locked and migrating, its temporary
    // volume placed (and created) on b.
    let tmp = "6f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
    sql(
        &cloud,
        "UPDATE volumes SET migration_status = 'migrating', previous_status = 'available', \
         status = 'maintenance' WHERE id = $1",
        &[&id],
    );
    sql(
        &cloud,
        "INSERT INTO volumes (id, project_id, user_id, size, status, migration_status, \
         availability_zone, host, use_quota, created_at, updated_at) VALUES ($1, 'demo', \
         'alice', 1, 'available', $2, 'nova', 'node1@b#b', 0, '2026-01-01T00:00:00.000000', \
         '2026-01-01T00:00:00.000000')",
        &[tmp, &format!("target:{id}")],
    );
    std::fs::File::create(file_on(&cloud, "b", tmp))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    cloud.crash_and_restart();
    let v = settle_migration(&cloud, &id);
    assert_eq!(
        (
            v["status"].as_str(),
            v["migration_status"].as_str(),
            v["os-vol-host-attr:host"].as_str()
        ),
        (Some("available"), Some("error"), Some("node1@a#a")),
        "{v}"
    );
    assert_marks(&file_on(&cloud, "a", &id), &mark);
    assert!(
        cloud.messages(&id).join("\n").contains("was interrupted"),
        "the owner is told"
    );
    let started = Instant::now();
    while cloud.show(tmp).0 != 404 || file_on(&cloud, "b", tmp).exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the temporary volume is deleted from b\n{}",
            cloud.aio.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = http("DELETE", &format!("{}/volumes/{id}", cloud.api), None);
    assert_eq!(status, 202, "usable again: {body}");
}
