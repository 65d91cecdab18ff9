//! `GET /limits`: the caller's absolute limits from its quotas, with the used counts of the
//! `os-used-limits` extension (Cinder's v3/limits.py, views/limits.py, contrib/used_limits.py).
//! Rate limits are not implemented by Cinder either: `rate` is always empty. An admin may
//! ask for another project with `?project_id=` (3.39).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::catalog::project;
use super::context::Ctx;
use super::error::ApiError;
use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/limits", get(show))
}

/// (quota resource, absolute limit name, used name).
const NAMES: [(&str, &str, &str); 5] = [
    ("volumes", "maxTotalVolumes", "totalVolumesUsed"),
    ("snapshots", "maxTotalSnapshots", "totalSnapshotsUsed"),
    ("gigabytes", "maxTotalVolumeGigabytes", "totalGigabytesUsed"),
    ("backups", "maxTotalBackups", "totalBackupsUsed"),
    (
        "backup_gigabytes",
        "maxTotalBackupGigabytes",
        "totalBackupGigabytesUsed",
    ),
];

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let target = match q.get("project_id") {
        Some(p) if ctx.0.is_admin => p.as_str(),
        _ => project(&ctx),
    };
    let usage = state.rt.db.quota_get_with_usage(target).await?;
    let mut absolute = serde_json::Map::new();
    for (resource, max, used) in NAMES {
        if let Some(u) = usage.get(resource) {
            absolute.insert(max.into(), json!(u.limit));
            absolute.insert(used.into(), json!(u.in_use));
        }
    }
    Ok(Json(
        json!({ "limits": { "rate": [], "absolute": absolute } }),
    ))
}
