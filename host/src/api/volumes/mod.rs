//! `/volumes`: create (raw, from a snapshot, or a clone of a volume; `create.rs`), list
//! (summary and detail, with Cinder's paging, sorting and filters), summary, show, update
//! and delete (with `cascade`). Creation records the volume as `creating` and casts it to the
//! scheduler; deletion casts it to the volume service holding it (or removes it at once when
//! it was never placed). Views (`view.rs`) follow Cinder's v3 volume view.

mod create;
pub mod view;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::attachments;
use super::context::Ctx;
use super::listing::{self, Params};
use super::Microversion;
use super::{ApiError, AppState};
use crate::db::volumes::VolumeRow;
use crate::rpc::RequestContext;
use view::{base_url, detail_view, DetailView, SummaryView, Viewer};

pub use create::create;
pub(crate) use create::scheduler_unreachable;

/// Statuses a volume may be deleted from (Cinder's).
const DELETABLE: &[&str] = &[
    "available",
    "error",
    "error_restoring",
    "error_extending",
    "error_managing",
];

/// The routes of `/volumes` (actions and metadata are mounted by their own modules).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list).post(create))
        .route("/volumes/detail", get(detail))
        .route("/volumes/summary", get(summary))
        .route("/volumes/{id}", get(show).put(update).delete(delete))
}

/// The project a request acts in: the URL's, which must be the caller's unless admin.
pub(crate) fn project_of(
    ctx: &RequestContext,
    url_project: Option<&str>,
) -> Result<String, ApiError> {
    let own = ctx.project_id.clone().unwrap_or_default();
    match url_project {
        Some(p) if p != own && !ctx.is_admin => Err(ApiError::Forbidden(format!(
            "Policy doesn't allow acting in project {p}."
        ))),
        Some(p) => Ok(p.to_string()),
        None => Ok(own),
    }
}

/// Zones of the volume services (any state): the zones a volume may ask for.
pub(crate) async fn volume_zones(st: &AppState) -> Result<Vec<String>, ApiError> {
    let mut zones: Vec<String> = st
        .rt
        .db
        .service_list()
        .await?
        .into_iter()
        .filter(|s| s.binary == crate::volume::BINARY)
        .map(|s| s.availability_zone)
        .collect();
    zones.sort();
    zones.dedup();
    Ok(zones)
}

/// Equality filters of the volume listing: `(parameter, column, boolean?)` (also documented
/// from here by `openapi`).
pub(in crate::api) const FILTERS: &[(&str, &str, bool)] = &[
    ("name", "display_name", false),
    ("display_name", "display_name", false),
    ("status", "status", false),
    ("availability_zone", "availability_zone", false),
    ("bootable", "bootable", true),
    ("volume_type_id", "volume_type_id", false),
    ("snapshot_id", "snapshot_id", false),
    ("source_volid", "source_volid", false),
];

async fn list_rows(
    st: &AppState,
    ctx: &RequestContext,
    project: &str,
    p: &Params,
) -> Result<Vec<VolumeRow>, ApiError> {
    let q = listing::query(ctx, project, p, FILTERS)?;
    Ok(st.rt.db.volume_list(&q).await?)
}

/// `GET /volumes`: id, name and links of each volume.
pub async fn list(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    url_project: Option<Path<String>>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let project = project_of(&ctx, url_project.as_deref().map(String::as_str))?;
    let rows = list_rows(&st, &ctx, &project, &p).await?;
    let base = base_url(&headers, &project);
    let last = rows.last().map(|v| v.id.as_str());
    let next = listing::next_link(&p, rows.len(), last, &format!("{base}/volumes"));
    let volumes: Vec<SummaryView> = rows.iter().map(|v| SummaryView::new(v, &base)).collect();
    let n = volumes.len();
    listing::page_response(
        &Page {
            volumes,
            volumes_links: next,
        },
        n,
        300,
    )
}

/// A page of a volume listing, serialised straight from the typed views.
#[derive(serde::Serialize)]
struct Page<T> {
    volumes: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volumes_links: Option<Value>,
}

