//! The file driver: volumes are sparse raw files `<dir>/volume-<id>`, snapshots
//! `<dir>/snapshot-<id>`, copied by reflink where the filesystem supports it (else a sparse
//! copy). The embedded default of `kiln all-in-one`. Capacity is the filesystem's (statvfs);
//! provisioned capacity is the sum of the volume files' apparent sizes. Exports go through
//! the configured iSCSI target helper, or, without one, are Cinder's `local` connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use super::copy::{self, CopyMethod};
use super::{
    BackendStats, Capacity, ConnectionInfo, Connector, DriverError, ModelUpdate, PoolStats,
    SnapshotRef, VolumeDriver, VolumeRef,
};
use crate::config::{BackendConfig, Config};
use crate::targets::TargetHelper;

const GIB: f64 = (1u64 << 30) as f64;

pub struct FileDriver {
    backend: String,
    backend_name: String,
    dir: PathBuf,
    reserved_percentage: u8,
    max_over_subscription_ratio: f64,
    /// Declared pool size (GiB) instead of the filesystem's.
    capacity_gb: Option<f64>,
    target: Option<Arc<dyn TargetHelper>>,
}

impl FileDriver {
    pub fn new(config: &Config, backend: &str, settings: &BackendConfig) -> Self {
        FileDriver {
            backend: backend.to_string(),
            backend_name: settings
                .volume_backend_name
                .clone()
                .unwrap_or_else(|| backend.to_string()),
            dir: settings
                .path
                .clone()
                .unwrap_or_else(|| config.data_dir.join("volumes").join(backend)),
            reserved_percentage: settings.reserved_percentage,
            max_over_subscription_ratio: settings.max_over_subscription_ratio,
            capacity_gb: settings.capacity_gb,
            target: None,
        }
    }

    /// Export volumes through `target` (none: `local` connections).
    pub fn with_target(mut self, target: Option<Arc<dyn TargetHelper>>) -> Self {
        self.target = target;
        self
    }

    /// The directory holding the volume and snapshot files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of a volume's file (the name is validated first).
    pub fn volume_path(&self, v: &VolumeRef) -> Result<PathBuf, DriverError> {
        Ok(self.dir.join(v.backend_name(&self.backend)?))
    }

    fn snapshot_path(&self, s: &SnapshotRef) -> Result<PathBuf, DriverError> {
        Ok(self.dir.join(s.backend_name(&self.backend)?))
    }

    fn io(&self, what: &str) -> impl FnOnce(std::io::Error) -> DriverError + '_ {
        let what = what.to_string();
        move |source| DriverError::Io {
            backend: self.backend.clone(),
            what,
            source,
        }
    }

    /// Run blocking file work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        what: String,
        f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, DriverError> {
        match tokio::task::spawn_blocking(f).await {
            Ok(r) => r.map_err(self.io(&what)),
            Err(join) => Err(DriverError::Backend {
                backend: self.backend.clone(),
                message: format!("{what}: worker task failed: {join}"),
            }),
        }
    }

    /// Copy `src` to the new file `dst` and grow it to `size_gb`. A `dst` left by an earlier
    /// attempt that a crash interrupted (the manager runs one create of a volume at a time) is
    /// replaced.
    async fn copy_to_new(
        &self,
        src: PathBuf,
        dst: PathBuf,
        size_gb: u64,
    ) -> Result<CopyMethod, DriverError> {
        let what = format!("cannot copy {} to {}", src.display(), dst.display());
        let method = self
            .blocking(what, {
                let dst = dst.clone();
                move || {
                    remove_if_present(&dst)?;
                    let method = copy::clone_file(&src, &dst)?;
                    grow(&dst, size_gb)?;
                    Ok(method)
                }
            })
            .await?;
        tracing::info!(backend = %self.backend, dst = %dst.display(), ?method, "copied volume data");
        Ok(method)
    }

    fn location(path: &Path) -> ModelUpdate {
        ModelUpdate {
            provider_location: Some(path.display().to_string()),
            provider_auth: None,
        }
    }

    fn missing(&self, what: String) -> DriverError {
        DriverError::NotFound {
            backend: self.backend.clone(),
            what,
        }
    }
}

