//! Volumes through the three real clients, one flow each: a volume of a type with extra specs
//! is created, shown, listed, extended and snapshotted, a volume is made from the snapshot,
//! the services are listed and everything is deleted. The clients act; the test waits on the
//! API itself (a client start-up costs a second).

use std::path::Path;
use std::time::{Duration, Instant};

use kiln_integration_tests::process::Kiln;
use serde_json::Value;

use super::{osc, Rig, PROJECT};

/// `GET /v3/{PROJECT}/{path}` as the admin, `(status, body)`.
async fn get(listen: &str, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("http://{listen}/v3/{PROJECT}/{path}"))
        .header("X-Auth-Token", format!("admin:{PROJECT}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Wait until `check` holds for `GET path` (`None` when it answered 404), or fail naming
/// `what`.
async fn wait_for(
    listen: &str,
    aio: &Kiln,
    path: &str,
    what: &str,
    check: impl Fn(Option<&Value>) -> bool,
) {
    let started = Instant::now();
    loop {
        let (status, body) = get(listen, path).await;
        if check((status != 404).then_some(&body)) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: last answer {status} {body}\n{}",
            aio.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn available(listen: &str, aio: &Kiln, kind: &str, id: &str) {
    let (path, key) = match kind {
        "volume" => (format!("volumes/{id}"), "volume"),
        _ => (format!("snapshots/{id}"), "snapshot"),
    };
    wait_for(listen, aio, &path, &format!("{kind} {id} available"), |b| {
        b.is_some_and(|b| b[key]["status"] == "available")
    })
    .await;
}

async fn gone(listen: &str, aio: &Kiln, path: &str) {
    wait_for(listen, aio, path, &format!("{path} deleted"), |b| {
        b.is_none()
    })
    .await;
}

async fn size_is(listen: &str, aio: &Kiln, id: &str, size: u64) {
    wait_for(listen, aio, &format!("volumes/{id}"), "extend", |b| {
        b.is_some_and(|b| b["volume"]["size"] == size && b["volume"]["status"] == "available")
    })
    .await;
}

fn json_of(ok: bool, out: &str) -> Value {
    assert!(ok, "{out}");
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The `cinder` CLI with Cinder's noauth plugin.
fn cinder(venv: &Path, listen: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(venv.join("bin/cinder"))
        .args(["--os-auth-type", "noauth", "--os-user-id", "admin"])
        .args(["--os-project-id", PROJECT])
        .args(["--os-endpoint", &format!("http://{listen}/v3")])
        .args(["--os-volume-api-version", "3.71"])
        .args(args)
        .env_remove("OS_CLOUD")
        .output()
        .expect("run cinder");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "cinder {args:?}: {text}");
    text
}

/// The `id` row of a cinder table (`| id | <uuid> |`).
fn table_id(table: &str) -> String {
    table
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() > 2 && cells[1] == "id").then(|| cells[2].to_string())
        })
        .next()
        .unwrap_or_else(|| panic!("no id row in:\n{table}"))
}

/// openstacksdk's flow, printed as one JSON object.
const SDK_FLOW: &str = r#"
import json, sys, time
from keystoneauth1 import session
from keystoneauth1.token_endpoint import Token
import openstack

ep, tok = sys.argv[1], sys.argv[2]
sess = session.Session(auth=Token(ep, tok), additional_headers={"X-Auth-Token": tok})
conn = openstack.connection.Connection(
    session=sess, block_storage_endpoint_override=ep, block_storage_api_version="3")
bs = conn.block_storage
wait = dict(failures=["error"], interval=0.2, wait=60)
out = {}
vol = bs.create_volume(name="sdk-vol", size=1, volume_type="fast")
vol = bs.wait_for_status(vol, status="available", **wait)
out["created"] = {"status": vol.status, "size": vol.size, "type": vol.volume_type}
out["shown"] = bs.get_volume(vol.id).name
out["listed"] = sorted(v.name for v in bs.volumes() if v.name.startswith("sdk-"))
bs.extend_volume(vol, 2)
deadline = time.time() + 60
while not (bs.get_volume(vol.id).size == 2 and bs.get_volume(vol.id).status == "available"):
    assert time.time() < deadline, "extend never finished"
    time.sleep(0.2)
out["extended"] = bs.get_volume(vol.id).size
snap = bs.create_snapshot(volume_id=vol.id, name="sdk-snap")
snap = bs.wait_for_status(snap, status="available", **wait)
copy = bs.create_volume(name="sdk-from-snap", size=2, snapshot_id=snap.id)
copy = bs.wait_for_status(copy, status="available", **wait)
out["from_snapshot"] = {"status": copy.status, "snapshot_id": copy.snapshot_id == snap.id}
out["services"] = sorted({s.binary for s in bs.services()})
bs.delete_snapshot(snap)
bs.wait_for_delete(snap, interval=0.2, wait=60)
for v in (copy, vol):
    bs.delete_volume(v)
    bs.wait_for_delete(v, interval=0.2, wait=60)
out["left"] = [v.name for v in bs.volumes() if v.name.startswith("sdk-")]
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstack_cli_sdk_and_cinderclient_drive_volumes() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let (venv, l, aio) = (&rig.venv, rig.listen.as_str(), &rig.aio);
    let bin = venv.join("bin/openstack");
    let dir = tempfile::tempdir().unwrap(); // the SDK script
    let (ok, out) = osc(
        &bin,
        l,
        &[
            "volume",
            "type",
            "create",
            "--property",
            "volume_backend_name=file",
            "fast",
        ],
    );
    assert!(ok, "{out}");

    // The openstack CLI.
    let o = |args: &[&str]| osc(&bin, l, args);
    let (ok, out) = o(&[
        "volume", "create", "--size", "1", "--type", "fast", "-f", "json", "osc-vol",
    ]);
    let vol = json_of(ok, &out)["id"].as_str().unwrap().to_string();
    available(l, aio, "volume", &vol).await;
    let (ok, out) = o(&["volume", "show", "-f", "json", "osc-vol"]);
    let shown = json_of(ok, &out);
    assert_eq!(
        (shown["type"].as_str(), shown["size"].as_u64()),
        (Some("fast"), Some(1))
    );
    let (ok, out) = o(&["volume", "list", "-f", "json"]);
    assert!(json_of(ok, &out).to_string().contains("osc-vol"), "{out}");
    let (ok, out) = o(&["volume", "set", "--size", "2", "osc-vol"]);
    assert!(ok, "{out}");
    size_is(l, aio, &vol, 2).await;
    let (ok, out) = o(&[
        "volume", "snapshot", "create", "--volume", "osc-vol", "-f", "json", "osc-snap",
    ]);
    let snap = json_of(ok, &out)["id"].as_str().unwrap().to_string();
    available(l, aio, "snapshot", &snap).await;
    let (ok, out) = o(&[
        "volume",
        "create",
        "--snapshot",
        "osc-snap",
        "--size",
        "2",
        "-f",
        "json",
        "osc-copy",
    ]);
    let copy = json_of(ok, &out)["id"].as_str().unwrap().to_string();
    available(l, aio, "volume", &copy).await;
    let (ok, out) = o(&["volume", "service", "list", "-f", "json"]);
    let services = json_of(ok, &out).to_string();
    assert!(
        services.contains("cinder-volume") && services.contains("cinder-scheduler"),
        "{services}"
    );
    let (ok, out) = o(&["volume", "snapshot", "delete", "osc-snap"]);
    assert!(ok, "{out}");
    gone(l, aio, &format!("snapshots/{snap}")).await;
    let (ok, out) = o(&["volume", "delete", "osc-copy", "osc-vol"]);
    assert!(ok, "{out}");
    for id in [&copy, &vol] {
        gone(l, aio, &format!("volumes/{id}")).await;
    }

    // openstacksdk.
    let script = dir.path().join("sdk_flow.py");
    std::fs::write(&script, SDK_FLOW).unwrap();
    let out = std::process::Command::new(venv.join("bin/python"))
        .arg(&script)
        .arg(format!("http://{l}/v3/{PROJECT}"))
        .arg(format!("admin:{PROJECT}"))
        .output()
        .expect("run python");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sdk: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(
        sdk["created"],
        serde_json::json!({"status": "available", "size": 1, "type": "fast"})
    );
    assert_eq!(sdk["shown"], "sdk-vol");
    assert_eq!(sdk["listed"], serde_json::json!(["sdk-vol"]));
    assert_eq!(sdk["extended"], 2);
    assert_eq!(
        sdk["from_snapshot"],
        serde_json::json!({"status": "available", "snapshot_id": true})
    );
    assert!(
        sdk["services"].to_string().contains("cinder-volume"),
        "{sdk}"
    );
    assert_eq!(sdk["left"], serde_json::json!([]));

    // The cinder CLI.
    let c = |args: &[&str]| cinder(venv, l, args);
    let vol = table_id(&c(&[
        "create",
        "--name",
        "cc-vol",
        "--volume-type",
        "fast",
        "1",
    ]));
    available(l, aio, "volume", &vol).await;
    assert!(c(&["show", &vol]).contains("fast"));
    assert!(c(&["list"]).contains("cc-vol"));
    c(&["extend", &vol, "2"]);
    size_is(l, aio, &vol, 2).await;
    let snap = table_id(&c(&["snapshot-create", "--name", "cc-snap", &vol]));
    available(l, aio, "snapshot", &snap).await;
    let copy = table_id(&c(&[
        "create",
        "--snapshot-id",
        &snap,
        "--name",
        "cc-copy",
        "2",
    ]));
    available(l, aio, "volume", &copy).await;
    assert!(c(&["service-list"]).contains("cinder-volume"));
    c(&["snapshot-delete", &snap]);
    gone(l, aio, &format!("snapshots/{snap}")).await;
    c(&["delete", &copy, &vol]);
    for id in [&copy, &vol] {
        gone(l, aio, &format!("volumes/{id}")).await;
    }
}
