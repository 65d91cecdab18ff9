//! `os-services` (list, enable, disable with reason, freeze, thaw) and
//! `scheduler-stats/get_pools`. The API shows Cinder's binary names (`cinder-volume`,
//! `cinder-scheduler`) for Kiln's services, as clients and Tempest filter by them, and takes
//! either name in filters and bodies; `kiln-api` (which Cinder does not register) keeps its name.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::catalog::{json_body, require_admin};
use super::context::Ctx;
use super::error::ApiError;
use super::microversion::Microversion;
use super::AppState;
use crate::db::services::ServiceRow;

/// Kiln's binary as the API names it.
pub fn api_binary(binary: &str) -> &str {
    match binary {
        "kiln-volume" => "cinder-volume",
        "kiln-scheduler" => "cinder-scheduler",
        other => other,
    }
}

/// Whether a `binary` filter or body value names this service (Cinder's or Kiln's name).
fn binary_matches(row: &ServiceRow, wanted: &str) -> bool {
    row.binary == wanted || api_binary(&row.binary) == wanted
}

/// Cinder's host filter: `node` matches `node` and `node@backend` (and pools `#...`).
pub fn host_matches(host: &str, wanted: &str) -> bool {
    host == wanted
        || host
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with('@') || rest.starts_with('#'))
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    version: Microversion,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let down_time = state.rt.config().service_down_time();
    let rows = state.rt.db.service_list().await?;
    let services: Vec<_> = rows
        .iter()
        .filter(|s| q.get("host").is_none_or(|h| host_matches(&s.host, h)))
        .filter(|s| q.get("binary").is_none_or(|b| binary_matches(s, b)))
        .map(|s| {
            let up = s.is_up(down_time);
            let binary = api_binary(&s.binary);
            let mut v = json!({
                "binary": binary,
                "host": s.host,
                "zone": s.availability_zone,
                "status": if s.disabled { "disabled" } else { "enabled" },
                "state": if up { "up" } else { "down" },
                "updated_at": s.updated_at.as_deref().unwrap_or(&s.created_at),
                "disabled_reason": s.disabled_reason,
            });
            if version.at_least(7) {
                v["cluster"] = Value::Null;
            }
            if binary == "cinder-volume" {
                v["replication_status"] = json!("disabled");
                v["active_backend_id"] = Value::Null;
                v["frozen"] = json!(s.frozen);
                if version.at_least(49) {
                    v["backend_state"] = json!(if up { "up" } else { "down" });
                }
            }
            v
        })
        .collect();
    Ok(Json(json!({ "services": services })))
}

fn string_field(body: &serde_json::Map<String, Value>, key: &str) -> Result<String, ApiError> {
    match body.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ApiError::BadRequest(format!(
            "Invalid input received: '{key}' is a required string."
        ))),
    }
}

async fn set_disabled(
    state: &AppState,
    body: &serde_json::Map<String, Value>,
    disabled: bool,
    with_reason: bool,
) -> Result<Json<Value>, ApiError> {
    let host = string_field(body, "host")?;
    let binary = string_field(body, "binary")?;
    let reason = if with_reason {
        let reason = match body.get("disabled_reason") {
            Some(Value::String(r)) => r.clone(),
            _ => {
                return Err(ApiError::BadRequest(
                    "Invalid input received: disabled_reason is required.".into(),
                ))
            }
        };
        if reason.trim().is_empty() || reason.chars().count() > 255 {
            return Err(ApiError::BadRequest(
                "Invalid input received: disabled_reason must be 1 to 255 characters.".into(),
            ));
        }
        Some(reason)
    } else {
        None
    };
    let rows = state.rt.db.service_list().await?;
    let row = rows
        .iter()
        .find(|s| s.host == host && binary_matches(s, &binary))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "Service {binary} on host {host} could not be found."
            ))
        })?;
    let row = state
        .rt
        .db
        .service_set_disabled(&row.host, &row.binary, disabled, reason.as_deref())
        .await?;
    let binary = api_binary(&row.binary);
    Ok(Json(json!({
        "host": row.host,
        "service": binary,
        "binary": binary,
        "status": if row.disabled { "disabled" } else { "enabled" },
        "disabled": row.disabled,
        "disabled_reason": row.disabled_reason,
    })))
}

/// Freeze or thaw every volume service of `host` (Cinder's `freeze_host` / `thaw_host`):
/// a frozen backend gets no new placements. Unknown host or already in that state: 400.
async fn set_frozen(
    state: &AppState,
    body: &serde_json::Map<String, Value>,
    frozen: bool,
) -> Result<Json<Value>, ApiError> {
    let host = string_field(body, "host")?;
    let rows = state.rt.db.service_list().await?;
    let targets: Vec<_> = rows
        .iter()
        .filter(|s| s.binary == crate::volume::BINARY && host_matches(&s.host, &host))
        .collect();
    if targets.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "Invalid input received: no volume service found on host {host}."
        )));
    }
    let mut changed = 0;
    for s in targets {
        if state.rt.db.service_set_frozen(s.id, frozen).await? {
            changed += 1;
        }
    }
    if changed == 0 {
        return Err(ApiError::BadRequest(format!(
            "Invalid input received: Host is already {}.",
            if frozen { "Frozen" } else { "Thawed" }
        )));
    }
    tracing::info!(%host, frozen, services = changed, "volume services frozen state changed");
    Ok(Json(json!({})))
}

/// `PUT /os-services/{action}`: enable, disable, disable-log-reason, freeze, thaw.
pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    axum::extract::Path(params): axum::extract::Path<HashMap<String, String>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let action = params.get("action").map(String::as_str).unwrap_or_default();
    let body = json_body(&body)?;
    match action {
        "enable" => set_disabled(&state, &body, false, false).await,
        "disable" => set_disabled(&state, &body, true, false).await,
        "disable-log-reason" => set_disabled(&state, &body, true, true).await,
        "freeze" => set_frozen(&state, &body, true).await,
        "thaw" => set_frozen(&state, &body, false).await,
        other => Err(ApiError::NotFound(format!("Unknown action {other}"))),
    }
}

/// `GET /scheduler-stats/get_pools[?detail=true]`: asks a scheduler over RPC.
pub async fn get_pools(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let detail = q
        .get("detail")
        .is_some_and(|d| super::catalog::parse_bool(d) == Some(true));
    let pools = state.scheduler.get_pools(&ctx.0).await?;
    let pools: Vec<_> = pools
        .into_iter()
        .map(|p| {
            if detail {
                json!({ "name": p.name, "capabilities": p.capabilities })
            } else {
                json!({ "name": p.name })
            }
        })
        .collect();
    Ok(Json(json!({ "pools": pools })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_binaries_match_like_cinder() {
        assert!(host_matches("node1", "node1"));
        assert!(host_matches("node1@file", "node1"));
        assert!(host_matches("node1@file#pool", "node1@file"));
        assert!(!host_matches("node10@file", "node1"));
        assert!(!host_matches("node1", "node1@file"));
        assert_eq!(api_binary("kiln-volume"), "cinder-volume");
        assert_eq!(api_binary("kiln-scheduler"), "cinder-scheduler");
        assert_eq!(api_binary("kiln-api"), "kiln-api");
    }
}
