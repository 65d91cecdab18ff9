//! Argv-level tests of the LVM driver against a recording fake runner: the exact commands of
//! creates, snapshots, clones, thin pools, mirrors, reverts, deletes and stats.

use std::sync::{Arc, Mutex};

use super::*;
use crate::drivers::exec::FakeRunner;

const VG: &str = "vg1";

struct Rig {
    fake: Arc<FakeRunner>,
    lvs: Arc<Mutex<String>>,
    driver: LvmDriver,
}

fn rig(lvm_type: &str, mirrors: u32, activation: bool) -> Rig {
    rig_failing(lvm_type, mirrors, activation, "")
}

/// [`rig`] where every run of `failing` (a program name) fails.
fn rig_failing(lvm_type: &str, mirrors: u32, activation: bool, failing: &'static str) -> Rig {
    let lvs = Arc::new(Mutex::new(String::new()));
    let listing = lvs.clone();
    let fake = Arc::new(FakeRunner::new(move |cmd| match cmd.program.as_str() {
        p if p == failing => CmdOutput::failed(5, "  device-mapper: reload ioctl failed"),
        "vgs" => CmdOutput::ok("  vg1:20.00:7.50:3:abc-uuid\n"),
        "lvs" => CmdOutput::ok(&listing.lock().unwrap()),
        "lvremove" if cmd.args.last().is_some_and(|a| a.contains("/snapshot-")) => {
            CmdOutput::failed(5, "  Failed to find logical volume \"vg1/snapshot-…\"")
        }
        _ => CmdOutput::ok(""),
    }));
    let settings = BackendConfig {
        driver: "lvm".into(),
        volume_group: VG.into(),
        lvm_type: lvm_type.into(),
        lvm_mirrors: mirrors,
        lvm_activation: activation,
        ..Default::default()
    };
    let driver = LvmDriver::new("node1", "lvm", &settings, fake.clone(), None);
    Rig { fake, lvs, driver }
}

fn vol(size: u64) -> VolumeRef {
    VolumeRef::new(uuid::Uuid::new_v4(), size)
}

/// The commands run, minus the `lvs` listings the driver reads before acting.
fn actions(fake: &FakeRunner) -> Vec<String> {
    fake.lines()
        .into_iter()
        .filter(|l| !l.starts_with("lvs ") && !l.starts_with("vgs "))
        .collect()
}

#[tokio::test]
async fn thick_create_extend_delete() {
    let r = rig("default", 0, true);
    let v = vol(2);
    r.driver.create_volume(&v).await.unwrap();
    r.driver.extend_volume(&v, 5).await.unwrap();
    *r.lvs.lock().unwrap() = format!("  vg1:{}:2.00:-wi-a-----:::\n", v.name);
    r.driver.delete_volume(&v).await.unwrap();
    assert_eq!(
        actions(&r.fake),
        vec![
            format!("lvcreate -n {} vg1 -L 2g", v.name),
            format!("lvextend -L 5g vg1/{}", v.name),
            format!(
                "lvremove --config 'activation{{retry_deactivation=1}}' -f vg1/{}",
                v.name
            ),
        ]
    );
    assert!(r.fake.lines()[0].starts_with("lvs --noheadings --unit=g -o vg_name,name,size"));
}

#[tokio::test]
async fn mirrored_create() {
    let r = rig("default", 2, true);
    let v = vol(1);
    r.driver.create_volume(&v).await.unwrap();
    assert_eq!(
        actions(&r.fake),
        vec![format!(
            "lvcreate -n {} vg1 -L 1g --type=mirror -m 2 --nosync --mirrorlog mirrored",
            v.name
        )]
    );
}

#[tokio::test]
async fn existing_lv_makes_create_idempotent_and_missing_lv_makes_delete_a_no_op() {
    let r = rig("default", 0, true);
    let v = vol(1);
    *r.lvs.lock().unwrap() = format!("  vg1:{}:1.00:-wi-a-----:::\n", v.name);
    r.driver.create_volume(&v).await.unwrap();
    r.driver.delete_volume(&vol(1)).await.unwrap();
    assert!(actions(&r.fake).is_empty(), "{:?}", r.fake.lines());
}

