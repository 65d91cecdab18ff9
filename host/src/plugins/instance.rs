//! One loaded plugin ([`LoadedPlugin`]: compiled component, `InstancePre`, limits, settings)
//! and its live instances ([`PluginInstance`]: a `Store` with the instantiated world). Every
//! call runs under an epoch deadline and a memory cap; a trap, a timeout or a malformed result
//! becomes a typed [`PluginError`], and the instance that produced it must be replaced (the
//! chain does that), since a trapped component instance cannot be entered again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_plugin_sdk as sdk;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Store, Trap};

use super::bindings::{self, filter_world, weigher_world, HostState, MemoryCap};
use super::engine::{PluginEngine, EPOCH_TICK};
use super::{PluginError, PluginKind, PluginStats};

/// Per-plugin limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Deadline of one filter / weigh call.
    pub call_deadline: Duration,
    /// Deadline of one pool-sync call (a full sync of many pools takes longer).
    pub sync_deadline: Duration,
    /// Cap on the instance's linear memory.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_deadline: Duration::from_millis(50),
            sync_deadline: Duration::from_secs(2),
            memory_bytes: 64 << 20,
        }
    }
}

enum Pre {
    Filter(filter_world::FilterPre<HostState>),
    Weigher(weigher_world::WeigherPre<HostState>),
}

enum Bound {
    Filter(filter_world::Filter),
    Weigher(weigher_world::Weigher),
}

/// A compiled, linked and validated plugin, ready to instantiate.
pub struct LoadedPlugin {
    /// The name the plugin gives itself ("CapacityFilter").
    pub name: String,
    pub kind: PluginKind,
    /// sha256 of the component.
    pub hash: String,
    pub limits: Limits,
    pub config: BTreeMap<String, String>,
    pub stats: Arc<PluginStats>,
    /// This plugin's call-latency histogram, looked up once (not per call).
    call_seconds: prometheus::Histogram,
    engine: Arc<PluginEngine>,
    pre: Pre,
}

impl LoadedPlugin {
    /// Compile (or load from cache), link against the host imports of `kind`'s world, and
    /// check the component is of that world by instantiating it once and asking its name.
    /// `label` names the plugin in errors until it has told its own name.
    pub fn load(
        engine: &Arc<PluginEngine>,
        label: &str,
        bytes: &[u8],
        kind: PluginKind,
        limits: Limits,
        config: BTreeMap<String, String>,
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        let component = engine.load(label, bytes)?;
        let wrong_world = |e: wasmtime::Error| PluginError::WrongWorld {
            plugin: label.to_string(),
            world: kind.world(),
            reason: format!("{e:#}"),
        };
        let mut linker = Linker::<HostState>::new(engine.engine());
        // Only log and config: a component importing anything else (WASI included) fails here.
        filter_world::Filter::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(wrong_world)?;
        let pre = linker.instantiate_pre(&component).map_err(wrong_world)?;
        let pre = match kind {
            PluginKind::Filter => {
                Pre::Filter(filter_world::FilterPre::new(pre).map_err(wrong_world)?)
            }
            PluginKind::Weigher => {
                Pre::Weigher(weigher_world::WeigherPre::new(pre).map_err(wrong_world)?)
            }
        };
        let mut plugin = LoadedPlugin {
            name: label.to_string(),
            kind,
            hash: super::engine::content_hash(bytes),
            limits,
            config,
            stats: Arc::new(PluginStats::default()),
            call_seconds: crate::metrics::plugin_call_histogram(label),
            engine: engine.clone(),
            pre,
        };
        let mut trial = PluginInstance::new(&Arc::new(plugin.shallow_clone()))?;
        let name = trial.name()?;
        if name.is_empty() || name.len() > 64 {
            return Err(PluginError::BadResult {
                plugin: label.to_string(),
                reason: format!("name `{name}` must be 1 to 64 characters"),
            });
        }
        plugin.call_seconds = crate::metrics::plugin_call_histogram(&name);
        plugin.name = name;
        Ok(Arc::new(plugin))
    }

