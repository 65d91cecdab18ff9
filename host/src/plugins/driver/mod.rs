//! Third-party volume drivers as WebAssembly components of the `volume-driver` world:
//! [`WasmDriver`] implements the native [`VolumeDriver`] trait by calling the component.
//!
//! **One fresh instance per call.** The WIT contract says a driver keeps no state between
//! calls that it cannot rebuild from the backend, and calls for one backend may run
//! concurrently; instantiating from the `InstancePre` costs tens of microseconds, nothing next
//! to the commands a driver runs. A fresh instance per call gives concurrency without locks,
//! no state leaking from one volume's call into another's, and makes "a trapped instance is
//! discarded" automatic: every instance is dropped after its one call.
//!
//! Each call runs the synchronous wasm call on a blocking thread (`spawn_blocking`) under the
//! plugin's [`Limits`]: an epoch deadline on the time spent *in the guest* (time inside host
//! imports — commands, target operations — is not charged; commands have their own
//! deadlines from the manifest) and a memory cap. Traps, timeouts and the memory cap become
//! [`DriverError::Backend`] naming the plugin, the operation and the reason; the plugin's own
//! `driver-error`s map onto the matching [`DriverError`] variants. No WASI: the linker offers
//! only `log`, `config`, `exec` and `target`.

pub mod host_impl;
mod source;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Store, Trap, UpdateDeadline};

use self::host_impl::{wit, DriverState, VolumeDriver as World, VolumeDriverPre};
use super::bindings::{HostState, MemoryCap};
use super::exec::{Exec, Manifest};
use super::instance::ticks;
use super::{PluginEngine, PluginError, PluginStats};
use crate::drivers::{
    BackendStats, ConnectionInfo, Connector, DriverError, ModelUpdate, SnapshotRef, VolumeDriver,
    VolumeRef,
};
use crate::plugins::Limits;
use crate::targets::TargetHelper;

/// Default limits of a driver call: guest time (not counting commands) and memory.
pub const DEFAULT_LIMITS: Limits = Limits {
    call_deadline: Duration::from_secs(2),
    sync_deadline: Duration::from_secs(2),
    memory_bytes: 64 << 20,
};

/// A volume driver served by a WebAssembly component.
pub struct WasmDriver {
    inner: Arc<Inner>,
}

struct Inner {
    /// The plugin's name in messages (file stem or builtin name).
    plugin: String,
    backend: String,
    engine: Arc<PluginEngine>,
    pre: VolumeDriverPre<DriverState>,
    limits: Limits,
    config: BTreeMap<String, String>,
    exec: Arc<Exec>,
    target: Option<Arc<dyn TargetHelper>>,
    stats: Arc<PluginStats>,
}

/// The process's engine for drivers (no disk cache: a backend compiles its driver once, at
/// start-up, in tens of milliseconds).
fn shared_engine() -> Result<Arc<PluginEngine>, PluginError> {
    static ENGINE: OnceLock<Arc<PluginEngine>> = OnceLock::new();
    if let Some(e) = ENGINE.get() {
        return Ok(e.clone());
    }
    let e = PluginEngine::new(None)?;
    Ok(ENGINE.get_or_init(|| e).clone())
}

