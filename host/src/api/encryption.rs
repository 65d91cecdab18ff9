//! Volume type encryption (`/types/{id}/encryption`, Cinder's contrib/volume_type_encryption.py):
//! show the type's spec (`{}` when it has none), show one field, create, update, delete. Only
//! admins change it (policy.rs), and not while volumes of the type exist: their encryption
//! was fixed when they were made. Volumes of a type with a spec are created `encrypted`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::catalog::{json_body, member, param, require_admin, Params};
use super::context::Ctx;
use super::error::ApiError;
use super::AppState;
use crate::db::encryption::{EncryptionError, EncryptionRow, EncryptionSpec};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/types/{id}/encryption", get(index).post(create))
        .route(
            "/types/{id}/encryption/{key}",
            get(show).put(update).delete(delete),
        )
}

impl From<EncryptionError> for ApiError {
    fn from(e: EncryptionError) -> Self {
        match e {
            EncryptionError::Db(db) => db.into(),
            EncryptionError::Exists(_) => ApiError::BadRequest(e.to_string()),
            EncryptionError::NotFound(_) => ApiError::NotFound(e.to_string()),
        }
    }
}

/// The stored spec as Cinder's index shows it.
fn full_view(e: &EncryptionRow) -> Value {
    json!({
        "volume_type_id": e.volume_type_id,
        "encryption_id": e.encryption_id,
        "provider": e.provider,
        "cipher": e.cipher,
        "key_size": e.key_size,
        "control_location": e.control_location,
        "deleted": e.deleted,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
        "deleted_at": e.deleted_at,
    })
}

/// The volume type `id` exists (404 otherwise); its id.
async fn type_id(state: &AppState, id: &str) -> Result<String, ApiError> {
    Ok(state
        .rt
        .db
        .volume_type_get(id)
        .await
        .map_err(|_| ApiError::NotFound(format!("Volume type {id} could not be found.")))?
        .id)
}

/// 400 while volumes of the type exist (Cinder's `_encrypted_type_in_use`).
async fn refuse_in_use(state: &AppState, type_id: &str, verb: &str) -> Result<(), ApiError> {
    if state.rt.db.volume_type_in_use(type_id).await? {
        return Err(ApiError::BadRequest(format!(
            "Cannot {verb} encryption specs. Volume type in use."
        )));
    }
    Ok(())
}

/// Validate an `encryption` body like Cinder's schema: `provider` a non-empty string,
/// `control_location` `front-end` or `back-end`, `cipher` a string or null, `key_size` a
/// non-negative integer or null; nothing else. `create` requires provider
/// (`control_location` defaults to `front-end`).
fn parse_spec(body: &Map<String, Value>, create: bool) -> Result<EncryptionSpec, ApiError> {
    let bad = |m: String| ApiError::BadRequest(format!("Invalid input received: {m}"));
    let mut spec = EncryptionSpec::default();
    for (k, v) in body {
        match (k.as_str(), v) {
            ("provider", Value::String(s)) if !s.is_empty() && s.len() <= 255 => {
                spec.provider = Some(s.clone())
            }
            ("control_location", Value::String(s)) if s == "front-end" || s == "back-end" => {
                spec.control_location = Some(s.clone())
            }
            ("cipher", Value::Null) => spec.cipher = Some(None),
            ("cipher", Value::String(s)) if s.len() <= 255 => spec.cipher = Some(Some(s.clone())),
            ("key_size", Value::Null) => spec.key_size = Some(None),
            ("key_size", Value::Number(n)) if n.as_i64().is_some_and(|n| n >= 0) => {
                spec.key_size = Some(n.as_i64())
            }
            ("provider" | "control_location" | "cipher" | "key_size", other) => {
                return Err(bad(format!("invalid value {other} for '{k}'")))
            }
            _ => return Err(bad(format!("additional property '{k}' is not allowed"))),
        }
    }
    if create && spec.provider.is_none() {
        return Err(bad("'provider' is a required property".into()));
    }
    Ok(spec)
}

