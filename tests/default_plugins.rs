//! The default filters and weighers, run as the embedded WebAssembly components through the
//! real runtime: golden cases of Cinder's semantics, and a differential check that every
//! component answers exactly as the same logic compiled natively (whose unit tests port
//! Cinder's own) over a spread of pools and requests.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use kiln::plugins::builtin;
use kiln::plugins::chain::{NativeFilter, NativeWeigher, Stage, WasmStage};
use kiln::plugins::{Limits, LoadedPlugin, PluginEngine};
use kiln_default_plugins as logic;
use kiln_plugin_sdk::{
    CapValue, Capacity, Operation, Pool, PoolDelta, PoolTable, Request, Verdict, VolumeType,
};

fn engine() -> Arc<PluginEngine> {
    static E: OnceLock<Arc<PluginEngine>> = OnceLock::new();
    E.get_or_init(|| PluginEngine::new(None).unwrap()).clone()
}

fn wasm(file: &str, table: &PoolTable) -> WasmStage {
    let b = builtin::get(file).unwrap_or_else(|| panic!("no builtin {file}"));
    let plugin = LoadedPlugin::load(
        &engine(),
        file,
        b.bytes,
        b.kind,
        Limits::default(),
        BTreeMap::new(),
    )
    .unwrap();
    WasmStage::new(plugin, table).unwrap()
}

const VOL_A: &str = "11111111-1111-4111-8111-111111111111";
const VOL_B: &str = "22222222-2222-4222-8222-222222222222";

fn pool(id: u32) -> Pool {
    let mut caps = BTreeMap::new();
    caps.insert(
        "storage_protocol".into(),
        CapValue::Text(["iSCSI", "NVMe", "FC"][id as usize % 3].into()),
    );
    caps.insert("vendor_name".into(), CapValue::Text("Open Source".into()));
    caps.insert(
        "compression".into(),
        CapValue::Boolean(id.is_multiple_of(2)),
    );
    caps.insert("iops".into(), CapValue::Number((id * 1000) as f64));
    caps.insert("tier".into(), CapValue::Text(format!("t{}", id % 4)));
    let special = match id % 11 {
        7 => Capacity::Infinite,
        9 => Capacity::Unknown,
        _ => Capacity::Gb(10.0 + (id * 37 % 500) as f64),
    };
    Pool {
        id,
        backend: format!("node{}@b{}", id / 4, id % 4),
        pool: format!("p{id}"),
        host: format!("node{}", id / 4),
        availability_zone: if id.is_multiple_of(3) { "az2" } else { "az1" }.into(),
        total_capacity_gb: Capacity::Gb(1000.0),
        free_capacity_gb: special,
        allocated_capacity_gb: (id * 13 % 400) as f64,
        provisioned_capacity_gb: (id * 29 % 3000) as f64,
        reserved_percentage: (id % 3 * 5) as u8,
        max_over_subscription_ratio: if id.is_multiple_of(5) { 1.0 } else { 2.5 },
        thin_provisioning_support: id % 2 == 1,
        thick_provisioning_support: true,
        total_volumes: (id * 7 % 23) as u64,
        multiattach: true,
        filter_function: match id % 4 {
            0 => Some("volume.size < 50".into()),
            1 => Some("capabilities.iops >= 5000 and stats.free_capacity_gb > 20".into()),
            2 => Some("1 / 0".into()),
            _ => None,
        },
        goodness_function: match id % 3 {
            0 => Some("stats.free_capacity_gb > 100 ? 90 : 30".into()),
            1 => Some("capabilities.iops / 1000".into()),
            _ => None,
        },
        capabilities: caps,
    }
}

fn table(n: u32) -> PoolTable {
    let mut t = PoolTable::new();
    t.apply((0..n).map(|i| PoolDelta::Upsert(pool(i))));
    t
}

