//! `/snapshots`: create (of an available volume, or an in-use one with `force`), list (summary
//! and detail, with paging, sorting and name / status / volume_id filters), show, update,
//! delete, and the actions `os-reset_status`, `os-update_snapshot_status` and
//! `os-force_delete`. The snapshot is taken and deleted by the volume service holding its
//! volume; quota (`snapshots`, `gigabytes`) is reserved here and released when it goes.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::catalog::{
    base_url, json_body, json_bool, member, param, project, require_admin, string_map, Params,
};
use super::context::Ctx;
use super::listing;
use super::{ApiError, AppState, Microversion};
use crate::db::quotas::with_type;
use crate::db::snapshots::{NewSnapshot, SnapshotRow};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/snapshots", get(list).post(create))
        .route("/snapshots/detail", get(detail))
        .route("/snapshots/{id}", get(show).put(update).delete(delete))
        .route("/snapshots/{id}/action", post(action))
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(format!("Invalid input received: {}", msg.into()))
}

/// Snapshot statuses (`os-reset_status`).
const STATUSES: &[&str] = &[
    "creating",
    "available",
    "deleting",
    "error",
    "error_deleting",
    "unmanaging",
    "backing-up",
    "restoring",
];

/// Cinder's snapshot view at the request's microversion; `show` and `detail` add the extended
/// attributes (progress, project id), as Cinder's extension does — create, update and the
/// summary list do not.
fn view(s: &SnapshotRow, mv: Microversion, extended: bool) -> Value {
    let mut v = json!({
        "id": s.id,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "name": s.display_name,
        "description": s.display_description,
        "volume_id": s.volume_id,
        "status": s.status,
        "size": s.volume_size,
        "metadata": s.metadata,
    });
    if extended {
        v["os-extended-snapshot-attributes:progress"] = json!(s.progress);
        v["os-extended-snapshot-attributes:project_id"] = json!(s.project_id);
    }
    if mv.at_least(14) {
        v["group_snapshot_id"] = json!(s.group_snapshot_id);
    }
    if mv.at_least(41) {
        v["user_id"] = json!(s.user_id);
    }
    if mv.at_least(65) {
        v["consumes_quota"] = json!(s.use_quota);
    }
    v
}

/// A snapshot the caller may see (its project's, or any for an admin).
async fn visible(st: &AppState, ctx: &Ctx, id: &str) -> Result<SnapshotRow, ApiError> {
    let not_found = || ApiError::NotFound(format!("Snapshot {id} could not be found."));
    let s = st.rt.db.snapshot_get(id).await.map_err(|_| not_found())?;
    if s.project_id != project(ctx) && !ctx.0.is_admin {
        return Err(not_found());
    }
    Ok(s)
}

/// `host@backend` holding the snapshot's volume.
async fn backend_of(st: &AppState, volume_id: &str) -> Result<String, ApiError> {
    let v = st.rt.db.volume_get(volume_id).await?;
    let host = v.host.ok_or_else(|| {
        ApiError::BadRequest(format!(
            "Invalid volume: volume {volume_id} is not on any backend."
        ))
    })?;
    Ok(host
        .split_once('#')
        .map_or(host.as_str(), |(b, _)| b)
        .to_string())
}

fn text(body: &Map<String, Value>, keys: [&str; 2]) -> Result<Option<String>, ApiError> {
    for k in keys {
        match body.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.chars().count() <= 255 => return Ok(Some(s.clone())),
            Some(_) => {
                return Err(bad(format!(
                    "'{k}' must be a string of at most 255 characters"
                )))
            }
        }
    }
    Ok(None)
}

