//! The stages a chain runs: the [`Stage`] trait, a WASM plugin instance as a stage
//! ([`WasmStage`]: replaced and resynchronised after a failure), and the same logic compiled
//! natively ([`NativeFilter`], [`NativeWeigher`]) for comparisons, tests and benchmarks.

use std::sync::Arc;

use kiln_plugin_sdk::{self as sdk, PoolDelta, PoolTable, Request, Verdict};

use super::{LoadedPlugin, PluginError, PluginInstance};

/// One step of a chain: a WASM plugin, or the same logic run natively.
pub trait Stage: Send {
    fn name(&self) -> &str;
    /// Apply `deltas`; `table` is the chain's table after them (for a resync).
    fn sync(&mut self, deltas: &[PoolDelta], table: &PoolTable) -> Result<(), PluginError>;
    /// Pass or not per candidate, without reasons: the per-request path.
    fn accept(&mut self, request: &Request, candidates: &[u32]) -> Result<Vec<bool>, PluginError>;
    /// A verdict with its reason per candidate: asked only to explain a decision.
    fn filter(
        &mut self,
        request: &Request,
        candidates: &[u32],
    ) -> Result<Vec<Verdict>, PluginError>;
    fn weigh(&mut self, request: &Request, candidates: &[u32]) -> Result<Vec<f64>, PluginError>;
    /// Replace the instance after a failure and resync it from `table`.
    fn recover(&mut self, table: &PoolTable) -> Result<(), PluginError>;
}

/// The deltas that rebuild a plugin's table from scratch.
pub fn full_sync(table: &PoolTable) -> Vec<PoolDelta> {
    let mut pools: Vec<_> = table.iter().cloned().collect();
    pools.sort_by_key(|p| p.id);
    std::iter::once(PoolDelta::Clear)
        .chain(pools.into_iter().map(PoolDelta::Upsert))
        .collect()
}

/// A stage backed by a WASM plugin instance.
pub struct WasmStage {
    plugin: Arc<LoadedPlugin>,
    instance: Option<PluginInstance>,
}

impl WasmStage {
    /// Instantiate `plugin` and give it every pool of `table`.
    pub fn new(plugin: Arc<LoadedPlugin>, table: &PoolTable) -> Result<Self, PluginError> {
        let mut stage = WasmStage {
            plugin,
            instance: None,
        };
        stage.recover(table)?;
        Ok(stage)
    }

    fn live(&mut self) -> Result<&mut PluginInstance, PluginError> {
        self.instance
            .as_mut()
            .ok_or_else(|| PluginError::Instantiate {
                plugin: self.plugin.name.clone(),
                reason: "no live instance (the last replacement failed)".into(),
            })
    }
}

impl Stage for WasmStage {
    fn name(&self) -> &str {
        &self.plugin.name
    }

    fn sync(&mut self, deltas: &[PoolDelta], table: &PoolTable) -> Result<(), PluginError> {
        let result = match self.live() {
            Ok(i) => i.sync(deltas),
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.instance = None;
            self.recover(table)?;
        }
        Ok(())
    }

    fn accept(&mut self, request: &Request, candidates: &[u32]) -> Result<Vec<bool>, PluginError> {
        let result = self.live()?.accept(request, candidates);
        if result.is_err() {
            self.instance = None;
        }
        result
    }

    fn filter(
        &mut self,
        request: &Request,
        candidates: &[u32],
    ) -> Result<Vec<Verdict>, PluginError> {
        let result = self.live()?.filter(request, candidates);
        if result.is_err() {
            self.instance = None;
        }
        result
    }

    fn weigh(&mut self, request: &Request, candidates: &[u32]) -> Result<Vec<f64>, PluginError> {
        let result = self.live()?.weigh(request, candidates);
        if result.is_err() {
            self.instance = None;
        }
        result
    }

    fn recover(&mut self, table: &PoolTable) -> Result<(), PluginError> {
        let mut instance = PluginInstance::new(&self.plugin)?;
        instance.sync(&full_sync(table))?;
        let held = instance.pool_count()? as usize;
        if held != table.len() {
            return Err(PluginError::BadResult {
                plugin: self.plugin.name.clone(),
                reason: format!("holds {held} pools after a full sync of {}", table.len()),
            });
        }
        self.instance = Some(instance);
        Ok(())
    }
}

/// A stage running a filter's logic natively (for comparisons and tests).
pub struct NativeFilter<F: sdk::Filter> {
    logic: F,
    table: PoolTable,
}

impl<F: sdk::Filter + Send> NativeFilter<F> {
    pub fn new(table: &PoolTable) -> Self {
        NativeFilter {
            logic: F::new(),
            table: table.clone(),
        }
    }
}

impl<F: sdk::Filter + Send> Stage for NativeFilter<F> {
    fn name(&self) -> &str {
        F::NAME
    }
    fn sync(&mut self, deltas: &[PoolDelta], _table: &PoolTable) -> Result<(), PluginError> {
        self.table.apply(deltas.iter().cloned());
        Ok(())
    }
    fn accept(&mut self, request: &Request, candidates: &[u32]) -> Result<Vec<bool>, PluginError> {
        Ok(sdk::run_accept(
            &self.logic,
            &self.table,
            request,
            candidates,
        ))
    }
    fn filter(
        &mut self,
        request: &Request,
        candidates: &[u32],
    ) -> Result<Vec<Verdict>, PluginError> {
        Ok(sdk::run_filter(
            &self.logic,
            &self.table,
            request,
            candidates,
        ))
    }
    fn weigh(&mut self, _r: &Request, candidates: &[u32]) -> Result<Vec<f64>, PluginError> {
        Ok(vec![0.0; candidates.len()])
    }
    fn recover(&mut self, table: &PoolTable) -> Result<(), PluginError> {
        self.table = table.clone();
        Ok(())
    }
}

/// A stage running a weigher's logic natively.
pub struct NativeWeigher<W: sdk::Weigher> {
    logic: W,
    table: PoolTable,
}

impl<W: sdk::Weigher + Send> NativeWeigher<W> {
    pub fn new(table: &PoolTable) -> Self {
        NativeWeigher {
            logic: W::new(),
            table: table.clone(),
        }
    }
}

impl<W: sdk::Weigher + Send> Stage for NativeWeigher<W> {
    fn name(&self) -> &str {
        W::NAME
    }
    fn sync(&mut self, deltas: &[PoolDelta], _table: &PoolTable) -> Result<(), PluginError> {
        self.table.apply(deltas.iter().cloned());
        Ok(())
    }
    fn accept(&mut self, _r: &Request, candidates: &[u32]) -> Result<Vec<bool>, PluginError> {
        Ok(vec![true; candidates.len()])
    }
    fn filter(&mut self, _r: &Request, candidates: &[u32]) -> Result<Vec<Verdict>, PluginError> {
        Ok(vec![Verdict::Pass; candidates.len()])
    }
    fn weigh(&mut self, request: &Request, candidates: &[u32]) -> Result<Vec<f64>, PluginError> {
        Ok(sdk::run_weigher(
            &self.logic,
            &self.table,
            request,
            candidates,
        ))
    }
    fn recover(&mut self, table: &PoolTable) -> Result<(), PluginError> {
        self.table = table.clone();
        Ok(())
    }
}
