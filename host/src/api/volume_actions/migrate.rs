//! `os-migrate_volume` (admin): `{"host": "HOST@BACKEND[#POOL]", "force_host_copy": bool,
//! "lock_volume": bool}`, `host` optional from microversion 3.16 (absent: the scheduler's
//! chain chooses, the source backend excluded). The request is checked here as Cinder's
//! `volume.api.migrate_volume` does, the volume gets `migration_status = starting` (status
//! `maintenance` with `lock_volume`) by a compare-and-set, and the scheduler places the new
//! volume (`scheduler::migrate`); the rest is asynchronous, like Cinder.

use axum::response::Response;
use serde_json::Value;

use super::{accepted, bad};
use crate::api::catalog::json_bool;
use crate::api::microversion::Microversion;
use crate::api::{ApiError, AppState};
use crate::db::volumes::{migration_active, VolumeRow};
use crate::rpc::RequestContext;
use crate::scheduler::migrate::{backend_of, MigrateArgs};
use crate::scheduler::placement::{RequestSpec, TypeSpec};

/// From this microversion `host` may be left out (Cinder's `VOLUME_MIGRATE_CLUSTER`).
const HOST_OPTIONAL: u32 = 16;

/// The validated body of `os-migrate_volume`.
#[derive(Debug, Clone, PartialEq)]
struct Params {
    host: Option<String>,
    force_host_copy: bool,
    lock_volume: bool,
}

fn params(args: &Value, mv: Microversion) -> Result<Params, ApiError> {
    let Some(obj) = args.as_object() else {
        return Err(bad(format!(
            "Invalid value '{args}' for os-migrate_volume."
        )));
    };
    let host = match obj.get("host") {
        None | Some(Value::Null) => None,
        Some(Value::String(h)) if !h.trim().is_empty() => Some(h.trim().to_string()),
        Some(other) => return Err(bad(format!("Invalid host '{other}'."))),
    };
    if mv.at_least(HOST_OPTIONAL) && obj.get("cluster").is_some_and(|c| !c.is_null()) {
        return Err(bad(
            "Kiln has no clusters; name a destination 'host' (host@backend) or none",
        ));
    }
    if host.is_none() && !mv.at_least(HOST_OPTIONAL) {
        return Err(bad("Host field is missing."));
    }
    let flag = |name: &str| match obj.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(v) => json_bool(v, name),
    };
    Ok(Params {
        host,
        force_host_copy: flag("force_host_copy")?,
        lock_volume: flag("lock_volume")?,
    })
}

pub async fn migrate(
    st: &AppState,
    ctx: &RequestContext,
    mv: Microversion,
    row: &VolumeRow,
    args: &Value,
) -> Result<Response, ApiError> {
    let p = params(args, mv)?;
    let id = row.id.as_str();
    let invalid = |why: String| ApiError::BadRequest(format!("Invalid volume: {why}"));
    if migration_active(row.migration_status.as_deref()) {
        return Err(invalid(format!(
            "Volume {id} is already part of an active migration."
        )));
    }
    if row.status == "in-use" || row.attach_status == "attached" {
        return Err(invalid(format!(
            "Volume {id} is attached; Kiln migrates only detached (available) volumes, since no \
             compute service swaps an attachment to the new copy. Detach it first."
        )));
    }
    if row.status != "available" {
        return Err(invalid(format!(
            "Volume {id} status must be available or in-use, but current status is: {}.",
            row.status
        )));
    }
    let Some(pool) = row.host.clone() else {
        return Err(invalid(format!(
            "volume {id} is not placed on any backend."
        )));
    };
    let snapshots = st.rt.db.snapshots_of_volume(id).await?;
    if !snapshots.is_empty() {
        return Err(invalid(format!("Volume {id} must not have snapshots.")));
    }
    if let Some(host) = &p.host {
        let dest = backend_of(host);
        let down_time = st.rt.config().service_down_time();
        let up = st.rt.db.service_list().await?.into_iter().any(|s| {
            s.binary == crate::volume::BINARY
                && s.host == dest
                && !s.disabled
                && !s.frozen
                && s.is_up(down_time)
        });
        if !up {
            return Err(bad(format!("No available service named '{host}'")));
        }
        if dest == backend_of(&pool) {
            return Err(bad(
                "Destination host must be different than the current host.",
            ));
        }
    }
    let volume_type = match &row.volume_type_id {
        Some(t) => st.rt.db.volume_type_get(t).await.ok().map(|t| TypeSpec {
            id: t.id,
            name: t.name,
            extra_specs: t.extra_specs,
        }),
        None => None,
    };
    let during = p.lock_volume.then_some("maintenance");
    if !st
        .rt
        .db
        .volume_migration_start(id, &["available"], during, None)
        .await?
    {
        return Err(invalid(format!("volume {id} changed status; try again.")));
    }
    let args = MigrateArgs {
        request_spec: RequestSpec {
            volume_id: row.id.clone(),
            project_id: row.project_id.clone(),
            size: row.size as u64,
            operation: "migrate".into(),
            volume_type,
            availability_zones: vec![row.availability_zone.clone()],
            metadata: row.metadata.clone(),
            multiattach: row.multiattach,
            ..Default::default()
        },
        pool,
        host: p.host.clone(),
        force_host_copy: p.force_host_copy,
        new_type_id: None,
    };
    if let Err(e) = st.scheduler.migrate_volume(ctx, &args).await {
        let _ = st.rt.db.volume_migration_end(id, "error").await;
        return Err(e.into());
    }
    tracing::info!(volume_id = %id, host = ?p.host, lock_volume = p.lock_volume, "migration requested");
    Ok(accepted())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::microversion::ApiVersion;
    use serde_json::json;

    fn at(minor: u32) -> Microversion {
        Microversion(ApiVersion::new(3, minor))
    }

    #[test]
    fn host_is_required_before_3_16_and_optional_after() {
        assert!(params(&json!({}), at(15)).is_err());
        assert_eq!(params(&json!({}), at(16)).unwrap().host, None);
        let p = params(
            &json!({"host": "n@b#b", "force_host_copy": "true", "lock_volume": true}),
            at(3),
        )
        .unwrap();
        assert_eq!(
            p,
            Params {
                host: Some("n@b#b".into()),
                force_host_copy: true,
                lock_volume: true
            }
        );
    }

    #[test]
    fn bad_bodies_are_refused() {
        for body in [
            json!("n@b"),
            json!({"host": 7}),
            json!({"host": "n@b", "lock_volume": "maybe"}),
            json!({"host": "n@b", "force_host_copy": [1]}),
            json!({"cluster": "c1"}),
        ] {
            assert!(params(&body, at(16)).is_err(), "{body}");
        }
    }
}
