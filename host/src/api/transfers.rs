//! Volume transfers: `/os-volume-transfer` and `/volume-transfers` (3.55+), the same handlers.
//! Create (an available volume goes `awaiting-transfer`; the answer carries the one-time auth
//! key), list / detail / show (the source project's), delete (cancel), and accept (any project
//! holding the id and key: the volume — with its snapshots unless `no_snapshots` — and its quota
//! move to the acceptor's project). Views by microversion: 3.55 `no_snapshots`, 3.57 source /
//! destination project and `accepted`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::catalog::{base_url, json_body, json_bool, member, param, project, Params};
use super::context::Ctx;
use super::{ApiError, AppState, Microversion};
use crate::db::quotas::with_type;
use crate::db::transfers::TransferRow;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for base in ["/os-volume-transfer", "/volume-transfers"] {
        r = r
            .route(base, get(list).post(create))
            .route(&format!("{base}/detail"), get(detail))
            .route(&format!("{base}/{{id}}"), get(show).delete(delete))
            .route(&format!("{base}/{{id}}/accept"), post(accept));
    }
    r
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(format!("Invalid input received: {}", msg.into()))
}

fn hash(salt: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{salt}{key}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn links(headers: &HeaderMap, project: &str, id: &str) -> Value {
    let base = base_url(headers);
    json!([
        {"rel": "self", "href": format!("{base}/v3/{project}/os-volume-transfer/{id}")},
        {"rel": "bookmark", "href": format!("{base}/{project}/os-volume-transfer/{id}")},
    ])
}

fn summary(t: &TransferRow, headers: &HeaderMap) -> Value {
    json!({
        "id": t.id,
        "name": t.display_name,
        "volume_id": t.volume_id,
        "links": links(headers, &t.source_project_id, &t.id),
    })
}

fn detail_view(t: &TransferRow, headers: &HeaderMap, mv: Microversion) -> Value {
    let mut v = summary(t, headers);
    v["created_at"] = json!(t.created_at);
    if mv.at_least(55) {
        v["no_snapshots"] = json!(t.no_snapshots);
    }
    if mv.at_least(57) {
        v["source_project_id"] = json!(t.source_project_id);
        v["destination_project_id"] = json!(t.destination_project_id);
        v["accepted"] = json!(t.accepted);
    }
    v
}

/// A transfer of the caller's project (or any, for an admin).
async fn visible(st: &AppState, ctx: &Ctx, id: &str) -> Result<TransferRow, ApiError> {
    let not_found = || ApiError::NotFound(format!("Transfer {id} could not be found."));
    let t = st.rt.db.transfer_get(id).await.map_err(|_| not_found())?;
    if t.source_project_id != project(ctx) && !ctx.0.is_admin {
        return Err(not_found());
    }
    Ok(t)
}

async fn create(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = member(json_body(&body)?, "transfer")?;
    let volume_id = body
        .get("volume_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("'volume_id' is a required property"))?;
    let name = match body.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= 255 => Some(s.clone()),
        Some(_) => return Err(bad("'name' must be a string of at most 255 characters")),
    };
    let no_snapshots = match body.get("no_snapshots") {
        Some(v) if mv.at_least(55) => json_bool(v, "no_snapshots")?,
        _ => false,
    };
    let not_found = || ApiError::NotFound(format!("Volume {volume_id} could not be found."));
    let volume = st
        .rt
        .db
        .volume_get(volume_id)
        .await
        .map_err(|_| not_found())?;
    if volume.project_id != project(&ctx) {
        return Err(not_found());
    }
    let snapshots = st.rt.db.snapshots_of_volume(volume_id).await?;
    if let Some(s) = snapshots.iter().find(|s| s.status != "available") {
        return Err(ApiError::BadRequest(format!(
            "Invalid snapshot: snapshot {} of volume {volume_id} is {}; all snapshots must be available to transfer the volume.",
            s.id, s.status
        )));
    }
    let key: String = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let salt = uuid::Uuid::new_v4().simple().to_string();
    let row = TransferRow {
        id: uuid::Uuid::new_v4().to_string(),
        volume_id: volume_id.to_string(),
        display_name: name,
        crypt_hash: hash(&salt, &key),
        salt,
        source_project_id: volume.project_id.clone(),
        destination_project_id: None,
        accepted: false,
        no_snapshots,
        created_at: String::new(),
    };
    let Some(t) = st.rt.db.transfer_create(&row).await? else {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Status of volume {volume_id} must be available to transfer, but current status is: {}.",
            volume.status
        )));
    };
    let mut view = detail_view(&t, &headers, mv);
    view["auth_key"] = json!(key);
    Ok((StatusCode::ACCEPTED, Json(json!({ "transfer": view }))))
}

