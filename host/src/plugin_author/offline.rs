//! `kiln plugin test`: run a component against recorded pools and a request, offline, through
//! the scheduler's own runtime: [`LoadedPlugin::load`] (the world check and the trial
//! instance), a [`WasmStage`] given every pool by a full sync (and its `pool-count` checked), a
//! one-stage [`Chain`] deciding with reasons, and the Cinder normalisation of weights.
//! Compiled components are cached on disk by content hash like the scheduler's (a Python
//! component takes seconds to compile), in [`default_cache_dir`] unless told otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_plugin_sdk::{Pool, PoolDelta, PoolTable, Request, Verdict};

use super::inspect::{self, World};
use super::AuthorError;
use crate::plugins::chain::{normalize, Stage, WasmStage};
use crate::plugins::{
    Chain, Explain, FailurePolicy, Limits, LoadedPlugin, PluginEngine, PluginKind,
};

/// One pool's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: u32,
    /// `host@backend#pool`.
    pub name: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A filter's verdict (`filter`), and what the reason-free `accept` said.
    Verdict { verdict: Verdict, accept: bool },
    /// A weigher's raw weight and its normalisation over the candidates.
    Weight { raw: f64, normalised: f64 },
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The name the plugin gives itself.
    pub plugin: String,
    pub kind: PluginKind,
    pub rows: Vec<Row>,
    /// The pool a chain of only this plugin would choose (ties: the first candidate).
    pub chosen: Option<String>,
    /// Where `accept` and `filter` disagree, or the plugin failed: what the scheduler would
    /// log. Empty for a healthy plugin.
    pub problems: Vec<String>,
}

/// How a run is set up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these pool ids are candidates; `None`: every pool.
    pub candidates: Option<Vec<u32>>,
    /// The plugin's settings, as a chain stage's `config`.
    pub config: BTreeMap<String, String>,
    /// The limits the plugin runs under, as a chain stage's `limits`.
    pub limits: Limits,
    /// Where precompiled components are kept between runs; `None`: compile every time.
    pub cache_dir: Option<PathBuf>,
}

/// `$XDG_CACHE_HOME/kiln/precompiled`, else `~/.cache/kiln/precompiled`; `None` without either.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("kiln").join("precompiled"))
}

/// Run `bytes` over `pools` for `request`, set up by `opts`.
pub fn run(
    bytes: &[u8],
    pools: &[Pool],
    request: &Request,
    opts: Options,
) -> Result<Report, AuthorError> {
    let Options {
        candidates,
        config,
        limits,
        cache_dir,
    } = opts;
    let found = inspect::inspect(bytes)?;
    if !found.ok() {
        return Err(AuthorError::Invalid(format!(
            "Kiln would refuse this component: {} (see `kiln plugin inspect`)",
            found.problems.join("; ")
        )));
    }
    let kind = match found.world {
        Some(World::Filter) => PluginKind::Filter,
        Some(World::Weigher) => PluginKind::Weigher,
        Some(World::VolumeDriver) => {
            return Err(AuthorError::Usage(
                "a volume driver: `kiln plugin test` runs filters and weighers".into(),
            ))
        }
        None => return Err(AuthorError::Invalid(
            "it implements neither the filter nor the weigher world (see `kiln plugin inspect`)"
                .into(),
        )),
    };
    let mut table = PoolTable::new();
    table.apply(pools.iter().cloned().map(PoolDelta::Upsert));
    let all: Vec<u32> = pools.iter().map(|p| p.id).collect();
    let candidates = candidates.unwrap_or(all);
    let name_of = |id: u32| {
        table
            .get(id)
            .map_or_else(|| format!("(unknown pool {id})"), Pool::name)
    };

    let engine = PluginEngine::new(cache_dir)?;
    let plugin = LoadedPlugin::load(&engine, "plugin", bytes, kind, limits, config)?;
    tracing::debug!(plugin = %plugin.name, pools = pools.len(), "running offline");
    // The probe stage answers the per-function questions; the chain decides like the scheduler.
    let mut probe = WasmStage::new(plugin.clone(), &table)?;
    let mut chain = Chain::new(table.clone());
    let stage = Box::new(WasmStage::new(plugin.clone(), &table)?);
    match kind {
        PluginKind::Filter => chain.add_filter(stage, FailurePolicy::FailClosed),
        PluginKind::Weigher => chain.add_weigher(stage, 1.0, FailurePolicy::FailOpen),
    }
    let decision = chain.decide_with(request, &candidates, Explain::Always);
    let mut problems: Vec<String> = decision.failures.iter().map(|e| e.to_string()).collect();

    let rows = match kind {
        PluginKind::Filter => {
            let verdicts = probe.filter(request, &candidates)?;
            let accepted = probe.accept(request, &candidates)?;
            candidates
                .iter()
                .zip(verdicts.into_iter().zip(accepted))
                .map(|(id, (verdict, accept))| {
                    if verdict.is_pass() != accept {
                        problems.push(format!(
                            "pool {id}: `filter` says {verdict:?} but `accept` says {accept}; \
                             they must agree (the scheduler uses `accept`)"
                        ));
                    }
                    Row {
                        id: *id,
                        name: name_of(*id),
                        outcome: Outcome::Verdict { verdict, accept },
                    }
                })
                .collect()
        }
        PluginKind::Weigher => {
            let raw = probe.weigh(request, &candidates)?;
            let norm = normalize(&raw);
            candidates
                .iter()
                .zip(raw.into_iter().zip(norm))
                .map(|(id, (raw, normalised))| Row {
                    id: *id,
                    name: name_of(*id),
                    outcome: Outcome::Weight { raw, normalised },
                })
                .collect()
        }
    };
    Ok(Report {
        plugin: plugin.name.clone(),
        kind,
        rows,
        chosen: decision.best().map(name_of),
        problems,
    })
}

