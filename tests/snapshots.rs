//! Snapshots end to end through a real `kiln all-in-one` on the file backend: data written to a
//! volume before a snapshot is in a volume made from that snapshot (and later writes are not);
//! snapshots list, sort, page and filter like Cinder's; a volume with snapshots refuses a plain
//! delete and goes with `cascade=true`; volume and snapshot metadata CRUD; quota counts
//! snapshots; a volume reverts to its latest snapshot (3.40).

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{http, http_v, Cloud};
use serde_json::{json, Value};

const MARK: &[u8] = b"written before the snapshot";

fn settle_snapshot(cloud: &Cloud, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = http("GET", &format!("{}/snapshots/{id}", cloud.api), None);
        if status == 404 {
            return Value::Null;
        }
        let s = body["snapshot"]["status"].as_str().unwrap_or_default();
        if s != "creating" && s != "deleting" {
            return body["snapshot"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "snapshot {id} stuck in {s}\n{}",
            cloud.aio.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_at(path: &std::path::Path, offset: u64, data: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(data).unwrap();
}

fn read_at(path: &std::path::Path, offset: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

fn new_volume(cloud: &Cloud, body: Value) -> String {
    let (status, body) = cloud.create(body);
    assert_eq!(status, 202, "{body}");
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    let v = cloud.settle(&id);
    assert_eq!(v["status"], "available", "{v}\n{}", cloud.aio.log_text());
    id
}

fn snapshot(cloud: &Cloud, volume: &str, name: &str) -> String {
    let (status, body) = http(
        "POST",
        &format!("{}/snapshots", cloud.api),
        Some(json!({"snapshot": {"volume_id": volume, "name": name, "metadata": {"k": name}}})),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["snapshot"]["status"], "creating");
    let id = body["snapshot"]["id"].as_str().unwrap().to_string();
    let s = settle_snapshot(cloud, &id);
    assert_eq!(s["status"], "available", "{s}\n{}", cloud.aio.log_text());
    assert_eq!(s["os-extended-snapshot-attributes:progress"], "100%");
    id
}

#[test]
fn data_before_a_snapshot_is_in_a_volume_made_from_it() {
    let cloud = Cloud::start("host = \"node1\"\n");
    let src = new_volume(&cloud, json!({"volume": {"size": 1, "name": "src"}}));
    let src_file = cloud.volume_dir("file").join(format!("volume-{src}"));
    write_at(&src_file, 4096, MARK);
    let snap = snapshot(&cloud, &src, "s1");
    write_at(&src_file, 4096, b"written AFTER the snapshot!");
    let (_, shown) = http("GET", &format!("{}/snapshots/{snap}", cloud.api), None);
    assert_eq!(shown["snapshot"]["volume_id"], src.as_str());
    assert_eq!(shown["snapshot"]["size"], 1);
    assert_eq!(shown["snapshot"]["metadata"]["k"], "s1");

    // A bigger volume from the snapshot: the snapshot's bytes, grown to the new size.
    let copy = new_volume(&cloud, json!({"volume": {"size": 2, "snapshot_id": snap}}));
    let v = cloud.settle(&copy);
    assert_eq!(v["snapshot_id"], snap.as_str());
    assert_eq!(
        v["os-vol-host-attr:host"]
            .as_str()
            .unwrap()
            .split('#')
            .next(),
        Some("node1@file"),
        "made by the backend holding the snapshot"
    );
    let copy_file = cloud.volume_dir("file").join(format!("volume-{copy}"));
    assert_eq!(read_at(&copy_file, 4096, MARK.len()), MARK);
    assert_eq!(std::fs::metadata(&copy_file).unwrap().len(), 2 << 30);

    // Too small a volume from the snapshot, or a missing snapshot, is refused.
    let (status, body) = cloud.create(json!({"volume": {"size": 1, "snapshot_id": snap}}));
    assert_eq!(status, 202, "same size is fine: {body}");
    let (status, body) = cloud.create(json!({"volume": {"snapshot_id": "nope"}}));
    assert_eq!(status, 404, "{body}");

    // A volume with a snapshot refuses a plain delete and goes with cascade.
    let (status, body) = http("DELETE", &format!("{}/volumes/{src}", cloud.api), None);
    assert_eq!(status, 400, "{body}");
    assert!(
        body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("dependent snapshots"),
        "{body}"
    );
    let (status, body) = http(
        "DELETE",
        &format!("{}/volumes/{src}?cascade=true", cloud.api),
        None,
    );
    assert_eq!(status, 202, "{body}");
    let started = Instant::now();
    while cloud.show(&src).0 != 404 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "cascade delete did not finish\n{}",
            cloud.aio.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = http("GET", &format!("{}/snapshots/{snap}", cloud.api), None);
    assert_eq!(status, 404, "the snapshot went with its volume");
    assert!(!src_file.exists(), "source file removed");
    let leftovers: Vec<_> = std::fs::read_dir(cloud.volume_dir("file"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&snap))
        .collect();
    assert!(leftovers.is_empty(), "snapshot file left: {leftovers:?}");
    assert!(copy_file.exists(), "the volume made from it stays");
}

#[test]
fn snapshots_list_sort_page_filter_update_and_count_against_quota() {
    let cloud = Cloud::start("host = \"node1\"\n");
    let vol = new_volume(&cloud, json!({"volume": {"size": 1}}));
    let ids: Vec<String> = ["b-snap", "a-snap", "c-snap"]
        .iter()
        .map(|n| snapshot(&cloud, &vol, n))
        .collect();
    let names = |body: &Value| -> Vec<String> {
        body["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, all) = http(
        "GET",
        &format!("{}/snapshots/detail?sort=name:asc", cloud.api),
        None,
    );
    assert_eq!(names(&all), ["a-snap", "b-snap", "c-snap"]);
    let (_, page) = http(
        "GET",
        &format!("{}/snapshots?sort=name:asc&limit=2", cloud.api),
        None,
    );
    assert_eq!(names(&page), ["a-snap", "b-snap"]);
    let next = page["snapshots_links"][0]["href"].as_str().unwrap();
    assert!(next.contains("marker="), "{next}");
    let (_, rest) = http("GET", next, None);
    assert_eq!(names(&rest), ["c-snap"], "the next link continues the sort");
    let (_, offset) = http(
        "GET",
        &format!("{}/snapshots?sort=name:desc&offset=1&limit=1", cloud.api),
        None,
    );
    assert_eq!(names(&offset), ["b-snap"]);
    let (_, by_name) = http("GET", &format!("{}/snapshots?name=c-snap", cloud.api), None);
    assert_eq!(names(&by_name), ["c-snap"]);
    let (_, by_volume) = http(
        "GET",
        &format!("{}/snapshots?volume_id={vol}", cloud.api),
        None,
    );
    assert_eq!(by_volume["snapshots"].as_array().unwrap().len(), 3);
    let (status, body) = http(
        "GET",
        &format!("{}/snapshots?sort=secret:asc", cloud.api),
        None,
    );
    assert_eq!(status, 400, "unknown sort key: {body}");

    // Update, snapshot metadata CRUD.
    let s = &ids[0];
    let (status, body) = http(
        "PUT",
        &format!("{}/snapshots/{s}", cloud.api),
        Some(json!({"snapshot": {"name": "renamed", "description": "d"}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["snapshot"]["name"], "renamed");
    let meta = format!("{}/snapshots/{s}/metadata", cloud.api);
    let (_, m) = http("POST", &meta, Some(json!({"metadata": {"x": "1"}})));
    assert_eq!(m["metadata"], json!({"k": "b-snap", "x": "1"}));
    let (_, m) = http(
        "PUT",
        &format!("{meta}/x"),
        Some(json!({"meta": {"x": "2"}})),
    );
    assert_eq!(m["meta"], json!({"x": "2"}));
    let (status, _) = http(
        "PUT",
        &format!("{meta}/x"),
        Some(json!({"meta": {"y": "2"}})),
    );
    assert_eq!(status, 400, "body and URI key must match");
    let (status, _) = http("DELETE", &format!("{meta}/k"), None);
    assert_eq!(status, 200);
    let (status, _) = http("GET", &format!("{meta}/k"), None);
    assert_eq!(status, 404);
    let (_, m) = http("GET", &meta, None);
    assert_eq!(m["metadata"], json!({"x": "2"}));

    // Quota: a limit of 3 snapshots refuses a fourth with 413.
    let (status, body) = http(
        "PUT",
        &format!("{}/os-quota-sets/demo", cloud.api),
        Some(json!({"quota_set": {"snapshots": 3}})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        "POST",
        &format!("{}/snapshots", cloud.api),
        Some(json!({"snapshot": {"volume_id": vol}})),
    );
    assert_eq!(status, 413, "{body}");

    // Deleting a snapshot releases its quota and removes it.
    let (status, _) = http("DELETE", &format!("{}/snapshots/{s}", cloud.api), None);
    assert_eq!(status, 202);
    assert_eq!(settle_snapshot(&cloud, s), Value::Null, "deleted");
    let (status, body) = http(
        "POST",
        &format!("{}/snapshots", cloud.api),
        Some(json!({"snapshot": {"volume_id": vol, "name": "again"}})),
    );
    assert_eq!(status, 202, "quota released by the delete: {body}");

    // No volume is Cinder's 404; create answers without the extended attributes.
    let (status, body) = http(
        "POST",
        &format!("{}/snapshots", cloud.api),
        Some(json!({"snapshot": {}})),
    );
    assert_eq!(status, 404, "{body}");
    let (_, listed) = http("GET", &format!("{}/snapshots", cloud.api), None);
    assert!(
        listed["snapshots"][0]
            .get("os-extended-snapshot-attributes:progress")
            .is_none(),
        "the summary list has no extended attributes: {listed}"
    );
}

#[test]
fn volume_update_metadata_and_listing_options() {
    let cloud = Cloud::start("host = \"node1\"\n");
    let a = new_volume(
        &cloud,
        json!({"volume": {"size": 1, "name": "a", "metadata": {"env": "prod"}}}),
    );
    let b = new_volume(&cloud, json!({"volume": {"size": 3, "name": "b"}}));
    let (status, body) = http(
        "PUT",
        &format!("{}/volumes/{a}", cloud.api),
        Some(json!({"volume": {"description": "first"}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["volume"]["description"], "first");
    assert_eq!(body["volume"]["name"], "a", "unchanged");
    let meta = format!("{}/volumes/{a}/metadata", cloud.api);
    let (_, m) = http("PUT", &meta, Some(json!({"metadata": {"env": "dev"}})));
    assert_eq!(m["metadata"], json!({"env": "dev"}));
    let (status, _) = http("POST", &meta, Some(json!({"metadata": {"bad": 1.5}})));
    assert_eq!(status, 200, "numbers are taken as their text, as Cinder");
    let (_, m) = http("GET", &format!("{meta}/bad"), None);
    assert_eq!(m["meta"]["bad"], "1.5");

    let ids = |body: &Value| -> Vec<String> {
        body["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, by_size) = http(
        "GET",
        &format!("{}/volumes/detail?sort=size:desc", cloud.api),
        None,
    );
    assert_eq!(ids(&by_size), [b.clone(), a.clone()]);
    let (_, by_meta) = http(
        "GET",
        &format!(
            "{}/volumes?metadata=%7B%27env%27%3A+%27dev%27%7D",
            cloud.api
        ),
        None,
    );
    assert_eq!(
        ids(&by_meta),
        vec![a.clone()],
        "cinderclient's metadata filter"
    );
    let (_, legacy) = http(
        "GET",
        &format!("{}/volumes?sort_key=name&sort_dir=asc&limit=1", cloud.api),
        None,
    );
    assert_eq!(ids(&legacy), vec![a.clone()]);
    assert!(legacy["volumes_links"][0]["href"]
        .as_str()
        .unwrap()
        .contains(&format!("marker={a}")));
    let (status, _) = http(
        "GET",
        &format!(
            "{}/volumes?marker=00000000-0000-0000-0000-000000000000",
            cloud.api
        ),
        None,
    );
    assert_eq!(status, 404, "an unknown marker");
    let (status, _) = http("GET", &format!("{}/volumes/summary", cloud.api), None);
    assert_eq!(status, 404, "the summary needs microversion 3.12");
    let (_, summary) = http_v(
        "GET",
        &format!("{}/volumes/summary", cloud.api),
        None,
        "3.12",
    );
    assert_eq!(summary["volume-summary"]["total_count"], 2);
    assert_eq!(summary["volume-summary"]["total_size"], 4);
    assert_eq!(summary["volume-summary"]["metadata"]["env"], json!(["dev"]));

    // Flags: bootable (a filter too) and read-only.
    let action = |id: &str, body: Value| {
        http(
            "POST",
            &format!("{}/volumes/{id}/action", cloud.api),
            Some(body),
        )
    };
    let (status, body) = action(&b, json!({"os-set_bootable": {"bootable": true}}));
    assert_eq!(status, 200, "{body}");
    let (_, boot) = http("GET", &format!("{}/volumes?bootable=true", cloud.api), None);
    assert_eq!(ids(&boot), vec![b.clone()]);
    let (status, body) = action(&b, json!({"os-set_bootable": {"bootable": "maybe"}}));
    assert_eq!(status, 400, "{body}");
    let (status, _) = action(&b, json!({"os-update_readonly_flag": {"readonly": true}}));
    assert_eq!(status, 202);

    // Admin status reset and force delete.
    let (status, body) = action(&b, json!({"os-reset_status": {"status": "error"}}));
    assert_eq!(status, 202, "{body}");
    assert_eq!(cloud.show(&b).1["volume"]["status"], "error");
    let (status, _) = action(&b, json!({"os-reset_status": {"status": "bogus"}}));
    assert_eq!(status, 400);
    let (status, _) = action(&a, json!({"os-reset_status": {"status": "maintenance"}}));
    assert_eq!(status, 202);
    let (status, body) = action(&a, json!({"os-force_delete": {}}));
    assert_eq!(status, 202, "{body}");
    let started = Instant::now();
    while cloud.show(&a).0 != 404 {
        assert!(started.elapsed() < Duration::from_secs(30), "force delete");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `revert` (3.40) puts the latest snapshot's bytes back into the volume; only the latest
/// snapshot, at the volume's size, with both available, as Cinder.
#[test]
fn revert_puts_the_latest_snapshot_back() {
    let cloud = Cloud::start("host = \"node1\"\n");
    let vol = new_volume(&cloud, json!({"volume": {"size": 1, "name": "r"}}));
    let file = cloud.volume_dir("file").join(format!("volume-{vol}"));
    write_at(&file, 4096, MARK);
    let first = snapshot(&cloud, &vol, "first");
    write_at(&file, 4096, b"written AFTER the snapshot!");
    write_at(&file, 1 << 29, b"late");
    let revert = |snapshot_id: &str, version: &str| {
        http_v(
            "POST",
            &format!("{}/volumes/{vol}/action", cloud.api),
            Some(json!({"revert": {"snapshot_id": snapshot_id}})),
            version,
        )
    };
    let (status, body) = revert(&first, "3.39");
    assert_eq!(status, 404, "revert starts at 3.40: {body}");
    let (status, body) = revert("nope", "3.40");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["badRequest"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not the latest one")),
        "{body}"
    );

    let (status, body) = revert(&first, "3.40");
    assert_eq!(status, 202, "{body}");
    let started = Instant::now();
    loop {
        let v = cloud.show(&vol).1["volume"].clone();
        if v["status"] == "available" {
            break;
        }
        assert_eq!(v["status"], "reverting", "{v}\n{}", cloud.aio.log_text());
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "stuck reverting"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(settle_snapshot(&cloud, &first)["status"], "available");
    assert_eq!(
        read_at(&file, 4096, MARK.len()),
        MARK,
        "the snapshot's bytes"
    );
    assert_eq!(read_at(&file, 1 << 29, 4), [0; 4], "later writes are gone");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 1 << 30);

    // Only the latest snapshot; and not once the volume has grown past it.
    let second = snapshot(&cloud, &vol, "second");
    let (status, _) = revert(&first, "3.40");
    assert_eq!(status, 400, "the first is no longer the latest");
    let (status, body) = http(
        "POST",
        &format!("{}/volumes/{vol}/action", cloud.api),
        Some(json!({"os-extend": {"new_size": 2}})),
    );
    assert_eq!(status, 202, "{body}");
    let started = Instant::now();
    while cloud.show(&vol).1["volume"]["size"] != 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never extended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = revert(&second, "3.40");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["badRequest"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("must be equal to the snapshot size")),
        "{body}"
    );
}
