//! iSCSI target helpers (the host side of the WIT `target` interface): the [`TargetHelper`]
//! trait drivers export their backing file or device through, per-volume CHAP credentials,
//! Cinder's `provider_location` format and `connection_info` properties, and [`build`],
//! which picks `tgtadm` ([`tgt`]) or `lioadm` ([`lio`]) from the backend's configuration.

pub mod lio;
pub mod tgt;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rand::distr::{Alphanumeric, SampleString};

use crate::config::{BackendConfig, Config};
use crate::drivers::exec::CommandRunner;
use crate::drivers::{ConnectionInfo, Connector, DriverError, ModelUpdate, VolumeRef};

/// Exports a volume's backing file or block device as an iSCSI LUN.
#[async_trait]
pub trait TargetHelper: Send + Sync {
    /// Export `backing_path` as the volume's LUN with per-volume CHAP credentials (reused
    /// from `v.provider_auth` when it has some); returns the location and auth to record.
    async fn create_export(
        &self,
        v: &VolumeRef,
        backing_path: &Path,
    ) -> Result<ModelUpdate, DriverError>;
    /// Re-create the export (after a restart) if it is missing.
    async fn ensure_export(&self, v: &VolumeRef, backing_path: &Path) -> Result<(), DriverError>;
    /// Remove the export; a missing export is success.
    async fn remove_export(&self, v: &VolumeRef) -> Result<(), DriverError>;
    /// The `iscsi` connection info of the exported volume (from its recorded location and
    /// auth).
    async fn initialize_connection(
        &self,
        v: &VolumeRef,
        c: &Connector,
    ) -> Result<ConnectionInfo, DriverError>;
    /// `c` no longer uses the volume.
    async fn terminate_connection(
        &self,
        _v: &VolumeRef,
        _c: &Connector,
    ) -> Result<(), DriverError> {
        Ok(())
    }
    /// Make the target report the volume's new size after the backing store grew.
    async fn extend_target(&self, _v: &VolumeRef, _backing_path: &Path) -> Result<(), DriverError> {
        Ok(())
    }
}

/// The helper configured for `backend`, or `None` for `target_helper = "none"`.
pub fn build(
    config: &Config,
    backend: &str,
    settings: &BackendConfig,
    runner: Arc<dyn CommandRunner>,
) -> Result<Option<Arc<dyn TargetHelper>>, DriverError> {
    let portals = || {
        settings.portals().map_err(|reason| DriverError::Invalid {
            backend: backend.to_string(),
            message: format!("target_portals: {reason}"),
        })
    };
    let common = |portals| TargetSettings {
        backend: backend.to_string(),
        prefix: settings.target_prefix.clone(),
        portals,
        use_chap: settings.use_chap_auth,
    };
    match settings.target_helper.as_str() {
        "none" => Ok(None),
        "tgtadm" => {
            let dir = settings
                .volumes_dir
                .clone()
                .unwrap_or_else(|| config.data_dir.join("targets").join(backend));
            Ok(Some(Arc::new(tgt::TgtAdm::new(
                common(portals()?),
                dir,
                runner,
            ))))
        }
        "lioadm" => Ok(Some(Arc::new(lio::LioAdm::new(common(portals()?), runner)))),
        other => Err(DriverError::Invalid {
            backend: backend.to_string(),
            message: format!("unknown target_helper `{other}`; use none, tgtadm or lioadm"),
        }),
    }
}

/// What every helper needs from the configuration.
#[derive(Debug, Clone)]
pub struct TargetSettings {
    pub backend: String,
    /// IQN prefix; the volume name is appended.
    pub prefix: String,
    /// `IP:PORT`, the first one is `target_portal`.
    pub portals: Vec<String>,
    pub use_chap: bool,
}

impl TargetSettings {
    /// The target IQN of a volume (its name validated first).
    pub fn iqn(&self, v: &VolumeRef) -> Result<String, DriverError> {
        Ok(format!("{}{}", self.prefix, v.backend_name(&self.backend)?))
    }