fn specs(pairs: &[(&str, &str)]) -> Option<VolumeType> {
    Some(VolumeType {
        id: "type-1".into(),
        name: "gold".into(),
        extra_specs: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

fn requests() -> Vec<Request> {
    let base = Request {
        volume_id: "99999999-9999-4999-8999-999999999999".into(),
        project_id: "p".into(),
        size_gb: 20,
        ..Default::default()
    };
    let hints = |k: &str, v: &str| {
        let mut r = base.clone();
        r.scheduler_hints.insert(k.into(), v.into());
        r.hint_volume_pools
            .insert(VOL_A.into(), "node1@b1#p5".into());
        r.hint_volume_pools
            .insert(VOL_B.into(), "node2@b0#p8".into());
        r
    };
    let same = hints("same_host", &format!("[\"{VOL_A}\", \"{VOL_B}\"]"));
    let different = hints("different_host", VOL_A);
    let bad_uuid = hints("same_host", "not-a-uuid");
    let json = hints(
        "query",
        r#"["and", [">=", "$free_capacity_gb", 100], ["in", "$storage_protocol", "iSCSI", "FC"]]"#,
    );
    let bad_json = hints("query", r#"["frobnicate", 1"#);
    vec![
        base.clone(),
        Request {
            availability_zones: vec!["az2".into()],
            ..base.clone()
        },
        Request {
            size_gb: 400,
            ..base.clone()
        },
        Request {
            operation: Operation::Extend,
            size_gb: 10,
            new_size_gb: Some(300),
            ..base.clone()
        },
        Request {
            volume_type: specs(&[("provisioning:type", "thick")]),
            size_gb: 200,
            ..base.clone()
        },
        Request {
            volume_type: specs(&[
                ("storage_protocol", "<in> iSCSI"),
                ("capabilities:compression", "<is> True"),
            ]),
            ..base.clone()
        },
        Request {
            volume_type: specs(&[("iops", ">= 9000"), ("tier", "<or> t1 <or> t3")]),
            ..base.clone()
        },
        Request {
            volume_type: specs(&[
                ("iops", "= 3000"),
                ("vendor:foo", "ignored"),
                ("tier", "s!= t2"),
            ]),
            ..base.clone()
        },
        Request {
            volume_type: specs(&[("missing_capability", "x")]),
            ..base.clone()
        },
        Request {
            volume_type: specs(&[("storage_protocol", "NVMe")]),
            ..base.clone()
        },
        same,
        different,
        bad_uuid,
        json,
        bad_json,
    ]
}

fn native_filter(file: &str, t: &PoolTable) -> Box<dyn Stage> {
    match file {
        "availability_zone_filter" => {
            Box::new(NativeFilter::<logic::AvailabilityZoneFilter>::new(t))
        }
        "capacity_filter" => Box::new(NativeFilter::<logic::CapacityFilter>::new(t)),
        "capabilities_filter" => Box::new(NativeFilter::<logic::CapabilitiesFilter>::new(t)),
        "same_backend_filter" => Box::new(NativeFilter::<logic::SameBackendFilter>::new(t)),
        "different_backend_filter" => {
            Box::new(NativeFilter::<logic::DifferentBackendFilter>::new(t))
        }
        "json_filter" => Box::new(NativeFilter::<logic::JsonFilter>::new(t)),
        "driver_filter" => Box::new(NativeFilter::<logic::DriverFilter>::new(t)),
        "capacity_weigher" => Box::new(NativeWeigher::<logic::CapacityWeigher>::new(t)),
        "allocated_capacity_weigher" => {
            Box::new(NativeWeigher::<logic::AllocatedCapacityWeigher>::new(t))
        }
        "volume_number_weigher" => Box::new(NativeWeigher::<logic::VolumeNumberWeigher>::new(t)),
        "goodness_weigher" => Box::new(NativeWeigher::<logic::GoodnessWeigher>::new(t)),
        "chance_weigher" => Box::new(NativeWeigher::<logic::ChanceWeigher>::new(t)),
        other => panic!("no native twin for {other}"),
    }
}

#[test]
fn every_component_answers_exactly_like_its_native_logic() {
    let t = table(44);
    let ids: Vec<u32> = (0..44).collect();
    for b in builtin::BUILTINS {
        let mut w = wasm(b.file, &t);
        let mut n = native_filter(b.file, &t);
        assert_eq!(w.name(), n.name(), "{}: component name", b.file);
        for (i, r) in requests().iter().enumerate() {
            match b.kind {
                kiln::plugins::PluginKind::Filter => {
                    let wv = w.filter(r, &ids).unwrap();
                    let nv = n.filter(r, &ids).unwrap();
                    assert_eq!(wv, nv, "{} differs from native on request #{i}", b.file);
                    // The reason-free hot path must agree with the explained verdicts.
                    let passed: Vec<bool> = wv.iter().map(Verdict::is_pass).collect();
                    assert_eq!(
                        w.accept(r, &ids).unwrap(),
                        passed,
                        "{}: accept disagrees with filter on request #{i}",
                        b.file
                    );
                    assert_eq!(
                        n.accept(r, &ids).unwrap(),
                        passed,
                        "{}: native accept disagrees with filter on request #{i}",
                        b.file
                    );
                }
                kiln::plugins::PluginKind::Weigher => {
                    let ww = w.weigh(r, &ids).unwrap();
                    let nw = n.weigh(r, &ids).unwrap();
                    let same = ww
                        .iter()
                        .zip(&nw)
                        .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
                    assert!(
                        same,
                        "{} differs from native on request #{i}: {ww:?} vs {nw:?}",
                        b.file
                    );
                }
            }
        }
    }
}

fn passing(stage: &mut WasmStage, r: &Request, ids: &[u32]) -> (Vec<u32>, BTreeMap<u32, String>) {
    let mut pass = Vec::new();
    let mut rejected = BTreeMap::new();
    for (id, v) in ids.iter().zip(stage.filter(r, ids).unwrap()) {
        match v {
            Verdict::Pass => pass.push(*id),
            Verdict::Reject(reason) => {
                rejected.insert(*id, reason);
            }
        }
    }
    (pass, rejected)
}

#[test]
fn golden_cases_of_cinder_semantics() {
    let t = table(12);
    let ids: Vec<u32> = (0..12).collect();
    let reqs = requests();

    // AvailabilityZone: az2 holds pools 0, 3, 6, 9.
    let (pass, _) = passing(&mut wasm("availability_zone_filter", &t), &reqs[1], &ids);
    assert_eq!(pass, vec![0, 3, 6, 9]);

    // Capacity: 400 GB fits only where free (minus reserved, or thin virtual free) allows;
    // infinite (7) and unknown (9) free capacity always pass.
    let (pass, rejected) = passing(&mut wasm("capacity_filter", &t), &reqs[2], &ids);
    assert!(pass.contains(&7) && pass.contains(&9), "{pass:?}");
    let reason = &rejected[&0];
    assert!(
        reason.contains("400"),
        "the reason names the request: {reason}"
    );

    // Capabilities: storage_protocol <in> iSCSI (0, 3, 6, 9) and compression <is> True (even).
    let (pass, rejected) = passing(&mut wasm("capabilities_filter", &t), &reqs[5], &ids);
    assert_eq!(pass, vec![0, 6]);
    assert!(!rejected[&3].is_empty());
    // A capability the backend lacks removes it, naming the key.
    let (pass, rejected) = passing(&mut wasm("capabilities_filter", &t), &reqs[8], &ids);
    assert!(pass.is_empty());
    assert!(
        rejected[&0].contains("missing_capability"),
        "{}",
        rejected[&0]
    );

    // Affinity: same_host → backends of VOL_A (node1@b1) or VOL_B (node2@b0).
    let (pass, _) = passing(&mut wasm("same_backend_filter", &t), &reqs[10], &ids);
    assert_eq!(pass, vec![5, 8]);
    let (pass, _) = passing(&mut wasm("different_backend_filter", &t), &reqs[11], &ids);
    assert!(!pass.contains(&5) && pass.len() == 11, "{pass:?}");
    let (pass, _) = passing(&mut wasm("same_backend_filter", &t), &reqs[12], &ids);
    assert!(
        pass.is_empty(),
        "a hint that is not a UUID fails the request, as in Cinder"
    );

    // Driver: filter_function per pool; an evaluation error (1 / 0) removes the pool.
    let (pass, rejected) = passing(&mut wasm("driver_filter", &t), &reqs[0], &ids);
    assert!(pass.contains(&0) && pass.contains(&3), "{pass:?}");
    assert!(rejected.contains_key(&2), "division by zero rejects");

    // Weighers: capacity spreads to the most free; volume number's raw weight is the count.
    let weights = wasm("volume_number_weigher", &t)
        .weigh(&reqs[0], &ids)
        .unwrap();
    assert_eq!(weights[3], pool(3).total_volumes as f64);
}
