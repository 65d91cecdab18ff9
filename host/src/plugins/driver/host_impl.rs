//! Host side of the `volume-driver` world: the wasmtime bindings (sharing `types`, `log` and
//! `config` with the scheduler worlds), the per-call [`DriverState`] with the imports a driver
//! gets — `log`, `config`, `exec` (through the plugin's [`Exec`] authority) and `target`
//! (through the backend's [`TargetHelper`], backing paths checked against the manifest) —
//! and conversions between the generated records and the native driver types. No WASI.
//!
//! Imports are synchronous in the component model as bound here; the wasm call itself runs on
//! a blocking thread, so a host import drives its async work with the runtime [`Handle`].
//! Time spent in imports is not charged to the plugin's deadline ([`DriverState::host_time`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::drivers::{self as native, DriverError as NativeError};
use crate::plugins::bindings::{wit as types_wit, HostState};
use crate::plugins::exec::{Exec, ExecError as NativeExecError, ExecRequest};
use crate::targets::TargetHelper;

wasmtime::component::bindgen!({
    world: "volume-driver",
    path: "../wit",
    with: {
        "kiln:plugin/types": crate::plugins::bindings::filter_world::kiln::plugin::types,
        "kiln:plugin/log": crate::plugins::bindings::filter_world::kiln::plugin::log,
        "kiln:plugin/config": crate::plugins::bindings::filter_world::kiln::plugin::config,
    },
});

pub use self::kiln::plugin::driver_types as wit;
use self::kiln::plugin::{driver_types, exec, target};
use crate::plugins::bindings::filter_world::kiln::plugin::{config, log};

/// The state of one driver call's store.
pub struct DriverState {
    /// Plugin name, settings and memory cap (shared with the scheduler worlds).
    pub base: HostState,
    pub backend: String,
    pub exec: Arc<Exec>,
    pub target: Option<Arc<dyn TargetHelper>>,
    pub runtime: Handle,
    /// When the call started, and how much of it was spent in host imports.
    pub started: Instant,
    pub host_time: Duration,
}

impl DriverState {
    /// Run host work on the runtime, keeping its duration off the plugin's clock.
    fn host<F: std::future::Future>(&mut self, f: F) -> F::Output {
        let t = Instant::now();
        let out = self.runtime.block_on(f);
        self.host_time += t.elapsed();
        out
    }

    /// Guest time so far: wall time minus time in host imports.
    pub fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
    }

    fn volume(&self, v: wit::Volume) -> Result<native::VolumeRef, wit::DriverError> {
        volume_from_wit(v).map_err(wit::DriverError::Invalid)
    }

    fn target(&self) -> Result<&Arc<dyn TargetHelper>, wit::DriverError> {
        self.target.as_ref().ok_or_else(|| {
            wit::DriverError::NotSupported(format!(
                "backend {} has no iSCSI target helper (target_helper = \"none\")",
                self.backend
            ))
        })
    }

    /// A backing path the plugin may export: under one of the manifest's target roots.
    fn backing(&self, v: &native::VolumeRef, path: &str) -> Result<(), wit::DriverError> {
        self.exec
            .manifest()
            .check_target_path(path)
            .map_err(|reason| {
                self.exec.audit_denied(
                    vec!["target:export".into(), v.name.clone(), path.into()],
                    &reason,
                );
                wit::DriverError::ExecDenied(reason)
            })?;
        Ok(())
    }
}

impl types_wit::Host for DriverState {}
impl driver_types::Host for DriverState {}

impl log::Host for DriverState {
    fn log(&mut self, level: log::Level, message: String) {
        log::Host::log(&mut self.base, level, message)
    }
}

impl config::Host for DriverState {
    fn get(&mut self, key: String) -> Option<String> {
        config::Host::get(&mut self.base, key)
    }
    fn all(&mut self) -> Vec<(String, String)> {
        config::Host::all(&mut self.base)
    }
}

