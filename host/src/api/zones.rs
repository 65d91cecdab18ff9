//! Availability zones: `GET /os-availability-zone`, the zones of the volume services
//! (Cinder's contrib/availability_zones.py; a zone is available while at least one of its
//! volume services is enabled and up; Cinder looks at the disabled flag only), and [`check`],
//! the zones a new volume or group may ask for, cached as Cinder's API caches them
//! (`az_cache_duration`): a zone in the cache is accepted without a query; a zone that is not
//! in it refreshes the cache first, so the zone of a backend that has just started is usable
//! at once. A zone whose services are gone stays accepted until the cache expires (the
//! scheduler then finds no pool there).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long a read of the services table answers for.
const TTL: Duration = Duration::from_secs(60);

/// Zones read from the services table, and when.
#[derive(Debug, Default)]
pub struct ZoneCache {
    read: Mutex<Option<(Instant, Vec<String>)>>,
}

impl ZoneCache {
    fn cached(&self, zone: &str) -> bool {
        let read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        read.as_ref()
            .is_some_and(|(at, zones)| at.elapsed() < TTL && zones.iter().any(|z| z == zone))
    }

    fn store(&self, zones: Vec<String>) {
        *self.read.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), zones));
    }
}

/// `Ok` when some volume service is in `zone`; otherwise Cinder's 400 naming the zones.
pub async fn check(st: &AppState, zone: &str) -> Result<(), ApiError> {
    if st.zones.cached(zone) {
        return Ok(());
    }
    let zones = super::volumes::volume_zones(st).await?;
    let known = zones.iter().any(|z| z == zone);
    let listed = zones.join(", ");
    st.zones.store(zones);
    if known {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "Invalid input received: Availability zone '{zone}' is invalid; zones with volume \
             services: {listed}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fresh_reads_that_hold_the_zone_answer() {
        let c = ZoneCache::default();
        assert!(!c.cached("nova"), "an empty cache knows no zone");
        c.store(vec!["nova".into(), "az2".into()]);
        assert!(c.cached("nova") && c.cached("az2"));
        assert!(!c.cached("az3"), "a zone not read goes back to the table");
        *c.read.lock().unwrap() = Some((Instant::now() - TTL, vec!["nova".into()]));
        assert!(!c.cached("nova"), "an expired read answers nothing");
    }
}
