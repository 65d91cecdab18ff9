//! The scheduler's view of the backends: the latest capability report of each volume service.
//! A report older than the one held is ignored; a new report replaces the backend's pools
//! wholesale, so pools missing from it are dropped. Backends whose service is down, disabled
//! or frozen are left out of [`HostManager::pools`].

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use tracing::debug;

use super::CapabilityReport;

/// A pool as the scheduler sees it: `host@backend#pool` and its capabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolView {
    pub name: String,
    pub capabilities: serde_json::Value,
}

#[derive(Debug, Default)]
pub struct HostManager {
    backends: BTreeMap<String, CapabilityReport>,
}

impl HostManager {
    /// Take `report` unless an equal-or-newer one is held. Returns whether it was taken.
    pub fn update(&mut self, report: CapabilityReport) -> bool {
        if let Some(held) = self.backends.get(&report.host) {
            if report.timestamp < held.timestamp {
                debug!(host = %report.host, held = %held.timestamp, got = %report.timestamp, "ignoring stale capability report");
                return false;
            }
        }
        self.backends.insert(report.host.clone(), report);
        true
    }

    /// Hosts that have reported.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.backends.keys().map(|s| s.as_str())
    }

    /// Every pool of the backends in `active`, with backend-level keys merged into each
    /// pool's capabilities (as Cinder's `get_pools` shows them).
    pub fn pools(&self, active: &HashSet<String>) -> Vec<PoolView> {
        let mut out = Vec::new();
        for (host, report) in &self.backends {
            if !active.contains(host) {
                continue;
            }
            let stats = &report.capabilities;
            for pool in &stats.pools {
                let mut caps = serde_json::to_value(pool).unwrap_or_default();
                if let Some(obj) = caps.as_object_mut() {
                    let extra = obj.remove("extra");
                    if let Some(serde_json::Value::Object(extra)) = extra {
                        obj.extend(extra);
                    }
                    obj.insert(
                        "volume_backend_name".into(),
                        stats.volume_backend_name.clone().into(),
                    );
                    obj.insert("vendor_name".into(), stats.vendor_name.clone().into());
                    obj.insert("driver_version".into(), stats.driver_version.clone().into());
                    obj.insert(
                        "storage_protocol".into(),
                        stats.storage_protocol.clone().into(),
                    );
                    obj.insert("timestamp".into(), report.timestamp.clone().into());
                }
                out.push(PoolView {
                    name: format!("{host}#{}", pool.pool_name),
                    capabilities: caps,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::{BackendStats, Capacity, PoolStats};

    fn report(host: &str, ts: &str, pools: &[&str]) -> CapabilityReport {
        CapabilityReport {
            service_name: "volume".into(),
            host: host.into(),
            availability_zone: None,
            timestamp: ts.into(),
            capabilities: BackendStats {
                volume_backend_name: "b".into(),
                vendor_name: "v".into(),
                driver_version: "1".into(),
                storage_protocol: "file".into(),
                pools: pools
                    .iter()
                    .map(|p| PoolStats {
                        pool_name: p.to_string(),
                        total_capacity_gb: Capacity::Gb(10.0),
                        free_capacity_gb: Capacity::Gb(5.0),
                        allocated_capacity_gb: 0.0,
                        provisioned_capacity_gb: 0.0,
                        reserved_percentage: 0,
                        max_over_subscription_ratio: 1.0,
                        thin_provisioning_support: false,
                        thick_provisioning_support: true,
                        total_volumes: 0,
                        multiattach: false,
                        qos_support: false,
                        extra: [("dedup".to_string(), serde_json::json!(true))].into(),
                    })
                    .collect(),
            },
        }
    }

    fn all(hosts: &[&str]) -> HashSet<String> {
        hosts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stale_reports_are_ignored() {
        let mut hm = HostManager::default();
        assert!(hm.update(report("h@a", "2026-01-01T00:00:02.000000", &["p1"])));
        assert!(!hm.update(report("h@a", "2026-01-01T00:00:01.000000", &["old"])));
        let pools = hm.pools(&all(&["h@a"]));
        assert_eq!(pools.len(), 1);
        assert_eq!(pools[0].name, "h@a#p1");
    }

    #[test]
    fn pools_missing_from_the_latest_report_are_dropped() {
        let mut hm = HostManager::default();
        hm.update(report("h@a", "2026-01-01T00:00:01.000000", &["p1", "p2"]));
        hm.update(report("h@a", "2026-01-01T00:00:02.000000", &["p2"]));
        let names: Vec<_> = hm
            .pools(&all(&["h@a"]))
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, vec!["h@a#p2"]);
    }

    #[test]
    fn inactive_backends_are_left_out_and_capabilities_are_flattened() {
        let mut hm = HostManager::default();
        hm.update(report("h@a", "2026-01-01T00:00:01.000000", &["p"]));
        hm.update(report("h@b", "2026-01-01T00:00:01.000000", &["p"]));
        let pools = hm.pools(&all(&["h@b"]));
        assert_eq!(pools.len(), 1);
        assert_eq!(pools[0].name, "h@b#p");
        assert_eq!(pools[0].capabilities["dedup"], serde_json::json!(true));
        assert_eq!(
            pools[0].capabilities["storage_protocol"],
            serde_json::json!("file")
        );
        assert_eq!(
            pools[0].capabilities["free_capacity_gb"],
            serde_json::json!(5.0)
        );
    }
}
