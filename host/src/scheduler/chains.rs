//! Chain definitions: which filters and weighers place volumes, in which order, with which
//! multipliers, settings, limits and failure policies — the presets seeded from Cinder's
//! schedulers, and the building of a live [`Chain`] of WASM stages from a definition and the
//! current pool table.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

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
    /// Deadlines and memory cap, where they differ from the defaults (an interpreter such as
    /// a Python or JavaScript component needs longer calls than compiled code).
    #[serde(default, skip_serializing_if = "StageLimits::is_default")]
    pub limits: StageLimits,
    /// What a failure of this plugin does to a request; `None`: filters fail closed, weighers
    /// fail open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

fn one() -> f64 {
    1.0
}

/// A stage's limits, each `None` for the default ([`Limits::default`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageLimits {
    /// Deadline of one `accept` / `filter` / `weigh` / `name` call, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_deadline_ms: Option<u64>,
    /// Deadline of one pool-sync call and of instantiation, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_deadline_ms: Option<u64>,
    /// Cap on the instance's linear memory, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
}

/// Bounds an operator can set a stage's limits to: a call of up to a minute (a scheduling
/// request waits for every stage), a sync of up to ten minutes, 4 GiB of memory (wasm32).
const CALL_DEADLINE_MS: std::ops::RangeInclusive<u64> = 1..=60_000;
const SYNC_DEADLINE_MS: std::ops::RangeInclusive<u64> = 1..=600_000;
const MEMORY_MIB: std::ops::RangeInclusive<u64> = 1..=4096;

impl StageLimits {
    fn is_default(&self) -> bool {
        *self == StageLimits::default()
    }

    /// The runtime limits, or what is out of range.
    pub fn resolve(&self) -> Result<Limits, String> {
        let d = Limits::default();
        let check = |what: &str, v: Option<u64>, range: std::ops::RangeInclusive<u64>| match v {
            Some(v) if !range.contains(&v) => Err(format!(
                "limits.{what} = {v} is out of range: give {} to {}",
                range.start(),
                range.end()
            )),
            _ => Ok(v),
        };
        let call = check("call_deadline_ms", self.call_deadline_ms, CALL_DEADLINE_MS)?;
        let sync = check("sync_deadline_ms", self.sync_deadline_ms, SYNC_DEADLINE_MS)?;
        let memory = check("memory_mib", self.memory_mib, MEMORY_MIB)?;
        Ok(Limits {
            call_deadline: call.map_or(d.call_deadline, Duration::from_millis),
            sync_deadline: sync.map_or(d.sync_deadline, Duration::from_millis),
            memory_bytes: memory.map_or(d.memory_bytes, |m| (m as usize) << 20),
        })
    }
}

/// A stage's failure policy as a chain definition spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Filters: every candidate rejected ("plugin X failed: ..."); weighers: the request gets
    /// no pool.
    FailClosed,
    /// Filters: every candidate passes; weighers: left out of the request's ranking.
    FailOpen,
}

