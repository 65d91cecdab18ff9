//! User messages (`/messages`, 3.3): list (filters, `limit` / `marker`, newest first), show,
//! delete. Cinder's v3/messages.py and views/messages.py. The user message is Cinder's
//! `"<action>:<detail>"` text from the action and detail ids, followed by Kiln's own
//! explanation (the `detail` column: which filter removed which pools) when there is one.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::catalog::{links, param, project, Params};
use super::context::Ctx;
use super::error::ApiError;
use super::AppState;
use crate::db::user_messages::{MessageFilter, MessageRow, FILTER_COLUMNS};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/messages", get(list))
        .route("/messages/{id}", get(show).delete(delete))
}

/// Cinder's message_field actions, and Kiln's own from 101 (Cinder records none there).
const ACTIONS: [(&str, &str); 13] = [
    ("001", "schedule allocate volume"),
    ("002", "attach volume"),
    ("003", "copy volume to image"),
    ("004", "update attachment"),
    ("005", "copy image to volume"),
    ("006", "unmanage volume"),
    ("007", "extend volume"),
    ("008", "create volume from backend storage"),
    ("009", "create snapshot"),
    ("010", "delete snapshot"),
    ("011", "update snapshot"),
    ("012", "update snapshot metadata"),
    ("101", "revert volume to snapshot"),
];

/// Cinder's message_field details.
const DETAILS: [(&str, &str); 11] = [
    ("001", "An unknown error occurred."),
    ("002", "Driver is not initialized at present."),
    ("003", "Could not find any available weighted backend."),
    ("004", "Failed to upload volume to image at backend."),
    ("005", "Volume's attach mode is invalid."),
    ("006", "Not enough quota resource for operation."),
    (
        "007",
        "Image used for creating volume exceeds available space.",
    ),
    ("008", "Unmanaging encrypted volumes is not supported."),
    ("009", "Compute service failed to extend volume."),
    ("010", "Volume Driver failed to extend volume."),
    ("011", "Image signature verification failed."),
];

pub fn user_message(m: &MessageRow) -> String {
    let lookup = |table: &[(&str, &'static str)], id: Option<&str>| {
        table.iter().find(|(k, _)| Some(*k) == id).map(|(_, v)| *v)
    };
    let action = lookup(&ACTIONS, m.action_id.as_deref()).unwrap_or("unknown action");
    let detail = lookup(&DETAILS, m.detail_id.as_deref()).unwrap_or(DETAILS[0].1);
    match m.detail.as_deref().filter(|d| !d.is_empty()) {
        Some(extra) => format!("{action}:{detail} {extra}"),
        None => format!("{action}:{detail}"),
    }
}

fn view(headers: &HeaderMap, ctx: &Ctx, m: &MessageRow) -> Value {
    let mut v = json!({
        "id": m.id,
        "event_id": m.event_id,
        "user_message": user_message(m),
        "message_level": m.message_level,
        "created_at": m.created_at,
        "guaranteed_until": m.expires_at,
        "request_id": m.request_id,
        "links": links(headers, project(ctx), "messages", &m.id),
    });
    if let Some(t) = &m.resource_type {
        v["resource_type"] = json!(t);
    }
    if let Some(u) = &m.resource_uuid {
        v["resource_uuid"] = json!(u);
    }
    v
}

/// Admins see every project's messages (Cinder's `project_only` for admins); users their own.
fn scope(ctx: &Ctx) -> Option<String> {
    (!ctx.0.is_admin).then(|| project(ctx).to_string())
}

pub async fn list(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = match q.get("limit") {
        None => None,
        Some(l) => Some(
            l.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::BadRequest(format!("Invalid limit '{l}'.")))?,
        ),
    };
    let equals = FILTER_COLUMNS
        .iter()
        .filter_map(|c| q.get(*c).map(|v| (*c, v.clone())))
        .collect();
    let filter = MessageFilter {
        project_id: scope(&ctx),
        equals,
        limit,
        marker: q.get("marker").cloned(),
    };
    let rows = state
        .rt
        .db
        .user_message_list(&filter)
        .await
        .map_err(|e| match e {
            crate::db::DbError::NotFound(_) => ApiError::BadRequest("Invalid marker.".into()),
            other => other.into(),
        })?;
    let messages: Vec<Value> = rows.iter().map(|m| view(&headers, &ctx, m)).collect();
    Ok(Json(json!({ "messages": messages })))
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let m = state
        .rt
        .db
        .user_message_get(param(&p, "id")?, scope(&ctx).as_deref())
        .await?;
    Ok(Json(json!({ "message": view(&headers, &ctx, &m) })))
}

pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<StatusCode, ApiError> {
    state
        .rt
        .db
        .user_message_delete(param(&p, "id")?, scope(&ctx).as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_message_is_cinders_text_plus_kilns_detail() {
        let mut m = MessageRow {
            id: "m".into(),
            project_id: "p".into(),
            request_id: None,
            resource_type: Some("VOLUME".into()),
            resource_uuid: None,
            event_id: "VOLUME_VOLUME_001_003".into(),
            message_level: "ERROR".into(),
            action_id: Some("001".into()),
            detail_id: Some("003".into()),
            detail: None,
            created_at: "t".into(),
            expires_at: None,
        };
        assert_eq!(
            user_message(&m),
            "schedule allocate volume:Could not find any available weighted backend."
        );
        m.detail = Some("CapacityFilter removed h@a#a.".into());
        assert!(user_message(&m).ends_with("backend. CapacityFilter removed h@a#a."));
        m.action_id = Some("999".into());
        m.detail_id = None;
        assert!(user_message(&m).starts_with("unknown action:An unknown error occurred."));
    }
}
