//! The hot path's budget: AvailabilityZone, Capacity and Capabilities filters plus the
//! Capacity weigher over 1000 pools well under 0.1 ms natively. Run it in release:
//! `cargo test -p kiln-default-plugins --release -- --ignored --nocapture hot_path`.

use std::time::{Duration, Instant};

use kiln_plugin_sdk::{CapValue, Filter, Pool, Request, Verdict, Weigher};

use crate::testutil::{capacity_pool, caps, gb, request, text, vtype, Cap};
use crate::{AvailabilityZoneFilter, CapabilitiesFilter, CapacityFilter, CapacityWeigher};

fn pools() -> Vec<Pool> {
    (0..1000u32)
        .map(|i| {
            let mut p = capacity_pool(
                &format!("host{i}"),
                Cap {
                    total: gb(10_000.0),
                    free: gb(f64::from(i) * 7.0),
                    provisioned: f64::from(i) * 11.0,
                    ratio: 20.0,
                    reserved: 5,
                    thin: i % 2 == 0,
                    thick: true,
                },
            );
            p.id = i;
            p.availability_zone = if i % 10 == 0 {
                "az2".into()
            } else {
                "az1".into()
            };
            caps(
                &mut p,
                &[
                    ("vendor_name", text("Open Source")),
                    ("storage_protocol", text("iSCSI")),
                    (
                        "volume_backend_name",
                        text(if i % 3 == 0 { "lvm-fast" } else { "lvm" }),
                    ),
                    ("iops", CapValue::Number(f64::from(i))),
                    ("compression", CapValue::Boolean(i % 4 == 0)),
                ],
            );
            p
        })
        .collect()
}

fn run(refs: &[&Pool], r: &Request) -> usize {
    let az = AvailabilityZoneFilter::new().filter(r, refs);
    let cap = CapacityFilter::new().filter(r, refs);
    let caps = CapabilitiesFilter::new().filter(r, refs);
    let w = CapacityWeigher::new().weigh(r, refs);
    let passing =
        az.iter().zip(&cap).zip(&caps).filter(|((a, b), c)| {
            **a == Verdict::Pass && **b == Verdict::Pass && **c == Verdict::Pass
        });
    passing.count() + w.len()
}

fn measure(label: &str, refs: &[&Pool], r: &Request) -> Duration {
    let time = |f: &dyn Fn() -> usize| {
        (0..300)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .min()
            .unwrap_or_default()
    };
    let total = time(&|| run(refs, r));
    println!(
        "{label}: total {total:?} ({} of 1000 pass); AZ {:?}, Capacity {:?}, Capabilities {:?}, CapacityWeigher {:?}",
        run(refs, r) - 1000,
        time(&|| AvailabilityZoneFilter::new().filter(r, refs).len()),
        time(&|| CapacityFilter::new().filter(r, refs).len()),
        time(&|| CapabilitiesFilter::new().filter(r, refs).len()),
        time(&|| CapacityWeigher::new().weigh(r, refs).len()),
    );
    total
}

#[test]
#[ignore = "timing: run in release"]
fn hot_path() {
    let pools = pools();
    let refs: Vec<&Pool> = pools.iter().collect();
    let mut r = request(50);
    r.availability_zones = vec!["az1".into()];
    // A typical volume type: the backend name and the provisioning type.
    r.volume_type = vtype(&[
        ("volume_backend_name", "lvm"),
        ("provisioning:type", "thin"),
    ]);
    let typical = measure("typical type (2 extra specs)", &refs, &r);
    // A heavy one: five capability requirements, most pools rejected.
    r.volume_type = vtype(&[
        ("volume_backend_name", "lvm"),
        ("capabilities:vendor_name", "Open Source"),
        ("storage_protocol", "<in> iSCSI"),
        ("iops", ">= 100"),
        ("capabilities:compression", "<is> False"),
        ("provisioning:type", "thin"),
    ]);
    let heavy = measure("heavy type (6 extra specs)", &refs, &r);
    if !cfg!(debug_assertions) {
        assert!(typical < Duration::from_micros(100), "{typical:?}");
        assert!(heavy < Duration::from_micros(200), "{heavy:?}");
    }
}

#[test]
#[ignore = "timing: run in release"]
fn baseline_costs() {
    let pools = pools();
    let refs: Vec<&Pool> = pools.iter().collect();
    let reason = String::from("capability volume_backend_name is 'lvm-fast', needs 'lvm'");
    let time = |f: &dyn Fn() -> usize| {
        (0..300)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .min()
            .unwrap_or_default()
    };
    let all_pass = time(&|| refs.iter().map(|_| Verdict::Pass).collect::<Vec<_>>().len());
    let third_rejected = time(&|| {
        refs.iter()
            .map(|p| {
                if p.id % 3 == 0 {
                    Verdict::Reject(reason.clone())
                } else {
                    Verdict::Pass
                }
            })
            .collect::<Vec<_>>()
            .len()
    });
    let lookups = time(&|| {
        refs.iter()
            .filter(|p| p.capabilities.contains_key("volume_backend_name"))
            .count()
    });
    println!("baseline: all pass {all_pass:?}, a third rejected {third_rejected:?}, one capability lookup each {lookups:?}");
}
