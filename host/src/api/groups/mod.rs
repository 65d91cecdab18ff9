//! Generic volume groups (3.13+, Cinder's v3/groups.py and group/api.py): list (summary and
//! detail), show, create (placed on one backend by the scheduler, `scheduler::groups`), update
//! (name, description, `add_volumes`, `remove_volumes` with Cinder's checks). The actions
//! (`delete`, `reset_status`, `create-from-src`) are in `actions.rs`. Views follow Cinder's
//! group view by microversion.

mod actions;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::catalog::{json_body, member, param, parse_bool, project, Params};
use super::context::Ctx;
use super::{ApiError, AppState, Microversion};
use crate::db::groups::{GroupRow, MembershipError, NewGroup};
use crate::scheduler::groups::CreateGroupArgs;
use crate::scheduler::placement::TypeSpec;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route("/groups/detail", get(detail))
        .route("/groups/action", post(actions::create_from_src))
        .route("/groups/{id}", get(show).put(update))
        .route("/groups/{id}/action", post(actions::action))
}

impl From<MembershipError> for ApiError {
    fn from(e: MembershipError) -> Self {
        match e {
            MembershipError::Db(db) => db.into(),
            other => ApiError::BadRequest(format!("Invalid volume: {other}")),
        }
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(format!("Invalid input received: {}", msg.into()))
}

/// Cinder's detailed group view at the request's microversion; `volumes` (3.25) only when the
/// request asked with `list_volume=True`.
fn detail_view(g: &GroupRow, mv: Microversion, volumes: Option<Vec<String>>) -> Value {
    let mut v = json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "status": g.status,
        "availability_zone": g.availability_zone,
        "created_at": g.created_at,
        "group_type": g.group_type_id,
        "volume_types": g.volume_type_ids,
    });
    if mv.at_least(14) {
        v["group_snapshot_id"] = json!(g.group_snapshot_id);
        v["source_group_id"] = json!(g.source_group_id);
    }
    if mv.at_least(25) {
        if let Some(ids) = volumes {
            v["volumes"] = json!(ids);
        }
    }
    if mv.at_least(38) {
        v["replication_status"] = json!("disabled");
    }
    if mv.at_least(58) {
        v["project_id"] = json!(g.project_id);
    }
    v
}

fn summary_view(g: &GroupRow) -> Value {
    json!({ "id": g.id, "name": g.name })
}

/// A group the caller may see (its project's, or any for an admin).
pub(super) async fn visible(st: &AppState, ctx: &Ctx, id: &str) -> Result<GroupRow, ApiError> {
    let not_found = || ApiError::NotFound(format!("Group {id} could not be found."));
    let g = st.rt.db.group_get(id).await.map_err(|_| not_found())?;
    if g.project_id != project(ctx) && !ctx.0.is_admin {
        return Err(not_found());
    }
    Ok(g)
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
    let scope = if all { None } else { Some(project(ctx)) };
    let groups = st.rt.db.group_list(scope).await?;
    let list_volume = q
        .get("list_volume")
        .is_some_and(|v| parse_bool(v) == Some(true));
    let mut views = Vec::with_capacity(groups.len());
    for g in &groups {
        if detailed {
            let volumes = if list_volume && mv.at_least(25) {
                Some(member_ids(st, &g.id).await?)
            } else {
                None
            };
            views.push(detail_view(g, mv, volumes));
        } else {
            views.push(summary_view(g));
        }
    }
    Ok(Json(json!({ "groups": views })))
}

async fn member_ids(st: &AppState, id: &str) -> Result<Vec<String>, ApiError> {
    Ok(st
        .rt
        .db
        .volumes_of_group(id)
        .await?
        .into_iter()
        .map(|v| v.id)
        .collect())
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
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let g = visible(&st, &ctx, param(&p, "id")?).await?;
    let volumes = if mv.at_least(25)
        && q.get("list_volume")
            .is_some_and(|v| parse_bool(v) == Some(true))
    {
        Some(member_ids(&st, &g.id).await?)
    } else {
        None
    };
    Ok(Json(json!({ "group": detail_view(&g, mv, volumes) })))
}

/// An optional string field of at most 255 characters.
fn opt_text(body: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 255 => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!(
            "'{key}' must be a string of at most 255 characters"
        ))),
    }
}

