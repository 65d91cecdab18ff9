//! Chain definitions: which filters and weighers place volumes, in which order, with which
//! multipliers and settings — the presets seeded from Cinder's schedulers, and the building of
//! a live [`Chain`] of WASM stages from a definition and the current pool table.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kiln_plugin_sdk::PoolTable;
use serde::{Deserialize, Serialize};

use crate::plugins::builtin;
use crate::plugins::chain::WasmStage;
use crate::plugins::{
    Chain, FailurePolicy, Limits, LoadedPlugin, PluginEngine, PluginError, PluginKind,
};

/// One stage of a chain definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageSpec {
    /// The plugin: a builtin's name (`capacity_filter`) or `sha256:<hex>` of an uploaded
    /// component.
    pub plugin: String,
    /// Weighers: the factor applied to the normalised weight (negative prefers low raw weights).
    #[serde(default = "one")]
    pub multiplier: f64,
    /// The plugin's own settings (its `config` import).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

fn one() -> f64 {
    1.0
}

/// An ordered chain: filters, then weighers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainSpec {
    pub name: String,
    pub filters: Vec<StageSpec>,
    pub weighers: Vec<StageSpec>,
}

/// Names of the presets, for messages.
pub const PRESETS: &[&str] = &["default", "chance", "simple"];

fn stage(plugin: &str, multiplier: f64) -> StageSpec {
    StageSpec {
        plugin: plugin.into(),
        multiplier,
        config: BTreeMap::new(),
    }
}

/// A preset chain: `default` is Cinder's FilterScheduler defaults (AvailabilityZone, Capacity
/// and Capabilities filters; Capacity weigher); `chance` and `simple` seed Cinder 001's
/// ChanceScheduler (a random pool that passes) and SimpleScheduler (the fewest volumes)
/// behind the same filters.
pub fn preset(name: &str) -> Option<ChainSpec> {
    let filters = vec![
        stage("availability_zone_filter", 1.0),
        stage("capacity_filter", 1.0),
        stage("capabilities_filter", 1.0),
    ];
    let weighers = match name {
        "default" => vec![stage("capacity_weigher", 1.0)],
        "chance" => vec![stage("chance_weigher", 1.0)],
        "simple" => vec![stage("volume_number_weigher", -1.0)],
        _ => return None,
    };
    Some(ChainSpec {
        name: name.into(),
        filters,
        weighers,
    })
}

/// Components a chain names by content hash (`sha256:<hex>` stages): kind and bytes,
/// fetched from the database by the caller.
pub type Components = HashMap<String, (PluginKind, Vec<u8>)>;

/// The sha256 of each stage that names an uploaded component.
pub fn uploaded(spec: &ChainSpec) -> Vec<String> {
    spec.filters
        .iter()
        .chain(&spec.weighers)
        .filter_map(|s| s.plugin.strip_prefix("sha256:").map(String::from))
        .collect()
}

/// Every plugin of `spec`, loaded (compiled once per engine, cached on disk): the slow half of
/// building a chain, done without holding the scheduler's lock.
pub fn load_all(
    engine: &Arc<PluginEngine>,
    spec: &ChainSpec,
    components: &Components,
) -> Result<Vec<(Arc<LoadedPlugin>, PluginKind, f64)>, PluginError> {
    let mut out = Vec::new();
    for (stages, kind) in [
        (&spec.filters, PluginKind::Filter),
        (&spec.weighers, PluginKind::Weigher),
    ] {
        for s in stages {
            out.push((load(engine, s, kind, components)?, kind, s.multiplier));
        }
    }
    Ok(out)
}

/// A live chain of `loaded` over `table`: each plugin instantiated and fully synchronised
/// (fast: microseconds per instance, milliseconds for a large table).
pub fn assemble(
    loaded: &[(Arc<LoadedPlugin>, PluginKind, f64)],
    table: &PoolTable,
) -> Result<Chain, PluginError> {
    let mut chain = Chain::new(table.clone());
    for (plugin, kind, multiplier) in loaded {
        let stage = Box::new(WasmStage::new(plugin.clone(), table)?);
        match kind {
            PluginKind::Filter => chain.add_filter(stage, FailurePolicy::FailClosed),
            PluginKind::Weigher => chain.add_weigher(stage, *multiplier, FailurePolicy::FailOpen),
        }
    }
    Ok(chain)
}

/// Build a live chain for `spec` over `table` in one go (tests, benchmarks).
pub fn build(
    engine: &Arc<PluginEngine>,
    spec: &ChainSpec,
    table: &PoolTable,
    components: &Components,
) -> Result<Chain, PluginError> {
    assemble(&load_all(engine, spec, components)?, table)
}

fn load(
    engine: &Arc<PluginEngine>,
    s: &StageSpec,
    kind: PluginKind,
    components: &Components,
) -> Result<Arc<LoadedPlugin>, PluginError> {
    let mismatch = |got: PluginKind| PluginError::Instantiate {
        plugin: s.plugin.clone(),
        reason: format!("is a {got:?}, listed as a {kind:?}"),
    };
    if let Some(sha) = s.plugin.strip_prefix("sha256:") {
        let (got, bytes) = components
            .get(sha)
            .ok_or_else(|| PluginError::Instantiate {
                plugin: s.plugin.clone(),
                reason: "no uploaded component with this hash; upload it first".into(),
            })?;
        if *got != kind {
            return Err(mismatch(*got));
        }
        return LoadedPlugin::load(
            engine,
            &s.plugin,
            bytes,
            kind,
            Limits::default(),
            s.config.clone(),
        );
    }
    let b = builtin::get(&s.plugin).ok_or_else(|| PluginError::Instantiate {
        plugin: s.plugin.clone(),
        reason: format!(
            "neither a builtin nor `sha256:<hash>` of an uploaded component; builtins: {}",
            builtin::BUILTINS
                .iter()
                .map(|b| b.file)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })?;
    if b.kind != kind {
        return Err(mismatch(b.kind));
    }
    LoadedPlugin::load(
        engine,
        b.file,
        b.bytes,
        kind,
        Limits::default(),
        s.config.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_names_builtins_of_the_right_kind() {
        for name in PRESETS {
            let spec = preset(name).unwrap();
            for (stages, kind) in [
                (&spec.filters, PluginKind::Filter),
                (&spec.weighers, PluginKind::Weigher),
            ] {
                for s in stages {
                    let b = builtin::get(&s.plugin)
                        .unwrap_or_else(|| panic!("{name}: {} missing", s.plugin));
                    assert_eq!(b.kind, kind, "{name}: {}", s.plugin);
                }
            }
        }
        assert!(preset("nope").is_none());
    }
}
