//! Attaching volumes through a real `kiln all-in-one` whose file backend exports with the real
//! tgtd: the legacy actions Nova drives (reserve, initialize_connection, attach, begin_detaching,
//! terminate_connection, detach) and the attachments API (3.27: create with a connector,
//! complete, delete). The connection info a host gets really logs in to the target (libiscsi's
//! initiator reads the LUN's size with the CHAP credentials); after the last detach the target
//! is gone; state rules (no second attachment of a non-multiattach volume, no delete while
//! attached) answer 400.

use kiln_integration_tests::cloud::{http, http_v, Cloud};
use kiln_integration_tests::storage_tools::{self, try_run};
use serde_json::{json, Value};

struct Targets(Vec<String>);

impl Drop for Targets {
    fn drop(&mut self) {
        for iqn in &self.0 {
            let _ = try_run("tgt-admin", &["--force", "--delete", iqn]);
        }
    }
}

fn cloud_with_tgt() -> Cloud {
    storage_tools::ensure().expect("lvm2 / tgt / libiscsi-bin");
    // The target files live in the test's data directory (a relative path in the config).
    Cloud::start(
        "host = \"node1\"\nenabled_backends = [\"iscsi\"]\n\
         [backends.iscsi]\ndriver = \"file\"\ntarget_helper = \"tgtadm\"\n\
         target_portals = [\"127.0.0.1:3260\"]\nvolumes_dir = \"./kiln-data/targets/iscsi\"\n",
    )
}

fn volume(cloud: &Cloud, body: Value) -> String {
    let (status, body) = cloud.create(body);
    assert_eq!(status, 202, "{body}");
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.settle(&id)["status"], "available");
    id
}

fn action(cloud: &Cloud, id: &str, body: Value) -> (u16, Value) {
    http(
        "POST",
        &format!("{}/volumes/{id}/action", cloud.api),
        Some(body),
    )
}

fn connector() -> Value {
    json!({"host": "compute1", "initiator": "iqn.1993-08.org.debian:01:kilnattach",
           "ip": "127.0.0.1", "multipath": false, "platform": "x86_64"})
}

/// The LUN size the real initiator reads with the connection info's credentials.
fn lun_size(info: &Value) -> (bool, String) {
    let d = &info["data"];
    let url = format!(
        "iscsi://{}%{}@{}/{}/{}",
        d["auth_username"].as_str().unwrap(),
        d["auth_password"].as_str().unwrap(),
        d["target_portal"].as_str().unwrap(),
        d["target_iqn"].as_str().unwrap(),
        d["target_lun"]
    );
    try_run("iscsi-readcapacity16", &["-s", &url])
}

fn discoverable(iqn: &str) -> bool {
    let (_, out) = try_run(
        "tgtadm",
        &["--lld", "iscsi", "--op", "show", "--mode", "target"],
    );
    out.contains(iqn)
}

