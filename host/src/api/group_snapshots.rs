//! Group snapshots (3.14+, Cinder's v3/group_snapshots.py): create (one snapshot of every
//! volume of an available group, recorded with the group snapshot in one transaction, quota
//! reserved per snapshot, each taken by the ordinary `create_snapshot` of the volume's
//! service), list (summary and detail), show, delete (every member snapshot deleted the
//! ordinary way; the group snapshot goes with the last), and `reset_status` (3.19, admin).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::catalog::{json_body, member, param, parse_bool, project, require_admin, Params};
use super::context::Ctx;
use super::microversion::require;
use super::{ApiError, AppState, Microversion};
use crate::db::group_snapshots::{GroupSnapshotRow, NewGroupSnapshot};
use crate::db::quotas::{with_type, Reservation};
use crate::db::snapshots::NewSnapshot;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/group_snapshots", get(list).post(create))
        .route("/group_snapshots/detail", get(detail))
        .route("/group_snapshots/{id}", get(show).delete(delete))
        .route("/group_snapshots/{id}/action", post(action))
}

/// Group snapshot statuses `reset_status` accepts (Cinder's `GroupSnapshotStatus`).
const STATUSES: &[&str] = &[
    "error",
    "available",
    "creating",
    "deleting",
    "error_deleting",
];

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(format!("Invalid input received: {}", msg.into()))
}

fn detail_view(gs: &GroupSnapshotRow, mv: Microversion) -> Value {
    let mut v = json!({
        "id": gs.id,
        "group_id": gs.group_id,
        "status": gs.status,
        "created_at": gs.created_at,
        "name": gs.name,
        "description": gs.description,
        "group_type_id": gs.group_type_id,
    });
    if mv.at_least(58) {
        v["project_id"] = json!(gs.project_id);
    }
    v
}

async fn visible(st: &AppState, ctx: &Ctx, id: &str) -> Result<GroupSnapshotRow, ApiError> {
    let not_found = || ApiError::NotFound(format!("GroupSnapshot {id} could not be found."));
    let gs = st
        .rt
        .db
        .group_snapshot_get(id)
        .await
        .map_err(|_| not_found())?;
    if gs.project_id != project(ctx) && !ctx.0.is_admin {
        return Err(not_found());
    }
    Ok(gs)
}

async fn page(
    st: &AppState,
    ctx: &Ctx,
    mv: Microversion,
    q: &HashMap<String, String>,
    detailed: bool,
) -> Result<Json<Value>, ApiError> {
    let all = ctx.0.is_admin
        && q.get("all_tenants")
            .is_some_and(|v| parse_bool(v) == Some(true));
    let rows = st
        .rt
        .db
        .group_snapshot_list(if all { None } else { Some(project(ctx)) })
        .await?;
    let views: Vec<Value> = rows
        .iter()
        .map(|gs| {
            if detailed {
                detail_view(gs, mv)
            } else {
                json!({ "id": gs.id, "name": gs.name })
            }
        })
        .collect();
    Ok(Json(json!({ "group_snapshots": views })))
}

pub async fn list(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    page(&st, &ctx, mv, &q, false).await
}

pub async fn detail(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    page(&st, &ctx, mv, &q, true).await
}

pub async fn show(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let gs = visible(&st, &ctx, param(&p, "id")?).await?;
    Ok(Json(json!({ "group_snapshot": detail_view(&gs, mv) })))
}

fn opt_text(body: &serde_json::Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 255 => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!(
            "'{key}' must be a string of at most 255 characters"
        ))),
    }
}

