//! An example third-party volume driver written with the Kiln plugin SDK: each volume is a raw
//! image file `<root>/volume-<id>` (snapshots `<root>/snapshot-<id>`), managed only through
//! `/usr/bin/qemu-img` (plus `rm` to delete and `ls` to enumerate for stats) via the host's
//! deny-by-default `exec`, and exported through the host's iSCSI `target` (raw files are what
//! tgt exports directly). The commands it may run are exactly those granted by
//! `qemu_img_driver.toml` beside the component.
//!
//! Settings: `root` (required: the existing directory of the images), `capacity_gb` (reported
//! capacity, default 100), `pool` (pool name, default `qemu-img`), `volume_backend_name`
//! (default `qemu_img`).

use kiln_plugin_sdk::exec::{self, Command};
use kiln_plugin_sdk::{
    config, target, BackendStats, Capacity, ConnectionInfo, Connector, DriverError, ModelUpdate,
    PoolStats, Snapshot, Volume, VolumeDriver,
};

const QEMU_IMG: &str = "/usr/bin/qemu-img";
const RM: &str = "/usr/bin/rm";
const LS: &str = "/usr/bin/ls";
const GIB: u64 = 1 << 30;
/// `driver_version` in the stats: the crate's version, unless a build stamps its own
/// (`KILN_DRIVER_VERSION`, set by `scripts/build-plugins --driver-version`), so two builds
/// of the driver can be told apart — e.g. before and after a driver hot swap.
const DRIVER_VERSION: &str = match option_env!("KILN_DRIVER_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

struct QemuImgDriver {
    root: String,
    capacity_gb: f64,
    pool: String,
    backend_name: String,
}

/// A volume or snapshot name the host validated (`volume-<uuid>`); checked again so a path is
/// never built from anything else.
fn safe_name(name: &str) -> Result<&str, DriverError> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(name)
    } else {
        Err(DriverError::Invalid(format!("unsafe name `{name}`")))
    }
}

impl QemuImgDriver {
    fn path(&self, name: &str) -> Result<String, DriverError> {
        Ok(format!("{}/{}", self.root, safe_name(name)?))
    }

    /// The virtual size in bytes of the image at `path`, or `None` when there is none.
    fn virtual_size(&self, path: &str) -> Result<Option<u64>, DriverError> {
        let cmd = Command::new(QEMU_IMG).args(["info", "--output=json", "-f", "raw", path]);
        let out = exec::run(&cmd)?;
        if !out.success() {
            let err = out.stderr_text();
            if err.contains("No such file") {
                return Ok(None);
            }
            return Err(DriverError::Backend(format!(
                "`{}` failed: {err}",
                cmd.display()
            )));
        }
        let info: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| DriverError::Backend(format!("qemu-img info of {path}: not JSON: {e}")))?;
        info.get("virtual-size")
            .and_then(serde_json::Value::as_u64)
            .map(Some)
            .ok_or_else(|| {
                DriverError::Backend(format!("qemu-img info of {path}: no virtual-size"))
            })
    }

    fn create(&self, path: &str, size_gb: u64) -> Result<(), DriverError> {
        exec::run_checked(&Command::new(QEMU_IMG).args([
            "create",
            "-q",
            "-f",
            "raw",
            path,
            &format!("{size_gb}G"),
        ]))?;
        Ok(())
    }

    fn copy(&self, src: &str, dst: &str) -> Result<(), DriverError> {
        if self.virtual_size(src)?.is_none() {
            return Err(DriverError::NotFound(format!("source image {src}")));
        }
        exec::run_checked(
            &Command::new(QEMU_IMG).args(["convert", "-f", "raw", "-O", "raw", src, dst]),
        )?;
        Ok(())
    }

    fn resize(&self, path: &str, size_gb: u64) -> Result<(), DriverError> {
        exec::run_checked(&Command::new(QEMU_IMG).args([
            "resize",
            "-q",
            "-f",
            "raw",
            path,
            &format!("{size_gb}G"),
        ]))?;
        Ok(())
    }

    /// Copy `src` to the new volume `v`, grown to `v.size_gb` when that is larger.
    fn copy_to_volume(
        &self,
        src: &str,
        src_gb: u64,
        v: &Volume,
    ) -> Result<ModelUpdate, DriverError> {
        if v.size_gb < src_gb {
            return Err(DriverError::Invalid(format!(
                "volume of {} GiB cannot hold a {src_gb} GiB source",
                v.size_gb
            )));
        }
        let dst = self.path(&v.name)?;
        self.copy(src, &dst)?;
        if v.size_gb > src_gb {
            self.resize(&dst, v.size_gb)?;
        }
        Ok(ModelUpdate::default())
    }

    fn remove(&self, path: &str) -> Result<(), DriverError> {
        exec::run_checked(&Command::new(RM).args(["-f", "--", path]))?;
        Ok(())
    }
}

