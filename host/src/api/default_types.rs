//! Per-project default volume types (`/default-types`, microversion 3.62; Cinder's
//! v3/default_types.py): set or replace a project's default (`PUT /default-types/{project}`
//! with `{"default_type": {"volume_type": NAME_OR_ID}}`, 200), show one (404 when unset), list
//! all, unset (204). Admin only (policy.rs). Volume create without a type and
//! `GET /types/default` then use the project's default; a type that is a project's default
//! cannot be deleted.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::catalog::{json_body, member, param, require_admin, Params};
use super::context::Ctx;
use super::error::ApiError;
use super::AppState;
use crate::db::default_types::DefaultTypeRow;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/default-types", get(list))
        .route("/default-types/{target}", get(show).put(set).delete(unset))
}

fn view(d: &DefaultTypeRow) -> Value {
    json!({ "project_id": d.project_id, "volume_type_id": d.volume_type_id })
}

pub async fn set(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let target = param(&p, "target")?;
    let spec = member(json_body(&body)?, "default_type")?;
    let name_or_id = match spec.get("volume_type") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 255 => s.as_str(),
        _ => {
            return Err(ApiError::BadRequest(
                "'volume_type' must be the name or id of a volume type (1 to 255 characters)."
                    .into(),
            ))
        }
    };
    // Cinder answers an unknown type with 400: the request, not the URL, names it.
    let not_found =
        || ApiError::BadRequest(format!("Volume type {name_or_id} could not be found."));
    let t = state
        .rt
        .db
        .volume_type_get_by_name_or_id(name_or_id)
        .await
        .map_err(|_| not_found())?;
    let row = state
        .rt
        .db
        .default_type_set(target, &t.id)
        .await
        .map_err(|e| match e {
            crate::db::DbError::NotFound(_) => not_found(), // deleted meanwhile
            other => other.into(),
        })?;
    tracing::info!(project_id = %target, volume_type_id = %t.id, "project default volume type set");
    Ok(Json(json!({ "default_type": view(&row) })))
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let target = param(&p, "target")?;
    let row = state.rt.db.default_type_get(target).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "Default type for project {target} could not be found."
        ))
    })?;
    Ok(Json(json!({ "default_type": view(&row) })))
}

pub async fn list(State(state): State<AppState>, ctx: Ctx) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let rows = state.rt.db.default_type_list().await?;
    Ok(Json(
        json!({ "default_types": rows.iter().map(view).collect::<Vec<_>>() }),
    ))
}

pub async fn unset(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<StatusCode, ApiError> {
    require_admin(&ctx)?;
    state.rt.db.default_type_unset(param(&p, "target")?).await?;
    Ok(StatusCode::NO_CONTENT)
}
