//! The `lioadm` helper: the kernel's LIO target driven by `targetcli` argv (what Cinder's
//! `cinder-rtstool` does through rtslib): a fileio or block backstore per volume, a target
//! with LUN 0 and the configured portals, and per-initiator ACLs carrying the volume's CHAP
//! credentials at `initialize_connection`. Not run for real on the development machine (LIO
//! needs configfs); covered by argv unit tests.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Chap, IscsiLocation, TargetHelper, TargetSettings};
use crate::drivers::exec::{run_checked, Cmd, CommandRunner, Retry};
use crate::drivers::{ConnectionInfo, Connector, DriverError, ModelUpdate, VolumeRef};

/// LIO's data LUN.
pub const LUN: u32 = 0;
/// The target portal group every target gets.
pub const TPG: u32 = 1;

pub struct LioAdm {
    settings: TargetSettings,
    runner: Arc<dyn CommandRunner>,
}

fn targetcli<I: IntoIterator<Item = String>>(args: I) -> Cmd {
    Cmd::new("targetcli", args)
}

/// `block` for device nodes, `fileio` for files.
pub fn backstore_kind(path: &Path) -> &'static str {
    if path.starts_with("/dev") {
        "block"
    } else {
        "fileio"
    }
}

/// The commands creating the export of `name` (backstore, target, LUN, portals, auth mode:
/// CHAP required when `chap`, else none — the per-initiator ACLs still decide who may log in).
/// The configuration is saved by the caller ([`save`]).
pub fn create_cmds(name: &str, iqn: &str, path: &Path, portals: &[String], chap: bool) -> Vec<Cmd> {
    let kind = backstore_kind(path);
    let tpg = format!("/iscsi/{iqn}/tpg{TPG}");
    let dev_arg = if kind == "block" {
        "dev"
    } else {
        "file_or_dev"
    };
    let mut cmds = vec![
        targetcli([
            format!("/backstores/{kind}"),
            "create".into(),
            format!("name={name}"),
            format!("{dev_arg}={}", path.display()),
        ]),
        targetcli(["/iscsi".into(), "create".into(), iqn.to_string()]),
        targetcli([
            format!("{tpg}/luns"),
            "create".into(),
            format!("/backstores/{kind}/{name}"),
        ]),
        // targetcli adds 0.0.0.0:3260 by default; only the configured portals may serve.
        targetcli([
            format!("{tpg}/portals"),
            "delete".into(),
            "0.0.0.0".into(),
            "3260".into(),
        ]),
    ];
    for p in portals {
        let (ip, port) = p.rsplit_once(':').unwrap_or((p.as_str(), "3260"));
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        cmds.push(targetcli([
            format!("{tpg}/portals"),
            "create".into(),
            ip.to_string(),
            port.to_string(),
        ]));
    }
    cmds.push(targetcli([
        tpg,
        "set".into(),
        "attribute".into(),
        format!("authentication={}", u8::from(chap)),
        "generate_node_acls=0".into(),
        "demo_mode_write_protect=0".into(),
    ]));
    cmds
}

/// The commands letting `initiator` in (Cinder's `cinder-rtstool add-initiator`): its ACL with
/// LUN 0 mapped whatever targetcli's `auto_add_mapped_luns` preference says, and the volume's
/// CHAP credentials when it has some. Saved by the caller.
pub fn acl_cmds(iqn: &str, initiator: &str, chap: Option<&Chap>) -> Vec<Cmd> {
    let acls = format!("/iscsi/{iqn}/tpg{TPG}/acls");
    let mut cmds = vec![targetcli([
        acls.clone(),
        "create".into(),
        initiator.to_string(),
        "add_mapped_luns=true".into(),
    ])];
    if let Some(c) = chap {
        cmds.push(targetcli([
            format!("{acls}/{initiator}"),
            "set".into(),
            "auth".into(),
            format!("userid={}", c.user),
            format!("password={}", c.secret),
        ]));
    }
    cmds
}

/// Persist the running configuration (`/etc/target/saveconfig.json`), so a reboot or a
/// target service restart can restore it.
pub fn save() -> Cmd {
    targetcli(["saveconfig".to_string()])
}

/// Restore the saved configuration (after a reboot emptied LIO).
pub fn restore() -> Cmd {
    targetcli(["restoreconfig".to_string()])
}

