//! `GET /os-availability-zone`: the zones of the volume services (Cinder's
//! contrib/availability_zones.py). A zone is available while at least one of its volume
//! services is enabled and up; Cinder looks at the disabled flag only.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::context::Ctx;
use super::error::ApiError;
use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/os-availability-zone", get(list))
}

pub async fn list(State(state): State<AppState>, _ctx: Ctx) -> Result<Json<Value>, ApiError> {
    let down_time = state.rt.config().service_down_time();
    let mut zones: BTreeMap<String, bool> = BTreeMap::new();
    for s in state.rt.db.service_list().await? {
        if s.binary != crate::volume::BINARY {
            continue;
        }
        let available = !s.disabled && !s.frozen && s.is_up(down_time);
        *zones.entry(s.availability_zone).or_insert(false) |= available;
    }
    let info: Vec<Value> = zones
        .into_iter()
        .map(|(name, available)| json!({ "zoneName": name, "zoneState": { "available": available } }))
        .collect();
    Ok(Json(json!({ "availabilityZoneInfo": info })))
}
