//! The filter scheduler: a request spec through the active chain (filters, then weighers),
//! the winner's capacity consumed in memory, the placement persisted with the database-side
//! capacity check, and `create_volume` cast to `volume.HOST@BACKEND`. Retries come back here
//! with the backends already tried (and the consumption to revert); when no pool is left the
//! volume goes to `error` with a message saying which filter removed which pools and why.

use std::collections::{BTreeMap, HashSet};

use kiln_plugin_sdk::{self as sdk, PoolTable};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::pools::Consumed;
use crate::db::placement::PoolLimit;
use crate::plugins::{Decision, Removal};

/// What a placement request asks for (Cinder's request spec).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestSpec {
    pub volume_id: String,
    pub project_id: String,
    /// Size in GiB (extend: the current size).
    pub size: u64,
    /// Extend: the requested size.
    #[serde(default)]
    pub new_size: Option<u64>,
    /// `create`, `extend`, `retype` or `migrate`.
    #[serde(default = "create")]
    pub operation: String,
    #[serde(default)]
    pub volume_type: Option<TypeSpec>,
    /// The volume's availability zone; empty = any.
    #[serde(default)]
    pub availability_zones: Vec<String>,
    /// `OS-SCH-HNT:scheduler_hints` as the user sent them.
    #[serde(default)]
    pub scheduler_hints: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub multiattach: bool,
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub source_volid: Option<String>,
    /// A volume of a generic group: the group's backend (`host@backend`), the only one it
    /// may be placed on (RPC 3.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_backend: Option<String>,
}

fn create() -> String {
    "create".into()
}

/// A volume type as the scheduler needs it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TypeSpec {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
}

/// Where a request has been (Cinder's `filter_properties.retry`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetryInfo {
    /// Placements made so far.
    pub num_attempts: u32,
    /// Backends (`host@backend`) that failed the request.
    pub backends: Vec<String>,
    /// The last failure, for the final message.
    #[serde(default)]
    pub exc: Option<String>,
    /// The in-memory consumption of the last placement, to revert on the scheduler that made it.
    #[serde(default)]
    pub consumed: Option<ConsumedBy>,
}

/// A consumption and the scheduler process that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumedBy {
    pub scheduler: String,
    pub consumed: Consumed,
}

/// The arguments of `create_volume`, scheduler and volume side alike.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateArgs {
    pub request_spec: RequestSpec,
    #[serde(default)]
    pub retry: RetryInfo,
}

/// The plugin request for `spec`; `volume_pools` resolves the affinity hints.
pub fn to_request(
    spec: &RequestSpec,
    retry: &RetryInfo,
    volume_pools: BTreeMap<String, String>,
) -> sdk::Request {
    sdk::Request {
        operation: match spec.operation.as_str() {
            "extend" => sdk::Operation::Extend,
            "retype" => sdk::Operation::Retype,
            "migrate" => sdk::Operation::Migrate,
            _ => sdk::Operation::Create,
        },
        volume_id: spec.volume_id.clone(),
        project_id: spec.project_id.clone(),
        size_gb: spec.size,
        new_size_gb: spec.new_size,
        volume_type: spec.volume_type.as_ref().map(|t| sdk::VolumeType {
            id: t.id.clone(),
            name: t.name.clone(),
            extra_specs: t.extra_specs.clone(),
        }),
        availability_zones: spec.availability_zones.clone(),
        scheduler_hints: spec
            .scheduler_hints
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        hint_volume_pools: volume_pools,
        metadata: spec.metadata.clone(),
        multiattach: spec.multiattach,
        backends_tried: retry.backends.clone(),
    }
}

/// Volume ids named by the affinity hints (`same_host`, `different_host`).
pub fn hinted_volumes(spec: &RequestSpec) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["same_host", "different_host"] {
        match spec.scheduler_hints.get(key) {
            Some(serde_json::Value::String(s)) => out.push(s.clone()),
            Some(serde_json::Value::Array(items)) => {
                out.extend(items.iter().filter_map(|v| v.as_str().map(String::from)))
            }
            _ => {}
        }
    }
    out
}

/// The capacity the database-side check holds pool `id` to: what the CapacityFilter would
/// allow in total — total × over-subscription ratio when thin provisioning applies, else the
/// total — less the reserved share. `None` for infinite or unknown totals.
pub fn pool_limit(table: &PoolTable, id: u32, spec: &RequestSpec) -> PoolLimit {
    let Some(pool) = table.get(id) else {
        return PoolLimit { capacity_gb: None };
    };
    let sdk::Capacity::Gb(total) = pool.total_capacity_gb else {
        return PoolLimit { capacity_gb: None };
    };
    let thick_requested = spec
        .volume_type
        .as_ref()
        .and_then(|t| t.extra_specs.get("provisioning:type"))
        .is_some_and(|v| v == "thick");
    let thin = pool.thin_provisioning_support && !thick_requested;
    let ratio = if thin {
        pool.max_over_subscription_ratio.max(1.0)
    } else {
        1.0
    };
    let reserved = (total * f64::from(pool.reserved_percentage) / 100.0).floor();
    PoolLimit {
        capacity_gb: Some(total * ratio - reserved),
    }
}

/// How many removals per filter a message lists before "and N more".
const LISTED: usize = 5;

