//! Volume drivers: the native [`VolumeDriver`] trait (the Rust mirror of the WIT `driver`
//! interface), the records it works on, its errors, and [`build`], which picks the configured
//! driver (`file`, `lvm`, or a WebAssembly component with `wasm`) with its iSCSI target helper. A volume service owns one driver.

pub mod copy;
pub mod exec;
pub mod file;
pub mod lvm;
#[cfg(test)]
mod revert_tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::{BackendConfig, Config};

/// Driver failures at the module boundary. The first six variants mirror the WIT
/// `driver-error`; `Io` and `UnknownDriver` are host-side.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("backend {backend}: {what}: {source}")]
    Io {
        backend: String,
        what: String,
        source: std::io::Error,
    },
    #[error(
        "backend {backend}: unknown driver `{driver}`; set `driver` to `file`, `lvm` or `wasm`"
    )]
    UnknownDriver { backend: String, driver: String },
    #[error("backend {backend}: {what} is not supported by this driver")]
    NotSupported { backend: String, what: String },
    #[error("backend {backend}: invalid request: {message}")]
    Invalid { backend: String, message: String },
    #[error("backend {backend}: {what} not found")]
    NotFound { backend: String, what: String },
    #[error("backend {backend}: {message}")]
    Backend { backend: String, message: String },
    #[error(
        "backend {backend}: command `{argv}` failed ({}): {stderr}",
        status_text(.status)
    )]
    Command {
        backend: String,
        argv: String,
        status: Option<i32>,
        stderr: String,
    },
    #[error("backend {backend}: command denied: {message}")]
    ExecDenied { backend: String, message: String },
}

fn status_text(status: &Option<i32>) -> String {
    match status {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".into(),
    }
}

impl DriverError {
    /// The object the operation was about is not on the backend (deletes treat this as done).
    pub fn is_not_found(&self) -> bool {
        matches!(self, DriverError::NotFound { .. })
    }
}

/// A capacity in GiB, or Cinder's `infinite` / `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Capacity {
    Gb(f64),
    Special(SpecialCapacity),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecialCapacity {
    Infinite,
    Unknown,
}

/// One pool of a backend, as reported to the scheduler (Cinder's pool stats keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolStats {
    pub pool_name: String,
    pub total_capacity_gb: Capacity,
    pub free_capacity_gb: Capacity,
    pub allocated_capacity_gb: f64,
    pub provisioned_capacity_gb: f64,
    pub reserved_percentage: u8,
    pub max_over_subscription_ratio: f64,
    pub thin_provisioning_support: bool,
    pub thick_provisioning_support: bool,
    pub total_volumes: u64,
    pub multiattach: bool,
    #[serde(rename = "QoS_support")]
    pub qos_support: bool,
    /// Driver-specific capabilities matched by volume-type extra specs.
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A backend's stats: what `get_volume_stats` returns in Cinder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendStats {
    pub volume_backend_name: String,
    pub vendor_name: String,
    pub driver_version: String,
    pub storage_protocol: String,
    pub pools: Vec<PoolStats>,
}

/// A volume as a driver sees it (WIT `driver-types.volume`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeRef {
    pub id: uuid::Uuid,
    /// `volume-<id>`; drivers refuse any other name ([`VolumeRef::backend_name`]).
    pub name: String,
    pub size_gb: u64,
    /// The pool the scheduler placed it on (the part after `#`).
    pub pool: String,
    pub provider_location: Option<String>,
    pub provider_auth: Option<String>,
    pub extra_specs: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
}

impl VolumeRef {
    /// A volume record with Cinder's default name `volume-<id>` and nothing recorded yet.
    pub fn new(id: uuid::Uuid, size_gb: u64) -> Self {
        VolumeRef {
            id,
            name: format!("volume-{id}"),
            size_gb,
            pool: String::new(),
            provider_location: None,
            provider_auth: None,
            extra_specs: BTreeMap::new(),
            metadata: BTreeMap::new(),
        }
    }

    /// The name used on the backend, checked to be exactly `volume-<id>` so it is safe in
    /// paths, LV names and IQNs.
    pub fn backend_name(&self, backend: &str) -> Result<&str, DriverError> {
        checked_name(backend, "volume", self.id, &self.name)
    }

    /// Record what a driver returned, as the volume manager does.
    pub fn apply(&mut self, update: &ModelUpdate) {
        if let Some(loc) = &update.provider_location {
            self.provider_location = Some(loc.clone());
        }
        if let Some(auth) = &update.provider_auth {
            self.provider_auth = Some(auth.clone());
        }
    }
}

/// A snapshot as a driver sees it (WIT `driver-types.snapshot`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRef {
    pub id: uuid::Uuid,
    /// `snapshot-<id>`.
    pub name: String,
    /// The source volume.
    pub volume: VolumeRef,
    pub size_gb: u64,
    pub provider_location: Option<String>,
}

impl SnapshotRef {
    /// A snapshot of `volume` named `snapshot-<id>`, sized like the volume.
    pub fn new(id: uuid::Uuid, volume: VolumeRef) -> Self {
        SnapshotRef {
            id,
            name: format!("snapshot-{id}"),
            size_gb: volume.size_gb,
            volume,
            provider_location: None,
        }
    }