/// The report as a table for a terminal.
pub fn render(r: &Report) -> String {
    let width = r
        .rows
        .iter()
        .map(|row| row.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!("{} ({})\n", r.plugin, r.kind.world());
    for row in &r.rows {
        let what = match &row.outcome {
            Outcome::Verdict {
                verdict: Verdict::Pass,
                ..
            } => "pass".to_string(),
            Outcome::Verdict {
                verdict: Verdict::Reject(why),
                ..
            } => format!("reject  {why}"),
            Outcome::Weight { raw, normalised } => {
                format!("raw {raw:<12} normalised {normalised:.4}")
            }
        };
        out.push_str(&format!("  {:>4}  {:<width$}  {what}\n", row.id, row.name));
    }
    out.push_str(&format!(
        "chosen by a chain of only this plugin: {}\n",
        r.chosen.as_deref().unwrap_or("none (every pool rejected)")
    ));
    for p in &r.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_plugin_sdk::Capacity;

    fn pool(id: u32, free: f64) -> Pool {
        Pool {
            id,
            backend: format!("node1@b{id}"),
            pool: format!("b{id}"),
            host: "node1".into(),
            availability_zone: "nova".into(),
            total_capacity_gb: Capacity::Gb(100.0),
            free_capacity_gb: Capacity::Gb(free),
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

    fn builtin(name: &str) -> &'static [u8] {
        crate::plugins::builtin::get(name).unwrap().bytes
    }

    #[test]
    fn a_filter_gives_verdicts_with_reasons_through_the_runtime() {
        let pools = [pool(0, 5.0), pool(1, 80.0)];
        let request = Request {
            size_gb: 10,
            ..Default::default()
        };
        let r = run(
            builtin("capacity_filter"),
            &pools,
            &request,
            Options::default(),
        )
        .unwrap();
        assert_eq!(r.plugin, "CapacityFilter");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        match &r.rows[0].outcome {
            Outcome::Verdict {
                verdict: Verdict::Reject(why),
                accept: false,
            } => assert!(why.contains("needs 10 GB"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.rows[1].outcome,
            Outcome::Verdict {
                verdict: Verdict::Pass,
                accept: true
            }
        );
        assert_eq!(r.chosen.as_deref(), Some("node1@b1#b1"));
        let text = render(&r);
        assert!(text.contains("reject  needs 10 GB"), "{text}");
    }

    #[test]
    fn a_weigher_gives_raw_and_normalised_weights() {
        let pools = [pool(0, 10.0), pool(1, 30.0), pool(2, 20.0)];
        let r = run(
            builtin("capacity_weigher"),
            &pools,
            &Request::default(),
            Options {
                candidates: Some(vec![2, 0, 1]),
                ..Options::default()
            },
        )
        .unwrap();
        let weights: Vec<(u32, f64, f64)> = r
            .rows
            .iter()
            .map(|row| match row.outcome {
                Outcome::Weight { raw, normalised } => (row.id, raw, normalised),
                _ => panic!("not a weight"),
            })
            .collect();
        assert_eq!(
            weights,
            vec![(2, 20.0, 0.5), (0, 10.0, 0.0), (1, 30.0, 1.0)]
        );
        assert_eq!(r.chosen.as_deref(), Some("node1@b1#b1"));
    }

    #[test]
    fn a_second_run_loads_the_component_precompiled_by_the_first() {
        let cache = tempfile::tempdir().unwrap();
        let pools = [pool(0, 5.0)];
        let opts = || Options {
            cache_dir: Some(cache.path().to_path_buf()),
            ..Options::default()
        };
        let artifacts = || std::fs::read_dir(cache.path()).unwrap().count();
        run(
            builtin("capacity_filter"),
            &pools,
            &Request::default(),
            opts(),
        )
        .unwrap();
        assert_eq!(
            artifacts(),
            1,
            "the first run leaves one precompiled artifact"
        );
        let r = run(
            builtin("capacity_filter"),
            &pools,
            &Request::default(),
            opts(),
        )
        .unwrap();
        assert_eq!(r.plugin, "CapacityFilter");
        assert_eq!(artifacts(), 1, "the second run reuses it");
    }
}
