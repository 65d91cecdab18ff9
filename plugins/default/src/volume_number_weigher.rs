//! `VolumeNumberWeigher`: Cinder's `weights/volume_number.py`.
//!
//! The raw weight is the number of volumes on the pool. Cinder counts them in its database
//! per pool at each request; Kiln's host keeps `total_volumes` current (reports plus
//! placements), so the count is read from the pool. Cinder's `volume_number_multiplier`
//! defaults to **−1.0** (fewest volumes wins: spread); the host must apply it.

use kiln_plugin_sdk::{Pool, Request, Weigher};

/// Weighs pools by their number of volumes (host multiplier −1 spreads).
#[derive(Debug, Default, Clone, Copy)]
pub struct VolumeNumberWeigher;

impl Weigher for VolumeNumberWeigher {
    const NAME: &'static str = "VolumeNumberWeigher";

    fn new() -> Self {
        VolumeNumberWeigher
    }

    fn weight(&self, pool: &Pool, _request: &Request) -> f64 {
        pool.total_volumes as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{pool, request, winner};

    /// Cinder's test counts: host1 … host5 hold 1 … 5 volumes.
    fn raw() -> Vec<f64> {
        (1..=5)
            .map(|n| {
                let mut p = pool("h@b", "p");
                p.total_volumes = n;
                VolumeNumberWeigher::new().weight(&p, &request(1))
            })
            .collect()
    }

    #[test]
    fn negative_multiplier_prefers_fewest_volumes() {
        assert_eq!(winner(&raw(), -1.0), (0, 0.0)); // test_volume_number_weight_multiplier1: host1
    }

    #[test]
    fn positive_multiplier_prefers_most_volumes() {
        assert_eq!(winner(&raw(), 1.0), (4, 1.0)); // test_volume_number_weight_multiplier2: host5
    }
}
