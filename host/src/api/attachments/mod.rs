//! `/attachments` (3.27+): create (reserve, or connect at once with a connector), update (connect),
//! complete (3.44 `os-complete`), list / detail / show and delete; plus the `attachments` entries
//! of the volume view. The state machine lives in `lifecycle.rs`, shared with the legacy
//! volume actions.

pub mod lifecycle;

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::catalog::{json_body, member, param, project, Params};
use super::context::Ctx;
use super::{ApiError, AppState};
use crate::db::attachments::{AttachmentRow, AttachmentUpdate};
use crate::db::volumes::VolumeRow;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/attachments", get(list).post(create))
        .route("/attachments/detail", get(detail))
        .route("/attachments/{id}", get(show).put(update).delete(delete))
        .route("/attachments/{id}/action", post(action))
}

/// The `attachments` of each volume's detailed view (attached ones only, as Cinder).
pub async fn volume_views(
    st: &AppState,
    volume_ids: &[String],
) -> Result<BTreeMap<String, Value>, ApiError> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for a in st.rt.db.attachments_of(volume_ids).await? {
        if a.attach_status != "attached" {
            continue;
        }
        let entry = json!({
            "id": a.volume_id,
            "attachment_id": a.id,
            "volume_id": a.volume_id,
            "server_id": a.instance_uuid,
            "host_name": a.attached_host,
            "device": a.mountpoint,
            "attached_at": a.attach_time,
        });
        match out.entry(a.volume_id.clone()).or_insert_with(|| json!([])) {
            Value::Array(list) => list.push(entry),
            _ => unreachable!("attachment lists are arrays"),
        }
    }
    Ok(out)
}

fn summary(a: &AttachmentRow) -> Value {
    json!({
        "id": a.id,
        "status": a.attach_status,
        "instance": a.instance_uuid,
        "volume_id": a.volume_id,
    })
}

fn view(a: &AttachmentRow) -> Value {
    let mut v = summary(a);
    v["attached_at"] = json!(a.attach_time);
    v["detached_at"] = json!(a.detach_time);
    v["attach_mode"] = json!(a.attach_mode);
    v["connection_info"] = a.connection_info.clone().unwrap_or_else(|| json!({}));
    v
}

/// An attachment the caller may see, with its volume.
async fn visible(
    st: &AppState,
    ctx: &Ctx,
    id: &str,
) -> Result<(AttachmentRow, VolumeRow), ApiError> {
    let not_found = || ApiError::NotFound(format!("Attachment {id} could not be found."));
    let a = st.rt.db.attachment_get(id).await.map_err(|_| not_found())?;
    let v = st
        .rt
        .db
        .volume_get(&a.volume_id)
        .await
        .map_err(|_| not_found())?;
    if v.project_id != project(ctx) && !ctx.0.is_admin {
        return Err(not_found());
    }
    Ok((a, v))
}

async fn rows(st: &AppState, ctx: &Ctx) -> Result<Vec<AttachmentRow>, ApiError> {
    let scope = (!ctx.0.is_admin).then(|| project(ctx).to_string());
    Ok(st.rt.db.attachment_list(scope.as_deref()).await?)
}

async fn list(State(st): State<AppState>, ctx: Ctx) -> Result<Json<Value>, ApiError> {
    let rows = rows(&st, &ctx).await?;
    Ok(Json(
        json!({ "attachments": rows.iter().map(summary).collect::<Vec<_>>() }),
    ))
}

async fn detail(State(st): State<AppState>, ctx: Ctx) -> Result<Json<Value>, ApiError> {
    let rows = rows(&st, &ctx).await?;
    Ok(Json(
        json!({ "attachments": rows.iter().map(view).collect::<Vec<_>>() }),
    ))
}

async fn show(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let (a, _) = visible(&st, &ctx, param(&p, "id")?).await?;
    Ok(Json(json!({ "attachment": view(&a) })))
}

