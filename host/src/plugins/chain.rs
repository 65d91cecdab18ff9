//! A chain: filters, then weighers, run over a request's candidate pools. The chain holds the
//! authoritative pool table and forwards every change to each stage as deltas, so a request
//! crosses into each plugin with just the request and the candidates' ids. A stage whose
//! instance fails is replaced by a fresh instance, fully resynchronised, before the next
//! request; the failure itself is settled by the stage's [`FailurePolicy`].
//!
//! Weights are combined as Cinder does: each weigher's raw weights are normalised to [0, 1]
//! over the candidates (all equal → 0; ±inf mapped just past the finite range), multiplied by
//! the weigher's multiplier and summed; the highest total wins.

use std::sync::Arc;

use kiln_plugin_sdk::{self as sdk, PoolDelta, PoolTable, Request, Verdict};

use super::{FailurePolicy, LoadedPlugin, PluginError, PluginInstance};

/// One step of a chain: a WASM plugin, or the same logic run natively.
pub trait Stage: Send {
    fn name(&self) -> &str;
    /// Apply `deltas`; `table` is the chain's table after them (for a resync).
    fn sync(&mut self, deltas: &[PoolDelta], table: &PoolTable) -> Result<(), PluginError>;
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

/// A pool a filter removed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Removal {
    pub filter: String,
    pub pool: u32,
    pub reason: String,
}

/// The outcome of one request.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// Surviving pools with their total weight, best first.
    pub weighed: Vec<(u32, f64)>,
    /// Pools removed, by which filter and why, in filter order.
    pub removed: Vec<Removal>,
    /// Plugin failures met on the way (already settled by their policies).
    pub failures: Vec<PluginError>,
}

impl Decision {
    /// The chosen pool, if any survived.
    pub fn best(&self) -> Option<u32> {
        self.weighed.first().map(|(id, _)| *id)
    }
}

struct FilterSlot {
    stage: Box<dyn Stage>,
    policy: FailurePolicy,
}

struct WeigherSlot {
    stage: Box<dyn Stage>,
    multiplier: f64,
    policy: FailurePolicy,
}

/// Filters and weighers over one pool table.
#[derive(Default)]
pub struct Chain {
    table: PoolTable,
    filters: Vec<FilterSlot>,
    weighers: Vec<WeigherSlot>,
}

impl Chain {
    pub fn new(table: PoolTable) -> Self {
        Chain {
            table,
            filters: Vec::new(),
            weighers: Vec::new(),
        }
    }

    pub fn table(&self) -> &PoolTable {
        &self.table
    }

    pub fn add_filter(&mut self, stage: Box<dyn Stage>, policy: FailurePolicy) {
        self.filters.push(FilterSlot { stage, policy });
    }

    pub fn add_weigher(&mut self, stage: Box<dyn Stage>, multiplier: f64, policy: FailurePolicy) {
        self.weighers.push(WeigherSlot {
            stage,
            multiplier,
            policy,
        });
    }

    /// Names of the stages, filters first.
    pub fn stage_names(&self) -> Vec<String> {
        self.filters
            .iter()
            .map(|f| f.stage.name().to_string())
            .chain(self.weighers.iter().map(|w| w.stage.name().to_string()))
            .collect()
    }

    /// Apply pool changes to the chain's table and every stage. A stage that fails to take
    /// them is replaced and resynchronised; the error is returned for logging.
    pub fn apply(&mut self, deltas: &[PoolDelta]) -> Vec<PluginError> {
        self.table.apply(deltas.iter().cloned());
        let table = &self.table;
        let mut errors = Vec::new();
        let stages = self
            .filters
            .iter_mut()
            .map(|f| &mut f.stage)
            .chain(self.weighers.iter_mut().map(|w| &mut w.stage));
        for stage in stages {
            if let Err(e) = stage.sync(deltas, table) {
                errors.push(e);
            }
        }
        errors
    }