    /// The backend name, checked to be exactly `snapshot-<id>`.
    pub fn backend_name(&self, backend: &str) -> Result<&str, DriverError> {
        checked_name(backend, "snapshot", self.id, &self.name)
    }
}

fn checked_name<'a>(
    backend: &str,
    kind: &str,
    id: uuid::Uuid,
    name: &'a str,
) -> Result<&'a str, DriverError> {
    if name == format!("{kind}-{}", id.as_hyphenated()) {
        Ok(name)
    } else {
        Err(DriverError::Invalid {
            backend: backend.to_string(),
            message: format!(
                "{kind} name `{name}` is not `{kind}-{id}`; only names derived from the {kind}'s \
                 UUID are accepted"
            ),
        })
    }
}

/// Fields the manager records on the volume after an operation; `None` leaves them as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUpdate {
    pub provider_location: Option<String>,
    pub provider_auth: Option<String>,
}

/// The attaching host: Cinder's connector dict (keys Kiln does not use are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connector {
    pub host: String,
    #[serde(default)]
    pub initiator: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub multipath: bool,
}

/// How a host reaches a volume: Cinder's `connection_info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    pub driver_volume_type: String,
    pub data: serde_json::Value,
}

/// The operations a volume driver offers the manager (the WIT `driver` interface).
#[async_trait]
pub trait VolumeDriver: Send + Sync {
    /// Prepare the backend (create directories, check tools); run by `init_host`.
    async fn do_setup(&self) -> Result<(), DriverError>;
    /// Current capacity and capabilities.
    async fn get_volume_stats(&self) -> Result<BackendStats, DriverError>;
    /// Create an empty volume of `v.size_gb`.
    async fn create_volume(&self, v: &VolumeRef) -> Result<ModelUpdate, DriverError>;
    /// Create `v` with the content of `s` (grown to `v.size_gb` when larger).
    async fn create_volume_from_snapshot(
        &self,
        v: &VolumeRef,
        s: &SnapshotRef,
    ) -> Result<ModelUpdate, DriverError>;
    /// Create `v` as a copy of `src`.
    async fn create_cloned_volume(
        &self,
        v: &VolumeRef,
        src: &VolumeRef,
    ) -> Result<ModelUpdate, DriverError>;
    /// Delete the volume; one already gone is success.
    async fn delete_volume(&self, v: &VolumeRef) -> Result<(), DriverError>;
    /// Take a point-in-time snapshot of `s.volume`.
    async fn create_snapshot(&self, s: &SnapshotRef) -> Result<ModelUpdate, DriverError>;
    /// Delete the snapshot; one already gone is success.
    async fn delete_snapshot(&self, s: &SnapshotRef) -> Result<(), DriverError>;
    /// Grow the volume to `new_size_gb`.
    async fn extend_volume(&self, v: &VolumeRef, new_size_gb: u64) -> Result<(), DriverError>;
    /// Export the volume for attachment.
    async fn create_export(&self, v: &VolumeRef, c: &Connector)
        -> Result<ModelUpdate, DriverError>;
    /// Re-create a missing export (after a restart).
    async fn ensure_export(&self, v: &VolumeRef) -> Result<(), DriverError>;
    /// Remove the volume's export; a missing export is success.
    async fn remove_export(&self, v: &VolumeRef) -> Result<(), DriverError>;
    /// How `c` reaches the exported volume.
    async fn initialize_connection(
        &self,
        v: &VolumeRef,
        c: &Connector,
    ) -> Result<ConnectionInfo, DriverError>;
    /// `c` no longer uses the volume.
    async fn terminate_connection(&self, v: &VolumeRef, c: &Connector) -> Result<(), DriverError>;
    /// The driver can extend a volume that is attached.
    fn supports_online_extend(&self) -> bool {
        false
    }
    /// A path on this host where the volume's bytes can be read and written (a file or a
    /// block device): what a host-side copy needs, e.g. for a migration. Drivers whose volumes
    /// this host cannot open say why with `NotSupported`.
    async fn local_path(&self, v: &VolumeRef) -> Result<std::path::PathBuf, DriverError> {
        v.backend_name("")?;
        Err(DriverError::NotSupported {
            backend: String::new(),
            what: "opening a volume on this host (the driver exposes no local path)".into(),
        })
    }
    /// Put the content of snapshot `s` back into its volume `v` (same size). By default
    /// [`generic_revert`], Cinder's: a temporary volume made from the snapshot, copied over
    /// `v` on this host (both through [`VolumeDriver::local_path`]), then deleted — so a
    /// driver without local paths says `NotSupported`. A failure part-way through the copy
    /// leaves `v` partly reverted; drivers that can do better override this.
    async fn revert_to_snapshot(&self, v: &VolumeRef, s: &SnapshotRef) -> Result<(), DriverError> {
        generic_revert(self, v, s).await
    }
}

