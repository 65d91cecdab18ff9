//! The LVM driver: volumes are logical volumes `volume-<uuid>` in one volume group, thick or
//! in a thin pool `<vg>-pool` (`lvm_type`), optionally mirrored (`lvm_mirrors`); snapshots
//! are LVM snapshots, thin clones are snapshots, thick clones are copies. Every command goes
//! through a [`CommandRunner`] (argv in [`commands`], output parsing in [`stats`]) with
//! `LC_ALL=C` and retries on lock contention. With `lvm_activation = false` (hosts without
//! device-mapper) only metadata operations work; anything needing an active LV says so.

pub mod commands;
pub mod stats;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use super::exec::{run_checked, Cmd, CmdOutput, CommandRunner, Retry};
use super::{
    BackendStats, Capacity, ConnectionInfo, Connector, DriverError, ModelUpdate, PoolStats,
    SnapshotRef, VolumeDriver, VolumeRef,
};
use crate::config::BackendConfig;
use crate::targets::TargetHelper;
use commands::LvmCommands;

pub struct LvmDriver {
    backend: String,
    backend_name: String,
    host: String,
    cmds: LvmCommands,
    thin: bool,
    mirrors: u32,
    reserved_percentage: u8,
    max_over_subscription_ratio: f64,
    runner: Arc<dyn CommandRunner>,
    target: Option<Arc<dyn TargetHelper>>,
}

impl LvmDriver {
    pub fn new(
        host: &str,
        backend: &str,
        settings: &BackendConfig,
        runner: Arc<dyn CommandRunner>,
        target: Option<Arc<dyn TargetHelper>>,
    ) -> Self {
        LvmDriver {
            backend: backend.to_string(),
            backend_name: settings
                .volume_backend_name
                .clone()
                .unwrap_or_else(|| backend.to_string()),
            host: host.to_string(),
            cmds: LvmCommands {
                vg: settings.volume_group.clone(),
                activation: settings.lvm_activation,
            },
            thin: settings.lvm_type == "thin",
            mirrors: settings.lvm_mirrors,
            reserved_percentage: settings.reserved_percentage,
            max_over_subscription_ratio: settings.max_over_subscription_ratio,
            runner,
            target,
        }
    }

    /// Name of the thin pool: Cinder's `<vg>-pool`.
    pub fn thin_pool(&self) -> String {
        format!("{}-pool", self.cmds.vg)
    }

    async fn run(&self, cmd: Cmd) -> Result<CmdOutput, DriverError> {
        run_checked(self.runner.as_ref(), &self.backend, &cmd, Retry::LVM_LOCK).await
    }

    fn err(&self, message: String) -> DriverError {
        DriverError::Backend {
            backend: self.backend.clone(),
            message,
        }
    }

    /// Refuse operations that need `/dev/<vg>/<lv>` when LVM runs without activation.
    fn need_activation(&self, what: &str) -> Result<(), DriverError> {
        if self.cmds.activation {
            Ok(())
        } else {
            Err(DriverError::NotSupported {
                backend: self.backend.clone(),
                what: format!(
                    "{what}: it needs device-mapper; this host runs LVM with activation \
                     disabled (lvm_activation=false). Enable device-mapper and set \
                     lvm_activation = true"
                ),
            })
        }
    }

    async fn lvs(&self) -> Result<Vec<stats::LvInfo>, DriverError> {
        let out = self.run(self.cmds.lvs()).await?;
        stats::parse_lvs(&out.stdout).map_err(|e| self.err(e))
    }

    async fn vg(&self) -> Result<stats::VgInfo, DriverError> {
        let out = self.run(self.cmds.vgs()).await.map_err(|e| match e {
            DriverError::Command { stderr, .. } => self.err(format!(
                "volume group `{}` is not usable ({}); create it with `vgcreate {} <device>` \
                 or set volume_group",
                self.cmds.vg,
                stderr.trim(),
                self.cmds.vg
            )),
            other => other,
        })?;
        let vgs = stats::parse_vgs(&out.stdout).map_err(|e| self.err(e))?;
        vgs.into_iter()
            .find(|v| v.name == self.cmds.vg)
            .ok_or_else(|| self.err(format!("vgs did not report `{}`", self.cmds.vg)))
    }

    /// Create the LV for `v` (thin or thick, mirrored as configured) of `size_gb`.
    async fn create_lv(&self, name: &str, size_gb: u64) -> Result<(), DriverError> {
        let cmd = if self.thin {
            self.cmds.create_thin(name, size_gb, &self.thin_pool())
        } else {
            self.cmds.create_thick(name, size_gb, self.mirrors)
        };
        self.run(cmd).await.map(|_| ())
    }

