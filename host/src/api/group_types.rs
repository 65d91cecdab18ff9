//! Group types (3.11, Cinder's v3/group_types.py and group_specs.py): list, show (`default`:
//! the type named by `api.default_group_type`), create, update, delete; group specs
//! (`/group_types/{id}/group_specs[/{key}]`). Managing is admin-only (policy.rs); users see
//! public types, without their specs.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::catalog::{
    json_body, json_bool, member, param, parse_bool, require_admin, string_map, valid_description,
    valid_name, Params,
};
use super::context::Ctx;
use super::error::ApiError;
use super::AppState;
use crate::db::group_types::{GroupTypeError, GroupTypeRow};
use crate::db::DbError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/group_types", get(list).post(create))
        .route("/group_types/{id}", get(show).put(update).delete(delete))
        .route(
            "/group_types/{id}/group_specs",
            get(specs_list).post(specs_create),
        )
        .route(
            "/group_types/{id}/group_specs/{key}",
            get(spec_show).put(spec_update).delete(spec_delete),
        )
}

impl From<GroupTypeError> for ApiError {
    fn from(e: GroupTypeError) -> Self {
        match e {
            GroupTypeError::Db(DbError::NotFound(what)) => {
                ApiError::NotFound(format!("{what} could not be found."))
            }
            GroupTypeError::Db(db) => db.into(),
            GroupTypeError::Exists(_) => ApiError::Conflict(e.to_string()),
            GroupTypeError::InUse(_) => ApiError::BadRequest(e.to_string()),
            GroupTypeError::SpecNotFound { .. } => ApiError::NotFound(e.to_string()),
        }
    }
}

/// Cinder's group type view; the specs only for admins.
pub(super) fn view(ctx: &Ctx, t: &GroupTypeRow) -> Value {
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
    });
    if ctx.0.is_admin {
        v["group_specs"] = json!(t.group_specs);
    }
    v
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Group type {id} could not be found."))
}

/// The group type `id` (a name or id; `default`: the configured default) if the caller may
/// see it: public ones, and any for an admin.
pub(super) async fn visible(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
) -> Result<GroupTypeRow, ApiError> {
    let t = if id == "default" {
        let name = state.rt.config().api.default_group_type.clone();
        if name.is_empty() {
            return Err(ApiError::NotFound("Default group type not found".into()));
        }
        state
            .rt
            .db
            .group_type_get(&name)
            .await
            .map_err(|_| ApiError::NotFound("Default group type not found".into()))?
    } else {
        state
            .rt
            .db
            .group_type_get(id)
            .await
            .map_err(|_| not_found(id))?
    };
    if !t.is_public && !ctx.0.is_admin {
        return Err(not_found(id));
    }
    Ok(t)
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    // As volume types: admins see public types unless `is_public=None` (all) or false.
    let public_only =
        if ctx.0.is_admin {
            match q.get("is_public").map(String::as_str) {
                None => Some(true),
                Some(s) if s.eq_ignore_ascii_case("none") => None,
                Some(s) => Some(parse_bool(s).ok_or_else(|| {
                    ApiError::BadRequest(format!("Invalid is_public filter [{s}]"))
                })?),
            }
        } else {
            Some(true)
        };
    let mut types = state
        .rt
        .db
        .group_type_list(public_only == Some(true))
        .await?;
    sort_types(&mut types, &q)?;
    let views: Vec<Value> = types
        .iter()
        .filter(|t| public_only != Some(false) || !t.is_public)
        .map(|t| view(&ctx, t))
        .collect();
    Ok(Json(json!({ "group_types": views })))
}

