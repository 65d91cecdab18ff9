//! The example plugins of `plugins/examples/` (CapacityFilter and CapacityWeigher in C, Zig,
//! Python and JavaScript), built by `scripts/build-examples`, run through the real plugin
//! runtime exactly as the scheduler runs them: each component loaded with the host's limits
//! and settings, its pool table filled by a full sync and kept current by deltas, requests
//! sent as the request plus candidate ids, through a `WasmStage` and through a `Chain`.
//!
//! Every case of `plugins/examples/golden/capacity.json` runs against every example and
//! against the Rust default components (`capacity_filter`, `capacity_weigher`) as the oracle:
//! verdicts with their reasons, the reason-free `accept`, raw weights, and the chain's
//! decision must all match. A failure names the language, the plugin and the case.
//!
//! `per_call_cost` (ignored; run with `--ignored --nocapture`) prints the figures of
//! docs/benchmarks.md.

#[path = "plugin_examples/bench.rs"]
mod bench;
#[path = "plugin_examples/golden.rs"]
mod golden;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use kiln::plugins::builtin;
use kiln::plugins::chain::{Explain, Stage, WasmStage};
use kiln::plugins::{Chain, FailurePolicy, Limits, LoadedPlugin, PluginEngine, PluginKind};
use kiln_plugin_sdk::{PoolDelta, PoolTable, Verdict};

use golden::{Case, Step, Suite};

/// The languages of `plugins/examples/`, as named by their directories.
pub const LANGUAGES: [&str; 4] = ["c", "zig", "python", "js"];

/// Where `scripts/build-examples` puts the components (the same default and override).
pub fn examples_dir() -> PathBuf {
    match std::env::var_os("KILN_EXAMPLES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/kiln-examples"),
    }
}

/// The component bytes of `lang`'s `plugin` (`capacity_filter` or `capacity_weigher`);
/// `rust` is the default component embedded in the host.
pub fn component(lang: &str, plugin: &str) -> Vec<u8> {
    if lang == "rust" {
        return builtin::get(plugin)
            .unwrap_or_else(|| panic!("no builtin {plugin}"))
            .bytes
            .to_vec();
    }
    let path = examples_dir().join(lang).join(format!("{plugin}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "the {lang} example {plugin} is not built ({}: {e}): run scripts/build-examples \
             (or set KILN_EXAMPLES_DIR to where it wrote them)",
            path.display()
        )
    })
}

fn engine() -> Arc<PluginEngine> {
    static E: OnceLock<Arc<PluginEngine>> = OnceLock::new();
    E.get_or_init(|| {
        // The Python and JS components take seconds to compile (Cranelift is optimised even in
        // dev builds, see Cargo.toml), so their precompiled artifacts are kept between runs,
        // in the directory cargo gives integration tests (named by content and engine hash,
        // as in the host).
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-examples-precompiled");
        PluginEngine::new(Some(cache)).unwrap()
    })
    .clone()
}

fn load(lang: &str, plugin: &str, kind: PluginKind, suite: &Suite) -> Arc<LoadedPlugin> {
    let label = format!("{lang}_{plugin}");
    // This suite checks answers, not speed (deadlines have their own tests in
    // plugin_sandbox.rs): an interpreter's call in a debug host on a loaded CI machine once
    // ran past the default 50 ms, so the interpreted examples get the sync deadline, as an
    // operator would give them in a chain stage's `limits.call_deadline_ms`.
    let mut limits = Limits::default();
    if matches!(lang, "python" | "js") {
        limits.call_deadline = limits.sync_deadline;
    }
    LoadedPlugin::load(
        &engine(),
        &label,
        &component(lang, plugin),
        kind,
        limits,
        suite.config.clone(),
    )
    .unwrap_or_else(|e| panic!("{lang} {plugin}: {e}"))
}

/// What one implementation answered to one case.
#[derive(Debug, Clone, PartialEq)]
struct Answers {
    verdicts: Vec<Verdict>,
    accepted: Vec<bool>,
    weights: Vec<f64>,
    /// The chain's decision: survivors with their total weight, best first, and removals.
    weighed: Vec<(u32, f64)>,
    removed: Vec<(u32, Option<String>)>,
}

/// Run `suite` through `lang`'s filter and weigher: stages for the raw answers, a chain for
/// the decision, all kept in sync by the same deltas. Returns each case's answers in order.
fn run_suite(lang: &str, suite: &Suite) -> Vec<(String, Answers)> {
    let filter = load(lang, "capacity_filter", PluginKind::Filter, suite);
    let weigher = load(lang, "capacity_weigher", PluginKind::Weigher, suite);
    let multiplier: f64 = suite
        .config
        .get("capacity_weight_multiplier")
        .map_or(1.0, |m| m.parse().unwrap());

    let mut table = PoolTable::new();
    table.apply(suite.pools.iter().map(|p| PoolDelta::Upsert(p.pool())));
    let stage = |p: &Arc<LoadedPlugin>| {
        WasmStage::new(p.clone(), &table).unwrap_or_else(|e| panic!("{lang}: full sync: {e}"))
    };
    let (mut f, mut w) = (stage(&filter), stage(&weigher));
    let mut chain = Chain::new(table.clone());
    chain.add_filter(Box::new(stage(&filter)), FailurePolicy::FailClosed);
    chain.add_weigher(
        Box::new(stage(&weigher)),
        multiplier,
        FailurePolicy::FailOpen,
    );

    let mut out = Vec::new();
    for step in &suite.steps {
        match step {
            Step::Apply(specs) => {
                let deltas: Vec<PoolDelta> = specs.iter().map(|d| d.delta()).collect();
                table.apply(deltas.iter().cloned());
                f.sync(&deltas, &table).unwrap();
                w.sync(&deltas, &table).unwrap();
                let errors = chain.apply(&deltas);
                assert!(errors.is_empty(), "{lang}: chain sync failed: {errors:?}");
            }
            Step::Case(case) => out.push((
                case.name.clone(),
                answer(lang, case, &mut f, &mut w, &mut chain),
            )),
        }
    }
    // A stage replaces an instance that failed (and resyncs it) without telling its caller:
    // count failures so that a plugin that trapped cannot pass unnoticed.
    for p in [&filter, &weigher] {
        assert_eq!(
            p.stats.failures(),
            0,
            "{lang} {}: the plugin failed during suite {}",
            p.name,
            suite.name
        );
    }
    out
}

