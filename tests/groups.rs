//! Generic volume groups through a real `kiln all-in-one` with two file backends `a` and `b`:
//! group types and their specs; a group of two volume types placed on the one backend that
//! holds both, its volumes landing there; a group snapshot and its member snapshots; a group
//! made from the group snapshot; membership changes with Cinder's checks; delete with and
//! without `delete-volumes`; the errors (unknown group type, a volume of a type the group
//! does not hold, a group no backend can hold) with Cinder's status and error body; volume
//! type encryption refused while the type is in use; per-volume-type quota keys.

use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{http_v, Cloud};
use serde_json::{json, Value};

const V: &str = "3.20";

fn call(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    http_v(method, url, body, V)
}

/// Poll `GET url` until `body[key].status` is `want` (or the resource is gone, `want` =
/// "gone"); the last body.
fn wait_status(url: &str, key: &str, want: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = call("GET", url, None);
        if want == "gone" && status == 404 {
            return body;
        }
        if status == 200 && body[key]["status"] == want {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{url} never reached {want}: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Cinder error body: `{"<kind>": {"code": status, "message": ...}}`; the message.
fn error_message(status: u16, body: &Value, want: u16) -> String {
    assert_eq!(status, want, "{body}");
    let (_, inner) = body
        .as_object()
        .and_then(|m| m.iter().next())
        .expect("an error body");
    assert_eq!(inner["code"], want, "{body}");
    inner["message"].as_str().unwrap().to_string()
}

fn volume_type(cloud: &Cloud, name: &str, backend: &str) -> String {
    let (status, body) = call(
        "POST",
        &format!("{}/types", cloud.api),
        Some(json!({"volume_type": {"name": name,
            "extra_specs": {"volume_backend_name": backend}}})),
    );
    assert_eq!(status, 200, "{body}");
    body["volume_type"]["id"].as_str().unwrap().to_string()
}

fn create_group(cloud: &Cloud, group_type: &str, types: &[&str]) -> (u16, Value) {
    call(
        "POST",
        &format!("{}/groups", cloud.api),
        Some(json!({"group": {"name": "g", "group_type": group_type, "volume_types": types}})),
    )
}

fn volume_in(cloud: &Cloud, group: &str, vtype: &str) -> String {
    let (status, body) = call(
        "POST",
        &format!("{}/volumes", cloud.api),
        Some(json!({"volume": {"size": 1, "volume_type": vtype, "group_id": group}})),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["volume"]["group_id"], group,
        "3.13 view shows group_id"
    );
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    let v = cloud.settle(&id);
    assert_eq!(v["status"], "available", "{v}");
    id
}

#[test]
fn groups_group_snapshots_and_group_types_behave_like_cinder() {
    let cloud = Cloud::start(
        "host = \"node1\"\nenabled_backends = [\"a\", \"b\"]\n\
         [backends.a]\ndriver = \"file\"\n[backends.b]\ndriver = \"file\"\n",
    );
    let api = cloud.api.clone();

    // Group types and specs.
    let (status, body) = call(
        "POST",
        &format!("{api}/group_types"),
        Some(json!({"group_type": {"name": "gt", "description": "d",
            "group_specs": {"consistent_group_snapshot_enabled": "<is> False"}}})),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["group_type"]["is_public"], true);
    let gt = body["group_type"]["id"].as_str().unwrap().to_string();
    let (status, body) = call(
        "POST",
        &format!("{api}/group_types/{gt}/group_specs"),
        Some(json!({"group_specs": {"k": "v"}})),
    );
    assert_eq!((status, &body["group_specs"]), (202, &json!({"k": "v"})));
    let (status, body) = call(
        "GET",
        &format!("{api}/group_types/{gt}/group_specs/k"),
        None,
    );
    assert_eq!((status, body), (200, json!({"k": "v"})));
    let (status, _) = call(
        "DELETE",
        &format!("{api}/group_types/{gt}/group_specs/k"),
        None,
    );
    assert_eq!(status, 202);
    let (status, body) = call(
        "GET",
        &format!("{api}/group_types/{gt}/group_specs/k"),
        None,
    );
    error_message(status, &body, 404);
    let (status, body) = call(
        "PUT",
        &format!("{api}/group_types/{gt}"),
        Some(json!({"group_type": {"description": "new"}})),
    );
    assert_eq!(
        (status, &body["group_type"]["description"]),
        (200, &json!("new"))
    );
    let (status, body) = call("GET", &format!("{api}/group_types/default"), None);
    error_message(status, &body, 404);
    let (status, body) = call("GET", &format!("{api}/group_types"), None);
    assert_eq!(status, 200);
    assert!(body["group_types"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == gt));
    // Before 3.11 there are no group types.
    let (status, _) = http_v("GET", &format!("{api}/group_types"), None, "3.10");
    assert_eq!(status, 404);

    // Types on a and b; a third type on a.
    let on_a = volume_type(&cloud, "on-a", "a");
    let on_b = volume_type(&cloud, "on-b", "b");
    let also_a = volume_type(&cloud, "also-a", "a");

    // Errors: an unknown group type, a group no single backend can hold.
    let (status, body) = create_group(&cloud, "no-such-type", &[&on_a]);
    assert!(error_message(status, &body, 404).contains("no-such-type"));
    let (status, body) = create_group(&cloud, &gt, &[]);
    error_message(status, &body, 400);
    let (status, body) = create_group(&cloud, &gt, &[&on_a, &on_b]);
    assert_eq!(status, 202, "{body}");
    let split = body["group"]["id"].as_str().unwrap().to_string();
    wait_status(&format!("{api}/groups/{split}"), "group", "error");

    // A group of two volume types, placed on a, the backend holding both.
    let (status, body) = create_group(&cloud, &gt, &[&on_a, &also_a]);
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["group"].as_object().unwrap().len(),
        2,
        "id and name only"
    );
    let g = body["group"]["id"].as_str().unwrap().to_string();
    let shown = wait_status(&format!("{api}/groups/{g}"), "group", "available");
    assert_eq!(shown["group"]["volume_types"], json!([on_a, also_a]));
    assert_eq!(shown["group"]["group_type"], gt);
    assert!(shown["group"]["source_group_id"].is_null(), "3.14 field");
    let v1 = volume_in(&cloud, &g, &on_a);
    let v2 = volume_in(&cloud, &g, &also_a);
    for v in [&v1, &v2] {
        let (_, body) = call("GET", &format!("{api}/volumes/{v}"), None);
        let host = body["volume"]["os-vol-host-attr:host"].as_str().unwrap();
        assert!(
            host.starts_with("node1@a"),
            "a group's volumes live on its backend: {host}"
        );
    }
    // A volume of a type the group does not hold.
    let (status, body) = call(
        "POST",
        &format!("{api}/volumes"),
        Some(json!({"volume": {"size": 1, "volume_type": on_b, "group_id": g}})),
    );
    assert!(error_message(status, &body, 400).contains("supported by this group"));
    // A volume of a group is deleted with the group, not alone.
    let (status, body) = call("DELETE", &format!("{api}/volumes/{v1}"), None);
    error_message(status, &body, 400);

    // Membership: remove v2, refuse a stranger of another type, add v2 back.
    let (status, body) = call(
        "PUT",
        &format!("{api}/groups/{g}"),
        Some(json!({"group": {"name": "renamed", "remove_volumes": v2}})),
    );
    assert_eq!(status, 202, "{body}");
    let (_, shown) = call("GET", &format!("{api}/volumes/{v2}"), None);
    assert!(shown["volume"]["group_id"].is_null(), "{shown}");
    assert!(
        shown["volume"].get("group_id").is_some(),
        "3.13 shows the key"
    );
    let (_, body) = cloud.create(json!({"volume": {"size": 1, "volume_type": on_b}}));
    let stranger = body["volume"]["id"].as_str().unwrap().to_string();
    cloud.settle(&stranger);
    let (status, body) = call(
        "PUT",
        &format!("{api}/groups/{g}"),
        Some(json!({"group": {"add_volumes": format!("{v2},{stranger}")}})),
    );
    assert!(error_message(status, &body, 400).contains("not supported by the group"));
    assert!(
        call("GET", &format!("{api}/volumes/{v2}"), None).1["volume"]["group_id"].is_null(),
        "nothing changed"
    );
    let (status, _) = call(
        "PUT",
        &format!("{api}/groups/{g}"),
        Some(json!({"group": {"add_volumes": v2}})),
    );
    assert_eq!(status, 202);
    let (_, body) = call("GET", &format!("{api}/groups/{g}"), None);
    assert_eq!(body["group"]["name"], "renamed");
    let (status, body) = call(
        "PUT",
        &format!("{api}/groups/{g}"),
        Some(json!({"group": {}})),
    );
    error_message(status, &body, 400);

    // A group snapshot: one snapshot per volume, carrying group_snapshot_id.
    let (status, body) = call(
        "POST",
        &format!("{api}/group_snapshots"),
        Some(json!({"group_snapshot": {"group_id": g, "name": "gs"}})),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["group_snapshot"]["group_type_id"], gt);
    let gs = body["group_snapshot"]["id"].as_str().unwrap().to_string();
    let shown = wait_status(
        &format!("{api}/group_snapshots/{gs}"),
        "group_snapshot",
        "available",
    );
    assert_eq!(shown["group_snapshot"]["group_id"], g);
    let (_, body) = call("GET", &format!("{api}/snapshots/detail"), None);
    let members: Vec<&Value> = body["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["group_snapshot_id"] == gs)
        .collect();
    assert_eq!(members.len(), 2, "{body}");
    assert!(members.iter().all(|s| s["status"] == "available"));
    let member = members[0]["id"].as_str().unwrap().to_string();
    let (status, body) = call("DELETE", &format!("{api}/snapshots/{member}"), None);
    assert!(error_message(status, &body, 400).contains("group snapshot"));
    // A group with group snapshots cannot be deleted.
    let (status, body) = call(
        "POST",
        &format!("{api}/groups/{g}/action"),
        Some(json!({"delete": {"delete-volumes": true}})),
    );
    assert!(error_message(status, &body, 400).contains("group snapshots"));
    // Quota: 2 volumes + 2 snapshots of 1 GiB.
    let (_, q) = call("GET", &format!("{api}/os-quota-sets/demo?usage=true"), None);
    assert_eq!(q["quota_set"]["snapshots"]["in_use"], 2, "{q}");

    // A group from the group snapshot: a volume per snapshot, on the same backend.
    let (status, body) = call(
        "POST",
        &format!("{api}/groups/action"),
        Some(json!({"create-from-src": {"name": "copy", "group_snapshot_id": gs}})),
    );
    assert_eq!(status, 202, "{body}");
    let copy = body["group"]["id"].as_str().unwrap().to_string();
    let shown = wait_status(&format!("{api}/groups/{copy}"), "group", "available");
    assert_eq!(shown["group"]["group_snapshot_id"], gs);
    let (_, body) = call("GET", &format!("{api}/volumes/detail"), None);
    let copies: Vec<&Value> = body["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["group_id"] == copy)
        .collect();
    assert_eq!(copies.len(), 2);
    assert!(copies.iter().all(|v| v["status"] == "available"
        && v["os-vol-host-attr:host"]
            .as_str()
            .unwrap()
            .starts_with("node1@a")));
    // And one cloned from the source group.
    let (status, body) = call(
        "POST",
        &format!("{api}/groups/action"),
        Some(json!({"create-from-src": {"name": "clone", "source_group_id": g}})),
    );
    assert_eq!(status, 202, "{body}");
    let clone = body["group"]["id"].as_str().unwrap().to_string();
    let shown = wait_status(&format!("{api}/groups/{clone}"), "group", "available");
    assert_eq!(shown["group"]["source_group_id"], g);

    // reset_status of group snapshots (3.19) and groups (3.20).
    for (url, key) in [
        (
            format!("{api}/group_snapshots/{gs}/action"),
            "group_snapshot",
        ),
        (format!("{api}/groups/{clone}/action"), "group"),
    ] {
        let (status, _) = call(
            "POST",
            &url,
            Some(json!({"reset_status": {"status": "error"}})),
        );
        assert_eq!(status, 202);
        wait_status(&url.replace("/action", ""), key, "error");
        let (status, body) = call(
            "POST",
            &url,
            Some(json!({"reset_status": {"status": "bogus"}})),
        );
        error_message(status, &body, 400);
    }

    // Delete: the group snapshot with its snapshots; a group with volumes needs the flag.
    let (status, _) = call("DELETE", &format!("{api}/group_snapshots/{gs}"), None);
    assert_eq!(status, 202);
    wait_status(
        &format!("{api}/group_snapshots/{gs}"),
        "group_snapshot",
        "gone",
    );
    let (status, body) = call(
        "POST",
        &format!("{api}/groups/{g}/action"),
        Some(json!({"delete": {"delete-volumes": false}})),
    );
    assert!(error_message(status, &body, 400).contains("delete-volumes"));
    for group in [&g, &copy, &clone] {
        let (status, body) = call(
            "POST",
            &format!("{api}/groups/{group}/action"),
            Some(json!({"delete": {"delete-volumes": true}})),
        );
        assert_eq!(status, 202, "{body}");
        wait_status(&format!("{api}/groups/{group}"), "group", "gone");
    }
    assert_eq!(cloud.show(&v1).0, 404, "the group's volumes went with it");
    // An empty group (the one in error) goes without the flag.
    let (status, body) = call(
        "POST",
        &format!("{api}/groups/{split}/action"),
        Some(json!({"delete": {"delete-volumes": false}})),
    );
    assert_eq!(status, 202, "{body}");
    wait_status(&format!("{api}/groups/{split}"), "group", "gone");
    let (_, q) = call("GET", &format!("{api}/os-quota-sets/demo?usage=true"), None);
    assert_eq!(q["quota_set"]["groups"]["in_use"], 0, "{q}");
    assert_eq!(q["quota_set"]["snapshots"]["in_use"], 0, "{q}");
    assert_eq!(
        q["quota_set"]["volumes"]["in_use"], 1,
        "the stranger only: {q}"
    );

    // The group type is free to go now.
    let (status, _) = call("DELETE", &format!("{api}/group_types/{gt}"), None);
    assert_eq!(status, 202);
}

#[test]
fn type_encryption_is_refused_while_the_type_is_in_use_and_per_type_quotas_show() {
    let cloud = Cloud::start("host = \"node1\"\n");
    let api = cloud.api.clone();
    let (_, body) = call(
        "POST",
        &format!("{api}/types"),
        Some(json!({"volume_type": {"name": "secret"}})),
    );
    let t = body["volume_type"]["id"].as_str().unwrap().to_string();
    let enc = format!("{api}/types/{t}/encryption");
    let (status, body) = call("GET", &enc, None);
    assert_eq!((status, body), (200, json!({})));
    let (status, body) = call(
        "POST",
        &enc,
        Some(json!({"encryption": {"provider": "luks", "control_location": "front-end"}})),
    );
    assert_eq!(status, 200, "{body}");
    let id = body["encryption"]["encryption_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(body["encryption"]["volume_type_id"], t);
    let (status, body) = call(
        "POST",
        &enc,
        Some(json!({"encryption": {"provider": "luks"}})),
    );
    error_message(status, &body, 400);
    let (status, body) = call(
        "PUT",
        &format!("{enc}/{id}"),
        Some(json!({"encryption": {"key_size": 256, "cipher": "aes-xts-plain64"}})),
    );
    assert_eq!(status, 200, "{body}");
    let (_, body) = call("GET", &format!("{enc}/cipher"), None);
    assert_eq!(body, json!({"cipher": "aes-xts-plain64"}));
    let (status, body) = call(
        "POST",
        &enc,
        Some(json!({"encryption": {"provider": "luks", "colour": "red"}})),
    );
    error_message(status, &body, 400);

    // A volume of the type is encrypted; the spec is frozen while it exists.
    let (_, body) = cloud.create(json!({"volume": {"size": 1, "volume_type": t}}));
    let vol = body["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.settle(&vol)["encrypted"], true);
    let (status, body) = call("DELETE", &format!("{enc}/{id}"), None);
    assert!(error_message(status, &body, 400).contains("in use"));
    let (status, _) = call("DELETE", &format!("{api}/volumes/{vol}"), None);
    assert_eq!(status, 202);
    let started = Instant::now();
    while cloud.show(&vol).0 != 404 {
        assert!(started.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = call("DELETE", &format!("{enc}/{id}"), None);
    assert_eq!(status, 202);
    assert_eq!(call("GET", &enc, None).1, json!({}));

    // Per-volume-type quota keys: shown at -1, settable in the default class, seen by
    // every project's defaults; an unknown type's key is refused.
    let (_, body) = call("GET", &format!("{api}/os-quota-class-sets/default"), None);
    assert_eq!(body["quota_class_set"]["volumes_secret"], -1, "{body}");
    let (status, body) = call(
        "PUT",
        &format!("{api}/os-quota-class-sets/default"),
        Some(json!({"quota_class_set": {"volumes_secret": 7, "gigabytes_secret": 9}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["quota_class_set"]["volumes_secret"], 7);
    let (_, body) = call(
        "GET",
        &format!("{api}/os-quota-sets/elsewhere/defaults"),
        None,
    );
    assert_eq!(body["quota_set"]["gigabytes_secret"], 9);
    let (status, body) = call(
        "PUT",
        &format!("{api}/os-quota-class-sets/default"),
        Some(json!({"quota_class_set": {"volumes_nosuchtype": 1}})),
    );
    error_message(status, &body, 400);
}
