//! The flows of one volume manager on the file driver, against a real SQLite database and the
//! in-process bus (nothing serves the scheduler topic: a reschedule just queues): the revert
//! of a failed create (data, quota, status, message), repeated deliveries that must change
//! nothing, the start-up settling of a create a crash interrupted, and attach failures (a
//! user message, the export made by the failed call removed).

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::VolumeManager;
use crate::config::{BackendConfig, Config};
use crate::db::volumes::NewVolume;
use crate::db::{testing, Db};
use crate::drivers::{
    ConnectionInfo, Connector, DriverError, ModelUpdate, SnapshotRef, VolumeDriver, VolumeRef,
};
use crate::rpc::RequestContext;
use crate::scheduler::placement::{CreateArgs, RequestSpec};
use crate::service::Runtime;

const POOL: &str = "node1@file#file";

struct Rig {
    db: Db,
    mgr: VolumeManager,
    volumes: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let (db, dir) = testing::sqlite().await;
    let volumes = dir.path().join("volumes");
    let mut config = Config {
        host: "node1".into(),
        ..Default::default()
    };
    config.backends.insert(
        "file".into(),
        BackendConfig {
            path: Some(volumes.clone()),
            ..Default::default()
        },
    );
    let rt = Runtime {
        db: db.clone(),
        transport: Arc::new(crate::rpc::inproc::InProcTransport::new()),
        config: Arc::new(ArcSwap::from_pointee(config)),
    };
    db.quota_update("p1", &[("gigabytes".to_string(), -1)].into())
        .await
        .unwrap();
    let mgr = VolumeManager::new(&rt, "file").unwrap();
    mgr.driver().await.do_setup().await.unwrap();
    Rig {
        db,
        mgr,
        volumes,
        _dir: dir,
    }
}

impl Rig {
    /// A volume recorded by the API (quota charged) and placed here.
    async fn placed(&self, size: i64, source: Option<&str>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let new = NewVolume {
            id: id.clone(),
            project_id: "p1".into(),
            user_id: "u1".into(),
            size,
            availability_zone: "nova".into(),
            source_volid: source.map(String::from),
            ..Default::default()
        };
        self.db
            .volume_create_charged(&new, &[("volumes", 1), ("gigabytes", size)])
            .await
            .unwrap();
        self.db
            .volume_place(
                &id,
                POOL,
                size,
                crate::db::placement::PoolLimit { capacity_gb: None },
            )
            .await
            .unwrap()
            .unwrap();
        id
    }

    async fn create(&self, id: &str, size: u64) {
        let args = CreateArgs {
            request_spec: RequestSpec {
                volume_id: id.into(),
                project_id: "p1".into(),
                size,
                operation: "create".into(),
                ..Default::default()
            },
            retry: Default::default(),
        };
        self.mgr
            .create_volume(&RequestContext::internal(), args)
            .await
            .unwrap();
    }

    fn file(&self, id: &str) -> std::path::PathBuf {
        self.volumes.join(format!("volume-{id}"))
    }

    async fn status(&self, id: &str) -> String {
        self.db.volume_get(id).await.unwrap().status
    }

    /// (volumes, gigabytes) in use by p1.
    async fn usage(&self) -> (i64, i64) {
        let u = self.db.quota_get_with_usage("p1").await.unwrap();
        (u["volumes"].in_use, u["gigabytes"].in_use)
    }

    async fn messages(&self, id: &str) -> Vec<String> {
        use sqlx::Row;
        sqlx::query("SELECT detail FROM messages WHERE resource_uuid = $1")
            .bind(id)
            .fetch_all(self.db.reader())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect()
    }
}

/// More GiB than ext4 (or any filesystem here) lets one file grow to: the file driver makes
/// the file, then fails to size it.
const TOO_BIG: i64 = 1 << 24;

