//! Snapshot operations of one backend: take a snapshot of a volume held here, delete one
//! (also as part of a cascading volume delete), revert a volume to its latest snapshot. A
//! driver failure leaves the snapshot in `error` / `error_deleting` (a failed revert: the
//! volume in `error`) with a user message; quota is released when a snapshot goes.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::flows::{handler_error, volume_ref};
use super::VolumeManager;
use crate::db::quotas::with_type;
use crate::db::snapshots::SnapshotRow;
use crate::db::user_messages::NewMessage;
use crate::db::DbError;
use crate::drivers::SnapshotRef;
use crate::rpc::{RemoteError, RequestContext};

/// Arguments of `create_snapshot` / `delete_snapshot`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotArgs {
    pub snapshot_id: String,
}

/// Arguments of `revert_to_snapshot` (RPC 3.9).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevertArgs {
    pub volume_id: String,
    /// The volume's latest snapshot.
    pub snapshot_id: String,
}

/// Cinder's message actions for snapshots.
const ACTION_CREATE: &str = "009";
const ACTION_DELETE: &str = "010";
/// Kiln's message action for a revert (Cinder records none; api/messages.rs names it).
pub(crate) const ACTION_REVERT: &str = "101";

impl VolumeManager {
    /// The driver's view of a snapshot row (with its source volume).
    pub(crate) async fn snapshot_ref(&self, row: &SnapshotRow) -> Result<SnapshotRef, RemoteError> {
        let volume = self
            .rt
            .db
            .volume_get(&row.volume_id)
            .await
            .map_err(handler_error)?;
        let id = uuid::Uuid::parse_str(&row.id)
            .map_err(|e| handler_error(format!("snapshot id {} is not a UUID: {e}", row.id)))?;
        let mut s = SnapshotRef::new(id, volume_ref(&volume)?);
        s.size_gb = row.volume_size.max(0) as u64;
        s.provider_location = row.provider_location.clone();
        Ok(s)
    }

