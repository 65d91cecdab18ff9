//! The plugin sandbox against hostile components, built from source by this test
//! (`scripts/build-plugins --hostile`): an infinite loop stopped at its deadline, a memory
//! bomb trapped at its cap, a panic, a wrong-length answer and a NaN weight — each contained,
//! counted, the instance replaced, and the next request served correctly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use kiln::plugins::chain::WasmStage;
use kiln::plugins::{
    Chain, FailurePolicy, Limits, LoadedPlugin, PluginEngine, PluginError, PluginKind,
};
use kiln_plugin_sdk::{Capacity, Pool, PoolDelta, PoolTable, Request};

/// Build the hostile plugins once per test binary.
fn hostile(name: &str) -> Vec<u8> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = std::env::temp_dir().join(format!("kiln-hostile-{}", std::process::id()));
        let status = std::process::Command::new(root.join("scripts/build-plugins"))
            .arg("--hostile")
            .arg(&out)
            .status()
            .expect("run scripts/build-plugins");
        assert!(status.success(), "building the hostile plugins failed");
        out
    });
    std::fs::read(dir.join(format!("{name}.wasm"))).unwrap_or_else(|e| panic!("{name}.wasm: {e}"))
}

fn engine() -> Arc<PluginEngine> {
    static ENGINE: OnceLock<Arc<PluginEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| PluginEngine::new(None).unwrap())
        .clone()
}

fn pools(n: u32) -> PoolTable {
    let mut t = PoolTable::new();
    t.apply((0..n).map(|id| {
        PoolDelta::Upsert(Pool {
            id,
            backend: format!("node{id}@lvm"),
            pool: "pool".into(),
            host: format!("node{id}"),
            availability_zone: "nova".into(),
            total_capacity_gb: Capacity::Gb(1000.0),
            free_capacity_gb: Capacity::Gb(100.0 + id as f64),
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
            capabilities: BTreeMap::new(),
        })
    }));
    t
}

fn request(volume_id: &str) -> Request {
    Request {
        volume_id: volume_id.into(),
        project_id: "p".into(),
        size_gb: 1,
        ..Default::default()
    }
}

fn limits() -> Limits {
    Limits {
        call_deadline: Duration::from_millis(20),
        sync_deadline: Duration::from_secs(2),
        memory_bytes: 16 << 20,
    }
}

/// A chain of just the hostile filter, over 10 pools.
fn filter_chain(name: &str, limits: Limits) -> (Chain, Arc<LoadedPlugin>, Vec<u32>) {
    let table = pools(10);
    let plugin = LoadedPlugin::load(
        &engine(),
        name,
        &hostile(name),
        PluginKind::Filter,
        limits,
        BTreeMap::new(),
    )
    .unwrap();
    let mut chain = Chain::new(table.clone());
    chain.add_filter(
        Box::new(WasmStage::new(plugin.clone(), &table).unwrap()),
        FailurePolicy::FailClosed,
    );
    (chain, plugin, (0..10).collect())
}

/// Runs the bad request, checks every pool was rejected naming the plugin, then checks the
/// replaced instance serves a good request with all pools held.
fn contained(
    name: &str,
    limits: Limits,
    bad: &str,
    expect: impl Fn(&PluginError) -> bool,
) -> Arc<LoadedPlugin> {
    let (mut chain, plugin, ids) = filter_chain(name, limits);
    let limits = plugin.limits;
    let started = Instant::now();
    let d = chain.decide(&request(bad), &ids);
    assert!(
        started.elapsed() < limits.call_deadline + Duration::from_secs(2),
        "{name} was not stopped in time: {:?}",
        started.elapsed()
    );
    assert_eq!(d.failures.len(), 1, "{name}: {:?}", d.failures);
    assert!(
        expect(&d.failures[0]),
        "{name}: unexpected failure {:?}",
        d.failures[0]
    );
    assert!(
        d.weighed.is_empty(),
        "fail-closed: no pool may pass a failed filter"
    );
    assert_eq!(d.removed.len(), 10);
    let reason = d.removed[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with(&format!("plugin {} failed", plugin.name)),
        "{reason}"
    );

    let d = chain.decide(&request("fine"), &ids);
    assert!(
        d.failures.is_empty(),
        "the replaced instance must work: {:?}",
        d.failures
    );
    assert_eq!(
        d.weighed.len(),
        10,
        "the replaced instance was resynchronised with every pool"
    );
    assert!(
        plugin.stats.instantiations.load(Ordering::Relaxed) >= 3,
        "trial, first and replacement instances"
    );
    plugin
}