async fn list(
    State(st): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let rows = st.rt.db.transfer_list(Some(project(&ctx))).await?;
    Ok(Json(
        json!({ "transfers": rows.iter().map(|t| summary(t, &headers)).collect::<Vec<_>>() }),
    ))
}

async fn detail(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let rows = st.rt.db.transfer_list(Some(project(&ctx))).await?;
    Ok(Json(
        json!({ "transfers": rows.iter().map(|t| detail_view(t, &headers, mv)).collect::<Vec<_>>() }),
    ))
}

async fn show(
    State(st): State<AppState>,
    ctx: Ctx,
    mv: Microversion,
    headers: HeaderMap,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let t = visible(&st, &ctx, param(&p, "id")?).await?;
    Ok(Json(json!({ "transfer": detail_view(&t, &headers, mv) })))
}

async fn delete(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<StatusCode, ApiError> {
    let t = visible(&st, &ctx, param(&p, "id")?).await?;
    st.rt.db.transfer_cancel(&t).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST .../{id}/accept` `{"accept": {"auth_key": KEY}}`.
async fn accept(
    State(st): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = param(&p, "id")?;
    let body = member(json_body(&body)?, "accept")?;
    let key = body
        .get("auth_key")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("'auth_key' is a required property"))?;
    let t = st
        .rt
        .db
        .transfer_get(id)
        .await
        .map_err(|_| ApiError::NotFound(format!("Transfer {id} could not be found.")))?;
    if hash(&t.salt, key) != t.crypt_hash {
        return Err(ApiError::BadRequest(format!(
            "Invalid auth key: Attempt to transfer {id} with invalid auth key."
        )));
    }
    let to = project(&ctx).to_string();
    let user = ctx.0.user_id.clone().unwrap_or_default();
    let volume = st.rt.db.volume_get(&t.volume_id).await?;
    let snapshots = if t.no_snapshots {
        Vec::new()
    } else {
        st.rt.db.snapshots_of_volume(&t.volume_id).await?
    };
    let snap_gb: i64 = snapshots.iter().map(|s| s.volume_size).sum();
    // The acceptor's quota must hold what arrives; the source's is released after. The
    // snapshots are of the volume's type.
    let moved = with_type(
        &[
            ("volumes", 1),
            ("gigabytes", volume.size + snap_gb),
            ("snapshots", snapshots.len() as i64),
        ],
        volume.volume_type_name.as_deref(),
    );
    let reservation = st.rt.db.quota_reserve(&to, &moved).await?;
    if !st.rt.db.transfer_accept(&t, &to, &user).await? {
        let _ = st.rt.db.quota_rollback(&reservation).await;
        return Err(ApiError::NotFound(format!(
            "Transfer {id} could not be found."
        )));
    }
    st.rt.db.quota_commit(&reservation).await?;
    st.rt.db.quota_release(&t.source_project_id, &moved).await?;
    tracing::info!(transfer_id = %id, volume_id = %t.volume_id, from = %t.source_project_id, to = %to, "volume transferred");
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({ "transfer": summary(&TransferRow { source_project_id: to.clone(), ..t }, &headers) }),
        ),
    ))
}
