//! The volume service's driver slot: the backend's one driver behind a fair (write-preferring)
//! read-write lock, so it can be replaced while the service runs (driver hot swap).
//!
//! Every operation takes a read guard for one driver call (`VolumeManager::driver()`); a swap
//! first validates the candidate off the lock (`do_setup`, then `get_volume_stats`: a
//! candidate that fails never stops the old driver serving), then takes the write side: new
//! operations queue behind it, operations in flight finish, the activation is recorded, the
//! driver is replaced, and the queued operations resume on the new one. A drain that takes
//! longer than its timeout gives up, and the old driver keeps serving.
//!
//! Rule for callers: hold a guard for one driver call and never ask for a second guard while
//! holding one — with a swap queued, the second would wait behind it (the drain timeout then
//! ends the swap, not the operation).

use std::future::Future;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock, RwLockReadGuard};
use tracing::{info, warn};

use crate::db::DbError;
use crate::drivers::{BackendStats, DriverError, VolumeDriver};

/// A read guard on the backend's driver: the driver cannot be swapped while it is held.
pub type DriverGuard<'a> = RwLockReadGuard<'a, Box<dyn VolumeDriver>>;

/// What a backend serves with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveDriver {
    /// For people: `configured qemu_img_driver`, `qemu_img_driver_v2 (sha256:0123456789ab)`.
    pub label: String,
    /// The uploaded component; `None`: the driver configured for the backend.
    pub component_sha256: Option<String>,
    /// The `driver_version` of its stats (empty until validated).
    pub driver_version: String,
}

/// Why a swap did not happen. The old driver keeps serving in every case.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("backend {backend} runs the native `{driver}` driver; only backends with driver = \"wasm\" can swap their driver")]
    NotWasm { backend: String, driver: String },
    #[error(
        "component {sha256} is not uploaded; upload it first (POST /kiln-plugins?kind=driver)"
    )]
    UnknownComponent { sha256: String },
    #[error("component {sha256} was uploaded as a {kind}, not as a driver")]
    WrongKind { sha256: String, kind: String },
    #[error("the new driver cannot be loaded: {0}; the old driver keeps serving")]
    Load(DriverError),
    #[error("the new driver failed validation in {step}: {source}; the old driver keeps serving")]
    Validation {
        step: &'static str,
        source: DriverError,
    },
    #[error("operations in flight on {backend} did not finish within {timeout_s} s; the old driver keeps serving")]
    DrainTimeout { backend: String, timeout_s: u64 },
    #[error("backend {backend} has no earlier driver to roll back to")]
    NoPrevious { backend: String },
    #[error("cannot record the driver activation: {0}; the old driver keeps serving")]
    Db(#[from] DbError),
    #[error("{0}")]
    Internal(String),
}

impl SwapError {
    /// The RPC error kind: the caller's request was refused (`BadRequest`), the backend is
    /// busy (`Conflict`), or something broke on our side (`HandlerError`).
    pub fn kind(&self) -> &'static str {
        match self {
            SwapError::DrainTimeout { .. } => "Conflict",
            SwapError::Db(_) | SwapError::Internal(_) => "HandlerError",
            _ => "BadRequest",
        }
    }
}

/// Timings of a completed swap.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwapTimings {
    /// Validation of the candidate (old driver serving meanwhile).
    pub validate_ms: f64,
    /// Waiting for operations in flight (new operations queued).
    pub drain_ms: f64,
    /// Recording and replacing, with operations paused.
    pub paused_ms: f64,
}

/// The backend's driver, replaceable at run time.
pub struct DriverSlot {
    driver: RwLock<Box<dyn VolumeDriver>>,
    active: std::sync::Mutex<ActiveDriver>,
    /// One swap at a time.
    swapping: Mutex<()>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl DriverSlot {
    pub fn new(driver: Box<dyn VolumeDriver>, active: ActiveDriver) -> Self {
        DriverSlot {
            driver: RwLock::new(driver),
            active: std::sync::Mutex::new(active),
            swapping: Mutex::new(()),
        }
    }

    /// A guard on the current driver (waits while a swap is draining or replacing).
    pub async fn get(&self) -> DriverGuard<'_> {
        self.driver.read().await
    }

    /// What the backend serves with now.
    pub fn active(&self) -> ActiveDriver {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replace the driver outright, before the service takes requests (start-up).
    pub async fn replace(&self, driver: Box<dyn VolumeDriver>, active: ActiveDriver) {
        *self.driver.write().await = driver;
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) = active;
    }