/// targetcli's answers to a create of something that is there already.
const EXISTS: [&str; 1] = ["already exists"];
/// targetcli's answers to a delete of something that is not there.
const MISSING: [&str; 4] = [
    "No such",
    "does not exist",
    "No storage object",
    "not found",
];

/// LIO's configfs (through rtslib) misbehaves under concurrent changes, so Cinder serialises
/// its `cinder-rtstool` calls behind one lock; so does Kiln, per process.
static TARGETCLI: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Initiator names as iSCSI defines them (`iqn.…`, `eui.…`, `naa.…`), nothing that
/// targetcli could read as another argument.
pub fn valid_initiator(name: &str) -> bool {
    (name.starts_with("iqn.") || name.starts_with("eui.") || name.starts_with("naa."))
        && name.len() <= 223
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".:-".contains(c))
}

impl LioAdm {
    pub fn new(settings: TargetSettings, runner: Arc<dyn CommandRunner>) -> Self {
        LioAdm { settings, runner }
    }

    async fn run(&self, cmd: &Cmd) -> Result<String, DriverError> {
        let _one_at_a_time = TARGETCLI.lock().await;
        run_checked(
            self.runner.as_ref(),
            &self.settings.backend,
            cmd,
            Retry::NONE,
        )
        .await
        .map(|o| o.stdout)
    }

    /// Run a create: "already exists" is done (idempotent steps).
    async fn run_create(&self, cmd: &Cmd) -> Result<(), DriverError> {
        self.run_tolerating(cmd, &EXISTS).await
    }

    /// Run a delete: "no such …" / "does not exist" is done.
    async fn run_delete(&self, cmd: &Cmd) -> Result<(), DriverError> {
        self.run_tolerating(cmd, &MISSING).await
    }

    async fn run_tolerating(&self, cmd: &Cmd, tolerated: &[&str]) -> Result<(), DriverError> {
        match self.run(cmd).await {
            Err(DriverError::Command { stderr, .. })
                if tolerated.iter().any(|m| stderr.contains(m)) =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    async fn target_present(&self, iqn: &str) -> bool {
        self.run(&targetcli([format!("/iscsi/{iqn}"), "ls".into()]))
            .await
            .is_ok()
    }

    /// Save the configuration; like Cinder's `_persist_configuration`, a failure is logged,
    /// not raised — the change itself is made.
    async fn persist(&self, v: &VolumeRef) {
        if let Err(e) = self.run(&save()).await {
            tracing::warn!(backend = %self.settings.backend, volume = %v.id, error = %e,
                "could not save the LIO configuration; the change is live but not persisted");
        }
    }

    fn initiator<'a>(&self, c: &'a Connector) -> Result<&'a str, DriverError> {
        match c.initiator.as_deref() {
            Some(i) if valid_initiator(i) => Ok(i),
            Some(i) => Err(self.settings.invalid(format!(
                "connector initiator `{i}` is not an iSCSI name (iqn./eui./naa.)"
            ))),
            None => Err(self.settings.invalid(
                "lioadm grants access per initiator; the connector has no `initiator`".into(),
            )),
        }
    }
}

#[async_trait]
impl TargetHelper for LioAdm {
    async fn create_export(
        &self,
        v: &VolumeRef,
        backing_path: &Path,
    ) -> Result<ModelUpdate, DriverError> {
        let name = v.backend_name(&self.settings.backend)?;
        let iqn = self.settings.iqn(v)?;
        let chap = self.settings.chap_for(v)?;
        let cmds = create_cmds(
            name,
            &iqn,
            backing_path,
            &self.settings.portals,
            chap.is_some(),
        );
        for cmd in &cmds {
            // The default portal may be absent (targetcli's auto_add_default_portal=false).
            if cmd.args.get(1).is_some_and(|a| a == "delete") {
                self.run_delete(cmd).await?;
            } else {
                self.run_create(cmd).await?;
            }
        }
        self.persist(v).await;
        tracing::info!(backend = %self.settings.backend, iqn = %iqn, "exported volume via LIO");
        Ok(ModelUpdate {
            provider_location: Some(
                IscsiLocation {
                    portals: self.settings.portals.clone(),
                    tid: TPG,
                    iqn,
                    lun: LUN,
                }
                .format(),
            ),
            provider_auth: chap.map(|c| c.provider_auth()),
        })
    }

