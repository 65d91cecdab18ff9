//! `create_volume` on the scheduler: the placement loop. One decision through the active
//! chain under the scheduler's lock (the winner's capacity consumed before the lock is
//! released, so the next request sees it), then the database-side capacity check, then the
//! cast to the chosen volume service. A pool the database refuses is excluded and the chain
//! asked again; no pool left fails the volume with the chain's explanation.

use std::collections::HashSet;

use tracing::{info, warn};

use super::placement::{self, ConsumedBy, CreateArgs, RetryInfo};
use super::SchedulerManager;
use crate::db::user_messages::NewMessage;
use crate::plugins::{Decision, Explain};
use crate::rpc::{RemoteError, RequestContext};

/// Database refusals (another scheduler filled the pool) tolerated per attempt.
const MAX_REFUSALS: usize = 5;

/// One decision and what it consumed.
pub(super) struct Picked {
    pub(super) decision: Decision,
    pub(super) candidates: usize,
    /// `host@backend#pool`, its limit, and the consumption to revert.
    pub(super) chosen: Option<(
        String,
        crate::db::placement::PoolLimit,
        super::pools::Consumed,
    )>,
    pub(super) names: Vec<(u32, String)>,
    /// The chain that decided (its label), and the decision's number in this process.
    pub(super) chain: String,
    pub(super) seq: u64,
}

fn handler_error(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new("HandlerError", e.to_string())
}