    /// Validate `candidate`, drain, `record` the activation (given the candidate's stats),
    /// then make it the driver. On any failure the old driver stays.
    pub async fn swap<R, Fut>(
        &self,
        backend: &str,
        candidate: Box<dyn VolumeDriver>,
        mut active: ActiveDriver,
        drain_timeout: Duration,
        record: R,
    ) -> Result<(ActiveDriver, SwapTimings), SwapError>
    where
        R: FnOnce(BackendStats) -> Fut,
        Fut: Future<Output = Result<(), SwapError>>,
    {
        let _one_at_a_time = self.swapping.lock().await;
        let started = Instant::now();
        let stats = validate(candidate.as_ref()).await?;
        active.driver_version = stats.driver_version.clone();
        let validated = Instant::now();
        let mut slot = match tokio::time::timeout(drain_timeout, self.driver.write()).await {
            Ok(slot) => slot,
            Err(_) => {
                warn!(
                    backend,
                    timeout_s = drain_timeout.as_secs(),
                    "driver swap: drain timed out; old driver kept"
                );
                return Err(SwapError::DrainTimeout {
                    backend: backend.to_string(),
                    timeout_s: drain_timeout.as_secs(),
                });
            }
        };
        let drained = Instant::now();
        record(stats).await?;
        *slot = candidate;
        let previous = std::mem::replace(
            &mut *self.active.lock().unwrap_or_else(|e| e.into_inner()),
            active.clone(),
        );
        drop(slot);
        let timings = SwapTimings {
            validate_ms: ms(validated - started),
            drain_ms: ms(drained - validated),
            paused_ms: ms(drained.elapsed()),
        };
        info!(backend, from = %previous.label, to = %active.label,
            driver_version = %active.driver_version, validate_ms = timings.validate_ms,
            drain_ms = timings.drain_ms, paused_ms = timings.paused_ms, "driver swapped");
        Ok((previous, timings))
    }
}

