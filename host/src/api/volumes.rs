//! `/volumes`: create (raw, or a clone of a volume), list (summary and detail, with limit,
//! marker, name / status filters and `all_tenants`), show and delete. Creation records the
//! volume as `creating` and casts it to the scheduler; deletion casts it to the volume service
//! holding it (or removes it at once when it was never placed). Views follow Cinder's v3
//! volume view at microversion 3.0.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::context::Ctx;
use super::{ApiError, AppState};
use crate::db::volumes::{NewVolume, VolumeQuery, VolumeRow};
use crate::rpc::RequestContext;
use crate::scheduler::placement::{CreateArgs, RequestSpec};

/// Statuses a volume may be deleted from (Cinder's, without cascade).
const DELETABLE: &[&str] = &[
    "available",
    "error",
    "error_restoring",
    "error_extending",
    "error_managing",
];

#[derive(Debug, Deserialize)]
pub struct CreateBody {
    volume: Option<Value>,
    #[serde(rename = "OS-SCH-HNT:scheduler_hints", default)]
    scheduler_hints: Option<BTreeMap<String, Value>>,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(format!("Invalid input received: {}", msg.into()))
}

/// `size` as Cinder accepts it: a positive integer, or a string of one.
fn parse_size(v: Option<&Value>) -> Result<i64, ApiError> {
    let size = match v {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        None => return Err(bad("'size' is a required property")),
        _ => None,
    };
    match size {
        Some(s) if s > 0 && s <= i64::from(i32::MAX) => Ok(s),
        _ => Err(bad(format!(
            "volume size must be an integer and greater than 0, got {}",
            v.map(Value::to_string).unwrap_or_default()
        ))),
    }
}

fn opt_string(v: &Value, key: &str, max: usize) -> Result<Option<String>, ApiError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(bad(format!(
            "'{key}' is too long (at most {max} characters)"
        ))),
        Some(other) => Err(bad(format!("'{key}' must be a string, got {other}"))),
    }
}

fn metadata(v: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    match v.get("metadata") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) if !k.is_empty() && k.len() <= 255 && s.len() <= 255 => {
                    Ok((k.clone(), s.clone()))
                }
                _ => Err(bad(format!(
                    "metadata item '{k}' must be a string of at most 255 characters"
                ))),
            })
            .collect(),
        Some(_) => Err(bad("'metadata' must be an object of strings")),
    }
}

/// The project a request acts in: the URL's, which must be the caller's unless admin.
fn project_of(ctx: &RequestContext, url_project: Option<&str>) -> Result<String, ApiError> {
    let own = ctx.project_id.clone().unwrap_or_default();
    match url_project {
        Some(p) if p != own && !ctx.is_admin => Err(ApiError::Forbidden(format!(
            "Policy doesn't allow acting in project {p}."
        ))),
        Some(p) => Ok(p.to_string()),
        None => Ok(own),
    }
}

fn base_url(headers: &HeaderMap, project: &str) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/v3/{project}")
}

/// Cinder's detailed volume view.
pub fn detail_view(v: &VolumeRow, base: &str, admin: bool) -> Value {
    let mut view = json!({
        "id": v.id,
        "name": v.display_name,
        "description": v.display_description,
        "size": v.size,
        "status": v.status,
        "availability_zone": v.availability_zone,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
        "volume_type": v.volume_type_name.clone().or_else(|| v.volume_type_id.clone()),
        "snapshot_id": v.snapshot_id,
        "source_volid": v.source_volid,
        "metadata": v.metadata,
        "user_id": v.user_id,
        "bootable": if v.bootable { "true" } else { "false" },
        "encrypted": v.encrypted,
        "multiattach": v.multiattach,
        "replication_status": null,
        "consistencygroup_id": null,
        "migration_status": v.migration_status,
        "attachments": [],
        "os-vol-tenant-attr:tenant_id": v.project_id,
        "links": links(v, base),
    });
    if admin {
        view["os-vol-host-attr:host"] = json!(v.host);
        view["os-vol-mig-status-attr:migstat"] = json!(v.migration_status);
        view["os-vol-mig-status-attr:name_id"] = Value::Null;
    }
    view
}

fn links(v: &VolumeRow, base: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{base}/volumes/{}", v.id)},
        {"rel": "bookmark", "href": format!("{base}/volumes/{}", v.id).replace("/v3/", "/")},
    ])
}

