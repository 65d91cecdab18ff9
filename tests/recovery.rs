//! A volume service that crashed mid-operation recovers at start (Cinder's `init_host`): a
//! real `kiln all-in-one` with a tgtd-exporting file backend is killed with SIGKILL while the
//! database says work was half done; after the restart volumes left `creating` / `extending`
//! / `reverting` are in error with a message (a `restoring` snapshot is available again),
//! `retyping` is back where it was, interrupted deletes (a volume,
//! a snapshot) are finished, and an attached volume whose target vanished is exported again
//! (the real initiator logs in with the same credentials), and a volume left `creating` on no
//! backend is settled by the scheduler. A second test kills the process with SIGKILL while a
//! real create — a clone copying a gigabyte of data — is in flight.

use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{block_on, http, in_use, Cloud};
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
    let unplaced = volume(&cloud);
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

    let volumes_before = in_use(&cloud, "volumes");
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
    // A crash between scheduling steps (or after a reschedule forgot the placement): creating
    // on no backend, untouched for longer than scheduler.unplaced_create_timeout.
    set(
        &cloud,
        "UPDATE volumes SET status = 'creating', host = NULL, \
         updated_at = '2000-01-01T00:00:00.000000' WHERE id = $1",
        &unplaced,
    );
    let (ok, out) = try_run("tgt-admin", &["--force", "--delete", &iqn]);
    assert!(ok, "{out}");
    assert!(!lun_size(&info).0, "the export is gone");
    cloud.crash_and_restart();

    let status_of = |id: &str| cloud.show(id).1["volume"]["status"].clone();
    assert_eq!(status_of(&creating), "error", "{}", cloud.aio.log_text());
    // The scheduler's start-up sweep may finish just after the pools are reported.
    assert_eq!(
        cloud.settle(&unplaced)["status"],
        "error",
        "{}",
        cloud.aio.log_text()
    );
    assert!(
        cloud
            .messages(&unplaced)
            .join("\n")
            .contains("stayed creating on no backend for more than 600 s"),
        "{:?}",
        cloud.messages(&unplaced)
    );
    assert!(
        !cloud
            .volume_dir("iscsi")
            .join(format!("volume-{creating}"))
            .exists(),
        "the interrupted create's data is removed"
    );
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
    // The two failed creates gave their quota back; the deleted volume released its own.
    assert_eq!(in_use(&cloud, "volumes"), volumes_before - 3);
}

/// kill -9 while a real create is in flight: a clone of a volume holding 1 GiB of data, so
/// the file driver is still copying when the process dies. After the restart the clone is not
/// left `creating`, its partial copy is gone from the backend and its quota is given back (the
/// in-process bus lost the create message, so recovery settles it as failed; with a durable
/// broker the redelivered create would instead make it again from scratch).
#[test]
fn kill_9_during_a_real_create_leaves_nothing_creating_and_nothing_on_the_backend() {
    let mut cloud = Cloud::start("host = \"node1\"\n");
    let source = volume(&cloud);
    let dir = cloud.volume_dir("file");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(format!("volume-{source}")))
            .unwrap();
        let chunk = vec![0x5au8; 4 << 20];
        for _ in 0..256 {
            f.write_all(&chunk).unwrap();
        }
        f.sync_all().unwrap();
    }
    assert_eq!(
        (in_use(&cloud, "volumes"), in_use(&cloud, "gigabytes")),
        (1, 1)
    );
    let (status, body) = cloud.create(json!({"volume": {"size": 1, "source_volid": source}}));
    assert_eq!(status, 202, "{body}");
    let clone = body["volume"]["id"].as_str().unwrap().to_string();
    let copy = dir.join(format!("volume-{clone}"));
    let started = Instant::now();
    while !copy.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the clone never started\n{}",
            cloud.aio.log_text()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    cloud.aio.signal(libc::SIGKILL);
    cloud
        .aio
        .wait_exit(Duration::from_secs(10))
        .expect("killed");
    let status_in_db = {
        let url = format!(
            "sqlite://{}",
            cloud.dir.path().join("kiln-data/kiln.db").display()
        );
        block_on(async {
            use sqlx::Row;
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            let row = sqlx::query("SELECT status FROM volumes WHERE id = $1")
                .bind(&clone)
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            row.get::<String, _>("status")
        })
    };
    assert_eq!(
        status_in_db, "creating",
        "the kill came while the copy was running"
    );
    assert!(copy.exists(), "a partial copy is on the backend");

    cloud.restart();
    let v = cloud.settle(&clone);
    assert_eq!(v["status"], "error", "{v}\n{}", cloud.aio.log_text());
    assert!(
        cloud
            .messages(&clone)
            .join("\n")
            .contains("was being created when the volume service node1@file stopped"),
        "{:?}",
        cloud.messages(&clone)
    );
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec![format!("volume-{source}")], "nothing leaked");
    assert_eq!(
        (in_use(&cloud, "volumes"), in_use(&cloud, "gigabytes")),
        (1, 1),
        "the clone's quota is given back"
    );
    // Deleting the errored clone releases nothing a second time.
    let (status, _) = http("DELETE", &format!("{}/volumes/{clone}", cloud.api), None);
    assert_eq!(status, 202);
    let started = Instant::now();
    while cloud.show(&clone).0 != 404 {
        assert!(started.elapsed() < Duration::from_secs(20), "delete");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        (in_use(&cloud, "volumes"), in_use(&cloud, "gigabytes")),
        (1, 1)
    );
}