fn answer(
    lang: &str,
    case: &Case,
    f: &mut WasmStage,
    w: &mut WasmStage,
    chain: &mut Chain,
) -> Answers {
    let request = case.request.request();
    let ids = &case.candidates;
    let fail = |what: &str, e: kiln::plugins::PluginError| -> ! {
        panic!("{lang} {what}, case `{}`: {e}", case.name)
    };
    let verdicts = f
        .filter(&request, ids)
        .unwrap_or_else(|e| fail("CapacityFilter", e));
    let accepted = f
        .accept(&request, ids)
        .unwrap_or_else(|e| fail("CapacityFilter", e));
    let weights = w
        .weigh(&request, ids)
        .unwrap_or_else(|e| fail("CapacityWeigher", e));
    // The scheduler only offers pools it holds.
    let held: Vec<u32> = ids
        .iter()
        .copied()
        .filter(|id| chain.table().get(*id).is_some())
        .collect();
    let decision = chain.decide_with(&request, &held, Explain::Always);
    assert!(
        decision.failures.is_empty(),
        "{lang}, case `{}`: {:?}",
        case.name,
        decision.failures
    );
    Answers {
        verdicts,
        accepted,
        weights,
        weighed: decision.weighed,
        removed: decision
            .removed
            .into_iter()
            .map(|r| (r.pool, r.reason))
            .collect(),
    }
}

fn same_weight(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// The chain chose the same pools in the same order with the same totals, and removed the
/// same pools for the same reasons.
fn same_decision(a: &Answers, b: &Answers) -> bool {
    a.removed == b.removed
        && a.weighed.len() == b.weighed.len()
        && a.weighed
            .iter()
            .zip(&b.weighed)
            .all(|(x, y)| x.0 == y.0 && same_weight(x.1, y.1))
}

/// How `got` differs from the golden `case`, one line per difference.
fn against_golden(case: &Case, got: &Answers) -> Vec<String> {
    let mut diffs = Vec::new();
    let n = case.candidates.len();
    for (what, len) in [
        ("verdicts", got.verdicts.len()),
        ("accept", got.accepted.len()),
        ("weights", got.weights.len()),
    ] {
        if len != n {
            diffs.push(format!("{what}: {len} answers for {n} candidates"));
        }
    }
    for (i, id) in case.candidates.iter().enumerate() {
        let (Some(v), Some(a), Some(wt)) =
            (got.verdicts.get(i), got.accepted.get(i), got.weights.get(i))
        else {
            break;
        };
        if !case.verdicts[i].matches(v) {
            diffs.push(format!(
                "CapacityFilter, pool {id}: expected {:?}, got {v:?}",
                case.verdicts[i]
            ));
        }
        if *a != v.is_pass() {
            diffs.push(format!(
                "CapacityFilter, pool {id}: accept says {a} but filter says {v:?}"
            ));
        }
        let want = case.weights[i].value();
        if !same_weight(want, *wt) {
            diffs.push(format!(
                "CapacityWeigher, pool {id}: expected weight {want}, got {wt}"
            ));
        }
    }
    diffs
}

#[test]
fn examples_answer_the_golden_cases_like_the_rust_defaults() {
    let file = golden::load();
    let mut failures = Vec::new();
    for suite in &file.suites {
        let oracle = run_suite("rust", suite);
        let cases: BTreeMap<&str, &Case> = suite
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Case(c) => Some((c.name.as_str(), c)),
                Step::Apply(_) => None,
            })
            .collect();
        for (name, got) in &oracle {
            for d in against_golden(cases[name.as_str()], got) {
                failures.push(format!(
                    "rust (oracle) {d} [suite {}, case `{name}`]",
                    suite.name
                ));
            }
        }
        for lang in LANGUAGES {
            let answers = run_suite(lang, suite);
            assert_eq!(answers.len(), oracle.len());
            for ((name, got), (_, want)) in answers.iter().zip(&oracle) {
                for d in against_golden(cases[name.as_str()], got) {
                    failures.push(format!("{lang} {d} [suite {}, case `{name}`]", suite.name));
                }
                if !same_decision(got, want) {
                    failures.push(format!(
                        "{lang} chain decision differs from the Rust defaults [suite {}, case `{name}`]: \
                         weighed {:?} vs {:?}, removed {:?} vs {:?}",
                        suite.name, got.weighed, want.weighed, got.removed, want.removed
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
#[ignore = "a benchmark: cargo test -p kiln-integration-tests --test plugin_examples -- --ignored --nocapture"]
fn per_call_cost() {
    bench::run();
}
