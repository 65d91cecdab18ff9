//! Creating a volume on this backend as a recorded sequence of steps ([`CreateStep`]), each
//! of which knows its revert. On failure the steps begun are reverted newest first: the
//! driver's (possibly partly made) volume is unexported and deleted on the backend, and —
//! when the create fails for good rather than going back to the scheduler — the volume goes
//! to `error` with its quota given back and a user message. A driver failure another backend
//! might not hit sends a raw create back to the scheduler after the revert. A volume left
//! `creating` here by a crash is settled by the same reverts at start-up
//! ([`VolumeManager::settle_interrupted_create`]).
//!
//! Every state write is a compare-and-set from `creating`, and a create runs only while this
//! process holds the volume ([`VolumeManager::claim`]): a repeated delivery of the create
//! (at-least-once RPC) or the start-up recovery never turns a volume that was settled
//! meanwhile — `error`, `deleting`, `available` — into something else, and never deletes the
//! data of a volume another flow finished.

use tracing::{info, warn};

use super::flows::{handler_error, volume_ref};
use super::VolumeManager;
use crate::db::user_messages::NewMessage;
use crate::db::volumes::VolumeRow;
use crate::drivers::{DriverError, VolumeRef};
use crate::rpc::{RemoteError, RequestContext};
use crate::scheduler::placement::CreateArgs;

/// The steps of a create, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateStep {
    /// The volume's quota, charged by the API in the transaction that recorded the volume
    /// (held while the row's `use_quota` is set). Reverted when the create fails for good:
    /// `creating` → `error` and the quota given back in one transaction
    /// (`Db::volume_create_failed`); kept on a reschedule, where the volume lives on.
    Quota,
    /// The driver makes the data (raw, from a snapshot, or a clone). Reverted by removing any
    /// export and deleting the volume on the backend, a missing one being fine — also when the
    /// driver call itself failed, since a driver may leave a partly made volume behind.
    Data,
    /// `creating` → `available` with the driver's provider location and auth (a
    /// compare-and-set). The last step: nothing runs after it that could fail the create.
    Record,
}

impl CreateStep {
    fn name(self) -> &'static str {
        match self {
            CreateStep::Quota => "quota",
            CreateStep::Data => "data",
            CreateStep::Record => "record",
        }
    }
}

/// The steps one create has begun, and the volume they are about.
pub(crate) struct CreateFlow {
    row: VolumeRow,
    volume: VolumeRef,
    begun: Vec<CreateStep>,
}

/// How the revert of a create ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The create failed for good: every step is reverted, the quota included.
    Failed,
    /// The volume goes back to the scheduler: the data is reverted, the quota kept.
    Rescheduled,
}

impl CreateFlow {
    fn new(row: VolumeRow, volume: VolumeRef) -> Self {
        CreateFlow {
            row,
            volume,
            // Charged before the create reached this service.
            begun: vec![CreateStep::Quota],
        }
    }

    fn begin(&mut self, step: CreateStep) {
        info!(volume_id = %self.row.id, step = step.name(), "create step");
        self.begun.push(step);
    }

    /// Revert the steps begun, newest first. Returns what could not be reverted (said in the
    /// user message) and, for [`Ending::Failed`], whether this call settled the volume (it
    /// was still `creating`).
    async fn revert(&mut self, mgr: &VolumeManager, ending: Ending) -> (Vec<String>, bool) {
        let mut problems = Vec::new();
        let mut settled = false;
        while let Some(step) = self.begun.pop() {
            match step {
                CreateStep::Record => {}
                CreateStep::Data => {
                    if let Err(e) = mgr.remove_volume_data(&self.volume).await {
                        warn!(volume_id = %self.row.id, error = %e, "revert of the data step failed");
                        problems.push(format!(
                            "the partly made volume could not be removed from the backend: {e}"
                        ));
                    } else {
                        info!(volume_id = %self.row.id, "reverted the data step");
                    }
                }
                CreateStep::Quota if ending == Ending::Rescheduled => {}
                CreateStep::Quota => match mgr.rt.db.volume_create_failed(&self.row.id).await {
                    Ok(done) => settled = done,
                    Err(e) => problems.push(format!("the volume could not be marked error: {e}")),
                },
            }
        }
        (problems, settled)
    }
}

/// Driver errors that another backend would hit too: not worth rescheduling.
fn is_request_error(e: &DriverError) -> bool {
    matches!(
        e,
        DriverError::Invalid { .. } | DriverError::NotSupported { .. }
    )
}