/// A candidate must set up and answer stats before it may serve.
async fn validate(candidate: &dyn VolumeDriver) -> Result<BackendStats, SwapError> {
    candidate
        .do_setup()
        .await
        .map_err(|source| SwapError::Validation {
            step: "do_setup",
            source,
        })?;
    candidate
        .get_volume_stats()
        .await
        .map_err(|source| SwapError::Validation {
            step: "get_volume_stats",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::{ConnectionInfo, Connector, ModelUpdate, SnapshotRef, VolumeRef};
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A driver whose create takes `delay` and which reports `version`; `setup_fails` makes
    /// do_setup fail.
    struct Fake {
        version: &'static str,
        delay: Duration,
        setup_fails: bool,
        creates: Arc<AtomicUsize>,
    }

    fn fake(version: &'static str, delay_ms: u64) -> Box<Fake> {
        Box::new(Fake {
            version,
            delay: Duration::from_millis(delay_ms),
            setup_fails: false,
            creates: Arc::default(),
        })
    }

    fn not_supported(what: &str) -> DriverError {
        DriverError::NotSupported {
            backend: "b".into(),
            what: what.into(),
        }
    }

    #[async_trait]
    impl VolumeDriver for Fake {
        async fn do_setup(&self) -> Result<(), DriverError> {
            if self.setup_fails {
                return Err(DriverError::Backend {
                    backend: "b".into(),
                    message: "no image directory".into(),
                });
            }
            Ok(())
        }
        async fn get_volume_stats(&self) -> Result<BackendStats, DriverError> {
            Ok(BackendStats {
                volume_backend_name: "b".into(),
                vendor_name: "test".into(),
                driver_version: self.version.into(),
                storage_protocol: "file".into(),
                pools: vec![],
            })
        }
        async fn create_volume(&self, _v: &VolumeRef) -> Result<ModelUpdate, DriverError> {
            tokio::time::sleep(self.delay).await;
            self.creates.fetch_add(1, Ordering::SeqCst);
            Ok(ModelUpdate {
                provider_location: Some(self.version.into()),
                ..Default::default()
            })
        }
        async fn create_volume_from_snapshot(
            &self,
            _v: &VolumeRef,
            _s: &SnapshotRef,
        ) -> Result<ModelUpdate, DriverError> {
            Err(not_supported("snapshots"))
        }
        async fn create_cloned_volume(
            &self,
            _v: &VolumeRef,
            _s: &VolumeRef,
        ) -> Result<ModelUpdate, DriverError> {
            Err(not_supported("clones"))
        }
        async fn delete_volume(&self, _v: &VolumeRef) -> Result<(), DriverError> {
            Ok(())
        }
        async fn create_snapshot(&self, _s: &SnapshotRef) -> Result<ModelUpdate, DriverError> {
            Err(not_supported("snapshots"))
        }
        async fn delete_snapshot(&self, _s: &SnapshotRef) -> Result<(), DriverError> {
            Err(not_supported("snapshots"))
        }
        async fn extend_volume(&self, _v: &VolumeRef, _n: u64) -> Result<(), DriverError> {
            Err(not_supported("extend"))
        }
        async fn create_export(
            &self,
            _v: &VolumeRef,
            _c: &Connector,
        ) -> Result<ModelUpdate, DriverError> {
            Err(not_supported("export"))
        }
        async fn ensure_export(&self, _v: &VolumeRef) -> Result<(), DriverError> {
            Ok(())
        }
        async fn remove_export(&self, _v: &VolumeRef) -> Result<(), DriverError> {
            Ok(())
        }
        async fn initialize_connection(
            &self,
            _v: &VolumeRef,
            _c: &Connector,
        ) -> Result<ConnectionInfo, DriverError> {
            Err(not_supported("attach"))
        }
        async fn terminate_connection(
            &self,
            _v: &VolumeRef,
            _c: &Connector,
        ) -> Result<(), DriverError> {
            Ok(())
        }
    }

    fn active(label: &str) -> ActiveDriver {
        ActiveDriver {
            label: label.into(),
            component_sha256: None,
            driver_version: String::new(),
        }
    }

    async fn create(slot: &DriverSlot) -> String {
        let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
        let upd = slot.get().await.create_volume(&v).await.unwrap();
        upd.provider_location.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_swap_drains_in_flight_calls_and_queues_new_ones() {
        let old = fake("1", 300);
        let old_creates = old.creates.clone();
        let slot = Arc::new(DriverSlot::new(old, active("v1")));
        // Two slow creates in flight on the old driver.
        let in_flight: Vec<_> = (0..2)
            .map(|_| {
                let s = slot.clone();
                tokio::spawn(async move { create(&s).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let s = slot.clone();
        let swap = tokio::spawn(async move {
            s.swap(
                "b",
                fake("2", 0),
                active("v2"),
                Duration::from_secs(5),
                |_| async { Ok(()) },
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Asked for while the swap drains: waits, then runs on the new driver.
        let queued = create(&slot).await;
        let (previous, timings) = swap.await.unwrap().unwrap();
        for t in in_flight {
            assert_eq!(
                t.await.unwrap(),
                "1",
                "in-flight calls finish on the old driver"
            );
        }
        assert_eq!(
            queued, "2",
            "a call queued behind the swap runs on the new one"
        );
        assert_eq!(old_creates.load(Ordering::SeqCst), 2);
        assert_eq!(previous.label, "v1");
        assert_eq!(slot.active().label, "v2");
        assert_eq!(slot.active().driver_version, "2");
        assert!(timings.drain_ms >= 150.0, "{timings:?}");
        assert_eq!(create(&slot).await, "2");
    }

    #[tokio::test]
    async fn a_candidate_failing_validation_or_recording_leaves_the_old_driver() {
        let slot = DriverSlot::new(fake("1", 0), active("v1"));
        let mut bad = fake("2", 0);
        bad.setup_fails = true;
        let err = slot
            .swap("b", bad, active("v2"), Duration::from_secs(1), |_| async {
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                SwapError::Validation {
                    step: "do_setup",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("old driver keeps serving"),
            "{err}"
        );
        assert_eq!(err.kind(), "BadRequest");
        let err = slot
            .swap(
                "b",
                fake("3", 0),
                active("v3"),
                Duration::from_secs(1),
                |_| async { Err(SwapError::Internal("db down".into())) },
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "HandlerError");
        assert_eq!(create(&slot).await, "1");
        assert_eq!(slot.active().label, "v1");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_drain_that_takes_too_long_gives_up_and_releases_the_queue() {
        let slot = Arc::new(DriverSlot::new(fake("1", 1500), active("v1")));
        let s = slot.clone();
        let long = tokio::spawn(async move { create(&s).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = slot
            .swap(
                "b",
                fake("2", 0),
                active("v2"),
                Duration::from_millis(200),
                |_| async { Ok(()) },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, SwapError::DrainTimeout { .. }), "{err}");
        assert_eq!(err.kind(), "Conflict");
        // Not stuck behind the abandoned swap.
        let quick = tokio::time::timeout(Duration::from_millis(100), slot.get()).await;
        assert!(
            quick.is_ok(),
            "readers must not wait behind an abandoned swap"
        );
        drop(quick);
        assert_eq!(long.await.unwrap(), "1");
        assert_eq!(slot.active().label, "v1");
    }
}