    async fn remove_lv(&self, name: &str) -> Result<(), DriverError> {
        match self.run(self.cmds.remove(name)).await {
            Err(DriverError::Command { stderr, .. })
                if stderr.contains("Failed to find logical volume")
                    || stderr.contains("not found") =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// Copy `bytes` from one active LV to another (thick clone / volume from snapshot).
    async fn copy_lv(&self, from: &str, to: &str, bytes: u64) -> Result<(), DriverError> {
        let (src, dst) = (
            PathBuf::from(self.cmds.device_path(from)),
            PathBuf::from(self.cmds.device_path(to)),
        );
        let what = format!("cannot copy {} to {}", src.display(), dst.display());
        let r = tokio::task::spawn_blocking(move || super::copy::copy_device(&src, &dst, bytes))
            .await
            .map_err(|e| self.err(format!("{what}: worker task failed: {e}")))?;
        r.map_err(|source| DriverError::Io {
            backend: self.backend.clone(),
            what,
            source,
        })
    }

    /// Thin: `name` becomes an activated snapshot of `origin`, grown to `size_gb`. When a step
    /// after the snapshot fails, the new LV is removed again (the error of the step is
    /// returned).
    async fn thin_copy(
        &self,
        name: &str,
        origin: &str,
        size_gb: u64,
        origin_gb: u64,
    ) -> Result<(), DriverError> {
        self.run(self.cmds.create_snapshot(name, origin, true, origin_gb))
            .await?;
        let finished = async {
            if self.cmds.activation {
                self.run(self.cmds.activate(name)).await?;
            }
            if size_gb > origin_gb {
                self.run(self.cmds.extend(name, size_gb)).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = finished {
            if let Err(cleanup) = self.remove_lv(name).await {
                tracing::warn!(backend = %self.backend, lv = %name, error = %cleanup, "half-made thin clone not removed");
            }
            return Err(e);
        }
        Ok(())
    }

    /// Where the volume's data is for exports: the active LV's device node.
    fn export_path(&self, v: &VolumeRef, what: &str) -> Result<PathBuf, DriverError> {
        let name = v.backend_name(&self.backend)?;
        self.need_activation(what)?;
        Ok(PathBuf::from(self.cmds.device_path(name)))
    }

    fn too_small(&self, what: String) -> DriverError {
        DriverError::Invalid {
            backend: self.backend.clone(),
            message: what,
        }
    }
}

#[async_trait]
impl VolumeDriver for LvmDriver {
    async fn do_setup(&self) -> Result<(), DriverError> {
        let vg = self.vg().await?;
        if self.thin {
            let pool = self.thin_pool();
            if !self.lvs().await?.iter().any(|lv| lv.name == pool) {
                // Cinder's default: the pool takes 95 % of the free space.
                let size = format!("{:.2}g", (vg.free_gb * 0.95 * 100.0).floor() / 100.0);
                tracing::info!(backend = %self.backend, pool = %pool, size = %size, "creating thin pool");
                self.run(self.cmds.create_thin_pool(&pool, &size)).await?;
            }
        }
        Ok(())
    }

    async fn get_volume_stats(&self) -> Result<BackendStats, DriverError> {
        let vg = self.vg().await?;
        let lvs = self.lvs().await?;
        let pool = self.thin.then(|| self.thin_pool());
        let c =
            stats::capacities(&vg, &lvs, pool.as_deref(), self.mirrors).map_err(|e| self.err(e))?;
        let mut extra = std::collections::BTreeMap::new();
        extra.insert(
            "location_info".to_string(),
            serde_json::json!(format!(
                "LVMVolumeDriver:{}:{}:{}:{}",
                self.host,
                self.cmds.vg,
                if self.thin { "thin" } else { "default" },
                self.mirrors
            )),
        );
        Ok(BackendStats {
            volume_backend_name: self.backend_name.clone(),
            vendor_name: "Open Source".into(),
            driver_version: env!("CARGO_PKG_VERSION").into(),
            storage_protocol: if self.target.is_some() {
                "iSCSI"
            } else {
                "local"
            }
            .into(),
            pools: vec![PoolStats {
                pool_name: self.backend_name.clone(),
                total_capacity_gb: Capacity::Gb(c.total_gb),
                free_capacity_gb: Capacity::Gb(c.free_gb),
                allocated_capacity_gb: c.allocated_gb,
                provisioned_capacity_gb: c.provisioned_gb,
                reserved_percentage: self.reserved_percentage,
                max_over_subscription_ratio: self.max_over_subscription_ratio,
                thin_provisioning_support: self.thin,
                thick_provisioning_support: !self.thin,
                total_volumes: c.total_volumes,
                multiattach: false,
                qos_support: false,
                extra,
            }],
        })
    }

    async fn create_volume(&self, v: &VolumeRef) -> Result<ModelUpdate, DriverError> {
        let name = v.backend_name(&self.backend)?;
        // Redelivered message: the LV from the earlier attempt is the result.
        if self.lvs().await?.iter().any(|lv| lv.name == name) {
            return Ok(ModelUpdate::default());
        }
        self.create_lv(name, v.size_gb).await?;
        tracing::info!(backend = %self.backend, volume = %v.id, size_gb = v.size_gb, thin = self.thin, "created LV");
        Ok(ModelUpdate::default())
    }

    async fn create_volume_from_snapshot(
        &self,
        v: &VolumeRef,
        s: &SnapshotRef,
    ) -> Result<ModelUpdate, DriverError> {
        let name = v.backend_name(&self.backend)?;
        let snap = s.backend_name(&self.backend)?;
        if v.size_gb < s.size_gb {
            return Err(self.too_small(format!(
                "volume size {} GiB is smaller than snapshot {} ({} GiB)",
                v.size_gb, s.id, s.size_gb
            )));
        }
        if self.thin {
            self.thin_copy(name, snap, v.size_gb, s.size_gb).await?;
        } else {
            self.need_activation("creating a thick volume from a snapshot (data copy)")?;
            self.create_lv(name, v.size_gb).await?;
            if let Err(e) = self.copy_lv(snap, name, s.size_gb << 30).await {
                let _ = self.remove_lv(name).await;
                return Err(e);
            }
        }
        Ok(ModelUpdate::default())
    }

    async fn create_cloned_volume(
        &self,
        v: &VolumeRef,
        src: &VolumeRef,
    ) -> Result<ModelUpdate, DriverError> {
        let name = v.backend_name(&self.backend)?;
        let origin = src.backend_name(&self.backend)?;
        if v.size_gb < src.size_gb {
            return Err(self.too_small(format!(
                "clone size {} GiB is smaller than source volume {} ({} GiB)",
                v.size_gb, src.id, src.size_gb
            )));
        }
        if self.thin {
            self.thin_copy(name, origin, v.size_gb, src.size_gb).await?;
            return Ok(ModelUpdate::default());
        }
        self.need_activation("cloning a thick volume (data copy)")?;
        // A temporary snapshot gives a consistent source while the copy runs. Named after the
        // new volume (Cinder uses the source's id, which collides for concurrent clones).
        let temp = format!("clone-snap-{}", v.id.as_hyphenated());
        self.run(self.cmds.create_snapshot(&temp, origin, false, src.size_gb))
            .await?;
        let result = async {
            self.create_lv(name, v.size_gb).await?;
            self.copy_lv(&temp, name, src.size_gb << 30).await
        }
        .await;
        let cleanup = self.remove_lv(&temp).await;
        if let Err(e) = result {
            let _ = self.remove_lv(name).await;
            return Err(e);
        }
        cleanup?;
        Ok(ModelUpdate::default())
    }

    async fn delete_volume(&self, v: &VolumeRef) -> Result<(), DriverError> {
        let name = v.backend_name(&self.backend)?;
        let lvs = self.lvs().await?;
        if !lvs.iter().any(|lv| lv.name == name) {
            tracing::info!(backend = %self.backend, volume = %v.id, "LV already gone");
            return Ok(());
        }
        // Cinder's `lv_has_snapshot`: only an LV whose attributes say it is the origin of
        // old-style (thick, copy-on-write) snapshots — `o`, or `O` while one merges — cannot go
        // before them. Thin snapshots and thin clones name their source as `origin` too, but
        // they are independent thin LVs and the source's attributes stay `V`: a thin volume
        // with clones or snapshots is removed like any other.
        let is_origin = lvs
            .iter()
            .find(|lv| lv.name == name)
            .is_some_and(|lv| lv.attr.starts_with(['o', 'O']));
        let snaps: Vec<&str> = lvs
            .iter()
            .filter(|lv| lv.origin == name)
            .map(|lv| lv.name.as_str())
            .collect();
        if is_origin {
            return Err(DriverError::Invalid {
                backend: self.backend.clone(),
                message: format!(
                    "volume {} has snapshots ({}); delete them first",
                    v.id,
                    snaps.join(", ")
                ),
            });
        }
        self.remove_lv(name).await?;
        tracing::info!(backend = %self.backend, volume = %v.id, "removed LV");
        Ok(())
    }

    async fn create_snapshot(&self, s: &SnapshotRef) -> Result<ModelUpdate, DriverError> {
        let name = s.backend_name(&self.backend)?;
        let origin = s.volume.backend_name(&self.backend)?;
        let lvs = self.lvs().await?;
        if lvs.iter().any(|lv| lv.name == name) {
            return Ok(ModelUpdate::default());
        }
        if !lvs.iter().any(|lv| lv.name == origin) {
            return Err(DriverError::NotFound {
                backend: self.backend.clone(),
                what: format!("logical volume {}/{origin}", self.cmds.vg),
            });
        }
        self.run(
            self.cmds
                .create_snapshot(name, origin, self.thin, s.volume.size_gb),
        )
        .await?;
        Ok(ModelUpdate::default())
    }

    /// Cinder's LVM revert for thick volumes: merge the snapshot into its origin
    /// (`lvconvert --merge`, which consumes the snapshot), deactivate and activate the origin
    /// so the merge runs now, and take the snapshot again. Thin volumes (Cinder refuses their
    /// merge too) and hosts without activation get the generic revert, which on the latter
    /// says it needs device-mapper.
    async fn revert_to_snapshot(&self, v: &VolumeRef, s: &SnapshotRef) -> Result<(), DriverError> {
        if self.thin || !self.cmds.activation {
            return crate::drivers::generic_revert(self, v, s).await;
        }
        let (snapshot, origin) = (
            s.backend_name(&self.backend)?,
            v.backend_name(&self.backend)?,
        );
        self.run(self.cmds.merge(snapshot)).await?;
        self.run(self.cmds.deactivate(origin)).await?;
        self.run(self.cmds.activate(origin)).await?;
        self.create_snapshot(s).await?;
        Ok(())
    }

    async fn delete_snapshot(&self, s: &SnapshotRef) -> Result<(), DriverError> {
        let name = s.backend_name(&self.backend)?;
        self.remove_lv(name).await
    }

    async fn extend_volume(&self, v: &VolumeRef, new_size_gb: u64) -> Result<(), DriverError> {
        let name = v.backend_name(&self.backend)?;
        if new_size_gb < v.size_gb {
            return Err(self.too_small(format!(
                "new size {new_size_gb} GiB is smaller than the current {} GiB; volumes only grow",
                v.size_gb
            )));
        }
        if new_size_gb == v.size_gb {
            return Ok(());
        }
        self.run(self.cmds.extend(name, new_size_gb)).await?;
        if let Some(t) = &self.target {
            if self.cmds.activation {
                t.extend_target(v, &PathBuf::from(self.cmds.device_path(name)))
                    .await?;
            }
        }
        Ok(())
    }

    async fn create_export(
        &self,
        v: &VolumeRef,
        _c: &Connector,
    ) -> Result<ModelUpdate, DriverError> {
        let path = self.export_path(v, "exporting a logical volume")?;
        match &self.target {
            Some(t) => t.create_export(v, &path).await,
            None => Ok(ModelUpdate::default()),
        }
    }

    async fn ensure_export(&self, v: &VolumeRef) -> Result<(), DriverError> {
        let path = self.export_path(v, "exporting a logical volume")?;
        match &self.target {
            Some(t) => t.ensure_export(v, &path).await,
            None => Ok(()),
        }
    }

    async fn remove_export(&self, v: &VolumeRef) -> Result<(), DriverError> {
        v.backend_name(&self.backend)?;
        match &self.target {
            Some(t) => t.remove_export(v).await,
            None => Ok(()),
        }
    }

    async fn initialize_connection(
        &self,
        v: &VolumeRef,
        c: &Connector,
    ) -> Result<ConnectionInfo, DriverError> {
        let path = self.export_path(v, "attaching a logical volume")?;
        match &self.target {
            Some(t) => t.initialize_connection(v, c).await,
            None => Ok(ConnectionInfo {
                driver_volume_type: "local".into(),
                data: serde_json::json!({ "device_path": path.display().to_string() }),
            }),
        }
    }

    async fn terminate_connection(&self, v: &VolumeRef, c: &Connector) -> Result<(), DriverError> {
        v.backend_name(&self.backend)?;
        match &self.target {
            Some(t) => t.terminate_connection(v, c).await,
            None => Ok(()),
        }
    }

    fn supports_online_extend(&self) -> bool {
        true
    }

    async fn local_path(&self, v: &VolumeRef) -> Result<PathBuf, DriverError> {
        self.export_path(v, "opening a logical volume on this host (data copy)")
    }
}

#[cfg(test)]
mod tests;