/// `POST /snapshots`.
async fn create(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = member(json_body(&body)?, "snapshot")?;
    let volume_id = body
        .get("volume_id")
        .and_then(Value::as_str)
        // Cinder looks the missing volume up and does not find it.
        .ok_or_else(|| ApiError::NotFound("Volume None could not be found.".into()))?;
    let force = match body.get("force") {
        None | Some(Value::Null) => false,
        Some(v) => json_bool(v, "force")?,
    };
    let name = text(&body, ["name", "display_name"])?;
    let description = text(&body, ["description", "display_description"])?;
    let metadata = match body.get("metadata") {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(m)) => string_map(m)?,
        Some(_) => return Err(bad("'metadata' must be an object")),
    };
    let not_found = || ApiError::NotFound(format!("Volume {volume_id} could not be found."));
    let volume = st
        .rt
        .db
        .volume_get(volume_id)
        .await
        .map_err(|_| not_found())?;
    if volume.project_id != project(&ctx) && !ctx.0.is_admin {
        return Err(not_found());
    }
    let ok = volume.status == "available" || (force && volume.status == "in-use");
    if !ok {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Volume {volume_id} status must be available{}, but current status is: {}.",
            if force { " or in-use" } else { "" },
            volume.status
        )));
    }
    if crate::db::volumes::migration_active(volume.migration_status.as_deref()) {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Volume {volume_id} is taking part in a migration; a snapshot would \
             not move with it. Try again when the migration has ended."
        )));
    }
    let backend = backend_of(&st, volume_id).await?;
    let reservation = st
        .rt
        .db
        .quota_reserve(
            &volume.project_id,
            &with_type(
                &[("snapshots", 1), ("gigabytes", volume.size)],
                volume.volume_type_name.as_deref(),
            ),
        )
        .await?;
    let new = NewSnapshot {
        id: uuid::Uuid::new_v4().to_string(),
        volume_id: volume_id.to_string(),
        project_id: volume.project_id.clone(),
        user_id: ctx.0.user_id.clone().unwrap_or_default(),
        display_name: name,
        display_description: description,
        volume_size: volume.size,
        volume_type_id: volume.volume_type_id.clone(),
        metadata,
    };
    let row = match st.rt.db.snapshot_create(&new).await {
        Ok(row) => row,
        Err(e) => {
            let _ = st.rt.db.quota_rollback(&reservation).await;
            return Err(e.into());
        }
    };
    st.rt.db.quota_commit(&reservation).await?;
    if let Err(e) = st.volume.create_snapshot(&ctx.0, &backend, &row.id).await {
        let _ = st.rt.db.snapshot_set_status(&row.id, "error", None).await;
        return Err(ApiError::Unavailable(format!(
            "the volume service {backend} could not be reached ({e}); snapshot {} is in error",
            row.id
        )));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "snapshot": view(&row, mv, false) })),
    ))
}

/// Equality filters of the snapshot listing: `(parameter, column, boolean?)` (also documented
/// from here by `openapi`).
pub(in crate::api) const FILTERS: &[(&str, &str, bool)] = &[
    ("name", "display_name", false),
    ("display_name", "display_name", false),
    ("status", "status", false),
    ("volume_id", "volume_id", false),
];

async fn page(
    st: &AppState,
    ctx: &Ctx,
    mv: Microversion,
    headers: &HeaderMap,
    p: &listing::Params,
    path: &str,
) -> Result<Json<Value>, ApiError> {
    let project = project(ctx).to_string();
    let q = listing::query(&ctx.0, &project, p, FILTERS)?;
    let rows = st.rt.db.snapshot_list(&q).await?;
    let mut body = json!({ "snapshots": rows.iter().map(|s| view(s, mv, path.ends_with("detail"))).collect::<Vec<_>>() });
    let href = format!("{}/v3/{project}/{path}", base_url(headers));
    let last = rows.last().map(|s| s.id.as_str());
    if let Some(next) = listing::next_link(p, rows.len(), last, &href) {
        body["snapshots_links"] = next;
    }
    Ok(Json(body))
}

async fn list(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    headers: HeaderMap,
    Query(p): Query<listing::Params>,
) -> Result<Json<Value>, ApiError> {
    page(&st, &ctx, mv, &headers, &p, "snapshots").await
}

