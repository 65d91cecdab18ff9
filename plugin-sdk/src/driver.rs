//! Volume drivers for the `volume-driver` world: plain Rust versions of the WIT
//! `driver-types`, the [`VolumeDriver`] trait a plugin implements, and the safe wrappers of
//! the host imports a driver gets: [`exec::run`] (commands, granted by the plugin's manifest)
//! and [`target`] (exports through the host's iSCSI target). Outside a component (no `driver`
//! feature) the wrappers answer that they are unavailable, so driver logic still builds and
//! unit-tests natively.

use std::collections::BTreeMap;

use crate::{CapValue, Capacity};

/// A volume as the driver sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Volume {
    /// The volume's UUID (validated by the host).
    pub id: String,
    /// `volume-<id>` (validated by the host).
    pub name: String,
    pub size_gb: u64,
    pub pool: String,
    pub provider_location: Option<String>,
    pub provider_auth: Option<String>,
    pub extra_specs: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
}

/// A snapshot as the driver sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub id: String,
    /// `snapshot-<id>`.
    pub name: String,
    /// The source volume.
    pub volume: Volume,
    pub size_gb: u64,
    pub provider_location: Option<String>,
}

/// Fields the host records on the volume after an operation; `None` leaves them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelUpdate {
    pub provider_location: Option<String>,
    pub provider_auth: Option<String>,
}

/// The attaching host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Connector {
    pub host: String,
    pub initiator: Option<String>,
    pub ip: Option<String>,
    pub multipath: bool,
}

/// How an attaching host reaches the volume; `data_json` is a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub driver_volume_type: String,
    pub data_json: String,
}

/// One pool of the driver's stats.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStats {
    pub name: String,
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
    pub capabilities: BTreeMap<String, CapValue>,
}

/// The driver's stats.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendStats {
    pub volume_backend_name: String,
    pub vendor_name: String,
    pub driver_version: String,
    pub storage_protocol: String,
    pub pools: Vec<PoolStats>,
}

/// Why an operation failed (the WIT `driver-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverError {
    NotSupported(String),
    Invalid(String),
    /// Deletes treat this as success.
    NotFound(String),
    Backend(String),
    /// A command was denied by the exec manifest.
    ExecDenied(String),
}

impl std::fmt::Display for DriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DriverError::NotSupported(m) => write!(f, "{m} is not supported"),
            DriverError::Invalid(m) => write!(f, "invalid request: {m}"),
            DriverError::NotFound(m) => write!(f, "{m} not found"),
            DriverError::Backend(m) => f.write_str(m),
            DriverError::ExecDenied(m) => write!(f, "command denied: {m}"),
        }
    }
}

impl From<exec::ExecError> for DriverError {
    fn from(e: exec::ExecError) -> Self {
        match e {
            exec::ExecError::Denied(m) => DriverError::ExecDenied(m),
            exec::ExecError::SpawnFailed(m) => DriverError::Backend(format!("cannot start: {m}")),
            exec::ExecError::Timeout(ms) => {
                DriverError::Backend(format!("command killed after {ms} ms"))
            }
        }
    }
}

/// A volume driver. The host creates a fresh component instance per call, so [`Self::new`]
/// runs once per operation: read settings there, keep no state you cannot rebuild from the
/// backend.
pub trait VolumeDriver: Sized + 'static {
    /// Build the driver for one call (read settings with [`crate::config::get`]).
    fn new() -> Result<Self, DriverError>;
    /// Check tools and backend access.
    fn do_setup(&self) -> Result<(), DriverError>;
    /// Capacity and capabilities of each pool.
    fn get_volume_stats(&self) -> Result<BackendStats, DriverError>;
    /// Create an empty volume.
    fn create_volume(&self, volume: &Volume) -> Result<ModelUpdate, DriverError>;
    /// Delete the volume; one already gone is success.
    fn delete_volume(&self, volume: &Volume) -> Result<(), DriverError>;
    /// Grow the volume to `new_size_gb`.
    fn extend_volume(&self, volume: &Volume, new_size_gb: u64) -> Result<(), DriverError>;

    /// Create `volume` with the content of `snapshot`.
    fn create_volume_from_snapshot(
        &self,
        _volume: &Volume,
        _snapshot: &Snapshot,
    ) -> Result<ModelUpdate, DriverError> {
        Err(DriverError::NotSupported("volumes from snapshots".into()))
    }
    /// Create `volume` as a copy of `source`.
    fn create_cloned_volume(
        &self,
        _volume: &Volume,
        _source: &Volume,
    ) -> Result<ModelUpdate, DriverError> {
        Err(DriverError::NotSupported("cloning".into()))
    }
    /// Take a snapshot of `snapshot.volume`.
    fn create_snapshot(&self, _snapshot: &Snapshot) -> Result<ModelUpdate, DriverError> {
        Err(DriverError::NotSupported("snapshots".into()))
    }
    /// Delete the snapshot; one already gone is success.
    fn delete_snapshot(&self, _snapshot: &Snapshot) -> Result<(), DriverError> {
        Err(DriverError::NotSupported("snapshots".into()))
    }
    /// Export the volume for attachment.
    fn create_export(
        &self,
        _volume: &Volume,
        _connector: &Connector,
    ) -> Result<ModelUpdate, DriverError> {
        Err(DriverError::NotSupported("exports".into()))
    }
    /// Re-create a missing export after a restart.
    fn ensure_export(&self, _volume: &Volume) -> Result<(), DriverError> {
        Ok(())
    }
    /// Remove the volume's export.
    fn remove_export(&self, _volume: &Volume) -> Result<(), DriverError> {
        Ok(())
    }
    /// How `connector` reaches the exported volume.
    fn initialize_connection(
        &self,
        _volume: &Volume,
        _connector: &Connector,
    ) -> Result<ConnectionInfo, DriverError> {
        Err(DriverError::NotSupported("attaching".into()))
    }
    /// `connector` no longer uses the volume.
    fn terminate_connection(
        &self,
        _volume: &Volume,
        _connector: &Connector,
    ) -> Result<(), DriverError> {
        Ok(())
    }
}

