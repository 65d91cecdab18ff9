//! QoS specs (`/qos-specs`), admin-only as in Cinder's contrib/qos_specs_manage.py: list,
//! create, show, set keys (`PUT /qos-specs/{id}`), unset keys (`PUT …/delete_keys`), delete
//! (`?force=true` to drop associations), and the GET member actions `associations`,
//! `associate?vol_type_id=`, `disassociate?vol_type_id=`, `disassociate_all`.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::catalog::{
    json_body, links, member, param, parse_bool, project, require_admin, string_map, valid_name,
    Params,
};
use super::context::Ctx;
use super::error::ApiError;
use super::AppState;
use crate::db::qos::{QosError, QosSpecsRow};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/qos-specs", get(list).post(create))
        .route("/qos-specs/{id}", get(show).put(set_keys).delete(delete))
        .route("/qos-specs/{id}/delete_keys", put(delete_keys))
        .route("/qos-specs/{id}/associations", get(associations))
        .route("/qos-specs/{id}/associate", get(associate))
        .route("/qos-specs/{id}/disassociate", get(disassociate))
        .route("/qos-specs/{id}/disassociate_all", get(disassociate_all))
}

impl From<QosError> for ApiError {
    fn from(e: QosError) -> Self {
        match e {
            QosError::Db(db) => db.into(),
            QosError::Exists(_) => ApiError::Conflict(e.to_string()),
            QosError::BadConsumer
            | QosError::InUse
            | QosError::KeyNotFound { .. }
            | QosError::TypeTaken { .. } => ApiError::BadRequest(e.to_string()),
        }
    }
}

fn view(q: &QosSpecsRow) -> Value {
    json!({ "id": q.id, "name": q.name, "consumer": q.consumer, "specs": q.specs })
}

pub async fn list(State(state): State<AppState>, ctx: Ctx) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let specs: Vec<Value> = state.rt.db.qos_list().await?.iter().map(view).collect();
    Ok(Json(json!({ "qos_specs": specs })))
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let q = state.rt.db.qos_get(param(&p, "id")?).await?;
    let links = links(&headers, project(&ctx), "qos-specs", &q.id);
    Ok(Json(json!({ "qos_specs": view(&q), "links": links })))
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let mut body = member(json_body(&body)?, "qos_specs")?;
    let name = valid_name(body.get("name"), "name")
        .map_err(|_| ApiError::BadRequest("Please specify a name for QoS specs.".into()))?;
    body.remove("name");
    let mut specs = string_map(&body)?;
    let consumer = specs.remove("consumer");
    let q = state
        .rt
        .db
        .qos_create(&name, consumer.as_deref(), &specs)
        .await?;
    let links = links(&headers, project(&ctx), "qos-specs", &q.id);
    Ok(Json(json!({ "qos_specs": view(&q), "links": links })))
}

pub async fn set_keys(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let specs: BTreeMap<String, String> = string_map(&member(json_body(&body)?, "qos_specs")?)?;
    state.rt.db.qos_set_keys(param(&p, "id")?, &specs).await?;
    Ok(Json(json!({ "qos_specs": specs })))
}

pub async fn delete_keys(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    require_admin(&ctx)?;
    let keys: Vec<String> = match json_body(&body)?.get("keys") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|k| k.as_str().map(String::from))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::BadRequest("keys must be a list of strings.".into()))?,
        _ => {
            return Err(ApiError::BadRequest(
                "Missing required element 'keys' (a list).".into(),
            ))
        }
    };
    state.rt.db.qos_delete_keys(param(&p, "id")?, &keys).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    require_admin(&ctx)?;
    let force = match q.get("force") {
        None => false,
        Some(s) => parse_bool(s)
            .ok_or_else(|| ApiError::BadRequest(format!("Invalid value '{s}' for force.")))?,
    };
    state.rt.db.qos_delete(param(&p, "id")?, force).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn associations(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let list: Vec<Value> = state
        .rt
        .db
        .qos_associations(param(&p, "id")?)
        .await?
        .into_iter()
        .map(|a| json!({ "association_type": "volume_type", "name": a.name, "id": a.id }))
        .collect();
    Ok(Json(json!({ "qos_associations": list })))
}

fn vol_type_id(q: &HashMap<String, String>) -> Result<&str, ApiError> {
    q.get("vol_type_id")
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::BadRequest("Volume Type id must not be None.".into()))
}

pub async fn associate(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    require_admin(&ctx)?;
    let type_id = vol_type_id(&q)?;
    state.rt.db.qos_associate(param(&p, "id")?, type_id).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn disassociate(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    require_admin(&ctx)?;
    let type_id = vol_type_id(&q)?;
    state
        .rt
        .db
        .qos_disassociate(param(&p, "id")?, type_id)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn disassociate_all(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<StatusCode, ApiError> {
    require_admin(&ctx)?;
    state.rt.db.qos_disassociate_all(param(&p, "id")?).await?;
    Ok(StatusCode::ACCEPTED)
}
