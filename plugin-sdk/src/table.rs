//! The plugin's copy of the scheduler's pools, kept current by the host's deltas.

use std::collections::HashMap;

use crate::types::{Pool, PoolDelta};

/// Pools by id.
#[derive(Debug, Default, Clone)]
pub struct PoolTable {
    pools: HashMap<u32, Pool>,
}

impl PoolTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply deltas in order. A `consume` for a pool not held is ignored (the host follows
    /// a removal with no consumption, so this only happens after a broken sync, which the
    /// host detects through [`PoolTable::len`]).
    pub fn apply(&mut self, deltas: impl IntoIterator<Item = PoolDelta>) {
        for delta in deltas {
            match delta {
                PoolDelta::Upsert(pool) => {
                    self.pools.insert(pool.id, pool);
                }
                PoolDelta::Consume(c) => {
                    if let Some(p) = self.pools.get_mut(&c.id) {
                        p.free_capacity_gb = c.free_capacity_gb;
                        p.allocated_capacity_gb = c.allocated_capacity_gb;
                        p.provisioned_capacity_gb = c.provisioned_capacity_gb;
                        p.total_volumes = c.total_volumes;
                    }
                }
                PoolDelta::Remove(id) => {
                    self.pools.remove(&id);
                }
                PoolDelta::Clear => self.pools.clear(),
            }
        }
    }

    pub fn get(&self, id: u32) -> Option<&Pool> {
        self.pools.get(&id)
    }

    /// Every pool, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Pool> {
        self.pools.values()
    }

    pub fn len(&self) -> usize {
        self.pools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// The pools of `ids` that are held, in order, and the ids that are not.
    pub fn resolve(&self, ids: &[u32]) -> (Vec<&Pool>, Vec<u32>) {
        let mut known = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.pools.get(id) {
                Some(p) => known.push(p),
                None => missing.push(*id),
            }
        }
        (known, missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Capacity, Consumption};

    pub(crate) fn pool(id: u32) -> Pool {
        Pool {
            id,
            backend: format!("h@b{id}"),
            pool: "p".into(),
            host: "h".into(),
            availability_zone: "nova".into(),
            total_capacity_gb: Capacity::Gb(100.0),
            free_capacity_gb: Capacity::Gb(100.0),
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
            capabilities: Default::default(),
        }
    }

    #[test]
    fn deltas_upsert_consume_remove_clear() {
        let mut t = PoolTable::new();
        t.apply([PoolDelta::Upsert(pool(1)), PoolDelta::Upsert(pool(2))]);
        assert_eq!(t.len(), 2);
        t.apply([PoolDelta::Consume(Consumption {
            id: 1,
            free_capacity_gb: Capacity::Gb(90.0),
            allocated_capacity_gb: 10.0,
            provisioned_capacity_gb: 10.0,
            total_volumes: 1,
        })]);
        assert_eq!(t.get(1).unwrap().free_capacity_gb, Capacity::Gb(90.0));
        assert_eq!(t.get(1).unwrap().total_volumes, 1);
        t.apply([PoolDelta::Remove(2)]);
        let (known, missing) = t.resolve(&[1, 2]);
        assert_eq!(known.len(), 1);
        assert_eq!(missing, vec![2]);
        t.apply([PoolDelta::Clear]);
        assert!(t.is_empty());
    }
}