impl VolumeManager {
    /// Create the volume the scheduler placed here (see the module docs).
    pub(crate) async fn create_volume(
        &self,
        ctx: &RequestContext,
        args: CreateArgs,
    ) -> Result<(), RemoteError> {
        let id = args.request_spec.volume_id.clone();
        let Some(_claim) = self.claim(&id) else {
            info!(volume_id = %id, "this volume is already being created or settled here; repeated delivery dropped");
            return Ok(());
        };
        let row = match self.rt.db.volume_get(&id).await {
            Ok(row) => row,
            Err(crate::db::DbError::NotFound(_)) => {
                info!(volume_id = %id, "volume deleted before creation; nothing to do");
                return Ok(());
            }
            Err(e) => return Err(handler_error(e)),
        };
        if row.status != "creating" || !self.is_mine(row.host.as_deref()) {
            info!(volume_id = %id, status = %row.status, host = ?row.host,
                  "volume no longer creating on this backend; repeated delivery dropped");
            return Ok(());
        }
        let mut volume = volume_ref(&row)?;
        if let Some(t) = &args.request_spec.volume_type {
            volume.extra_specs = t.extra_specs.clone();
        }
        let mut flow = CreateFlow::new(row.clone(), volume.clone());
        flow.begin(CreateStep::Data);
        let made = self.make_data(&row, &volume).await;
        let e = match made {
            Ok(update) => {
                volume.apply(&update);
                flow.volume = volume.clone();
                flow.begin(CreateStep::Record);
                let recorded = self
                    .rt
                    .db
                    .volume_created(
                        &id,
                        volume.provider_location.as_deref(),
                        volume.provider_auth.as_deref(),
                    )
                    .await;
                match recorded {
                    Ok(true) => {
                        info!(volume_id = %id, host = %self.host, size_gb = volume.size_gb, "volume created");
                        return self.settle_group_creating(&row).await;
                    }
                    Ok(false) => {
                        // Settled meanwhile: deleted or errored, the data is nobody's; set to
                        // another status by an operator, it is left alone.
                        let now = self.rt.db.volume_get(&id).await;
                        let orphaned = match &now {
                            Err(crate::db::DbError::NotFound(_)) => true,
                            Ok(v) => {
                                matches!(v.status.as_str(), "error" | "deleting" | "error_deleting")
                            }
                            Err(_) => false,
                        };
                        warn!(volume_id = %id, orphaned, "volume left creating while the driver made it");
                        if orphaned {
                            flow.revert(self, Ending::Rescheduled).await;
                        }
                        return Ok(());
                    }
                    Err(e) => {
                        let why = format!("the created volume could not be recorded: {e}");
                        return self.create_failed(ctx, &mut flow, &why).await;
                    }
                }
            }
            Err(e) => e,
        };
        // A snapshot or a source volume only exists here: another backend cannot help.
        if is_request_error(&e) || row.snapshot_id.is_some() || row.source_volid.is_some() {
            return self.create_failed(ctx, &mut flow, &e.to_string()).await;
        }
        self.reschedule(ctx, args, &mut flow, e).await
    }

    /// The driver call of the data step.
    async fn make_data(
        &self,
        row: &VolumeRow,
        volume: &VolumeRef,
    ) -> Result<crate::drivers::ModelUpdate, DriverError> {
        match (&row.snapshot_id, &row.source_volid) {
            (Some(snap), _) => {
                let snap = self
                    .rt
                    .db
                    .snapshot_get(snap)
                    .await
                    .map_err(|e| backend(&e))?;
                let snap = self
                    .snapshot_ref(&snap)
                    .await
                    .map_err(|e| backend(&e.message))?;
                self.driver()
                    .await
                    .create_volume_from_snapshot(volume, &snap)
                    .await
            }
            (None, Some(src)) => {
                let source = self.rt.db.volume_get(src).await.map_err(|e| backend(&e))?;
                let source = volume_ref(&source).map_err(|e| backend(&e.message))?;
                self.driver()
                    .await
                    .create_cloned_volume(volume, &source)
                    .await
            }
            (None, None) => self.driver().await.create_volume(volume).await,
        }
    }

