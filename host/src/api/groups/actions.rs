//! Group actions: `POST /groups/{id}/action` with `delete` (`delete-volumes`) or
//! `reset_status` (3.20, admin), and `POST /groups/action` with `create-from-src` (3.14): a
//! new group on the source's backend with one volume per snapshot of a group snapshot, or a
//! clone of every volume of a source group. The new group is `creating` until the volume
//! service has made every volume (`Db::group_settle_creating`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::{bad, opt_text, record_group, summary_view, visible};
use crate::api::catalog::{json_body, json_bool, param, project, require_admin, Params};
use crate::api::context::Ctx;
use crate::api::microversion::require;
use crate::api::{ApiError, AppState, Microversion};
use crate::db::groups::{GroupRow, NewGroup};
use crate::db::quotas::with_type;
use crate::db::volumes::NewVolume;
use crate::scheduler::placement::{CreateArgs, RequestSpec, TypeSpec};

/// Group statuses `reset_status` accepts (Cinder's `GroupStatus`, less `deleted`).
const STATUSES: &[&str] = &[
    "available",
    "error",
    "creating",
    "deleting",
    "updating",
    "in-use",
    "error_deleting",
];

/// Volume statuses a group delete with `delete-volumes` accepts.
const VOLUME_DELETABLE: &[&str] = &[
    "available",
    "error",
    "error_restoring",
    "error_extending",
    "error_managing",
    "error_deleting",
];

/// `POST /groups/{id}/action`.
pub async fn action(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let g = visible(&st, &ctx, param(&p, "id")?).await?;
    let body = json_body(&body)?;
    let Some((name, args)) = body.iter().next() else {
        return Err(bad("the body must name one action"));
    };
    match name.as_str() {
        "delete" => {
            let delete_volumes = match args.get("delete-volumes") {
                None | Some(Value::Null) => false,
                Some(v) => json_bool(v, "delete-volumes")?,
            };
            delete(&st, &ctx, &g, delete_volumes).await
        }
        "reset_status" => {
            require(mv, 20)?;
            require_admin(&ctx)?;
            let status = args
                .get("status")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("reset_status needs 'status'"))?;
            if !STATUSES.contains(&status) {
                return Err(bad(format!(
                    "Group status {status} is invalid; it must be one of {STATUSES:?}."
                )));
            }
            st.rt.db.group_transition(&g.id, &[], status).await?;
            tracing::info!(group_id = %g.id, status, "group status reset");
            Ok(StatusCode::ACCEPTED)
        }
        other => Err(bad(format!(
            "There is no such action: {other} (Kiln serves delete and reset_status)"
        ))),
    }
}

