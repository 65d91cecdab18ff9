//! iSCSI end to end with the real tgtd: the file driver exports through the tgtadm helper,
//! and libiscsi's userspace initiator (iscsi-ls, iscsi-readcapacity16) discovers the target,
//! logs in with the volume's CHAP credentials, reads its size before and after an extend, is
//! refused with a wrong password, and no longer finds the target after remove_export.

use anyhow::Result;
use kiln::config::{BackendConfig, Config};
use kiln::drivers::{self, Connector, VolumeRef};
use kiln::targets::Chap;
use kiln_integration_tests::storage_tools::{self, run, try_run};

/// Deletes the target if the test fails half-way.
struct TargetGuard(String);

impl Drop for TargetGuard {
    fn drop(&mut self) {
        let _ = try_run("tgt-admin", &["--force", "--delete", &self.0]);
    }
}

fn capacity(user: &str, secret: &str, iqn: &str) -> (bool, String) {
    let url = format!("iscsi://{user}%{secret}@127.0.0.1:3260/{iqn}/1");
    try_run("iscsi-readcapacity16", &["-s", &url])
}

#[tokio::test]
async fn tgt_export_discovery_chap_size_and_removal() -> Result<()> {
    storage_tools::ensure()?;
    let dir = tempfile::tempdir()?;
    let vols = dir.path().join("vols");
    let targets = dir.path().join("targets");
    let settings = BackendConfig {
        path: Some(vols.clone()),
        target_helper: "tgtadm".into(),
        volumes_dir: Some(targets.clone()),
        target_portals: vec!["127.0.0.1".into()],
        ..Default::default()
    };
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let driver = drivers::build(&config, "iscsi", &settings)?;
    driver.do_setup().await?;
    assert_eq!(driver.get_volume_stats().await?.storage_protocol, "iSCSI");

    let mut v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    v.apply(&driver.create_volume(&v).await?);
    let iqn = format!("iqn.2010-10.org.openstack:{}", v.name);
    let _guard = TargetGuard(iqn.clone());
    let connector = Connector {
        host: "compute1".into(),
        initiator: Some("iqn.1993-08.org.debian:01:kilntest".into()),
        ip: Some("127.0.0.1".into()),
        multipath: false,
    };
    let upd = driver.create_export(&v, &connector).await?;
    v.apply(&upd);
    let chap = Chap::parse(v.provider_auth.as_deref().unwrap_or_default())
        .expect("create_export records CHAP credentials");
    let loc = v.provider_location.clone().unwrap_or_default();
    assert!(
        loc.starts_with("127.0.0.1:3260,") && loc.ends_with(&format!(" {iqn} 1")),
        "{loc}"
    );
    assert!(targets.join(&v.name).exists(), "target file written");

    let info = driver.initialize_connection(&v, &connector).await?;
    assert_eq!(info.driver_volume_type, "iscsi");
    let d = &info.data;
    assert_eq!(d["target_iqn"], serde_json::json!(iqn));
    assert_eq!(d["target_portal"], serde_json::json!("127.0.0.1:3260"));
    assert_eq!(d["target_portals"], serde_json::json!(["127.0.0.1:3260"]));
    assert_eq!(d["target_lun"], serde_json::json!(1));
    assert_eq!(d["auth_method"], serde_json::json!("CHAP"));
    assert_eq!(d["auth_username"], serde_json::json!(chap.user));
    assert_eq!(d["auth_password"], serde_json::json!(chap.secret));
    assert_eq!(d["volume_id"], serde_json::json!(v.id.to_string()));
    assert_eq!(d["access_mode"], serde_json::json!("rw"));
    assert_eq!(d["target_discovered"], serde_json::json!(false));

    // Discovery and login with the volume's credentials: the target and its disk LUN.
    let portal = format!("iscsi://{}%{}@127.0.0.1", chap.user, chap.secret);
    let listing = run("iscsi-ls", &["-s", &portal])?;
    let ours: Vec<&str> = listing
        .split("Target:")
        .filter(|block| block.starts_with(&format!("{iqn} ")))
        .collect();
    assert_eq!(ours.len(), 1, "iscsi-ls does not show {iqn}:\n{listing}");
    assert!(
        ours[0].contains("Lun:1") && ours[0].contains("DIRECT_ACCESS"),
        "{}",
        ours[0]
    );

    // The LUN's size, before and after an extend.
    let (ok, out) = capacity(&chap.user, &chap.secret, &iqn);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), (1u64 << 30).to_string());
    driver.extend_volume(&v, 2).await?;
    v.size_gb = 2;
    let (ok, out) = capacity(&chap.user, &chap.secret, &iqn);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), (2u64 << 30).to_string(), "size after extend");

    // A wrong password is refused; so is no password.
    let (ok, out) = capacity(&chap.user, "wrongwrongwrong", &iqn);
    assert!(!ok, "login with a wrong CHAP secret succeeded: {out}");
    assert!(
        out.contains("Authentication failure") || out.contains("Login Failed"),
        "{out}"
    );
    let (ok, out) = try_run(
        "iscsi-readcapacity16",
        &["-s", &format!("iscsi://127.0.0.1:3260/{iqn}/1")],
    );
    assert!(!ok, "login without CHAP succeeded: {out}");

    // ensure_export on a live target changes nothing; after removal it brings it back.
    driver.ensure_export(&v).await?;
    // A second exported volume keeps discovery non-empty (iscsi-ls fails on an empty
    // portal), so a listing without `iqn` really means it is gone.
    let mut witness = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    witness.apply(&driver.create_volume(&witness).await?);
    let witness_iqn = format!("iqn.2010-10.org.openstack:{}", witness.name);
    let _witness_guard = TargetGuard(witness_iqn.clone());
    witness.apply(&driver.create_export(&witness, &connector).await?);
    driver.remove_export(&v).await?;
    let listing = run("iscsi-ls", &["iscsi://127.0.0.1"])?;
    assert!(listing.contains(&witness_iqn), "{listing}");
    assert!(
        !listing.contains(&iqn),
        "target still discoverable:\n{listing}"
    );
    driver.remove_export(&witness).await?;
    driver.delete_volume(&witness).await?;
    assert!(!run(
        "tgtadm",
        &["--lld", "iscsi", "--op", "show", "--mode", "target"]
    )?
    .contains(&iqn));
    assert!(!targets.join(&v.name).exists(), "target file removed");
    driver.remove_export(&v).await?; // already gone

    driver.ensure_export(&v).await?;
    let (ok, out) = capacity(&chap.user, &chap.secret, &iqn);
    assert!(
        ok,
        "re-exported target with the recorded credentials: {out}"
    );
    assert_eq!(out.trim(), (2u64 << 30).to_string());
    driver.remove_export(&v).await?;
    driver.delete_volume(&v).await?;
    Ok(())
}
