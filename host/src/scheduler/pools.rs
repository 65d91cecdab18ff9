//! The plugins' view of the pools: dense ids for `host@backend#pool` names, the conversion
//! of a capability report into the WIT pool records, the deltas that keep a chain's table in
//! step with the reports, and the in-memory consumption of a placement (and its revert).
//!
//! Ids are handed out smallest-free-first so the plugins' tables (vectors indexed by id)
//! stay dense however backends come and go.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use kiln_plugin_sdk::{self as sdk, CapValue, Consumption, PoolDelta, PoolTable};

use super::CapabilityReport;
use crate::drivers::{Capacity, PoolStats, SpecialCapacity};

/// Names ↔ ids, and which pools each backend has.
#[derive(Debug, Default)]
pub struct PoolIndex {
    ids: HashMap<String, u32>,
    names: Vec<Option<String>>,
    free: BTreeSet<u32>,
    by_backend: BTreeMap<String, Vec<u32>>,
    /// Per pool id: bumped by every report, so a consumption made before a newer report is
    /// not reverted against numbers that no longer include it.
    generation: HashMap<u32, u64>,
    next_generation: u64,
}

/// A capacity consumed by a placement, kept to revert it if the placement is retried.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Consumed {
    pub pool: String,
    pub size_gb: u64,
    generation: u64,
}

fn capacity(c: Capacity) -> sdk::Capacity {
    match c {
        Capacity::Gb(v) => sdk::Capacity::Gb(v),
        Capacity::Special(SpecialCapacity::Infinite) => sdk::Capacity::Infinite,
        Capacity::Special(SpecialCapacity::Unknown) => sdk::Capacity::Unknown,
    }
}

fn cap_value(v: &serde_json::Value) -> Option<CapValue> {
    match v {
        serde_json::Value::String(s) => Some(CapValue::Text(s.clone())),
        serde_json::Value::Bool(b) => Some(CapValue::Boolean(*b)),
        serde_json::Value::Number(n) => n.as_f64().map(CapValue::Number),
        // Lists and maps have no WIT capability value; shown as their JSON text.
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            Some(CapValue::Text(v.to_string()))
        }
        serde_json::Value::Null => None,
    }
}

/// The WIT pool record of one pool of `report`.
pub fn to_pool(id: u32, report: &CapabilityReport, stats: &PoolStats) -> sdk::Pool {
    let backend = &report.capabilities;
    let mut caps = BTreeMap::new();
    for (k, v) in &stats.extra {
        if let Some(v) = cap_value(v) {
            caps.insert(k.clone(), v);
        }
    }
    let text = |s: &str| CapValue::Text(s.to_string());
    caps.insert(
        "volume_backend_name".into(),
        text(&backend.volume_backend_name),
    );
    caps.insert("vendor_name".into(), text(&backend.vendor_name));
    caps.insert("driver_version".into(), text(&backend.driver_version));
    caps.insert("storage_protocol".into(), text(&backend.storage_protocol));
    caps.insert("QoS_support".into(), CapValue::Boolean(stats.qos_support));
    let function = |key: &str| match stats.extra.get(key) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    sdk::Pool {
        id,
        backend: report.host.clone(),
        pool: stats.pool_name.clone(),
        host: report
            .host
            .split_once('@')
            .map_or(report.host.as_str(), |(h, _)| h)
            .to_string(),
        availability_zone: report.availability_zone.clone().unwrap_or_default(),
        total_capacity_gb: capacity(stats.total_capacity_gb),
        free_capacity_gb: capacity(stats.free_capacity_gb),
        allocated_capacity_gb: stats.allocated_capacity_gb,
        provisioned_capacity_gb: stats.provisioned_capacity_gb,
        reserved_percentage: stats.reserved_percentage,
        max_over_subscription_ratio: stats.max_over_subscription_ratio,
        thin_provisioning_support: stats.thin_provisioning_support,
        thick_provisioning_support: stats.thick_provisioning_support,
        total_volumes: stats.total_volumes,
        multiattach: stats.multiattach,
        filter_function: function("filter_function"),
        goodness_function: function("goodness_function"),
        capabilities: caps,
    }
}

