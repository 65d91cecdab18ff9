//! The real clients from PyPI against a real `kiln all-in-one` (file backend, noauth): the
//! `openstack` CLI (python-openstackclient, `admin_token`) manages volume types; the
//! `openstack` CLI, openstacksdk and the `cinder` CLI (python-cinderclient) each create a
//! volume of a type with extra specs, show, list, extend, snapshot it, make a volume from the
//! snapshot, list services and delete everything (`openstack_cli/volumes.rs`). Skipped only
//! when pip cannot install the clients (no network); set `OPENSTACK_CLI_VENV` to reuse a venv.

use std::path::{Path, PathBuf};

#[path = "openstack_cli/volumes.rs"]
mod volumes;
use std::time::{Duration, Instant};

use kiln_integration_tests::process::{self as p, Kiln};
use serde_json::{json, Value};

const PROJECT: &str = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0";

/// Wait until the API answers an authenticated request.
async fn wait_ready(listen: &str, aio: &Kiln) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = reqwest::Client::new()
            .get(format!("http://{listen}/v3/{PROJECT}/extensions"))
            .header("X-Auth-Token", "admin:admin")
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "API not ready:\n{}",
            aio.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write_config(dir: &Path, db_url: &str, listen: &str) -> PathBuf {
    let path = dir.join("kiln.toml");
    std::fs::write(
        &path,
        format!("[database]\nurl = \"{db_url}\"\n[api]\nlisten = \"{listen}\"\n"),
    )
    .unwrap();
    path
}

/// A venv with the real clients — python-openstackclient (with openstacksdk) and
/// python-cinderclient: `OPENSTACK_CLI_VENV`, else a venv in the temp dir, created and filled
/// with pip on first use. `None` when pip cannot install them (no network): skip.
/// Made once per test binary: its tests run in parallel and must not both run pip in it.
fn client_venv() -> Option<PathBuf> {
    static VENV: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    VENV.get_or_init(make_client_venv).clone()
}

fn make_client_venv() -> Option<PathBuf> {
    let venv = std::env::var("OPENSTACK_CLI_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("kiln-osc-venv"));
    let complete = |v: &Path| v.join("bin/openstack").exists() && v.join("bin/cinder").exists();
    if complete(&venv) {
        return Some(venv);
    }
    let ok = (venv.join("bin/pip").exists()
        || std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success()))
        && std::process::Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "-q",
                "python-openstackclient",
                "python-cinderclient",
                "openstacksdk",
            ])
            .status()
            .is_ok_and(|s| s.success());
    (ok && complete(&venv)).then_some(venv)
}

fn osc(bin: &Path, listen: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(bin)
        .args([
            "--os-auth-type",
            "admin_token",
            "--os-token",
            &format!("admin:{PROJECT}"),
        ])
        .args([
            "--os-endpoint",
            &format!("http://{listen}/v3/{PROJECT}"),
            "--os-volume-api-version",
            "3",
        ])
        .args(args)
        .env_remove("OS_CLOUD")
        .output()
        .expect("run openstack");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A real `kiln all-in-one` (SQLite, file backend) and the client venv.
struct Rig {
    venv: PathBuf,
    listen: String,
    aio: Kiln,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// `None` (the test is skipped) when pip cannot install the clients.
    async fn start() -> Option<Rig> {
        let Some(venv) = client_venv() else {
            eprintln!("SKIPPED: pip could not install the OpenStack clients");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let listen = format!("127.0.0.1:{}", p::free_port());
        let db_url = format!("sqlite://{}", dir.path().join("kiln.db").display());
        let cfg = write_config(dir.path(), &db_url, &listen);
        let aio = Kiln::start("aio", dir.path(), Some(&cfg), &["all-in-one"]);
        wait_ready(&listen, &aio).await;
        Some(Rig {
            venv,
            listen,
            aio,
            _dir: dir,
        })
    }
}

/// `openstack volume type create/list/show/set/delete` with the real client (noauth token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstack_cli_manages_volume_types() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let (bin, l) = (rig.venv.join("bin/openstack"), rig.listen.as_str());

    let (ok, out) = osc(
        &bin,
        l,
        &[
            "volume",
            "type",
            "create",
            "--description",
            "fast disks",
            "--property",
            "volume_backend_name=file",
            "-f",
            "json",
            "gold",
        ],
    );
    assert!(ok, "{out}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (created["name"].as_str(), created["description"].as_str()),
        (Some("gold"), Some("fast disks"))
    );
    let (ok, out) = osc(&bin, l, &["volume", "type", "create", "gold"]);
    assert!(!ok && out.contains("409"), "a duplicate is refused: {out}");

    let (ok, out) = osc(&bin, l, &["volume", "type", "list", "-f", "json"]);
    assert!(ok, "{out}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["Name"].as_str())
        .collect();
    assert_eq!(names, ["__DEFAULT__", "gold"]);

    let (ok, out) = osc(
        &bin,
        l,
        &[
            "volume",
            "type",
            "set",
            "--property",
            "tier=1",
            "--description",
            "faster",
            "gold",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = osc(&bin, l, &["volume", "type", "show", "-f", "json", "gold"]);
    assert!(ok, "{out}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["description"], "faster");
    assert_eq!(
        shown["properties"],
        json!({"tier": "1", "volume_backend_name": "file"})
    );

    let (ok, out) = osc(&bin, l, &["volume", "type", "delete", "__DEFAULT__"]);
    assert!(
        !ok && out.contains("Default volume type can not be deleted"),
        "{out}"
    );
    let (ok, out) = osc(&bin, l, &["volume", "type", "delete", "gold"]);
    assert!(ok, "{out}");
    let (ok, out) = osc(&bin, l, &["volume", "type", "show", "gold"]);
    assert!(!ok, "deleted: {out}");
}
