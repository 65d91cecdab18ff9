//! Kiln's admin API for scheduler plugins (no Cinder equivalent), under the v3 root:
//! - `POST /kiln-plugins?name=N&kind=filter|weigher` (body: the component's bytes) stores a
//!   component content-addressed and validates it — right world, and a trial request through a
//!   one-stage chain over a scheduler's live pools; a component that fails is not kept;
//!   `kind=driver`: a volume driver for hot swap (`backend_drivers.rs`);
//! - `GET /kiln-plugins`;
//! - `POST /kiln-chains` (`{"chain": ChainSpec}`) validates and records a chain version;
//!   `GET /kiln-chains` lists versions and the active one;
//! - `POST /kiln-chains/{version}/activate`, `POST /kiln-chains/rollback`: the database is the
//!   source of truth, then a fanout makes every scheduler switch;
//! - `POST /kiln-scheduler/dry-run` (`{"volume": {...}}`): where a request would go, and why;
//! - `GET /kiln-scheduler/pools`: one scheduler's pools as its plugins see them (the WIT
//!   `pool` records, `plugin_author::pool_file`), for `kiln plugin record`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::context::Ctx;
use super::{ApiError, AppState};
use crate::rpc::{RequestContext, RpcError};
use crate::scheduler::chains::{ChainSpec, StageSpec};
use crate::scheduler::placement::{RequestSpec, TypeSpec};

fn admin(ctx: &RequestContext) -> Result<(), ApiError> {
    super::policy::authorize_admin(ctx, "kiln:plugins")
}

/// A scheduler's refusal is the client's problem (400); anything else is ours.
fn from_rpc(e: RpcError) -> ApiError {
    match e {
        RpcError::Remote(r) if r.kind == "BadRequest" => ApiError::BadRequest(r.message),
        other => other.into(),
    }
}

#[derive(Debug, Deserialize)]
pub struct UploadParams {
    name: Option<String>,
    kind: Option<String>,
}

/// `POST /kiln-plugins`.
pub async fn upload(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Query(p): Query<UploadParams>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    admin(&ctx)?;
    let kind = p.kind.unwrap_or_default();
    if kind != "filter" && kind != "weigher" && kind != "driver" {
        return Err(ApiError::BadRequest(format!(
            "query parameter kind must be `filter`, `weigher` or `driver`, got `{kind}`"
        )));
    }
    let name = p
        .name
        .filter(|n| !n.is_empty() && n.len() <= 255)
        .ok_or_else(|| {
            ApiError::BadRequest("query parameter name is required (at most 255 characters)".into())
        })?;
    if !body.starts_with(b"\0asm") {
        return Err(ApiError::BadRequest(
            "the body must be a WebAssembly component (application/wasm)".into(),
        ));
    }
    if kind == "driver" {
        return super::backend_drivers::upload_driver(&st, name, body).await;
    }
    let sha = crate::plugins::engine::content_hash(&body);
    let known = st
        .rt
        .db
        .component_list()
        .await?
        .iter()
        .any(|c| c.sha256 == sha);
    st.rt.db.component_put(&sha, &name, &kind, &body).await?;
    let stage = StageSpec {
        plugin: format!("sha256:{sha}"),
        multiplier: 1.0,
        config: Default::default(),
        limits: Default::default(),
        on_failure: None,
    };
    let spec = ChainSpec {
        name: format!("validate {name}"),
        filters: if kind == "filter" {
            vec![stage.clone()]
        } else {
            vec![]
        },
        weighers: if kind == "weigher" {
            vec![stage]
        } else {
            vec![]
        },
    };
    match st.scheduler.validate_chain(&ctx, &spec).await {
        Ok(validation) => Ok((
            StatusCode::CREATED,
            Json(json!({ "plugin": {
                "sha256": sha, "name": name, "kind": kind, "size": body.len(),
                "validation": validation,
            }})),
        )),
        Err(e) => {
            if !known {
                st.rt.db.component_delete(&sha).await?;
            }
            Err(from_rpc(e))
        }
    }
}

/// `GET /kiln-plugins`.
pub async fn list(State(st): State<AppState>, Ctx(ctx): Ctx) -> Result<Json<Value>, ApiError> {
    admin(&ctx)?;
    Ok(Json(json!({ "plugins": st.rt.db.component_list().await? })))
}

#[derive(Debug, Deserialize)]
pub struct ChainBody {
    chain: ChainSpec,
}

/// `POST /kiln-chains`.
pub async fn create_chain(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Json(body): Json<ChainBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    admin(&ctx)?;
    let spec = body.chain;
    if spec.name.is_empty() || spec.filters.is_empty() && spec.weighers.is_empty() {
        return Err(ApiError::BadRequest(
            "a chain needs a name and at least one stage".into(),
        ));
    }
    let validation = st
        .scheduler
        .validate_chain(&ctx, &spec)
        .await
        .map_err(from_rpc)?;
    let definition = serde_json::to_string(&spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    let version = st.rt.db.chain_create(&spec.name, &definition).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "chain": { "version": version, "name": spec.name, "validation": validation } }),
        ),
    ))
}

