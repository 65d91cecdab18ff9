//! `CapacityFilter`: Cinder's `capacity_filter.py`.
//!
//! Requested size: [`Request::requested_gb`] (for extend the growth; 0 passes, as Cinder's
//! "manage" case). Free and total capacity `infinite` / `unknown` follow Cinder: unknown or
//! infinite free always passes; unknown or infinite total passes only with 0 % reserved;
//! a total ≤ 0 fails. The reserved share is `floor(total × reserved%)`. With thin
//! provisioning (the pool supports it and the volume type does not say
//! `provisioning:type` = `thick`) the pool fails when `(provisioned + size) / total` would
//! exceed `max_over_subscription_ratio`, or when `(free − reserved) × ratio` is below the
//! size; a ratio below 1 fails. Otherwise `free − reserved` must hold the size.
//!
//! Deviations:
//! - Cinder passes the backend a volume already lives on (`vol_exists_on`, for retype); the
//!   Kiln request does not say where the volume lives, so that shortcut is not applied.
//! - Cinder fails a backend whose free capacity is `None` (never reported); Kiln's
//!   [`Capacity`] cannot be missing.

use kiln_plugin_sdk::{Capacity, Filter, Pool, Request, Verdict};

use crate::common::{thin_requested, Outcome, Reason};

/// Removes pools that cannot hold the requested size.
#[derive(Debug, Default, Clone, Copy)]
pub struct CapacityFilter;

impl Filter for CapacityFilter {
    const NAME: &'static str = "CapacityFilter";

    fn new() -> Self {
        CapacityFilter
    }

    fn passes(&self, pool: &Pool, request: &Request) -> Verdict {
        check(pool, request.requested_gb() as f64, thin_requested(request))
    }

    fn filter(&self, request: &Request, pools: &[&Pool]) -> Vec<Verdict> {
        run(request, pools)
    }

    fn accept(&self, request: &Request, pools: &[&Pool]) -> Vec<bool> {
        run(request, pools)
    }
}

fn run<O: Outcome>(request: &Request, pools: &[&Pool]) -> Vec<O> {
    let size = request.requested_gb() as f64;
    let thin = thin_requested(request);
    pools.iter().map(|p| check(p, size, thin)).collect()
}

fn check<O: Outcome>(pool: &Pool, size: f64, thin: bool) -> O {
    // A requested size of 0 is Cinder's "manage existing" case.
    if size == 0.0 {
        return O::pass();
    }
    // Backends that cannot tell their free space are assumed to fit (a failure reschedules).
    let Capacity::Gb(free_space) = pool.free_capacity_gb else {
        return O::pass();
    };
    let reserved_pct = pool.reserved_percentage;
    let total = match pool.total_capacity_gb {
        Capacity::Gb(t) => t,
        // Cinder cannot compute the reserved share of an infinite/unknown total.
        _ if reserved_pct == 0 => return O::pass(),
        Capacity::Infinite => return reject_total_special::<O>("infinite", reserved_pct),
        Capacity::Unknown => return reject_total_special::<O>("unknown", reserved_pct),
    };
    if total <= 0.0 {
        return O::reject(|| Reason::new("total capacity is ").n(total).s(" GB").done());
    }
    let free = free_space - (total * f64::from(reserved_pct) / 100.0).floor();
    let ratio = pool.max_over_subscription_ratio;

    if thin && pool.thin_provisioning_support {
        if ratio >= 1.0 {
            let provisioned_ratio = (pool.provisioned_capacity_gb + size) / total;
            if provisioned_ratio > ratio {
                return O::reject(|| {
                    Reason::new("provisioned ratio ")
                        .r(provisioned_ratio)
                        .s(" would exceed max over-subscription ratio ")
                        .r(ratio)
                        .done()
                });
            }
            let adjusted_free_virtual = free * ratio;
            if adjusted_free_virtual >= size {
                return O::pass();
            }
            return O::reject(|| {
                let mut why = Reason::new("needs ")
                    .n(size)
                    .s(" GB, ")
                    .n(adjusted_free_virtual)
                    .s(" GB virtual free (")
                    .n(free)
                    .s(" GB free x ratio ")
                    .r(ratio);
                if reserved_pct > 0 {
                    why = why.s(", reserved ").n(f64::from(reserved_pct)).s("%");
                }
                why.s(")").done()
            });
        }
        return O::reject(|| {
            Reason::new("max over-subscription ratio ")
                .r(ratio)
                .s(" is below 1.0")
                .done()
        });
    }

    // `!(free >= size)` would differ for NaN: Python's `free < size` lets NaN pass.
    if free < size {
        return O::reject(|| {
            let why = Reason::new("needs ")
                .n(size)
                .s(" GB, ")
                .n(free)
                .s(" GB free");
            reserved_note(why, reserved_pct).done()
        });
    }
    O::pass()
}

fn reserved_note(why: Reason, pct: u8) -> Reason {
    if pct == 0 {
        why
    } else {
        why.s(" (reserved ").n(f64::from(pct)).s("%)")
    }
}