/// `host@backend#pool`.
pub fn full_name(backend: &str, pool: &str) -> String {
    format!("{backend}#{pool}")
}

impl PoolIndex {
    fn allocate(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = match self.free.pop_first() {
            Some(id) => id,
            None => {
                self.names.push(None);
                (self.names.len() - 1) as u32
            }
        };
        self.names[id as usize] = Some(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    fn release(&mut self, id: u32) {
        if let Some(name) = self.names.get_mut(id as usize).and_then(Option::take) {
            self.ids.remove(&name);
            self.generation.remove(&id);
            self.free.insert(id);
        }
    }

    /// The deltas that make the plugins' pools of `report.host` equal to `report`: every
    /// reported pool upserted (new ones get ids), pools missing from it removed.
    pub fn apply_report(&mut self, report: &CapabilityReport) -> Vec<PoolDelta> {
        let mut deltas = Vec::new();
        let mut now: Vec<u32> = Vec::new();
        for stats in &report.capabilities.pools {
            let id = self.allocate(&full_name(&report.host, &stats.pool_name));
            self.next_generation += 1;
            self.generation.insert(id, self.next_generation);
            now.push(id);
            deltas.push(PoolDelta::Upsert(to_pool(id, report, stats)));
        }
        let before = self
            .by_backend
            .insert(report.host.clone(), now.clone())
            .unwrap_or_default();
        for id in before {
            if !now.contains(&id) {
                self.release(id);
                deltas.push(PoolDelta::Remove(id));
            }
        }
        deltas
    }

    /// Forget every pool of `backend`.
    pub fn drop_backend(&mut self, backend: &str) -> Vec<PoolDelta> {
        let ids = self.by_backend.remove(backend).unwrap_or_default();
        ids.into_iter()
            .map(|id| {
                self.release(id);
                PoolDelta::Remove(id)
            })
            .collect()
    }

    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).and_then(|n| n.as_deref())
    }

    /// Ids of every pool of the backends in `active`, except those in `excluded`.
    pub fn candidates(&self, active: &HashSet<String>, excluded: &[String]) -> Vec<u32> {
        self.by_backend
            .iter()
            .filter(|(backend, _)| active.contains(*backend) && !excluded.contains(backend))
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect()
    }

    /// The delta of placing `size_gb` on pool `id` (Cinder's `consume_from_volume`), and the
    /// record to revert it with.
    pub fn consume(
        &self,
        table: &PoolTable,
        id: u32,
        size_gb: u64,
    ) -> Option<(PoolDelta, Consumed)> {
        let pool = table.get(id)?;
        let size = size_gb as f64;
        let delta = PoolDelta::Consume(Consumption {
            id,
            free_capacity_gb: match pool.free_capacity_gb {
                sdk::Capacity::Gb(free) => sdk::Capacity::Gb(free - size),
                other => other,
            },
            allocated_capacity_gb: pool.allocated_capacity_gb + size,
            provisioned_capacity_gb: pool.provisioned_capacity_gb + size,
            total_volumes: pool.total_volumes + 1,
        });
        let consumed = Consumed {
            pool: self.name(id)?.to_string(),
            size_gb,
            generation: self.generation.get(&id).copied().unwrap_or_default(),
        };
        Some((delta, consumed))
    }

