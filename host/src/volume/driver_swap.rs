//! Driver hot swap on a volume service (the slot itself is [`super::driver_slot`]):
//! - `swap_driver` (RPC 3.3, a call from the admin API): load an uploaded `driver` component
//!   with the backend's settings and the manifest given (else the configured one), validate,
//!   drain, record the activation in `backend_drivers`, swap, report capabilities at once;
//! - `rollback_driver`: the same to the previous activation (the configured driver when the
//!   history has none);
//! - at start-up ([`VolumeManager::init_driver`]): the database's active driver for this
//!   backend, so a restart keeps a swapped driver; one that no longer loads falls back to the
//!   configured driver, and the fallback is recorded so the database tells the truth.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{error, info};

use super::driver_slot::{ActiveDriver, SwapError, SwapTimings};
use super::{VolumeApi, VolumeManager};
use crate::db::backend_drivers::BackendDriverRow;
use crate::drivers::{self, VolumeDriver};
use crate::plugins::driver::WasmDriver;
use crate::rpc::{RemoteError, RequestContext, RpcError, Version};

/// Default time a swap waits for operations in flight.
pub const DEFAULT_DRAIN_TIMEOUT_S: u64 = 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwapArgs {
    /// The uploaded component (hex sha256).
    pub component_sha256: String,
    /// Exec manifest (TOML) for it; `None`: the backend's configured manifest.
    #[serde(default)]
    pub manifest: Option<String>,
    pub drain_timeout_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackArgs {
    pub drain_timeout_s: u64,
}

/// What a swap or rollback did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwapOutcome {
    pub backend: String,
    pub active: ActiveDriver,
    pub previous: ActiveDriver,
    pub timings: SwapTimings,
}

/// Validation and drain have their own limits; the call waits for both.
fn call_timeout(drain_timeout_s: u64) -> Duration {
    Duration::from_secs(drain_timeout_s + 120)
}

impl VolumeApi {
    /// Swap the driver of `backend` (`host@backend`) to an uploaded component.
    pub async fn swap_driver(
        &self,
        ctx: &RequestContext,
        backend: &str,
        args: &SwapArgs,
    ) -> Result<SwapOutcome, RpcError> {
        self.client
            .call_with_timeout(
                ctx,
                Some(backend),
                "swap_driver",
                Version::new(3, 5),
                args,
                call_timeout(args.drain_timeout_s),
            )
            .await
    }

    /// Return `backend` to the driver active before the current one.
    pub async fn rollback_driver(
        &self,
        ctx: &RequestContext,
        backend: &str,
        args: &RollbackArgs,
    ) -> Result<SwapOutcome, RpcError> {
        self.client
            .call_with_timeout(
                ctx,
                Some(backend),
                "rollback_driver",
                Version::new(3, 5),
                args,
                call_timeout(args.drain_timeout_s),
            )
            .await
    }
}

fn remote(e: SwapError) -> RemoteError {
    RemoteError::new(e.kind(), e.to_string())
}

/// What a backend serves with before any swap: its configured driver.
pub(crate) fn configured_active(settings: &crate::config::BackendConfig) -> ActiveDriver {
    ActiveDriver {
        label: label(settings.plugin.as_deref().unwrap_or(&settings.driver), None),
        component_sha256: None,
        driver_version: String::new(),
    }
}

/// A label for people: `configured qemu_img_driver`, `name (sha256:0123456789ab)`.
fn label(name: &str, sha: Option<&str>) -> String {
    match sha {
        Some(sha) => format!("{name} (sha256:{})", &sha[..sha.len().min(12)]),
        None => format!("configured {name}"),
    }
}

impl VolumeManager {
    fn settings(&self) -> crate::config::BackendConfig {
        self.rt
            .config()
            .backends
            .get(&self.backend)
            .cloned()
            .unwrap_or_default()
    }