    /// Filter and weigh `candidates` for `request`.
    pub fn decide(&mut self, request: &Request, candidates: &[u32]) -> Decision {
        let mut decision = Decision::default();
        let mut survivors: Vec<u32> = candidates.to_vec();
        for slot in &mut self.filters {
            if survivors.is_empty() {
                break;
            }
            let verdicts = match slot.stage.filter(request, &survivors) {
                Ok(v) => v,
                Err(e) => {
                    let verdicts = match slot.policy {
                        FailurePolicy::FailClosed => {
                            vec![
                                Verdict::Reject(format!("plugin {} failed: {e}", slot.stage.name()));
                                survivors.len()
                            ]
                        }
                        FailurePolicy::FailOpen => vec![Verdict::Pass; survivors.len()],
                    };
                    tracing::warn!(plugin = slot.stage.name(), error = %e, "filter failed; policy applied, instance replaced");
                    let _ = slot.stage.recover(&self.table);
                    decision.failures.push(e);
                    verdicts
                }
            };
            let mut kept = Vec::with_capacity(survivors.len());
            for (id, verdict) in survivors.iter().zip(verdicts) {
                match verdict {
                    Verdict::Pass => kept.push(*id),
                    Verdict::Reject(reason) => decision.removed.push(Removal {
                        filter: slot.stage.name().to_string(),
                        pool: *id,
                        reason,
                    }),
                }
            }
            survivors = kept;
        }
        if survivors.is_empty() {
            return decision;
        }
        let mut totals = vec![0.0f64; survivors.len()];
        for slot in &mut self.weighers {
            match slot.stage.weigh(request, &survivors) {
                Ok(raw) => {
                    for (t, w) in totals.iter_mut().zip(normalize(&raw)) {
                        *t += slot.multiplier * w;
                    }
                }
                Err(e) => {
                    tracing::warn!(plugin = slot.stage.name(), error = %e, "weigher failed; left out of this request, instance replaced");
                    let _ = slot.stage.recover(&self.table);
                    decision.failures.push(e);
                    if slot.policy == FailurePolicy::FailClosed {
                        return decision;
                    }
                }
            }
        }
        let mut weighed: Vec<(u32, f64)> = survivors.into_iter().zip(totals).collect();
        weighed.sort_by(|a, b| b.1.total_cmp(&a.1));
        decision.weighed = weighed;
        decision
    }
}

/// Cinder's normalisation: map to [0, 1] by (w − min) / (max − min); all equal → 0. Infinite
/// weights are first replaced by a value past the finite range (Cinder's
/// CapacityWeigher offset: 100 × the finite range beyond it, or 10 000 when the range is 0).
pub fn normalize(raw: &[f64]) -> Vec<f64> {
    let finite: Vec<f64> = raw.iter().copied().filter(|w| w.is_finite()).collect();
    let (fmin, fmax) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), w| {
            (lo.min(*w), hi.max(*w))
        });
    let (fmin, fmax) = if finite.is_empty() {
        (0.0, 0.0)
    } else {
        (fmin, fmax)
    };
    let offset = if fmax - fmin == 0.0 {
        10_000.0
    } else {
        (fmax - fmin) * 100.0
    };
    let fixed: Vec<f64> = raw
        .iter()
        .map(|w| {
            if *w == f64::INFINITY {
                fmax + offset
            } else if *w == f64::NEG_INFINITY {
                fmin - offset
            } else {
                *w
            }
        })
        .collect();
    let min = fixed.iter().copied().fold(f64::INFINITY, f64::min);
    let max = fixed.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max.partial_cmp(&min) != Some(std::cmp::Ordering::Greater) {
        return vec![0.0; raw.len()];
    }
    fixed.iter().map(|w| (w - min) / (max - min)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_matches_cinder() {
        assert_eq!(normalize(&[1.0, 2.0, 3.0]), vec![0.0, 0.5, 1.0]);
        assert_eq!(normalize(&[5.0, 5.0]), vec![0.0, 0.0]);
        assert_eq!(normalize(&[]), Vec::<f64>::new());
        let n = normalize(&[1.0, f64::INFINITY, 3.0]);
        assert_eq!(n[1], 1.0, "infinite capacity ranks first");
        assert!(n[2] < 0.02 && n[2] > 0.0);
        let n = normalize(&[f64::INFINITY, f64::INFINITY]);
        assert_eq!(n, vec![0.0, 0.0]);
    }
}