    /// The volume's CHAP credentials: the recorded ones, else fresh random ones; `None`
    /// without `use_chap_auth`.
    pub fn chap_for(&self, v: &VolumeRef) -> Result<Option<Chap>, DriverError> {
        if !self.use_chap {
            return Ok(None);
        }
        match v.provider_auth.as_deref() {
            Some(auth) => Chap::parse(auth).map(Some).ok_or_else(|| {
                self.invalid(format!(
                    "provider_auth of volume {} is not `CHAP <user> <secret>`",
                    v.id
                ))
            }),
            None => Ok(Some(Chap::generate())),
        }
    }

    pub fn invalid(&self, message: String) -> DriverError {
        DriverError::Invalid {
            backend: self.backend.clone(),
            message,
        }
    }

    pub fn backend_err(&self, message: String) -> DriverError {
        DriverError::Backend {
            backend: self.backend.clone(),
            message,
        }
    }

    /// Cinder's iSCSI `connection_info` for `v`, from its recorded location and auth.
    pub fn connection_info(&self, v: &VolumeRef) -> Result<ConnectionInfo, DriverError> {
        let loc = v
            .provider_location
            .as_deref()
            .and_then(IscsiLocation::parse)
            .ok_or_else(|| {
                self.invalid(format!(
                    "volume {} has no iSCSI export (provider_location {:?}); call create_export \
                     first",
                    v.id, v.provider_location
                ))
            })?;
        let mut data = serde_json::json!({
            "target_discovered": false,
            "target_iqn": loc.iqn,
            "target_portal": loc.portals[0],
            "target_portals": loc.portals,
            "target_lun": loc.lun,
            "volume_id": v.id.to_string(),
            "encrypted": false,
            "qos_specs": null,
            "access_mode": "rw",
        });
        if loc.portals.len() > 1 {
            data["target_iqns"] = serde_json::json!(vec![&loc.iqn; loc.portals.len()]);
            data["target_luns"] = serde_json::json!(vec![loc.lun; loc.portals.len()]);
        }
        if let Some(auth) = v.provider_auth.as_deref() {
            let chap = Chap::parse(auth).ok_or_else(|| {
                self.invalid(format!(
                    "provider_auth of volume {} is not `CHAP <user> <secret>`",
                    v.id
                ))
            })?;
            data["auth_method"] = "CHAP".into();
            data["auth_username"] = chap.user.into();
            data["auth_password"] = chap.secret.into();
        }
        Ok(ConnectionInfo {
            driver_volume_type: "iscsi".into(),
            data,
        })
    }
}

/// Per-volume CHAP credentials, recorded as `provider_auth` = `CHAP <user> <secret>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chap {
    pub user: String,
    pub secret: String,
}

impl Chap {
    /// Random 20-character alphanumeric user and secret.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        Chap {
            user: Alphanumeric.sample_string(&mut rng, 20),
            secret: Alphanumeric.sample_string(&mut rng, 20),
        }
    }

    /// Parse `CHAP <user> <secret>`; both must be alphanumeric (they end up in target files
    /// and argv).
    pub fn parse(auth: &str) -> Option<Self> {
        let mut it = auth.split_whitespace();
        let (Some("CHAP"), Some(user), Some(secret), None) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return None;
        };
        let ok = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric());
        (ok(user) && ok(secret)).then(|| Chap {
            user: user.into(),
            secret: secret.into(),
        })
    }

    pub fn provider_auth(&self) -> String {
        format!("CHAP {} {}", self.user, self.secret)
    }
}

/// Cinder's iSCSI `provider_location`: `<portal>[;<portal>…],<tid> <iqn> <lun>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IscsiLocation {
    pub portals: Vec<String>,
    pub tid: u32,
    pub iqn: String,
    pub lun: u32,
}

