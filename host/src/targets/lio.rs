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

/// The commands creating the export of `name` (backstore, target, LUN, portals, auth mode).
pub fn create_cmds(name: &str, iqn: &str, path: &Path, portals: &[String]) -> Vec<Cmd> {
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
        "authentication=1".into(),
        "generate_node_acls=0".into(),
        "demo_mode_write_protect=0".into(),
    ]));
    cmds.push(save());
    cmds
}

pub fn acl_cmds(iqn: &str, initiator: &str, chap: Option<&Chap>) -> Vec<Cmd> {
    let acls = format!("/iscsi/{iqn}/tpg{TPG}/acls");
    let mut cmds = vec![targetcli([
        acls.clone(),
        "create".into(),
        initiator.to_string(),
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
    cmds.push(save());
    cmds
}

fn save() -> Cmd {
    targetcli(["saveconfig".to_string()])
}

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
        run_checked(
            self.runner.as_ref(),
            &self.settings.backend,
            cmd,
            Retry::NONE,
        )
        .await
        .map(|o| o.stdout)
    }

    /// Run `cmd`, treating "already exists" / "no such" answers as done (idempotent steps).
    async fn run_tolerant(&self, cmd: &Cmd) -> Result<(), DriverError> {
        match self.run(cmd).await {
            Err(DriverError::Command { stderr, .. })
                if [
                    "already exists",
                    "No such",
                    "does not exist",
                    "No storage object",
                ]
                .iter()
                .any(|m| stderr.contains(m)) =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
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
        for cmd in create_cmds(name, &iqn, backing_path, &self.settings.portals) {
            self.run_tolerant(&cmd).await?;
        }
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

    async fn ensure_export(&self, v: &VolumeRef, backing_path: &Path) -> Result<(), DriverError> {
        let iqn = self.settings.iqn(v)?;
        let present = self
            .run(&targetcli([format!("/iscsi/{iqn}"), "ls".into()]))
            .await
            .is_ok();
        if present {
            return Ok(());
        }
        self.create_export(v, backing_path).await.map(|_| ())
    }

    async fn remove_export(&self, v: &VolumeRef) -> Result<(), DriverError> {
        let name = v.backend_name(&self.settings.backend)?;
        let iqn = self.settings.iqn(v)?;
        self.run_tolerant(&targetcli(["/iscsi".into(), "delete".into(), iqn]))
            .await?;
        for kind in ["fileio", "block"] {
            self.run_tolerant(&targetcli([
                format!("/backstores/{kind}"),
                "delete".into(),
                name.to_string(),
            ]))
            .await?;
        }
        self.run(&save()).await.map(|_| ())
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
            self.run_tolerant(&cmd).await?;
        }
        Ok(info)
    }

    async fn terminate_connection(&self, v: &VolumeRef, c: &Connector) -> Result<(), DriverError> {
        let iqn = self.settings.iqn(v)?;
        let initiator = self.initiator(c)?;
        self.run_tolerant(&targetcli([
            format!("/iscsi/{iqn}/tpg{TPG}/acls"),
            "delete".into(),
            initiator.to_string(),
        ]))
        .await?;
        self.run(&save()).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::exec::{CmdOutput, FakeRunner};

    fn helper(fake: Arc<FakeRunner>) -> LioAdm {
        LioAdm::new(
            TargetSettings {
                backend: "b".into(),
                prefix: "iqn.2010-10.org.openstack:".into(),
                portals: vec!["10.0.0.1:3260".into(), "[fd00::1]:3261".into()],
                use_chap: true,
            },
            fake,
        )
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
                format!("targetcli /iscsi/{iqn}/tpg1/acls create iqn.1993-08.org.debian:01:abc"),
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