/// Running commands on the volume host, as the plugin's manifest grants them.
pub mod exec {
    /// A command: an absolute program path and its arguments (no shell, no PATH lookup).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct Command {
        pub program: String,
        pub args: Vec<String>,
        pub env: Vec<(String, String)>,
        pub cwd: Option<String>,
        pub stdin: Option<Vec<u8>>,
        pub timeout_ms: Option<u32>,
    }

    impl Command {
        pub fn new(program: &str) -> Self {
            Command {
                program: program.into(),
                ..Default::default()
            }
        }
        pub fn arg(mut self, a: impl Into<String>) -> Self {
            self.args.push(a.into());
            self
        }
        pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
            self.args.extend(args.into_iter().map(Into::into));
            self
        }
        pub fn env(mut self, k: &str, v: &str) -> Self {
            self.env.push((k.into(), v.into()));
            self
        }
        /// The command as one line, for messages.
        pub fn display(&self) -> String {
            std::iter::once(self.program.as_str())
                .chain(self.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        }
    }

    /// What a finished command produced.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct Output {
        /// `None` when killed by a signal.
        pub status: Option<i32>,
        pub stdout: Vec<u8>,
        pub stderr: Vec<u8>,
        pub truncated: bool,
    }

    impl Output {
        pub fn success(&self) -> bool {
            self.status == Some(0)
        }
        pub fn stdout_text(&self) -> String {
            String::from_utf8_lossy(&self.stdout).into_owned()
        }
        pub fn stderr_text(&self) -> String {
            String::from_utf8_lossy(&self.stderr).trim().to_string()
        }
    }

    /// Why a command did not run to completion.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ExecError {
        /// The manifest does not grant it; nothing ran.
        Denied(String),
        SpawnFailed(String),
        Timeout(u32),
    }

    /// Run `cmd` and wait for it; a non-zero exit is an `Ok` with that status.
    pub fn run(cmd: &Command) -> Result<Output, ExecError> {
        #[cfg(feature = "driver")]
        return crate::driver_bindings::exec_run(cmd);
        #[cfg(not(feature = "driver"))]
        {
            let _ = cmd;
            Err(ExecError::Denied(
                "exec is only available inside a volume-driver component".into(),
            ))
        }
    }

    /// Run `cmd`; a non-zero exit becomes [`super::DriverError::Backend`] naming the command
    /// and its stderr.
    pub fn run_checked(cmd: &Command) -> Result<Output, super::DriverError> {
        let out = run(cmd)?;
        if out.success() {
            Ok(out)
        } else {
            Err(super::DriverError::Backend(format!(
                "`{}` failed ({}): {}",
                cmd.display(),
                match out.status {
                    Some(s) => format!("exit status {s}"),
                    None => "killed by a signal".into(),
                },
                out.stderr_text()
            )))
        }
    }
}

/// Exporting through the volume host's iSCSI target (tgtadm or lioadm, as configured).
pub mod target {
    use super::{ConnectionInfo, Connector, DriverError, ModelUpdate, Volume};

    #[cfg(not(feature = "driver"))]
    fn unavailable<T>() -> Result<T, DriverError> {
        Err(DriverError::NotSupported(
            "the target interface outside a volume-driver component".into(),
        ))
    }

    /// Export `backing_path` (under a `[target]` root of the manifest) as the volume's LUN.
    pub fn create_export(volume: &Volume, backing_path: &str) -> Result<ModelUpdate, DriverError> {
        #[cfg(feature = "driver")]
        return crate::driver_bindings::target_create_export(volume, backing_path);
        #[cfg(not(feature = "driver"))]
        {
            let _ = (volume, backing_path);
            unavailable()
        }
    }

    /// Re-create the export if it is missing.
    pub fn ensure_export(volume: &Volume, backing_path: &str) -> Result<(), DriverError> {
        #[cfg(feature = "driver")]
        return crate::driver_bindings::target_ensure_export(volume, backing_path);
        #[cfg(not(feature = "driver"))]
        {
            let _ = (volume, backing_path);
            unavailable()
        }
    }

    /// Remove the export; a missing one is success.
    pub fn remove_export(volume: &Volume) -> Result<(), DriverError> {
        #[cfg(feature = "driver")]
        return crate::driver_bindings::target_remove_export(volume);
        #[cfg(not(feature = "driver"))]
        {
            let _ = volume;
            unavailable()
        }
    }

    /// The `iscsi` connection info of the exported volume.
    pub fn initialize_connection(
        volume: &Volume,
        connector: &Connector,
    ) -> Result<ConnectionInfo, DriverError> {
        #[cfg(feature = "driver")]
        return crate::driver_bindings::target_initialize_connection(volume, connector);
        #[cfg(not(feature = "driver"))]
        {
            let _ = (volume, connector);
            unavailable()
        }
    }
}
