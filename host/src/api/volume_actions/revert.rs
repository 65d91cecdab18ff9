//! `revert` (microversion 3.40): `{"revert": {"snapshot_id": ID}}` puts an available volume
//! back to its latest snapshot, as Cinder's volumes controller and `revert_to_snapshot`: only
//! the latest snapshot, only at the volume's size, both available. The volume goes to
//! `reverting` and the snapshot to `restoring` before the volume service is asked; it sets
//! both back to `available` (or the volume to `error` with a message).

use axum::response::Response;
use serde_json::Value;

use super::{accepted, bad};
use crate::api::microversion::{require, Microversion};
use crate::api::{ApiError, AppState};
use crate::db::volumes::VolumeRow;
use crate::rpc::RequestContext;
use crate::volume::RevertArgs;

pub async fn revert(
    st: &AppState,
    ctx: &RequestContext,
    mv: Microversion,
    row: &VolumeRow,
    args: &Value,
) -> Result<Response, ApiError> {
    require(mv, 40)?;
    let wanted = args.get("snapshot_id").and_then(Value::as_str);
    let snapshots = st.rt.db.snapshots_of_volume(&row.id).await?;
    let Some(latest) = snapshots.last() else {
        return Err(bad(format!(
            "Volume {} doesn't have any snapshots.",
            row.id
        )));
    };
    if wanted != Some(latest.id.as_str()) {
        return Err(bad(format!(
            "Specified snapshot {} is None or not the latest one of volume {}.",
            wanted.unwrap_or("None"),
            row.id
        )));
    }
    if row.size != latest.volume_size {
        return Err(bad(format!(
            "Can't revert volume {} to its latest snapshot {}. The volume size must be equal \
             to the snapshot size.",
            row.id, latest.id
        )));
    }
    let Some(host) = row.host.as_deref() else {
        return Err(ApiError::Conflict(format!(
            "Invalid volume: volume {} is not placed on any backend.",
            row.id
        )));
    };
    let db = &st.rt.db;
    if !db
        .volume_transition(&row.id, &["available"], "reverting")
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "Invalid volume: Can't revert volume {} to its latest snapshot. Volume's status \
             must be 'available'.",
            row.id
        )));
    }
    if !db
        .snapshot_transition(&latest.id, &["available"], "restoring")
        .await?
    {
        db.volume_transition(&row.id, &["reverting"], "available")
            .await?;
        return Err(ApiError::Conflict(format!(
            "Invalid snapshot: Can't revert volume {} to its latest snapshot. Snapshot's status \
             must be 'available'.",
            latest.id
        )));
    }
    let backend = host.split_once('#').map_or(host, |(b, _)| b);
    let args = RevertArgs {
        volume_id: row.id.clone(),
        snapshot_id: latest.id.clone(),
    };
    if let Err(e) = st.volume.revert_to_snapshot(ctx, backend, args).await {
        let _ = db
            .snapshot_transition(&latest.id, &["restoring"], "available")
            .await;
        let _ = db
            .volume_transition(&row.id, &["reverting"], "available")
            .await;
        return Err(e.into());
    }
    tracing::info!(volume_id = %row.id, snapshot_id = %latest.id, "revert to snapshot requested");
    Ok(accepted())
}