#[tokio::test]
async fn a_failed_clone_is_reverted_data_quota_and_status_and_its_delete_releases_nothing_twice() {
    let r = rig().await;
    let src = r.placed(1, None).await;
    r.create(&src, 1).await;
    assert_eq!(r.status(&src).await, "available");
    std::fs::write(r.file(&src), b"source data").unwrap();
    assert_eq!(r.usage().await, (1, 1));

    // The copy is made, then growing it to the clone's size fails: a partly made volume.
    let clone = r.placed(TOO_BIG, Some(&src)).await;
    assert_eq!(r.usage().await, (2, 1 + TOO_BIG));
    r.create(&clone, TOO_BIG as u64).await;
    assert_eq!(r.status(&clone).await, "error");
    assert!(!r.file(&clone).exists(), "the partly made clone is deleted");
    assert!(r.file(&src).exists(), "the source is untouched");
    assert_eq!(r.usage().await, (1, 1), "the clone's quota is given back");
    let row = r.db.volume_get(&clone).await.unwrap();
    assert!(!row.use_quota, "the errored volume no longer counts");
    let m = r.messages(&clone).await.join("\n");
    assert!(m.contains("cannot copy"), "{m}");

    // A repeated delivery of the create changes nothing.
    r.create(&clone, TOO_BIG as u64).await;
    assert_eq!(r.status(&clone).await, "error");
    assert!(!r.file(&clone).exists());

    // Deleting the errored volume releases no quota a second time.
    r.db.volume_destroy(&clone).await.unwrap();
    assert_eq!(r.usage().await, (1, 1));
    r.db.volume_destroy(&src).await.unwrap();
    assert_eq!(r.usage().await, (0, 0));
}

#[tokio::test]
async fn a_failed_raw_create_is_reverted_and_sent_back_to_the_scheduler() {
    let r = rig().await;
    let id = r.placed(TOO_BIG, None).await;
    r.create(&id, TOO_BIG as u64).await;
    let row = r.db.volume_get(&id).await.unwrap();
    assert_eq!(
        (row.status.as_str(), row.host.as_deref()),
        ("creating", None),
        "unplaced for the scheduler, still creating"
    );
    assert!(!r.file(&id).exists(), "the partly made volume is deleted");
    assert_eq!(
        r.usage().await,
        (1, TOO_BIG),
        "the quota stays with the volume"
    );
}

#[tokio::test]
async fn a_repeated_create_never_overwrites_a_settled_volume() {
    let r = rig().await;
    // Created, then a second delivery: still available, the data untouched.
    let done = r.placed(1, None).await;
    r.create(&done, 1).await;
    std::fs::write(r.file(&done), b"data").unwrap();
    r.create(&done, 1).await;
    assert_eq!(r.status(&done).await, "available");
    assert_eq!(std::fs::read(r.file(&done)).unwrap(), b"data");

    // Settled as error or being deleted before the delivery: the driver is not called.
    for status in ["error", "deleting"] {
        let id = r.placed(1, None).await;
        assert!(r
            .db
            .volume_settle_status(&id, &["creating"], status)
            .await
            .unwrap());
        r.create(&id, 1).await;
        assert_eq!(r.status(&id).await, status);
        assert!(!r.file(&id).exists(), "{status}: nothing made");
    }

    // A create already running here (the claim is held): a second delivery does nothing.
    let busy = r.placed(1, None).await;
    let claim = r.mgr.claim(&busy).unwrap();
    r.create(&busy, 1).await;
    assert_eq!(r.status(&busy).await, "creating");
    assert!(!r.file(&busy).exists());
    drop(claim);
    r.create(&busy, 1).await;
    assert_eq!(r.status(&busy).await, "available");

    // Recorded only from `creating`.
    assert!(!r.db.volume_created(&busy, None, None).await.unwrap());
    assert!(r
        .db
        .volume_settle_status(&busy, &["available"], "error")
        .await
        .unwrap());
    assert!(!r.db.volume_created(&busy, None, None).await.unwrap());
    assert_eq!(r.status(&busy).await, "error");
}

