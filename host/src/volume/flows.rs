//! The volume operations of one backend besides create (`create.rs`): extend, retype without
//! migration, delete (with its snapshots when cascading). Every failure leaves the volume in
//! an error state with a user message saying why; the status is written only from the one the
//! operation expected (a compare-and-set), never over what another flow set meanwhile.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::VolumeManager;
use crate::db::quotas::with_type;
use crate::db::user_messages::NewMessage;
use crate::db::volumes::VolumeRow;
use crate::drivers::VolumeRef;
use crate::rpc::{RemoteError, RequestContext};

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

impl VolumeManager {
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
                self.fail_action(ctx, &row, &["extending"], status, "007", "001", &why)
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
        // The quota goes in the same transaction, unless the volume no longer counts (a
        // failed create gave it back; a migration's temporary volume never took any).
        self.rt
            .db
            .volume_destroy(&row.id)
            .await
            .map_err(handler_error)?;
        info!(volume_id = %row.id, host = %self.host, "volume deleted");
        self.settle_group_deleting(&row).await
    }

    /// A volume of a group made from a source is done (or failed): the group may be too.
    pub(super) async fn settle_group_creating(&self, row: &VolumeRow) -> Result<(), RemoteError> {
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

    /// A delete failed: `deleting` → `status`, and tell the owner why.
    async fn fail(
        &self,
        ctx: &RequestContext,
        row: &VolumeRow,
        status: &str,
        detail_id: &str,
        why: &str,
    ) -> Result<(), RemoteError> {
        self.fail_action(ctx, row, &["deleting"], status, "002", detail_id, why)
            .await
    }

    /// Move the volume from one of `from` to `status` and tell its owner why (action
    /// `action_id`). A volume in another status by now — settled by another flow — is left as
    /// it is, without a message.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fail_action(
        &self,
        ctx: &RequestContext,
        row: &VolumeRow,
        from: &[&str],
        status: &str,
        action_id: &str,
        detail_id: &str,
        why: &str,
    ) -> Result<(), RemoteError> {
        warn!(volume_id = %row.id, status, reason = why, "volume operation failed");
        if !self
            .rt
            .db
            .volume_settle_status(&row.id, from, status)
            .await
            .map_err(handler_error)?
        {
            info!(volume_id = %row.id, expected = ?from, "volume changed status meanwhile; left as it is");
            return Ok(());
        }
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