/// Cinder's `sort=key[:dir],…` (or `sort_key` / `sort_dir`) over `id`, `name`,
/// `description`, `is_public`, `created_at`; default `name` ascending. Anything else is 400.
fn sort_types(types: &mut [GroupTypeRow], q: &HashMap<String, String>) -> Result<(), ApiError> {
    let spec = match (q.get("sort"), q.get("sort_key")) {
        (Some(s), _) => s.clone(),
        (None, Some(k)) => format!("{k}:{}", q.get("sort_dir").map_or("asc", String::as_str)),
        (None, None) => return Ok(()),
    };
    let mut keys = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, dir) = part.split_once(':').unwrap_or((part, "asc"));
        if !["id", "name", "description", "is_public", "created_at"].contains(&key) {
            return Err(ApiError::BadRequest(format!("Invalid sort key: {key}")));
        }
        let desc = match dir.to_ascii_lowercase().as_str() {
            "asc" => false,
            "desc" => true,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "Invalid sort direction: {dir}"
                )))
            }
        };
        keys.push((key.to_string(), desc));
    }
    types.sort_by(|a, b| {
        keys.iter()
            .map(|(key, desc)| {
                let o = match key.as_str() {
                    "id" => a.id.cmp(&b.id),
                    "name" => a.name.cmp(&b.name),
                    "description" => a.description.cmp(&b.description),
                    "is_public" => a.is_public.cmp(&b.is_public),
                    _ => a.created_at.cmp(&b.created_at),
                };
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(())
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let t = visible(&state, &ctx, param(&p, "id")?).await?;
    Ok(Json(json!({ "group_type": view(&ctx, &t) })))
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_admin(&ctx)?;
    let gt = member(json_body(&body)?, "group_type")?;
    let name = valid_name(gt.get("name"), "name")?;
    let description = valid_description(gt.get("description"))?;
    let is_public = match gt.get("is_public") {
        None | Some(Value::Null) => true,
        Some(v) => json_bool(v, "is_public")?,
    };
    let specs = match gt.get("group_specs") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => string_map(m)?,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "group_specs must be an object.".into(),
            ))
        }
    };
    let t = state
        .rt
        .db
        .group_type_create(&name, description.as_deref(), is_public, &specs)
        .await?;
    tracing::info!(group_type_id = %t.id, name = %t.name, "group type created");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "group_type": view(&ctx, &t) })),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let id = param(&p, "id")?;
    let gt = member(json_body(&body)?, "group_type")?;
    let name = match gt.get("name") {
        None | Some(Value::Null) => None,
        v => Some(valid_name(v, "name")?),
    };
    let description = valid_description(gt.get("description"))?;
    let is_public = match gt.get("is_public") {
        None | Some(Value::Null) => None,
        Some(v) => Some(json_bool(v, "is_public")?),
    };
    if name.is_none() && description.is_none() && is_public.is_none() {
        return Err(ApiError::BadRequest(
            "Specify group type name, description, is_public or a combination thereof.".into(),
        ));
    }
    let t = state
        .rt
        .db
        .group_type_get(id)
        .await
        .map_err(|_| not_found(id))?;
    let t = state
        .rt
        .db
        .group_type_update(&t.id, name.as_deref(), description.as_deref(), is_public)
        .await?;
    Ok(Json(json!({ "group_type": view(&ctx, &t) })))
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<StatusCode, ApiError> {
    require_admin(&ctx)?;
    let id = param(&p, "id")?;
    let t = state
        .rt
        .db
        .group_type_get(id)
        .await
        .map_err(|_| not_found(id))?;
    state.rt.db.group_type_delete(&t.id).await?;
    tracing::info!(group_type_id = %t.id, "group type deleted");
    Ok(StatusCode::ACCEPTED)
}

pub async fn specs_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let t = visible(&state, &ctx, param(&p, "id")?).await?;
    Ok(Json(json!({ "group_specs": t.group_specs })))
}

pub async fn specs_create(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_admin(&ctx)?;
    let id = param(&p, "id")?;
    let specs = string_map(&member(json_body(&body)?, "group_specs")?)?;
    let t = state
        .rt
        .db
        .group_type_get(id)
        .await
        .map_err(|_| not_found(id))?;
    state.rt.db.group_type_specs_update(&t.id, &specs).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "group_specs": specs }))))
}

pub async fn spec_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let (id, key) = (param(&p, "id")?, param(&p, "key")?);
    let t = visible(&state, &ctx, id).await?;
    match t.group_specs.get(key) {
        Some(v) => Ok(Json(json!({ key: v }))),
        None => Err(GroupTypeError::SpecNotFound {
            type_id: id.into(),
            key: key.into(),
        }
        .into()),
    }
}

pub async fn spec_update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let (id, key) = (param(&p, "id")?, param(&p, "key")?);
    let body = json_body(&body)?;
    if body.len() > 1 {
        return Err(ApiError::BadRequest(
            "Request body contains too many items.".into(),
        ));
    }
    if !body.contains_key(key) {
        return Err(ApiError::BadRequest("Request body and URI mismatch".into()));
    }
    let specs = string_map(&body)?;
    let t = state
        .rt
        .db
        .group_type_get(id)
        .await
        .map_err(|_| not_found(id))?;
    state.rt.db.group_type_specs_update(&t.id, &specs).await?;
    Ok(Json(json!(specs)))
}

pub async fn spec_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<StatusCode, ApiError> {
    require_admin(&ctx)?;
    let (id, key) = (param(&p, "id")?, param(&p, "key")?);
    let t = state
        .rt
        .db
        .group_type_get(id)
        .await
        .map_err(|_| not_found(id))?;
    state.rt.db.group_type_spec_delete(&t.id, key).await?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> GroupTypeRow {
        GroupTypeRow {
            id: format!("id-{name}"),
            name: name.into(),
            description: None,
            is_public: true,
            group_specs: BTreeMap::new(),
            created_at: "2026-01-01T00:00:00.000000".into(),
        }
    }

    #[test]
    fn group_types_sort_like_cinder_lists() {
        let mut types = vec![t("a"), t("c"), t("b")];
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        sort_types(&mut types, &q(&[("sort", "name:desc")])).unwrap();
        let names: Vec<_> = types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["c", "b", "a"]);
        sort_types(&mut types, &q(&[("sort_key", "name")])).unwrap();
        assert_eq!(types[0].name, "a");
        assert!(sort_types(&mut types, &q(&[("sort", "colour:asc")])).is_err());
        assert!(sort_types(&mut types, &q(&[("sort", "name:sideways")])).is_err());
    }
}