fn reject_total_special<O: Outcome>(what: &str, pct: u8) -> O {
    O::reject(|| {
        Reason::new("total capacity is ")
            .s(what)
            .s(", cannot reserve ")
            .n(f64::from(pct))
            .s("%")
            .done()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{capacity_pool, gb, request, vtype, Cap};
    use kiln_plugin_sdk::Operation;

    fn run(size: u64, c: Cap) -> Verdict {
        CapacityFilter::new().passes(&capacity_pool("host1", c), &request(size))
    }

    fn thin(total: f64, free: f64, provisioned: f64, ratio: f64, reserved: u8) -> Cap {
        Cap {
            total: gb(total),
            free: gb(free),
            provisioned,
            ratio,
            reserved,
            thin: true,
            thick: false,
        }
    }

    fn thin_thick(total: f64, free: f64, provisioned: f64, ratio: f64, reserved: u8) -> Cap {
        Cap {
            thick: true,
            ..thin(total, free, provisioned, ratio, reserved)
        }
    }

    fn thick(total: f64, free: f64, reserved: u8) -> Cap {
        Cap {
            total: gb(total),
            free: gb(free),
            reserved,
            ..Cap::default()
        }
    }

    fn pass(v: Verdict) {
        assert_eq!(v, Verdict::Pass);
    }

    fn reject(v: Verdict) -> String {
        match v {
            Verdict::Reject(r) => r,
            Verdict::Pass => panic!("expected a reject"),
        }
    }

    #[test]
    fn enough_free_space_passes() {
        pass(run(100, thick(500.0, 200.0, 0))); // test_filter_passes
    }

    #[test]
    fn reserved_space_is_not_usable() {
        // test_filter_fails: 120 free − floor(200 × 20 %) = 80 < 100
        assert_eq!(
            reject(run(100, thick(200.0, 120.0, 20))),
            "needs 100 GB, 80 GB free (reserved 20%)"
        );
    }

    #[test]
    fn size_zero_passes_as_a_manage_request() {
        pass(run(0, thin(500.0, 200.0, 1500.0, 2.0, 5))); // test_filter_with_size_0
    }

    #[test]
    fn infinite_or_unknown_free_capacity_passes() {
        // test_filter_passes_infinite / _unknown
        for free in [Capacity::Infinite, Capacity::Unknown] {
            pass(run(
                100,
                Cap {
                    free,
                    reserved: 5,
                    ..Cap::default()
                },
            ));
        }
    }

    #[test]
    fn extend_needs_only_the_growth() {
        // test_filter_extend_request
        let r = kiln_plugin_sdk::Request {
            operation: Operation::Extend,
            size_gb: 50,
            new_size_gb: Some(100),
            ..request(50)
        };
        let p = capacity_pool("host1", thick(500.0, 60.0, 0));
        pass(CapacityFilter::new().passes(&p, &r));
        let p = capacity_pool("host1", thick(500.0, 49.0, 0));
        assert_eq!(
            reject(CapacityFilter::new().passes(&p, &r)),
            "needs 50 GB, 49 GB free"
        );
    }

    #[test]
    fn create_larger_than_free_fails() {
        reject(run(50, thick(500.0, 49.0, 0))); // test_filter_extend_request_negative
    }

    #[test]
    fn infinite_or_unknown_total_passes_only_without_reserve() {
        // test_filter_passes_total_infinite / _unknown, test_filter_fails_total_infinite / _unknown
        for total in [Capacity::Infinite, Capacity::Unknown] {
            pass(run(
                100,
                Cap {
                    total,
                    free: gb(10.0),
                    ..Cap::default()
                },
            ));
            let r = reject(run(
                100,
                Cap {
                    total,
                    free: gb(10.0),
                    reserved: 5,
                    ..Cap::default()
                },
            ));
            assert!(
                r.starts_with("total capacity is ") && r.ends_with("cannot reserve 5%"),
                "{r}"
            );
        }
        pass(run(
            100,
            Cap {
                total: Capacity::Infinite,
                free: Capacity::Infinite,
                ..Cap::default()
            },
        ));
    }

    #[test]
    fn zero_total_fails() {
        assert_eq!(
            reject(run(100, thick(0.0, 0.0, 5))),
            "total capacity is 0 GB"
        ); // test_filter_fails_total_zero
        reject(run(1, thick(-1.0, 100.0, 0)));
    }

    #[test]
    fn thin_pool_within_ratio_passes() {
        pass(run(100, thin(500.0, 200.0, 500.0, 2.0, 5))); // test_filter_thin_true_passes
        pass(run(3000, thin(500.0, 200.0, 7000.0, 20.0, 5))); // test_filter_thin_true_passes2 (ratio exactly 20)
    }

    #[test]
    fn thick_pool_ignores_the_ratio() {
        // test_filter_thin_false_passes
        let c = Cap {
            provisioned: 300.0,
            ..thick(500.0, 200.0, 5)
        };
        pass(run(100, c));
    }

    #[test]
    fn ratio_below_one_fails_a_thin_pool() {
        // test_filter_over_subscription_less_than_1
        let r = reject(run(200, thin(500.0, 100.0, 400.0, 0.8, 0)));
        assert_eq!(r, "max over-subscription ratio 0.8 is below 1.0");
    }

    #[test]
    fn exceeding_the_ratio_fails() {
        // test_filter_over_subscription_equal_to_1: (400 + 150) / 500 = 1.1 > 1.0
        let r = reject(run(150, thin(500.0, 200.0, 400.0, 1.0, 0)));
        assert_eq!(
            r,
            "provisioned ratio 1.1 would exceed max over-subscription ratio 1.0"
        );
        reject(run(100, thin(500.0, 200.0, 700.0, 1.5, 5))); // test_filter_over_subscription_fails
        let r = reject(run(2000, thin(500.0, 30.0, 9000.0, 20.0, 0))); // ..._fails2
        assert_eq!(
            r,
            "provisioned ratio 22.0 would exceed max over-subscription ratio 20.0"
        );
        reject(run(100, thin(500.0, 100.0, 1000.0, 2.0, 5))); // test_filter_reserved_thin_true_fails
        reject(run(100, thin_thick(500.0, 99.0, 1000.0, 2.0, 5))); // ..._thin_thick_true_fails2
    }

    #[test]
    fn reserved_space_counts_for_thick_pools() {
        // test_filter_reserved_thin_false_fails: 100 − 25 = 75 < 100
        let c = Cap {
            provisioned: 400.0,
            ..thick(500.0, 100.0, 5)
        };
        assert_eq!(
            reject(run(100, c)),
            "needs 100 GB, 75 GB free (reserved 5%)"
        );
    }

    #[test]
    fn thin_free_space_is_multiplied_by_the_ratio_after_the_reserve() {
        // test_filter_reserved_thin_thick_true_fails: (0 − 25) × 2 = −50
        let r = reject(run(100, thin_thick(500.0, 0.0, 800.0, 2.0, 5)));
        assert_eq!(
            r,
            "needs 100 GB, -50 GB virtual free (-25 GB free x ratio 2.0, reserved 5%)"
        );
        pass(run(100, thin_thick(500.0, 125.0, 400.0, 2.0, 5))); // ..._thin_thick_true_passes
        pass(run(100, thin(500.0, 80.0, 600.0, 2.0, 5))); // test_filter_reserved_thin_true_passes
        pass(run(100, thin_thick(500.0, 100.0, 400.0, 2.0, 0))); // ..._thin_thick_true_passes2
    }

    #[test]
    fn provisioning_type_thick_disables_thin_logic() {
        // test_filter_provisioning_type: every variant passes this pool
        let c = || thin_thick(500.0, 100.0, 400.0, 2.0, 0);
        for t in [
            vtype(&[("provisioning:type", "thick")]),
            vtype(&[("provisioning:type", "thin")]),
            vtype(&[]),
            None,
        ] {
            let r = kiln_plugin_sdk::Request {
                volume_type: t,
                ..request(100)
            };
            pass(CapacityFilter::new().passes(&capacity_pool("h", c()), &r));
        }
        // A pool only thin provisioning can fit: 50 free × 2.0 = 100.
        let c = || thin_thick(500.0, 50.0, 100.0, 2.0, 0);
        let thin_r = kiln_plugin_sdk::Request {
            volume_type: vtype(&[("provisioning:type", "thin")]),
            ..request(100)
        };
        let thick_r = kiln_plugin_sdk::Request {
            volume_type: vtype(&[("provisioning:type", "thick")]),
            ..request(100)
        };
        pass(CapacityFilter::new().passes(&capacity_pool("h", c()), &thin_r));
        assert_eq!(
            reject(CapacityFilter::new().passes(&capacity_pool("h", c()), &thick_r)),
            "needs 100 GB, 50 GB free"
        );
    }

    #[test]
    fn batch_and_single_answers_agree() {
        let pools = [
            capacity_pool("a", thick(500.0, 200.0, 0)),
            capacity_pool("b", thick(200.0, 120.0, 20)),
            capacity_pool("c", thin(500.0, 200.0, 700.0, 1.5, 5)),
        ];
        let refs: Vec<&Pool> = pools.iter().collect();
        let r = request(100);
        let f = CapacityFilter::new();
        let batch = f.filter(&r, &refs);
        let single: Vec<Verdict> = pools.iter().map(|p| f.passes(p, &r)).collect();
        assert_eq!(batch, single);
    }

    #[test]
    fn nan_capacities_do_not_panic() {
        let c = Cap {
            total: gb(f64::NAN),
            free: gb(f64::NAN),
            ratio: f64::NAN,
            thin: true,
            ..Cap::default()
        };
        let _ = run(10, c);
    }
}