    /// The delta undoing `consumed`, unless the pool is gone or a newer report replaced the
    /// numbers it was taken from.
    pub fn revert(&self, table: &PoolTable, consumed: &Consumed) -> Option<PoolDelta> {
        let id = self.id(&consumed.pool)?;
        if self.generation.get(&id).copied().unwrap_or_default() != consumed.generation {
            return None;
        }
        let pool = table.get(id)?;
        let size = consumed.size_gb as f64;
        Some(PoolDelta::Consume(Consumption {
            id,
            free_capacity_gb: match pool.free_capacity_gb {
                sdk::Capacity::Gb(free) => sdk::Capacity::Gb(free + size),
                other => other,
            },
            allocated_capacity_gb: (pool.allocated_capacity_gb - size).max(0.0),
            provisioned_capacity_gb: (pool.provisioned_capacity_gb - size).max(0.0),
            total_volumes: pool.total_volumes.saturating_sub(1),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::BackendStats;

    fn stats(name: &str, free: f64) -> PoolStats {
        PoolStats {
            pool_name: name.into(),
            total_capacity_gb: Capacity::Gb(100.0),
            free_capacity_gb: Capacity::Gb(free),
            allocated_capacity_gb: 0.0,
            provisioned_capacity_gb: 0.0,
            reserved_percentage: 0,
            max_over_subscription_ratio: 1.0,
            thin_provisioning_support: false,
            thick_provisioning_support: true,
            total_volumes: 0,
            multiattach: false,
            qos_support: false,
            extra: [(
                "filter_function".to_string(),
                serde_json::json!("volume.size < 10"),
            )]
            .into(),
        }
    }

    fn report(host: &str, pools: &[&str], ts: &str) -> CapabilityReport {
        CapabilityReport {
            service_name: "volume".into(),
            host: host.into(),
            availability_zone: Some("az1".into()),
            capabilities: BackendStats {
                volume_backend_name: "b".into(),
                vendor_name: "Open Source".into(),
                driver_version: "1.0".into(),
                storage_protocol: "file".into(),
                pools: pools.iter().map(|p| stats(p, 50.0)).collect(),
            },
            timestamp: ts.into(),
        }
    }

    #[test]
    fn reports_become_deltas_with_dense_ids() {
        let mut index = PoolIndex::default();
        let mut table = PoolTable::new();
        table.apply(index.apply_report(&report("n1@a", &["p1", "p2"], "1")));
        table.apply(index.apply_report(&report("n2@b", &["q"], "1")));
        assert_eq!(table.len(), 3);
        let p2 = index.id("n1@a#p2").unwrap();
        let pool = table.get(p2).unwrap();
        assert_eq!(pool.backend, "n1@a");
        assert_eq!(pool.host, "n1");
        assert_eq!(pool.availability_zone, "az1");
        assert_eq!(pool.filter_function.as_deref(), Some("volume.size < 10"));
        assert_eq!(
            pool.capabilities.get("storage_protocol"),
            Some(&CapValue::Text("file".into()))
        );

        // p1 disappears from the next report: removed, and its id is reused first.
        let p1 = index.id("n1@a#p1").unwrap();
        let deltas = index.apply_report(&report("n1@a", &["p2"], "2"));
        assert!(deltas.contains(&PoolDelta::Remove(p1)));
        table.apply(deltas);
        assert_eq!(table.len(), 2);
        table.apply(index.apply_report(&report("n3@c", &["r"], "2")));
        assert_eq!(
            index.id("n3@c#r"),
            Some(p1),
            "the freed id is handed out again"
        );

        let active: HashSet<String> = ["n1@a".to_string(), "n3@c".to_string()].into();
        let mut c = index.candidates(&active, &["n3@c".to_string()]);
        c.sort();
        assert_eq!(
            c,
            vec![p2],
            "inactive and excluded backends are not candidates"
        );

        table.apply(index.drop_backend("n2@b"));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn consumption_reverts_unless_a_newer_report_came() {
        let mut index = PoolIndex::default();
        let mut table = PoolTable::new();
        table.apply(index.apply_report(&report("n1@a", &["p"], "1")));
        let id = index.id("n1@a#p").unwrap();
        let (delta, consumed) = index.consume(&table, id, 10).unwrap();
        table.apply([delta]);
        assert_eq!(
            table.get(id).unwrap().free_capacity_gb,
            sdk::Capacity::Gb(40.0)
        );
        assert_eq!(table.get(id).unwrap().total_volumes, 1);
        table.apply([index.revert(&table, &consumed).unwrap()]);
        assert_eq!(
            table.get(id).unwrap().free_capacity_gb,
            sdk::Capacity::Gb(50.0)
        );
        assert_eq!(table.get(id).unwrap().total_volumes, 0);

        let (delta, consumed) = index.consume(&table, id, 10).unwrap();
        table.apply([delta]);
        table.apply(index.apply_report(&report("n1@a", &["p"], "2")));
        assert_eq!(
            index.revert(&table, &consumed),
            None,
            "a newer report already reflects (or dropped) the placement"
        );
    }
}
