//! The legacy (pre-3.27) attach actions on a volume, as Nova and os-brick drive them:
//! `os-reserve` → `os-initialize_connection` → `os-attach`, and `os-begin_detaching` →
//! `os-terminate_connection` → `os-detach`, with `os-unreserve` / `os-roll_detaching` to
//! back out. The records and state changes are the attachments API's (`lifecycle`).

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{accepted, bad};
use crate::api::attachments::lifecycle;
use crate::api::{ApiError, AppState};
use crate::db::volumes::VolumeRow;
use crate::rpc::RequestContext;

async fn transition(
    st: &AppState,
    row: &VolumeRow,
    from: &[&str],
    to: &str,
) -> Result<Response, ApiError> {
    if !st.rt.db.volume_transition(&row.id, from, to).await? {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: volume {} is {}; it must be {} for this action.",
            row.id,
            row.status,
            from.join(" or ")
        )));
    }
    Ok(accepted())
}

/// `os-reserve`: available (or an attached multiattach volume) → attaching.
pub async fn reserve(st: &AppState, row: &VolumeRow) -> Result<Response, ApiError> {
    lifecycle::check_attachable(st, row).await?;
    transition(st, row, &["available", "in-use", "reserved"], "attaching").await
}

/// `os-unreserve`: attaching → back to what its attachments say.
pub async fn unreserve(st: &AppState, row: &VolumeRow) -> Result<Response, ApiError> {
    if row.status != "attaching" {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: volume {} is {}; only an attaching volume can be unreserved.",
            row.id, row.status
        )));
    }
    let live = st
        .rt
        .db
        .attachments_of(std::slice::from_ref(&row.id))
        .await?;
    lifecycle::settle(st, &row.id, &live).await?;
    Ok(accepted())
}

/// `os-begin_detaching`: in-use → detaching.
pub async fn begin_detaching(st: &AppState, row: &VolumeRow) -> Result<Response, ApiError> {
    transition(st, row, &["in-use"], "detaching").await
}

/// `os-roll_detaching`: detaching → in-use.
pub async fn roll_detaching(st: &AppState, row: &VolumeRow) -> Result<Response, ApiError> {
    transition(st, row, &["detaching"], "in-use").await
}

/// `os-attach`: `{"instance_uuid" | "host_name", "mountpoint", "mode"?}` — record the attachment.
pub async fn attach(st: &AppState, row: &VolumeRow, args: &Value) -> Result<Response, ApiError> {
    let s = |k: &str| args.get(k).and_then(Value::as_str).map(str::to_string);
    let (instance, host) = (s("instance_uuid"), s("host_name"));
    if instance.is_none() && host.is_none() {
        return Err(bad("os-attach needs 'instance_uuid' or 'host_name'"));
    }
    let mountpoint = s("mountpoint").ok_or_else(|| bad("os-attach needs 'mountpoint'"))?;
    let mode = match s("mode").as_deref() {
        None => lifecycle::access_mode(st, &row.id).await?,
        Some(m @ ("rw" | "ro")) => m.to_string(),
        Some(other) => return Err(bad(format!("mode must be 'rw' or 'ro', got '{other}'"))),
    };
    let attachable = ["attaching", "available", "reserved"].contains(&row.status.as_str())
        || (row.status == "in-use" && row.multiattach);
    if !attachable {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: volume {} is {}; reserve it before attaching.",
            row.id, row.status
        )));
    }
    let a = lifecycle::new_attachment(
        st,
        row,
        instance,
        host,
        Some(mountpoint),
        &mode,
        "attaching",
    )
    .await?;
    lifecycle::complete(st, &a).await?;
    Ok(accepted())
}

/// `os-detach`: `{"attachment_id"?}` — end that attachment (the only one when not given).
pub async fn detach(
    st: &AppState,
    ctx: &RequestContext,
    row: &VolumeRow,
    args: &Value,
) -> Result<Response, ApiError> {
    let live = st
        .rt
        .db
        .attachments_of(std::slice::from_ref(&row.id))
        .await?;
    let wanted = args.get("attachment_id").and_then(Value::as_str);
    let a = match wanted {
        Some(id) => live.iter().find(|a| a.id == id),
        None if live.len() == 1 => live.first(),
        None => None,
    }
    .ok_or_else(|| {
        ApiError::BadRequest(format!(
            "Invalid volume: volume {} has {} attachment(s); name the one to detach with attachment_id.",
            row.id,
            live.len()
        ))
    })?;
    lifecycle::detach(st, ctx, row, a).await?;
    Ok(accepted())
}

/// `os-initialize_connection`: `{"connector": {...}}` → `{"connection_info": {...}}`.
pub async fn initialize_connection(
    st: &AppState,
    ctx: &RequestContext,
    row: &VolumeRow,
    args: &Value,
) -> Result<Response, ApiError> {
    let c = lifecycle::connector(args.get("connector").unwrap_or(&Value::Null))?;
    if !["available", "attaching", "in-use", "reserved", "detaching"].contains(&row.status.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: volume {} is {}; it cannot be connected.",
            row.id, row.status
        )));
    }
    let mode = lifecycle::access_mode(st, &row.id).await?;
    let info = lifecycle::connect(st, ctx, row, c, &mode).await?;
    Ok(Json(json!({ "connection_info": info })).into_response())
}

/// `os-terminate_connection`: `{"connector": {...}}` — the host stops using the volume.
pub async fn terminate_connection(
    st: &AppState,
    ctx: &RequestContext,
    row: &VolumeRow,
    args: &Value,
) -> Result<Response, ApiError> {
    let c = lifecycle::connector(args.get("connector").unwrap_or(&Value::Null))?;
    let args = crate::volume::DisconnectArgs {
        volume_id: row.id.clone(),
        connector: Some(c),
        remove_export: false,
    };
    st.volume
        .terminate_connection(ctx, lifecycle::backend_of(row)?, &args)
        .await
        .map_err(|e| ApiError::Internal(format!("the backend could not disconnect: {e}")))?;
    Ok(accepted())
}