/// The volume type `name_or_id` as the scheduler needs it (404 when unknown or not visible).
async fn type_spec(st: &AppState, ctx: &Ctx, name_or_id: &str) -> Result<TypeSpec, ApiError> {
    let not_found = || ApiError::NotFound(format!("Volume type {name_or_id} could not be found."));
    let t = st
        .rt
        .db
        .volume_type_get_by_name_or_id(name_or_id)
        .await
        .map_err(|_| not_found())?;
    if !ctx.0.is_admin && !st.rt.db.volume_type_accessible(&t, project(ctx)).await? {
        return Err(not_found());
    }
    Ok(TypeSpec {
        id: t.id,
        name: t.name,
        extra_specs: t.extra_specs,
    })
}

/// Reserve the `groups` quota, record the group and run `then`; the reservation is
/// committed once the row exists and rolled back otherwise.
pub(super) async fn record_group(st: &AppState, new: &NewGroup) -> Result<GroupRow, ApiError> {
    let reservation = st
        .rt
        .db
        .quota_reserve(&new.project_id, &[("groups", 1)])
        .await?;
    let row = match st.rt.db.group_create(new).await {
        Ok(row) => row,
        Err(e) => {
            let _ = st.rt.db.quota_rollback(&reservation).await;
            return Err(e.into());
        }
    };
    st.rt.db.quota_commit(&reservation).await?;
    Ok(row)
}

/// `POST /groups`.
pub async fn create(
    State(st): State<AppState>,
    ctx: Ctx,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = member(json_body(&body)?, "group")?;
    let group_type = match body.get("group_type") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(bad("'group_type' is a required property")),
    };
    let type_refs: Vec<String> = match body.get("volume_types") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                other => Err(bad(format!("invalid volume type {other}"))),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad("'volume_types' must be a non-empty list")),
    };
    let name = opt_text(&body, "name")?;
    let description = opt_text(&body, "description")?;
    let zone = opt_text(&body, "availability_zone")?
        .unwrap_or_else(|| st.rt.config().availability_zone.clone());
    let gt = super::group_types::visible(&st, &ctx, &group_type)
        .await
        .map_err(|_| ApiError::NotFound(format!("Group type {group_type} could not be found.")))?;
    let mut types: Vec<TypeSpec> = Vec::new();
    for r in &type_refs {
        let t = type_spec(&st, &ctx, r).await?;
        if !types.iter().any(|x| x.id == t.id) {
            types.push(t);
        }
    }
    crate::api::zones::check(&st, &zone).await?;
    let new = NewGroup {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: project(&ctx).to_string(),
        user_id: ctx.0.user_id.clone().unwrap_or_default(),
        name,
        description,
        availability_zone: zone.clone(),
        host: None,
        group_type_id: gt.id.clone(),
        volume_type_ids: types.iter().map(|t| t.id.clone()).collect(),
        group_snapshot_id: None,
        source_group_id: None,
    };
    let row = record_group(&st, &new).await?;
    let args = CreateGroupArgs {
        group_id: row.id.clone(),
        project_id: row.project_id.clone(),
        availability_zone: zone,
        volume_types: types,
    };
    if let Err(e) = st.scheduler.create_group(&ctx.0, &args).await {
        let _ = st.rt.db.group_transition(&row.id, &[], "error").await;
        return Err(ApiError::Unavailable(format!(
            "the scheduler could not be reached ({e}); group {} is in error",
            row.id
        )));
    }
    tracing::info!(group_id = %row.id, group_type_id = %gt.id, "group accepted");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "group": summary_view(&row) })),
    ))
}

/// `add_volumes` / `remove_volumes`: a comma-separated string of volume ids.
fn id_list(body: &Map<String, Value>, key: &str) -> Result<Vec<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()),
        Some(other) => Err(bad(format!(
            "'{key}' must be a comma-separated string of volume ids, got {other}"
        ))),
    }
}

/// `PUT /groups/{id}`: 202 without a body, as Cinder.
pub async fn update(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let body = member(json_body(&body)?, "group")?;
    let name = opt_text(&body, "name")?;
    let description = opt_text(&body, "description")?;
    let add = id_list(&body, "add_volumes")?;
    let remove = id_list(&body, "remove_volumes")?;
    if name.is_none() && description.is_none() && add.is_empty() && remove.is_empty() {
        return Err(bad(
            "Name, description, add_volumes, and remove_volumes can not be all empty in the request body.",
        ));
    }
    let g = visible(&st, &ctx, param(&p, "id")?).await?;
    if (!add.is_empty() || !remove.is_empty()) && g.status != "available" {
        return Err(ApiError::BadRequest(format!(
            "Invalid group: Group {} status must be available, but current status is: {}.",
            g.id, g.status
        )));
    }
    for v in &add {
        check_add(&st, &g, v).await?;
    }
    for v in &remove {
        check_remove(&st, &g, v).await?;
    }
    st.rt.db.group_change_members(&g.id, &add, &remove).await?;
    st.rt
        .db
        .group_update(&g.id, name.as_deref(), description.as_deref())
        .await?;
    tracing::info!(group_id = %g.id, added = add.len(), removed = remove.len(), "group updated");
    Ok(StatusCode::ACCEPTED)
}

