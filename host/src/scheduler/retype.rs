//! `retype_volume` on the scheduler: a retype without migration. The request goes through the
//! live chain with operation `retype` and the new volume type, over the one pool the volume
//! lives on (Cinder's `find_retype_backend` for `migration_policy = never`). When the pool
//! satisfies the new type, the volume service records it; otherwise the volume returns to its
//! previous status with a message naming the filter and reason — unless the caller allowed a
//! migration (`on-demand`): then the volume migrates to a backend that satisfies the type
//! (`migrate.rs`, operation `retype`), taking the new type with it.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::placement::{self, RequestSpec, RetryInfo};
use super::SchedulerManager;
use crate::db::user_messages::NewMessage;
use crate::plugins::Explain;
use crate::rpc::{RemoteError, RequestContext};

/// Arguments of `retype_volume`, scheduler and volume side alike.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetypeArgs {
    /// Operation `retype`, the new type in `volume_type`.
    pub request_spec: RequestSpec,
    /// `host@backend#pool` of the volume.
    pub pool: String,
    /// The status to return to (`available` or `in-use`).
    pub previous_status: String,
    /// `never` or `on-demand`.
    pub migration_policy: String,
}

fn handler_error(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new("HandlerError", e.to_string())
}

impl SchedulerManager {
    /// The volume's pool does not satisfy the new type and the caller allows a migration:
    /// move the volume to a backend that does (Cinder's `find_retype_backend` + migration).
    async fn retype_by_migration(
        &self,
        ctx: &RequestContext,
        args: RetypeArgs,
        why_not_here: &str,
    ) -> Result<(), RemoteError> {
        let spec = args.request_spec.clone();
        let snapshots = self
            .rt
            .db
            .snapshots_of_volume(&spec.volume_id)
            .await
            .map_err(handler_error)?;
        let blocker = if args.previous_status != "available" {
            Some(format!(
                "the volume is {}; Kiln migrates only detached (available) volumes, since no \
                 compute service swaps an attachment to the new copy",
                args.previous_status
            ))
        } else if !snapshots.is_empty() {
            Some(format!(
                "the volume has {} snapshot(s), which a migration cannot move",
                snapshots.len()
            ))
        } else {
            None
        };
        let started = blocker.is_none()
            && self
                .rt
                .db
                .volume_migration_start(
                    &spec.volume_id,
                    &["retyping"],
                    None,
                    Some(&args.previous_status),
                )
                .await
                .map_err(handler_error)?;
        if !started {
            let why = format!(
                "pool {} does not satisfy the new type ({why_not_here}) and the volume cannot \
                 migrate: {}",
                args.pool,
                blocker.unwrap_or_else(|| "it is already being migrated".into())
            );
            warn!(volume_id = %spec.volume_id, reason = %why, "retype refused");
            self.rt
                .db
                .volume_set_status(&spec.volume_id, &args.previous_status)
                .await
                .map_err(handler_error)?;
            return self.migration_message(ctx, &spec, &why).await;
        }
        info!(volume_id = %spec.volume_id, pool = %args.pool, reason = %why_not_here, "retype needs a migration");
        let migrate = super::migrate::MigrateArgs {
            request_spec: RequestSpec {
                operation: "retype".into(),
                ..spec.clone()
            },
            pool: args.pool.clone(),
            host: None,
            force_host_copy: false,
            new_type_id: spec.volume_type.as_ref().map(|t| t.id.clone()),
        };
        self.schedule_migrate(ctx, migrate).await
    }

    pub(crate) async fn schedule_retype(
        &self,
        ctx: &RequestContext,
        args: RetypeArgs,
    ) -> Result<(), RemoteError> {
        let spec = args.request_spec.clone();
        let type_name = spec
            .volume_type
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        // The data already lives on this pool and stays there: it asks for no new space (Cinder's
        // CapacityFilter passes the backend a volume exists on, `vol_exists_on`).
        let in_place = RequestSpec {
            size: 0,
            ..spec.clone()
        };
        let request = placement::to_request(&in_place, &RetryInfo::default(), Default::default());
        let pool = args.pool.clone();
        let pool_c = pool.clone();
        let verdict = self
            .with_state(move |s| {
                let Some(id) = s.index.id(&pool_c) else {
                    return Some(format!(
                        "pool {pool_c} is not reporting; try again when its volume service is up"
                    ));
                };
                let d = s.chain.decide_with(&request, &[id], Explain::IfNoneLeft);
                if d.best().is_some() {
                    return None;
                }
                Some(
                    d.removed
                        .iter()
                        .map(|r| {
                            format!(
                                "{}: {}",
                                r.filter,
                                r.reason.as_deref().unwrap_or("rejected")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })
            .await?;
        let Some(why) = verdict else {
            info!(volume_id = %spec.volume_id, %pool, new_type = %type_name, "retype accepted in place");
            let backend = pool
                .split_once('#')
                .map_or(pool.as_str(), |(b, _)| b)
                .to_string();
            return self
                .volume
                .retype_volume(ctx, &backend, &args)
                .await
                .map_err(handler_error);
        };
        if args.migration_policy == "on-demand" {
            return self.retype_by_migration(ctx, args, &why).await;
        }
        let why = format!(
            "pool {pool} does not satisfy volume type {type_name} ({why}) and migration_policy \
             is never"
        );
        warn!(volume_id = %spec.volume_id, reason = %why, "retype refused");
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
                action_id: "001",
                detail_id: "003",
                detail: Some(&why),
            })
            .await
            .map_err(handler_error)?;
        Ok(())
    }
}