impl exec::Host for DriverState {
    fn run(&mut self, cmd: exec::Command) -> Result<exec::Output, exec::ExecError> {
        let req = ExecRequest {
            program: cmd.program,
            args: cmd.args,
            env: cmd.env,
            cwd: cmd.cwd,
            stdin: cmd.stdin,
            timeout_ms: cmd.timeout_ms,
        };
        let authority = self.exec.clone();
        match self.host(authority.run(req)) {
            Ok(o) => Ok(exec::Output {
                status: o.status,
                stdout: o.stdout,
                stderr: o.stderr,
                truncated: o.truncated,
            }),
            Err(NativeExecError::Denied(r)) => Err(exec::ExecError::Denied(r)),
            Err(NativeExecError::SpawnFailed(r)) => Err(exec::ExecError::SpawnFailed(r)),
            Err(NativeExecError::Timeout(ms)) => Err(exec::ExecError::Timeout(ms)),
        }
    }
}

impl target::Host for DriverState {
    fn create_export(
        &mut self,
        volume: wit::Volume,
        backing_path: String,
    ) -> Result<wit::ModelUpdate, wit::DriverError> {
        let v = self.volume(volume)?;
        self.backing(&v, &backing_path)?;
        let t = self.target()?.clone();
        let update = self
            .host(t.create_export(&v, Path::new(&backing_path)))
            .map_err(error_to_wit)?;
        Ok(model_update_to_wit(&update))
    }

    fn ensure_export(
        &mut self,
        volume: wit::Volume,
        backing_path: String,
    ) -> Result<(), wit::DriverError> {
        let v = self.volume(volume)?;
        self.backing(&v, &backing_path)?;
        let t = self.target()?.clone();
        self.host(t.ensure_export(&v, Path::new(&backing_path)))
            .map_err(error_to_wit)
    }

    fn remove_export(&mut self, volume: wit::Volume) -> Result<(), wit::DriverError> {
        let v = self.volume(volume)?;
        let t = self.target()?.clone();
        self.host(t.remove_export(&v)).map_err(error_to_wit)
    }

    fn initialize_connection(
        &mut self,
        volume: wit::Volume,
        connector: wit::Connector,
    ) -> Result<wit::ConnectionInfo, wit::DriverError> {
        let v = self.volume(volume)?;
        let t = self.target()?.clone();
        let c = connector_from_wit(connector);
        let info = self
            .host(t.initialize_connection(&v, &c))
            .map_err(error_to_wit)?;
        Ok(wit::ConnectionInfo {
            driver_volume_type: info.driver_volume_type,
            data_json: info.data.to_string(),
        })
    }
}

/// A host error handed back to the plugin through `target`.
fn error_to_wit(e: NativeError) -> wit::DriverError {
    match e {
        NativeError::NotSupported { what, .. } => wit::DriverError::NotSupported(what),
        NativeError::Invalid { message, .. } => wit::DriverError::Invalid(message),
        NativeError::NotFound { what, .. } => wit::DriverError::NotFound(what),
        NativeError::ExecDenied { message, .. } => wit::DriverError::ExecDenied(message),
        other => wit::DriverError::Backend(other.to_string()),
    }
}

/// A plugin's error as the native driver error of `backend`.
pub fn error_from_wit(backend: &str, plugin: &str, e: wit::DriverError) -> NativeError {
    let backend = backend.to_string();
    match e {
        wit::DriverError::NotSupported(what) => NativeError::NotSupported { backend, what },
        wit::DriverError::Invalid(message) => NativeError::Invalid { backend, message },
        wit::DriverError::NotFound(what) => NativeError::NotFound { backend, what },
        wit::DriverError::Backend(message) => NativeError::Backend {
            backend,
            message: format!("plugin {plugin}: {message}"),
        },
        wit::DriverError::ExecDenied(message) => NativeError::ExecDenied {
            backend,
            message: format!("plugin {plugin}: {message}"),
        },
    }
}

fn pairs(m: &BTreeMap<String, String>) -> Vec<(String, String)> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn volume_to_wit(v: &native::VolumeRef) -> wit::Volume {
    wit::Volume {
        id: v.id.hyphenated().to_string(),
        name: v.name.clone(),
        size_gb: v.size_gb,
        pool: v.pool.clone(),
        provider_location: v.provider_location.clone(),
        provider_auth: v.provider_auth.clone(),
        extra_specs: pairs(&v.extra_specs),
        metadata: pairs(&v.metadata),
    }
}