/// `POST /volumes`.
pub async fn create(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    url_project: Option<Path<String>>,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let project = project_of(&ctx, url_project.as_deref().map(String::as_str))?;
    let v = body
        .volume
        .ok_or_else(|| bad("the body must have a 'volume' object"))?;
    if !v.is_object() {
        return Err(bad("'volume' must be an object"));
    }
    let mut size = parse_size(v.get("size")).ok();
    let name = opt_string(&v, "name", 255)?.or(opt_string(&v, "display_name", 255)?);
    let description =
        opt_string(&v, "description", 255)?.or(opt_string(&v, "display_description", 255)?);
    if opt_string(&v, "snapshot_id", 36)?.is_some() {
        return Err(bad(
            "creating a volume from a snapshot is not supported yet by Kiln",
        ));
    }
    let source_volid = opt_string(&v, "source_volid", 36)?;
    let config = st.rt.config();
    let mut zone = opt_string(&v, "availability_zone", 255)?;
    if let Some(src) = &source_volid {
        let source = st
            .rt
            .db
            .volume_get(src)
            .await
            .map_err(|_| ApiError::NotFound(format!("Volume {src} could not be found.")))?;
        if source.project_id != project && !ctx.is_admin {
            return Err(ApiError::NotFound(format!(
                "Volume {src} could not be found."
            )));
        }
        if !["available", "in-use"].contains(&source.status.as_str()) {
            return Err(bad(format!(
                "source volume {src} is {}; it must be available or in-use",
                source.status
            )));
        }
        let wanted = size.unwrap_or(source.size);
        if wanted < source.size {
            return Err(bad(format!(
                "size {wanted} GB is smaller than the source volume's {} GB",
                source.size
            )));
        }
        size = Some(wanted);
        zone = zone.or(Some(source.availability_zone.clone()));
    }
    let size = match size {
        Some(s) => s,
        None => parse_size(v.get("size"))?,
    };
    let zone = zone.unwrap_or_else(|| config.availability_zone.clone());
    let zones = volume_zones(&st).await?;
    if !zones.contains(&zone) {
        return Err(bad(format!(
            "Availability zone '{zone}' is invalid; zones with volume services: {}",
            zones.join(", ")
        )));
    }
    let type_ref = opt_string(&v, "volume_type", 255)?;
    let vtype = st
        .rt
        .db
        .volume_type_resolve(type_ref.as_deref())
        .await
        .map_err(|_| {
            ApiError::NotFound(format!(
                "Volume type {} could not be found.",
                type_ref.as_deref().unwrap_or("__DEFAULT__")
            ))
        })?;
    if !ctx.is_admin && !st.rt.db.volume_type_accessible(&vtype, &project).await? {
        return Err(ApiError::NotFound(format!(
            "Volume type {} could not be found.",
            vtype.name
        )));
    }
    let multiattach = v
        .get("multiattach")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let new = NewVolume {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: project.clone(),
        user_id: ctx.user_id.clone().unwrap_or_default(),
        display_name: name,
        display_description: description,
        size,
        availability_zone: zone.clone(),
        volume_type_id: Some(vtype.id.clone()),
        snapshot_id: None,
        source_volid: source_volid.clone(),
        multiattach,
        metadata: metadata(&v)?,
    };
    // Quota: reserved before the row exists, committed once it does, rolled back otherwise.
    let reservation = st
        .rt
        .db
        .quota_reserve(
            &project,
            &[
                ("volumes", 1),
                ("gigabytes", size),
                ("per_volume_gigabytes", size),
            ],
        )
        .await?;
    let row = match st.rt.db.volume_create(&new).await {
        Ok(row) => row,
        Err(e) => {
            let _ = st.rt.db.quota_rollback(&reservation).await;
            return Err(e.into());
        }
    };
    st.rt.db.quota_commit(&reservation).await?;
    let args = CreateArgs {
        request_spec: RequestSpec {
            volume_id: row.id.clone(),
            project_id: project.clone(),
            size: size as u64,
            operation: "create".into(),
            availability_zones: vec![zone],
            scheduler_hints: body.scheduler_hints.unwrap_or_default(),
            metadata: row.metadata.clone(),
            multiattach,
            source_volid,
            volume_type: Some(crate::scheduler::placement::TypeSpec {
                id: vtype.id.clone(),
                name: vtype.name.clone(),
                extra_specs: vtype.extra_specs.clone(),
            }),
            ..Default::default()
        },
        retry: Default::default(),
    };
    if let Err(e) = st.scheduler.create_volume(&ctx, &args).await {
        // Nothing will place it: say so on the volume instead of leaving it `creating`.
        let _ = st.rt.db.volume_set_status(&row.id, "error").await;
        return Err(ApiError::Unavailable(format!(
            "the scheduler could not be reached ({e}); volume {} is in error",
            row.id
        )));
    }
    let base = base_url(&headers, &project);
    // Cinder's create answer is the detail view without the extension attributes (tenant,
    // host, migration), which only show and list add; Tempest's schema refuses them here.
    let mut view = detail_view(&row, &base, ctx.is_admin);
    if let Some(m) = view.as_object_mut() {
        m.retain(|k, _| !k.starts_with("os-vol-"));
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "volume": view }))))
}

/// Zones of the volume services (any state): the zones a volume may ask for.
async fn volume_zones(st: &AppState) -> Result<Vec<String>, ApiError> {
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

#[derive(Debug, Deserialize, Default)]
pub struct ListParams {
    limit: Option<String>,
    marker: Option<String>,
    name: Option<String>,
    status: Option<String>,
    all_tenants: Option<String>,
}

fn truthy(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| {
        matches!(
            s.to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on" | ""
        )
    })
}

