//! Plugin runtime benchmark (issue: plugin runtime). For 10, 100, 1000 and 10 000 pools, one
//! scheduling request through the default chain — AvailabilityZone, Capacity and
//! Capabilities filters, Capacity weigher — as WASM components and as the same logic compiled
//! natively, each request including the state delta of the previous placement. Also: instance
//! creation, compile time and precompiled-artifact load time.
//!
//! `cargo bench -p kiln --bench plugins` (release build). Prints a markdown table.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln::plugins::builtin;
use kiln::plugins::chain::{NativeFilter, NativeWeigher, WasmStage};
use kiln::plugins::{
    Chain, FailurePolicy, Limits, LoadedPlugin, PluginEngine, PluginInstance, PluginKind,
};
use kiln_default_plugins as logic;
use kiln_plugin_sdk::{
    CapValue, Capacity, Consumption, Pool, PoolDelta, PoolTable, Request, VolumeType,
};

fn pools(n: u32) -> PoolTable {
    let mut t = PoolTable::new();
    t.apply((0..n).map(|id| {
        let mut caps = BTreeMap::new();
        caps.insert(
            "storage_protocol".to_string(),
            CapValue::Text(if id % 2 == 0 { "iSCSI" } else { "NVMe" }.into()),
        );
        caps.insert(
            "vendor_name".to_string(),
            CapValue::Text("Open Source".into()),
        );
        caps.insert(
            "volume_backend_name".to_string(),
            CapValue::Text(format!("lvm{}", id % 10)),
        );
        caps.insert("compression".to_string(), CapValue::Boolean(id % 3 == 0));
        PoolDelta::Upsert(Pool {
            id,
            backend: format!("node{}@lvm{}", id / 10, id % 10),
            pool: format!("pool{id}"),
            host: format!("node{}", id / 10),
            availability_zone: if id % 4 == 0 { "az2" } else { "az1" }.into(),
            total_capacity_gb: Capacity::Gb(10_000.0),
            free_capacity_gb: Capacity::Gb(1000.0 + (id % 97) as f64 * 50.0),
            allocated_capacity_gb: (id % 13) as f64 * 100.0,
            provisioned_capacity_gb: (id % 13) as f64 * 100.0,
            reserved_percentage: 5,
            max_over_subscription_ratio: 20.0,
            thin_provisioning_support: id % 2 == 0,
            thick_provisioning_support: true,
            total_volumes: (id % 13) as u64,
            multiattach: true,
            filter_function: None,
            goodness_function: None,
            capabilities: caps,
        })
    }));
    t
}

fn request() -> Request {
    let mut specs = BTreeMap::new();
    specs.insert("storage_protocol".to_string(), "<in> iSCSI".to_string());
    specs.insert(
        "capabilities:compression".to_string(),
        "<is> False".to_string(),
    );
    specs.insert("vendor:something".to_string(), "ignored".to_string());
    Request {
        volume_id: "1f6c3b1e-0000-4000-8000-000000000001".into(),
        project_id: "p".into(),
        size_gb: 10,
        availability_zones: vec!["az1".into()],
        volume_type: Some(VolumeType {
            id: "t".into(),
            name: "fast".into(),
            extra_specs: specs,
        }),
        ..Default::default()
    }
}

fn load(engine: &Arc<PluginEngine>, file: &str) -> Arc<LoadedPlugin> {
    let b = builtin::get(file).expect("builtin");
    LoadedPlugin::load(
        engine,
        file,
        b.bytes,
        b.kind,
        Limits::default(),
        BTreeMap::new(),
    )
    .expect("load builtin")
}

fn wasm_chain(engine: &Arc<PluginEngine>, table: &PoolTable) -> (Chain, Vec<Arc<LoadedPlugin>>) {
    let mut c = Chain::new(table.clone());
    let mut plugins = Vec::new();
    for f in [
        "availability_zone_filter",
        "capacity_filter",
        "capabilities_filter",
    ] {
        let p = load(engine, f);
        plugins.push(p.clone());
        c.add_filter(
            Box::new(WasmStage::new(p, table).unwrap()),
            FailurePolicy::FailClosed,
        );
    }
    let p = load(engine, "capacity_weigher");
    plugins.push(p.clone());
    c.add_weigher(
        Box::new(WasmStage::new(p, table).unwrap()),
        1.0,
        FailurePolicy::FailOpen,
    );
    (c, plugins)
}

fn native_chain(table: &PoolTable) -> Chain {
    let mut c = Chain::new(table.clone());
    c.add_filter(
        Box::new(NativeFilter::<logic::AvailabilityZoneFilter>::new(table)),
        FailurePolicy::FailClosed,
    );
    c.add_filter(
        Box::new(NativeFilter::<logic::CapacityFilter>::new(table)),
        FailurePolicy::FailClosed,
    );
    c.add_filter(
        Box::new(NativeFilter::<logic::CapabilitiesFilter>::new(table)),
        FailurePolicy::FailClosed,
    );
    c.add_weigher(
        Box::new(NativeWeigher::<logic::CapacityWeigher>::new(table)),
        1.0,
        FailurePolicy::FailOpen,
    );
    c
}

