//! tgtadm helper: `show` parsing on real tgtd output, the target file, and the argv of
//! export / verify / remove / extend against a fake tgtd.

use std::sync::Mutex;

use super::*;
use crate::drivers::exec::{CmdOutput, FakeRunner};

const SHOW: &str = "Target 1: iqn.2010-10.org.openstack:volume-a
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     00010000
            Size: 0 MB, Block size: 1
            Backing store type: null
            Backing store path: None
            Backing store flags: 
        LUN: 1
            Type: disk
            SCSI ID: IET     00010001
            Size: 1074 MB, Block size: 512
            Backing store type: rdwr
            Backing store path: /tmp/tgtt/volume-a
            Backing store flags: 
    Account information:
        usera
    ACL information:
        ALL
Target 2: iqn.2010-10.org.openstack:volume-b
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            Backing store path: None
    Account information:
    ACL information:
        ALL
";

#[test]
fn show_output_parses() {
    let t = parse_show(SHOW);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].tid, 1);
    assert_eq!(t[0].iqn, "iqn.2010-10.org.openstack:volume-a");
    assert_eq!(
        t[0].luns,
        vec![
            TgtLun {
                lun: 0,
                size_mb: Some(0),
                backing_path: None
            },
            TgtLun {
                lun: 1,
                size_mb: Some(1074),
                backing_path: Some("/tmp/tgtt/volume-a".into())
            }
        ]
    );
    assert_eq!(t[0].accounts, vec!["usera"]);
    assert_eq!(t[1].tid, 2);
    assert!(t[1].accounts.is_empty());
    assert_eq!(t[1].luns.len(), 1);
    assert!(parse_show("").is_empty());
}

#[test]
fn target_file_like_cinder() {
    let chap = Chap {
        user: "u".into(),
        secret: "s".into(),
    };
    assert_eq!(
        target_file("iqn.x:volume-a", Path::new("/v/volume-a"), Some(&chap)),
        "<target iqn.x:volume-a>\n    backing-store /v/volume-a\n    driver iscsi\n    \
         incominguser u s\n    write-cache on\n</target>\n"
    );
    assert!(!target_file("iqn.x:volume-a", Path::new("/v/a"), None).contains("incominguser"));
}

/// A tgtd stand-in: `tgt-admin --update` creates the target from its file, `--delete`
/// drops it, `show` lists what exists.
fn fake_tgtd() -> Arc<FakeRunner> {
    Arc::new(FakeRunner::new(tgtd()))
}

fn tgtd() -> impl Fn(&Cmd) -> CmdOutput + Send + Sync + 'static {
    let state: Mutex<Option<(String, String)>> = Mutex::new(None);
    move |cmd: &Cmd| {
        let mut st = state.lock().unwrap();
        match (cmd.program.as_str(), cmd.args.first().map(String::as_str)) {
            ("tgt-admin", Some("--conf")) => {
                let text = std::fs::read_to_string(&cmd.args[1]).unwrap();
                let backing = text
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("backing-store "))
                    .unwrap()
                    .to_string();
                *st = Some((cmd.args[3].clone(), backing));
                CmdOutput::ok("")
            }
            ("tgt-admin", Some("--force")) => {
                *st = None;
                CmdOutput::ok("")
            }
            ("tgtadm", _) if cmd.args[3] == "show" => CmdOutput::ok(&match &*st {
                Some((iqn, path)) => format!(
                    "Target 7: {iqn}\n    LUN information:\n        LUN: 0\n            \
                     Backing store path: None\n        LUN: 1\n            Size: 1074 MB, \
                     Block size: 512\n            Backing store path: {path}\n    Account \
                     information:\n    ACL information:\n        ALL\n"
                ),
                None => String::new(),
            }),
            _ => CmdOutput::ok(""),
        }
    }
}

fn helper(dir: &Path, fake: Arc<FakeRunner>) -> TgtAdm {
    TgtAdm::new(
        TargetSettings {
            backend: "b".into(),
            prefix: "iqn.2010-10.org.openstack:".into(),
            portals: vec!["10.0.0.1:3260".into(), "10.0.0.2:3260".into()],
            use_chap: true,
        },
        dir.join("targets"),
        fake,
    )
}

#[tokio::test]
async fn export_writes_the_file_loads_it_and_records_location_and_chap() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_tgtd();
    let h = helper(dir.path(), fake.clone());
    let mut v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    let iqn = format!("iqn.2010-10.org.openstack:{}", v.name);
    let backing = dir.path().join(&v.name);
    let upd = h.create_export(&v, &backing).await.unwrap();
    assert_eq!(
        upd.provider_location.as_deref(),
        Some(format!("10.0.0.1:3260;10.0.0.2:3260,7 {iqn} 1").as_str())
    );
    let chap = Chap::parse(upd.provider_auth.as_deref().unwrap()).unwrap();
    let conf = dir.path().join("targets").join(&v.name);
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains(&format!("incominguser {} {}", chap.user, chap.secret)));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fake.lines(),
        vec![
            format!("tgt-admin --conf {} --update {iqn}", conf.display()),
            "tgtadm --lld iscsi --op show --mode target".to_string(),
        ]
    );

    v.apply(&upd);
    let info = h
        .initialize_connection(&v, &Connector::default())
        .await
        .unwrap();
    assert_eq!(info.data["auth_username"], serde_json::json!(chap.user));
    assert_eq!(
        info.data["target_portal"],
        serde_json::json!("10.0.0.1:3260")
    );

    // Re-export (redelivery) keeps the recorded credentials.
    let again = h.create_export(&v, &backing).await.unwrap();
    assert_eq!(again.provider_auth, v.provider_auth);

    fake.clear();
    h.extend_target(&v, &backing).await.unwrap();
    assert_eq!(
        fake.lines()[1..],
        [
            "tgtadm --lld iscsi --op delete --mode logicalunit --tid 7 --lun 1".to_string(),
            format!(
                "tgtadm --lld iscsi --op new --mode logicalunit --tid 7 --lun 1 -b {}",
                backing.display()
            ),
        ]
    );

    fake.clear();
    h.remove_export(&v).await.unwrap();
    assert!(fake
        .lines()
        .contains(&format!("tgt-admin --force --delete {iqn}")));
    assert!(!conf.exists());
    h.remove_export(&v).await.unwrap(); // already gone
    h.extend_target(&v, &backing).await.unwrap(); // not exported: nothing to re-read
}

