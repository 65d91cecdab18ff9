//! `CapacityWeigher`: Cinder's `weights/capacity.py` with `utils.calculate_virtual_free_capacity`.
//!
//! The raw weight is the pool's free capacity: with thin provisioning (the pool supports it
//! and the volume type does not say `provisioning:type` = `thick`) the virtual free capacity
//! `total × max_over_subscription_ratio − provisioned − floor(total × reserved%)`, otherwise
//! `free − floor(total × reserved%)`. The host normalises and multiplies by the weigher's
//! multiplier (Cinder's `capacity_weight_multiplier`, default 1.0: spread; negative: stack).
//!
//! A pool whose free *or* total capacity is `infinite` or `unknown` gets, exactly as in
//! Cinder (which treats both alike, "to discourage drivers from reporting such capacity"),
//! `-1.0` when the multiplier is positive and `f64::INFINITY` otherwise; the host maps
//! infinity just past the best finite weight, so with the negative multiplier such a pool
//! also ranks last. The weigher reads the multiplier from its own setting
//! `capacity_weight_multiplier` (default 1.0), which must equal the multiplier the host
//! applies.
//!
//! Deviation: a NaN weight (from NaN capacities) becomes 0.

use kiln_plugin_sdk::{config, Capacity, Pool, Request, Weigher};

use crate::common::{not_nan, thin_requested};

/// Prefers the pools with the most (virtual) free capacity.
#[derive(Debug, Clone, Copy)]
pub struct CapacityWeigher {
    multiplier: f64,
}

fn weight(pool: &Pool, thin: bool, multiplier: f64) -> f64 {
    let (Capacity::Gb(free), Capacity::Gb(total)) = (pool.free_capacity_gb, pool.total_capacity_gb)
    else {
        return if multiplier > 0.0 {
            -1.0
        } else {
            f64::INFINITY
        };
    };
    let reserved = (total * f64::from(pool.reserved_percentage) / 100.0).floor();
    let w = if thin && pool.thin_provisioning_support {
        total * pool.max_over_subscription_ratio - pool.provisioned_capacity_gb - reserved
    } else {
        free - reserved
    };
    not_nan(w)
}

impl Weigher for CapacityWeigher {
    const NAME: &'static str = "CapacityWeigher";

    fn new() -> Self {
        CapacityWeigher {
            multiplier: config::get_or("capacity_weight_multiplier", 1.0),
        }
    }

    fn weight(&self, pool: &Pool, request: &Request) -> f64 {
        weight(pool, thin_requested(request), self.multiplier)
    }