/// The given fields as the create / update answer shows them.
fn echo(spec: &EncryptionSpec) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(p) = &spec.provider {
        m.insert("provider".into(), json!(p));
    }
    if let Some(c) = &spec.control_location {
        m.insert("control_location".into(), json!(c));
    }
    if let Some(c) = &spec.cipher {
        m.insert("cipher".into(), json!(c));
    }
    if let Some(k) = &spec.key_size {
        m.insert("key_size".into(), json!(k));
    }
    m
}

/// `GET /types/{id}/encryption`: the spec, or `{}`.
pub async fn index(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let id = type_id(&state, param(&p, "id")?).await?;
    Ok(Json(match state.rt.db.encryption_get(&id).await? {
        Some(e) => full_view(&e),
        None => json!({}),
    }))
}

/// `GET /types/{id}/encryption/{key}`: one field, `{key: value}`.
pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let id = type_id(&state, param(&p, "id")?).await?;
    let key = param(&p, "key")?;
    let e = state
        .rt
        .db
        .encryption_get(&id)
        .await?
        .ok_or(EncryptionError::NotFound(id.clone()))?;
    match full_view(&e).get(key) {
        Some(v) => Ok(Json(json!({ key: v }))),
        None => Err(EncryptionError::NotFound(id).into()),
    }
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let id = type_id(&state, param(&p, "id")?).await?;
    let spec = parse_spec(&member(json_body(&body)?, "encryption")?, true)?;
    refuse_in_use(&state, &id, "create").await?;
    let row = state.rt.db.encryption_create(&id, &spec).await?;
    tracing::info!(volume_type_id = %id, encryption_id = %row.encryption_id, "volume type encryption created");
    let mut answer = echo(&spec);
    answer.insert("volume_type_id".into(), json!(row.volume_type_id));
    answer.insert("encryption_id".into(), json!(row.encryption_id));
    Ok(Json(json!({ "encryption": answer })))
}

pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let id = type_id(&state, param(&p, "id")?).await?;
    let spec = parse_spec(&member(json_body(&body)?, "encryption")?, false)?;
    refuse_in_use(&state, &id, "update").await?;
    state.rt.db.encryption_update(&id, &spec).await?;
    Ok(Json(json!({ "encryption": echo(&spec) })))
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<StatusCode, ApiError> {
    require_admin(&ctx)?;
    let id = type_id(&state, param(&p, "id")?).await?;
    if state.rt.db.encryption_get(&id).await?.is_none() {
        return Err(EncryptionError::NotFound(id).into());
    }
    refuse_in_use(&state, &id, "delete").await?;
    state.rt.db.encryption_delete(&id).await?;
    tracing::info!(volume_type_id = %id, "volume type encryption deleted");
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_bodies_are_validated_like_cinders_schema() {
        let m = |s: &str| serde_json::from_str::<Map<String, Value>>(s).unwrap();
        let spec = parse_spec(
            &m(r#"{"provider": "luks", "control_location": "front-end", "key_size": 256}"#),
            true,
        )
        .unwrap();
        assert_eq!(spec.key_size, Some(Some(256)));
        assert!(parse_spec(&m(r#"{"control_location": "front-end"}"#), true).is_err());
        assert!(parse_spec(&m(r#"{"control_location": "front-end"}"#), false).is_ok());
        assert!(parse_spec(&m(r#"{"provider": "x", "control_location": "side"}"#), true).is_err());
        assert!(parse_spec(&m(r#"{"provider": "x", "key_size": -1}"#), true).is_err());
        assert!(parse_spec(&m(r#"{"provider": "x", "colour": "red"}"#), true).is_err());
        let e = echo(&parse_spec(&m(r#"{"cipher": null}"#), false).unwrap());
        assert_eq!(e.get("cipher"), Some(&Value::Null));
    }
}
