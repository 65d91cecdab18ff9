//! wit-bindgen bindings of the `volume-driver` world (feature `driver`): conversions between
//! the generated types and the SDK's plain ones, the import wrappers behind [`crate::exec`]
//! and [`crate::target`], and the generic export behind [`crate::export_driver!`].

use std::marker::PhantomData;

wit_bindgen::generate!({
    world: "volume-driver",
    path: "../wit",
    pub_export_macro: true,
    export_macro_name: "export_driver_world",
    default_bindings_module: "kiln_plugin_sdk::driver_bindings",
});

use self::kiln::plugin::driver_types as w;
use self::kiln::plugin::types as t;
use crate::driver::{self as d, exec as e, VolumeDriver};

fn volume_in(v: w::Volume) -> d::Volume {
    d::Volume {
        id: v.id,
        name: v.name,
        size_gb: v.size_gb,
        pool: v.pool,
        provider_location: v.provider_location,
        provider_auth: v.provider_auth,
        extra_specs: v.extra_specs.into_iter().collect(),
        metadata: v.metadata.into_iter().collect(),
    }
}

fn volume_out(v: &d::Volume) -> w::Volume {
    w::Volume {
        id: v.id.clone(),
        name: v.name.clone(),
        size_gb: v.size_gb,
        pool: v.pool.clone(),
        provider_location: v.provider_location.clone(),
        provider_auth: v.provider_auth.clone(),
        extra_specs: v
            .extra_specs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        metadata: v
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

fn snapshot_in(s: w::Snapshot) -> d::Snapshot {
    d::Snapshot {
        id: s.id,
        name: s.name,
        volume: volume_in(s.volume),
        size_gb: s.size_gb,
        provider_location: s.provider_location,
    }
}

fn connector_in(c: w::Connector) -> d::Connector {
    d::Connector {
        host: c.host,
        initiator: c.initiator,
        ip: c.ip,
        multipath: c.multipath,
    }
}

fn connector_out(c: &d::Connector) -> w::Connector {
    w::Connector {
        host: c.host.clone(),
        initiator: c.initiator.clone(),
        ip: c.ip.clone(),
        multipath: c.multipath,
    }
}

fn update_out(u: d::ModelUpdate) -> w::ModelUpdate {
    w::ModelUpdate {
        provider_location: u.provider_location,
        provider_auth: u.provider_auth,
    }
}

fn update_in(u: w::ModelUpdate) -> d::ModelUpdate {
    d::ModelUpdate {
        provider_location: u.provider_location,
        provider_auth: u.provider_auth,
    }
}

fn error_out(e: d::DriverError) -> w::DriverError {
    match e {
        d::DriverError::NotSupported(m) => w::DriverError::NotSupported(m),
        d::DriverError::Invalid(m) => w::DriverError::Invalid(m),
        d::DriverError::NotFound(m) => w::DriverError::NotFound(m),
        d::DriverError::Backend(m) => w::DriverError::Backend(m),
        d::DriverError::ExecDenied(m) => w::DriverError::ExecDenied(m),
    }
}

fn error_in(e: w::DriverError) -> d::DriverError {
    match e {
        w::DriverError::NotSupported(m) => d::DriverError::NotSupported(m),
        w::DriverError::Invalid(m) => d::DriverError::Invalid(m),
        w::DriverError::NotFound(m) => d::DriverError::NotFound(m),
        w::DriverError::Backend(m) => d::DriverError::Backend(m),
        w::DriverError::ExecDenied(m) => d::DriverError::ExecDenied(m),
    }
}

fn capacity_out(c: crate::Capacity) -> t::Capacity {
    match c {
        crate::Capacity::Gb(v) => t::Capacity::Gb(v),
        crate::Capacity::Infinite => t::Capacity::Infinite,
        crate::Capacity::Unknown => t::Capacity::Unknown,
    }
}

fn stats_out(s: d::BackendStats) -> w::BackendStats {
    w::BackendStats {
        volume_backend_name: s.volume_backend_name,
        vendor_name: s.vendor_name,
        driver_version: s.driver_version,
        storage_protocol: s.storage_protocol,
        pools: s
            .pools
            .into_iter()
            .map(|p| w::PoolStats {
                name: p.name,
                total_capacity_gb: capacity_out(p.total_capacity_gb),
                free_capacity_gb: capacity_out(p.free_capacity_gb),
                allocated_capacity_gb: p.allocated_capacity_gb,
                provisioned_capacity_gb: p.provisioned_capacity_gb,
                reserved_percentage: p.reserved_percentage,
                max_over_subscription_ratio: p.max_over_subscription_ratio,
                thin_provisioning_support: p.thin_provisioning_support,
                thick_provisioning_support: p.thick_provisioning_support,
                total_volumes: p.total_volumes,
                multiattach: p.multiattach,
                capabilities: p
                    .capabilities
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            crate::CapValue::Text(s) => t::CapValue::Text(s),
                            crate::CapValue::Number(n) => t::CapValue::Number(n),
                            crate::CapValue::Boolean(b) => t::CapValue::Boolean(b),
                        };
                        (k, v)
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub(crate) fn exec_run(cmd: &e::Command) -> Result<e::Output, e::ExecError> {
    use self::kiln::plugin::exec as x;
    let c = x::Command {
        program: cmd.program.clone(),
        args: cmd.args.clone(),
        env: cmd.env.clone(),
        cwd: cmd.cwd.clone(),
        stdin: cmd.stdin.clone(),
        timeout_ms: cmd.timeout_ms,
    };
    match x::run(&c) {
        Ok(o) => Ok(e::Output {
            status: o.status,
            stdout: o.stdout,
            stderr: o.stderr,
            truncated: o.truncated,
        }),
        Err(x::ExecError::Denied(m)) => Err(e::ExecError::Denied(m)),
        Err(x::ExecError::SpawnFailed(m)) => Err(e::ExecError::SpawnFailed(m)),
        Err(x::ExecError::Timeout(ms)) => Err(e::ExecError::Timeout(ms)),
    }
}

pub(crate) fn target_create_export(
    v: &d::Volume,
    backing: &str,
) -> Result<d::ModelUpdate, d::DriverError> {
    kiln::plugin::target::create_export(&volume_out(v), backing)
        .map(update_in)
        .map_err(error_in)
}

pub(crate) fn target_ensure_export(v: &d::Volume, backing: &str) -> Result<(), d::DriverError> {
    kiln::plugin::target::ensure_export(&volume_out(v), backing).map_err(error_in)
}

pub(crate) fn target_remove_export(v: &d::Volume) -> Result<(), d::DriverError> {
    kiln::plugin::target::remove_export(&volume_out(v)).map_err(error_in)
}

pub(crate) fn target_initialize_connection(
    v: &d::Volume,
    c: &d::Connector,
) -> Result<d::ConnectionInfo, d::DriverError> {
    kiln::plugin::target::initialize_connection(&volume_out(v), &connector_out(c))
        .map(|i| d::ConnectionInfo {
            driver_volume_type: i.driver_volume_type,
            data_json: i.data_json,
        })
        .map_err(error_in)
}

/// The export of a [`VolumeDriver`] `T`: builds `T` per call and converts at the boundary.
pub struct DriverExport<T>(PhantomData<T>);

fn with<T: VolumeDriver, R, O>(
    f: impl FnOnce(&T) -> Result<R, d::DriverError>,
    out: impl FnOnce(R) -> O,
) -> Result<O, w::DriverError> {
    let driver = T::new().map_err(error_out)?;
    f(&driver).map(out).map_err(error_out)
}

impl<T: VolumeDriver> exports::kiln::plugin::driver::Guest for DriverExport<T> {
    fn do_setup() -> Result<(), w::DriverError> {
        with::<T, _, _>(|d| d.do_setup(), |r| r)
    }
    fn get_volume_stats() -> Result<w::BackendStats, w::DriverError> {
        with::<T, _, _>(|d| d.get_volume_stats(), stats_out)
    }
    fn create_volume(volume: w::Volume) -> Result<w::ModelUpdate, w::DriverError> {
        let v = volume_in(volume);
        with::<T, _, _>(|d| d.create_volume(&v), update_out)
    }
    fn create_volume_from_snapshot(
        volume: w::Volume,
        snapshot: w::Snapshot,
    ) -> Result<w::ModelUpdate, w::DriverError> {
        let (v, s) = (volume_in(volume), snapshot_in(snapshot));
        with::<T, _, _>(|d| d.create_volume_from_snapshot(&v, &s), update_out)
    }
    fn create_cloned_volume(
        volume: w::Volume,
        source: w::Volume,
    ) -> Result<w::ModelUpdate, w::DriverError> {
        let (v, s) = (volume_in(volume), volume_in(source));
        with::<T, _, _>(|d| d.create_cloned_volume(&v, &s), update_out)
    }
    fn delete_volume(volume: w::Volume) -> Result<(), w::DriverError> {
        let v = volume_in(volume);
        with::<T, _, _>(|d| d.delete_volume(&v), |r| r)
    }
    fn create_snapshot(snapshot: w::Snapshot) -> Result<w::ModelUpdate, w::DriverError> {
        let s = snapshot_in(snapshot);
        with::<T, _, _>(|d| d.create_snapshot(&s), update_out)
    }
    fn delete_snapshot(snapshot: w::Snapshot) -> Result<(), w::DriverError> {
        let s = snapshot_in(snapshot);
        with::<T, _, _>(|d| d.delete_snapshot(&s), |r| r)
    }
    fn extend_volume(volume: w::Volume, new_size_gb: u64) -> Result<(), w::DriverError> {
        let v = volume_in(volume);
        with::<T, _, _>(|d| d.extend_volume(&v, new_size_gb), |r| r)
    }
    fn create_export(
        volume: w::Volume,
        connector: w::Connector,
    ) -> Result<w::ModelUpdate, w::DriverError> {
        let (v, c) = (volume_in(volume), connector_in(connector));
        with::<T, _, _>(|d| d.create_export(&v, &c), update_out)
    }
    fn ensure_export(volume: w::Volume) -> Result<(), w::DriverError> {
        let v = volume_in(volume);
        with::<T, _, _>(|d| d.ensure_export(&v), |r| r)
    }
    fn remove_export(volume: w::Volume) -> Result<(), w::DriverError> {
        let v = volume_in(volume);
        with::<T, _, _>(|d| d.remove_export(&v), |r| r)
    }
    fn initialize_connection(
        volume: w::Volume,
        connector: w::Connector,
    ) -> Result<w::ConnectionInfo, w::DriverError> {
        let (v, c) = (volume_in(volume), connector_in(connector));
        with::<T, _, _>(
            |d| d.initialize_connection(&v, &c),
            |i| w::ConnectionInfo {
                driver_volume_type: i.driver_volume_type,
                data_json: i.data_json,
            },
        )
    }
    fn terminate_connection(
        volume: w::Volume,
        connector: w::Connector,
    ) -> Result<(), w::DriverError> {
        let (v, c) = (volume_in(volume), connector_in(connector));
        with::<T, _, _>(|d| d.terminate_connection(&v, &c), |r| r)
    }
}

/// Export `$ty` (a [`crate::VolumeDriver`]) as this component's volume driver.
#[macro_export]
macro_rules! export_driver {
    ($ty:ty) => {
        type KilnDriverExport = $crate::driver_bindings::DriverExport<$ty>;
        $crate::driver_bindings::export_driver_world!(KilnDriverExport with_types_in $crate::driver_bindings);
    };
}