/// Cinder's group delete: refused while group snapshots exist, and while volumes are in the
/// group unless `delete_volumes`; then every volume goes the ordinary delete way and the
/// group is destroyed with its last volume.
async fn delete(
    st: &AppState,
    ctx: &Ctx,
    g: &GroupRow,
    delete_volumes: bool,
) -> Result<StatusCode, ApiError> {
    let invalid = |m: String| ApiError::BadRequest(format!("Invalid group: {m}"));
    if g.status == "deleting" {
        return Err(invalid(format!("Group {} is already being deleted.", g.id)));
    }
    if g.host.is_some() && !["available", "error", "error_deleting"].contains(&g.status.as_str()) {
        return Err(invalid(format!(
            "Group status must be available or error, but current status is: {}",
            g.status
        )));
    }
    if st.rt.db.group_snapshot_count(&g.id).await? > 0 {
        return Err(invalid(format!(
            "Group {} still has dependent group snapshots.",
            g.id
        )));
    }
    let volumes = st.rt.db.volumes_of_group(&g.id).await?;
    if !volumes.is_empty() && !delete_volumes {
        return Err(invalid(format!(
            "Group {} still contains volumes. The delete-volumes flag is required to delete it.",
            g.id
        )));
    }
    for v in &volumes {
        if v.attach_status == "attached" || v.status == "in-use" {
            return Err(invalid(format!(
                "Volume {} in group {} is attached. Need to detach first.",
                v.id, g.id
            )));
        }
        if !VOLUME_DELETABLE.contains(&v.status.as_str()) {
            return Err(invalid(format!(
                "Volume {} in group {} is {}; it cannot be deleted.",
                v.id, g.id, v.status
            )));
        }
        let snaps = st.rt.db.snapshots_of_volume(&v.id).await?;
        if snaps.iter().any(|s| s.group_snapshot_id.is_none()) {
            return Err(invalid(format!(
                "Volume {} in group {} still has dependent snapshots.",
                v.id, g.id
            )));
        }
    }
    if !st
        .rt
        .db
        .group_transition(&g.id, &[g.status.as_str()], "deleting")
        .await?
    {
        return Err(invalid(format!(
            "Group {} changed status while being deleted; try again.",
            g.id
        )));
    }
    for v in &volumes {
        // A volume already `deleting` from an earlier attempt is left to that attempt.
        if v.status != "deleting" {
            crate::api::volumes::delete_row(st, &ctx.0, v, false).await?;
        }
    }
    // Unplaced volumes went at once; an empty group goes now.
    st.rt.db.group_settle_deleting(&g.id).await?;
    tracing::info!(group_id = %g.id, volumes = volumes.len(), "group delete accepted");
    Ok(StatusCode::ACCEPTED)
}

/// One volume of a group made from a source.
struct Member {
    size: i64,
    type_id: String,
    snapshot_id: Option<String>,
    source_volid: Option<String>,
    name: Option<String>,
}

/// `POST /groups/action` with `create-from-src`.
pub async fn create_from_src(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require(mv, 14)?;
    let mut body = json_body(&body)?;
    let args: Map<String, Value> =
        match body.remove("create-from-src") {
            Some(Value::Object(m)) => m,
            _ => return Err(bad(
                "the body must be {\"create-from-src\": {...}} (the only action on /groups/action)",
            )),
        };
    let name = opt_text(&args, "name")?;
    let description = opt_text(&args, "description")?;
    let gs_id = opt_text(&args, "group_snapshot_id")?;
    let src_id = opt_text(&args, "source_group_id")?;
    let (source, members, group_snapshot_id, source_group_id) = match (gs_id, src_id) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "Cannot create group from both group_snapshot_id and source_group_id.",
            ))
        }
        (None, None) => {
            return Err(bad(
                "Either 'group_snapshot_id' or 'source_group_id' must be provided to create group from source.",
            ))
        }
        (Some(gs), None) => {
            let not_found = || ApiError::NotFound(format!("GroupSnapshot {gs} could not be found."));
            let snap = st.rt.db.group_snapshot_get(&gs).await.map_err(|_| not_found())?;
            if snap.project_id != project(&ctx) && !ctx.0.is_admin {
                return Err(not_found());
            }
            if snap.status != "available" {
                return Err(ApiError::BadRequest(format!(
                    "Invalid group snapshot: Group snapshot {gs} status must be available, but current status is: {}.",
                    snap.status
                )));
            }
            let source = st.rt.db.group_get(&snap.group_id).await?;
            let members = st
                .rt
                .db
                .snapshots_of_group_snapshot(&gs)
                .await?
                .into_iter()
                .map(|s| Member {
                    size: s.volume_size,
                    type_id: s.volume_type_id.unwrap_or_default(),
                    snapshot_id: Some(s.id),
                    source_volid: None,
                    name: s.display_name,
                })
                .collect::<Vec<_>>();
            (source, members, Some(gs), None)
        }
        (None, Some(src)) => {
            let source = visible(&st, &ctx, &src).await?;
            if source.status != "available" {
                return Err(ApiError::BadRequest(format!(
                    "Invalid group: Source group {src} status must be available, but current status is: {}.",
                    source.status
                )));
            }
            let volumes = st.rt.db.volumes_of_group(&src).await?;
            if let Some(v) = volumes
                .iter()
                .find(|v| !["available", "in-use"].contains(&v.status.as_str()))
            {
                return Err(ApiError::BadRequest(format!(
                    "Invalid volume: Volume {} of source group {src} is {}; it must be available or in-use.",
                    v.id, v.status
                )));
            }
            let members = volumes
                .into_iter()
                .map(|v| Member {
                    size: v.size,
                    type_id: v.volume_type_id.unwrap_or_default(),
                    snapshot_id: None,
                    source_volid: Some(v.id),
                    name: v.display_name,
                })
                .collect::<Vec<_>>();
            (source, members, None, Some(src))
        }
    };
    let new = NewGroup {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: project(&ctx).to_string(),
        user_id: ctx.0.user_id.clone().unwrap_or_default(),
        name,
        description,
        availability_zone: source.availability_zone.clone(),
        host: source.host.clone(),
        group_type_id: source.group_type_id.clone(),
        volume_type_ids: source.volume_type_ids.clone(),
        group_snapshot_id,
        source_group_id,
    };
    let group = record_group(&st, &new).await?;
    for m in &members {
        if let Err(e) = create_member(&st, &ctx, &group, m).await {
            // The volumes recorded so far are made; the group ends in error once they are.
            let _ = st.rt.db.group_transition(&group.id, &[], "error").await;
            return Err(e);
        }
    }
    // A source without volumes: nothing to wait for.
    st.rt.db.group_settle_creating(&group.id).await?;
    tracing::info!(group_id = %group.id, volumes = members.len(), "group from source accepted");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "group": summary_view(&group) })),
    ))
}