async fn list_rows(
    st: &AppState,
    ctx: &RequestContext,
    project: &str,
    p: &ListParams,
) -> Result<Vec<VolumeRow>, ApiError> {
    let limit = match &p.limit {
        Some(l) => Some(
            l.parse::<i64>()
                .ok()
                .filter(|l| *l >= 0)
                .ok_or_else(|| bad(format!("limit must be a non-negative integer, got '{l}'")))?,
        ),
        None => None,
    };
    if let Some(m) = &p.marker {
        st.rt
            .db
            .volume_get(m)
            .await
            .map_err(|_| ApiError::BadRequest(format!("Marker {m} could not be found.")))?;
    }
    let q = VolumeQuery {
        project_id: if truthy(&p.all_tenants) && ctx.is_admin {
            None
        } else {
            Some(project.to_string())
        },
        name: p.name.clone(),
        status: p.status.clone(),
        limit,
        marker: p.marker.clone(),
    };
    Ok(st.rt.db.volume_list(&q).await?)
}

fn next_link(rows: &[VolumeRow], p: &ListParams, base: &str, path: &str) -> Option<Value> {
    let limit: usize = p.limit.as_deref()?.parse().ok()?;
    if limit == 0 || rows.len() < limit {
        return None;
    }
    let last = rows.last()?;
    Some(
        json!([{ "rel": "next", "href": format!("{base}/{path}?limit={limit}&marker={}", last.id) }]),
    )
}

/// `GET /volumes`: id, name and links of each volume.
pub async fn list(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    url_project: Option<Path<String>>,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let project = project_of(&ctx, url_project.as_deref().map(String::as_str))?;
    let rows = list_rows(&st, &ctx, &project, &p).await?;
    let base = base_url(&headers, &project);
    let volumes: Vec<Value> = rows
        .iter()
        .map(|v| json!({ "id": v.id, "name": v.display_name, "links": links(v, &base) }))
        .collect();
    let mut body = json!({ "volumes": volumes });
    if let Some(next) = next_link(&rows, &p, &base, "volumes") {
        body["volumes_links"] = next;
    }
    Ok(Json(body))
}

/// `GET /volumes/detail`.
pub async fn detail(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    url_project: Option<Path<String>>,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let project = project_of(&ctx, url_project.as_deref().map(String::as_str))?;
    let rows = list_rows(&st, &ctx, &project, &p).await?;
    let base = base_url(&headers, &project);
    let volumes: Vec<Value> = rows
        .iter()
        .map(|v| detail_view(v, &base, ctx.is_admin))
        .collect();
    let mut body = json!({ "volumes": volumes });
    if let Some(next) = next_link(&rows, &p, &base, "volumes/detail") {
        body["volumes_links"] = next;
    }
    Ok(Json(body))
}

/// A volume the caller may see: its own project's, or any for an admin; others are 404.
async fn visible(
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
    Path(params): Path<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (url_project, id) = path_parts(&params);
    let project = project_of(&ctx, url_project)?;
    let row = visible(&st, &ctx, &project, id).await?;
    let base = base_url(&headers, &project);
    Ok(Json(
        json!({ "volume": detail_view(&row, &base, ctx.is_admin) }),
    ))
}

/// `DELETE /volumes/{id}`.
pub async fn delete(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(params): Path<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let (url_project, id) = path_parts(&params);
    let project = project_of(&ctx, url_project)?;
    let row = visible(&st, &ctx, &project, id).await?;
    if !DELETABLE.contains(&row.status.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: Volume status must be available or error or error_restoring or \
             error_extending or error_managing and must not be migrating, attached, belong to a \
             group, have snapshots or be disassociated from snapshots after volume transfer. \
             (volume {id} is {})",
            row.status
        )));
    }
    if !st
        .rt
        .db
        .volume_transition(id, DELETABLE, "deleting")
        .await?
    {
        return Err(ApiError::BadRequest(format!(
            "Invalid volume: volume {id} changed status while being deleted; try again"
        )));
    }
    match row.host.as_deref() {
        // Never placed: nothing on any backend.
        None => {
            st.rt.db.volume_destroy(id).await?;
            st.rt
                .db
                .quota_release(&row.project_id, &[("volumes", 1), ("gigabytes", row.size)])
                .await?;
        }
        Some(host) => {
            let backend = host.split_once('#').map_or(host, |(b, _)| b);
            st.volume.delete_volume(&ctx, backend, id).await?;
        }
    }
    Ok(StatusCode::ACCEPTED)
}

/// `(project from the URL, resource id)` of `/v3/{project_id}/volumes/{id}` or `/v3/volumes/{id}`.
fn path_parts(params: &[(String, String)]) -> (Option<&str>, &str) {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    (get("project_id"), get("id").unwrap_or_default())
}
