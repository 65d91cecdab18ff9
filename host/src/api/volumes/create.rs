//! `POST /volumes`: validate the request (size, name, zone, type, metadata; a source volume
//! or snapshot the caller may see, in a usable state, no larger than the new volume; a group
//! (3.13) that is available and holds the type), reserve quota, record the volume as
//! `creating` and cast it to the scheduler (a group's volume bound to the group's backend).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::project_of;
use super::view::{base_url, DetailView};
use crate::api::context::Ctx;
use crate::api::{ApiError, AppState};
use crate::db::quotas::with_type;
use crate::db::volumes::NewVolume;
use crate::scheduler::placement::{CreateArgs, RequestSpec};

#[derive(Debug, Deserialize)]
pub struct CreateBody {
    volume: Option<Value>,
    #[serde(rename = "OS-SCH-HNT:scheduler_hints", default)]
    scheduler_hints: Option<BTreeMap<String, Value>>,
}

pub(super) fn bad(msg: impl Into<String>) -> ApiError {
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

pub(super) fn metadata(v: &Value) -> Result<BTreeMap<String, String>, ApiError> {
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

/// `POST /volumes`.
pub async fn create(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    mv: crate::api::Microversion,
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
    let snapshot_id = opt_string(&v, "snapshot_id", 36)?;
    let mut source_volid = opt_string(&v, "source_volid", 36)?;
    let config = st.rt.config();
    let mut zone = opt_string(&v, "availability_zone", 255)?;
    let mut source_type: Option<String> = None;
    if let Some(snap) = &snapshot_id {
        let not_found = || ApiError::NotFound(format!("Snapshot {snap} could not be found."));
        let s = st.rt.db.snapshot_get(snap).await.map_err(|_| not_found())?;
        if s.project_id != project && !ctx.is_admin {
            return Err(not_found());
        }
        if s.status != "available" {
            return Err(bad(format!(
                "Invalid snapshot: Originating snapshot status must be one of 'available' values (snapshot {snap} is {})",
                s.status
            )));
        }
        let wanted = size.unwrap_or(s.volume_size);
        if wanted < s.volume_size {
            return Err(bad(format!(
                "Volume size '{wanted}'GB cannot be smaller than the snapshot size {}GB. They must be >= original snapshot size.",
                s.volume_size
            )));
        }
        size = Some(wanted);
        source_type = s.volume_type_id.clone();
        // Made by the backend holding the snapshot: the source volume's zone.
        let origin = st.rt.db.volume_get(&s.volume_id).await?;
        zone = zone.or(Some(origin.availability_zone));
        source_volid = None;
    }
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
        source_type = source.volume_type_id.clone();
    }
    let size = match size {
        Some(s) => s,
        None => parse_size(v.get("size"))?,
    };
    // A volume of a group is in the group's zone unless it says otherwise (then refused).
    let group_zone = match opt_string(&v, "group_id", 36)? {
        Some(gid) => st
            .rt
            .db
            .group_get(&gid)
            .await
            .ok()
            .map(|g| g.availability_zone),
        None => None,
    };
    let zone = zone
        .or(group_zone)
        .unwrap_or_else(|| config.availability_zone.clone());
    crate::api::zones::check(&st, &zone).await?;
    // Without a type, a volume made from a snapshot or a volume keeps the source's type.
    let type_ref = opt_string(&v, "volume_type", 255)?.or(source_type);
    let vtype = st
        .rt
        .db
        .volume_type_resolve(&project, type_ref.as_deref())
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
    let group = match opt_string(&v, "group_id", 36)? {
        None => None,
        Some(gid) => {
            let not_found = || ApiError::NotFound(format!("Group {gid} could not be found."));
            let g = st.rt.db.group_get(&gid).await.map_err(|_| not_found())?;
            if g.project_id != project && !ctx.is_admin {
                return Err(not_found());
            }
            if g.status != "available" {
                return Err(ApiError::BadRequest(format!(
                    "Invalid group: Group {gid} status must be available, but current status is: {}.",
                    g.status
                )));
            }
            if !g.volume_type_ids.contains(&vtype.id) {
                return Err(bad(format!(
                    "Invalid volume_type provided: {} (requested type must be supported by this group).",
                    vtype.name
                )));
            }
            if zone != g.availability_zone {
                return Err(bad(format!(
                    "availability zone '{zone}' differs from the group's '{}'",
                    g.availability_zone
                )));
            }
            Some(g)
        }
    };
    let encrypted = st.rt.db.encryption_get(&vtype.id).await?.is_some();
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
        snapshot_id: snapshot_id.clone(),
        source_volid: source_volid.clone(),
        group_id: group.as_ref().map(|g| g.id.clone()),
        multiattach,
        encrypted,
        metadata: metadata(&v)?,
    };
    // Quota: checked and counted in the transaction that inserts the row.
    let mut row = st
        .rt
        .db
        .volume_create_charged(
            &new,
            &with_type(
                &[
                    ("volumes", 1),
                    ("gigabytes", size),
                    ("per_volume_gigabytes", size),
                ],
                Some(&vtype.name),
            ),
        )
        .await?;
    row.volume_type_name = Some(vtype.name.clone());
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
            snapshot_id,
            source_volid,
            group_backend: group.as_ref().and_then(|g| g.host.clone()),
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
        return Err(scheduler_unreachable(&st, &ctx, &row.id, &project, &e.to_string()).await);
    }
    let base = base_url(&headers, &project);
    let viewer = super::view::Viewer {
        base,
        admin: ctx.is_admin,
        version: mv,
    };
    let view = DetailView::new(&row, &viewer, json!([])).without_extension_attributes();
    Ok((StatusCode::ACCEPTED, Json(json!({ "volume": view }))))
}

/// The create could not be cast to the scheduler, so nothing will place the volume: it goes
/// to `error` (its quota given back, as for any failed create) with a user message saying why,
/// instead of staying `creating`; the caller answers 503.
pub(crate) async fn scheduler_unreachable(
    st: &AppState,
    ctx: &crate::rpc::RequestContext,
    volume_id: &str,
    project_id: &str,
    e: &str,
) -> ApiError {
    let why = format!("the scheduler could not be reached ({e}); volume {volume_id} is in error");
    tracing::warn!(volume_id, reason = %why, "volume create not scheduled");
    if let Ok(true) = st.rt.db.volume_create_failed(volume_id).await {
        let _ = st
            .rt
            .db
            .user_message_create(&crate::db::user_messages::NewMessage {
                project_id,
                request_id: Some(&ctx.request_id),
                resource_type: Some("VOLUME"),
                resource_uuid: Some(volume_id),
                action_id: "001",
                detail_id: "001",
                detail: Some(&why),
            })
            .await;
    }
    ApiError::Unavailable(why)
}