impl VolumeDriver for QemuImgDriver {
    fn new() -> Result<Self, DriverError> {
        let root = config::get("root").ok_or_else(|| {
            DriverError::Invalid("setting `root` (the image directory) is not set".into())
        })?;
        let root = root.trim_end_matches('/').to_string();
        if !root.starts_with('/') {
            return Err(DriverError::Invalid(format!(
                "setting `root` must be an absolute path, not `{root}`"
            )));
        }
        let capacity_gb = match config::get("capacity_gb") {
            None => 100.0,
            Some(s) => s
                .parse::<f64>()
                .ok()
                .filter(|c| c.is_finite() && *c > 0.0)
                .ok_or_else(|| {
                    DriverError::Invalid(format!("capacity_gb `{s}` is not a positive number"))
                })?,
        };
        Ok(QemuImgDriver {
            root,
            capacity_gb,
            pool: config::get("pool").unwrap_or_else(|| "qemu-img".into()),
            backend_name: config::get("volume_backend_name").unwrap_or_else(|| "qemu_img".into()),
        })
    }

    fn do_setup(&self) -> Result<(), DriverError> {
        let out = exec::run(&Command::new(LS).args(["-1", "--", &self.root]))?;
        if !out.success() {
            return Err(DriverError::Backend(format!(
                "image directory {} is not readable ({}); create it",
                self.root,
                out.stderr_text()
            )));
        }
        kiln_plugin_sdk::log::info(&format!("qemu-img driver serving {}", self.root));
        Ok(())
    }

    fn get_volume_stats(&self) -> Result<BackendStats, DriverError> {
        let listing = exec::run_checked(&Command::new(LS).args(["-1", "--", &self.root]))?;
        let mut allocated = 0u64;
        let mut count = 0u64;
        for name in listing.stdout_text().lines() {
            if !name.starts_with("volume-") || safe_name(name).is_err() {
                continue;
            }
            // A volume deleted between the listing and its info is simply not counted.
            if let Some(size) = self.virtual_size(&self.path(name)?)? {
                allocated += size;
                count += 1;
            }
        }
        let allocated_gb = allocated as f64 / GIB as f64;
        Ok(BackendStats {
            volume_backend_name: self.backend_name.clone(),
            vendor_name: "Kiln example".into(),
            driver_version: DRIVER_VERSION.into(),
            storage_protocol: "iSCSI".into(),
            pools: vec![PoolStats {
                name: self.pool.clone(),
                total_capacity_gb: Capacity::Gb(self.capacity_gb),
                free_capacity_gb: Capacity::Gb((self.capacity_gb - allocated_gb).max(0.0)),
                allocated_capacity_gb: allocated_gb,
                provisioned_capacity_gb: allocated_gb,
                reserved_percentage: 0,
                max_over_subscription_ratio: 1.0,
                thin_provisioning_support: false,
                thick_provisioning_support: true,
                total_volumes: count,
                multiattach: false,
                capabilities: Default::default(),
            }],
        })
    }

    fn create_volume(&self, v: &Volume) -> Result<ModelUpdate, DriverError> {
        let path = self.path(&v.name)?;
        // Redelivered create: an image of the right size is already there.
        match self.virtual_size(&path)? {
            Some(size) if size == v.size_gb * GIB => {}
            Some(size) => {
                return Err(DriverError::Backend(format!(
                    "{path} exists with {size} bytes, not {} GiB",
                    v.size_gb
                )))
            }
            None => self.create(&path, v.size_gb)?,
        }
        Ok(ModelUpdate::default())
    }

    fn create_volume_from_snapshot(
        &self,
        v: &Volume,
        s: &Snapshot,
    ) -> Result<ModelUpdate, DriverError> {
        self.copy_to_volume(&self.path(&s.name)?, s.size_gb, v)
    }

    fn create_cloned_volume(&self, v: &Volume, src: &Volume) -> Result<ModelUpdate, DriverError> {
        self.copy_to_volume(&self.path(&src.name)?, src.size_gb, v)
    }

    fn delete_volume(&self, v: &Volume) -> Result<(), DriverError> {
        self.remove(&self.path(&v.name)?)
    }

    fn create_snapshot(&self, s: &Snapshot) -> Result<ModelUpdate, DriverError> {
        self.copy(&self.path(&s.volume.name)?, &self.path(&s.name)?)?;
        Ok(ModelUpdate::default())
    }

    fn delete_snapshot(&self, s: &Snapshot) -> Result<(), DriverError> {
        self.remove(&self.path(&s.name)?)
    }

    fn extend_volume(&self, v: &Volume, new_size_gb: u64) -> Result<(), DriverError> {
        if new_size_gb < v.size_gb {
            return Err(DriverError::Invalid(format!(
                "cannot shrink {} from {} to {new_size_gb} GiB",
                v.name, v.size_gb
            )));
        }
        let path = self.path(&v.name)?;
        if self.virtual_size(&path)?.is_none() {
            return Err(DriverError::NotFound(format!("volume image {path}")));
        }
        self.resize(&path, new_size_gb)
    }

    fn create_export(&self, v: &Volume, _c: &Connector) -> Result<ModelUpdate, DriverError> {
        target::create_export(v, &self.path(&v.name)?)
    }

    fn ensure_export(&self, v: &Volume) -> Result<(), DriverError> {
        target::ensure_export(v, &self.path(&v.name)?)
    }

    fn remove_export(&self, v: &Volume) -> Result<(), DriverError> {
        target::remove_export(v)
    }

    fn initialize_connection(
        &self,
        v: &Volume,
        c: &Connector,
    ) -> Result<ConnectionInfo, DriverError> {
        target::initialize_connection(v, c)
    }
}

kiln_plugin_sdk::export_driver!(QemuImgDriver);