/// `POST /group_snapshots`.
pub async fn create(
    State(st): State<AppState>,
    ctx: Ctx,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = member(json_body(&body)?, "group_snapshot")?;
    let group_id = match body.get("group_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(bad("'group_id' is a required property")),
    };
    let name = opt_text(&body, "name")?;
    let description = opt_text(&body, "description")?;
    let not_found = || ApiError::NotFound(format!("Group {group_id} could not be found."));
    let group = st
        .rt
        .db
        .group_get(&group_id)
        .await
        .map_err(|_| not_found())?;
    if group.project_id != project(&ctx) && !ctx.0.is_admin {
        return Err(not_found());
    }
    if group.status != "available" {
        return Err(ApiError::BadRequest(format!(
            "Invalid group: Group {group_id} status must be available, but current status is: {}.",
            group.status
        )));
    }
    let volumes = st.rt.db.volumes_of_group(&group_id).await?;
    if let Some(v) = volumes
        .iter()
        .find(|v| !["available", "in-use"].contains(&v.status.as_str()))
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Volume {} in group {group_id} is {}; it must be available or in-use.",
            v.id, v.status
        )));
    }
    let gs = NewGroupSnapshot {
        id: uuid::Uuid::new_v4().to_string(),
        group_id: group_id.clone(),
        project_id: group.project_id.clone(),
        user_id: ctx.0.user_id.clone().unwrap_or_default(),
        name: name.clone(),
        description,
        group_type_id: group.group_type_id.clone(),
    };
    let members: Vec<NewSnapshot> = volumes
        .iter()
        .map(|v| NewSnapshot {
            id: uuid::Uuid::new_v4().to_string(),
            volume_id: v.id.clone(),
            project_id: v.project_id.clone(),
            user_id: gs.user_id.clone(),
            display_name: name.clone(),
            display_description: Some(format!("Snapshot of group snapshot {}", gs.id)),
            volume_size: v.size,
            volume_type_id: v.volume_type_id.clone(),
            metadata: Default::default(),
        })
        .collect();
    // Cinder reserves per snapshot; one reservation for the lot is the same sum, atomically
    // (each snapshot also counted against its volume's type).
    let charge: Vec<(String, i64)> = volumes
        .iter()
        .flat_map(|v| {
            with_type(
                &[("snapshots", 1), ("gigabytes", v.size)],
                v.volume_type_name.as_deref(),
            )
        })
        .collect();
    let reservation: Option<Reservation> = if members.is_empty() {
        None
    } else {
        Some(st.rt.db.quota_reserve(&group.project_id, &charge).await?)
    };
    let row = match st.rt.db.group_snapshot_create(&gs, &members).await {
        Ok(row) => row,
        Err(e) => {
            if let Some(r) = &reservation {
                let _ = st.rt.db.quota_rollback(r).await;
            }
            return Err(e.into());
        }
    };
    if let Some(r) = &reservation {
        st.rt.db.quota_commit(r).await?;
    }
    for (s, v) in members.iter().zip(&volumes) {
        let host = v.host.as_deref().unwrap_or_default();
        let backend = host.split_once('#').map_or(host, |(b, _)| b);
        if let Err(e) = st.volume.create_snapshot(&ctx.0, backend, &s.id).await {
            let _ = st.rt.db.snapshot_set_status(&s.id, "error", None).await;
            let _ = st.rt.db.group_snapshot_settle_creating(&row.id).await;
            return Err(ApiError::Unavailable(format!(
                "the volume service {backend} could not be reached ({e}); group snapshot {} is in error",
                row.id
            )));
        }
    }
    // An empty group: nothing to wait for.
    st.rt.db.group_snapshot_settle_creating(&row.id).await?;
    tracing::info!(group_snapshot_id = %row.id, %group_id, snapshots = members.len(), "group snapshot accepted");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "group_snapshot": {
            "id": row.id, "name": row.name, "group_type_id": row.group_type_id,
        }})),
    ))
}

/// `DELETE /group_snapshots/{id}`.
pub async fn delete(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<StatusCode, ApiError> {
    let gs = visible(&st, &ctx, param(&p, "id")?).await?;
    if st.rt.db.groups_from_group_snapshot(&gs.id).await? > 0 {
        return Err(ApiError::BadRequest(format!(
            "Invalid group snapshot: Group snapshot {} is being used to create a group.",
            gs.id
        )));
    }
    let from = ["available", "error", "error_deleting"];
    if !st
        .rt
        .db
        .group_snapshot_transition(&gs.id, &from, "deleting")
        .await?
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid group snapshot: Group snapshot status must be available or error, but current status is: {}.",
            gs.status
        )));
    }
    let snapshots = st.rt.db.snapshots_of_group_snapshot(&gs.id).await?;
    for s in &snapshots {
        if s.status == "deleting" {
            continue;
        }
        let moved = st
            .rt
            .db
            .snapshot_transition(&s.id, &[s.status.as_str()], "deleting")
            .await?;
        if !moved {
            continue;
        }
        let v = st.rt.db.volume_get(&s.volume_id).await?;
        let host = v.host.as_deref().unwrap_or_default();
        let backend = host.split_once('#').map_or(host, |(b, _)| b);
        st.volume.delete_snapshot(&ctx.0, backend, &s.id).await?;
    }
    // No snapshots: nothing to wait for.
    st.rt.db.group_snapshot_settle_deleting(&gs.id).await?;
    tracing::info!(group_snapshot_id = %gs.id, snapshots = snapshots.len(), "group snapshot delete accepted");
    Ok(StatusCode::ACCEPTED)
}

/// `POST /group_snapshots/{id}/action` with `reset_status` (3.19).
pub async fn action(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let gs = visible(&st, &ctx, param(&p, "id")?).await?;
    let body = json_body(&body)?;
    let Some(args) = body.get("reset_status") else {
        return Err(bad("There is no such action: Kiln serves reset_status"));
    };
    require(mv, 19)?;
    require_admin(&ctx)?;
    let status = args
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("reset_status needs 'status'"))?;
    if !STATUSES.contains(&status) {
        return Err(bad(format!(
            "Group snapshot status {status} is invalid; it must be one of {STATUSES:?}."
        )));
    }
    st.rt
        .db
        .group_snapshot_transition(&gs.id, &[], status)
        .await?;
    tracing::info!(group_snapshot_id = %gs.id, status, "group snapshot status reset");
    Ok(StatusCode::ACCEPTED)
}
