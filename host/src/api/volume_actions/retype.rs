//! `os-retype`: `{"new_type": NAME_OR_ID, "migration_policy": "never" | "on-demand"}` for an
//! available or in-use volume. The volume goes to `retyping`; the scheduler checks its pool
//! satisfies the new type through the chain (operation `retype`), and the volume service
//! records the type (or the volume returns to its status with a message).

use axum::response::Response;
use serde_json::Value;

use super::{accepted, bad};
use crate::api::{ApiError, AppState};
use crate::db::quotas::type_resource;
use crate::db::volumes::VolumeRow;
use crate::rpc::RequestContext;
use crate::scheduler::placement::{RequestSpec, TypeSpec};
use crate::scheduler::retype::RetypeArgs;

pub async fn retype(
    st: &AppState,
    ctx: &RequestContext,
    row: &VolumeRow,
    args: &Value,
) -> Result<Response, ApiError> {
    let new_type = args
        .get("new_type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("os-retype needs 'new_type'"))?;
    let policy = match args.get("migration_policy").and_then(Value::as_str) {
        None => "never",
        Some(p @ ("never" | "on-demand")) => p,
        Some(other) => {
            return Err(bad(format!(
                "migration_policy must be 'never' or 'on-demand', got '{other}'"
            )))
        }
    };
    if !["available", "in-use"].contains(&row.status.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Volume status must be available or in-use to retype, but current status is: {}.",
            row.status
        )));
    }
    let not_found = || ApiError::NotFound(format!("Volume type {new_type} could not be found."));
    let vtype = st
        .rt
        .db
        .volume_type_resolve(&row.project_id, Some(new_type))
        .await
        .map_err(|_| not_found())?;
    if !ctx.is_admin
        && !st
            .rt
            .db
            .volume_type_accessible(&vtype, &row.project_id)
            .await?
    {
        return Err(not_found());
    }
    if row.volume_type_id.as_deref() == Some(vtype.id.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume type: New volume type is the same as the original: {}.",
            vtype.name
        )));
    }
    if row.use_quota {
        // Cinder reserves the volume against the new type's own quotas; Kiln checks them now
        // and moves the volume's count and size between the types when the retype is done.
        st.rt
            .db
            .quota_check(
                &row.project_id,
                &[
                    (type_resource("volumes", &vtype.name), 1),
                    (type_resource("gigabytes", &vtype.name), row.size),
                ],
            )
            .await?;
    }
    let pool = row.host.clone().ok_or_else(|| {
        ApiError::BadRequest(format!(
            "Invalid volume: volume {} is not placed on any backend.",
            row.id
        ))
    })?;
    if !st
        .rt
        .db
        .volume_transition(&row.id, &[row.status.as_str()], "retyping")
        .await?
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: volume {} changed status; try again.",
            row.id
        )));
    }
    let args = RetypeArgs {
        request_spec: RequestSpec {
            volume_id: row.id.clone(),
            project_id: row.project_id.clone(),
            size: row.size as u64,
            operation: "retype".into(),
            availability_zones: vec![row.availability_zone.clone()],
            metadata: row.metadata.clone(),
            multiattach: row.multiattach,
            volume_type: Some(TypeSpec {
                id: vtype.id.clone(),
                name: vtype.name.clone(),
                extra_specs: vtype.extra_specs.clone(),
            }),
            ..Default::default()
        },
        pool,
        previous_status: row.status.clone(),
        migration_policy: policy.to_string(),
    };
    if let Err(e) = st.scheduler.retype_volume(ctx, &args).await {
        let _ = st.rt.db.volume_set_status(&row.id, &row.status).await;
        return Err(e.into());
    }
    Ok(accepted())
}