    fn shallow_clone(&self) -> LoadedPlugin {
        LoadedPlugin {
            name: self.name.clone(),
            kind: self.kind,
            hash: self.hash.clone(),
            limits: self.limits,
            config: self.config.clone(),
            stats: self.stats.clone(),
            call_seconds: self.call_seconds.clone(),
            engine: self.engine.clone(),
            pre: match &self.pre {
                Pre::Filter(p) => Pre::Filter(p.clone()),
                Pre::Weigher(p) => Pre::Weigher(p.clone()),
            },
        }
    }
}

/// A live instance of a plugin, with its own pool table inside.
pub struct PluginInstance {
    plugin: Arc<LoadedPlugin>,
    store: Store<HostState>,
    bound: Bound,
}

/// Epoch ticks for a deadline of `d` (at least one tick, plus one for the tick in progress).
pub(crate) fn ticks(d: Duration) -> u64 {
    (d.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
}

impl PluginInstance {
    /// Instantiate from the plugin's `InstancePre` (an empty pool table: sync it next).
    pub fn new(plugin: &Arc<LoadedPlugin>) -> Result<PluginInstance, PluginError> {
        let state = HostState {
            plugin: plugin.name.clone(),
            config: plugin.config.clone(),
            limiter: MemoryCap {
                max_bytes: plugin.limits.memory_bytes,
                hit: false,
            },
        };
        let mut store = Store::new(plugin.engine.engine(), state);
        store.limiter(|s| &mut s.limiter);
        // Instantiation runs start functions and copies data segments: megabytes for an
        // interpreter (a Python component), so it gets the sync deadline, not a call's.
        store.set_epoch_deadline(ticks(plugin.limits.sync_deadline));
        let inst_err = |e: wasmtime::Error| PluginError::Instantiate {
            plugin: plugin.name.clone(),
            reason: format!("{e:#}"),
        };
        let bound = match &plugin.pre {
            Pre::Filter(p) => Bound::Filter(p.instantiate(&mut store).map_err(inst_err)?),
            Pre::Weigher(p) => Bound::Weigher(p.instantiate(&mut store).map_err(inst_err)?),
        };
        plugin
            .stats
            .instantiations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(PluginInstance {
            plugin: plugin.clone(),
            store,
            bound,
        })
    }

    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// Run `f` under `deadline`, classifying failures.
    fn guarded<R>(
        &mut self,
        deadline: Duration,
        f: impl FnOnce(&mut Store<HostState>, &Bound) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        self.store.set_epoch_deadline(ticks(deadline));
        self.store.data_mut().limiter.hit = false;
        let started = Instant::now();
        let result = f(&mut self.store, &self.bound);
        let stats = &self.plugin.stats;
        let took = started.elapsed();
        stats.record_call(took);
        self.plugin.call_seconds.observe(took.as_secs_f64());
        result.map_err(|e| {
            let plugin = self.plugin.name.clone();
            let err = if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
                PluginError::Timeout {
                    plugin,
                    deadline_ms: deadline.as_millis() as u64,
                }
            } else if self.store.data().limiter.hit {
                PluginError::MemoryExceeded {
                    plugin,
                    cap_mib: (self.plugin.limits.memory_bytes >> 20) as u64,
                }
            } else {
                PluginError::Trap {
                    plugin,
                    reason: format!("{e:#}"),
                }
            };
            stats.record_failure(&err);
            err
        })
    }

    pub fn name(&mut self) -> Result<String, PluginError> {
        let deadline = self.plugin.limits.call_deadline;
        self.guarded(deadline, |store, bound| match bound {
            Bound::Filter(b) => b.call_name(store),
            Bound::Weigher(b) => b.call_name(store),
        })
    }

    /// Apply pool deltas inside the instance.
    pub fn sync(&mut self, deltas: &[sdk::PoolDelta]) -> Result<(), PluginError> {
        let deltas: Vec<_> = deltas.iter().map(bindings::delta).collect();
        let deadline = self.plugin.limits.sync_deadline;
        self.guarded(deadline, |store, bound| match bound {
            Bound::Filter(b) => b.kiln_plugin_pool_sync().call_apply(store, &deltas),
            Bound::Weigher(b) => b.kiln_plugin_pool_sync().call_apply(store, &deltas),
        })
    }

    /// How many pools the instance holds.
    pub fn pool_count(&mut self) -> Result<u32, PluginError> {
        let deadline = self.plugin.limits.call_deadline;
        self.guarded(deadline, |store, bound| match bound {
            Bound::Filter(b) => b.kiln_plugin_pool_sync().call_pool_count(store),
            Bound::Weigher(b) => b.kiln_plugin_pool_sync().call_pool_count(store),
        })
    }

    /// A verdict per candidate (filters only).
    pub fn filter(
        &mut self,
        request: &sdk::Request,
        candidates: &[u32],
    ) -> Result<Vec<sdk::Verdict>, PluginError> {
        let req = bindings::request(request);
        let deadline = self.plugin.limits.call_deadline;
        let verdicts = self.guarded(deadline, |store, bound| match bound {
            Bound::Filter(b) => b.call_filter(store, &req, candidates),
            Bound::Weigher(_) => Err(wasmtime::Error::msg("a weigher cannot filter")),
        })?;
        if verdicts.len() != candidates.len() {
            let err = PluginError::BadResult {
                plugin: self.plugin.name.clone(),
                reason: format!(
                    "returned {} verdicts for {} candidates",
                    verdicts.len(),
                    candidates.len()
                ),
            };
            self.plugin.stats.record_failure(&err);
            return Err(err);
        }
        Ok(verdicts.into_iter().map(bindings::verdict).collect())
    }

    /// Pass or not per candidate, without reasons (filters only): the per-request path.
    pub fn accept(
        &mut self,
        request: &sdk::Request,
        candidates: &[u32],
    ) -> Result<Vec<bool>, PluginError> {
        let req = bindings::request(request);
        let deadline = self.plugin.limits.call_deadline;
        let accepted = self.guarded(deadline, |store, bound| match bound {
            Bound::Filter(b) => b.call_accept(store, &req, candidates),
            Bound::Weigher(_) => Err(wasmtime::Error::msg("a weigher cannot filter")),
        })?;
        if accepted.len() != candidates.len() {
            let err = PluginError::BadResult {
                plugin: self.plugin.name.clone(),
                reason: format!(
                    "returned {} verdicts for {} candidates",
                    accepted.len(),
                    candidates.len()
                ),
            };
            self.plugin.stats.record_failure(&err);
            return Err(err);
        }
        Ok(accepted)
    }

    /// A raw weight per candidate (weighers only).
    pub fn weigh(
        &mut self,
        request: &sdk::Request,
        candidates: &[u32],
    ) -> Result<Vec<f64>, PluginError> {
        let req = bindings::request(request);
        let deadline = self.plugin.limits.call_deadline;
        let weights = self.guarded(deadline, |store, bound| match bound {
            Bound::Weigher(b) => b.call_weigh(store, &req, candidates),
            Bound::Filter(_) => Err(wasmtime::Error::msg("a filter cannot weigh")),
        })?;
        let bad = if weights.len() != candidates.len() {
            Some(format!(
                "returned {} weights for {} candidates",
                weights.len(),
                candidates.len()
            ))
        } else {
            weights
                .iter()
                .position(|w| w.is_nan())
                .map(|i| format!("returned NaN for pool {}", candidates[i]))
        };
        if let Some(reason) = bad {
            let err = PluginError::BadResult {
                plugin: self.plugin.name.clone(),
                reason,
            };
            self.plugin.stats.record_failure(&err);
            return Err(err);
        }
        Ok(weights)
    }
}
