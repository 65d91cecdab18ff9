//! Quotas (`/os-quota-sets/{project}`: show with `?usage=true`, `/defaults`, update, delete
//! = back to defaults) and quota classes (`/os-quota-class-sets/{class}`: show, update), as
//! Cinder's contrib/quotas.py and quota_classes.py. Also the mapping of the enforcement
//! errors of `db::quotas` onto 413 `overLimit`.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::catalog::{
    json_body, json_bool, member, param, parse_bool, project, require_admin, Params,
};
use super::context::Ctx;
use super::error::ApiError;
use super::AppState;
use crate::db::quotas::{QuotaError, PER_VOLUME};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/os-quota-sets/{target}",
            get(show).put(update).delete(delete),
        )
        .route("/os-quota-sets/{target}/defaults", get(defaults))
        .route(
            "/os-quota-class-sets/{class}",
            get(class_show).put(class_update),
        )
}

impl From<QuotaError> for ApiError {
    fn from(e: QuotaError) -> Self {
        match e {
            QuotaError::Db(db) => db.into(),
            QuotaError::OverLimit { .. } => ApiError::OverLimit(e.to_string()),
            QuotaError::UnknownResource(_) => ApiError::BadRequest(e.to_string()),
        }
    }
}

/// Users may read their own project's quotas; admins any.
fn may_read(ctx: &Ctx, target: &str) -> Result<(), ApiError> {
    if ctx.0.is_admin || project(ctx) == target {
        Ok(())
    } else {
        require_admin(ctx)
    }
}

fn with_id(id: &str, mut limits: serde_json::Map<String, Value>) -> Value {
    limits.insert("id".into(), json!(id));
    Value::Object(limits)
}

fn to_map<T: serde::Serialize>(m: BTreeMap<String, T>) -> serde_json::Map<String, Value> {
    m.into_iter().map(|(k, v)| (k, json!(v))).collect()
}

/// Parse `quota_set` / `quota_class_set` limits: resources of `known` only (the defaults:
/// the fixed resources and the per-volume-type ones), integers (or integer strings, as
/// Cinder's `validate_integer`) from -1 up.
fn parse_limits(
    set: serde_json::Map<String, Value>,
    known: &BTreeMap<String, i64>,
) -> Result<(BTreeMap<String, i64>, bool), ApiError> {
    let mut limits = BTreeMap::new();
    let mut skip_validation = false;
    let mut bad = Vec::new();
    for (k, v) in set {
        match k.as_str() {
            "id" | "tenant_id" => continue,
            "skip_validation" => {
                skip_validation = json_bool(&v, "skip_validation")?;
                continue;
            }
            _ if !known.contains_key(&k) => {
                bad.push(k);
                continue;
            }
            _ => {}
        }
        let n = match &v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        }
        .ok_or_else(|| ApiError::BadRequest(format!("{k} must be an integer.")))?;
        if !(-1..=i64::from(i32::MAX)).contains(&n) {
            return Err(ApiError::BadRequest(format!(
                "{k} must be >= -1 and <= {}.",
                i32::MAX
            )));
        }
        limits.insert(k, n);
    }
    if !bad.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "Bad key(s) in quota set: {}",
            bad.join(", ")
        )));
    }
    Ok((limits, skip_validation))
}

pub async fn show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let target = param(&p, "target")?;
    may_read(&ctx, target)?;
    let usage = q.get("usage").is_some_and(|u| parse_bool(u) == Some(true));
    let set = if usage {
        to_map(state.rt.db.quota_get_with_usage(target).await?)
    } else {
        to_map(state.rt.db.quota_get(target).await?)
    };
    Ok(Json(json!({ "quota_set": with_id(target, set) })))
}

pub async fn defaults(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    let target = param(&p, "target")?;
    may_read(&ctx, target)?;
    let set = to_map(state.rt.db.quota_defaults().await?);
    Ok(Json(json!({ "quota_set": with_id(target, set) })))
}

pub async fn update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let target = param(&p, "target")?;
    let known = state.rt.db.quota_defaults().await?;
    let (limits, skip_validation) = parse_limits(member(json_body(&body)?, "quota_set")?, &known)?;
    if !skip_validation {
        let usage = state.rt.db.quota_get_with_usage(target).await?;
        for (k, limit) in &limits {
            if k == PER_VOLUME || *limit == -1 {
                continue;
            }
            let used = usage.get(k).map(|u| u.in_use + u.reserved).unwrap_or(0);
            if *limit < used {
                return Err(ApiError::BadRequest(format!(
                    "Quota {k} limit must be equal or greater than existing resources. Current usage is {used} and the requested limit is {limit}."
                )));
            }
        }
    }
    state.rt.db.quota_update(target, &limits).await?;
    let set = to_map(state.rt.db.quota_get(target).await?);
    Ok(Json(json!({ "quota_set": set })))
}

/// Cinder answers 200 with an empty body.
pub async fn delete(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<(), ApiError> {
    require_admin(&ctx)?;
    state.rt.db.quota_destroy(param(&p, "target")?).await?;
    Ok(())
}

pub async fn class_show(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let class = param(&p, "class")?;
    let set = to_map(state.rt.db.quota_class_get(class).await?);
    Ok(Json(json!({ "quota_class_set": with_id(class, set) })))
}

pub async fn class_update(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(p): Path<Params>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&ctx)?;
    let class = param(&p, "class")?;
    if class.is_empty() || class.len() > 255 {
        return Err(ApiError::BadRequest(
            "The quota class name must be 1 to 255 characters.".into(),
        ));
    }
    let known = state.rt.db.quota_defaults().await?;
    let (limits, _) = parse_limits(member(json_body(&body)?, "quota_class_set")?, &known)?;
    state.rt.db.quota_class_update(class, &limits).await?;
    let set = to_map(state.rt.db.quota_class_get(class).await?);
    Ok(Json(json!({ "quota_class_set": set })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::quotas::RESOURCES;

    #[test]
    fn limits_are_parsed_strictly() {
        let m = |s: &str| serde_json::from_str::<serde_json::Map<String, Value>>(s).unwrap();
        let mut known: BTreeMap<String, i64> =
            RESOURCES.iter().map(|(r, v)| (r.to_string(), *v)).collect();
        known.insert("volumes_gold".into(), -1);
        let parse_limits = |set| parse_limits(set, &known);
        let (l, skip) = parse_limits(m(r#"{"volumes": 5, "gigabytes": "20", "id": "x"}"#)).unwrap();
        assert_eq!(
            l,
            [("gigabytes".to_string(), 20), ("volumes".to_string(), 5)].into()
        );
        assert!(!skip);
        assert!(parse_limits(m(r#"{"bananas": 5}"#))
            .unwrap_err()
            .to_string()
            .contains("bananas"));
        assert!(parse_limits(m(r#"{"volumes": -2}"#)).is_err());
        assert!(parse_limits(m(r#"{"volumes": 1.5}"#)).is_err());
        assert!(parse_limits(m(r#"{"volumes": "many"}"#)).is_err());
        let (_, skip) = parse_limits(m(r#"{"skip_validation": true}"#)).unwrap();
        assert!(skip);
        let (l, _) = parse_limits(m(r#"{"volumes_gold": 3}"#)).unwrap();
        assert_eq!(
            l["volumes_gold"], 3,
            "a live type's per-type key is a resource"
        );
        assert!(parse_limits(m(r#"{"volumes_silver": 3}"#)).is_err());
    }
}