    fn weigh(&self, request: &Request, pools: &[&Pool]) -> Vec<f64> {
        let thin = thin_requested(request);
        pools
            .iter()
            .map(|p| weight(p, thin, self.multiplier))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{capacity_pool, gb, request, vtype, winner, Cap};

    /// Cinder's `FakeHostManager` hosts 1–5.
    fn hosts() -> Vec<Pool> {
        vec![
            capacity_pool(
                "host1",
                Cap {
                    total: gb(1024.0),
                    free: gb(1024.0),
                    provisioned: 0.0,
                    ratio: 1.0,
                    reserved: 10,
                    thin: false,
                    thick: true,
                },
            ),
            capacity_pool(
                "host2",
                Cap {
                    total: gb(2048.0),
                    free: gb(300.0),
                    provisioned: 1748.0,
                    ratio: 1.5,
                    reserved: 10,
                    thin: true,
                    thick: false,
                },
            ),
            capacity_pool(
                "host3",
                Cap {
                    total: gb(512.0),
                    free: gb(256.0),
                    provisioned: 256.0,
                    ratio: 2.0,
                    reserved: 0,
                    thin: false,
                    thick: true,
                },
            ),
            capacity_pool(
                "host4",
                Cap {
                    total: gb(2048.0),
                    free: gb(200.0),
                    provisioned: 2047.0,
                    ratio: 1.0,
                    reserved: 5,
                    thin: true,
                    thick: false,
                },
            ),
            capacity_pool(
                "host5",
                Cap {
                    total: Capacity::Infinite,
                    free: Capacity::Unknown,
                    provisioned: 1548.0,
                    ratio: 1.0,
                    reserved: 5,
                    thin: true,
                    thick: false,
                },
            ),
        ]
    }

    fn weigh(pools: &[Pool], r: &Request, multiplier: f64) -> Vec<f64> {
        let refs: Vec<&Pool> = pools.iter().collect();
        CapacityWeigher { multiplier }.weigh(r, &refs)
    }

    fn types() -> Vec<(Option<kiln_plugin_sdk::VolumeType>, bool)> {
        vec![
            (vtype(&[("provisioning:type", "thin")]), true),
            (vtype(&[("provisioning:type", "thick")]), false),
            (vtype(&[]), true),
            (None, true),
        ]
    }

    #[test]
    fn raw_weights_are_virtual_or_actual_free_capacity() {
        let r = request(1);
        assert_eq!(
            weigh(&hosts(), &r, 1.0),
            vec![922.0, 1120.0, 256.0, -101.0, -1.0]
        );
        let thick = Request {
            volume_type: vtype(&[("provisioning:type", "thick")]),
            ..request(1)
        };
        assert_eq!(
            weigh(&hosts(), &thick, 1.0),
            vec![922.0, 96.0, 256.0, 98.0, -1.0]
        );
    }

    #[test]
    fn default_of_spreading_first() {
        // test_default_of_spreading_first: host2 wins (host1 for thick types), weight 1.0
        for (t, thin) in types() {
            let r = Request {
                volume_type: t,
                ..request(1)
            };
            let (i, w) = winner(&weigh(&hosts(), &r, 1.0), 1.0);
            assert_eq!((i, w), (if thin { 1 } else { 0 }, 1.0));
        }
    }

    #[test]
    fn negative_multiplier_stacks() {
        // test_capacity_weight_multiplier1: host4 wins (host2 for thick), weight 0.0
        for (t, thin) in types() {
            let r = Request {
                volume_type: t,
                ..request(1)
            };
            let raw = weigh(&hosts(), &r, -1.0);
            assert_eq!(raw[4], f64::INFINITY);
            let (i, w) = winner(&raw, -1.0);
            assert_eq!((i, w), (if thin { 3 } else { 1 }, 0.0));
        }
    }

    #[test]
    fn multiplier_two_scales() {
        // test_capacity_weight_multiplier2: host2 wins (host1 for thick), weight 2.0
        for (t, thin) in types() {
            let r = Request {
                volume_type: t,
                ..request(1)
            };
            let (i, w) = winner(&weigh(&hosts(), &r, 2.0), 2.0);
            assert_eq!((i, w), (if thin { 1 } else { 0 }, 2.0));
        }
    }

    #[test]
    fn no_unknown_or_infinite() {
        // test_capacity_weight_no_unknown_or_infinite: host4 best (0.0), host2 worst (-1.0)
        let pools = &hosts()[..4];
        let norm = crate::testutil::normalize(&weigh(pools, &request(1), -1.0));
        let scored: Vec<f64> = norm.iter().map(|w| -w).collect();
        assert_eq!(scored[3], 0.0);
        assert_eq!(scored[1], -1.0);
    }

    #[test]
    fn unknown_or_infinite_capacity_gets_the_lowest_weight() {
        // test_capacity_weight_free_unknown / _cap_unknown / _free_infinite / _cap_infinite
        let specials = [
            (gb(3000.0), Capacity::Unknown),
            (Capacity::Unknown, gb(3000.0)),
            (gb(3000.0), Capacity::Infinite),
            (Capacity::Infinite, gb(3000.0)),
        ];
        for (total, free) in specials {
            let mut pools = hosts();
            pools[4] = capacity_pool(
                "host5",
                Cap {
                    total,
                    free,
                    provisioned: 1548.0,
                    ratio: 1.0,
                    reserved: 5,
                    thin: true,
                    thick: false,
                },
            );
            // Positive multiplier: -1, below every pool with free space.
            assert_eq!(weigh(&pools, &request(1), 1.0)[4], -1.0);
            // Negative multiplier: infinity, which the host turns into the worst score.
            let raw = weigh(&pools, &request(1), -1.0);
            let norm = crate::testutil::normalize(&raw);
            assert_eq!(norm[4], 1.0, "{total:?}/{free:?}");
            let (i, w) = winner(&raw, -1.0);
            assert_eq!((i, w), (3, 0.0));
        }
    }

    #[test]
    fn default_multiplier_setting_is_positive() {
        let w = CapacityWeigher::new();
        assert_eq!(w.multiplier, 1.0);
        let p = capacity_pool(
            "x",
            Cap {
                free: Capacity::Infinite,
                total: gb(1.0),
                ..Cap::default()
            },
        );
        assert_eq!(w.weight(&p, &request(1)), -1.0);
    }

    #[test]
    fn weights_are_never_nan() {
        let p = capacity_pool(
            "x",
            Cap {
                free: gb(f64::NAN),
                total: gb(f64::NAN),
                ..Cap::default()
            },
        );
        assert_eq!(CapacityWeigher::new().weight(&p, &request(1)), 0.0);
    }
}
