//! `migrate_volume` on the scheduler (Cinder's `migrate_volume_to_host`, and the placement
//! half of a retype with `migration_policy = on-demand`): the request goes through the live
//! chain with operation `migrate` (or `retype`) and the volume's full size, over the pools of
//! the named destination backend or — no host given — of every active backend but the
//! source's. The winner's capacity is consumed in memory, a temporary volume is recorded
//! (`migration_status = target:<id>`, outside quota) and placed with the database-side
//! capacity check as for a create, and the source backend's service is told to migrate
//! (`volume::migrate`). No destination: the volume returns to its previous status with
//! `migration_status = error` and a message saying why.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::filter_scheduler::pick;
use super::placement::{self, RequestSpec, RetryInfo};
use super::SchedulerManager;
use crate::db::user_messages::NewMessage;
use crate::rpc::{RemoteError, RequestContext};
use crate::volume::migrate::MigrateVolumeArgs;

/// Database refusals tolerated before the migration fails.
const MAX_REFUSALS: usize = 3;

/// Arguments of `migrate_volume`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MigrateArgs {
    /// Operation `migrate` (or `retype`), the type the destination must satisfy, full size.
    pub request_spec: RequestSpec,
    /// `host@backend#pool` of the volume now.
    pub pool: String,
    /// The destination `host@backend` or `host@backend#pool`; `None`: the chain chooses.
    #[serde(default)]
    pub host: Option<String>,
    /// Accepted as Cinder does; Kiln always copies host-side (no driver-assisted migration).
    #[serde(default)]
    pub force_host_copy: bool,
    /// A retype: the new type's id, given to the volume with the data's move.
    #[serde(default)]
    pub new_type_id: Option<String>,
}

fn handler_error(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new("HandlerError", e.to_string())
}

/// `host@backend` of `host@backend#pool`.
pub(crate) fn backend_of(pool: &str) -> &str {
    pool.split_once('#').map_or(pool, |(b, _)| b)
}

