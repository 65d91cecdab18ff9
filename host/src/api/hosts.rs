//! Admin views of hosts (Cinder's contrib `hosts.py` and `capabilities.py`):
//! - `GET /os-hosts`: every service row as a host (availability from the heartbeat);
//! - `GET /os-hosts/{host}`: volume count and GiB on a volume host, in total and per project;
//! - `GET /capabilities/{host}`: a backend's capabilities (namespace, vendor, driver version,
//!   protocol, the standard properties) from the scheduler's latest report.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::catalog::{param, require_admin, Params};
use super::context::Ctx;
use super::error::ApiError;
use super::services::{api_binary, host_matches};
use super::AppState;
use crate::db::listing::ListQuery;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/os-hosts", get(list))
        .route("/os-hosts/{host}", get(show))
        .route("/capabilities/{host}", get(capabilities))
}

async fn list(State(state): State<AppState>, ctx: Ctx) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let down_time = state.rt.config().service_down_time();
    let hosts: Vec<_> = state
        .rt
        .db
        .service_list()
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "service-status": if s.is_up(down_time) { "available" } else { "unavailable" },
                "service": api_binary(&s.binary),
                "zone": s.availability_zone,
                "service-state": if s.disabled { "disabled" } else { "enabled" },
                "host_name": s.host,
                "last-update": s.updated_at,
            })
        })
        .collect();
    Ok(Json(json!({ "hosts": hosts })))
}

/// Volumes and snapshots (count, GiB) of one project on a host.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    volumes: usize,
    volume_gb: i64,
    snapshots: usize,
    snapshot_gb: i64,
}

fn resource(host: &str, project: &str, u: Usage) -> Value {
    json!({"resource": {
        "host": host,
        "project": project,
        "volume_count": u.volumes.to_string(),
        "total_volume_gb": u.volume_gb.to_string(),
        "snapshot_count": u.snapshots.to_string(),
        "total_snapshot_gb": u.snapshot_gb.to_string(),
    }})
}

/// Volume usage on a volume host; 404 unless an enabled volume service runs there.
async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let host = param(&p, "host")?;
    let services = state.rt.db.service_list().await?;
    let known = services
        .iter()
        .any(|s| s.binary == crate::volume::BINARY && !s.disabled && host_matches(&s.host, host));
    if !known {
        return Err(ApiError::NotFound("Host not found.".into()));
    }
    let volumes = state.rt.db.volume_list(&ListQuery::default()).await?;
    let here: Vec<_> = volumes
        .iter()
        .filter(|v| v.host.as_deref().is_some_and(|h| host_matches(h, host)))
        .collect();
    let snapshots = state.rt.db.snapshot_list(&ListQuery::default()).await?;
    let mut per_project: BTreeMap<&str, Usage> = BTreeMap::new();
    let mut total = Usage::default();
    for v in &here {
        for u in [&mut total, per_project.entry(&v.project_id).or_default()] {
            u.volumes += 1;
            u.volume_gb += v.size;
        }
    }
    for s in snapshots
        .iter()
        .filter(|s| here.iter().any(|v| v.id == s.volume_id))
    {
        for u in [&mut total, per_project.entry(&s.project_id).or_default()] {
            u.snapshots += 1;
            u.snapshot_gb += s.volume_size;
        }
    }
    let mut resources = vec![resource(host, "(total)", total)];
    resources.extend(
        per_project
            .into_iter()
            .map(|(project, u)| resource(host, project, u)),
    );
    Ok(Json(json!({ "host": resources })))
}

/// The standard capability properties Cinder's drivers describe.
fn standard_properties() -> Value {
    let prop = |title: &str, description: &str| json!({"title": title, "description": description, "type": "boolean"});
    json!({
        "thin_provisioning": prop("Thin Provisioning", "Sets thin provisioning."),
        "compression": prop("Compression", "Enables compression."),
        "qos": prop("QoS", "Enables QoS."),
        "replication_enabled": prop("Replication", "Enables replication."),
    })
}

/// `GET /capabilities/{host}` with `host` = `node@backend` (a pool suffix is ignored).
async fn capabilities(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let host = param(&p, "host")?;
    let backend = host.split('#').next().unwrap_or(host);
    let pools = state.scheduler.get_pools(&ctx.0).await?;
    let pool = pools
        .iter()
        .find(|p| p.name.split('#').next() == Some(backend))
        .ok_or_else(|| ApiError::NotFound(format!("Service {backend} could not be found.")))?;
    let caps = &pool.capabilities;
    let text = |key: &str| {
        caps.get(key)
            .cloned()
            .unwrap_or(Value::String(String::new()))
    };
    let backend_name = caps
        .get("volume_backend_name")
        .and_then(Value::as_str)
        .unwrap_or(backend);
    Ok(Json(json!({
        "namespace": format!("OS::Storage::Capabilities::{backend_name}"),
        "vendor_name": text("vendor_name"),
        "volume_backend_name": backend_name,
        "pool_name": Value::Null,
        "driver_version": text("driver_version"),
        "storage_protocol": text("storage_protocol"),
        "display_name": Value::Null,
        "description": Value::Null,
        "visibility": Value::Null,
        "replication_targets": [],
        "properties": standard_properties(),
    })))
}
