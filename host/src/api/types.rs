//! Volume types (`/types`): list, show (by id or name; `default` is the default type),
//! create, update, delete; extra specs (`/types/{id}/extra_specs[/{key}]`); project access
//! (`/types/{id}/os-volume-type-access`, actions `addProjectAccess` / `removeProjectAccess`).
//! Cinder's contrib/types_manage.py, types_extra_specs.py, volume_type_access.py and
//! v3/types.py. Managing is admin-only; users see public types and private ones granted to
//! their project, with only the user-visible extra specs.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::catalog::{
    json_body, json_bool, member, param, parse_bool, project, require_admin, string_map,
    valid_description, valid_name, Params,
};
use super::context::Ctx;
use super::error::ApiError;
use super::AppState;
use crate::db::types::{TypeError, TypeFilter, VolumeTypeRow};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/types", get(list).post(create))
        .route("/types/{id}", get(show).put(update).delete(delete))
        .route(
            "/types/{id}/extra_specs",
            get(specs_list).post(specs_create),
        )
        .route(
            "/types/{id}/extra_specs/{key}",
            get(spec_show).put(spec_update).delete(spec_delete),
        )
        .route("/types/{id}/os-volume-type-access", get(access_list))
        .route("/types/{id}/action", axum::routing::post(action))
}

/// Extra specs a non-admin may see (Cinder's `USER_VISIBLE_EXTRA_SPECS`).
const USER_VISIBLE_EXTRA_SPECS: [&str; 3] = [
    "RESKEY:availability_zones",
    "multiattach",
    "sparse_copy_volume",
];

impl From<TypeError> for ApiError {
    fn from(e: TypeError) -> Self {
        match e {
            TypeError::Db(db) => db.into(),
            TypeError::Exists(_) | TypeError::AccessExists { .. } => {
                ApiError::Conflict(e.to_string())
            }
            TypeError::SpecNotFound { .. } | TypeError::AccessNotFound { .. } => {
                ApiError::NotFound(e.to_string())
            }
            TypeError::InUse
            | TypeError::SpecsInUse
            | TypeError::DeleteDefault
            | TypeError::ProjectDefault(_)
            | TypeError::RenameDefault
            | TypeError::PublicAccess => ApiError::BadRequest(e.to_string()),
        }
    }
}

fn visible_specs(ctx: &Ctx, specs: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    specs
        .iter()
        .filter(|(k, _)| ctx.0.is_admin || USER_VISIBLE_EXTRA_SPECS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Cinder's type view plus the `os-volume-type-access:is_public` extension attribute, as
/// create and update answer it.
fn view(ctx: &Ctx, t: &VolumeTypeRow) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "os-volume-type-access:is_public": t.is_public,
        "extra_specs": visible_specs(ctx, &t.extra_specs),
    })
}

/// The view of show and list, which also tell admins the type's `qos_specs_id` (Cinder's
/// create and update answers do not; Tempest's schemas refuse it there).
fn full_view(ctx: &Ctx, t: &VolumeTypeRow) -> Value {
    let mut v = view(ctx, t);
    if ctx.0.is_admin {
        v["qos_specs_id"] = json!(t.qos_specs_id);
    }
    v
}

/// The type `id_or_name` names (`default`: the default type) if the caller may see it.
async fn visible_type(state: &AppState, ctx: &Ctx, id: &str) -> Result<VolumeTypeRow, ApiError> {
    let t = if id == "default" {
        state.rt.db.volume_type_resolve(project(ctx), None).await?
    } else {
        state.rt.db.volume_type_get_by_name_or_id(id).await?
    };
    if !ctx.0.is_admin && !state.rt.db.volume_type_accessible(&t, project(ctx)).await? {
        return Err(ApiError::NotFound(format!(
            "Volume type {id} could not be found."
        )));
    }
    Ok(t)
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let filter = if ctx.0.is_admin {
        // Cinder: admins see public types by default; `is_public=None` lists all.
        let is_public =
            match q.get("is_public").map(String::as_str) {
                None => Some(true),
                Some(s) if s.eq_ignore_ascii_case("none") => None,
                Some(s) => Some(parse_bool(s).ok_or_else(|| {
                    ApiError::BadRequest(format!("Invalid is_public filter [{s}]"))
                })?),
            };
        TypeFilter {
            is_public,
            project: Some(project(&ctx)),
        }
    } else {
        TypeFilter {
            is_public: Some(true),
            project: Some(project(&ctx)),
        }
    };
    let types = state.rt.db.volume_type_list(filter).await?;
    let views: Vec<Value> = types.iter().map(|t| full_view(&ctx, t)).collect();
    Ok(Json(json!({ "volume_types": views })))
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let t = visible_type(&state, &ctx, param(&p, "id")?).await?;
    Ok(Json(json!({ "volume_type": full_view(&ctx, &t) })))
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let vt = member(json_body(&body)?, "volume_type")?;
    let name = valid_name(vt.get("name"), "name")?;
    let description = valid_description(vt.get("description"))?;
    let is_public = match vt.get("os-volume-type-access:is_public") {
        None | Some(Value::Null) => true,
        Some(v) => json_bool(v, "os-volume-type-access:is_public")?,
    };
    let specs = match vt.get("extra_specs") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => string_map(m)?,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "extra_specs must be an object.".into(),
            ))
        }
    };
    let t = state
        .rt
        .db
        .volume_type_create(&name, description.as_deref(), is_public, &specs)
        .await?;
    Ok(Json(json!({ "volume_type": view(&ctx, &t) })))
}

pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let id = param(&p, "id")?;
    let vt = member(json_body(&body)?, "volume_type")?;
    let name = match vt.get("name") {
        None | Some(Value::Null) => None,
        v => Some(valid_name(v, "name")?),
    };
    let description = valid_description(vt.get("description"))?;
    let is_public = match vt.get("is_public") {
        None | Some(Value::Null) => None,
        Some(v) => Some(json_bool(v, "is_public")?),
    };
    if name.is_none() && description.is_none() && is_public.is_none() {
        return Err(ApiError::BadRequest(
            "Specify volume type name, description, is_public or a combination thereof.".into(),
        ));
    }
    let t = state.rt.db.volume_type_get_by_name_or_id(id).await?;
    let t = state
        .rt
        .db
        .volume_type_update(&t.id, name.as_deref(), description.as_deref(), is_public)
        .await?;
    // Cinder's update answer lacks the type-access extension attribute (Tempest's schema
    // refuses it there).
    let mut v = view(&ctx, &t);
    if let Some(m) = v.as_object_mut() {
        m.remove("os-volume-type-access:is_public");
    }
    Ok(Json(json!({ "volume_type": v })))
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<StatusCode, ApiError> {
    require_admin(&ctx)?;
    let t = state
        .rt
        .db
        .volume_type_get_by_name_or_id(param(&p, "id")?)
        .await?;
    state.rt.db.volume_type_delete(&t.id).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn specs_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let t = visible_type(&state, &ctx, param(&p, "id")?).await?;
    Ok(Json(
        json!({ "extra_specs": visible_specs(&ctx, &t.extra_specs) }),
    ))
}

pub async fn specs_create(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let id = param(&p, "id")?;
    let specs = string_map(&member(json_body(&body)?, "extra_specs")?)?;
    state.rt.db.volume_type_get(id).await?;
    state
        .rt
        .db
        .volume_type_extra_specs_update(id, &specs)
        .await?;
    Ok(Json(json!({ "extra_specs": specs })))
}

pub async fn spec_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let (id, key) = (param(&p, "id")?, param(&p, "key")?);
    let t = visible_type(&state, &ctx, id).await?;
    match visible_specs(&ctx, &t.extra_specs).get(key) {
        Some(v) => Ok(Json(json!({ key: v }))),
        None => Err(TypeError::SpecNotFound {
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
    state
        .rt
        .db
        .volume_type_extra_specs_update(id, &specs)
        .await?;
    Ok(Json(json!(specs)))
}

pub async fn spec_delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<StatusCode, ApiError> {
    require_admin(&ctx)?;
    let (id, key) = (param(&p, "id")?, param(&p, "key")?);
    state.rt.db.volume_type_extra_spec_delete(id, key).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn access_list(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let t = state.rt.db.volume_type_get(param(&p, "id")?).await?;
    if t.is_public {
        return Err(ApiError::NotFound(
            "Access list not available for public volume types.".into(),
        ));
    }
    let access: Vec<Value> = state
        .rt
        .db
        .volume_type_projects(&t.id)
        .await?
        .into_iter()
        .map(|p| json!({ "volume_type_id": t.id, "project_id": p }))
        .collect();
    Ok(Json(json!({ "volume_type_access": access })))
}

/// `POST /types/{id}/action` with `addProjectAccess` or `removeProjectAccess`.
pub async fn action(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_admin(&ctx)?;
    let id = param(&p, "id")?;
    let body = json_body(&body)?;
    let (name, add) = if body.contains_key("addProjectAccess") {
        ("addProjectAccess", true)
    } else if body.contains_key("removeProjectAccess") {
        ("removeProjectAccess", false)
    } else {
        return Err(ApiError::BadRequest(
            "There is no such action: expected addProjectAccess or removeProjectAccess.".into(),
        ));
    };
    let args = member(body, name)?;
    let target = match args.get("project") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => s.clone(),
        _ => {
            return Err(ApiError::BadRequest(
                "Missing or invalid 'project' in request body.".into(),
            ))
        }
    };
    if add {
        state.rt.db.volume_type_access_add(id, &target).await?;
    } else {
        state.rt.db.volume_type_access_remove(id, &target).await?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}