    /// The data step's revert: unexport and delete the volume on the backend (missing is
    /// fine).
    pub(crate) async fn remove_volume_data(&self, volume: &VolumeRef) -> Result<(), DriverError> {
        let driver = self.driver().await;
        match driver.remove_export(volume).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        match driver.delete_volume(volume).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The create failed for good: revert every step (the volume ends `error`, its quota
    /// given back) and tell the owner why.
    async fn create_failed(
        &self,
        ctx: &RequestContext,
        flow: &mut CreateFlow,
        why: &str,
    ) -> Result<(), RemoteError> {
        let (problems, settled) = flow.revert(self, Ending::Failed).await;
        let row = &flow.row;
        if !settled {
            info!(volume_id = %row.id, reason = why, "create failed after the volume left creating; left as it is");
            return Ok(());
        }
        let mut why = why.to_string();
        for p in &problems {
            why.push_str("; ");
            why.push_str(p);
        }
        warn!(volume_id = %row.id, reason = %why, "volume create failed");
        self.rt
            .db
            .user_message_create(&NewMessage {
                project_id: &row.project_id,
                request_id: Some(&ctx.request_id),
                resource_type: Some("VOLUME"),
                resource_uuid: Some(&row.id),
                action_id: "001",
                detail_id: "001",
                detail: Some(&why),
            })
            .await
            .map_err(handler_error)?;
        self.settle_group_creating(row).await
    }

    /// A driver failure: the data step reverted, back to the scheduler, which tries another
    /// backend (or gives up after `scheduler.max_attempts` and explains).
    async fn reschedule(
        &self,
        ctx: &RequestContext,
        mut args: CreateArgs,
        flow: &mut CreateFlow,
        e: DriverError,
    ) -> Result<(), RemoteError> {
        let id = flow.row.id.clone();
        warn!(volume_id = %id, host = %self.host, error = %e, "driver failed to create the volume; rescheduling");
        let (problems, _) = flow.revert(self, Ending::Rescheduled).await;
        if !problems.is_empty() {
            warn!(volume_id = %id, problems = ?problems, "rescheduling with the revert incomplete");
        }
        if !self
            .rt
            .db
            .volume_unplace(&id, &self.host)
            .await
            .map_err(handler_error)?
        {
            info!(volume_id = %id, "volume settled meanwhile; not rescheduled");
            return Ok(());
        }
        if !args.retry.backends.contains(&self.host) {
            args.retry.backends.push(self.host.clone());
        }
        args.retry.exc = Some(e.to_string());
        if let Err(send) = self.scheduler.create_volume(ctx, &args).await {
            // Nothing will place it now: fail it here rather than leave it `creating`.
            flow.begun = vec![CreateStep::Quota];
            let why = format!(
                "{e}; the volume could not be sent back to the scheduler for another backend: {send}"
            );
            return self.create_failed(ctx, flow, &why).await;
        }
        Ok(())
    }

    /// Start-up: a volume of this backend left `creating` by a crash (nothing in this process
    /// is creating it). Its create's steps are reverted as for a failure — `error` with the
    /// quota given back, then the data step undone in case the driver had begun — and the
    /// owner is told. Returns whether this call settled it.
    pub(crate) async fn settle_interrupted_create(
        &self,
        ctx: &RequestContext,
        row: &VolumeRow,
    ) -> Result<bool, String> {
        let Some(_claim) = self.claim(&row.id) else {
            return Ok(false); // a repeated delivery of its create is running: it settles it
        };
        let volume = volume_ref(row).map_err(|e| e.message)?;
        // The quota step's revert first (it is the status write): a create delivered after
        // this sees `error`; one still `creating` is ours to undo.
        if !self
            .rt
            .db
            .volume_create_failed(&row.id)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(false);
        }
        let mut problems = Vec::new();
        if let Err(e) = self.remove_volume_data(&volume).await {
            warn!(volume_id = %row.id, error = %e, "revert of the data step failed");
            problems.push(format!(
                "the partly made volume could not be removed from the backend: {e}"
            ));
        }
        let mut why = format!(
            "volume {} was being created when the volume service {} stopped; it was not \
             created, its partly made data was removed and its quota given back",
            row.id, self.host
        );
        for p in &problems {
            why.push_str("; ");
            why.push_str(p);
        }
        let _ = self
            .rt
            .db
            .user_message_create(&NewMessage {
                project_id: &row.project_id,
                request_id: Some(&ctx.request_id),
                resource_type: Some("VOLUME"),
                resource_uuid: Some(&row.id),
                action_id: "001",
                detail_id: "001",
                detail: Some(&why),
            })
            .await;
        warn!(volume_id = %row.id, "settled a create interrupted by a restart");
        self.settle_group_creating(row)
            .await
            .map_err(|e| e.message)?;
        Ok(true)
    }
}

fn backend(e: &dyn std::fmt::Display) -> DriverError {
    DriverError::Backend {
        backend: String::new(),
        message: e.to_string(),
    }
}