impl WasmDriver {
    /// Compile and link `bytes` as a `volume-driver` component for `backend`, with the
    /// plugin's exec `manifest` and settings. Instantiated once to check it links.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        engine: &Arc<PluginEngine>,
        backend: &str,
        plugin: &str,
        bytes: &[u8],
        manifest: Manifest,
        config: BTreeMap<String, String>,
        limits: Limits,
        target: Option<Arc<dyn TargetHelper>>,
    ) -> Result<WasmDriver, DriverError> {
        let fail = |e: PluginError| DriverError::Backend {
            backend: backend.to_string(),
            message: e.to_string(),
        };
        let component = engine.load(plugin, bytes).map_err(fail)?;
        let wrong_world = |e: wasmtime::Error| {
            fail(PluginError::WrongWorld {
                plugin: plugin.to_string(),
                world: "volume-driver",
                reason: format!("{e:#}"),
            })
        };
        let mut linker = Linker::<DriverState>::new(engine.engine());
        World::add_to_linker::<DriverState, HasSelf<DriverState>>(&mut linker, |s| s)
            .map_err(wrong_world)?;
        let pre = linker.instantiate_pre(&component).map_err(wrong_world)?;
        let pre = VolumeDriverPre::new(pre).map_err(wrong_world)?;
        let inner = Arc::new(Inner {
            plugin: plugin.to_string(),
            backend: backend.to_string(),
            engine: engine.clone(),
            pre,
            limits,
            config,
            exec: Arc::new(Exec::new(plugin, manifest)),
            target,
            stats: Arc::new(PluginStats::default()),
        });
        // Instantiating checks the exports are those of the world.
        let (mut store, _) = inner.store(tokio::runtime::Handle::try_current().ok());
        inner.pre.instantiate(&mut store).map_err(|e| {
            fail(PluginError::Instantiate {
                plugin: plugin.to_string(),
                reason: format!("{e:#}"),
            })
        })?;
        Ok(WasmDriver { inner })
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.inner.plugin
    }

    /// Calls, traps, timeouts and memory-cap hits of the plugin.
    pub fn stats(&self) -> &Arc<PluginStats> {
        &self.inner.stats
    }

    /// The plugin's exec authority: counters and recent audit records.
    pub fn exec(&self) -> &Arc<Exec> {
        &self.inner.exec
    }

    /// Run `f` on a fresh instance on a blocking thread.
    async fn call<R, F>(&self, op: &'static str, f: F) -> Result<R, DriverError>
    where
        R: Send + 'static,
        F: FnOnce(&World, &mut Store<DriverState>) -> wasmtime::Result<Result<R, wit::DriverError>>
            + Send
            + 'static,
    {
        let inner = self.inner.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || inner.call_blocking(op, runtime, f))
            .await
            .map_err(|e| DriverError::Backend {
                backend: self.inner.backend.clone(),
                message: format!("plugin {}: {op}: call aborted: {e}", self.inner.plugin),
            })?
    }

    fn name_checked<'a>(&self, v: &'a VolumeRef) -> Result<&'a VolumeRef, DriverError> {
        v.backend_name(&self.inner.backend)?;
        Ok(v)
    }
}