#[tokio::test]
async fn delete_refuses_a_volume_with_snapshots() {
    let r = rig("default", 0, true);
    let v = vol(1);
    *r.lvs.lock().unwrap() = format!(
        "  vg1:{0}:1.00:owi-a-s---:::\n  vg1:snapshot-x:1.00:swi-a-s---::{0}:\n",
        v.name
    );
    let err = r.driver.delete_volume(&v).await.unwrap_err();
    assert!(
        err.to_string().contains("has snapshots (snapshot-x)"),
        "{err}"
    );
    assert!(actions(&r.fake).is_empty());
}

#[tokio::test]
async fn thin_pool_is_created_at_setup_with_95_percent_of_free() {
    let r = rig("thin", 0, true);
    r.driver.do_setup().await.unwrap();
    assert_eq!(actions(&r.fake), vec!["lvcreate -T -L 7.12g vg1/vg1-pool"]);
    r.fake.clear();
    *r.lvs.lock().unwrap() = "  vg1:vg1-pool:7.12:twi-aotz--:::0.00\n".into();
    r.driver.do_setup().await.unwrap();
    assert!(actions(&r.fake).is_empty(), "existing pool is kept");
}

#[tokio::test]
async fn thin_create_snapshot_clone_and_volume_from_snapshot() {
    let r = rig("thin", 0, true);
    let src = vol(2);
    *r.lvs.lock().unwrap() = format!("  vg1:{}:2.00:Vwi-a-tz--:vg1-pool::1.00\n", src.name);
    let snap = SnapshotRef::new(uuid::Uuid::new_v4(), src.clone());
    let (clone, from_snap) = (vol(2), vol(4));
    r.driver.create_volume(&vol(3)).await.unwrap();
    r.fake.clear();
    r.driver.create_snapshot(&snap).await.unwrap();
    r.driver.create_cloned_volume(&clone, &src).await.unwrap();
    r.driver
        .create_volume_from_snapshot(&from_snap, &snap)
        .await
        .unwrap();
    assert_eq!(
        actions(&r.fake),
        vec![
            format!("lvcreate --name {} --snapshot vg1/{}", snap.name, src.name),
            format!("lvcreate --name {} --snapshot vg1/{}", clone.name, src.name),
            format!("lvchange -a y --yes -K -k n vg1/{}", clone.name),
            format!(
                "lvcreate --name {} --snapshot vg1/{}",
                from_snap.name, snap.name
            ),
            format!("lvchange -a y --yes -K -k n vg1/{}", from_snap.name),
            format!("lvextend -L 4g vg1/{}", from_snap.name),
        ]
    );
}

#[tokio::test]
async fn thin_create_goes_into_the_pool() {
    let r = rig("thin", 0, true);
    let v = vol(3);
    r.driver.create_volume(&v).await.unwrap();
    assert_eq!(
        actions(&r.fake),
        vec![format!("lvcreate -T -V 3g -n {} vg1/vg1-pool", v.name)]
    );
}

#[tokio::test]
async fn thick_snapshot_and_clone_with_cleanup_when_the_copy_fails() {
    let r = rig("default", 0, true);
    let src = vol(2);
    *r.lvs.lock().unwrap() = format!("  vg1:{}:2.00:-wi-a-----:::\n", src.name);
    let snap = SnapshotRef::new(uuid::Uuid::new_v4(), src.clone());
    r.driver.create_snapshot(&snap).await.unwrap();
    let clone = vol(3);
    // The fake creates no device nodes, so the copy from /dev/vg1/… fails: the temporary
    // snapshot and the half-made clone must both be removed.
    let err = r
        .driver
        .create_cloned_volume(&clone, &src)
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Io { .. }), "{err}");
    let temp = format!("clone-snap-{}", clone.id);
    let rm = "lvremove --config 'activation{retry_deactivation=1}' -f";
    assert_eq!(
        actions(&r.fake),
        vec![
            format!(
                "lvcreate --name {} --snapshot vg1/{} -L 2g",
                snap.name, src.name
            ),
            format!("lvcreate --name {temp} --snapshot vg1/{} -L 2g", src.name),
            format!("lvcreate -n {} vg1 -L 3g", clone.name),
            format!("{rm} vg1/{temp}"),
            format!("{rm} vg1/{}", clone.name),
        ]
    );
}

