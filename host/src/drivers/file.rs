//! The file driver: volumes are sparse raw files in one directory per backend. The embedded
//! default of `kiln all-in-one`. Capacity is the filesystem's (statvfs); provisioned capacity
//! is the sum of the volume files' apparent sizes.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{BackendStats, Capacity, DriverError, PoolStats, VolumeDriver};
use crate::config::{BackendConfig, Config};

const GIB: f64 = (1u64 << 30) as f64;

pub struct FileDriver {
    backend: String,
    backend_name: String,
    dir: PathBuf,
    reserved_percentage: u8,
    max_over_subscription_ratio: f64,
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
        }
    }

    fn io(&self, what: &str) -> impl FnOnce(std::io::Error) -> DriverError + '_ {
        let what = what.to_string();
        move |source| DriverError::Io {
            backend: self.backend.clone(),
            what,
            source,
        }
    }
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
        let (total, free, provisioned, count) =
            tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                let (total, free) = fs_capacity(&dir)?;
                let mut provisioned = 0u64;
                let mut count = 0u64;
                for entry in std::fs::read_dir(&dir)? {
                    let entry = entry?;
                    let meta = entry.metadata()?;
                    if meta.is_file() && entry.file_name().to_string_lossy().starts_with("volume-")
                    {
                        provisioned += meta.len();
                        count += 1;
                    }
                }
                Ok((total, free, provisioned, count))
            })
            .await
            .expect("stats task never panics")
            .map_err(self.io(&format!("cannot read capacity of {}", self.dir.display())))?;
        let round = |b: u64| ((b as f64 / GIB) * 100.0).round() / 100.0;
        Ok(BackendStats {
            volume_backend_name: self.backend_name.clone(),
            vendor_name: "Open Source".into(),
            driver_version: env!("CARGO_PKG_VERSION").into(),
            storage_protocol: "file".into(),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stats_count_volume_files_and_match_statvfs() {
        let dir = tempfile::tempdir().unwrap();
        let settings = BackendConfig {
            path: Some(dir.path().join("vols")),
            ..Default::default()
        };
        let d = FileDriver::new(&Config::default(), "file", &settings);
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
}