impl Inner {
    fn store(&self, runtime: Option<tokio::runtime::Handle>) -> (Store<DriverState>, Duration) {
        let state = DriverState {
            base: HostState {
                plugin: self.plugin.clone(),
                config: self.config.clone(),
                limiter: MemoryCap {
                    max_bytes: self.limits.memory_bytes,
                    hit: false,
                },
            },
            backend: self.backend.clone(),
            exec: self.exec.clone(),
            target: self.target.clone(),
            runtime: runtime.unwrap_or_else(fallback_runtime),
            started: Instant::now(),
            host_time: Duration::ZERO,
        };
        let mut store = Store::new(self.engine.engine(), state);
        store.limiter(|s| &mut s.base.limiter);
        let deadline = self.limits.call_deadline;
        store.set_epoch_deadline(ticks(deadline));
        // The deadline counts guest time only: when it is reached, time spent in host
        // imports (commands, target operations) is given back.
        store.epoch_deadline_callback(move |ctx| {
            let guest = ctx.data().guest_time();
            Ok(if guest >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Continue(ticks(deadline - guest))
            })
        });
        (store, deadline)
    }

    fn call_blocking<R, F>(
        &self,
        op: &'static str,
        runtime: tokio::runtime::Handle,
        f: F,
    ) -> Result<R, DriverError>
    where
        F: FnOnce(&World, &mut Store<DriverState>) -> wasmtime::Result<Result<R, wit::DriverError>>,
    {
        let (mut store, deadline) = self.store(Some(runtime));
        let started = Instant::now();
        let result = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| PluginError::Instantiate {
                plugin: self.plugin.clone(),
                reason: format!("{e:#}"),
            })
            .and_then(|world| {
                self.stats
                    .instantiations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                f(&world, &mut store).map_err(|e| self.classify(&store, deadline, e))
            });
        self.stats.record_call(started.elapsed());
        match result {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(host_impl::error_from_wit(&self.backend, &self.plugin, e)),
            Err(e) => {
                self.stats.record_failure(&e);
                tracing::warn!(plugin = %self.plugin, backend = %self.backend, op, error = %e,
                    "driver plugin failed; instance discarded");
                Err(DriverError::Backend {
                    backend: self.backend.clone(),
                    message: format!("{op}: {e}"),
                })
            }
        }
    }

    fn classify(
        &self,
        store: &Store<DriverState>,
        deadline: Duration,
        e: wasmtime::Error,
    ) -> PluginError {
        let plugin = self.plugin.clone();
        if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            PluginError::Timeout {
                plugin,
                deadline_ms: deadline.as_millis() as u64,
            }
        } else if store.data().base.limiter.hit {
            PluginError::MemoryExceeded {
                plugin,
                cap_mib: (self.limits.memory_bytes >> 20) as u64,
            }
        } else {
            PluginError::Trap {
                plugin,
                reason: format!("{e:#}"),
            }
        }
    }
}

/// A runtime for host imports when a driver is loaded outside one (only the load-time
/// instantiation, which calls no import).
fn fallback_runtime() -> tokio::runtime::Handle {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
    })
    .handle()
    .clone()
}

#[async_trait]
impl VolumeDriver for WasmDriver {
    async fn do_setup(&self) -> Result<(), DriverError> {
        self.call("do_setup", |w, s| w.kiln_plugin_driver().call_do_setup(s))
            .await
    }

    async fn get_volume_stats(&self) -> Result<BackendStats, DriverError> {
        self.call("get_volume_stats", |w, s| {
            w.kiln_plugin_driver()
                .call_get_volume_stats(s)
                .map(|r| r.map(host_impl::stats_from_wit))
        })
        .await
    }

    async fn create_volume(&self, v: &VolumeRef) -> Result<ModelUpdate, DriverError> {
        let v = host_impl::volume_to_wit(self.name_checked(v)?);
        self.call("create_volume", move |w, s| {
            w.kiln_plugin_driver()
                .call_create_volume(s, &v)
                .map(|r| r.map(host_impl::model_update_from_wit))
        })
        .await
    }

    async fn create_volume_from_snapshot(
        &self,
        v: &VolumeRef,
        snap: &SnapshotRef,
    ) -> Result<ModelUpdate, DriverError> {
        snap.backend_name(&self.inner.backend)?;
        let v = host_impl::volume_to_wit(self.name_checked(v)?);
        let snap = host_impl::snapshot_to_wit(snap);
        self.call("create_volume_from_snapshot", move |w, s| {
            w.kiln_plugin_driver()
                .call_create_volume_from_snapshot(s, &v, &snap)
                .map(|r| r.map(host_impl::model_update_from_wit))
        })
        .await
    }

    async fn create_cloned_volume(
        &self,
        v: &VolumeRef,
        src: &VolumeRef,
    ) -> Result<ModelUpdate, DriverError> {
        let v = host_impl::volume_to_wit(self.name_checked(v)?);
        let src = host_impl::volume_to_wit(self.name_checked(src)?);
        self.call("create_cloned_volume", move |w, s| {
            w.kiln_plugin_driver()
                .call_create_cloned_volume(s, &v, &src)
                .map(|r| r.map(host_impl::model_update_from_wit))
        })
        .await
    }