    /// Cinder's: when LIO holds no target at all (a reboot emptied it), the saved
    /// configuration — ACLs and CHAP included — is restored first; a target still missing
    /// after that is created again (its ACLs come back with the next
    /// `initialize_connection`).
    async fn ensure_export(&self, v: &VolumeRef, backing_path: &Path) -> Result<(), DriverError> {
        let iqn = self.settings.iqn(v)?;
        if self.target_present(&iqn).await {
            return Ok(());
        }
        let empty = self
            .run(&targetcli(["/iscsi".into(), "ls".into()]))
            .await
            .is_ok_and(|out| out.contains("[Targets: 0]"));
        if empty {
            match self.run(&restore()).await {
                Ok(_) => {
                    tracing::info!(backend = %self.settings.backend, "restored the saved LIO configuration")
                }
                Err(e) => tracing::warn!(backend = %self.settings.backend, error = %e,
                    "could not restore the saved LIO configuration"),
            }
            if self.target_present(&iqn).await {
                return Ok(());
            }
        }
        self.create_export(v, backing_path).await.map(|_| ())
    }

    async fn remove_export(&self, v: &VolumeRef) -> Result<(), DriverError> {
        let name = v.backend_name(&self.settings.backend)?;
        let iqn = self.settings.iqn(v)?;
        self.run_delete(&targetcli(["/iscsi".into(), "delete".into(), iqn]))
            .await?;
        for kind in ["fileio", "block"] {
            self.run_delete(&targetcli([
                format!("/backstores/{kind}"),
                "delete".into(),
                name.to_string(),
            ]))
            .await?;
        }
        self.persist(v).await;
        Ok(())
    }

    async fn initialize_connection(
        &self,
        v: &VolumeRef,
        c: &Connector,
    ) -> Result<ConnectionInfo, DriverError> {
        let info = self.settings.connection_info(v)?;
        let initiator = self.initiator(c)?;
        let iqn = self.settings.iqn(v)?;
        let chap = match v.provider_auth.as_deref() {
            Some(a) => Chap::parse(a),
            None => None,
        };
        for cmd in acl_cmds(&iqn, initiator, chap.as_ref()) {
            self.run_create(&cmd).await?;
        }
        self.persist(v).await;
        Ok(info)
    }