/// Grow `path` to `size_gb` GiB; never shrinks.
fn grow(path: &Path, size_gb: u64) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    let want = size_gb << 30;
    if f.metadata()?.len() < want {
        f.set_len(want)?;
    }
    Ok(())
}

/// Total and available bytes of the filesystem holding `dir`.
fn fs_capacity(dir: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((
        st.f_blocks as u64 * st.f_frsize as u64,
        st.f_bavail as u64 * st.f_frsize as u64,
    ))
}

/// Remove `path`; already gone is fine.
fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[async_trait]
impl VolumeDriver for FileDriver {
    async fn do_setup(&self) -> Result<(), DriverError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(self.io(&format!(
                "cannot create volume directory {}",
                self.dir.display()
            )))
    }

    async fn get_volume_stats(&self) -> Result<BackendStats, DriverError> {
        let dir = self.dir.clone();
        let (total, free, provisioned, count) = self
            .blocking(
                format!("cannot read capacity of {}", self.dir.display()),
                move || {
                    let (total, free) = fs_capacity(&dir)?;
                    let mut provisioned = 0u64;
                    let mut count = 0u64;
                    for entry in std::fs::read_dir(&dir)? {
                        let entry = entry?;
                        let meta = entry.metadata()?;
                        if meta.is_file()
                            && entry.file_name().to_string_lossy().starts_with("volume-")
                        {
                            provisioned += meta.len();
                            count += 1;
                        }
                    }
                    Ok((total, free, provisioned, count))
                },
            )
            .await?;
        let round = |b: u64| ((b as f64 / GIB) * 100.0).round() / 100.0;
        let (total, free) = match self.capacity_gb {
            Some(declared) => {
                let declared = (declared * GIB) as u64;
                (declared, declared.saturating_sub(provisioned))
            }
            None => (total, free),
        };
        Ok(BackendStats {
            volume_backend_name: self.backend_name.clone(),
            vendor_name: "Open Source".into(),
            driver_version: env!("CARGO_PKG_VERSION").into(),
            storage_protocol: if self.target.is_some() {
                "iSCSI".into()
            } else {
                "file".into()
            },
            pools: vec![PoolStats {
                pool_name: self.backend_name.clone(),
                total_capacity_gb: Capacity::Gb(round(total)),
                free_capacity_gb: Capacity::Gb(round(free)),
                allocated_capacity_gb: round(provisioned),
                provisioned_capacity_gb: round(provisioned),
                reserved_percentage: self.reserved_percentage,
                max_over_subscription_ratio: self.max_over_subscription_ratio,
                thin_provisioning_support: true,
                thick_provisioning_support: false,
                total_volumes: count,
                multiattach: true,
                qos_support: false,
                extra: Default::default(),
            }],
        })
    }

    async fn create_volume(&self, v: &VolumeRef) -> Result<ModelUpdate, DriverError> {
        let path = self.volume_path(v)?;
        let size = v.size_gb;
        let p = path.clone();
        self.blocking(format!("cannot create {}", path.display()), move || {
            use std::os::unix::fs::OpenOptionsExt;
            // Idempotent under at-least-once delivery: a file left by an earlier attempt is
            // reused and only ever grown.
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&p)?;
            if f.metadata()?.len() < size << 30 {
                f.set_len(size << 30)?;
            }
            f.sync_all()
        })
        .await?;
        tracing::info!(backend = %self.backend, volume = %v.id, size_gb = size, "created volume file");
        Ok(Self::location(&path))
    }

    async fn create_volume_from_snapshot(
        &self,
        v: &VolumeRef,
        s: &SnapshotRef,
    ) -> Result<ModelUpdate, DriverError> {
        let (src, dst) = (self.snapshot_path(s)?, self.volume_path(v)?);
        if v.size_gb < s.size_gb {
            return Err(self.invalid(format!(
                "volume size {} GiB is smaller than snapshot {} ({} GiB)",
                v.size_gb, s.id, s.size_gb
            )));
        }
        if !tokio::fs::try_exists(&src).await.unwrap_or(false) {
            return Err(self.missing(format!("snapshot file {}", src.display())));
        }
        self.copy_to_new(src, dst.clone(), v.size_gb).await?;
        Ok(Self::location(&dst))
    }

    async fn create_cloned_volume(
        &self,
        v: &VolumeRef,
        src: &VolumeRef,
    ) -> Result<ModelUpdate, DriverError> {
        let (from, dst) = (self.volume_path(src)?, self.volume_path(v)?);
        if v.size_gb < src.size_gb {
            return Err(self.invalid(format!(
                "clone size {} GiB is smaller than source volume {} ({} GiB)",
                v.size_gb, src.id, src.size_gb
            )));
        }
        if !tokio::fs::try_exists(&from).await.unwrap_or(false) {
            return Err(self.missing(format!("source volume file {}", from.display())));
        }
        self.copy_to_new(from, dst.clone(), v.size_gb).await?;
        Ok(Self::location(&dst))
    }

    async fn delete_volume(&self, v: &VolumeRef) -> Result<(), DriverError> {
        let path = self.volume_path(v)?;
        let p = path.clone();
        self.blocking(format!("cannot delete {}", path.display()), move || {
            remove_if_present(&p)
        })
        .await?;
        tracing::info!(backend = %self.backend, volume = %v.id, "deleted volume file");
        Ok(())
    }

    async fn create_snapshot(&self, s: &SnapshotRef) -> Result<ModelUpdate, DriverError> {
        let (src, dst) = (self.volume_path(&s.volume)?, self.snapshot_path(s)?);
        if !tokio::fs::try_exists(&src).await.unwrap_or(false) {
            return Err(self.missing(format!("volume file {}", src.display())));
        }
        // An earlier attempt may have left a partial copy: copy_to_new starts again.
        self.copy_to_new(src, dst.clone(), 0).await?;
        Ok(Self::location(&dst))
    }

    async fn delete_snapshot(&self, s: &SnapshotRef) -> Result<(), DriverError> {
        let path = self.snapshot_path(s)?;
        let p = path.clone();
        self.blocking(format!("cannot delete {}", path.display()), move || {
            remove_if_present(&p)
        })
        .await
    }

    async fn extend_volume(&self, v: &VolumeRef, new_size_gb: u64) -> Result<(), DriverError> {
        let path = self.volume_path(v)?;
        if new_size_gb < v.size_gb {
            return Err(self.invalid(format!(
                "new size {new_size_gb} GiB is smaller than the current {} GiB; volumes only grow",
                v.size_gb
            )));
        }
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Err(self.missing(format!("volume file {}", path.display())));
        }
        let p = path.clone();
        self.blocking(format!("cannot extend {}", path.display()), move || {
            grow(&p, new_size_gb)
        })
        .await?;
        if let Some(t) = &self.target {
            t.extend_target(v, &path).await?;
        }
        tracing::info!(backend = %self.backend, volume = %v.id, new_size_gb, "extended volume file");
        Ok(())
    }

    async fn create_export(
        &self,
        v: &VolumeRef,
        _c: &Connector,
    ) -> Result<ModelUpdate, DriverError> {
        let path = self.volume_path(v)?;
        match &self.target {
            Some(t) => t.create_export(v, &path).await,
            None => Ok(ModelUpdate::default()),
        }
    }

    async fn ensure_export(&self, v: &VolumeRef) -> Result<(), DriverError> {
        let path = self.volume_path(v)?;
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
        let path = self.volume_path(v)?;
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
        let path = self.volume_path(v)?;
        if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Err(self.missing(format!("volume file {}", path.display())));
        }
        Ok(path)
    }

    /// The snapshot's file is copied (reflink where possible) beside the volume's and renamed
    /// over it: the volume holds either its old bytes or the snapshot's, never a mix.
    async fn revert_to_snapshot(&self, v: &VolumeRef, s: &SnapshotRef) -> Result<(), DriverError> {
        let (src, dst) = (self.snapshot_path(s)?, self.volume_path(v)?);
        for (path, what) in [(&src, "snapshot file"), (&dst, "volume file")] {
            if !tokio::fs::try_exists(path).await.unwrap_or(false) {
                return Err(self.missing(format!("{what} {}", path.display())));
            }
        }
        let staged = dst.with_extension("revert");
        let _ = tokio::fs::remove_file(&staged).await; // a crashed attempt's leftover
        self.copy_to_new(src, staged.clone(), v.size_gb).await?;
        tokio::fs::rename(&staged, &dst)
            .await
            .map_err(self.io(&format!("cannot replace {}", dst.display())))?;
        tracing::info!(backend = %self.backend, volume = %v.id, snapshot = %s.id, "volume reverted to snapshot");
        Ok(())
    }
}