impl SchedulerManager {
    /// Place the volume of `args` and cast its creation, or fail it with an explanation.
    pub(crate) async fn schedule_create(
        &self,
        ctx: &RequestContext,
        args: CreateArgs,
    ) -> Result<(), RemoteError> {
        let CreateArgs {
            request_spec: spec,
            mut retry,
        } = args;
        if let Some(c) = retry.consumed.take() {
            if c.scheduler == self.instance {
                self.with_state(move |s| {
                    if let Some(delta) = s.index.revert(s.chain.table(), &c.consumed) {
                        s.apply(&[delta]);
                    }
                })
                .await?;
            }
        }
        let max = self.rt.config().scheduler.max_attempts;
        if retry.num_attempts >= max {
            let msg = format!(
                "Exceeded maximum number of scheduling attempts ({max}) for volume {}. Backends tried: {}. Last error: {}",
                spec.volume_id,
                retry.backends.join(", "),
                retry.exc.as_deref().unwrap_or("unknown")
            );
            return self
                .fail(ctx, &spec.volume_id, &spec.project_id, &msg)
                .await;
        }
        let mut active = self.active_backends().await?;
        // A volume of a group goes to the group's backend or nowhere.
        if let Some(group_backend) = &spec.group_backend {
            active.retain(|b| b == group_backend);
        }
        // A clone or a volume from a snapshot is made by the backend holding the source.
        let source = match (&spec.snapshot_id, &spec.source_volid) {
            (Some(snap), _) => match self.rt.db.snapshot_get(snap).await {
                Ok(s) => Some(s.volume_id),
                Err(crate::db::DbError::NotFound(_)) => {
                    let msg = format!("snapshot {snap} was deleted before the volume was placed");
                    return self
                        .fail(ctx, &spec.volume_id, &spec.project_id, &msg)
                        .await;
                }
                Err(e) => return Err(handler_error(e)),
            },
            (None, src) => src.clone(),
        };
        if let Some(src) = &source {
            let hosts = self
                .rt
                .db
                .volume_hosts(std::slice::from_ref(src))
                .await
                .map_err(handler_error)?;
            let backend = hosts
                .get(src)
                .map(|h| h.split_once('#').map_or(h.as_str(), |(b, _)| b).to_string());
            active.retain(|b| Some(b) == backend.as_ref());
        }
        let hinted = placement::hinted_volumes(&spec);
        let volume_pools = if hinted.is_empty() {
            Default::default()
        } else {
            self.rt
                .db
                .volume_hosts(&hinted)
                .await
                .map_err(handler_error)?
        };
        let request = placement::to_request(&spec, &retry, volume_pools);
        let mut refused_pools: Vec<String> = Vec::new();
        let mut refusals: Vec<String> = Vec::new();
        loop {
            let (active_c, tried, refused_c, request_c, spec_c) = (
                active.clone(),
                retry.backends.clone(),
                refused_pools.clone(),
                request.clone(),
                spec.clone(),
            );
            let picked = self
                .with_state(move |s| {
                    let started = std::time::Instant::now();
                    let picked = pick(s, &active_c, &tried, &refused_c, &request_c, &spec_c);
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
                let names = picked.names;
                let name_of = |id: u32| {
                    names
                        .iter()
                        .find(|(i, _)| *i == id)
                        .map_or_else(|| format!("pool {id}"), |(_, n)| n.clone())
                };
                let msg = placement::explain_no_valid_backend(
                    &picked.decision,
                    name_of,
                    picked.candidates,
                    &retry,
                    max,
                    &refusals,
                );
                return self
                    .fail(ctx, &spec.volume_id, &spec.project_id, &msg)
                    .await;
            };
            let placed = self
                .rt
                .db
                .volume_place(&spec.volume_id, &pool, spec.size as i64, limit)
                .await;
            match placed {
                Ok(Ok(())) => {
                    placement::log_placement(
                        &spec,
                        &pool,
                        retry.num_attempts + 1,
                        &picked.decision,
                        &picked.chain,
                        picked.seq,
                    );
                    let backend = pool
                        .split_once('#')
                        .map_or(pool.as_str(), |(b, _)| b)
                        .to_string();
                    let args = CreateArgs {
                        request_spec: spec.clone(),
                        retry: RetryInfo {
                            num_attempts: retry.num_attempts + 1,
                            backends: retry.backends.clone(),
                            exc: retry.exc.clone(),
                            consumed: Some(ConsumedBy {
                                scheduler: self.instance.clone(),
                                consumed,
                            }),
                        },
                    };
                    return self
                        .volume
                        .create_volume(ctx, &backend, &args)
                        .await
                        .map_err(handler_error);
                }
                Ok(Err(used)) => {
                    crate::metrics::db_refused();
                    warn!(volume_id = %spec.volume_id, %pool, used_gb = used, "database capacity check refused the pool; trying the next");
                    self.revert(consumed).await?;
                    refusals.push(format!(
                        "{pool} was refused by the database capacity check ({used} GB already placed, limit {} GB)",
                        limit.capacity_gb.unwrap_or_default()
                    ));
                    refused_pools.push(pool);
                    if refused_pools.len() >= MAX_REFUSALS {
                        let msg = format!("No valid backend was found. {}", refusals.join("; "));
                        return self
                            .fail(ctx, &spec.volume_id, &spec.project_id, &msg)
                            .await;
                    }
                }
                Err(crate::db::DbError::NotFound(_)) => {
                    // Deleted (or settled) while being scheduled: nothing to create.
                    self.revert(consumed).await?;
                    info!(volume_id = %spec.volume_id, "volume deleted or no longer creating before placement; dropped");
                    return Ok(());
                }
                Err(e) => {
                    self.revert(consumed).await?;
                    return Err(handler_error(e));
                }
            }
        }
    }

    /// Settle volumes left `creating` on no backend for longer than
    /// `scheduler.unplaced_create_timeout`: a crash between scheduling steps (or after a
    /// reschedule forgot the placement) lost the message that would have placed them. Each
    /// goes to `error` with its quota given back and a user message (a compare-and-set from
    /// `creating`, so several schedulers sweeping at once settle a volume once, and a late
    /// message for it is then dropped at placement). Returns how many were settled.
    pub(crate) async fn settle_unplaced_creates(&self) -> Result<usize, String> {
        let timeout = self.rt.config().scheduler.unplaced_create_timeout;
        let before = crate::db::format_time(
            time::OffsetDateTime::now_utc() - time::Duration::seconds(timeout as i64),
        );
        let stuck = self
            .rt
            .db
            .volumes_unplaced_creating(&before)
            .await
            .map_err(|e| e.to_string())?;
        let ctx = RequestContext::internal();
        let mut settled = 0;
        for v in stuck {
            let why = format!(
                "volume {} stayed creating on no backend for more than {timeout} s: the request \
                 to place it was lost (a service stopped between scheduling steps); it was not \
                 created, and its quota was given back",
                v.id
            );
            if self
                .fail_volume(&ctx, &v.id, &v.project_id, &why)
                .await
                .map_err(|e| e.message)?
            {
                settled += 1;
            }
        }
        if settled > 0 {
            warn!(settled, "settled volumes left creating on no backend");
        }
        Ok(settled)
    }

    pub(super) async fn revert(&self, consumed: super::pools::Consumed) -> Result<(), RemoteError> {
        self.with_state(move |s| {
            if let Some(delta) = s.index.revert(s.chain.table(), &consumed) {
                s.apply(&[delta]);
            }
        })
        .await
    }

    /// The volume goes from `creating` to `error` (its quota given back) with a user message
    /// saying why; one no longer `creating` (deleted, or settled meanwhile) is left alone.
    async fn fail(
        &self,
        ctx: &RequestContext,
        volume_id: &str,
        project_id: &str,
        why: &str,
    ) -> Result<(), RemoteError> {
        self.fail_volume(ctx, volume_id, project_id, why)
            .await
            .map(|_| ())
    }

    /// [`Self::fail`]; `true` when this call settled the volume.
    async fn fail_volume(
        &self,
        ctx: &RequestContext,
        volume_id: &str,
        project_id: &str,
        why: &str,
    ) -> Result<bool, RemoteError> {
        warn!(volume_id, reason = why, "volume cannot be placed");
        if !self
            .rt
            .db
            .volume_create_failed(volume_id)
            .await
            .map_err(handler_error)?
        {
            info!(volume_id, "volume no longer creating; left as it is");
            return Ok(false);
        }
        self.rt
            .db
            .user_message_create(&NewMessage {
                project_id,
                request_id: Some(&ctx.request_id),
                resource_type: Some("VOLUME"),
                resource_uuid: Some(volume_id),
                action_id: "001",
                detail_id: "002",
                detail: Some(why),
            })
            .await
            .map_err(handler_error)?;
        // A volume of a group made from a source: the group is done waiting for it.
        if let Ok(Some(group)) = self.rt.db.volume_get(volume_id).await.map(|v| v.group_id) {
            self.rt
                .db
                .group_settle_creating(&group)
                .await
                .map_err(handler_error)?;
        }
        Ok(true)
    }
}

/// One decision over the eligible pools, consuming the winner's capacity.
pub(super) fn pick(
    s: &mut super::State,
    active: &HashSet<String>,
    tried: &[String],
    refused: &[String],
    request: &kiln_plugin_sdk::Request,
    spec: &placement::RequestSpec,
) -> Picked {
    let candidates: Vec<u32> = s
        .index
        .candidates(active, tried)
        .into_iter()
        .filter(|id| {
            s.index
                .name(*id)
                .is_some_and(|n| !refused.iter().any(|r| r == n))
        })
        .collect();
    let decision = s
        .chain
        .decide_with(request, &candidates, Explain::IfNoneLeft);
    s.decided += 1;
    if let Some(shadow) = &mut s.shadow {
        let theirs = shadow
            .chain
            .decide_with(request, &candidates, Explain::IfNoneLeft);
        let name = |id: u32| s.index.name(id).map(String::from);
        let live = super::shadow::chosen(&decision, name);
        let other = super::shadow::chosen(&theirs, name);
        shadow.compare(&request.volume_id, live, other);
    }
    let names = decision
        .removed
        .iter()
        .map(|r| (r.pool, s.index.name(r.pool).unwrap_or("?").to_string()))
        .collect();
    let chosen = decision.best().and_then(|id| {
        let name = s.index.name(id)?.to_string();
        let limit = placement::pool_limit(s.chain.table(), id, spec);
        let (delta, consumed) = s.index.consume(s.chain.table(), id, spec.size)?;
        s.apply(&[delta]);
        Some((name, limit, consumed))
    });
    Picked {
        decision,
        candidates: candidates.len(),
        chosen,
        names,
        chain: s.label.clone(),
        seq: s.decided,
    }
}
