//! Kiln's admin API for volume-driver hot swap (no Cinder equivalent), under the v3 root:
//! - `POST /kiln-plugins?kind=driver&name=N` (see `plugins::upload`): a driver component is
//!   checked to be of the `volume-driver` world (it links and instantiates) before it is kept;
//! - `GET /kiln-backends/{host@backend}/driver`: the active driver and the history;
//! - `POST /kiln-backends/{host@backend}/driver` (`{"driver": {"component": "sha256:…",
//!   "manifest": "<TOML>", "drain_timeout": 60}}`): the backend's volume service validates the
//!   component with the backend's settings (`do_setup`, `get_volume_stats`), drains, records
//!   and swaps; a refused candidate leaves the old driver serving (400);
//! - `POST /kiln-backends/{host@backend}/driver/rollback`: back to the previous driver.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::context::Ctx;
use super::{ApiError, AppState};
use crate::plugins::driver::WasmDriver;
use crate::rpc::{RequestContext, RpcError};
use crate::volume::driver_swap::{RollbackArgs, SwapArgs, DEFAULT_DRAIN_TIMEOUT_S};

/// Longest drain an operator may ask for.
const MAX_DRAIN_TIMEOUT_S: u64 = 3600;

fn admin(ctx: &RequestContext) -> Result<(), ApiError> {
    if ctx.is_admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Policy doesn't allow managing volume drivers: admin only.".into(),
        ))
    }
}

/// A volume service's refusal is the client's problem (400), a drain that timed out a
/// conflict (409); anything else is ours.
fn from_rpc(e: RpcError) -> ApiError {
    match e {
        RpcError::Remote(r) if r.kind == "BadRequest" => ApiError::BadRequest(r.message),
        RpcError::Remote(r) if r.kind == "Conflict" => ApiError::Conflict(r.message),
        other => other.into(),
    }
}

/// Store a `driver` component after checking its world (called by `plugins::upload`).
pub async fn upload_driver(
    st: &AppState,
    name: String,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let sha = crate::plugins::engine::content_hash(&body);
    let (n, b) = (name.clone(), body.clone());
    tokio::task::spawn_blocking(move || WasmDriver::check_component(&n, &b))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::BadRequest(format!("not a usable volume driver component: {e}")))?;
    st.rt.db.component_put(&sha, &name, "driver", &body).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "plugin": {
            "sha256": sha, "name": name, "kind": "driver", "size": body.len(),
        }})),
    ))
}

/// `host@backend` from the path, checked to be a volume service Kiln knows.
async fn backend(st: &AppState, params: &[(String, String)]) -> Result<String, ApiError> {
    let raw = params
        .iter()
        .find(|(k, _)| k == "backend")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if !raw.contains('@') || raw.contains('#') || raw.len() > 255 {
        return Err(ApiError::BadRequest(format!(
            "a backend is named `host@backend` (no pool), got `{raw}`"
        )));
    }
    let row = st
        .rt
        .db
        .service_get(&raw, crate::volume::BINARY)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Volume backend {raw} could not be found.")))?;
    if !row.is_up(st.rt.config().service_down_time()) {
        return Err(ApiError::Unavailable(format!(
            "the volume service of {raw} is down; start it before swapping its driver"
        )));
    }
    Ok(raw)
}

/// `GET /kiln-backends/{backend}/driver`.
pub async fn show(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(params): Path<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    admin(&ctx)?;
    let raw = params
        .iter()
        .find(|(k, _)| k == "backend")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    st.rt
        .db
        .service_get(&raw, crate::volume::BINARY)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Volume backend {raw} could not be found.")))?;
    let history = st.rt.db.backend_driver_history(&raw).await?;
    Ok(Json(json!({ "driver": {
        "backend": raw,
        // No activation recorded: the backend runs its configured driver.
        "active": history.first(),
        "history": history,
    }})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapRequest {
    /// `sha256:<hex>` or `<hex>`.
    component: String,
    manifest: Option<String>,
    drain_timeout: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct SwapBody {
    driver: SwapRequest,
}

fn drain_timeout(t: Option<u64>) -> Result<u64, ApiError> {
    match t {
        None => Ok(DEFAULT_DRAIN_TIMEOUT_S),
        Some(t) if (1..=MAX_DRAIN_TIMEOUT_S).contains(&t) => Ok(t),
        Some(t) => Err(ApiError::BadRequest(format!(
            "drain_timeout must be between 1 and {MAX_DRAIN_TIMEOUT_S} seconds, got {t}"
        ))),
    }
}

/// `POST /kiln-backends/{backend}/driver`.
pub async fn swap(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(params): Path<Vec<(String, String)>>,
    body: Result<Json<SwapBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    admin(&ctx)?;
    let Json(body) = body.map_err(|e| {
        ApiError::BadRequest(format!(
            "expected {{\"driver\": {{\"component\": \"sha256:<hex>\", \"manifest\": \"<TOML>\", \"drain_timeout\": <s>}}}}: {e}"
        ))
    })?;
    let req = body.driver;
    let sha = req
        .component
        .strip_prefix("sha256:")
        .unwrap_or(&req.component)
        .to_string();
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::BadRequest(format!(
            "component must be `sha256:<64 hex digits>` of an uploaded driver, got `{}`",
            req.component
        )));
    }
    let drain_timeout_s = drain_timeout(req.drain_timeout)?;
    let backend = backend(&st, &params).await?;
    let args = SwapArgs {
        component_sha256: sha.to_ascii_lowercase(),
        manifest: req.manifest,
        drain_timeout_s,
    };
    let outcome = st
        .volume
        .swap_driver(&ctx, &backend, &args)
        .await
        .map_err(from_rpc)?;
    tracing::info!(%backend, driver = %outcome.active.label, "volume driver swapped");
    Ok(Json(json!({ "driver": outcome })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    drain_timeout: Option<u64>,
}

/// `POST /kiln-backends/{backend}/driver/rollback` (body optional).
pub async fn rollback(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(params): Path<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    admin(&ctx)?;
    let req: RollbackRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
        serde_json::from_value(v.get("rollback").cloned().unwrap_or(v)).map_err(|e| {
            ApiError::BadRequest(format!(
                "expected {{\"rollback\": {{\"drain_timeout\": <s>}}}}: {e}"
            ))
        })?
    };
    let drain_timeout_s = drain_timeout(req.drain_timeout)?;
    let backend = backend(&st, &params).await?;
    let outcome = st
        .volume
        .rollback_driver(&ctx, &backend, &RollbackArgs { drain_timeout_s })
        .await
        .map_err(from_rpc)?;
    tracing::info!(%backend, driver = %outcome.active.label, "volume driver rolled back");
    Ok(Json(json!({ "driver": outcome })))
}