impl IscsiLocation {
    pub fn format(&self) -> String {
        format!(
            "{},{} {} {}",
            self.portals.join(";"),
            self.tid,
            self.iqn,
            self.lun
        )
    }

    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split_whitespace();
        let (Some(head), Some(iqn), Some(lun), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let (portals, tid) = head.rsplit_once(',')?;
        let portals: Vec<String> = portals.split(';').map(str::to_string).collect();
        if portals.iter().any(|p| p.is_empty()) {
            return None;
        }
        Some(IscsiLocation {
            portals,
            tid: tid.parse().ok()?,
            iqn: iqn.to_string(),
            lun: lun.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(portals: &[&str]) -> TargetSettings {
        TargetSettings {
            backend: "b".into(),
            prefix: "iqn.2010-10.org.openstack:".into(),
            portals: portals.iter().map(|p| p.to_string()).collect(),
            use_chap: true,
        }
    }

    #[test]
    fn chap_round_trips_and_rejects_junk() {
        let c = Chap::generate();
        assert_eq!(c.user.len(), 20);
        assert_eq!(c.secret.len(), 20);
        assert_ne!(c, Chap::generate());
        assert_eq!(Chap::parse(&c.provider_auth()), Some(c));
        for bad in ["CHAP a", "CHAP a b c", "PLAIN a b", "CHAP a b;rm", ""] {
            assert_eq!(Chap::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn provider_location_like_cinder() {
        let loc = IscsiLocation {
            portals: vec!["10.0.0.1:3260".into(), "10.0.0.2:3260".into()],
            tid: 4,
            iqn: "iqn.2010-10.org.openstack:volume-x".into(),
            lun: 1,
        };
        let s = loc.format();
        assert_eq!(
            s,
            "10.0.0.1:3260;10.0.0.2:3260,4 iqn.2010-10.org.openstack:volume-x 1"
        );
        assert_eq!(IscsiLocation::parse(&s), Some(loc));
        assert_eq!(IscsiLocation::parse("/var/lib/kiln/volume-x"), None);
        assert_eq!(IscsiLocation::parse("p,x iqn 1"), None);
    }

    #[test]
    fn connection_info_has_cinders_keys() {
        let s = settings(&["10.0.0.1:3260"]);
        let mut v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        let err = s.connection_info(&v).unwrap_err();
        assert!(err.to_string().contains("create_export"), "{err}");
        let iqn = s.iqn(&v).unwrap();
        v.provider_location = Some(format!("10.0.0.1:3260,3 {iqn} 1"));
        v.provider_auth = Some("CHAP user1 secret1".into());
        let info = s.connection_info(&v).unwrap();
        assert_eq!(
            serde_json::to_value(&info).unwrap(),
            serde_json::json!({
                "driver_volume_type": "iscsi",
                "data": {
                    "target_discovered": false,
                    "target_iqn": iqn,
                    "target_portal": "10.0.0.1:3260",
                    "target_portals": ["10.0.0.1:3260"],
                    "target_lun": 1,
                    "volume_id": v.id.to_string(),
                    "auth_method": "CHAP",
                    "auth_username": "user1",
                    "auth_password": "secret1",
                    "encrypted": false,
                    "qos_specs": null,
                    "access_mode": "rw"
                }
            })
        );
        v.provider_location = Some(format!("10.0.0.1:3260;10.0.0.2:3260,3 {iqn} 1"));
        let info = s.connection_info(&v).unwrap();
        assert_eq!(info.data["target_luns"], serde_json::json!([1, 1]));
        assert_eq!(info.data["target_iqns"][1], serde_json::json!(iqn));
    }

    #[test]
    fn recorded_credentials_are_reused() {
        let s = settings(&["127.0.0.1:3260"]);
        let mut v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        v.provider_auth = Some("CHAP u1 s1".into());
        assert_eq!(s.chap_for(&v).unwrap().unwrap().user, "u1");
        v.provider_auth = None;
        assert!(s.chap_for(&v).unwrap().is_some());
        let no_chap = TargetSettings {
            use_chap: false,
            ..s
        };
        assert_eq!(no_chap.chap_for(&v).unwrap(), None);
    }
}