    async fn terminate_connection(&self, v: &VolumeRef, c: &Connector) -> Result<(), DriverError> {
        // Never exported (Cinder: no provider_location): no ACL to remove.
        if v.provider_location.is_none() {
            return Ok(());
        }
        let iqn = self.settings.iqn(v)?;
        let initiator = self.initiator(c)?;
        self.run_delete(&targetcli([
            format!("/iscsi/{iqn}/tpg{TPG}/acls"),
            "delete".into(),
            initiator.to_string(),
        ]))
        .await?;
        self.persist(v).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::exec::{CmdOutput, FakeRunner};

    fn helper(fake: Arc<FakeRunner>) -> LioAdm {
        helper_chap(fake, true)
    }

    fn helper_chap(fake: Arc<FakeRunner>, use_chap: bool) -> LioAdm {
        LioAdm::new(
            TargetSettings {
                backend: "b".into(),
                prefix: "iqn.2010-10.org.openstack:".into(),
                portals: vec!["10.0.0.1:3260".into(), "[fd00::1]:3261".into()],
                use_chap,
            },
            fake,
        )
    }

    fn initiator() -> Connector {
        Connector {
            host: "compute1".into(),
            initiator: Some("iqn.1993-08.org.debian:01:abc".into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn without_chap_the_target_asks_for_no_authentication() {
        let fake = Arc::new(FakeRunner::default());
        let h = helper_chap(fake.clone(), false);
        let mut v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        let upd = h.create_export(&v, Path::new("/srv/x")).await.unwrap();
        assert_eq!(upd.provider_auth, None);
        let iqn = format!("iqn.2010-10.org.openstack:{}", v.name);
        assert!(
            fake.lines().contains(&format!(
                "targetcli /iscsi/{iqn}/tpg1 set attribute authentication=0 \
                 generate_node_acls=0 demo_mode_write_protect=0"
            )),
            "{:?}",
            fake.lines()
        );
        v.apply(&upd);
        fake.clear();
        let info = h.initialize_connection(&v, &initiator()).await.unwrap();
        assert!(info.data.get("auth_method").is_none(), "{info:?}");
        assert_eq!(
            fake.lines(),
            vec![
                format!(
                    "targetcli /iscsi/{iqn}/tpg1/acls create iqn.1993-08.org.debian:01:abc \
                     add_mapped_luns=true"
                ),
                "targetcli saveconfig".to_string(),
            ],
            "an ACL without CHAP credentials"
        );
    }

    #[tokio::test]
    async fn missing_objects_are_tolerated_only_by_deletes_and_existing_ones_only_by_creates() {
        // A create answered "No such …" failed: the export is refused, not taken as done.
        let fake = Arc::new(FakeRunner::new(|cmd| {
            if cmd.args.first().is_some_and(|a| a.ends_with("/luns")) {
                CmdOutput::failed(1, "No such path /backstores/fileio/volume-x")
            } else {
                CmdOutput::ok("")
            }
        }));
        let h = helper(fake.clone());
        let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        let err = h.create_export(&v, Path::new("/srv/x")).await.unwrap_err();
        assert!(err.to_string().contains("No such path"), "{err}");
        // A create answered "already exists" is done; a delete answered so is not.
        let fake = Arc::new(FakeRunner::new(|cmd| {
            CmdOutput::failed(1, &format!("{} already exists in configFS", cmd.args[0]))
        }));
        let h = helper(fake.clone());
        let mut v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        v.provider_auth = Some("CHAP user secret".into());
        v.provider_location = Some("10.0.0.1:3260,1 iqn.x 0".into());
        h.initialize_connection(&v, &initiator()).await.unwrap();
        assert!(h.terminate_connection(&v, &initiator()).await.is_err());
        assert!(h.remove_export(&v).await.is_err());
    }

    #[tokio::test]
    async fn a_failed_save_does_not_undo_a_made_export() {
        let fake = Arc::new(FakeRunner::new(|cmd| {
            if cmd.args == ["saveconfig"] {
                CmdOutput::failed(1, "Could not write /etc/target/saveconfig.json")
            } else {
                CmdOutput::ok("")
            }
        }));
        let h = helper(fake.clone());
        let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        h.create_export(&v, Path::new("/srv/x")).await.unwrap();
        h.remove_export(&v).await.unwrap();
    }

    #[tokio::test]
    async fn terminate_without_an_export_runs_nothing() {
        let fake = Arc::new(FakeRunner::default());
        let h = helper(fake.clone());
        let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        h.terminate_connection(&v, &initiator()).await.unwrap();
        assert!(fake.lines().is_empty(), "{:?}", fake.lines());
    }

    /// A fake LIO: `/iscsi/<iqn> ls` succeeds once `exists` is set; `/iscsi ls` lists
    /// `targets`; `restoreconfig` brings the target back when `saved` is set.
    fn fake_lio(
        exists: bool,
        targets: usize,
        saved: bool,
    ) -> (Arc<FakeRunner>, Arc<std::sync::Mutex<bool>>) {
        let state = Arc::new(std::sync::Mutex::new(exists));
        let s = state.clone();
        let fake = Arc::new(FakeRunner::new(move |cmd| {
            let mut there = s.lock().unwrap();
            match cmd.args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["restoreconfig"] => {
                    *there |= saved;
                    CmdOutput::ok("Configuration restored from /etc/target/saveconfig.json")
                }
                ["/iscsi", "ls"] => CmdOutput::ok(&format!("o- iscsi ... [Targets: {targets}]")),
                [path, "ls"] if *there => CmdOutput::ok(&format!("o- {path}")),
                [path, "ls"] => CmdOutput::failed(1, &format!("No such path {path}")),
                _ => CmdOutput::ok(""),
            }
        }));
        (fake, state)
    }

    #[tokio::test]
    async fn ensure_export_restores_an_emptied_lio_then_creates_what_is_still_missing() {
        let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        let iqn = format!("iqn.2010-10.org.openstack:{}", v.name);
        let path = Path::new("/srv/x");
        // Present: nothing changes.
        let (fake, _) = fake_lio(true, 1, false);
        helper(fake.clone()).ensure_export(&v, path).await.unwrap();
        assert_eq!(fake.lines(), vec![format!("targetcli /iscsi/{iqn} ls")]);
        // LIO emptied by a reboot, the target in the saved configuration: restored, not made.
        let (fake, _) = fake_lio(false, 0, true);
        helper(fake.clone()).ensure_export(&v, path).await.unwrap();
        assert_eq!(
            fake.lines(),
            vec![
                format!("targetcli /iscsi/{iqn} ls"),
                "targetcli /iscsi ls".to_string(),
                "targetcli restoreconfig".to_string(),
                format!("targetcli /iscsi/{iqn} ls"),
            ]
        );
        // Other targets live, this one gone: no restore (it would clash with them), made again.
        let (fake, _) = fake_lio(false, 3, true);
        helper(fake.clone()).ensure_export(&v, path).await.unwrap();
        let lines = fake.lines();
        assert!(
            !lines.contains(&"targetcli restoreconfig".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&format!("targetcli /iscsi create {iqn}")),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn export_attach_detach_remove_argv() {
        let fake = Arc::new(FakeRunner::new(|cmd| {
            if cmd.args.first().is_some_and(|a| a == "/backstores/block") && cmd.args[1] == "delete"
            {
                CmdOutput::failed(1, "No storage object named volume-x.")
            } else {
                CmdOutput::ok("")
            }
        }));
        let h = helper(fake.clone());
        let mut v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        let (name, iqn) = (
            v.name.clone(),
            format!("iqn.2010-10.org.openstack:{}", v.name),
        );
        let upd = h
            .create_export(&v, Path::new(&format!("/dev/vg/{name}")))
            .await
            .unwrap();
        let chap = Chap::parse(upd.provider_auth.as_deref().unwrap()).unwrap();
        assert_eq!(
            upd.provider_location.as_deref(),
            Some(format!("10.0.0.1:3260;[fd00::1]:3261,1 {iqn} 0").as_str())
        );
        assert_eq!(
            fake.lines(),
            vec![
                format!("targetcli /backstores/block create name={name} dev=/dev/vg/{name}"),
                format!("targetcli /iscsi create {iqn}"),
                format!("targetcli /iscsi/{iqn}/tpg1/luns create /backstores/block/{name}"),
                format!("targetcli /iscsi/{iqn}/tpg1/portals delete 0.0.0.0 3260"),
                format!("targetcli /iscsi/{iqn}/tpg1/portals create 10.0.0.1 3260"),
                format!("targetcli /iscsi/{iqn}/tpg1/portals create fd00::1 3261"),
                format!(
                    "targetcli /iscsi/{iqn}/tpg1 set attribute authentication=1 \
                     generate_node_acls=0 demo_mode_write_protect=0"
                ),
                "targetcli saveconfig".to_string(),
            ]
        );
        v.apply(&upd);
        fake.clear();
        let c = Connector {
            host: "compute1".into(),
            initiator: Some("iqn.1993-08.org.debian:01:abc".into()),
            ..Default::default()
        };
        let info = h.initialize_connection(&v, &c).await.unwrap();
        assert_eq!(info.data["target_lun"], serde_json::json!(0));
        h.terminate_connection(&v, &c).await.unwrap();
        h.remove_export(&v).await.unwrap();
        assert_eq!(
            fake.lines(),
            vec![
                format!(
                    "targetcli /iscsi/{iqn}/tpg1/acls create iqn.1993-08.org.debian:01:abc \
                     add_mapped_luns=true"
                ),
                format!(
                    "targetcli /iscsi/{iqn}/tpg1/acls/iqn.1993-08.org.debian:01:abc set auth \
                     userid={} password={}",
                    chap.user, chap.secret
                ),
                "targetcli saveconfig".to_string(),
                format!("targetcli /iscsi/{iqn}/tpg1/acls delete iqn.1993-08.org.debian:01:abc"),
                "targetcli saveconfig".to_string(),
                format!("targetcli /iscsi delete {iqn}"),
                format!("targetcli /backstores/fileio delete {name}"),
                format!("targetcli /backstores/block delete {name}"),
                "targetcli saveconfig".to_string(),
            ]
        );
    }

    #[tokio::test]
    async fn files_use_fileio_and_initiators_are_checked() {
        let fake = Arc::new(FakeRunner::default());
        let h = helper(fake.clone());
        let mut v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        v.apply(&h.create_export(&v, Path::new("/srv/vols/x")).await.unwrap());
        assert!(fake.lines()[0].starts_with("targetcli /backstores/fileio create name=volume-"));
        assert!(fake.lines()[0].ends_with(" file_or_dev=/srv/vols/x"));
        for bad in [None, Some("iqn.x y"), Some("/iscsi delete"), Some("foo")] {
            let c = Connector {
                host: "h".into(),
                initiator: bad.map(str::to_string),
                ..Default::default()
            };
            let err = h.initialize_connection(&v, &c).await.unwrap_err();
            assert!(matches!(err, DriverError::Invalid { .. }), "{bad:?}: {err}");
        }
    }
}
