//! Quota limits: the built-in defaults, the quota classes' and the projects' own limits, and
//! how they layer (project over class `default` over built-in).

use std::collections::BTreeMap;

use sqlx::{Any, Row, Transaction};

use super::RESOURCES;
use crate::db::now;

/// The limit on `resource`: the project's own, else the default class's, else the built-in
/// default; per-type resources are unlimited by default.
pub(super) fn limit_of(
    resource: &str,
    class: &BTreeMap<String, i64>,
    own: &BTreeMap<String, i64>,
) -> i64 {
    own.get(resource)
        .or_else(|| class.get(resource))
        .copied()
        .or_else(|| {
            RESOURCES
                .iter()
                .find(|(r, _)| *r == resource)
                .map(|(_, v)| *v)
        })
        .unwrap_or(-1)
}

/// The limits stored in `table` for `key_col = key`: a quota class's (`quota_classes`,
/// `class_name`) or a project's own (`quotas`, `project_id`).
pub(super) async fn stored_limits<'e, E>(
    ex: E,
    table: &str,
    key_col: &str,
    key: &str,
) -> Result<BTreeMap<String, i64>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let rows = sqlx::query(&format!(
        "SELECT resource, hard_limit FROM {table} WHERE {key_col} = $1"
    ))
    .bind(key)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Built-in defaults overlaid with `overrides`, for known resources only.
pub(super) fn overlay(
    base: &BTreeMap<String, i64>,
    overrides: &BTreeMap<String, i64>,
) -> BTreeMap<String, i64> {
    base.iter()
        .map(|(k, v)| (k.clone(), overrides.get(k).copied().unwrap_or(*v)))
        .collect()
}

pub(super) fn builtin() -> BTreeMap<String, i64> {
    RESOURCES.iter().map(|(r, v)| (r.to_string(), *v)).collect()
}

pub(super) async fn upsert_limits(
    tx: &mut Transaction<'_, Any>,
    table: &str,
    key_col: &str,
    key: &str,
    limits: &BTreeMap<String, i64>,
) -> Result<(), sqlx::Error> {
    let ts = now();
    for (resource, limit) in limits {
        sqlx::query(&format!(
            "INSERT INTO {table} ({key_col}, resource, hard_limit, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT ({key_col}, resource) DO UPDATE SET hard_limit = excluded.hard_limit, updated_at = $4"
        ))
        .bind(key)
        .bind(resource)
        .bind(*limit)
        .bind(&ts)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