async fn detail(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    headers: HeaderMap,
    Query(p): Query<listing::Params>,
) -> Result<Json<Value>, ApiError> {
    page(&st, &ctx, mv, &headers, &p, "snapshots/detail").await
}

async fn show(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let s = visible(&st, &ctx, param(&p, "id")?).await?;
    Ok(Json(json!({ "snapshot": view(&s, mv, true) })))
}

/// `PUT /snapshots/{id}`: name and description.
async fn update(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let s = visible(&st, &ctx, param(&p, "id")?).await?;
    let body = member(json_body(&body)?, "snapshot")?;
    let name = text(&body, ["name", "display_name"])?;
    let description = text(&body, ["description", "display_description"])?;
    if name.is_none() && description.is_none() {
        return Err(bad("nothing to update: give a name or a description"));
    }
    st.rt
        .db
        .snapshot_update(&s.id, name.as_deref(), description.as_deref())
        .await?;
    let s = st.rt.db.snapshot_get(&s.id).await?;
    Ok(Json(json!({ "snapshot": view(&s, mv, false) })))
}

/// Move the snapshot to `deleting` (from one of `from`) and have its volume service delete it.
async fn start_delete(
    st: &AppState,
    ctx: &Ctx,
    s: &SnapshotRow,
    from: &[&str],
) -> Result<StatusCode, ApiError> {
    let backend = backend_of(st, &s.volume_id).await?;
    if !st
        .rt
        .db
        .snapshot_transition(&s.id, from, "deleting")
        .await?
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid snapshot: Snapshot status must be {} to delete, but current status is: {}.",
            from.join(" or "),
            s.status
        )));
    }
    st.volume.delete_snapshot(&ctx.0, &backend, &s.id).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn delete(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<StatusCode, ApiError> {
    let s = visible(&st, &ctx, param(&p, "id")?).await?;
    if let Some(gs) = &s.group_snapshot_id {
        return Err(ApiError::BadRequest(format!(
            "Invalid snapshot: Snapshot {} is part of group snapshot {gs}; delete the group \
             snapshot instead.",
            s.id
        )));
    }
    start_delete(&st, &ctx, &s, &["available", "error"]).await
}

/// `POST /snapshots/{id}/action`.
async fn action(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let s = visible(&st, &ctx, param(&p, "id")?).await?;
    let body = json_body(&body)?;
    let Some((name, args)) = body.iter().next() else {
        return Err(bad("the body must name one action"));
    };
    let status = args.get("status").and_then(Value::as_str);
    match name.as_str() {
        "os-reset_status" => {
            require_admin(&ctx)?;
            let status = status.ok_or_else(|| bad("os-reset_status needs 'status'"))?;
            if !STATUSES.contains(&status) {
                return Err(bad(format!("'{status}' is not a snapshot status")));
            }
            st.rt.db.snapshot_set_status(&s.id, status, None).await?;
            Ok(StatusCode::ACCEPTED)
        }
        "os-update_snapshot_status" => {
            // Used by a driver that finishes snapshots out of band (Nova for file-based
            // backends): only forward moves from creating / deleting.
            let status = status.ok_or_else(|| bad("os-update_snapshot_status needs 'status'"))?;
            let allowed: &[&str] = match s.status.as_str() {
                "creating" => &["creating", "available", "error"],
                "deleting" => &["deleting", "error_deleting"],
                _ => &[],
            };
            if !allowed.contains(&status) {
                return Err(bad(format!(
                    "snapshot {} is {}; it cannot be moved to {status}",
                    s.id, s.status
                )));
            }
            let progress = args.get("progress").and_then(Value::as_str);
            st.rt
                .db
                .snapshot_set_status(&s.id, status, progress)
                .await?;
            Ok(StatusCode::ACCEPTED)
        }
        "os-force_delete" => {
            require_admin(&ctx)?;
            start_delete(&st, &ctx, &s, STATUSES).await
        }
        other => Err(bad(format!(
            "snapshot action {other} is not supported by Kiln"
        ))),
    }
}