#[tokio::test]
async fn activation_disabled_refuses_copies_and_exports_before_running_anything() {
    let r = rig("default", 0, false);
    let (src, dst) = (vol(1), vol(1));
    let snap = SnapshotRef::new(uuid::Uuid::new_v4(), src.clone());
    let c = Connector::default();
    let errors = vec![
        r.driver.create_cloned_volume(&dst, &src).await.unwrap_err(),
        r.driver
            .create_volume_from_snapshot(&dst, &snap)
            .await
            .unwrap_err(),
        r.driver.create_export(&dst, &c).await.unwrap_err(),
        r.driver.initialize_connection(&dst, &c).await.unwrap_err(),
    ];
    for e in errors {
        assert!(
            e.to_string().contains(
                "needs device-mapper; this host runs LVM with activation disabled (lvm_activation=false)"
            ),
            "{e}"
        );
    }
    assert!(r.fake.calls().is_empty());
    r.driver.create_volume(&dst).await.unwrap();
    assert_eq!(
        actions(&r.fake),
        vec![format!(
            "lvcreate --config 'global{{activation=0}}' -n {} vg1 -L 1g",
            dst.name
        )]
    );
}

#[tokio::test]
async fn missing_snapshot_delete_is_success_and_bad_names_are_refused() {
    let r = rig("default", 0, true);
    let mut s = SnapshotRef::new(uuid::Uuid::new_v4(), vol(1));
    r.driver.delete_snapshot(&s).await.unwrap();
    s.name = "missing".into();
    assert!(matches!(
        r.driver.delete_snapshot(&s).await.unwrap_err(),
        DriverError::Invalid { .. }
    ));
    let mut v = vol(1);
    v.name = "volume-../../dev/sda".into();
    assert!(matches!(
        r.driver.create_volume(&v).await.unwrap_err(),
        DriverError::Invalid { .. }
    ));
    assert_eq!(r.fake.calls().len(), 1, "{:?}", r.fake.lines());
}

#[tokio::test]
async fn stats_follow_vgs_and_lvs() {
    let r = rig("default", 0, true);
    *r.lvs.lock().unwrap() = "  vg1:volume-a:4.00:-wi-a-----:::\n".into();
    let s = r.driver.get_volume_stats().await.unwrap();
    let p = &s.pools[0];
    assert_eq!(p.total_capacity_gb, Capacity::Gb(20.0));
    assert_eq!(p.free_capacity_gb, Capacity::Gb(7.5));
    assert_eq!(p.provisioned_capacity_gb, 12.5);
    assert_eq!(p.allocated_capacity_gb, 4.0);
    assert_eq!(p.total_volumes, 3);
    assert!(p.thick_provisioning_support && !p.thin_provisioning_support);
    assert_eq!(
        p.extra["location_info"],
        serde_json::json!("LVMVolumeDriver:node1:vg1:default:0")
    );
}

#[tokio::test]
async fn thick_revert_merges_cycles_activation_and_takes_the_snapshot_again() {
    let r = rig("default", 0, true);
    let v = vol(1);
    let s = SnapshotRef::new(uuid::Uuid::new_v4(), v.clone());
    // After the merge the snapshot is gone; the origin is listed.
    *r.lvs.lock().unwrap() = format!("  vg1:{}:1.00:-wi-a-----:::\n", v.name);
    r.driver.revert_to_snapshot(&v, &s).await.unwrap();
    assert_eq!(
        actions(&r.fake),
        vec![
            format!("lvconvert --merge vg1/{}", s.name),
            format!("lvchange -a n vg1/{}", v.name),
            format!("lvchange -a y --yes -K -k n vg1/{}", v.name),
            format!("lvcreate --name {} --snapshot vg1/{} -L 1g", s.name, v.name),
        ]
    );
}