/// Cinder's checks before a volume joins group `g`.
async fn check_add(st: &AppState, g: &GroupRow, volume_id: &str) -> Result<(), ApiError> {
    let refuse = |why: String| {
        ApiError::BadRequest(format!(
            "Invalid volume: Cannot add volume {volume_id} to group {} because {why}.",
            g.id
        ))
    };
    let v = match st.rt.db.volume_get(volume_id).await {
        Ok(v) if v.project_id == g.project_id => v,
        _ => return Err(refuse("volume cannot be found".into())),
    };
    if let Some(other) = &v.group_id {
        return Err(refuse(format!("it is already in group {other}")));
    }
    let vtype = v.volume_type_id.clone().unwrap_or_default();
    if !g.volume_type_ids.contains(&vtype) {
        return Err(refuse(format!(
            "volume type {vtype} is not supported by the group"
        )));
    }
    if !["available", "in-use"].contains(&v.status.as_str()) {
        return Err(refuse(format!(
            "volume is in an invalid state: {}. Valid states are: ('available', 'in-use')",
            v.status
        )));
    }
    let backend = v
        .host
        .as_deref()
        .map(|h| h.split_once('#').map_or(h, |(b, _)| b));
    if backend != g.host.as_deref() {
        return Err(refuse(format!(
            "volume host {} is not the group's backend {}",
            backend.unwrap_or("(none)"),
            g.host.as_deref().unwrap_or("(none)")
        )));
    }
    Ok(())
}

/// Cinder's checks before a volume leaves group `g`.
async fn check_remove(st: &AppState, g: &GroupRow, volume_id: &str) -> Result<(), ApiError> {
    let refuse = |why: String| {
        ApiError::BadRequest(format!(
            "Invalid volume: Cannot remove volume {volume_id} from group {} because {why}.",
            g.id
        ))
    };
    let v = match st.rt.db.volume_get(volume_id).await {
        Ok(v) if v.group_id.as_deref() == Some(g.id.as_str()) => v,
        _ => return Err(refuse("it is not in the group".into())),
    };
    const REMOVABLE: [&str; 4] = ["available", "in-use", "error", "error_deleting"];
    if !REMOVABLE.contains(&v.status.as_str()) {
        return Err(refuse(format!(
            "volume is in an invalid state: {}. Valid states are: {REMOVABLE:?}",
            v.status
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiVersion;

    fn group() -> GroupRow {
        GroupRow {
            id: "g".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            name: Some("n".into()),
            description: None,
            status: "available".into(),
            availability_zone: "nova".into(),
            host: Some("h@b".into()),
            group_type_id: "gt".into(),
            volume_type_ids: vec!["t".into()],
            group_snapshot_id: None,
            source_group_id: None,
            created_at: "2026-01-01T00:00:00.000000".into(),
            updated_at: None,
        }
    }

    #[test]
    fn the_group_view_grows_with_the_microversion() {
        let mv = |m| Microversion(ApiVersion::new(3, m));
        let v = detail_view(&group(), mv(13), Some(vec!["v".into()]));
        assert!(v.get("group_snapshot_id").is_none());
        assert!(v.get("volumes").is_none(), "volumes is 3.25");
        let v = detail_view(&group(), mv(14), None);
        assert!(v["source_group_id"].is_null());
        assert!(v.get("replication_status").is_none());
        let v = detail_view(&group(), mv(71), Some(vec!["v".into()]));
        assert_eq!(v["volumes"], json!(["v"]));
        assert_eq!(v["replication_status"], "disabled");
        assert_eq!(v["project_id"], "p");
        assert_eq!(summary_view(&group()), json!({"id": "g", "name": "n"}));
    }

    #[test]
    fn member_lists_are_comma_separated_ids() {
        let m = |s: &str| serde_json::from_str::<Map<String, Value>>(s).unwrap();
        assert_eq!(
            id_list(&m(r#"{"add_volumes": "a, b,,c"}"#), "add_volumes").unwrap(),
            vec!["a", "b", "c"]
        );
        assert!(id_list(&m(r#"{"add_volumes": null}"#), "add_volumes")
            .unwrap()
            .is_empty());
        assert!(id_list(&m(r#"{"add_volumes": ["a"]}"#), "add_volumes").is_err());
    }
}
