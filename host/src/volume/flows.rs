//! The volume operations of one backend: create (raw, from a snapshot, or as a clone of a
//! volume), with a driver failure sending a raw create back to the scheduler for another
//! backend; extend; delete (with its snapshots when cascading). Every failure leaves the
//! volume in an error state with a user message saying why.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::VolumeManager;
use crate::db::quotas::with_type;
use crate::db::user_messages::NewMessage;
use crate::db::volumes::VolumeRow;
use crate::drivers::{DriverError, VolumeRef};
use crate::rpc::{RemoteError, RequestContext};
use crate::scheduler::placement::CreateArgs;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteArgs {
    pub volume_id: String,
    /// Delete the volume's snapshots first (`DELETE /volumes/{id}?cascade=true`).
    #[serde(default)]
    pub cascade: bool,
}

pub(crate) fn handler_error(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new("HandlerError", e.to_string())
}

/// The driver's view of a volume row. After a migration the backend knows the volume by the
/// temporary volume's id (`name_id`, Cinder's `_name_id`), so that id names it.
pub(crate) fn volume_ref(row: &VolumeRow) -> Result<VolumeRef, RemoteError> {
    let backend_id = row.name_id.as_deref().unwrap_or(&row.id);
    let id = uuid::Uuid::parse_str(backend_id)
        .map_err(|e| handler_error(format!("volume id {backend_id} is not a UUID: {e}")))?;
    let mut v = VolumeRef::new(id, row.size.max(0) as u64);
    v.pool = row
        .host
        .as_deref()
        .and_then(|h| h.split_once('#'))
        .map(|(_, p)| p.to_string())
        .unwrap_or_default();
    v.provider_location = row.provider_location.clone();
    v.provider_auth = row.provider_auth.clone();
    v.metadata = row.metadata.clone();
    Ok(v)
}

/// Driver errors that another backend would hit too: not worth rescheduling.
fn is_request_error(e: &DriverError) -> bool {
    matches!(
        e,
        DriverError::Invalid { .. } | DriverError::NotSupported { .. }
    )
}

impl VolumeManager {
    /// Create the volume the scheduler placed here.
    pub(crate) async fn create_volume(
        &self,
        ctx: &RequestContext,
        args: CreateArgs,
    ) -> Result<(), RemoteError> {
        let id = args.request_spec.volume_id.clone();
        let row = match self.rt.db.volume_get(&id).await {
            Ok(row) => row,
            Err(crate::db::DbError::NotFound(_)) => {
                info!(volume_id = %id, "volume deleted before creation; nothing to do");
                return Ok(());
            }
            Err(e) => return Err(handler_error(e)),
        };
        let mut volume = volume_ref(&row)?;
        if let Some(t) = &args.request_spec.volume_type {
            volume.extra_specs = t.extra_specs.clone();
        }
        let result = match (&row.snapshot_id, &row.source_volid) {
            (Some(snap), _) => {
                let snap = self.rt.db.snapshot_get(snap).await.map_err(handler_error)?;
                let snap = self.snapshot_ref(&snap).await?;
                self.driver()
                    .await
                    .create_volume_from_snapshot(&volume, &snap)
                    .await
            }
            (None, Some(src)) => {
                let source = self.rt.db.volume_get(src).await.map_err(handler_error)?;
                let source = volume_ref(&source)?;
                self.driver()
                    .await
                    .create_cloned_volume(&volume, &source)
                    .await
            }
            (None, None) => self.driver().await.create_volume(&volume).await,
        };
        match result {
            Ok(update) => {
                volume.apply(&update);
                self.rt
                    .db
                    .volume_created(
                        &id,
                        volume.provider_location.as_deref(),
                        volume.provider_auth.as_deref(),
                    )
                    .await
                    .map_err(handler_error)?;
                info!(volume_id = %id, host = %self.host, size_gb = volume.size_gb, "volume created");
                self.settle_group_creating(&row).await
            }
            // A snapshot or a source volume only exists here: another backend cannot help.
            Err(e)
                if is_request_error(&e)
                    || row.snapshot_id.is_some()
                    || row.source_volid.is_some() =>
            {
                self.fail(ctx, &row, "error", "001", &e.to_string()).await
            }
            Err(e) => self.reschedule(ctx, args, &row, e).await,
        }
    }

    /// A driver failure: back to the scheduler, which tries another backend (or gives up
    /// after `scheduler.max_attempts` and explains).
    async fn reschedule(
        &self,
        ctx: &RequestContext,
        mut args: CreateArgs,
        row: &VolumeRow,
        e: DriverError,
    ) -> Result<(), RemoteError> {
        warn!(volume_id = %row.id, host = %self.host, error = %e, "driver failed to create the volume; rescheduling");
        self.rt
            .db
            .volume_unplace(&row.id)
            .await
            .map_err(handler_error)?;
        if !args.retry.backends.contains(&self.host) {
            args.retry.backends.push(self.host.clone());
        }
        args.retry.exc = Some(e.to_string());
        self.scheduler
            .create_volume(ctx, &args)
            .await
            .map_err(handler_error)
    }