/// `GET /volumes/detail`.
pub async fn detail(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    mv: Microversion,
    url_project: Option<Path<String>>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    let project = project_of(&ctx, url_project.as_deref().map(String::as_str))?;
    let rows = list_rows(&st, &ctx, &project, &p).await?;
    let base = base_url(&headers, &project);
    let viewer = Viewer {
        base: base.clone(),
        admin: ctx.is_admin,
        version: mv,
    };
    let ids: Vec<String> = rows.iter().map(|v| v.id.clone()).collect();
    let mut attached = attachments::volume_views(&st, &ids).await?;
    let last = rows.last().map(|v| v.id.as_str());
    let next = listing::next_link(&p, rows.len(), last, &format!("{base}/volumes/detail"));
    let volumes: Vec<DetailView> = rows
        .iter()
        .map(|v| {
            let a = attached
                .remove(&v.id)
                .unwrap_or_else(|| Value::Array(Vec::new()));
            DetailView::new(v, &viewer, a)
        })
        .collect();
    let n = volumes.len();
    listing::page_response(
        &Page {
            volumes,
            volumes_links: next,
        },
        n,
        1000,
    )
}

/// `GET /volumes/summary` (3.12): how many volumes, how many GiB, and their metadata.
pub async fn summary(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    url_project: Option<Path<String>>,
    Query(p): Query<Params>,
) -> Result<Json<Value>, ApiError> {
    let project = project_of(&ctx, url_project.as_deref().map(String::as_str))?;
    let mut q = listing::query(&ctx, &project, &p, FILTERS)?;
    q.limit = None;
    q.offset = None;
    q.marker = None;
    let rows = st.rt.db.volume_list(&q).await?;
    let mut metadata: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for v in &rows {
        for (k, val) in &v.metadata {
            let values = metadata.entry(k.clone()).or_default();
            if !values.contains(val) {
                values.push(val.clone());
            }
        }
    }
    Ok(Json(json!({ "volume-summary": {
        "total_size": rows.iter().map(|v| v.size).sum::<i64>(),
        "total_count": rows.len(),
        "metadata": metadata,
    }})))
}

/// A volume the caller may see: its own project's, or any for an admin; others are 404.
pub(crate) async fn visible(
    st: &AppState,
    ctx: &RequestContext,
    project: &str,
    id: &str,
) -> Result<VolumeRow, ApiError> {
    let not_found = || ApiError::NotFound(format!("Volume {id} could not be found."));
    let row = st.rt.db.volume_get(id).await.map_err(|_| not_found())?;
    if row.project_id != project && !ctx.is_admin {
        return Err(not_found());
    }
    Ok(row)
}

/// `GET /volumes/{id}`.
pub async fn show(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    mv: Microversion,
    Path(params): Path<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (url_project, id) = path_parts(&params);
    let project = project_of(&ctx, url_project)?;
    let row = visible(&st, &ctx, &project, id).await?;
    let viewer = Viewer {
        base: base_url(&headers, &project),
        admin: ctx.is_admin,
        version: mv,
    };
    Ok(Json(
        json!({ "volume": full_view(&st, &viewer, &row).await? }),
    ))
}

/// The detailed view of one volume with its attachments.
async fn full_view(st: &AppState, viewer: &Viewer, row: &VolumeRow) -> Result<Value, ApiError> {
    let attached = attachments::volume_views(st, std::slice::from_ref(&row.id))
        .await?
        .remove(&row.id)
        .unwrap_or_else(|| json!([]));
    Ok(detail_view(row, viewer, attached))
}

