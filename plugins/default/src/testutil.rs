//! Builders for the unit tests, and the host's weight normalisation (to check winners the
//! way Cinder's weigher tests do).

use std::collections::BTreeMap;

use kiln_plugin_sdk::{CapValue, Capacity, Pool, Request, VolumeType};

/// A pool of `backend` (`host@backend`) named `pool`, zone "nova", 0 GB everything.
pub fn pool(backend: &str, pool: &str) -> Pool {
    Pool {
        id: 0,
        backend: backend.into(),
        pool: pool.into(),
        host: backend.split('@').next().unwrap_or(backend).into(),
        availability_zone: "nova".into(),
        total_capacity_gb: Capacity::Gb(0.0),
        free_capacity_gb: Capacity::Gb(0.0),
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
    }
}

/// A pool with capacity figures, like Cinder's `FakeBackendState` dicts.
pub struct Cap {
    pub total: Capacity,
    pub free: Capacity,
    pub provisioned: f64,
    pub ratio: f64,
    pub reserved: u8,
    pub thin: bool,
    pub thick: bool,
}

impl Default for Cap {
    fn default() -> Self {
        Cap {
            total: Capacity::Gb(0.0),
            free: Capacity::Gb(0.0),
            provisioned: 0.0,
            ratio: 1.0,
            reserved: 0,
            thin: false,
            thick: true,
        }
    }
}

pub fn gb(v: f64) -> Capacity {
    Capacity::Gb(v)
}

pub fn capacity_pool(name: &str, c: Cap) -> Pool {
    let mut p = pool(&format!("{name}@lvm"), "pool");
    p.total_capacity_gb = c.total;
    p.free_capacity_gb = c.free;
    p.provisioned_capacity_gb = c.provisioned;
    p.allocated_capacity_gb = c.provisioned;
    p.max_over_subscription_ratio = c.ratio;
    p.reserved_percentage = c.reserved;
    p.thin_provisioning_support = c.thin;
    p.thick_provisioning_support = c.thick;
    p
}

/// A create request of `size` GB.
pub fn request(size: u64) -> Request {
    Request {
        size_gb: size,
        volume_id: "7d0b2f5a-9c1e-4a53-8d7e-3f6b1c2a9e10".into(),
        ..Default::default()
    }
}

/// A volume type with `specs`.
pub fn vtype(specs: &[(&str, &str)]) -> Option<VolumeType> {
    Some(VolumeType {
        id: "5f3c1e2a-0b9d-4c7e-8a61-2d4f9b3e7c05".into(),
        name: "t".into(),
        extra_specs: specs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

pub fn caps(p: &mut Pool, caps: &[(&str, CapValue)]) {
    for (k, v) in caps {
        p.capabilities.insert(k.to_string(), v.clone());
    }
}

pub fn text(s: &str) -> CapValue {
    CapValue::Text(s.into())
}

/// The host's normalisation (`host/src/plugins/chain.rs`): Cinder's min–max scaling with
/// infinite weights moved just past the finite range.
pub fn normalize(raw: &[f64]) -> Vec<f64> {
    let finite: Vec<f64> = raw.iter().copied().filter(|w| w.is_finite()).collect();
    let fmin = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let fmax = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (fmin, fmax) = if finite.is_empty() {
        (0.0, 0.0)
    } else {
        (fmin, fmax)
    };
    let offset = if fmax - fmin == 0.0 {
        10_000.0
    } else {
        (fmax - fmin) * 100.0
    };
    let fixed: Vec<f64> = raw
        .iter()
        .map(|w| match *w {
            f64::INFINITY => fmax + offset,
            f64::NEG_INFINITY => fmin - offset,
            w => w,
        })
        .collect();
    let min = fixed.iter().copied().fold(f64::INFINITY, f64::min);
    let max = fixed.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max <= min {
        return vec![0.0; raw.len()];
    }
    fixed.iter().map(|w| (w - min) / (max - min)).collect()
}

/// Index of the winner after normalising and applying `multiplier` (ties: first).
pub fn winner(raw: &[f64], multiplier: f64) -> (usize, f64) {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, w) in normalize(raw).into_iter().enumerate() {
        let w = w * multiplier;
        if w > best.1 {
            best = (i, w);
        }
    }
    best
}

/// A tiny deterministic generator for the robustness tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