#[test]
fn infinite_loop_is_stopped_at_its_deadline() {
    let p = contained("infinite_loop", limits(), "loop", |e| {
        matches!(
            e,
            PluginError::Timeout {
                deadline_ms: 20,
                ..
            }
        )
    });
    assert_eq!(p.stats.timeouts.load(Ordering::Relaxed), 1);
}

#[test]
fn memory_bomb_traps_at_its_cap() {
    // A long deadline, so that the memory cap (not the clock) is what stops it.
    let generous = Limits {
        call_deadline: Duration::from_secs(5),
        ..limits()
    };
    let p = contained("memory_bomb", generous, "bomb", |e| {
        matches!(e, PluginError::MemoryExceeded { cap_mib: 16, .. })
    });
    assert_eq!(p.stats.memory_exceeded.load(Ordering::Relaxed), 1);
}

#[test]
fn panic_is_a_contained_trap() {
    let p = contained("panic", limits(), "panic", |e| {
        matches!(e, PluginError::Trap { .. })
    });
    assert_eq!(p.stats.traps.load(Ordering::Relaxed), 1);
}

#[test]
fn wrong_length_result_is_refused() {
    let p = contained(
        "wrong_length",
        limits(),
        "short",
        |e| matches!(e, PluginError::BadResult { reason, .. } if reason.contains("9 verdicts for 10")),
    );
    assert_eq!(p.stats.bad_results.load(Ordering::Relaxed), 1);
}

#[test]
fn nan_weight_is_refused_and_the_weigher_left_out() {
    let table = pools(5);
    let plugin = LoadedPlugin::load(
        &engine(),
        "nan",
        &hostile("nan_weigher"),
        PluginKind::Weigher,
        limits(),
        BTreeMap::new(),
    )
    .unwrap();
    let mut chain = Chain::new(table.clone());
    chain.add_weigher(
        Box::new(WasmStage::new(plugin.clone(), &table).unwrap()),
        1.0,
        FailurePolicy::FailOpen,
    );
    let ids: Vec<u32> = (0..5).collect();
    let d = chain.decide(&request("nan"), &ids);
    assert!(
        matches!(&d.failures[..], [PluginError::BadResult { reason, .. }] if reason.contains("NaN")),
        "{:?}",
        d.failures
    );
    assert_eq!(
        d.weighed.len(),
        5,
        "fail-open weigher: every pool still placeable"
    );
    let d = chain.decide(&request("fine"), &ids);
    assert!(d.failures.is_empty());
    assert_eq!(
        d.best(),
        Some(4),
        "most free capacity wins once the weigher works again"
    );
    assert_eq!(plugin.stats.bad_results.load(Ordering::Relaxed), 1);
}

#[test]
fn a_component_of_the_wrong_world_is_refused_at_load() {
    let err = LoadedPlugin::load(
        &engine(),
        "nan",
        &hostile("nan_weigher"),
        PluginKind::Filter,
        limits(),
        BTreeMap::new(),
    )
    .err()
    .expect("a weigher is not a filter");
    assert!(
        matches!(
            err,
            PluginError::WrongWorld {
                world: "filter",
                ..
            }
        ),
        "{err}"
    );
    let err = LoadedPlugin::load(
        &engine(),
        "junk",
        b"\0asm not really",
        PluginKind::Filter,
        limits(),
        BTreeMap::new(),
    )
    .err()
    .expect("junk is refused");
    assert!(matches!(err, PluginError::Compile { .. }), "{err}");
}

#[test]
fn pool_deltas_keep_the_instance_in_step() {
    let (mut chain, _p, _) = filter_chain("panic", limits());
    // Remove two pools, add one: the filter only sees what the chain holds.
    let mut extra = pools(11).iter().find(|p| p.id == 10).cloned().unwrap();
    extra.free_capacity_gb = Capacity::Gb(5.0);
    let errors = chain.apply(&[
        PoolDelta::Remove(0),
        PoolDelta::Remove(1),
        PoolDelta::Upsert(extra),
    ]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(chain.table().len(), 9);
    let d = chain.decide(&request("fine"), &[2, 3, 10]);
    assert_eq!(d.weighed.len(), 3);
    // A candidate the plugin does not hold (the host's bug) is rejected, not passed.
    let d = chain.decide(&request("fine"), &[0]);
    assert_eq!(d.removed.len(), 1);
    let reason = d.removed[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("unknown"),
        "no pool left, so the removal is explained: {reason}"
    );
}
