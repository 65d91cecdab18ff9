//! A volume service that crashed mid-operation recovers at start (Cinder's `init_host`): a
//! real `kiln all-in-one` with a tgtd-exporting file backend is killed with SIGKILL while the
//! database says work was half done; after the restart volumes left `creating` / `extending`
//! / `reverting` are in error with a message (a `restoring` snapshot is available again),
//! `retyping` is back where it was, interrupted deletes (a volume,
//! a snapshot) are finished, and an attached volume whose target vanished is exported again
//! (the real initiator logs in with the same credentials).

use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{block_on, http, Cloud};
use kiln_integration_tests::storage_tools::{self, try_run};
use serde_json::{json, Value};

fn set(cloud: &Cloud, sql: &str, id: &str) {
    let url = format!(
        "sqlite://{}",
        cloud.dir.path().join("kiln-data/kiln.db").display()
    );
    block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let done = sqlx::query(sql).bind(id).execute(&pool).await.unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql} {id}");
        pool.close().await;
    });
}

fn volume(cloud: &Cloud) -> String {
    let (status, body) = cloud.create(json!({"volume": {"size": 1}}));
    assert_eq!(status, 202, "{body}");
    let id = body["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.settle(&id)["status"], "available");
    id
}

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

struct Target(String);

impl Drop for Target {
    fn drop(&mut self) {
        let _ = try_run("tgt-admin", &["--force", "--delete", &self.0]);
    }
}

#[test]
fn a_restart_settles_half_done_work_and_re_exports_attached_volumes() {
    storage_tools::ensure().expect("tgt / libiscsi-bin");
    let mut cloud = Cloud::start(
        "host = \"node1\"\nenabled_backends = [\"iscsi\"]\n\
         [backends.iscsi]\ndriver = \"file\"\ntarget_helper = \"tgtadm\"\n\
         target_portals = [\"127.0.0.1:3260\"]\nvolumes_dir = \"./kiln-data/targets/iscsi\"\n",
    );
    let creating = volume(&cloud);
    let extending = volume(&cloud);
    let retyping = volume(&cloud);
    let deleting = volume(&cloud);
    let with_snapshot = volume(&cloud);
    let attached = volume(&cloud);
    let reverting = volume(&cloud);
    let take_snapshot = |volume_id: &str| {
        let (status, body) = http(
            "POST",
            &format!("{}/snapshots", cloud.api),
            Some(json!({"snapshot": {"volume_id": volume_id}})),
        );
        assert_eq!(status, 202, "{body}");
        let snap = body["snapshot"]["id"].as_str().unwrap().to_string();
        let started = Instant::now();
        while http("GET", &format!("{}/snapshots/{snap}", cloud.api), None).1["snapshot"]["status"]
            != "available"
        {
            assert!(started.elapsed() < Duration::from_secs(20), "snapshot");
            std::thread::sleep(Duration::from_millis(50));
        }
        snap
    };
    let snap = take_snapshot(&with_snapshot);
    let restoring = take_snapshot(&reverting);
    // Attach one volume for real: exported through tgtd.
    let iqn = format!("iqn.2010-10.org.openstack:volume-{attached}");
    let _guard = Target(iqn.clone());
    let action = |id: &str, body: Value| {
        http(
            "POST",
            &format!("{}/volumes/{id}/action", cloud.api),
            Some(body),
        )
    };
    assert_eq!(action(&attached, json!({"os-reserve": {}})).0, 202);
    let (status, body) = action(
        &attached,
        json!({"os-initialize_connection": {"connector": {"host": "compute1"}}}),
    );
    assert_eq!(status, 200, "{body}");
    let info = body["connection_info"].clone();
    let (status, _) = action(
        &attached,
        json!({"os-attach": {"instance_uuid": "9f0d7a43-0000-4000-8000-000000000001", "mountpoint": "/dev/vdb"}}),
    );
    assert_eq!(status, 202);
    assert!(lun_size(&info).0, "exported before the crash");

    // The crash: work half done in the database, and the target daemon lost the export.
    cloud.aio.signal(libc::SIGSTOP);
    set(
        &cloud,
        "UPDATE volumes SET status = 'creating' WHERE id = $1",
        &creating,
    );
    set(
        &cloud,
        "UPDATE volumes SET status = 'extending' WHERE id = $1",
        &extending,
    );
    set(
        &cloud,
        "UPDATE volumes SET status = 'retyping' WHERE id = $1",
        &retyping,
    );
    set(
        &cloud,
        "UPDATE volumes SET status = 'deleting' WHERE id = $1",
        &deleting,
    );
    set(
        &cloud,
        "UPDATE snapshots SET status = 'deleting' WHERE id = $1",
        &snap,
    );
    set(
        &cloud,
        "UPDATE volumes SET status = 'reverting' WHERE id = $1",
        &reverting,
    );
    set(
        &cloud,
        "UPDATE snapshots SET status = 'restoring' WHERE id = $1",
        &restoring,
    );
    let (ok, out) = try_run("tgt-admin", &["--force", "--delete", &iqn]);
    assert!(ok, "{out}");
    assert!(!lun_size(&info).0, "the export is gone");
    cloud.crash_and_restart();

    let status_of = |id: &str| cloud.show(id).1["volume"]["status"].clone();
    assert_eq!(status_of(&creating), "error", "{}", cloud.aio.log_text());
    assert_eq!(status_of(&extending), "error_extending");
    assert_eq!(status_of(&retyping), "available");
    assert_eq!(status_of(&reverting), "error");
    assert!(
        cloud
            .messages(&reverting)
            .join("\n")
            .contains("was being reverted to a snapshot"),
        "{:?}",
        cloud.messages(&reverting)
    );
    assert_eq!(
        http("GET", &format!("{}/snapshots/{restoring}", cloud.api), None).1["snapshot"]["status"],
        "available",
        "a revert leaves its snapshot as it was"
    );
    assert!(
        cloud
            .messages(&creating)
            .join("\n")
            .contains("was being created when the volume service node1@iscsi stopped"),
        "{:?}",
        cloud.messages(&creating)
    );
    let started = Instant::now();
    loop {
        let volume_gone = cloud.show(&deleting).0 == 404;
        let snapshot_gone = http("GET", &format!("{}/snapshots/{snap}", cloud.api), None).0 == 404;
        if volume_gone && snapshot_gone {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "interrupted deletes were not resumed\n{}",
            cloud.aio.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!cloud
        .volume_dir("iscsi")
        .join(format!("volume-{deleting}"))
        .exists());
    let (ok, out) = lun_size(&info);
    assert!(
        ok,
        "the attached volume is exported again with the same credentials: {out}"
    );
    assert_eq!(status_of(&attached), "in-use");
}