/// `POST /attachments`: `{"attachment": {"volume_id", "instance_uuid", "connector"?, "mode"?}}`.
async fn create(
    State(st): State<AppState>,
    ctx: Ctx,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = member(json_body(&body)?, "attachment")?;
    let volume_id = body
        .get("volume_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::BadRequest("Invalid input received: 'volume_id' is required.".into())
        })?;
    let not_found = || ApiError::NotFound(format!("Volume {volume_id} could not be found."));
    let row = st
        .rt
        .db
        .volume_get(volume_id)
        .await
        .map_err(|_| not_found())?;
    if row.project_id != project(&ctx) && !ctx.0.is_admin {
        return Err(not_found());
    }
    let instance = body
        .get("instance_uuid")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mode = match body.get("mode").and_then(Value::as_str) {
        None => lifecycle::access_mode(&st, &row.id).await?,
        Some(m @ ("rw" | "ro")) => m.to_string(),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "Invalid input received: mode must be 'rw' or 'ro', got '{other}'."
            )))
        }
    };
    let connector = match body.get("connector") {
        None | Some(Value::Null) => None,
        Some(c) => Some(lifecycle::connector(c)?),
    };
    lifecycle::check_attachable(&st, &row).await?;
    let a = lifecycle::new_attachment(&st, &row, instance, None, None, &mode, "reserved").await?;
    let a = match connector {
        None => {
            if row.status == "available" {
                st.rt
                    .db
                    .volume_set_attach_state(&row.id, "reserved", &row.attach_status)
                    .await?;
            }
            a
        }
        Some(c) => connect(&st, &ctx, &row, a, c).await?,
    };
    Ok(Json(json!({ "attachment": view(&a) })))
}

/// Connect a reserved attachment: export, record the connector and connection info.
async fn connect(
    st: &AppState,
    ctx: &Ctx,
    row: &VolumeRow,
    a: AttachmentRow,
    c: crate::drivers::Connector,
) -> Result<AttachmentRow, ApiError> {
    let mode = a.attach_mode.clone().unwrap_or_else(|| "rw".into());
    let host = c.host.clone();
    let info = match lifecycle::connect(st, &ctx.0, row, c.clone(), &mode).await {
        Ok(info) => info,
        Err(e) => {
            let _ = st
                .rt
                .db
                .attachment_update(
                    &a.id,
                    &AttachmentUpdate {
                        attach_status: Some("error_attaching".into()),
                        ..Default::default()
                    },
                )
                .await;
            return Err(e);
        }
    };
    let a = st
        .rt
        .db
        .attachment_update(
            &a.id,
            &AttachmentUpdate {
                attach_status: Some("attaching".into()),
                attached_host: Some(host),
                connector: Some(serde_json::to_value(&c).expect("connector serialises")),
                connection_info: Some(info),
                ..Default::default()
            },
        )
        .await?;
    if row.status != "in-use" {
        st.rt
            .db
            .volume_set_attach_state(&row.id, "attaching", &row.attach_status)
            .await?;
    }
    Ok(a)
}

/// `PUT /attachments/{id}`: `{"attachment": {"connector": {...}}}`.
async fn update(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let (a, row) = visible(&st, &ctx, param(&p, "id")?).await?;
    let body = member(json_body(&body)?, "attachment")?;
    let c = lifecycle::connector(body.get("connector").unwrap_or(&Value::Null))?;
    if a.attach_status == "attached" {
        return Err(ApiError::BadRequest(format!(
            "Invalid attachment: attachment {} is already attached; delete it and create a new one.",
            a.id
        )));
    }
    let a = connect(&st, &ctx, &row, a, c).await?;
    Ok(Json(json!({ "attachment": view(&a) })))
}

/// `POST /attachments/{id}/action`: `os-complete` (3.44).
async fn action(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: axum::body::Bytes,
) -> Result<axum::http::StatusCode, ApiError> {
    let (a, _) = visible(&st, &ctx, param(&p, "id")?).await?;
    let body = json_body(&body)?;
    if !body.contains_key("os-complete") {
        return Err(ApiError::BadRequest(
            "Invalid input received: the only attachment action is os-complete.".into(),
        ));
    }
    if a.connection_info.is_none() {
        return Err(ApiError::BadRequest(format!(
            "Invalid attachment: attachment {} has no connector yet; update it with one first.",
            a.id
        )));
    }
    lifecycle::complete(&st, &a).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `DELETE /attachments/{id}`: the attachments of the volume that remain.
async fn delete(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let (a, row) = visible(&st, &ctx, param(&p, "id")?).await?;
    let left = lifecycle::detach(&st, &ctx.0, &row, &a).await?;
    Ok(Json(
        json!({ "attachments": left.iter().map(summary).collect::<Vec<_>>() }),
    ))
}