/// Cinder's generic revert (`_revert_to_snapshot_generic`), the default of
/// [`VolumeDriver::revert_to_snapshot`] and the fallback of drivers that revert natively only in
/// some configurations: a temporary volume made from the snapshot, copied over `v` on this host
/// through both local paths, then deleted.
pub async fn generic_revert<D: VolumeDriver + ?Sized>(
    d: &D,
    v: &VolumeRef,
    s: &SnapshotRef,
) -> Result<(), DriverError> {
    let to = d.local_path(v).await?; // before any work: a driver may have none
    let mut temp = VolumeRef::new(uuid::Uuid::new_v4(), s.size_gb);
    temp.pool = v.pool.clone();
    let update = d.create_volume_from_snapshot(&temp, s).await?;
    temp.apply(&update);
    let copied = async {
        let from = d.local_path(&temp).await?;
        let bytes = s.size_gb << 30;
        let what = format!("copying {} over {}", from.display(), to.display());
        tokio::task::spawn_blocking(move || copy::copy_device(&from, &to, bytes))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| DriverError::Backend {
                backend: String::new(),
                message: format!("reverting to snapshot {}: {what} failed: {e}", s.id),
            })
    }
    .await;
    if let Err(e) = d.delete_volume(&temp).await {
        tracing::warn!(volume = %temp.id, error = %e, "temporary revert volume not deleted");
    }
    copied
}

/// Build the driver configured for `backend`, with its target helper, running commands for
/// real.
pub fn build(
    config: &Config,
    backend: &str,
    settings: &BackendConfig,
) -> Result<Box<dyn VolumeDriver>, DriverError> {
    build_with_runner(
        config,
        backend,
        settings,
        Arc::new(exec::TokioRunner::default()),
    )
}

/// [`build`] with an injected command runner (tests record argv with [`exec::FakeRunner`]).
pub fn build_with_runner(
    config: &Config,
    backend: &str,
    settings: &BackendConfig,
    runner: Arc<dyn exec::CommandRunner>,
) -> Result<Box<dyn VolumeDriver>, DriverError> {
    let target = crate::targets::build(config, backend, settings, runner.clone())?;
    match settings.driver.as_str() {
        "file" => Ok(Box::new(
            file::FileDriver::new(config, backend, settings).with_target(target),
        )),
        "lvm" => Ok(Box::new(lvm::LvmDriver::new(
            &config.host,
            backend,
            settings,
            runner,
            target,
        ))),
        "wasm" => Ok(Box::new(crate::plugins::driver::WasmDriver::from_config(
            config, backend, settings, target,
        )?)),
        other => Err(DriverError::UnknownDriver {
            backend: backend.to_string(),
            driver: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_serialises_like_cinder() {
        assert_eq!(
            serde_json::to_value(Capacity::Gb(1.5)).unwrap(),
            serde_json::json!(1.5)
        );
        assert_eq!(
            serde_json::to_value(Capacity::Special(SpecialCapacity::Infinite)).unwrap(),
            serde_json::json!("infinite")
        );
        let c: Capacity = serde_json::from_value(serde_json::json!("unknown")).unwrap();
        assert_eq!(c, Capacity::Special(SpecialCapacity::Unknown));
    }

    #[test]
    fn names_must_derive_from_the_uuid() {
        let id = uuid::Uuid::new_v4();
        let mut v = VolumeRef::new(id, 1);
        assert_eq!(v.backend_name("b").unwrap(), format!("volume-{id}"));
        for bad in [
            "volume-../../etc".to_string(),
            format!("volume-{}", id.simple()),
            format!("volume-{id} "),
            format!("snapshot-{id}"),
            format!("volume-{}", uuid::Uuid::new_v4()),
        ] {
            v.name = bad.clone();
            let err = v.backend_name("b").unwrap_err();
            assert!(matches!(err, DriverError::Invalid { .. }), "{bad}: {err}");
        }
        let s = SnapshotRef::new(uuid::Uuid::new_v4(), VolumeRef::new(id, 1));
        assert!(s.backend_name("b").is_ok());
    }

    #[test]
    fn connector_ignores_extra_cinder_keys() {
        let c: Connector = serde_json::from_value(serde_json::json!({
            "host": "compute1", "initiator": "iqn.1993-08.org.debian:01:abc",
            "ip": "10.0.0.5", "multipath": true, "platform": "x86_64", "os_type": "linux2",
            "do_local_attach": false
        }))
        .unwrap();
        assert_eq!(c.host, "compute1");
        assert!(c.multipath);
        let minimal: Connector = serde_json::from_value(serde_json::json!({"host": "h"})).unwrap();
        assert_eq!(minimal.initiator, None);
        assert!(!minimal.multipath);
    }

    #[test]
    fn errors_say_what_failed() {
        let e = DriverError::Command {
            backend: "lvm".into(),
            argv: "lvcreate -n volume-x vg -L 1g".into(),
            status: Some(5),
            stderr: "Volume group \"vg\" not found".into(),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("lvcreate -n volume-x") && msg.contains("exit status 5"),
            "{msg}"
        );
        assert!(!e.is_not_found());
        assert!(DriverError::NotFound {
            backend: "b".into(),
            what: "x".into()
        }
        .is_not_found());
    }
}