#[test]
fn legacy_attach_actions_export_connect_and_detach() {
    let cloud = cloud_with_tgt();
    let id = volume(&cloud, json!({"volume": {"size": 1, "name": "boot"}}));
    let iqn = format!("iqn.2010-10.org.openstack:volume-{id}");
    let _guard = Targets(vec![iqn.clone()]);

    let (status, body) = action(&cloud, &id, json!({"os-reserve": {}}));
    assert_eq!(status, 202, "{body}");
    assert_eq!(cloud.show(&id).1["volume"]["status"], "attaching");
    let (status, body) = action(
        &cloud,
        &id,
        json!({"os-initialize_connection": {"connector": connector()}}),
    );
    assert_eq!(status, 200, "{body}\n{}", cloud.aio.log_text());
    let info = &body["connection_info"];
    assert_eq!(info["driver_volume_type"], "iscsi", "{info}");
    assert_eq!(info["data"]["target_iqn"], iqn.as_str());
    assert_eq!(info["data"]["volume_id"], id.as_str());
    assert_eq!(info["data"]["access_mode"], "rw");
    assert_eq!(info["data"]["auth_method"], "CHAP");
    let (ok, out) = lun_size(info);
    assert!(ok, "the host logs in with the connection info: {out}");
    assert_eq!(out.trim(), (1u64 << 30).to_string());

    let (status, body) = action(
        &cloud,
        &id,
        json!({"os-attach": {"instance_uuid": "0b7b6a44-2b4e-4b43-9c2c-0b8f2a3c0001", "mountpoint": "/dev/vdb"}}),
    );
    assert_eq!(status, 202, "{body}");
    let v = cloud.show(&id).1["volume"].clone();
    assert_eq!(v["status"], "in-use");
    let att = &v["attachments"][0];
    assert_eq!(att["server_id"], "0b7b6a44-2b4e-4b43-9c2c-0b8f2a3c0001");
    assert_eq!(att["device"], "/dev/vdb");
    assert!(att["attached_at"].is_string(), "{att}");
    let attachment_id = att["attachment_id"].as_str().unwrap().to_string();

    // Attached: no delete, no second reserve of a non-multiattach volume.
    let (status, _) = http("DELETE", &format!("{}/volumes/{id}", cloud.api), None);
    assert_eq!(status, 400, "an attached volume cannot be deleted");
    let (status, _) = action(&cloud, &id, json!({"os-reserve": {}}));
    assert_eq!(status, 400, "not multiattach");

    // Detach: begin, roll back, begin again, terminate, detach.
    assert_eq!(
        action(&cloud, &id, json!({"os-begin_detaching": {}})).0,
        202
    );
    assert_eq!(cloud.show(&id).1["volume"]["status"], "detaching");
    assert_eq!(action(&cloud, &id, json!({"os-roll_detaching": {}})).0, 202);
    assert_eq!(cloud.show(&id).1["volume"]["status"], "in-use");
    assert_eq!(
        action(&cloud, &id, json!({"os-begin_detaching": {}})).0,
        202
    );
    let (status, body) = action(
        &cloud,
        &id,
        json!({"os-terminate_connection": {"connector": connector()}}),
    );
    assert_eq!(status, 202, "{body}");
    let (status, body) = action(
        &cloud,
        &id,
        json!({"os-detach": {"attachment_id": attachment_id}}),
    );
    assert_eq!(status, 202, "{body}");
    let v = cloud.show(&id).1["volume"].clone();
    assert_eq!(v["status"], "available");
    assert_eq!(v["attachments"], json!([]));
    assert!(
        !discoverable(&iqn),
        "the export went with the last attachment"
    );
    let (status, _) = action(&cloud, &id, json!({"os-detach": {}}));
    assert_eq!(status, 400, "nothing left to detach");

    // An admin's reset to `detached` ends the attachments (as Cinder's does).
    let (status, body) = action(&cloud, &id, json!({"os-reserve": {}}));
    assert_eq!(status, 202, "{body}");
    let (status, body) = action(
        &cloud,
        &id,
        json!({"os-attach": {"instance_uuid": "0b7b6a44-2b4e-4b43-9c2c-0b8f2a3c0002", "mountpoint": "/dev/vdc"}}),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        cloud.show(&id).1["volume"]["attachments"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let (status, body) = action(
        &cloud,
        &id,
        json!({"os-reset_status": {"status": "available", "attach_status": "detached"}}),
    );
    assert_eq!(status, 202, "{body}");
    let v = cloud.show(&id).1["volume"].clone();
    assert_eq!(
        (v["status"].as_str(), v["attachments"].clone()),
        (Some("available"), json!([])),
        "{v}"
    );
    let (status, _) = action(&cloud, &id, json!({"os-detach": {}}));
    assert_eq!(status, 400, "the reset left nothing to detach");

    let (status, _) = http("DELETE", &format!("{}/volumes/{id}", cloud.api), None);
    assert_eq!(status, 202, "detached volumes can be deleted");
}

#[test]
fn attachments_api_reserves_connects_completes_and_deletes() {
    let cloud = cloud_with_tgt();
    let id = volume(&cloud, json!({"volume": {"size": 1}}));
    let iqn = format!("iqn.2010-10.org.openstack:volume-{id}");
    let _guard = Targets(vec![iqn.clone()]);
    let instance = "6a1d5a7e-5c55-4a3a-8ad8-3c0f7b0a0002";

    // Reserve without a connector, then connect with PUT.
    let (status, body) = http_v(
        "POST",
        &format!("{}/attachments", cloud.api),
        Some(json!({"attachment": {"volume_id": id, "instance_uuid": instance}})),
        "3.44",
    );
    assert_eq!(status, 200, "{body}");
    let a = body["attachment"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["attachment"]["status"], "reserved");
    assert_eq!(cloud.show(&id).1["volume"]["status"], "reserved");
    let (status, body) = http_v(
        "POST",
        &format!("{}/attachments", cloud.api),
        Some(json!({"attachment": {"volume_id": id, "instance_uuid": instance}})),
        "3.44",
    );
    assert_eq!(
        status, 400,
        "a second attachment of a non-multiattach volume: {body}"
    );
    let (status, body) = http_v(
        "POST",
        &format!("{}/attachments/{a}/action", cloud.api),
        Some(json!({"os-complete": null})),
        "3.44",
    );
    assert_eq!(status, 400, "complete needs a connector first: {body}");
    let (status, body) = http_v(
        "PUT",
        &format!("{}/attachments/{a}", cloud.api),
        Some(json!({"attachment": {"connector": connector()}})),
        "3.44",
    );
    assert_eq!(status, 200, "{body}\n{}", cloud.aio.log_text());
    let info = body["attachment"]["connection_info"].clone();
    assert_eq!(info["driver_volume_type"], "iscsi");
    let (ok, out) = lun_size(&info);
    assert!(ok, "{out}");
    let (status, _) = http_v(
        "POST",
        &format!("{}/attachments/{a}/action", cloud.api),
        Some(json!({"os-complete": null})),
        "3.44",
    );
    assert_eq!(status, 204);
    let v = cloud.show(&id).1["volume"].clone();
    assert_eq!(v["status"], "in-use");
    assert_eq!(v["attachments"][0]["attachment_id"], a.as_str());
    let (_, list) = http_v("GET", &format!("{}/attachments", cloud.api), None, "3.44");
    assert_eq!(list["attachments"][0]["status"], "attached");
    let (_, shown) = http_v(
        "GET",
        &format!("{}/attachments/{a}", cloud.api),
        None,
        "3.44",
    );
    assert_eq!(shown["attachment"]["instance"], instance);
    assert_eq!(shown["attachment"]["attach_mode"], "rw");

    // Deleting the attachment detaches and removes the export.
    let (status, body) = http_v(
        "DELETE",
        &format!("{}/attachments/{a}", cloud.api),
        None,
        "3.44",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["attachments"], json!([]));
    assert_eq!(cloud.show(&id).1["volume"]["status"], "available");
    assert!(!discoverable(&iqn), "the export is removed");
    let (status, _) = http_v(
        "GET",
        &format!("{}/attachments/{a}", cloud.api),
        None,
        "3.44",
    );
    assert_eq!(status, 404);
    let (status, body) = http_v(
        "POST",
        &format!("{}/attachments", cloud.api),
        Some(json!({"attachment": {"volume_id": "nope"}})),
        "3.44",
    );
    assert_eq!(status, 404, "{body}");
}