    /// Grow a volume the scheduler accepted the growth of.
    pub(crate) async fn extend_volume(
        &self,
        ctx: &RequestContext,
        args: crate::scheduler::extend::ExtendArgs,
    ) -> Result<(), RemoteError> {
        let id = &args.request_spec.volume_id;
        let new_size = args.request_spec.new_size.unwrap_or(args.request_spec.size);
        let row = match self.rt.db.volume_get(id).await {
            Ok(row) => row,
            Err(crate::db::DbError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(handler_error(e)),
        };
        let volume = volume_ref(&row)?;
        let online = args.previous_status == "in-use";
        match self.driver().await.extend_volume(&volume, new_size).await {
            Ok(()) => {
                self.rt
                    .db
                    .volume_extended(id, new_size as i64, &args.previous_status)
                    .await
                    .map_err(handler_error)?;
                info!(volume_id = %id, new_size, online, "volume extended");
                Ok(())
            }
            Err(e) => {
                let growth = new_size as i64 - row.size;
                self.rt
                    .db
                    .quota_release(
                        &row.project_id,
                        &with_type(&[("gigabytes", growth)], row.volume_type_name.as_deref()),
                    )
                    .await
                    .map_err(handler_error)?;
                // An attached volume stays usable at its old size; a detached one is marked
                // like Cinder does.
                let status = if online { "in-use" } else { "error_extending" };
                let why = format!("extending to {new_size} GB failed: {e}");
                self.fail_action(ctx, &row, status, "007", "001", &why)
                    .await
            }
        }
    }

    /// Record the new type of a volume the scheduler found its pool satisfies (a retype
    /// without migration: the data stays where it is).
    pub(crate) async fn retype_volume(
        &self,
        _ctx: &RequestContext,
        args: crate::scheduler::retype::RetypeArgs,
    ) -> Result<(), RemoteError> {
        let id = &args.request_spec.volume_id;
        let Some(t) = &args.request_spec.volume_type else {
            return Err(handler_error(format!(
                "retype of {id} names no volume type"
            )));
        };
        match self
            .rt
            .db
            .volume_retyped(id, &t.id, &args.previous_status)
            .await
        {
            Ok(()) => {
                info!(volume_id = %id, new_type = %t.name, "volume retyped");
                Ok(())
            }
            Err(crate::db::DbError::NotFound(_)) => Ok(()),
            Err(e) => Err(handler_error(e)),
        }
    }

    /// Delete a volume from the backend, then from the database.
    pub(crate) async fn delete_volume(
        &self,
        ctx: &RequestContext,
        args: DeleteArgs,
    ) -> Result<(), RemoteError> {
        let row = match self.rt.db.volume_get(&args.volume_id).await {
            Ok(row) => row,
            Err(crate::db::DbError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(handler_error(e)),
        };
        if args.cascade {
            let snapshots = self
                .rt
                .db
                .snapshots_of_volume(&row.id)
                .await
                .map_err(handler_error)?;
            for snap in snapshots {
                if let Err(why) = self.remove_snapshot(&snap).await {
                    let why = format!("snapshot {} could not be deleted: {why}", snap.id);
                    let _ = self
                        .rt
                        .db
                        .snapshot_set_status(&snap.id, "error_deleting", None)
                        .await;
                    return self.fail(ctx, &row, "error_deleting", "001", &why).await;
                }
            }
        }
        let volume = volume_ref(&row)?;
        if let Err(e) = self.driver().await.remove_export(&volume).await {
            if !e.is_not_found() {
                warn!(volume_id = %row.id, error = %e, "could not remove the export before delete");
            }
        }
        match self.driver().await.delete_volume(&volume).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                return self
                    .fail(ctx, &row, "error_deleting", "001", &e.to_string())
                    .await
            }
        }
        self.rt
            .db
            .volume_destroy(&row.id)
            .await
            .map_err(handler_error)?;
        // A migration's temporary volume never counted against quota.
        if row.use_quota {
            self.rt
                .db
                .quota_release(
                    &row.project_id,
                    &with_type(
                        &[("volumes", 1), ("gigabytes", row.size)],
                        row.volume_type_name.as_deref(),
                    ),
                )
                .await
                .map_err(handler_error)?;
        }
        info!(volume_id = %row.id, host = %self.host, "volume deleted");
        self.settle_group_deleting(&row).await
    }

    /// A volume of a group made from a source is done (or failed): the group may be too.
    async fn settle_group_creating(&self, row: &VolumeRow) -> Result<(), RemoteError> {
        match &row.group_id {
            Some(g) => self
                .rt
                .db
                .group_settle_creating(g)
                .await
                .map_err(handler_error),
            None => Ok(()),
        }
    }

    /// A volume of a group being deleted is gone (or failed to go): the group may go too.
    async fn settle_group_deleting(&self, row: &VolumeRow) -> Result<(), RemoteError> {
        match &row.group_id {
            Some(g) => self
                .rt
                .db
                .group_settle_deleting(g)
                .await
                .map_err(handler_error),
            None => Ok(()),
        }
    }

    /// Put the volume in `status` and tell its owner why.
    async fn fail(
        &self,
        ctx: &RequestContext,
        row: &VolumeRow,
        status: &str,
        detail_id: &str,
        why: &str,
    ) -> Result<(), RemoteError> {
        let action_id = if status == "error_deleting" {
            "002"
        } else {
            "001"
        };
        self.fail_action(ctx, row, status, action_id, detail_id, why)
            .await
    }

    /// [`Self::fail`] with the message's action named.
    pub(super) async fn fail_action(
        &self,
        ctx: &RequestContext,
        row: &VolumeRow,
        status: &str,
        action_id: &str,
        detail_id: &str,
        why: &str,
    ) -> Result<(), RemoteError> {
        warn!(volume_id = %row.id, status, reason = why, "volume operation failed");
        self.rt
            .db
            .volume_set_status(&row.id, status)
            .await
            .map_err(handler_error)?;
        self.rt
            .db
            .user_message_create(&NewMessage {
                project_id: &row.project_id,
                request_id: Some(&ctx.request_id),
                resource_type: Some("VOLUME"),
                resource_uuid: Some(&row.id),
                action_id,
                detail_id,
                detail: Some(why),
            })
            .await
            .map_err(handler_error)?;
        if status == "error_deleting" {
            self.settle_group_deleting(row).await
        } else {
            self.settle_group_creating(row).await
        }
    }
}
