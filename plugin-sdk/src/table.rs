//! The plugin's copy of the scheduler's pools, kept current by the host's deltas.
//!
//! Pool ids are handles the host hands out densely (it reuses the smallest free id), so the
//! table is a vector indexed by id: a lookup is an index, not a hash. That lookup runs once
//! per candidate per request, which makes it the hottest line of every plugin.

use crate::types::{Pool, PoolDelta};

/// Pools by id.
#[derive(Debug, Default, Clone)]
pub struct PoolTable {
    slots: Vec<Option<Pool>>,
    len: usize,
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
                    let at = pool.id as usize;
                    if at >= self.slots.len() {
                        self.slots.resize_with(at + 1, || None);
                    }
                    if self.slots[at].replace(pool).is_none() {
                        self.len += 1;
                    }
                }
                PoolDelta::Consume(c) => {
                    if let Some(p) = self.get_mut(c.id) {
                        p.free_capacity_gb = c.free_capacity_gb;
                        p.allocated_capacity_gb = c.allocated_capacity_gb;
                        p.provisioned_capacity_gb = c.provisioned_capacity_gb;
                        p.total_volumes = c.total_volumes;
                    }
                }
                PoolDelta::Remove(id) => {
                    if let Some(slot) = self.slots.get_mut(id as usize) {
                        if slot.take().is_some() {
                            self.len -= 1;
                        }
                    }
                    while matches!(self.slots.last(), Some(None)) {
                        self.slots.pop();
                    }
                }
                PoolDelta::Clear => {
                    self.slots.clear();
                    self.len = 0;
                }
            }
        }
    }

    pub fn get(&self, id: u32) -> Option<&Pool> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut Pool> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Every pool, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Pool> {
        self.slots.iter().filter_map(Option::as_ref)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pools of `ids` that are held, in order, and the ids that are not.
    pub fn resolve(&self, ids: &[u32]) -> (Vec<&Pool>, Vec<u32>) {
        let mut known = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.get(*id) {
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

    #[test]
    fn sparse_ids_count_and_iterate_in_order() {
        let mut t = PoolTable::new();
        t.apply([
            PoolDelta::Upsert(pool(7)),
            PoolDelta::Upsert(pool(3)),
            PoolDelta::Upsert(pool(3)),
        ]);
        assert_eq!(t.len(), 2, "an upsert of a held id replaces it");
        assert_eq!(t.iter().map(|p| p.id).collect::<Vec<_>>(), vec![3, 7]);
        t.apply([
            PoolDelta::Remove(7),
            PoolDelta::Remove(7),
            PoolDelta::Remove(99),
        ]);
        assert_eq!(t.len(), 1, "removing an absent id changes nothing");
        assert!(t.get(7).is_none() && t.get(3).is_some());
    }
}
