//! `os-services` (list, enable, disable with reason) and `scheduler-stats/get_pools`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;

use super::context::Ctx;
use super::error::ApiError;
use super::AppState;

use super::catalog::require_admin;

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&ctx)?;
    let down_time = state.rt.config().service_down_time();
    let rows = state.rt.db.service_list().await?;
    let services: Vec<_> = rows
        .into_iter()
        .filter(|s| q.get("host").is_none_or(|h| &s.host == h))
        .filter(|s| q.get("binary").is_none_or(|b| &s.binary == b))
        .map(|s| {
            let state = if s.is_up(down_time) { "up" } else { "down" };
            serde_json::json!({
                "binary": s.binary,
                "host": s.host,
                "zone": s.availability_zone,
                "status": if s.disabled { "disabled" } else { "enabled" },
                "state": state,
                "updated_at": s.updated_at,
                "disabled_reason": s.disabled_reason,
                "frozen": s.frozen,
                "cluster": serde_json::Value::Null,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "services": services })))
}

#[derive(Deserialize)]
pub struct ServiceAction {
    host: String,
    binary: String,
    disabled_reason: Option<String>,
}

async fn set_disabled(
    state: &AppState,
    body: ServiceAction,
    disabled: bool,
    with_reason: bool,
) -> Result<Json<serde_json::Value>, ApiError> {
    let reason = if with_reason {
        let reason = body
            .disabled_reason
            .ok_or_else(|| ApiError::BadRequest("disabled_reason is required".into()))?;
        if reason.trim().is_empty() || reason.len() > 255 {
            return Err(ApiError::BadRequest(
                "disabled_reason must be 1 to 255 characters".into(),
            ));
        }
        Some(reason)
    } else {
        None
    };
    let row = state
        .rt
        .db
        .service_set_disabled(&body.host, &body.binary, disabled, reason.as_deref())
        .await?;
    Ok(Json(serde_json::json!({
        "host": row.host,
        "binary": row.binary,
        "status": if row.disabled { "disabled" } else { "enabled" },
        "disabled": row.disabled,
        "disabled_reason": row.disabled_reason,
    })))
}

/// `PUT /os-services/{action}` with action enable / disable / disable-log-reason.
pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    axum::extract::Path(params): axum::extract::Path<HashMap<String, String>>,
    Json(body): Json<ServiceAction>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&ctx)?;
    match params.get("action").map(|s| s.as_str()) {
        Some("enable") => set_disabled(&state, body, false, false).await,
        Some("disable") => set_disabled(&state, body, true, false).await,
        Some("disable-log-reason") => set_disabled(&state, body, true, true).await,
        Some(other) => Err(ApiError::NotFound(format!("Unknown action {other}"))),
        None => Err(ApiError::NotFound("no action".into())),
    }
}

/// `GET /scheduler-stats/get_pools[?detail=true]`: asks a scheduler over RPC.
pub async fn get_pools(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&ctx)?;
    let detail = q
        .get("detail")
        .is_some_and(|d| matches!(d.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    let pools = state.scheduler.get_pools(&ctx.0).await?;
    let pools: Vec<_> = pools
        .into_iter()
        .map(|p| {
            if detail {
                serde_json::json!({ "name": p.name, "capabilities": p.capabilities })
            } else {
                serde_json::json!({ "name": p.name })
            }
        })
        .collect();
    Ok(Json(serde_json::json!({ "pools": pools })))
}