#[tokio::test]
async fn a_create_interrupted_by_a_crash_is_settled_at_start_and_nothing_is_left() {
    let r = rig().await;
    let id = r.placed(2, None).await;
    // What a crash mid-create leaves: the row `creating` here, part of the data on disk.
    std::fs::write(r.file(&id), b"half").unwrap();
    let row = r.db.volume_get(&id).await.unwrap();
    let ctx = RequestContext::internal();
    // Not while a create of it runs in this process.
    let claim = r.mgr.claim(&id).unwrap();
    assert!(!r.mgr.settle_interrupted_create(&ctx, &row).await.unwrap());
    drop(claim);
    assert!(r.mgr.settle_interrupted_create(&ctx, &row).await.unwrap());
    assert_eq!(r.status(&id).await, "error");
    assert!(!r.file(&id).exists(), "the partial data is removed");
    assert_eq!(r.usage().await, (0, 0));
    assert!(r
        .messages(&id)
        .await
        .join("\n")
        .contains("was being created when the volume service node1@file stopped"));
    // Once only.
    assert!(!r.mgr.settle_interrupted_create(&ctx, &row).await.unwrap());
    assert_eq!(r.messages(&id).await.len(), 1);
    // A create delivered after the restart finds it settled.
    r.create(&id, 2).await;
    assert_eq!(r.status(&id).await, "error");
    assert!(!r.file(&id).exists());
}

/// The file driver whose connection step fails after the export was made, counting the
/// exports made and removed.
struct ConnectFails {
    inner: crate::drivers::file::FileDriver,
    exports: Arc<std::sync::atomic::AtomicI32>,
}

