//! Admin and flag actions on a volume: `os-reset_status` and `os-force_delete` (admin only),
//! `os-set_bootable` and `os-update_readonly_flag`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{accepted, bad};
use crate::api::catalog::json_bool;
use crate::api::{ApiError, AppState};
use crate::db::volumes::{VolumeRow, ADMIN_METADATA};
use crate::rpc::RequestContext;

/// Statuses `os-reset_status` may set (Cinder's volume statuses).
const STATUSES: &[&str] = &[
    "creating",
    "available",
    "deleting",
    "error",
    "error_deleting",
    "error_managing",
    "managing",
    "attaching",
    "in-use",
    "detaching",
    "maintenance",
    "restoring-backup",
    "error_restoring",
    "reserved",
    "awaiting-transfer",
    "backing-up",
    "error_backing-up",
    "error_extending",
    "downloading",
    "uploading",
    "retyping",
    "extending",
];

/// Migration statuses `os-reset_status` may set (Cinder's `valid_migration_status`).
const MIGRATION_STATUSES: &[&str] = &[
    "migrating",
    "error",
    "success",
    "completing",
    "none",
    "starting",
];

fn require_admin(ctx: &RequestContext) -> Result<(), ApiError> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Policy doesn't allow this operation to be performed.".into(),
        ))
    }
}

/// `os-reset_status`: `{"status": ..., "attach_status"?: ..., "migration_status"?: ...}`.
/// `attach_status: detached` also ends the volume's attachments (Cinder's
/// `_clean_volume_attachment`); the status stays what the admin set.
pub async fn reset_status(
    st: &AppState,
    ctx: &RequestContext,
    row: &VolumeRow,
    args: &Value,
) -> Result<Response, ApiError> {
    require_admin(ctx)?;
    let status = args.get("status").and_then(Value::as_str);
    let attach_status = args.get("attach_status").and_then(Value::as_str);
    let migration_status = args.get("migration_status").and_then(Value::as_str);
    if status.is_none() && attach_status.is_none() && migration_status.is_none() {
        return Err(bad(
            "Must specify 'status', 'attach_status' or 'migration_status' for update.",
        ));
    }
    if let Some(m) = migration_status {
        let m = m.to_ascii_lowercase();
        if !MIGRATION_STATUSES.contains(&m.as_str()) {
            return Err(bad("Must specify a valid migration status"));
        }
        let value = (m != "none").then_some(m.as_str());
        st.rt.db.volume_set_migration_status(&row.id, value).await?;
        tracing::info!(volume_id = %row.id, migration_status = ?value, "migration status reset by an admin");
        if status.is_none() && attach_status.is_none() {
            return Ok(accepted());
        }
    }
    if let Some(s) = status {
        if !STATUSES.contains(&s) {
            return Err(bad(format!("'{s}' is not a volume status")));
        }
    }
    if let Some(a) = attach_status {
        if !["attached", "detached"].contains(&a) {
            return Err(bad(format!(
                "attach_status must be 'attached' or 'detached', got '{a}'"
            )));
        }
    }
    st.rt
        .db
        .volume_set_attach_state(
            &row.id,
            status.unwrap_or(&row.status),
            attach_status.unwrap_or(&row.attach_status),
        )
        .await?;
    // As Cinder's: an admin who says the volume is detached ends its attachments.
    if attach_status == Some("detached") {
        for a in st
            .rt
            .db
            .attachments_of(std::slice::from_ref(&row.id))
            .await?
        {
            st.rt.db.attachment_destroy(&a.id).await?;
            tracing::info!(volume_id = %row.id, attachment_id = %a.id, "attachment ended by an admin's reset to detached");
        }
    }
    tracing::info!(volume_id = %row.id, from = %row.status, to = ?status, "volume status reset by an admin");
    Ok(accepted())
}

/// `os-force_delete`: delete whatever the status (not while attached or with snapshots).
pub async fn force_delete(
    st: &AppState,
    ctx: &RequestContext,
    row: &VolumeRow,
) -> Result<Response, ApiError> {
    require_admin(ctx)?;
    if row.attach_status == "attached" {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: volume {} is attached; detach it first.",
            row.id
        )));
    }
    let snapshots = st.rt.db.snapshots_of_volume(&row.id).await?;
    if !snapshots.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Volume {} still has {} dependent snapshots.",
            row.id,
            snapshots.len()
        )));
    }
    crate::api::volumes::delete_row(st, ctx, row, false).await?;
    Ok(accepted())
}

/// `os-set_bootable`: `{"bootable": true}`.
pub async fn set_bootable(
    st: &AppState,
    row: &VolumeRow,
    args: &Value,
) -> Result<Response, ApiError> {
    let v = args
        .get("bootable")
        .ok_or_else(|| bad("os-set_bootable needs 'bootable'"))?;
    let bootable = json_bool(v, "bootable")?;
    st.rt.db.volume_set_bootable(&row.id, bootable).await?;
    Ok(StatusCode::OK.into_response())
}

/// `os-update_readonly_flag`: `{"readonly": true}` (admin metadata `readonly`).
pub async fn update_readonly(
    st: &AppState,
    row: &VolumeRow,
    args: &Value,
) -> Result<Response, ApiError> {
    let v = args
        .get("readonly")
        .ok_or_else(|| bad("os-update_readonly_flag needs 'readonly'"))?;
    let readonly = json_bool(v, "readonly")?;
    if !["available", "in-use"].contains(&row.status.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Volume status must be available or in-use to update the read-only flag (volume {} is {}).",
            row.id, row.status
        )));
    }
    let value = if readonly { "True" } else { "False" };
    st.rt
        .db
        .metadata_set(
            &ADMIN_METADATA,
            &row.id,
            &[("readonly".to_string(), value.to_string())].into(),
            false,
        )
        .await?;
    Ok(accepted())
}
