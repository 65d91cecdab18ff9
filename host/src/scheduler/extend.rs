//! `extend_volume` on the scheduler: an extend goes through the live chain with operation
//! `extend` and the new size, over the one pool the volume lives on (Cinder's
//! `extend_volume` backend check). An attached volume (`in-use`, microversion 3.42) also needs
//! the pool to report `online_extend_support`. If the pool can take the growth it is consumed
//! in memory and checked in the database like a placement, then the volume service grows the
//! volume; otherwise the volume returns to its previous status with a message saying why.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::placement::{self, RequestSpec, RetryInfo};
use super::SchedulerManager;
use crate::db::quotas::with_type;
use crate::db::user_messages::NewMessage;
use crate::plugins::Explain;
use crate::rpc::{RemoteError, RequestContext};

/// Arguments of `extend_volume`, scheduler and volume side alike.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtendArgs {
    pub request_spec: RequestSpec,
    /// `host@backend#pool` of the volume.
    pub pool: String,
    /// The status before `extending`, and after: `available`, or `in-use` for an online
    /// extend.
    #[serde(default = "available")]
    pub previous_status: String,
}

fn available() -> String {
    "available".into()
}

/// Why `pool` cannot extend an attached volume: it does not report `online_extend_support`.
pub(crate) fn online_refusal(pool: &kiln_plugin_sdk::Pool) -> Option<String> {
    match pool.capability("online_extend_support") {
        Some(kiln_plugin_sdk::CapValue::Boolean(true)) => None,
        Some(kiln_plugin_sdk::CapValue::Text(t)) if t.eq_ignore_ascii_case("true") => None,
        _ => Some(format!(
            "backend {} does not report online_extend_support, so an attached (in-use) volume \
             cannot be extended there; detach it first",
            pool.backend
        )),
    }
}

fn handler_error(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new("HandlerError", e.to_string())
}

impl SchedulerManager {
    pub(crate) async fn schedule_extend(
        &self,
        ctx: &RequestContext,
        args: ExtendArgs,
    ) -> Result<(), RemoteError> {
        let spec = args.request_spec.clone();
        let new_size = spec.new_size.unwrap_or(spec.size);
        let growth = new_size.saturating_sub(spec.size);
        let request = placement::to_request(&spec, &RetryInfo::default(), Default::default());
        let pool = args.pool.clone();
        let (spec_c, pool_c) = (spec.clone(), pool.clone());
        let online = args.previous_status == "in-use";
        let outcome = self
            .with_state(move |s| {
                let Some(id) = s.index.id(&pool_c) else {
                    return Err(format!(
                        "pool {pool_c} is not reporting; try again when its volume service is up"
                    ));
                };
                if online {
                    if let Some(why) = s.chain.table().get(id).and_then(online_refusal) {
                        return Err(why);
                    }
                }
                let d = s.chain.decide_with(&request, &[id], Explain::IfNoneLeft);
                if d.best().is_none() {
                    let why = d
                        .removed
                        .iter()
                        .map(|r| {
                            format!(
                                "{}: {}",
                                r.filter,
                                r.reason.as_deref().unwrap_or("rejected")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    return Err(format!(
                        "pool {pool_c} cannot grow the volume to {new_size} GB ({why})"
                    ));
                }
                let limit = placement::pool_limit(s.chain.table(), id, &spec_c);
                let consumed =
                    s.index
                        .consume(s.chain.table(), id, growth)
                        .map(|(delta, consumed)| {
                            s.apply(&[delta]);
                            consumed
                        });
                Ok((limit, consumed))
            })
            .await?;
        let refusal = match outcome {
            Ok((limit, consumed)) => {
                let placed = self
                    .rt
                    .db
                    .volume_place(&spec.volume_id, &pool, new_size as i64, limit)
                    .await;
                // The growth was consumed in memory: a refusal (or a failed check) gives it back,
                // or the pool would look fuller than it is until its next capability report.
                if !matches!(placed, Ok(Ok(()))) {
                    if let Some(consumed) = consumed {
                        self.revert(consumed).await?;
                    }
                }
                match placed.map_err(handler_error)? {
                    Ok(()) => None,
                    Err(used) => Some(format!(
                        "pool {pool} has {used} GB placed; {new_size} GB more would exceed its limit of {} GB",
                        limit.capacity_gb.unwrap_or_default()
                    )),
                }
            }
            Err(why) => Some(why),
        };
        if let Some(why) = refusal {
            warn!(volume_id = %spec.volume_id, reason = %why, "extend refused");
            let type_name = self
                .rt
                .db
                .volume_get(&spec.volume_id)
                .await
                .map_err(handler_error)?
                .volume_type_name;
            self.rt
                .db
                .quota_release(
                    &spec.project_id,
                    &with_type(&[("gigabytes", growth as i64)], type_name.as_deref()),
                )
                .await
                .map_err(handler_error)?;
            self.rt
                .db
                .volume_set_status(&spec.volume_id, &args.previous_status)
                .await
                .map_err(handler_error)?;
            self.rt
                .db
                .user_message_create(&NewMessage {
                    project_id: &spec.project_id,
                    request_id: Some(&ctx.request_id),
                    resource_type: Some("VOLUME"),
                    resource_uuid: Some(&spec.volume_id),
                    action_id: "007",
                    detail_id: "002",
                    detail: Some(&why),
                })
                .await
                .map_err(handler_error)?;
            return Ok(());
        }
        info!(volume_id = %spec.volume_id, %pool, new_size, "extend accepted");
        let backend = pool
            .split_once('#')
            .map_or(pool.as_str(), |(b, _)| b)
            .to_string();
        self.volume
            .extend_volume(ctx, &backend, &args)
            .await
            .map_err(handler_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_plugin_sdk::{CapValue, Capacity, Pool};

    fn pool(online: Option<CapValue>) -> Pool {
        Pool {
            id: 0,
            backend: "n@a".into(),
            pool: "a".into(),
            host: "n".into(),
            availability_zone: "nova".into(),
            total_capacity_gb: Capacity::Gb(10.0),
            free_capacity_gb: Capacity::Gb(10.0),
            allocated_capacity_gb: 0.0,
            provisioned_capacity_gb: 0.0,
            reserved_percentage: 0,
            max_over_subscription_ratio: 1.0,
            thin_provisioning_support: true,
            thick_provisioning_support: false,
            total_volumes: 0,
            multiattach: false,
            filter_function: None,
            goodness_function: None,
            capabilities: online
                .map(|v| ("online_extend_support".to_string(), v))
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn attached_volumes_grow_only_where_online_extend_is_reported() {
        assert_eq!(online_refusal(&pool(Some(CapValue::Boolean(true)))), None);
        assert_eq!(
            online_refusal(&pool(Some(CapValue::Text("True".into())))),
            None
        );
        for refused in [None, Some(CapValue::Boolean(false))] {
            let why = online_refusal(&pool(refused)).expect("refused");
            assert!(
                why.contains("online_extend_support") && why.contains("n@a"),
                "{why}"
            );
        }
    }

    #[test]
    fn old_extend_messages_mean_available() {
        let args: ExtendArgs = serde_json::from_value(serde_json::json!({
            "request_spec": {"volume_id": "v", "project_id": "p", "size": 1},
            "pool": "n@a#a"
        }))
        .unwrap();
        assert_eq!(args.previous_status, "available");
    }
}