#[tokio::test]
async fn missing_lun_is_added_and_a_target_that_never_appears_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // tgtd that accepts the update but shows no target at all.
    let silent = Arc::new(FakeRunner::default());
    let h = helper(dir.path(), silent);
    let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    let err = h
        .create_export(&v, &dir.path().join(&v.name))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("did not create the target"),
        "{err}"
    );

    // tgtd that shows the target without LUN 1 until `--op new` adds it.
    let added = Arc::new(Mutex::new(false));
    let flag = added.clone();
    let path = dir.path().join(&v.name).display().to_string();
    let iqn = format!("iqn.2010-10.org.openstack:{}", v.name);
    let fake = Arc::new(FakeRunner::new(move |cmd| {
        if cmd.args.get(3).map(String::as_str) == Some("new") {
            *flag.lock().unwrap() = true;
        }
        if cmd.args.get(3).map(String::as_str) == Some("show") {
            let lun = if *flag.lock().unwrap() {
                format!("        LUN: 1\n            Backing store path: {path}\n")
            } else {
                String::new()
            };
            return CmdOutput::ok(&format!("Target 3: {iqn}\n    LUN information:\n{lun}"));
        }
        CmdOutput::ok("")
    }));
    let h = helper(dir.path(), fake.clone());
    h.create_export(&v, &dir.path().join(&v.name))
        .await
        .unwrap();
    assert!(*added.lock().unwrap());
    assert!(fake.lines().iter().any(
        |l| l.starts_with("tgtadm --lld iscsi --op new --mode logicalunit --tid 3 --lun 1 -b ")
    ));
}

#[tokio::test]
async fn ensure_export_needs_recorded_credentials_and_skips_live_targets() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_tgtd();
    let h = helper(dir.path(), fake.clone());
    let mut v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    let backing = dir.path().join(&v.name);
    let err = h.ensure_export(&v, &backing).await.unwrap_err();
    assert!(err.to_string().contains("no recorded CHAP"), "{err}");
    v.provider_auth = Some("CHAP user1 secret1".into());
    h.ensure_export(&v, &backing).await.unwrap();
    let text = std::fs::read_to_string(dir.path().join("targets").join(&v.name)).unwrap();
    assert!(text.contains("incominguser user1 secret1"));
    fake.clear();
    h.ensure_export(&v, &backing).await.unwrap();
    assert_eq!(
        fake.lines(),
        vec!["tgtadm --lld iscsi --op show --mode target"]
    );
}

#[tokio::test]
async fn backing_paths_that_would_break_the_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_tgtd();
    let h = helper(dir.path(), fake.clone());
    let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    let err = h
        .create_export(&v, Path::new("/tmp/a b\n</target>"))
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Invalid { .. }), "{err}");
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_tid_taken_by_a_concurrent_load_is_retried_other_failures_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    let backing = dir.path().join(&v.name);
    // tgtd where another load wins the tid race once: the first `--update` fails as tgtadm
    // does, then the real tgtd stand-in answers.
    let real = tgtd();
    let collided = Arc::new(Mutex::new(false));
    let flag = collided.clone();
    let fake = Arc::new(FakeRunner::new(move |cmd| {
        if cmd.args.get(2).map(String::as_str) == Some("--update") && !*flag.lock().unwrap() {
            *flag.lock().unwrap() = true;
            return CmdOutput::failed(22, "tgtadm: this target already exists\n");
        }
        real(cmd)
    }));
    let h = helper(dir.path(), fake.clone());
    h.create_export(&v, &backing).await.unwrap();
    let updates = fake
        .lines()
        .iter()
        .filter(|l| l.contains("--update"))
        .count();
    assert_eq!(updates, 2, "{:?}", fake.lines());

    // Any other tgt-admin failure is reported at once.
    let broken = Arc::new(FakeRunner::new(|cmd| {
        if cmd.program == "tgt-admin" {
            CmdOutput::failed(107, "tgtadm: failed to send request hdr to tgt daemon")
        } else {
            CmdOutput::ok("")
        }
    }));
    let h = helper(dir.path(), broken.clone());
    let err = h.create_export(&v, &backing).await.unwrap_err();
    assert!(err.to_string().contains("tgt daemon"), "{err}");
    assert_eq!(broken.lines().len(), 1, "{:?}", broken.lines());
}