#[tokio::test]
async fn revert_without_activation_says_it_needs_device_mapper_and_runs_nothing() {
    let r = rig("default", 0, false);
    let v = vol(1);
    let s = SnapshotRef::new(uuid::Uuid::new_v4(), v.clone());
    let err = r.driver.revert_to_snapshot(&v, &s).await.unwrap_err();
    assert!(err.to_string().contains("device-mapper"), "{err}");
    assert!(actions(&r.fake).is_empty(), "{:?}", r.fake.lines());
}

#[tokio::test]
async fn a_thin_volume_with_a_clone_or_snapshot_is_deleted() {
    // Thin clones and thin snapshots are snapshots of their source (`origin` names it), but
    // the source's attributes stay `V`: Cinder deletes it, and so does Kiln.
    let r = rig("thin", 0, true);
    let (src, clone) = (vol(1), vol(1));
    *r.lvs.lock().unwrap() = format!(
        "  vg1:vg1-pool:7.12:twi-aotz--:::1.00\n\
         vg1:{0}:1.00:Vwi-a-tz--:vg1-pool::1.00\n\
         vg1:{1}:1.00:Vwi-a-tz--:vg1-pool:{0}:1.00\n\
         vg1:snapshot-x:1.00:Vwi---tz-k:vg1-pool:{0}:\n",
        src.name, clone.name
    );
    r.driver.delete_volume(&src).await.unwrap();
    assert_eq!(
        actions(&r.fake),
        vec![format!(
            "lvremove --config 'activation{{retry_deactivation=1}}' -f vg1/{}",
            src.name
        )]
    );
}

#[tokio::test]
async fn a_thick_origin_being_merged_is_still_refused() {
    let r = rig("default", 0, true);
    let v = vol(1);
    *r.lvs.lock().unwrap() = format!(
        "  vg1:{0}:1.00:Owi-a-s---:::\n  vg1:snapshot-x:1.00:Swi-a-s---::{0}:\n",
        v.name
    );
    let err = r.driver.delete_volume(&v).await.unwrap_err();
    assert!(
        err.to_string().contains("has snapshots (snapshot-x)"),
        "{err}"
    );
    assert!(actions(&r.fake).is_empty());
}

#[tokio::test]
async fn a_thin_clone_that_fails_after_its_snapshot_removes_its_lv() {
    // The activation after `lvcreate --snapshot` fails: the new LV is removed, the source kept.
    let r = rig_failing("thin", 0, true, "lvchange");
    let (src, clone) = (vol(2), vol(3));
    *r.lvs.lock().unwrap() = format!("  vg1:{}:2.00:Vwi-a-tz--:vg1-pool::1.00\n", src.name);
    let err = r
        .driver
        .create_cloned_volume(&clone, &src)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reload ioctl failed"), "{err}");
    assert_eq!(
        actions(&r.fake),
        vec![
            format!("lvcreate --name {} --snapshot vg1/{}", clone.name, src.name),
            format!("lvchange -a y --yes -K -k n vg1/{}", clone.name),
            format!(
                "lvremove --config 'activation{{retry_deactivation=1}}' -f vg1/{}",
                clone.name
            ),
        ]
    );
}

#[tokio::test]
async fn a_thin_volume_from_snapshot_that_cannot_grow_removes_its_lv() {
    let r = rig_failing("thin", 0, true, "lvextend");
    let src = vol(2);
    let snap = SnapshotRef::new(uuid::Uuid::new_v4(), src.clone());
    let v = vol(4);
    r.driver
        .create_volume_from_snapshot(&v, &snap)
        .await
        .unwrap_err();
    let lines = actions(&r.fake);
    assert_eq!(
        lines.last().map(String::as_str),
        Some(
            format!(
                "lvremove --config 'activation{{retry_deactivation=1}}' -f vg1/{}",
                v.name
            )
            .as_str()
        ),
        "{lines:?}"
    );
}
