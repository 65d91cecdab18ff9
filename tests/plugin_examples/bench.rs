//! Per-language cost of the example plugins (docs/benchmarks.md, "Plugins in other
//! languages"): component size, compile time, precompiled load, instantiation, a full sync of
//! 1000 pools, and one `accept` / `weigh` call over 100 and 1000 candidates.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln::plugins::chain::{Stage, WasmStage};
use kiln::plugins::{Limits, LoadedPlugin, PluginEngine, PluginInstance, PluginKind};
use kiln_plugin_sdk::{Capacity, Pool, PoolDelta, PoolTable, Request};

use super::{component, LANGUAGES};

const RUNS: usize = 51;

fn pool(id: u32) -> Pool {
    Pool {
        id,
        backend: format!("node{}@lvm{}", id / 4, id % 4),
        pool: format!("pool{id}"),
        host: format!("node{}", id / 4),
        availability_zone: "nova".into(),
        total_capacity_gb: Capacity::Gb(1000.0),
        free_capacity_gb: if id % 17 == 3 {
            Capacity::Unknown
        } else {
            Capacity::Gb((id * 37 % 900) as f64)
        },
        allocated_capacity_gb: (id * 13 % 400) as f64,
        provisioned_capacity_gb: (id * 29 % 3000) as f64,
        reserved_percentage: (id % 3 * 5) as u8,
        max_over_subscription_ratio: if id.is_multiple_of(5) { 1.0 } else { 2.5 },
        thin_provisioning_support: id % 2 == 1,
        thick_provisioning_support: true,
        total_volumes: u64::from(id % 23),
        multiattach: false,
        filter_function: None,
        goodness_function: None,
        capabilities: BTreeMap::new(),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<R>(mut f: impl FnMut() -> R) -> Duration {
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        std::hint::black_box(f());
        samples.push(t.elapsed());
    }
    median(samples)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Print one table row per language and plugin.
pub fn run() {
    let table = {
        let mut t = PoolTable::new();
        t.apply((0..1000).map(|i| PoolDelta::Upsert(pool(i))));
        t
    };
    let request = Request {
        size_gb: 100,
        ..Default::default()
    };
    let ids_100: Vec<u32> = (0..100).collect();
    let ids_1000: Vec<u32> = (0..1000).collect();
    println!("| language | plugin | component | compile | load precompiled | instantiate | new instance + full sync, 1000 pools | call, 100 pools | call, 1000 pools |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    // KILN_BENCH_LANGS=c,js measures only those (the Python components take minutes to
    // compile in a debug build).
    let only = std::env::var("KILN_BENCH_LANGS").ok();
    let wanted = |lang: &&str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|l| l == *lang))
    };
    for lang in std::iter::once("rust").chain(LANGUAGES).filter(wanted) {
        for (plugin, kind) in [
            ("capacity_filter", PluginKind::Filter),
            ("capacity_weigher", PluginKind::Weigher),
        ] {
            let bytes = component(lang, plugin);
            let cache = tempfile::tempdir().unwrap();
            let engine = PluginEngine::new(Some(cache.path().to_path_buf())).unwrap();
            let load = || {
                LoadedPlugin::load(
                    &engine,
                    plugin,
                    &bytes,
                    kind,
                    // Costs, not deadlines, are measured: an interpreter's call over 1000
                    // pools on a loaded machine must not be cut short.
                    Limits {
                        call_deadline: Duration::from_secs(2),
                        ..Limits::default()
                    },
                    BTreeMap::new(),
                )
                .unwrap_or_else(|e| panic!("{lang} {plugin}: {e}"))
            };
            // The first load compiles (and writes the artifact); the second loads it.
            let t = Instant::now();
            let _ = load();
            let compile = t.elapsed();
            let t = Instant::now();
            let loaded: Arc<LoadedPlugin> = load();
            let precompiled = t.elapsed();
            let instantiate = time(|| PluginInstance::new(&loaded).unwrap());
            let sync = time(|| WasmStage::new(loaded.clone(), &table).unwrap());
            let mut stage = WasmStage::new(loaded.clone(), &table).unwrap();
            let mut call = |ids: &[u32]| match kind {
                PluginKind::Filter => {
                    time(|| assert_eq!(stage.accept(&request, ids).unwrap().len(), ids.len()))
                }
                PluginKind::Weigher => {
                    time(|| assert_eq!(stage.weigh(&request, ids).unwrap().len(), ids.len()))
                }
            };
            let (c100, c1000) = (call(&ids_100), call(&ids_1000));
            assert_eq!(
                loaded.stats.failures(),
                0,
                "{lang} {plugin} failed while measured"
            );
            println!(
                "| {lang} | {plugin} | {} KiB | {} | {} | {} | {} | {} | {} |",
                bytes.len() / 1024,
                ms(compile),
                ms(precompiled),
                us(instantiate),
                ms(sync),
                us(c100),
                us(c1000),
            );
        }
    }
}