impl SchedulerManager {
    /// Choose the destination and place the temporary volume there, then have the source's
    /// service migrate; or end the migration with a message.
    pub(crate) async fn schedule_migrate(
        &self,
        ctx: &RequestContext,
        args: MigrateArgs,
    ) -> Result<(), RemoteError> {
        let spec = args.request_spec.clone();
        let source = backend_of(&args.pool).to_string();
        let active = destinations(
            &self.active_backends().await?,
            &source,
            args.host.as_deref(),
        );
        if let (Some(host), true) = (&args.host, active.is_empty()) {
            let why = format!(
                "the destination {} is not a volume service that is up, enabled and not \
                 frozen (the source {source} cannot be the destination)",
                backend_of(host)
            );
            return self.migration_refused(ctx, &spec, &why).await;
        }
        let source_row = match self.rt.db.volume_get(&spec.volume_id).await {
            Ok(row) => row,
            Err(crate::db::DbError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(handler_error(e)),
        };
        let only_pool = args.host.clone().filter(|h| h.contains('#'));
        let request = placement::to_request(&spec, &RetryInfo::default(), Default::default());
        let new_id = uuid::Uuid::new_v4().to_string();
        let mut target: Option<crate::db::volumes::VolumeRow> = None;
        let mut refused_pools: Vec<String> = Vec::new();
        let mut refusals: Vec<String> = Vec::new();
        loop {
            let (active_c, refused_c, request_c, spec_c, only_c, source_c) = (
                active.clone(),
                refused_pools.clone(),
                request.clone(),
                spec.clone(),
                only_pool.clone(),
                source.clone(),
            );
            let picked = self
                .with_state(move |s| {
                    let mut refused = refused_c;
                    if let Some(only) = &only_c {
                        let others: Vec<String> = s
                            .index
                            .candidates(&active_c, &[])
                            .into_iter()
                            .filter_map(|id| s.index.name(id).map(String::from))
                            .filter(|n| n != only)
                            .collect();
                        refused.extend(others);
                    }
                    let started = std::time::Instant::now();
                    let picked = pick(s, &active_c, &[source_c], &refused, &request_c, &spec_c);
                    let outcome = if picked.chosen.is_some() {
                        "placed"
                    } else {
                        "no_valid_backend"
                    };
                    crate::metrics::decision(outcome, &s.label, started.elapsed());
                    picked
                })
                .await?;
            let Some((pool, limit, consumed)) = picked.chosen else {
                let why = if picked.candidates == 0 && refusals.is_empty() {
                    match &args.host {
                        Some(h) => format!("the destination {h} reports no such pool"),
                        None => format!(
                            "no backend other than the source {source} is up, enabled and \
                             reporting pools"
                        ),
                    }
                } else {
                    let names = picked.names;
                    let name_of = |id: u32| {
                        names
                            .iter()
                            .find(|(i, _)| *i == id)
                            .map_or_else(|| format!("pool {id}"), |(_, n)| n.clone())
                    };
                    placement::explain_no_valid_backend(
                        &picked.decision,
                        name_of,
                        picked.candidates,
                        &RetryInfo::default(),
                        self.rt.config().scheduler.max_attempts,
                        &refusals,
                    )
                };
                if let Some(t) = &target {
                    self.rt
                        .db
                        .volume_destroy(&t.id)
                        .await
                        .map_err(handler_error)?;
                }
                return self.migration_refused(ctx, &spec, &why).await;
            };
            let t = match &target {
                Some(t) => t.clone(),
                None => {
                    let t = self
                        .rt
                        .db
                        .volume_migration_target_create(
                            &source_row,
                            &new_id,
                            args.new_type_id.as_deref(),
                        )
                        .await
                        .map_err(handler_error)?;
                    target = Some(t.clone());
                    t
                }
            };
            match self
                .rt
                .db
                .volume_place(&t.id, &pool, spec.size as i64, limit)
                .await
                .map_err(handler_error)?
            {
                Ok(()) => {
                    placement::log_placement(
                        &spec,
                        &pool,
                        1,
                        &picked.decision,
                        &picked.chain,
                        picked.seq,
                    );
                    self.rt
                        .db
                        .volume_set_migration_status(&spec.volume_id, Some("migrating"))
                        .await
                        .map_err(handler_error)?;
                    let dest_backend = backend_of(&pool).to_string();
                    info!(volume_id = %spec.volume_id, new_volume_id = %t.id, from = %args.pool, to = %pool, "migration placed");
                    let cast = MigrateVolumeArgs {
                        volume_id: spec.volume_id.clone(),
                        new_volume_id: t.id.clone(),
                        dest_backend,
                    };
                    return self
                        .volume
                        .migrate_volume(ctx, &source, &cast)
                        .await
                        .map_err(handler_error);
                }
                Err(used) => {
                    crate::metrics::db_refused();
                    warn!(volume_id = %spec.volume_id, %pool, used_gb = used, "database capacity check refused the migration's pool");
                    self.revert(consumed).await?;
                    refusals.push(format!(
                        "{pool} was refused by the database capacity check ({used} GB already placed, limit {} GB)",
                        limit.capacity_gb.unwrap_or_default()
                    ));
                    refused_pools.push(pool);
                    if refused_pools.len() >= MAX_REFUSALS {
                        self.rt
                            .db
                            .volume_destroy(&t.id)
                            .await
                            .map_err(handler_error)?;
                        let why = format!("No valid backend was found. {}", refusals.join("; "));
                        return self.migration_refused(ctx, &spec, &why).await;
                    }
                }
            }
        }
    }

    /// No destination: back to the previous status, `migration_status = error`, a message.
    pub(crate) async fn migration_refused(
        &self,
        ctx: &RequestContext,
        spec: &RequestSpec,
        why: &str,
    ) -> Result<(), RemoteError> {
        warn!(volume_id = %spec.volume_id, reason = why, "migration refused");
        match self
            .rt
            .db
            .volume_migration_end(&spec.volume_id, "error")
            .await
        {
            Ok(()) | Err(crate::db::DbError::NotFound(_)) => {}
            Err(e) => return Err(handler_error(e)),
        }
        self.migration_message(ctx, spec, why).await
    }

    /// Tell the volume's owner why its migration (or retype) did not happen.
    pub(crate) async fn migration_message(
        &self,
        ctx: &RequestContext,
        spec: &RequestSpec,
        why: &str,
    ) -> Result<(), RemoteError> {
        let what = if spec.operation == "retype" {
            "retype"
        } else {
            "migration"
        };
        let detail = format!("{what} of volume {} refused: {why}", spec.volume_id);
        self.rt
            .db
            .user_message_create(&NewMessage {
                project_id: &spec.project_id,
                request_id: Some(&ctx.request_id),
                resource_type: Some("VOLUME"),
                resource_uuid: Some(&spec.volume_id),
                action_id: "001",
                detail_id: "003",
                detail: Some(&detail),
            })
            .await
            .map_err(handler_error)?;
        Ok(())
    }
}

/// The backends a migration may go to: active ones but the source (and only `dest` when
/// named).
fn destinations(active: &HashSet<String>, source: &str, dest: Option<&str>) -> HashSet<String> {
    active
        .iter()
        .filter(|b| b.as_str() != source && dest.is_none_or(|d| backend_of(d) == b.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_backend_is_never_a_destination() {
        let active: HashSet<String> = ["n@a", "n@b", "n@c"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let d = destinations(&active, "n@a", None);
        assert!(!d.contains("n@a") && d.len() == 2);
        let d = destinations(&active, "n@a", Some("n@b#b"));
        assert_eq!(d.into_iter().collect::<Vec<_>>(), vec!["n@b".to_string()]);
        assert!(destinations(&active, "n@a", Some("n@a")).is_empty());
        assert_eq!(backend_of("n@b#pool"), "n@b");
        assert_eq!(backend_of("n@b"), "n@b");
    }
}