impl OnFailure {
    fn policy(spec: Option<OnFailure>, kind: PluginKind) -> FailurePolicy {
        match (spec, kind) {
            (Some(OnFailure::FailClosed), _) | (None, PluginKind::Filter) => {
                FailurePolicy::FailClosed
            }
            (Some(OnFailure::FailOpen), _) | (None, PluginKind::Weigher) => FailurePolicy::FailOpen,
        }
    }
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
        limits: StageLimits::default(),
        on_failure: None,
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

/// One stage of a chain, loaded and ready to instantiate.
pub struct LoadedStage {
    pub plugin: Arc<LoadedPlugin>,
    pub kind: PluginKind,
    pub multiplier: f64,
    pub policy: FailurePolicy,
}

/// Every plugin of `spec`, loaded (compiled once per engine, cached on disk): the slow half of
/// building a chain, done without holding the scheduler's lock.
pub fn load_all(
    engine: &Arc<PluginEngine>,
    spec: &ChainSpec,
    components: &Components,
) -> Result<Vec<LoadedStage>, PluginError> {
    let mut out = Vec::new();
    for (stages, kind) in [
        (&spec.filters, PluginKind::Filter),
        (&spec.weighers, PluginKind::Weigher),
    ] {
        for s in stages {
            out.push(LoadedStage {
                plugin: load(engine, s, kind, components)?,
                kind,
                multiplier: s.multiplier,
                policy: OnFailure::policy(s.on_failure, kind),
            });
        }
    }
    Ok(out)
}

/// A live chain of `loaded` over `table`: each plugin instantiated and fully synchronised
/// (fast: microseconds per instance, milliseconds for a large table).
pub fn assemble(loaded: &[LoadedStage], table: &PoolTable) -> Result<Chain, PluginError> {
    let mut chain = Chain::new(table.clone());
    for s in loaded {
        let stage = Box::new(WasmStage::new(s.plugin.clone(), table)?);
        match s.kind {
            PluginKind::Filter => chain.add_filter(stage, s.policy),
            PluginKind::Weigher => chain.add_weigher(stage, s.multiplier, s.policy),
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
    let limits = s
        .limits
        .resolve()
        .map_err(|reason| PluginError::Instantiate {
            plugin: s.plugin.clone(),
            reason,
        })?;
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
        return LoadedPlugin::load(engine, &s.plugin, bytes, kind, limits, s.config.clone());
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
    LoadedPlugin::load(engine, b.file, b.bytes, kind, limits, s.config.clone())
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

    #[test]
    fn stage_limits_and_failure_policy_reach_the_loaded_plugins() {
        let spec: ChainSpec = serde_json::from_value(serde_json::json!({
            "name": "slow-python",
            "filters": [
                {"plugin": "capacity_filter",
                 "limits": {"call_deadline_ms": 2000, "memory_mib": 256},
                 "on_failure": "fail_open"},
                {"plugin": "availability_zone_filter"}
            ],
            "weighers": [{"plugin": "capacity_weigher", "on_failure": "fail_closed"}]
        }))
        .unwrap();
        let engine = PluginEngine::new(None).unwrap();
        let stages = load_all(&engine, &spec, &Components::new()).unwrap();
        let d = Limits::default();
        assert_eq!(
            stages[0].plugin.limits,
            Limits {
                call_deadline: Duration::from_secs(2),
                sync_deadline: d.sync_deadline,
                memory_bytes: 256 << 20,
            }
        );
        assert_eq!(stages[0].policy, FailurePolicy::FailOpen);
        assert_eq!(stages[1].plugin.limits, d, "unset limits are the defaults");
        assert_eq!(
            stages[1].policy,
            FailurePolicy::FailClosed,
            "filters fail closed"
        );
        assert_eq!(stages[2].policy, FailurePolicy::FailClosed);

        // Stored definitions without the new fields read back unchanged, and stay so.
        let old: ChainSpec = serde_json::from_str(
            r#"{"name":"d","filters":[{"plugin":"capacity_filter"}],"weighers":[]}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&old).unwrap()["filters"][0],
            serde_json::json!({"plugin": "capacity_filter", "multiplier": 1.0, "config": {}})
        );
    }

    #[test]
    fn out_of_range_or_unknown_limits_are_refused_with_the_bounds() {
        let stage = |limits: serde_json::Value| {
            serde_json::from_value::<StageSpec>(
                serde_json::json!({"plugin": "capacity_filter", "limits": limits}),
            )
        };
        let err = stage(serde_json::json!({"call_deadline_ms": 0}))
            .unwrap()
            .limits
            .resolve()
            .unwrap_err();
        assert_eq!(
            err,
            "limits.call_deadline_ms = 0 is out of range: give 1 to 60000"
        );
        let err = stage(serde_json::json!({"memory_mib": 8192}))
            .unwrap()
            .limits
            .resolve()
            .unwrap_err();
        assert!(err.contains("memory_mib = 8192"), "{err}");
        let err = stage(serde_json::json!({"deadline": 5})).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `deadline`"),
            "{err}"
        );

        let spec = ChainSpec {
            name: "bad".into(),
            filters: vec![StageSpec {
                limits: StageLimits {
                    sync_deadline_ms: Some(700_000),
                    ..Default::default()
                },
                ..stage_spec("capacity_filter")
            }],
            weighers: vec![],
        };
        let engine = PluginEngine::new(None).unwrap();
        let err = load_all(&engine, &spec, &Components::new())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("capacity_filter"), "{err}");
        assert!(err.contains("sync_deadline_ms = 700000"), "{err}");
    }

    fn stage_spec(plugin: &str) -> StageSpec {
        stage(plugin, 1.0)
    }
}
