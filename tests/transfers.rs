//! Volume transfers through a real `kiln all-in-one`: project `demo` offers a volume with a
//! snapshot, another project accepts it with the auth key, and the volume, its snapshot and
//! their quota usage move; a wrong key is refused; a cancelled transfer leaves the volume
//! available; the 3.55 `/volume-transfers` path and the 3.57 view fields.

use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{block_on, http, http_v, Cloud};
use serde_json::{json, Value};

/// A request as project `other` (user `bob`).
fn as_other(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    block_on(async {
        let mut req = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .header("X-Auth-Token", "bob:other");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    })
}

fn usage(cloud: &Cloud, project: &str, resource: &str) -> i64 {
    let root = cloud.api.trim_end_matches("/demo");
    let (status, body) = http(
        "GET",
        &format!("{root}/demo/os-quota-sets/{project}?usage=true"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["quota_set"][resource]["in_use"].as_i64().unwrap()
}

#[test]
fn a_volume_and_its_snapshot_move_to_the_accepting_project() {
    let cloud = Cloud::start("host = \"node1\"\n");
    let (_, body) = cloud.create(json!({"volume": {"size": 2, "name": "gift"}}));
    let vol = body["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.settle(&vol)["status"], "available");
    let (status, body) = http(
        "POST",
        &format!("{}/snapshots", cloud.api),
        Some(json!({"snapshot": {"volume_id": vol}})),
    );
    assert_eq!(status, 202, "{body}");
    let snap = body["snapshot"]["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    while http("GET", &format!("{}/snapshots/{snap}", cloud.api), None).1["snapshot"]["status"]
        != "available"
    {
        assert!(started.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(usage(&cloud, "demo", "gigabytes"), 4, "volume + snapshot");

    let (status, body) = http_v(
        "POST",
        &format!("{}/volume-transfers", cloud.api),
        Some(json!({"transfer": {"volume_id": vol, "name": "t1"}})),
        "3.57",
    );
    assert_eq!(status, 202, "{body}");
    let t = &body["transfer"];
    let (id, key) = (t["id"].as_str().unwrap(), t["auth_key"].as_str().unwrap());
    assert_eq!(t["no_snapshots"], false);
    assert_eq!(t["accepted"], false);
    assert_eq!(t["source_project_id"], "demo");
    assert_eq!(cloud.show(&vol).1["volume"]["status"], "awaiting-transfer");
    let (_, shown) = http(
        "GET",
        &format!("{}/os-volume-transfer/{id}", cloud.api),
        None,
    );
    assert!(
        shown["transfer"].get("auth_key").is_none(),
        "the key is shown once"
    );
    assert!(shown["transfer"].get("no_snapshots").is_none(), "3.0 view");
    let (_, listed) = http(
        "GET",
        &format!("{}/os-volume-transfer/detail", cloud.api),
        None,
    );
    assert_eq!(listed["transfers"][0]["volume_id"], vol.as_str());
    // (noauth callers are admins, who see every transfer: visibility is not testable here.)

    // A wrong key is refused; the right one moves everything.
    let other_api = cloud.api.replace("/v3/demo", "/v3/other");
    let accept = |key: &str| {
        as_other(
            "POST",
            &format!("{other_api}/os-volume-transfer/{id}/accept"),
            Some(json!({"accept": {"auth_key": key}})),
        )
    };
    let (status, body) = accept("0000000000000000");
    assert_eq!(status, 400, "{body}");
    let (status, body) = accept(key);
    assert_eq!(status, 202, "{body}");
    let (status, v) = as_other("GET", &format!("{other_api}/volumes/{vol}"), None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["volume"]["status"], "available");
    assert_eq!(v["volume"]["user_id"], "bob");
    assert_eq!(v["volume"]["os-vol-tenant-attr:tenant_id"], "other");
    let (status, s) = as_other("GET", &format!("{other_api}/snapshots/{snap}"), None);
    assert_eq!(status, 200, "the snapshot moved too: {s}");
    assert_eq!(usage(&cloud, "other", "gigabytes"), 4);
    assert_eq!(usage(&cloud, "other", "volumes"), 1);
    assert_eq!(usage(&cloud, "demo", "gigabytes"), 0);
    assert_eq!(usage(&cloud, "demo", "snapshots"), 0);
    let (status, _) = accept(key);
    assert_eq!(status, 404, "a transfer is accepted once");
}

#[test]
fn a_cancelled_transfer_leaves_the_volume_available() {
    let cloud = Cloud::start("host = \"node1\"\n");
    let (_, body) = cloud.create(json!({"volume": {"size": 1}}));
    let vol = body["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.settle(&vol)["status"], "available");
    let (status, body) = http(
        "POST",
        &format!("{}/os-volume-transfer", cloud.api),
        Some(json!({"transfer": {"volume_id": vol}})),
    );
    assert_eq!(status, 202, "{body}");
    let id = body["transfer"]["id"].as_str().unwrap().to_string();
    let (status, _) = http(
        "POST",
        &format!("{}/os-volume-transfer", cloud.api),
        Some(json!({"transfer": {"volume_id": vol}})),
    );
    assert_eq!(status, 400, "already awaiting transfer");
    let (status, _) = http(
        "DELETE",
        &format!("{}/os-volume-transfer/{id}", cloud.api),
        None,
    );
    assert_eq!(status, 202);
    assert_eq!(cloud.show(&vol).1["volume"]["status"], "available");
    let (_, listed) = http("GET", &format!("{}/os-volume-transfer", cloud.api), None);
    assert_eq!(listed["transfers"], json!([]));
    let (status, _) = http_v(
        "GET",
        &format!("{}/volume-transfers", cloud.api),
        None,
        "3.54",
    );
    assert_eq!(status, 404, "the new path needs 3.55");
}