/// Median and p99 of one request (a consume delta for the last winner, then the decision).
fn measure(chain: &mut Chain, n: u32, iterations: usize) -> (Duration, Duration, usize) {
    let ids: Vec<u32> = (0..n).collect();
    let req = request();
    let mut times = Vec::with_capacity(iterations);
    let mut last = 0u32;
    let mut survivors = 0;
    for i in 0..iterations + iterations / 10 {
        let started = Instant::now();
        let p = chain.table().get(last).cloned().unwrap();
        // A tiny consumption keeps the pools placeable over thousands of iterations while still
        // sending a real delta to every stage.
        let free = p.free_capacity_gb.gb().unwrap_or(0.0) - 0.001;
        chain.apply(&[PoolDelta::Consume(Consumption {
            id: last,
            free_capacity_gb: Capacity::Gb(free),
            allocated_capacity_gb: p.allocated_capacity_gb + 0.001,
            provisioned_capacity_gb: p.provisioned_capacity_gb + 0.001,
            total_volumes: p.total_volumes + 1,
        })]);
        let d = chain.decide(&req, &ids);
        let took = started.elapsed();
        assert!(d.failures.is_empty(), "{:?}", d.failures);
        last = d.best().unwrap_or_else(|| {
            panic!(
                "no pool survives: {:?}",
                &d.removed[..d.removed.len().min(5)]
            )
        });
        survivors = d.weighed.len();
        if i >= iterations / 10 {
            times.push(took);
        }
    }
    times.sort();
    (
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        survivors,
    )
}

/// `--pools N` runs one size only; `--only wasm|native` one side only and `--iterations N`
/// (default 200) how many requests (for profilers).
struct Args {
    pools: Option<u32>,
    only: Option<String>,
    iterations: usize,
}

fn args() -> Args {
    let mut a = Args {
        pools: None,
        only: None,
        iterations: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--pools" => a.pools = it.next().and_then(|v| v.parse().ok()),
            "--only" => a.only = it.next(),
            "--iterations" => a.iterations = it.next().and_then(|v| v.parse().ok()).unwrap_or(200),
            _ => {} // cargo bench passes `--bench`
        }
    }
    a
}

fn main() {
    let args = args();
    if let Some(n) = args.pools {
        profile_one(&args, n);
        return;
    }
    let engine = PluginEngine::new(None).unwrap();
    println!(
        "## Default chain per request (AZ + Capacity + Capabilities filters, Capacity weigher)\n"
    );
    println!(
        "| pools | survivors | WASM p50 | WASM p99 | native p50 | native p99 | WASM / native |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in [10u32, 100, 1000, 10_000] {
        let table = pools(n);
        let iterations = if n >= 10_000 { 500 } else { 2000 };
        let (mut wasm, _) = wasm_chain(&engine, &table);
        let (wp50, wp99, survivors) = measure(&mut wasm, n, iterations);
        let mut native = native_chain(&table);
        let (np50, np99, _) = measure(&mut native, n, iterations);
        println!(
            "| {n} | {survivors} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs | {:.2}× |",
            wp50.as_secs_f64() * 1e6,
            wp99.as_secs_f64() * 1e6,
            np50.as_secs_f64() * 1e6,
            np99.as_secs_f64() * 1e6,
            wp50.as_secs_f64() / np50.as_secs_f64()
        );
    }

    println!("\n## Plugin lifecycle (capacity_filter)\n");
    let bytes = builtin::get("capacity_filter").unwrap().bytes;
    let started = Instant::now();
    let compiled = engine.engine().precompile_component(bytes).unwrap();
    let compile = started.elapsed();
    let started = Instant::now();
    let _c =
        unsafe { wasmtime::component::Component::deserialize(engine.engine(), &compiled) }.unwrap();
    let load_precompiled = started.elapsed();
    let plugin = LoadedPlugin::load(
        &engine,
        "capacity_filter",
        bytes,
        PluginKind::Filter,
        Limits::default(),
        BTreeMap::new(),
    )
    .unwrap();
    let mut times = Vec::new();
    for _ in 0..2000 {
        let started = Instant::now();
        let i = PluginInstance::new(&plugin).unwrap();
        times.push(started.elapsed());
        drop(i);
    }
    times.sort();
    println!("| what | time |\n|---|---:|");
    println!(
        "| compile (Cranelift) | {:.2} ms |",
        compile.as_secs_f64() * 1e3
    );
    println!(
        "| load precompiled artifact | {:.1} µs |",
        load_precompiled.as_secs_f64() * 1e6
    );
    println!(
        "| instantiate from InstancePre (p50) | {:.1} µs |",
        times[times.len() / 2].as_secs_f64() * 1e6
    );
    println!("| component size | {} KiB |", bytes.len() / 1024);
}

/// One size, one or both sides, printed plainly: for `valgrind --tool=callgrind` and `perf`.
fn profile_one(args: &Args, n: u32) {
    let table = pools(n);
    let iterations = args.iterations;
    if args.only.as_deref() != Some("native") {
        let engine = PluginEngine::new(None).unwrap();
        let (mut wasm, plugins) = wasm_chain(&engine, &table);
        let (p50, p99, s) = measure(&mut wasm, n, iterations);
        println!("wasm   {n} pools: p50 {p50:?} p99 {p99:?} survivors {s}");
        for p in plugins {
            let calls = p.stats.calls.load(std::sync::atomic::Ordering::Relaxed);
            let nanos = p
                .stats
                .call_nanos
                .load(std::sync::atomic::Ordering::Relaxed);
            println!(
                "  {}: {calls} calls (sync + request), mean {:.1} µs",
                p.name,
                nanos as f64 / calls.max(1) as f64 / 1e3
            );
        }
    }
    if args.only.as_deref() != Some("wasm") {
        let mut native = native_chain(&table);
        let (p50, p99, s) = measure(&mut native, n, iterations);
        println!("native {n} pools: p50 {p50:?} p99 {p99:?} survivors {s}");
    }
}