/// A volume record coming back from the plugin (through `target`): its id must be a UUID.
fn volume_from_wit(v: wit::Volume) -> Result<native::VolumeRef, String> {
    let id = uuid::Uuid::parse_str(&v.id).map_err(|e| format!("volume id `{}`: {e}", v.id))?;
    Ok(native::VolumeRef {
        id,
        name: v.name,
        size_gb: v.size_gb,
        pool: v.pool,
        provider_location: v.provider_location,
        provider_auth: v.provider_auth,
        extra_specs: v.extra_specs.into_iter().collect(),
        metadata: v.metadata.into_iter().collect(),
    })
}

pub fn snapshot_to_wit(s: &native::SnapshotRef) -> wit::Snapshot {
    wit::Snapshot {
        id: s.id.hyphenated().to_string(),
        name: s.name.clone(),
        volume: volume_to_wit(&s.volume),
        size_gb: s.size_gb,
        provider_location: s.provider_location.clone(),
    }
}

pub fn connector_to_wit(c: &native::Connector) -> wit::Connector {
    wit::Connector {
        host: c.host.clone(),
        initiator: c.initiator.clone(),
        ip: c.ip.clone(),
        multipath: c.multipath,
    }
}

fn connector_from_wit(c: wit::Connector) -> native::Connector {
    native::Connector {
        host: c.host,
        initiator: c.initiator,
        ip: c.ip,
        multipath: c.multipath,
    }
}

fn model_update_to_wit(u: &native::ModelUpdate) -> wit::ModelUpdate {
    wit::ModelUpdate {
        provider_location: u.provider_location.clone(),
        provider_auth: u.provider_auth.clone(),
    }
}

pub fn model_update_from_wit(u: wit::ModelUpdate) -> native::ModelUpdate {
    native::ModelUpdate {
        provider_location: u.provider_location,
        provider_auth: u.provider_auth,
    }
}

pub fn connection_info_from_wit(
    backend: &str,
    plugin: &str,
    c: wit::ConnectionInfo,
) -> Result<native::ConnectionInfo, NativeError> {
    let data = serde_json::from_str(&c.data_json).map_err(|e| NativeError::Backend {
        backend: backend.to_string(),
        message: format!("plugin {plugin}: connection info data is not JSON: {e}"),
    })?;
    Ok(native::ConnectionInfo {
        driver_volume_type: c.driver_volume_type,
        data,
    })
}

fn capacity(c: types_wit::Capacity) -> native::Capacity {
    match c {
        types_wit::Capacity::Gb(v) => native::Capacity::Gb(v),
        types_wit::Capacity::Infinite => {
            native::Capacity::Special(native::SpecialCapacity::Infinite)
        }
        types_wit::Capacity::Unknown => native::Capacity::Special(native::SpecialCapacity::Unknown),
    }
}

pub fn stats_from_wit(s: wit::BackendStats) -> native::BackendStats {
    native::BackendStats {
        volume_backend_name: s.volume_backend_name,
        vendor_name: s.vendor_name,
        driver_version: s.driver_version,
        storage_protocol: s.storage_protocol,
        pools: s
            .pools
            .into_iter()
            .map(|p| native::PoolStats {
                pool_name: p.name,
                total_capacity_gb: capacity(p.total_capacity_gb),
                free_capacity_gb: capacity(p.free_capacity_gb),
                allocated_capacity_gb: p.allocated_capacity_gb,
                provisioned_capacity_gb: p.provisioned_capacity_gb,
                reserved_percentage: p.reserved_percentage,
                max_over_subscription_ratio: p.max_over_subscription_ratio,
                thin_provisioning_support: p.thin_provisioning_support,
                thick_provisioning_support: p.thick_provisioning_support,
                total_volumes: p.total_volumes,
                multiattach: p.multiattach,
                qos_support: false,
                extra: p
                    .capabilities
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            types_wit::CapValue::Text(s) => serde_json::Value::String(s),
                            types_wit::CapValue::Number(n) => serde_json::json!(n),
                            types_wit::CapValue::Boolean(b) => serde_json::Value::Bool(b),
                        };
                        (k, v)
                    })
                    .collect(),
            })
            .collect(),
    }
}