    /// Take the snapshot the API recorded as `creating`.
    pub(crate) async fn create_snapshot(
        &self,
        ctx: &RequestContext,
        args: SnapshotArgs,
    ) -> Result<(), RemoteError> {
        let row = match self.rt.db.snapshot_get(&args.snapshot_id).await {
            Ok(row) => row,
            Err(DbError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(handler_error(e)),
        };
        let snapshot = self.snapshot_ref(&row).await?;
        let driver = self.driver().await;
        match driver.create_snapshot(&snapshot).await {
            Ok(update) => {
                self.rt
                    .db
                    .snapshot_created(&row.id, update.provider_location.as_deref())
                    .await
                    .map_err(handler_error)?;
                info!(snapshot_id = %row.id, volume_id = %row.volume_id, "snapshot created");
                self.settle_group_snapshot(&row, false).await
            }
            Err(e) => {
                self.fail_snapshot(ctx, &row, "error", ACTION_CREATE, &e.to_string())
                    .await
            }
        }
    }

    /// Revert a volume (`reverting`) to its latest snapshot (`restoring`), as the API moved
    /// them: both end `available`; on a driver failure the volume is `error` with a message
    /// (its data may be partly reverted by a driver without an atomic revert) and the
    /// snapshot `available` again, as Cinder's `revert_to_snapshot`.
    pub(crate) async fn revert_to_snapshot(
        &self,
        ctx: &RequestContext,
        args: RevertArgs,
    ) -> Result<(), RemoteError> {
        let db = &self.rt.db;
        let volume = match db.volume_get(&args.volume_id).await {
            Ok(row) => row,
            Err(DbError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(handler_error(e)),
        };
        let row = match db.snapshot_get(&args.snapshot_id).await {
            Ok(row) => row,
            Err(DbError::NotFound(_)) => {
                let why = format!(
                    "snapshot {} was deleted before the revert",
                    args.snapshot_id
                );
                return self
                    .fail_action(
                        ctx,
                        &volume,
                        &["reverting"],
                        "available",
                        ACTION_REVERT,
                        "001",
                        &why,
                    )
                    .await;
            }
            Err(e) => return Err(handler_error(e)),
        };
        let snapshot = self.snapshot_ref(&row).await?;
        let outcome = self
            .driver()
            .await
            .revert_to_snapshot(&volume_ref(&volume)?, &snapshot)
            .await;
        db.snapshot_transition(&row.id, &["restoring"], "available")
            .await
            .map_err(handler_error)?;
        match outcome {
            Ok(()) => {
                db.volume_transition(&volume.id, &["reverting"], "available")
                    .await
                    .map_err(handler_error)?;
                info!(volume_id = %volume.id, snapshot_id = %row.id, "volume reverted to snapshot");
                Ok(())
            }
            Err(e) => {
                let why = format!("reverting to snapshot {} failed: {e}", row.id);
                self.fail_action(
                    ctx,
                    &volume,
                    &["reverting"],
                    "error",
                    ACTION_REVERT,
                    "001",
                    &why,
                )
                .await
            }
        }
    }

    /// Delete a snapshot from the backend, then from the database, releasing its quota.
    pub(crate) async fn delete_snapshot(
        &self,
        ctx: &RequestContext,
        args: SnapshotArgs,
    ) -> Result<(), RemoteError> {
        let row = match self.rt.db.snapshot_get(&args.snapshot_id).await {
            Ok(row) => row,
            Err(DbError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(handler_error(e)),
        };
        match self.remove_snapshot(&row).await {
            Ok(()) => Ok(()),
            Err(why) => {
                self.fail_snapshot(ctx, &row, "error_deleting", ACTION_DELETE, &why)
                    .await
            }
        }
    }

    /// The backend copy of `row` removed and the row destroyed; the error says why not.
    pub(crate) async fn remove_snapshot(&self, row: &SnapshotRow) -> Result<(), String> {
        let snapshot = self
            .snapshot_ref(row)
            .await
            .map_err(|e| e.message.clone())?;
        match self.driver().await.delete_snapshot(&snapshot).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.to_string()),
        }
        self.rt
            .db
            .snapshot_destroy(&row.id)
            .await
            .map_err(|e| e.to_string())?;
        if row.use_quota {
            let type_name = self
                .rt
                .db
                .volume_type_name(row.volume_type_id.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            self.rt
                .db
                .quota_release(
                    &row.project_id,
                    &with_type(
                        &[("snapshots", 1), ("gigabytes", row.volume_size)],
                        type_name.as_deref(),
                    ),
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        info!(snapshot_id = %row.id, host = %self.host, "snapshot deleted");
        self.settle_group_snapshot(row, true)
            .await
            .map_err(|e| e.message)
    }

    /// A member of a group snapshot was taken or deleted (or failed): the group snapshot
    /// may be done too.
    async fn settle_group_snapshot(
        &self,
        row: &SnapshotRow,
        deleting: bool,
    ) -> Result<(), RemoteError> {
        let Some(gs) = &row.group_snapshot_id else {
            return Ok(());
        };
        let db = &self.rt.db;
        if deleting {
            db.group_snapshot_settle_deleting(gs).await
        } else {
            db.group_snapshot_settle_creating(gs).await
        }
        .map_err(handler_error)
    }

    async fn fail_snapshot(
        &self,
        ctx: &RequestContext,
        row: &SnapshotRow,
        status: &str,
        action_id: &str,
        why: &str,
    ) -> Result<(), RemoteError> {
        warn!(snapshot_id = %row.id, status, reason = why, "snapshot operation failed");
        self.rt
            .db
            .snapshot_set_status(&row.id, status, None)
            .await
            .map_err(handler_error)?;
        self.rt
            .db
            .user_message_create(&NewMessage {
                project_id: &row.project_id,
                request_id: Some(&ctx.request_id),
                resource_type: Some("SNAPSHOT"),
                resource_uuid: Some(&row.id),
                action_id,
                detail_id: "001",
                detail: Some(why),
            })
            .await
            .map_err(handler_error)?;
        self.settle_group_snapshot(row, status == "error_deleting")
            .await
    }
}