#[async_trait::async_trait]
impl VolumeDriver for ConnectFails {
    async fn do_setup(&self) -> Result<(), DriverError> {
        self.inner.do_setup().await
    }
    async fn get_volume_stats(&self) -> Result<crate::drivers::BackendStats, DriverError> {
        self.inner.get_volume_stats().await
    }
    async fn create_volume(&self, v: &VolumeRef) -> Result<ModelUpdate, DriverError> {
        self.inner.create_volume(v).await
    }
    async fn create_volume_from_snapshot(
        &self,
        v: &VolumeRef,
        s: &SnapshotRef,
    ) -> Result<ModelUpdate, DriverError> {
        self.inner.create_volume_from_snapshot(v, s).await
    }
    async fn create_cloned_volume(
        &self,
        v: &VolumeRef,
        src: &VolumeRef,
    ) -> Result<ModelUpdate, DriverError> {
        self.inner.create_cloned_volume(v, src).await
    }
    async fn delete_volume(&self, v: &VolumeRef) -> Result<(), DriverError> {
        self.inner.delete_volume(v).await
    }
    async fn create_snapshot(&self, s: &SnapshotRef) -> Result<ModelUpdate, DriverError> {
        self.inner.create_snapshot(s).await
    }
    async fn delete_snapshot(&self, s: &SnapshotRef) -> Result<(), DriverError> {
        self.inner.delete_snapshot(s).await
    }
    async fn extend_volume(&self, v: &VolumeRef, new_size_gb: u64) -> Result<(), DriverError> {
        self.inner.extend_volume(v, new_size_gb).await
    }
    async fn create_export(
        &self,
        _v: &VolumeRef,
        _c: &Connector,
    ) -> Result<ModelUpdate, DriverError> {
        self.exports
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(ModelUpdate::default())
    }
    async fn ensure_export(&self, _v: &VolumeRef) -> Result<(), DriverError> {
        Err(DriverError::Backend {
            backend: "file".into(),
            message: "target daemon unreachable".into(),
        })
    }
    async fn remove_export(&self, _v: &VolumeRef) -> Result<(), DriverError> {
        self.exports
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    async fn initialize_connection(
        &self,
        _v: &VolumeRef,
        _c: &Connector,
    ) -> Result<ConnectionInfo, DriverError> {
        Err(DriverError::Backend {
            backend: "file".into(),
            message: "no portal answers".into(),
        })
    }
    async fn terminate_connection(
        &self,
        _v: &VolumeRef,
        _c: &Connector,
    ) -> Result<(), DriverError> {
        Ok(())
    }
}

impl Rig {
    /// Put `driver` in place of the configured one.
    fn with_driver(mut self, driver: Box<dyn VolumeDriver>) -> Self {
        self.mgr.slot = super::driver_slot::DriverSlot::new(
            driver,
            super::driver_swap::configured_active(&BackendConfig::default()),
        );
        self
    }
}

#[tokio::test]
async fn a_failed_connection_tells_the_owner_and_removes_the_export_it_made() {
    let r = rig().await;
    let id = r.placed(1, None).await;
    r.create(&id, 1).await;
    let exports = Arc::new(std::sync::atomic::AtomicI32::new(0));
    let inner = crate::drivers::file::FileDriver::new(
        &r.mgr.rt.config(),
        "file",
        &r.mgr.rt.config().backends["file"],
    );
    let r = r.with_driver(Box::new(ConnectFails {
        inner,
        exports: exports.clone(),
    }));
    let args = super::ConnectArgs {
        volume_id: id.clone(),
        connector: Connector {
            host: "compute1".into(),
            ..Default::default()
        },
        access_mode: "rw".into(),
    };
    let err = r
        .mgr
        .initialize_connection(&RequestContext::internal(), args)
        .await
        .unwrap_err();
    assert!(err.message.contains("no portal answers"), "{}", err.message);
    assert_eq!(
        exports.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the export made by the failed call is removed"
    );
    let m = r.messages(&id).await.join("\n");
    assert!(
        m.contains("the connection of volume") && m.contains("for host compute1 failed"),
        "{m}"
    );
}

#[tokio::test]
async fn an_export_that_cannot_be_re_ensured_at_start_is_told_to_the_owner() {
    let r = rig().await;
    let id = r.placed(1, None).await;
    r.create(&id, 1).await;
    r.db.volume_set_attach_state(&id, "in-use", "attached")
        .await
        .unwrap();
    let inner = crate::drivers::file::FileDriver::new(
        &r.mgr.rt.config(),
        "file",
        &r.mgr.rt.config().backends["file"],
    );
    let r = r.with_driver(Box::new(ConnectFails {
        inner,
        exports: Default::default(),
    }));
    let done = r.mgr.recover().await.unwrap();
    assert_eq!(done.export_failures, 1);
    let m = r.messages(&id).await.join("\n");
    assert!(
        m.contains("could not be re-created when the volume service node1@file started")
            && m.contains("target daemon unreachable"),
        "{m}"
    );
}

#[tokio::test]
async fn a_create_the_scheduler_cannot_be_sent_is_errored_with_a_message_and_its_quota_back() {
    // The API's path when the cast to the scheduler fails (here: refused locally by the
    // version cap, as for a scheduler too old to serve it).
    let r = rig().await;
    let id = uuid::Uuid::new_v4().to_string();
    let new = NewVolume {
        id: id.clone(),
        project_id: "p1".into(),
        user_id: "u1".into(),
        size: 3,
        availability_zone: "nova".into(),
        ..Default::default()
    };
    r.db.volume_create_charged(&new, &[("volumes", 1), ("gigabytes", 3)])
        .await
        .unwrap();
    let st = crate::api::AppState {
        rt: r.mgr.rt.clone(),
        scheduler: crate::scheduler::SchedulerApi::new(&r.mgr.rt),
        volume: super::VolumeApi::new(&r.mgr.rt),
        zones: Default::default(),
    };
    st.scheduler
        .client()
        .set_version_cap(Some(crate::rpc::Version::new(3, 0)));
    let ctx = RequestContext::internal();
    let args = CreateArgs {
        request_spec: RequestSpec {
            volume_id: id.clone(),
            project_id: "p1".into(),
            size: 3,
            ..Default::default()
        },
        retry: Default::default(),
    };
    let sent = st.scheduler.create_volume(&ctx, &args).await.unwrap_err();
    let answer =
        crate::api::volumes::scheduler_unreachable(&st, &ctx, &id, "p1", &sent.to_string()).await;
    assert!(
        matches!(answer, crate::api::ApiError::Unavailable(_)),
        "{answer:?}"
    );
    assert_eq!(r.status(&id).await, "error");
    assert_eq!(r.usage().await, (0, 0), "its quota is given back");
    let m = r.messages(&id).await.join("\n");
    assert!(m.contains("the scheduler could not be reached"), "{m}");
}
