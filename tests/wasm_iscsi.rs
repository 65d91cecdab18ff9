//! A real iSCSI export through a WASM driver: the builtin qemu-img driver, configured with the
//! tgtadm target helper, exports a volume through the WIT `target` interface (create_export /
//! initialize_connection in the component → the host's tgt helper → the real tgtd), and
//! libiscsi's initiator checks it: discovery finds the IQN, the LUN has the volume's size,
//! CHAP is enforced; after terminate_connection / remove_export the target is gone.

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

/// Target blocks of `iscsi-ls` whose IQN is `iqn`.
fn listed(listing: &str, iqn: &str) -> usize {
    listing
        .split("Target:")
        .filter(|block| block.trim_start().starts_with(&format!("{iqn} ")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_img_driver_exports_through_tgt() -> Result<()> {
    storage_tools::ensure()?;
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("images");
    let targets = dir.path().join("targets");
    std::fs::create_dir(&root)?;
    let settings = BackendConfig {
        driver: "wasm".into(),
        plugin: Some("qemu_img_driver".into()),
        plugin_config: [("root".to_string(), root.display().to_string())].into(),
        target_helper: "tgtadm".into(),
        volumes_dir: Some(targets.clone()),
        target_portals: vec!["127.0.0.1".into()],
        ..Default::default()
    };
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let driver = drivers::build(&config, "wasmiscsi", &settings)?;
    driver.do_setup().await?;
    let connector = Connector {
        host: "compute1".into(),
        initiator: Some("iqn.1993-08.org.debian:01:kilnwasm".into()),
        ip: Some("127.0.0.1".into()),
        multipath: false,
    };

    let mut v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    v.apply(&driver.create_volume(&v).await?);
    let iqn = format!("iqn.2010-10.org.openstack:{}", v.name);
    let _guard = TargetGuard(iqn.clone());
    v.apply(&driver.create_export(&v, &connector).await?);
    let chap = Chap::parse(v.provider_auth.as_deref().unwrap_or_default())
        .expect("create_export through the component records CHAP credentials");
    let loc = v.provider_location.clone().unwrap_or_default();
    assert!(
        loc.starts_with("127.0.0.1:3260,") && loc.ends_with(&format!(" {iqn} 1")),
        "{loc}"
    );
    let target_file = std::fs::read_to_string(targets.join(&v.name))?;
    assert!(
        target_file.contains(&format!("backing-store {}", root.join(&v.name).display())),
        "the target is backed by the driver's image:\n{target_file}"
    );

    let info = driver.initialize_connection(&v, &connector).await?;
    assert_eq!(info.driver_volume_type, "iscsi");
    let d = &info.data;
    assert_eq!(d["target_iqn"], serde_json::json!(iqn));
    assert_eq!(d["target_portal"], serde_json::json!("127.0.0.1:3260"));
    assert_eq!(d["target_lun"], serde_json::json!(1));
    assert_eq!(d["auth_method"], serde_json::json!("CHAP"));
    assert_eq!(d["auth_username"], serde_json::json!(chap.user));
    assert_eq!(d["auth_password"], serde_json::json!(chap.secret));
    assert_eq!(d["volume_id"], serde_json::json!(v.id.to_string()));

    // Discovery and login with the volume's CHAP credentials.
    let portal = format!("iscsi://{}%{}@127.0.0.1", chap.user, chap.secret);
    let listing = run("iscsi-ls", &["-s", &portal])?;
    assert_eq!(
        listed(&listing, &iqn),
        1,
        "iscsi-ls does not show {iqn}:\n{listing}"
    );
    let block = listing
        .split("Target:")
        .find(|b| b.trim_start().starts_with(&format!("{iqn} ")))
        .unwrap();
    assert!(
        block.contains("Lun:1") && block.contains("DIRECT_ACCESS"),
        "{block}"
    );
    // The LUN has the image's size.
    let (ok, out) = capacity(&chap.user, &chap.secret, &iqn);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), (1u64 << 30).to_string());
    // CHAP is enforced: a wrong secret and no credentials are refused.
    let (ok, out) = capacity(&chap.user, "wrongwrongwrong", &iqn);
    assert!(!ok, "login with a wrong CHAP secret succeeded: {out}");
    let (ok, out) = try_run(
        "iscsi-readcapacity16",
        &["-s", &format!("iscsi://127.0.0.1:3260/{iqn}/1")],
    );
    assert!(!ok, "login without CHAP succeeded: {out}");

    // A second exported volume keeps discovery non-empty (iscsi-ls fails on an empty
    // portal), so a listing without `iqn` below really means it is gone.
    let mut witness = VolumeRef::new(uuid::Uuid::new_v4(), 2);
    witness.apply(&driver.create_volume(&witness).await?);
    let witness_iqn = format!("iqn.2010-10.org.openstack:{}", witness.name);
    let _witness_guard = TargetGuard(witness_iqn.clone());
    witness.apply(&driver.create_export(&witness, &connector).await?);
    let wchap = Chap::parse(witness.provider_auth.as_deref().unwrap_or_default()).unwrap();
    let (ok, out) = capacity(&wchap.user, &wchap.secret, &witness_iqn);
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        (2u64 << 30).to_string(),
        "the witness LUN's size"
    );

    driver.terminate_connection(&v, &connector).await?;
    driver.remove_export(&v).await?;
    let listing = run("iscsi-ls", &["iscsi://127.0.0.1"])?;
    assert_eq!(listed(&listing, &witness_iqn), 1, "{listing}");
    assert_eq!(
        listed(&listing, &iqn),
        0,
        "target still discoverable:\n{listing}"
    );
    let show = run(
        "tgtadm",
        &["--lld", "iscsi", "--op", "show", "--mode", "target"],
    )?;
    assert!(!show.contains(&iqn), "{show}");
    assert!(!targets.join(&v.name).exists(), "target file removed");
    let (ok, out) = capacity(&chap.user, &chap.secret, &iqn);
    assert!(!ok, "the removed target still answers: {out}");
    driver.remove_export(&v).await?; // already gone: success

    driver.remove_export(&witness).await?;
    assert!(!run(
        "tgtadm",
        &["--lld", "iscsi", "--op", "show", "--mode", "target"]
    )?
    .contains(&witness_iqn));
    driver.delete_volume(&witness).await?;
    driver.delete_volume(&v).await?;
    assert!(
        std::fs::read_dir(&root)?.next().is_none(),
        "images left behind"
    );
    Ok(())
}