    async fn delete_volume(&self, v: &VolumeRef) -> Result<(), DriverError> {
        let v = host_impl::volume_to_wit(self.name_checked(v)?);
        self.call("delete_volume", move |w, s| {
            w.kiln_plugin_driver().call_delete_volume(s, &v)
        })
        .await
    }

    async fn create_snapshot(&self, snap: &SnapshotRef) -> Result<ModelUpdate, DriverError> {
        snap.backend_name(&self.inner.backend)?;
        self.name_checked(&snap.volume)?;
        let snap = host_impl::snapshot_to_wit(snap);
        self.call("create_snapshot", move |w, s| {
            w.kiln_plugin_driver()
                .call_create_snapshot(s, &snap)
                .map(|r| r.map(host_impl::model_update_from_wit))
        })
        .await
    }

    async fn delete_snapshot(&self, snap: &SnapshotRef) -> Result<(), DriverError> {
        snap.backend_name(&self.inner.backend)?;
        let snap = host_impl::snapshot_to_wit(snap);
        self.call("delete_snapshot", move |w, s| {
            w.kiln_plugin_driver().call_delete_snapshot(s, &snap)
        })
        .await
    }

    async fn extend_volume(&self, v: &VolumeRef, new_size_gb: u64) -> Result<(), DriverError> {
        let v = host_impl::volume_to_wit(self.name_checked(v)?);
        self.call("extend_volume", move |w, s| {
            w.kiln_plugin_driver()
                .call_extend_volume(s, &v, new_size_gb)
        })
        .await
    }

    async fn create_export(
        &self,
        v: &VolumeRef,
        c: &Connector,
    ) -> Result<ModelUpdate, DriverError> {
        let v = host_impl::volume_to_wit(self.name_checked(v)?);
        let c = host_impl::connector_to_wit(c);
        self.call("create_export", move |w, s| {
            w.kiln_plugin_driver()
                .call_create_export(s, &v, &c)
                .map(|r| r.map(host_impl::model_update_from_wit))
        })
        .await
    }

    async fn ensure_export(&self, v: &VolumeRef) -> Result<(), DriverError> {
        let v = host_impl::volume_to_wit(self.name_checked(v)?);
        self.call("ensure_export", move |w, s| {
            w.kiln_plugin_driver().call_ensure_export(s, &v)
        })
        .await
    }

    async fn remove_export(&self, v: &VolumeRef) -> Result<(), DriverError> {
        let v = host_impl::volume_to_wit(self.name_checked(v)?);
        self.call("remove_export", move |w, s| {
            w.kiln_plugin_driver().call_remove_export(s, &v)
        })
        .await
    }

    async fn initialize_connection(
        &self,
        v: &VolumeRef,
        c: &Connector,
    ) -> Result<ConnectionInfo, DriverError> {
        let v = host_impl::volume_to_wit(self.name_checked(v)?);
        let c = host_impl::connector_to_wit(c);
        let info = self
            .call("initialize_connection", move |w, s| {
                w.kiln_plugin_driver().call_initialize_connection(s, &v, &c)
            })
            .await?;
        host_impl::connection_info_from_wit(&self.inner.backend, &self.inner.plugin, info)
    }

    async fn terminate_connection(&self, v: &VolumeRef, c: &Connector) -> Result<(), DriverError> {
        let v = host_impl::volume_to_wit(self.name_checked(v)?);
        let c = host_impl::connector_to_wit(c);
        self.call("terminate_connection", move |w, s| {
            w.kiln_plugin_driver().call_terminate_connection(s, &v, &c)
        })
        .await
    }
    async fn local_path(&self, v: &VolumeRef) -> Result<std::path::PathBuf, DriverError> {
        self.name_checked(v)?;
        Err(DriverError::NotSupported {
            backend: self.inner.backend.clone(),
            what: "opening a volume on this host (the WIT driver interface exposes no local \
                   path, so Kiln cannot copy a WASM driver's volume data)"
                .into(),
        })
    }
}