impl FileDriver {
    fn invalid(&self, message: String) -> DriverError {
        DriverError::Invalid {
            backend: self.backend.clone(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver(dir: &Path) -> FileDriver {
        let settings = BackendConfig {
            path: Some(dir.join("vols")),
            ..Default::default()
        };
        FileDriver::new(&Config::default(), "file", &settings)
    }

    #[tokio::test]
    async fn stats_count_volume_files_and_match_statvfs() {
        let dir = tempfile::tempdir().unwrap();
        let d = driver(dir.path());
        d.do_setup().await.unwrap();
        let f = std::fs::File::create(dir.path().join("vols/volume-1")).unwrap();
        f.set_len(2 << 30).unwrap(); // 2 GiB sparse
        std::fs::write(dir.path().join("vols/unrelated"), b"x").unwrap();
        let stats = d.get_volume_stats().await.unwrap();
        let pool = &stats.pools[0];
        assert_eq!(pool.total_volumes, 1);
        assert_eq!(pool.provisioned_capacity_gb, 2.0);
        let (total, _) = fs_capacity(&dir.path().join("vols")).unwrap();
        assert_eq!(
            pool.total_capacity_gb,
            Capacity::Gb(((total as f64 / GIB) * 100.0).round() / 100.0)
        );
    }

    #[tokio::test]
    async fn local_connection_without_a_target_and_idempotent_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let d = driver(dir.path());
        d.do_setup().await.unwrap();
        let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        let upd = d.create_volume(&v).await.unwrap();
        let path = dir.path().join("vols").join(&v.name);
        assert_eq!(upd.provider_location, Some(path.display().to_string()));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 30);
        d.create_volume(&v).await.unwrap(); // redelivered: still fine
        let c = Connector {
            host: "h".into(),
            ..Default::default()
        };
        assert_eq!(
            d.create_export(&v, &c).await.unwrap(),
            ModelUpdate::default()
        );
        let info = d.initialize_connection(&v, &c).await.unwrap();
        assert_eq!(
            serde_json::to_value(&info).unwrap(),
            serde_json::json!({"driver_volume_type": "local",
                               "data": {"device_path": path.display().to_string()}})
        );
        let err = d.extend_volume(&v, 0).await.unwrap_err();
        assert!(matches!(err, DriverError::Invalid { .. }), "{err}");
        d.delete_volume(&v).await.unwrap();
        d.delete_volume(&v).await.unwrap();
        let s = SnapshotRef::new(uuid::Uuid::new_v4(), v.clone());
        d.delete_snapshot(&s).await.unwrap();
        let err = d.create_snapshot(&s).await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }

    #[tokio::test]
    async fn bad_names_never_touch_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let d = driver(dir.path());
        d.do_setup().await.unwrap();
        let mut v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        v.name = "../escape".into();
        assert!(matches!(
            d.create_volume(&v).await.unwrap_err(),
            DriverError::Invalid { .. }
        ));
        assert!(!dir.path().join("escape").exists());
    }
}