/// Cinder's NoValidBackend, explained: "No valid backend was found. CapacityFilter removed 3
/// pools (a@lvm#p: needs 50 GB, 10 GB free; ...)".
pub fn explain_no_valid_backend(
    decision: &Decision,
    names: impl Fn(u32) -> String,
    candidates: usize,
    retry: &RetryInfo,
    max_attempts: u32,
    refused: &[String],
) -> String {
    let mut msg = String::from("No valid backend was found.");
    if candidates == 0 && refused.is_empty() {
        if retry.backends.is_empty() {
            msg.push_str(" No volume service is up, enabled and reporting pools.");
        } else {
            msg.push_str(&format!(
                " Every backend up and enabled was already tried: {} ({} attempt{} of at most {max_attempts}).",
                retry.backends.join(", "),
                retry.num_attempts,
                if retry.num_attempts == 1 { "" } else { "s" },
            ));
        }
    }
    let mut by_filter: Vec<(&str, Vec<&Removal>)> = Vec::new();
    for r in &decision.removed {
        match by_filter.iter_mut().find(|(f, _)| *f == &*r.filter) {
            Some((_, list)) => list.push(r),
            None => by_filter.push((&r.filter, vec![r])),
        }
    }
    for (filter, removals) in by_filter {
        let shown: Vec<String> = removals
            .iter()
            .take(LISTED)
            .map(|r| {
                format!(
                    "{}: {}",
                    names(r.pool),
                    r.reason.as_deref().unwrap_or("rejected")
                )
            })
            .collect();
        let more = removals.len().saturating_sub(LISTED);
        msg.push_str(&format!(
            " {filter} removed {} pool{} ({}{}).",
            removals.len(),
            if removals.len() == 1 { "" } else { "s" },
            shown.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        ));
    }
    for r in refused {
        msg.push_str(&format!(" {r}."));
    }
    for e in &decision.failures {
        msg.push_str(&format!(" Plugin failure: {e}."));
    }
    if let Some(exc) = &retry.exc {
        msg.push_str(&format!(" Last error: {exc}"));
    }
    msg
}

/// Log a placement.
pub fn log_placement(
    spec: &RequestSpec,
    pool: &str,
    attempt: u32,
    decision: &Decision,
    chain: &str,
    seq: u64,
) {
    info!(
        volume_id = %spec.volume_id,
        pool,
        attempt,
        chain,
        decision = seq,
        candidates_left = decision.weighed.len(),
        removed = decision.removed.len(),
        "volume placed"
    );
    for f in &decision.failures {
        warn!(volume_id = %spec.volume_id, error = %f, "plugin failure during placement");
    }
}

/// Backends in `active` that are not excluded: used to say whether anything was eligible.
pub fn eligible(active: &HashSet<String>, tried: &[String]) -> usize {
    active.iter().filter(|b| !tried.contains(b)).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn no_valid_backend_names_filters_pools_and_reasons() {
        let d = Decision {
            weighed: vec![],
            removed: (0..7)
                .map(|i| Removal {
                    filter: Arc::from("CapacityFilter"),
                    pool: i,
                    reason: Some(format!("needs 50 GB, {i} GB free")),
                })
                .chain(std::iter::once(Removal {
                    filter: Arc::from("AvailabilityZoneFilter"),
                    pool: 9,
                    reason: Some("in availability zone az2, not az1".into()),
                }))
                .collect(),
            failures: vec![],
        };
        let msg = explain_no_valid_backend(
            &d,
            |id| format!("n@lvm#p{id}"),
            8,
            &RetryInfo::default(),
            3,
            &[],
        );
        assert!(msg.starts_with("No valid backend was found."), "{msg}");
        assert!(
            msg.contains("CapacityFilter removed 7 pools (n@lvm#p0: needs 50 GB, 0 GB free; "),
            "{msg}"
        );
        assert!(msg.contains("; and 2 more)."), "{msg}");
        assert!(
            msg.contains("AvailabilityZoneFilter removed 1 pool (n@lvm#p9: in availability zone az2, not az1)."),
            "{msg}"
        );
    }

    #[test]
    fn every_backend_tried_names_the_backends_and_the_attempts() {
        let d = Decision {
            weighed: vec![],
            removed: vec![],
            failures: vec![],
        };
        let retry = RetryInfo {
            num_attempts: 2,
            backends: vec!["n@a".into(), "n@b".into()],
            exc: Some("backend n@b: disk full".into()),
            consumed: None,
        };
        let msg = explain_no_valid_backend(&d, |id| format!("pool {id}"), 0, &retry, 3, &[]);
        assert_eq!(
            msg,
            "No valid backend was found. Every backend up and enabled was already tried: \
             n@a, n@b (2 attempts of at most 3). Last error: backend n@b: disk full"
        );
    }

    #[test]
    fn pool_limit_follows_thin_thick_and_reserved() {
        let mut t = PoolTable::new();
        let mut p = kiln_plugin_sdk::Pool {
            id: 0,
            backend: "h@b".into(),
            pool: "p".into(),
            host: "h".into(),
            availability_zone: "nova".into(),
            total_capacity_gb: sdk::Capacity::Gb(100.0),
            free_capacity_gb: sdk::Capacity::Gb(100.0),
            allocated_capacity_gb: 0.0,
            provisioned_capacity_gb: 0.0,
            reserved_percentage: 10,
            max_over_subscription_ratio: 20.0,
            thin_provisioning_support: true,
            thick_provisioning_support: true,
            total_volumes: 0,
            multiattach: false,
            filter_function: None,
            goodness_function: None,
            capabilities: Default::default(),
        };
        t.apply([sdk::PoolDelta::Upsert(p.clone())]);
        let spec = RequestSpec::default();
        assert_eq!(pool_limit(&t, 0, &spec).capacity_gb, Some(1990.0));
        let thick = RequestSpec {
            volume_type: Some(TypeSpec {
                extra_specs: [("provisioning:type".to_string(), "thick".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(pool_limit(&t, 0, &thick).capacity_gb, Some(90.0));
        p.total_capacity_gb = sdk::Capacity::Infinite;
        t.apply([sdk::PoolDelta::Upsert(p)]);
        assert_eq!(pool_limit(&t, 0, &spec).capacity_gb, None);
    }
}
