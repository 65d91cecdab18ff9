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

use kiln_plugin_sdk::{PoolDelta, PoolTable, Request, Verdict};

pub use super::stage::{full_sync, NativeFilter, NativeWeigher, Stage, WasmStage};
use super::{FailurePolicy, PluginError};

/// A pool a filter removed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Removal {
    pub filter: Arc<str>,
    pub pool: u32,
    /// The filter's reason; `None` until the decision is explained (see [`Explain`]).
    pub reason: Option<String>,
}

/// When a decision carries the reason for every removed pool. Reasons cost a call per
/// filter that formats a string per rejected pool, so the per-request path skips them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Explain {
    /// Only when no pool is left (the user's "no valid backend" message needs them).
    IfNoneLeft,
    /// Always (dry runs, shadow comparisons).
    Always,
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
    name: Arc<str>,
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
        self.filters.push(FilterSlot {
            name: Arc::from(stage.name()),
            stage,
            policy,
        });
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

    /// Filter and weigh `candidates` for `request`, explaining removals when no pool is left.
    pub fn decide(&mut self, request: &Request, candidates: &[u32]) -> Decision {
        self.decide_with(request, candidates, Explain::IfNoneLeft)
    }

    /// Filter and weigh `candidates` for `request`; `explain` says when removals get reasons.
    pub fn decide_with(
        &mut self,
        request: &Request,
        candidates: &[u32],
        explain: Explain,
    ) -> Decision {
        let mut decision = Decision::default();
        // Per filter, the range of `decision.removed` it produced.
        let mut spans = Vec::with_capacity(self.filters.len());
        let mut survivors: Vec<u32> = candidates.to_vec();
        for slot in &mut self.filters {
            let first = decision.removed.len();
            if !survivors.is_empty() {
                survivors = run_filter(
                    slot,
                    &self.table,
                    request,
                    survivors,
                    explain,
                    &mut decision,
                );
            }
            spans.push(first..decision.removed.len());
        }
        if survivors.is_empty() {
            if explain == Explain::IfNoneLeft {
                self.explain(request, &spans, &mut decision);
            }
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

    /// Ask each filter why it removed the pools of its span (the table has not changed since
    /// the decision, so the answers are the decision's).
    fn explain(
        &mut self,
        request: &Request,
        spans: &[std::ops::Range<usize>],
        decision: &mut Decision,
    ) {
        for (slot, span) in self.filters.iter_mut().zip(spans) {
            let removals = &mut decision.removed[span.clone()];
            if removals.is_empty() || removals[0].reason.is_some() {
                continue;
            }
            let ids: Vec<u32> = removals.iter().map(|r| r.pool).collect();
            let verdicts = slot.stage.filter(request, &ids);
            if verdicts.is_err() {
                let _ = slot.stage.recover(&self.table);
            }
            for (i, removal) in removals.iter_mut().enumerate() {
                removal.reason = Some(match verdicts.as_ref().map(|v| v.get(i)) {
                    Ok(Some(Verdict::Reject(why))) => why.clone(),
                    Ok(_) => format!("rejected, but {} gave no reason", slot.name),
                    Err(e) => format!("rejected; asking {} why failed: {e}", slot.name),
                });
            }
        }
    }
}

/// Run one filter over `survivors`, recording removals; returns the pools it kept.
fn run_filter(
    slot: &mut FilterSlot,
    table: &PoolTable,
    request: &Request,
    survivors: Vec<u32>,
    explain: Explain,
    decision: &mut Decision,
) -> Vec<u32> {
    let verdicts: Result<Vec<Option<String>>, PluginError> = match explain {
        Explain::Always => slot.stage.filter(request, &survivors).map(|v| {
            v.into_iter()
                .map(|v| match v {
                    Verdict::Pass => None,
                    Verdict::Reject(why) => Some(why),
                })
                .collect()
        }),
        // `Some(None)`: rejected, reason not asked for yet.
        Explain::IfNoneLeft => slot
            .stage
            .accept(request, &survivors)
            .map(|v| v.into_iter().map(|ok| (!ok).then(String::new)).collect()),
    };
    let verdicts = match verdicts {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(plugin = %slot.name, error = %e, "filter failed; policy applied, instance replaced");
            let _ = slot.stage.recover(table);
            let settled = match slot.policy {
                FailurePolicy::FailClosed => Some(format!("plugin {} failed: {e}", slot.name)),
                FailurePolicy::FailOpen => None,
            };
            decision.failures.push(e);
            let mut kept = Vec::new();
            for id in survivors {
                match &settled {
                    Some(why) => decision.removed.push(Removal {
                        filter: slot.name.clone(),
                        pool: id,
                        reason: Some(why.clone()),
                    }),
                    None => kept.push(id),
                }
            }
            return kept;
        }
    };
    let mut kept = Vec::with_capacity(survivors.len());
    for (id, rejected) in survivors.into_iter().zip(verdicts) {
        match rejected {
            None => kept.push(id),
            Some(why) => decision.removed.push(Removal {
                filter: slot.name.clone(),
                pool: id,
                reason: (explain == Explain::Always).then_some(why),
            }),
        }
    }
    kept
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
    use kiln_plugin_sdk::{Capacity, Pool};

    fn pool(id: u32, zone: &str) -> Pool {
        Pool {
            id,
            backend: format!("h@b{id}"),
            pool: "p".into(),
            host: "h".into(),
            availability_zone: zone.into(),
            total_capacity_gb: Capacity::Gb(100.0),
            free_capacity_gb: Capacity::Gb(100.0),
            allocated_capacity_gb: 0.0,
            provisioned_capacity_gb: 0.0,
            reserved_percentage: 0,
            max_over_subscription_ratio: 1.0,
            thin_provisioning_support: false,
            thick_provisioning_support: true,
            total_volumes: 0,
            multiattach: false,
            filter_function: None,
            goodness_function: None,
            capabilities: Default::default(),
        }
    }

    fn zone_chain() -> Chain {
        let mut table = PoolTable::new();
        table.apply([
            PoolDelta::Upsert(pool(0, "az1")),
            PoolDelta::Upsert(pool(1, "az2")),
            PoolDelta::Upsert(pool(2, "az2")),
        ]);
        let mut chain = Chain::new(table.clone());
        chain.add_filter(
            Box::new(NativeFilter::<kiln_default_plugins::AvailabilityZoneFilter>::new(&table)),
            FailurePolicy::FailClosed,
        );
        chain.add_weigher(
            Box::new(NativeWeigher::<kiln_default_plugins::CapacityWeigher>::new(
                &table,
            )),
            1.0,
            FailurePolicy::FailOpen,
        );
        chain
    }

    fn in_zone(zone: &str) -> Request {
        Request {
            size_gb: 1,
            availability_zones: vec![zone.into()],
            ..Default::default()
        }
    }

    #[test]
    fn removals_are_explained_only_when_no_pool_is_left_or_asked_for() {
        let mut chain = zone_chain();
        let d = chain.decide(&in_zone("az1"), &[0, 1, 2]);
        assert_eq!(d.best(), Some(0));
        assert_eq!(d.removed.len(), 2);
        assert!(
            d.removed.iter().all(|r| r.reason.is_none()),
            "a placed request skips the reasons: {:?}",
            d.removed
        );

        let d = chain.decide(&in_zone("az9"), &[0, 1, 2]);
        assert!(d.weighed.is_empty());
        let reasons: Vec<_> = d.removed.iter().map(|r| r.reason.clone()).collect();
        assert_eq!(
            reasons,
            vec![
                Some("in availability zone az1, not az9".to_string()),
                Some("in availability zone az2, not az9".to_string()),
                Some("in availability zone az2, not az9".to_string()),
            ],
            "no pool left: every removal says why"
        );
        assert!(d
            .removed
            .iter()
            .all(|r| &*r.filter == "AvailabilityZoneFilter"));

        let d = chain.decide_with(&in_zone("az1"), &[0, 1, 2], Explain::Always);
        assert_eq!(d.best(), Some(0));
        assert!(
            d.removed.iter().all(|r| r.reason.is_some()),
            "{:?}",
            d.removed
        );
    }

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
