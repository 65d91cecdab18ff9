//! `AllocatedCapacityWeigher`: Cinder's `weights/capacity.py` (`AllocatedCapacityWeigher`).
//!
//! The raw weight is the pool's `allocated_capacity_gb` (what Kiln's volumes take there).
//! Cinder's multiplier `allocated_capacity_weight_multiplier` defaults to **−1.0** (place on
//! the pool with the least allocated: spread); the host must apply it. Deviation: NaN → 0.

use kiln_plugin_sdk::{Pool, Request, Weigher};

use crate::common::not_nan;

/// Weighs pools by their allocated capacity (host multiplier −1 spreads).
#[derive(Debug, Default, Clone, Copy)]
pub struct AllocatedCapacityWeigher;

impl Weigher for AllocatedCapacityWeigher {
    const NAME: &'static str = "AllocatedCapacityWeigher";

    fn new() -> Self {
        AllocatedCapacityWeigher
    }

    fn weight(&self, pool: &Pool, _request: &Request) -> f64 {
        not_nan(pool.allocated_capacity_gb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{pool, request, winner};

    /// Cinder's fake hosts 1–5: allocated 0, 1748, 256, 1848, 1548.
    fn raw() -> Vec<f64> {
        [0.0, 1748.0, 256.0, 1848.0, 1548.0]
            .iter()
            .map(|a| {
                let mut p = pool("h@b", "p");
                p.allocated_capacity_gb = *a;
                AllocatedCapacityWeigher::new().weight(&p, &request(1))
            })
            .collect()
    }

    #[test]
    fn default_of_spreading_first() {
        assert_eq!(winner(&raw(), -1.0), (0, 0.0)); // host1
    }

    #[test]
    fn positive_multiplier_stacks() {
        assert_eq!(winner(&raw(), 1.0), (3, 1.0)); // test_capacity_weight_multiplier1: host4
    }

    #[test]
    fn multiplier_minus_two_still_spreads() {
        assert_eq!(winner(&raw(), -2.0), (0, 0.0)); // test_capacity_weight_multiplier2: host1
    }

    #[test]
    fn nan_is_zero() {
        let mut p = pool("h@b", "p");
        p.allocated_capacity_gb = f64::NAN;
        assert_eq!(AllocatedCapacityWeigher::new().weight(&p, &request(1)), 0.0);
    }
}