    /// Build the driver of an activation: an uploaded component (with `manifest`), or the
    /// configured driver. Compiling runs on a blocking thread.
    async fn build_driver(
        &self,
        sha: Option<&str>,
        manifest: Option<&str>,
    ) -> Result<(Box<dyn VolumeDriver>, ActiveDriver), SwapError> {
        let config = self.rt.config();
        let settings = self.settings();
        let backend = self.backend.clone();
        let Some(sha) = sha else {
            let active = configured_active(&settings);
            let driver =
                tokio::task::spawn_blocking(move || drivers::build(&config, &backend, &settings))
                    .await
                    .map_err(|e| SwapError::Internal(e.to_string()))?
                    .map_err(SwapError::Load)?;
            return Ok((driver, active));
        };
        if settings.driver != "wasm" {
            return Err(SwapError::NotWasm {
                backend: self.host.clone(),
                driver: settings.driver.clone(),
            });
        }
        let component = match self.rt.db.component_with_bytes(sha).await {
            Ok(c) => c,
            Err(crate::db::DbError::NotFound(_)) => {
                return Err(SwapError::UnknownComponent {
                    sha256: sha.to_string(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        if component.kind != "driver" {
            return Err(SwapError::WrongKind {
                sha256: sha.to_string(),
                kind: component.kind,
            });
        }
        let active = ActiveDriver {
            label: label(&component.name, Some(sha)),
            component_sha256: Some(sha.to_string()),
            driver_version: String::new(),
        };
        let manifest = manifest.map(String::from);
        let driver = tokio::task::spawn_blocking(move || {
            let runner = Arc::new(drivers::exec::TokioRunner::default());
            let target = crate::targets::build(&config, &backend, &settings, runner)?;
            WasmDriver::from_upload(
                &backend,
                &settings,
                target,
                &component.name,
                &component.bytes,
                manifest.as_deref(),
            )
        })
        .await
        .map_err(|e| SwapError::Internal(e.to_string()))?
        .map_err(SwapError::Load)?;
        Ok((Box::new(driver), active))
    }

    /// Make the activation `(sha, manifest)` live: validate, drain, record, swap.
    async fn activate_driver(
        &self,
        sha: Option<&str>,
        manifest: Option<&str>,
        drain_timeout_s: u64,
    ) -> Result<SwapOutcome, SwapError> {
        let (candidate, active) = self.build_driver(sha, manifest).await?;
        let db = self.rt.db.clone();
        let host = self.host.clone();
        let (previous, timings) = self
            .slot
            .swap(
                &self.host,
                candidate,
                active,
                Duration::from_secs(drain_timeout_s),
                |stats| async move {
                    db.backend_driver_activate(&host, sha, manifest, &stats.driver_version)
                        .await?;
                    Ok(())
                },
            )
            .await?;
        // The schedulers see the new driver's stats (its driver_version) at once.
        if let Err(e) = self.report_capabilities().await {
            tracing::warn!(host = %self.host, error = %e, "capability report after a driver swap failed; the next periodic report retries");
        }
        Ok(SwapOutcome {
            backend: self.host.clone(),
            active: self.slot.active(),
            previous,
            timings,
        })
    }

    /// RPC `swap_driver`.
    pub(crate) async fn swap_driver(&self, args: SwapArgs) -> Result<SwapOutcome, RemoteError> {
        info!(host = %self.host, component = %args.component_sha256, "driver swap requested");
        self.activate_driver(
            Some(&args.component_sha256),
            args.manifest.as_deref(),
            args.drain_timeout_s,
        )
        .await
        .map_err(|e| {
            tracing::warn!(host = %self.host, error = %e, "driver swap refused");
            remote(e)
        })
    }

    /// RPC `rollback_driver`: the newest earlier activation that differs from the current
    /// one, else the configured driver.
    pub(crate) async fn rollback_driver(
        &self,
        args: RollbackArgs,
    ) -> Result<SwapOutcome, RemoteError> {
        let history = self
            .rt
            .db
            .backend_driver_history(&self.host)
            .await
            .map_err(|e| remote(e.into()))?;
        let target: Option<BackendDriverRow> = match history.first() {
            None => None,
            Some(current) => history
                .iter()
                .skip(1)
                .find(|r| !r.same_driver(current))
                .cloned(),
        };
        let (sha, manifest) = match (&target, history.first()) {
            (Some(row), _) => (row.component_sha256.clone(), row.manifest.clone()),
            (None, Some(current)) if current.component_sha256.is_some() => (None, None),
            _ => {
                return Err(remote(SwapError::NoPrevious {
                    backend: self.host.clone(),
                }))
            }
        };
        info!(host = %self.host, to = ?sha, "driver rollback requested");
        self.activate_driver(sha.as_deref(), manifest.as_deref(), args.drain_timeout_s)
            .await
            .map_err(|e| {
                tracing::warn!(host = %self.host, error = %e, "driver rollback refused");
                remote(e)
            })
    }

    /// Start-up: serve with the driver the database records for this backend (else the
    /// configured one), then `do_setup`.
    pub(crate) async fn init_driver(&self) -> Result<(), String> {
        let recorded = self
            .rt
            .db
            .backend_driver_active(&self.host)
            .await
            .map_err(|e| e.to_string())?;
        let mut fell_back = false;
        if let Some(row) = recorded.filter(|r| r.component_sha256.is_some()) {
            match self
                .build_driver(row.component_sha256.as_deref(), row.manifest.as_deref())
                .await
            {
                Ok((driver, mut active)) => {
                    active.driver_version = row.driver_version.clone();
                    info!(host = %self.host, driver = %active.label, "serving with the recorded driver");
                    self.slot.replace(driver, active).await;
                }
                Err(e) => {
                    error!(host = %self.host, component = ?row.component_sha256, error = %e,
                        "the recorded driver cannot be loaded; falling back to the configured driver");
                    fell_back = true;
                }
            }
        }
        self.driver()
            .await
            .do_setup()
            .await
            .map_err(|e| e.to_string())?;
        if fell_back {
            let stats = self
                .driver()
                .await
                .get_volume_stats()
                .await
                .map_err(|e| e.to_string())?;
            self.rt
                .db
                .backend_driver_activate(&self.host, None, None, &stats.driver_version)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