/// Record one volume of `group` (quota reserved and committed) and cast it to the scheduler,
/// bound to the group's backend.
async fn create_member(
    st: &AppState,
    ctx: &Ctx,
    group: &GroupRow,
    m: &Member,
) -> Result<(), ApiError> {
    let t = st.rt.db.volume_type_get(&m.type_id).await?;
    let new = NewVolume {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: group.project_id.clone(),
        user_id: ctx.0.user_id.clone().unwrap_or_default(),
        display_name: m.name.clone(),
        size: m.size,
        availability_zone: group.availability_zone.clone(),
        volume_type_id: Some(t.id.clone()),
        snapshot_id: m.snapshot_id.clone(),
        source_volid: m.source_volid.clone(),
        group_id: Some(group.id.clone()),
        ..Default::default()
    };
    let reservation = st
        .rt
        .db
        .quota_reserve(
            &new.project_id,
            &with_type(
                &[
                    ("volumes", 1),
                    ("gigabytes", m.size),
                    ("per_volume_gigabytes", m.size),
                ],
                Some(&t.name),
            ),
        )
        .await?;
    let row = match st.rt.db.volume_create(&new).await {
        Ok(row) => row,
        Err(e) => {
            let _ = st.rt.db.quota_rollback(&reservation).await;
            return Err(e.into());
        }
    };
    st.rt.db.quota_commit(&reservation).await?;
    let args = CreateArgs {
        request_spec: RequestSpec {
            volume_id: row.id.clone(),
            project_id: row.project_id.clone(),
            size: m.size as u64,
            operation: "create".into(),
            availability_zones: vec![group.availability_zone.clone()],
            snapshot_id: m.snapshot_id.clone(),
            source_volid: m.source_volid.clone(),
            volume_type: Some(TypeSpec {
                id: t.id,
                name: t.name,
                extra_specs: t.extra_specs,
            }),
            group_backend: group.host.clone(),
            ..Default::default()
        },
        retry: Default::default(),
    };
    if let Err(e) = st.scheduler.create_volume(&ctx.0, &args).await {
        return Err(crate::api::volumes::scheduler_unreachable(
            st,
            &ctx.0,
            &row.id,
            &row.project_id,
            &e.to_string(),
        )
        .await);
    }
    Ok(())
}
