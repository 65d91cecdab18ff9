//! `POST /volumes/{id}/action`: the volume actions. `os-extend` is served (available volumes;
//! the scheduler checks the volume's pool can take the growth, then its volume service grows
//! it); other actions answer a clear 400 until they are implemented.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use super::context::Ctx;
use super::{ApiError, AppState};
use crate::scheduler::extend::ExtendArgs;
use crate::scheduler::placement::RequestSpec;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(format!("Invalid input received: {}", msg.into()))
}

/// `POST /volumes/{id}/action`.
pub async fn action(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(params): Path<Vec<(String, String)>>,
    Json(body): Json<Value>,
) -> Result<StatusCode, ApiError> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let id = get("id").unwrap_or_default();
    let project = match get("project_id") {
        Some(p) => p.to_string(),
        None => ctx.project_id.clone().unwrap_or_default(),
    };
    let not_found = || ApiError::NotFound(format!("Volume {id} could not be found."));
    let row = st.rt.db.volume_get(id).await.map_err(|_| not_found())?;
    if row.project_id != project && !ctx.is_admin {
        return Err(not_found());
    }
    let Some((name, args)) = body.as_object().and_then(|o| o.iter().next()) else {
        return Err(bad(
            "the body must name one action, e.g. {\"os-extend\": {\"new_size\": 2}}",
        ));
    };
    match name.as_str() {
        "os-extend" => {
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
            if row.status != "available" {
                return Err(ApiError::BadRequest(format!(
                    "Invalid volume: Volume status must be available to extend, but current status is: {}.",
                    row.status
                )));
            }
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
                    &[("gigabytes", growth), ("per_volume_gigabytes", new_size)],
                )
                .await?;
            st.rt.db.quota_commit(&reservation).await?;
            let release = || async {
                let _ = st
                    .rt
                    .db
                    .quota_release(&row.project_id, &[("gigabytes", growth)])
                    .await;
            };
            if !st
                .rt
                .db
                .volume_transition(id, &["available"], "extending")
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
            };
            if let Err(e) = st.scheduler.extend_volume(&ctx, &args).await {
                let _ = st.rt.db.volume_set_status(id, "available").await;
                release().await;
                return Err(e.into());
            }
            Ok(StatusCode::ACCEPTED)
        }
        other => Err(bad(format!(
            "volume action {other} is not supported by Kiln yet"
        ))),
    }
}