/// `PUT /volumes/{id}`: name, description and metadata.
pub async fn update(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    mv: Microversion,
    Path(params): Path<Vec<(String, String)>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let (url_project, id) = path_parts(&params);
    let project = project_of(&ctx, url_project)?;
    let viewer = Viewer {
        base: base_url(&headers, &project),
        admin: ctx.is_admin,
        version: mv,
    };
    visible(&st, &ctx, &project, id).await?;
    let v = match body.get("volume") {
        Some(v @ Value::Object(_)) => v,
        _ => return Err(create::bad("the body must have a 'volume' object")),
    };
    let field = |names: [&str; 2]| -> Result<Option<String>, ApiError> {
        for n in names {
            match v.get(n) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s.chars().count() <= 255 => return Ok(Some(s.clone())),
                Some(_) => {
                    return Err(create::bad(format!(
                        "'{n}' must be a string of at most 255 characters"
                    )))
                }
            }
        }
        Ok(None)
    };
    let name = field(["name", "display_name"])?;
    let description = field(["description", "display_description"])?;
    if name.is_none() && description.is_none() && v.get("metadata").is_none() {
        return Err(create::bad(
            "nothing to update: give a name, description or metadata",
        ));
    }
    st.rt
        .db
        .volume_update(id, name.as_deref(), description.as_deref())
        .await?;
    if v.get("metadata").is_some() {
        let m = create::metadata(v)?;
        st.rt
            .db
            .metadata_set(&crate::db::volumes::TABLE, id, &m, true)
            .await?;
    }
    let row = st.rt.db.volume_get(id).await?;
    Ok(Json(
        json!({ "volume": full_view(&st, &viewer, &row).await? }),
    ))
}

/// `DELETE /volumes/{id}` (`?cascade=true` deletes its snapshots too).
pub async fn delete(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(params): Path<Vec<(String, String)>>,
    Query(q): Query<Params>,
) -> Result<StatusCode, ApiError> {
    let (url_project, id) = path_parts(&params);
    let project = project_of(&ctx, url_project)?;
    let row = visible(&st, &ctx, &project, id).await?;
    let cascade = q.get("cascade").is_some_and(|v| listing::truthy(v));
    let snapshots = st.rt.db.snapshots_of_volume(id).await?;
    if !DELETABLE.contains(&row.status.as_str())
        || row.attach_status == "attached"
        || crate::db::volumes::migration_active(row.migration_status.as_deref())
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Volume status must be available or error or error_restoring or \
             error_extending or error_managing and must not be migrating, attached, belong to a \
             group, have snapshots or be disassociated from snapshots after volume transfer. \
             (volume {id} is {})",
            row.status
        )));
    }
    if let Some(group) = &row.group_id {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Volume {id} belongs to group {group}; remove it from the group or \
             delete the group with delete-volumes."
        )));
    }
    if !snapshots.is_empty() && !cascade {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Volume {id} still has {} dependent snapshots; delete them first or \
             delete with cascade=true.",
            snapshots.len()
        )));
    }
    if let Some(busy) = snapshots
        .iter()
        .find(|s| !["available", "error"].contains(&s.status.as_str()))
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: snapshot {} of volume {id} is {}; cascade deletes only available or error snapshots.",
            busy.id, busy.status
        )));
    }
    delete_row(&st, &ctx, &row, cascade).await
}

/// Move a deletable volume to `deleting` and have its volume service delete it (or remove it
/// at once when it was never placed). Shared with `os-force_delete`.
pub(crate) async fn delete_row(
    st: &AppState,
    ctx: &RequestContext,
    row: &VolumeRow,
    cascade: bool,
) -> Result<StatusCode, ApiError> {
    let id = &row.id;
    if !st
        .rt
        .db
        .volume_transition(id, &[row.status.as_str()], "deleting")
        .await?
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: volume {id} changed status while being deleted; try again"
        )));
    }
    match row.host.as_deref() {
        // Never placed: nothing on any backend (and so no snapshots).
        // Its quota goes with the row (unless a failed create already gave it back).
        None => st.rt.db.volume_destroy(id).await?,
        Some(host) => {
            let backend = host.split_once('#').map_or(host, |(b, _)| b);
            st.volume.delete_volume(ctx, backend, id, cascade).await?;
        }
    }
    Ok(StatusCode::ACCEPTED)
}

/// `(project from the URL, resource id)` of `/v3/{project_id}/volumes/{id}` or `/v3/volumes/{id}`.
pub(crate) fn path_parts(params: &[(String, String)]) -> (Option<&str>, &str) {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    (get("project_id"), get("id").unwrap_or_default())
}
