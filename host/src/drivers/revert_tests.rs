//! The trait's generic revert (`VolumeDriver::revert_to_snapshot`'s default), run over the
//! file driver with its own revert hidden: a temporary volume from the snapshot, copied over
//! the volume through local paths, then deleted.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::file::FileDriver;
use super::*;

/// The file driver minus its `revert_to_snapshot`, so the trait's default runs.
struct Generic(FileDriver);

#[async_trait]
impl VolumeDriver for Generic {
    async fn do_setup(&self) -> Result<(), DriverError> {
        self.0.do_setup().await
    }
    async fn get_volume_stats(&self) -> Result<BackendStats, DriverError> {
        self.0.get_volume_stats().await
    }
    async fn create_volume(&self, v: &VolumeRef) -> Result<ModelUpdate, DriverError> {
        self.0.create_volume(v).await
    }
    async fn create_volume_from_snapshot(
        &self,
        v: &VolumeRef,
        s: &SnapshotRef,
    ) -> Result<ModelUpdate, DriverError> {
        self.0.create_volume_from_snapshot(v, s).await
    }
    async fn create_cloned_volume(
        &self,
        v: &VolumeRef,
        src: &VolumeRef,
    ) -> Result<ModelUpdate, DriverError> {
        self.0.create_cloned_volume(v, src).await
    }
    async fn delete_volume(&self, v: &VolumeRef) -> Result<(), DriverError> {
        self.0.delete_volume(v).await
    }
    async fn create_snapshot(&self, s: &SnapshotRef) -> Result<ModelUpdate, DriverError> {
        self.0.create_snapshot(s).await
    }
    async fn delete_snapshot(&self, s: &SnapshotRef) -> Result<(), DriverError> {
        self.0.delete_snapshot(s).await
    }
    async fn extend_volume(&self, v: &VolumeRef, new_size_gb: u64) -> Result<(), DriverError> {
        self.0.extend_volume(v, new_size_gb).await
    }
    async fn create_export(
        &self,
        v: &VolumeRef,
        c: &Connector,
    ) -> Result<ModelUpdate, DriverError> {
        self.0.create_export(v, c).await
    }
    async fn ensure_export(&self, v: &VolumeRef) -> Result<(), DriverError> {
        self.0.ensure_export(v).await
    }
    async fn remove_export(&self, v: &VolumeRef) -> Result<(), DriverError> {
        self.0.remove_export(v).await
    }
    async fn initialize_connection(
        &self,
        v: &VolumeRef,
        c: &Connector,
    ) -> Result<ConnectionInfo, DriverError> {
        self.0.initialize_connection(v, c).await
    }
    async fn terminate_connection(&self, v: &VolumeRef, c: &Connector) -> Result<(), DriverError> {
        self.0.terminate_connection(v, c).await
    }
    async fn local_path(&self, v: &VolumeRef) -> Result<PathBuf, DriverError> {
        self.0.local_path(v).await
    }
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[tokio::test]
async fn generic_revert_copies_the_snapshot_over_the_volume_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::config::BackendConfig {
        path: Some(dir.path().join("vols")),
        ..Default::default()
    };
    let d = Generic(FileDriver::new(&Config::default(), "file", &settings));
    d.do_setup().await.unwrap();
    let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    d.create_volume(&v).await.unwrap();
    let path = d.local_path(&v).await.unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(b"before", 4096).unwrap();
    let s = SnapshotRef::new(uuid::Uuid::new_v4(), v.clone());
    d.create_snapshot(&s).await.unwrap();
    f.write_all_at(b"after!", 4096).unwrap();
    f.write_all_at(b"late", 1 << 29).unwrap();
    let files = entries(&dir.path().join("vols"));

    d.revert_to_snapshot(&v, &s).await.unwrap();
    let f = std::fs::File::open(&path).unwrap();
    let mut buf = [0u8; 6];
    f.read_exact_at(&mut buf, 4096).unwrap();
    assert_eq!(&buf, b"before");
    f.read_exact_at(&mut buf[..4], 1 << 29).unwrap();
    assert_eq!(
        &buf[..4],
        &[0u8; 4],
        "written after the snapshot: zeros again"
    );
    assert_eq!(
        entries(&dir.path().join("vols")),
        files,
        "the temporary volume is gone"
    );

    // No local path for the volume: the driver says so, and the temporary volume goes too.
    let gone = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    let err = d.revert_to_snapshot(&gone, &s).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(entries(&dir.path().join("vols")), files);
}
