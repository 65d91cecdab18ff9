//! `create_group` on the scheduler (RPC 3.7): choose the one backend a generic volume group
//! lives on. The live chain is asked once per volume type of the group (a zero-size create
//! request of that type in the group's zone, over the pools of active backends, nothing
//! consumed); a backend qualifies when at least one of its pools survives every type's
//! filters, and the qualifying backend whose best pools weigh most in total wins. Volumes
//! later created in the group carry the backend in their request spec (`group_backend`) and
//! are placed only on its pools.

use std::collections::{BTreeMap, HashSet};

use kiln_plugin_sdk as sdk;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::placement::{self, RequestSpec, RetryInfo, TypeSpec};
use super::SchedulerManager;
use crate::db::user_messages::NewMessage;
use crate::plugins::{Decision, Explain};
use crate::rpc::{RemoteError, RequestContext};

/// Arguments of `create_group`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateGroupArgs {
    pub group_id: String,
    pub project_id: String,
    pub availability_zone: String,
    /// Every volume type the group may hold, in the order given.
    pub volume_types: Vec<TypeSpec>,
}

/// `host@backend` of a pool name `host@backend#pool`.
fn backend_of(pool: &str) -> &str {
    pool.split_once('#').map_or(pool, |(b, _)| b)
}

/// The backend for a group, from one decision per volume type: each type's surviving pools
/// grouped by backend (best weight per backend); backends present for every type qualify;
/// the highest sum of best weights wins, ties to the smaller name. `Err` explains.
pub(crate) fn choose_backend(
    decisions: &[(String, Decision)],
    name_of: impl Fn(u32) -> Option<String>,
) -> Result<String, String> {
    let mut totals: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    let mut missing: Vec<String> = Vec::new();
    for (type_name, d) in decisions {
        let mut best: BTreeMap<String, f64> = BTreeMap::new();
        for (id, w) in &d.weighed {
            if let Some(name) = name_of(*id) {
                let e = best
                    .entry(backend_of(&name).to_string())
                    .or_insert(f64::MIN);
                *e = e.max(*w);
            }
        }
        if best.is_empty() {
            let removed: Vec<String> = d
                .removed
                .iter()
                .take(5)
                .map(|r| {
                    let pool = name_of(r.pool).unwrap_or_else(|| format!("pool {}", r.pool));
                    let why = r.reason.as_deref().unwrap_or("removed");
                    format!("{} removed {pool}: {why}", r.filter)
                })
                .collect();
            missing.push(if removed.is_empty() {
                format!("volume type {type_name}: no pool")
            } else {
                format!("volume type {type_name}: {}", removed.join("; "))
            });
        }
        for (backend, w) in best {
            let e = totals.entry(backend).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += w;
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "No valid backend was found for the group. {}",
            missing.join(". ")
        ));
    }
    totals
        .into_iter()
        .filter(|(_, (n, _))| *n == decisions.len())
        .fold(None::<(String, f64)>, |acc, (b, (_, w))| match acc {
            Some((_, best)) if best >= w => acc,
            _ => Some((b, w)),
        })
        .map(|(b, _)| b)
        .ok_or_else(|| {
            "No valid backend was found for the group: no single backend can hold every volume type of the group.".to_string()
        })
}

impl SchedulerManager {
    /// Place the group of `args` on one backend, or put it in `error` with a message.
    pub(crate) async fn schedule_create_group(
        &self,
        ctx: &RequestContext,
        args: CreateGroupArgs,
    ) -> Result<(), RemoteError> {
        let active: HashSet<String> = self.active_backends().await?;
        let requests: Vec<(String, sdk::Request)> = args
            .volume_types
            .iter()
            .map(|t| {
                let spec = RequestSpec {
                    volume_id: args.group_id.clone(),
                    project_id: args.project_id.clone(),
                    size: 0,
                    operation: "create".into(),
                    volume_type: Some(t.clone()),
                    availability_zones: vec![args.availability_zone.clone()],
                    ..Default::default()
                };
                (
                    t.name.clone(),
                    placement::to_request(&spec, &RetryInfo::default(), BTreeMap::new()),
                )
            })
            .collect();
        let chosen = self
            .with_state(move |s| {
                let candidates = s.index.candidates(&active, &[]);
                let decisions: Vec<(String, Decision)> = requests
                    .iter()
                    .map(|(name, r)| {
                        (
                            name.clone(),
                            s.chain.decide_with(r, &candidates, Explain::IfNoneLeft),
                        )
                    })
                    .collect();
                let index = &s.index;
                choose_backend(&decisions, |id| index.name(id).map(String::from))
            })
            .await?;
        let db = &self.rt.db;
        let err = |e: crate::db::DbError| RemoteError::new("HandlerError", e.to_string());
        match chosen {
            Ok(backend) => {
                if db
                    .group_placed(&args.group_id, &backend)
                    .await
                    .map_err(err)?
                {
                    info!(group_id = %args.group_id, %backend, "group placed");
                }
                Ok(())
            }
            Err(why) => {
                warn!(group_id = %args.group_id, reason = %why, "group cannot be placed");
                if !db
                    .group_transition(&args.group_id, &["creating"], "error")
                    .await
                    .map_err(err)?
                {
                    return Ok(()); // deleted meanwhile
                }
                db.user_message_create(&NewMessage {
                    project_id: &args.project_id,
                    request_id: Some(&ctx.request_id),
                    resource_type: Some("GROUP"),
                    resource_uuid: Some(&args.group_id),
                    action_id: "001",
                    detail_id: "002",
                    detail: Some(&why),
                })
                .await
                .map_err(err)?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::Removal;

    fn decision(weighed: &[(u32, f64)]) -> Decision {
        Decision {
            weighed: weighed.to_vec(),
            ..Default::default()
        }
    }

    fn names(id: u32) -> Option<String> {
        Some(
            ["a@lvm#p1", "a@lvm#p2", "b@file#file", "c@file#file"]
                .get(id as usize)?
                .to_string(),
        )
    }

    #[test]
    fn the_backend_holding_every_type_with_the_most_weight_wins() {
        // Type 1 fits a and b; type 2 fits a (pool 2) and c: only a holds both.
        let d = vec![
            ("t1".to_string(), decision(&[(2, 1.0), (0, 0.5)])),
            ("t2".to_string(), decision(&[(3, 1.0), (1, 0.2)])),
        ];
        assert_eq!(choose_backend(&d, names).unwrap(), "a@lvm");
        // Both a and b hold both types: b weighs more in total.
        let d = vec![
            ("t1".to_string(), decision(&[(2, 1.0), (0, 0.5)])),
            ("t2".to_string(), decision(&[(2, 0.9), (0, 0.1)])),
        ];
        assert_eq!(choose_backend(&d, names).unwrap(), "b@file");
    }

    #[test]
    fn no_common_backend_or_no_pool_for_a_type_is_explained() {
        let d = vec![
            ("t1".to_string(), decision(&[(2, 1.0)])),
            ("t2".to_string(), decision(&[(3, 1.0)])),
        ];
        assert!(choose_backend(&d, names)
            .unwrap_err()
            .contains("no single backend"));
        let mut none = decision(&[]);
        none.removed.push(Removal {
            pool: 2,
            filter: "CapabilitiesFilter".into(),
            reason: Some("wants thin".into()),
        });
        let d = vec![("gold".to_string(), none)];
        let why = choose_backend(&d, names).unwrap_err();
        assert!(
            why.contains("volume type gold: CapabilitiesFilter removed b@file#file: wants thin"),
            "{why}"
        );
    }
}