/// `GET /kiln-chains`.
pub async fn list_chains(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<Value>, ApiError> {
    admin(&ctx)?;
    let active = st.rt.db.chain_activations().await?.first().copied();
    let chains: Vec<Value> = st
        .rt
        .db
        .chain_list()
        .await?
        .into_iter()
        .map(|c| {
            json!({
                "version": c.version,
                "name": c.name,
                "created_at": c.created_at,
                "active": Some(c.version) == active,
                "definition": serde_json::from_str::<Value>(&c.definition).unwrap_or(Value::Null),
            })
        })
        .collect();
    let preset = st.rt.config().scheduler.chain.clone();
    Ok(Json(
        json!({ "chains": chains, "active_version": active, "configured_preset": preset }),
    ))
}

/// Validate `version` on a scheduler, record it active, tell every scheduler.
async fn activate(
    st: &AppState,
    ctx: &RequestContext,
    version: i64,
) -> Result<Json<Value>, ApiError> {
    let row = st.rt.db.chain_get(version).await?;
    let spec: ChainSpec = serde_json::from_str(&row.definition)
        .map_err(|e| ApiError::Internal(format!("stored chain {version} is unreadable: {e}")))?;
    // A failed validation leaves the live chain untouched: nothing is recorded.
    st.scheduler
        .validate_chain(ctx, &spec)
        .await
        .map_err(from_rpc)?;
    st.rt.db.chain_activate(version).await?;
    st.scheduler.activate_chain(ctx).await?;
    tracing::info!(version, name = %row.name, "scheduler chain activated");
    Ok(Json(json!({ "active_version": version, "name": row.name })))
}

/// `POST /kiln-chains/{version}/activate`.
pub async fn activate_chain(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(params): Path<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    admin(&ctx)?;
    let raw = params
        .iter()
        .find(|(k, _)| k == "version")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let version: i64 = raw.parse().map_err(|_| {
        ApiError::BadRequest(format!("chain version must be a number, got `{raw}`"))
    })?;
    activate(&st, &ctx, version).await
}

/// `POST /kiln-chains/rollback`: activate the chain active before the current one.
pub async fn rollback(State(st): State<AppState>, Ctx(ctx): Ctx) -> Result<Json<Value>, ApiError> {
    admin(&ctx)?;
    let history = st.rt.db.chain_activations().await?;
    let current = history.first().copied();
    let previous = history
        .iter()
        .copied()
        .find(|v| Some(*v) != current)
        .ok_or_else(|| ApiError::BadRequest("there is no earlier chain to roll back to".into()))?;
    activate(&st, &ctx, previous).await
}

#[derive(Debug, Deserialize)]
pub struct DryRunBody {
    volume: Value,
    #[serde(rename = "OS-SCH-HNT:scheduler_hints", default)]
    scheduler_hints: Option<std::collections::BTreeMap<String, Value>>,
}

/// `POST /kiln-scheduler/dry-run`.
pub async fn dry_run(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Json(body): Json<DryRunBody>,
) -> Result<Json<Value>, ApiError> {
    admin(&ctx)?;
    let v = &body.volume;
    let size = v["size"].as_u64().filter(|s| *s > 0).ok_or_else(|| {
        ApiError::BadRequest("volume.size must be an integer greater than 0".into())
    })?;
    let extra_specs = match v.get("extra_specs") {
        Some(Value::Object(m)) => Some(
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect(),
        ),
        _ => None,
    };
    let spec = RequestSpec {
        volume_id: uuid::Uuid::new_v4().to_string(),
        project_id: ctx.project_id.clone().unwrap_or_default(),
        size,
        operation: v["operation"].as_str().unwrap_or("create").to_string(),
        new_size: v["new_size"].as_u64(),
        volume_type: extra_specs.map(|extra_specs| TypeSpec {
            id: "dry-run".into(),
            name: "dry-run".into(),
            extra_specs,
        }),
        availability_zones: v["availability_zone"]
            .as_str()
            .map(|z| vec![z.to_string()])
            .unwrap_or_default(),
        scheduler_hints: body.scheduler_hints.unwrap_or_default(),
        multiattach: v["multiattach"].as_bool().unwrap_or(false),
        ..Default::default()
    };
    let result = st.scheduler.dry_run(&ctx, &spec).await.map_err(from_rpc)?;
    Ok(Json(json!({ "dry_run": result })))
}

/// `POST /kiln-chains/{version}/shadow`: run chain `version` beside the live one on every
/// scheduler, counting the placements where they would differ.
pub async fn start_shadow(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(params): Path<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    admin(&ctx)?;
    let raw = params
        .iter()
        .find(|(k, _)| k == "version")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let version: i64 = raw.parse().map_err(|_| {
        ApiError::BadRequest(format!("chain version must be a number, got `{raw}`"))
    })?;
    let row = st.rt.db.chain_get(version).await?;
    let spec: ChainSpec = serde_json::from_str(&row.definition)
        .map_err(|e| ApiError::Internal(format!("stored chain {version} is unreadable: {e}")))?;
    st.scheduler
        .validate_chain(&ctx, &spec)
        .await
        .map_err(from_rpc)?;
    st.scheduler.shadow_chain(&ctx, Some(version)).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `DELETE /kiln-chains/shadow`: stop shadow mode everywhere.
pub async fn stop_shadow(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<StatusCode, ApiError> {
    admin(&ctx)?;
    st.scheduler.shadow_chain(&ctx, None).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `GET /kiln-chains/shadow`: one scheduler's report (each scheduler compares the placements
/// it makes itself).
pub async fn shadow_report(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<Value>, ApiError> {
    admin(&ctx)?;
    let report = st.scheduler.shadow_report(&ctx).await.map_err(from_rpc)?;
    Ok(Json(json!({ "shadow": report })))
}

/// `GET /kiln-scheduler/pools`.
pub async fn scheduler_pools(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<crate::plugin_author::pool_file::PoolFile>, ApiError> {
    admin(&ctx)?;
    Ok(Json(
        st.scheduler.plugin_pools(&ctx).await.map_err(from_rpc)?,
    ))
}
