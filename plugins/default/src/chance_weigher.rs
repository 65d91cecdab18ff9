//! `ChanceWeigher`: Cinder's `weights/chance.py`.
//!
//! Cinder weighs each backend with `random.random()`. A plugin has no source of randomness
//! (no WASI), so the weight is a uniform value in [0, 1) derived by hashing the request's
//! volume id, the pool's id and the pool's full name (FNV-1a 64 over the bytes, finished
//! with the splitmix64 mixer, top 53 bits as the fraction). Deviation: the weight is
//! deterministic per (volume, pool), so a dry run or a retry of the same request reproduces
//! the choice, while different volumes still spread uniformly.

use kiln_plugin_sdk::{Pool, Request, Weigher};

/// Weighs pools with a pseudo-random value, uniform in [0, 1), stable per volume and pool.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChanceWeigher;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn chance(pool: &Pool, request: &Request) -> f64 {
    let mut h = fnv1a(FNV_OFFSET, request.volume_id.as_bytes());
    h = fnv1a(h, &[0xff]);
    h = fnv1a(h, &pool.id.to_le_bytes());
    h = fnv1a(h, &[0xff]);
    h = fnv1a(h, pool.backend.as_bytes());
    h = fnv1a(h, b"#");
    h = fnv1a(h, pool.pool.as_bytes());
    (splitmix64(h) >> 11) as f64 / (1u64 << 53) as f64
}

impl Weigher for ChanceWeigher {
    const NAME: &'static str = "ChanceWeigher";

    fn new() -> Self {
        ChanceWeigher
    }

    fn weight(&self, pool: &Pool, request: &Request) -> f64 {
        chance(pool, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{pool, request};

    #[test]
    fn weights_are_in_unit_interval_and_deterministic() {
        let r = request(1);
        let p = pool("host1@lvm", "a");
        let w = ChanceWeigher::new().weight(&p, &r);
        assert!((0.0..1.0).contains(&w));
        assert_eq!(w, ChanceWeigher::new().weight(&p, &r));
    }

    #[test]
    fn weights_differ_by_volume_and_pool() {
        let mut r2 = request(1);
        r2.volume_id = "another".into();
        let a = pool("host1@lvm", "a");
        let mut b = pool("host1@lvm", "a");
        b.id = 7;
        let c = pool("host1@lvm", "b");
        let w = |p: &Pool, r: &Request| ChanceWeigher::new().weight(p, r);
        let base = w(&a, &request(1));
        assert_ne!(base, w(&a, &r2));
        assert_ne!(base, w(&b, &request(1)));
        assert_ne!(base, w(&c, &request(1)));
    }

    #[test]
    fn weights_spread_uniformly() {
        // 10 000 volumes on one pool: each tenth of [0, 1) gets roughly a tenth.
        let p = pool("host1@lvm", "a");
        let mut buckets = [0u32; 10];
        for i in 0..10_000 {
            let mut r = request(1);
            r.volume_id = format!("vol-{i}");
            let w = ChanceWeigher::new().weight(&p, &r);
            buckets[(w * 10.0) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|n| (850..1150).contains(n)),
            "{buckets:?}"
        );
    }
}
