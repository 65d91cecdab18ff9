//! `POST /volumes/{id}/action`: the volume actions. Growth (`os-extend`, here: the scheduler
//! checks the volume's pool can take it, then its volume service grows it; an `in-use` volume
//! from microversion 3.42), the admin actions (`admin.rs`: reset status, force delete,
//! bootable, read-only), `os-migrate_volume` (`migrate.rs`), `os-retype` (`retype.rs`, with a
//! migration when allowed and needed), `revert` to the latest snapshot (`revert.rs`, 3.40)
//! and the legacy attach actions (`attach.rs`: reserve ...
//! terminate connection). Nothing but the admin's reset and force delete acts on a volume
//! taking part in a migration.

mod admin;
mod attach;
mod migrate;
mod retype;
mod revert;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::context::Ctx;
use super::microversion::Microversion;
use super::{ApiError, AppState};
use crate::db::quotas::with_type;
use crate::db::volumes::{migration_active, VolumeRow};
use crate::rpc::RequestContext;
use crate::scheduler::extend::ExtendArgs;
use crate::scheduler::placement::RequestSpec;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(format!("Invalid input received: {}", msg.into()))
}

fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

/// `POST /volumes/{id}/action`.
pub async fn action(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    mv: Microversion,
    Path(params): Path<Vec<(String, String)>>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let (url_project, id) = super::volumes::path_parts(&params);
    let project = super::volumes::project_of(&ctx, url_project)?;
    let row = super::volumes::visible(&st, &ctx, &project, id).await?;
    let Some((name, args)) = body.as_object().and_then(|o| o.iter().next()) else {
        return Err(bad(
            "the body must name one action, e.g. {\"os-extend\": {\"new_size\": 2}}",
        ));
    };
    let admin_override = ["os-reset_status", "os-force_delete", "os-migrate_volume"];
    if migration_active(row.migration_status.as_deref()) && !admin_override.contains(&name.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Volume {} is taking part in a migration (migration_status {}); \
             try again when it has ended.",
            row.id,
            row.migration_status.as_deref().unwrap_or_default()
        )));
    }
    match name.as_str() {
        "os-extend" => extend(&st, &ctx, mv, row, args).await,
        "os-migrate_volume" => migrate::migrate(&st, &ctx, mv, &row, args).await,
        "os-retype" => retype::retype(&st, &ctx, &row, args).await,
        "revert" => revert::revert(&st, &ctx, mv, &row, args).await,
        "os-reset_status" => admin::reset_status(&st, &ctx, &row, args).await,
        "os-force_delete" => admin::force_delete(&st, &ctx, &row).await,
        "os-set_bootable" => admin::set_bootable(&st, &row, args).await,
        "os-update_readonly_flag" => admin::update_readonly(&st, &row, args).await,
        "os-reserve" => attach::reserve(&st, &row).await,
        "os-unreserve" => attach::unreserve(&st, &row).await,
        "os-begin_detaching" => attach::begin_detaching(&st, &row).await,
        "os-roll_detaching" => attach::roll_detaching(&st, &row).await,
        "os-attach" => attach::attach(&st, &row, args).await,
        "os-detach" => attach::detach(&st, &ctx, &row, args).await,
        "os-initialize_connection" => attach::initialize_connection(&st, &ctx, &row, args).await,
        "os-terminate_connection" => attach::terminate_connection(&st, &ctx, &row, args).await,
        other => Err(bad(format!(
            "volume action {other} is not supported by Kiln"
        ))),
    }
}

/// In-use volumes can be extended from this microversion (Cinder's
/// `VOLUME_EXTEND_INUSE`), when their backend reports `online_extend_support`.
const EXTEND_IN_USE: u32 = 42;

/// `os-extend`: `{"new_size": N}` for an available volume, or an in-use one from 3.42.
async fn extend(
    st: &AppState,
    ctx: &RequestContext,
    mv: Microversion,
    row: VolumeRow,
    args: &Value,
) -> Result<Response, ApiError> {
    let id = row.id.as_str();
    let new_size = match &args["new_size"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| bad("'new_size' must be an integer"))?;
    if new_size <= row.size {
        return Err(bad(format!(
            "New size for extend must be greater than current size. (current: {}, extended: {new_size}).",
            row.size
        )));
    }
    let in_use_ok = mv.at_least(EXTEND_IN_USE);
    let allowed = row.status == "available" || (in_use_ok && row.status == "in-use");
    if !allowed {
        let want = if in_use_ok {
            "available or in-use"
        } else {
            "available"
        };
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Volume status must be {want} to extend, but current status is: {}.",
            row.status
        )));
    }
    let previous_status = row.status.clone();
    let Some(pool) = row.host.clone() else {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: volume {id} is not placed on any backend."
        )));
    };
    // The growth counts against the gigabytes quota from now; released if refused.
    let growth = new_size - row.size;
    let reservation = st
        .rt
        .db
        .quota_reserve(
            &row.project_id,
            &with_type(
                &[("gigabytes", growth), ("per_volume_gigabytes", new_size)],
                row.volume_type_name.as_deref(),
            ),
        )
        .await?;
    st.rt.db.quota_commit(&reservation).await?;
    let release = || async {
        let _ = st
            .rt
            .db
            .quota_release(
                &row.project_id,
                &with_type(&[("gigabytes", growth)], row.volume_type_name.as_deref()),
            )
            .await;
    };
    if !st
        .rt
        .db
        .volume_transition(id, &[previous_status.as_str()], "extending")
        .await?
    {
        release().await;
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: volume {id} changed status; try again."
        )));
    }
    let args = ExtendArgs {
        request_spec: RequestSpec {
            volume_id: row.id.clone(),
            project_id: row.project_id.clone(),
            size: row.size as u64,
            new_size: Some(new_size as u64),
            operation: "extend".into(),
            metadata: row.metadata.clone(),
            ..Default::default()
        },
        pool,
        previous_status: previous_status.clone(),
    };
    if let Err(e) = st.scheduler.extend_volume(ctx, &args).await {
        let _ = st.rt.db.volume_set_status(id, &previous_status).await;
        release().await;
        return Err(e.into());
    }
    Ok(accepted())
}
