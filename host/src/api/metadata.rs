//! User metadata of volumes and snapshots: `GET`/`POST` (merge)/`PUT` (replace)
//! `/{volumes|snapshots}/{id}/metadata` and `GET`/`PUT`/`DELETE .../metadata/{key}`, the same
//! handlers for both resources.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::catalog::{json_body, param, project, string_map, Params};
use super::context::Ctx;
use super::{ApiError, AppState};
use crate::db::listing::Table;

/// The resource whose metadata is served.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Volume,
    Snapshot,
}

impl Kind {
    fn table(self) -> &'static Table {
        match self {
            Kind::Volume => &crate::db::volumes::TABLE,
            Kind::Snapshot => &crate::db::snapshots::TABLE,
        }
    }

    /// 404 unless the caller may see resource `id`.
    async fn check(self, st: &AppState, ctx: &Ctx, id: &str) -> Result<(), ApiError> {
        let (owner, what) = match self {
            Kind::Volume => (
                st.rt.db.volume_get(id).await.map(|v| v.project_id),
                "Volume",
            ),
            Kind::Snapshot => (
                st.rt.db.snapshot_get(id).await.map(|s| s.project_id),
                "Snapshot",
            ),
        };
        match owner {
            Ok(p) if p == project(ctx) || ctx.0.is_admin => Ok(()),
            _ => Err(ApiError::NotFound(format!(
                "{what} {id} could not be found."
            ))),
        }
    }
}

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for (kind, base) in [(Kind::Volume, "/volumes"), (Kind::Snapshot, "/snapshots")] {
        r = r
            .route(
                &format!("{base}/{{id}}/metadata"),
                get(move |st: State<AppState>, ctx: Ctx, p: Path<Params>| index(kind, st, ctx, p))
                    .post(
                        move |st: State<AppState>, ctx: Ctx, p: Path<Params>, b: Bytes| {
                            set_all(kind, false, st, ctx, p, b)
                        },
                    )
                    .put(
                        move |st: State<AppState>, ctx: Ctx, p: Path<Params>, b: Bytes| {
                            set_all(kind, true, st, ctx, p, b)
                        },
                    ),
            )
            .route(
                &format!("{base}/{{id}}/metadata/{{key}}"),
                get(move |st: State<AppState>, ctx: Ctx, p: Path<Params>| show(kind, st, ctx, p))
                    .put(
                        move |st: State<AppState>, ctx: Ctx, p: Path<Params>, b: Bytes| {
                            set_one(kind, st, ctx, p, b)
                        },
                    )
                    .delete(move |st: State<AppState>, ctx: Ctx, p: Path<Params>| {
                        delete(kind, st, ctx, p)
                    }),
            );
    }
    r
}

async fn index(
    kind: Kind,
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let id = param(&p, "id")?;
    kind.check(&st, &ctx, id).await?;
    let m = st.rt.db.metadata_get(kind.table(), id).await?;
    Ok(Json(json!({ "metadata": m })))
}

/// `body[key]` as a string map (`metadata` or `meta`).
fn items(body: &Bytes, key: &str) -> Result<BTreeMap<String, String>, ApiError> {
    match json_body(body)?.get(key) {
        Some(Value::Object(m)) => string_map(m),
        _ => Err(ApiError::BadRequest(format!(
            "Malformed request body: '{key}' must be an object of strings."
        ))),
    }
}

async fn set_all(
    kind: Kind,
    replace: bool,
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = param(&p, "id")?;
    kind.check(&st, &ctx, id).await?;
    let m = items(&body, "metadata")?;
    let all = st.rt.db.metadata_set(kind.table(), id, &m, replace).await?;
    // Cinder answers a replace with what was sent, a merge with the whole set.
    Ok(Json(json!({ "metadata": if replace { m } else { all } })))
}

async fn show(
    kind: Kind,
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let (id, key) = (param(&p, "id")?, param(&p, "key")?);
    kind.check(&st, &ctx, id).await?;
    let m = st.rt.db.metadata_get(kind.table(), id).await?;
    match m.get(key) {
        Some(v) => Ok(Json(json!({ "meta": { key: v } }))),
        None => Err(ApiError::NotFound(format!(
            "Metadata item was not found: {key}"
        ))),
    }
}

async fn set_one(
    kind: Kind,
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (id, key) = (param(&p, "id")?, param(&p, "key")?);
    kind.check(&st, &ctx, id).await?;
    let m = items(&body, "meta")?;
    if m.len() != 1 {
        return Err(ApiError::BadRequest(
            "Request body contains too many items.".into(),
        ));
    }
    if !m.contains_key(key) {
        return Err(ApiError::BadRequest("Request body and URI mismatch".into()));
    }
    st.rt.db.metadata_set(kind.table(), id, &m, false).await?;
    Ok(Json(json!({ "meta": m })))
}

async fn delete(
    kind: Kind,
    State(st): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<StatusCode, ApiError> {
    let (id, key) = (param(&p, "id")?, param(&p, "key")?);
    kind.check(&st, &ctx, id).await?;
    if !st.rt.db.metadata_delete(kind.table(), id, key).await? {
        return Err(ApiError::NotFound(format!(
            "Metadata item was not found: {key}"
        )));
    }
    Ok(StatusCode::OK)
}
