//! Quotas: limits (`quotas` per project, `quota_classes` per class, the class `default`
//! overriding the built-in defaults like Cinder's `use_default_quota_class`; `limits.rs`),
//! usage (`quota_usages`: `in_use` + `reserved`) and reservations (`reservations`), for the
//! fixed resources and Cinder's per-volume-type ones (`per_type.rs`).
//!
//! The enforcement protocol the volume code follows, as in Cinder:
//! [`Db::quota_reserve`] checks and reserves (one transaction), then on success of the work
//! [`Db::quota_commit`] moves the reservation into `in_use`, or [`Db::quota_rollback`]
//! drops it; deleting a resource calls [`Db::quota_release`]. Commit and rollback delete the
//! reservation rows first and apply only what they deleted, so they are idempotent and a
//! commit racing a rollback applies once. Two API processes are safe: on PostgreSQL the
//! usage rows are locked with `SELECT … FOR UPDATE` (in resource order, so no deadlock); on
//! SQLite the transaction's first statement is a write, so it holds the database write lock
//! before it reads anything.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use super::{format_time, now, Db, DbError, Engine};

mod error;
mod limits;
mod per_type;
pub use error::QuotaError;
use limits::{builtin, limit_of, overlay, stored_limits, upsert_limits};
use per_type::builtin_with_types;
pub(crate) use per_type::{move_type_usage, rename_type_resources};
pub use per_type::{per_type_base, type_resource, with_type, PER_TYPE};

/// Resources and Cinder's default limits (`-1`: unlimited).
pub const RESOURCES: [(&str, i64); 7] = [
    ("volumes", 10),
    ("snapshots", 10),
    ("gigabytes", 1000),
    ("backups", 10),
    ("backup_gigabytes", 1000),
    ("per_volume_gigabytes", -1),
    ("groups", 10),
];

/// `per_volume_gigabytes` limits one resource's size; it has no usage.
pub const PER_VOLUME: &str = "per_volume_gigabytes";

/// The quota class whose limits replace the built-in defaults.
pub const DEFAULT_CLASS: &str = "default";

/// How long an uncommitted reservation lives (Cinder's `reservation_expire`).
pub const RESERVATION_EXPIRE: time::Duration = time::Duration::days(1);

pub fn is_resource(name: &str) -> bool {
    RESOURCES.iter().any(|(r, _)| *r == name)
}

/// A resource a charge or release may name: a built-in one or a per-type one.
fn is_chargeable(name: &str) -> bool {
    is_resource(name) || per_type_base(name).is_some()
}

/// `deltas` by resource in name order, a resource named twice counted once: deltas add up,
/// except `per_volume_gigabytes` (a size, not an amount), where the largest counts.
fn merged<S: AsRef<str>>(deltas: &[(S, i64)]) -> Vec<(&str, i64)> {
    let mut by: BTreeMap<&str, i64> = BTreeMap::new();
    for (r, d) in deltas {
        let r = r.as_ref();
        by.entry(r)
            .and_modify(|v| {
                *v = if r == PER_VOLUME {
                    (*v).max(*d)
                } else {
                    *v + d
                }
            })
            .or_insert(*d);
    }
    by.into_iter().collect()
}

/// One resource of a project: its limit and usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuotaUsage {
    pub limit: i64,
    pub in_use: i64,
    pub reserved: i64,
}

/// How [`Db::quota_charge`] holds what it checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Reservations, committed or rolled back once the work is done.
    Reserve,
    /// Straight into `in_use`: the work commits in the same transaction.
    Consume,
}

/// What [`Db::quota_reserve`] holds until commit or rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub project_id: String,
    pub items: Vec<ReservationItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationItem {
    pub id: String,
    pub resource: String,
    pub delta: i64,
}

/// Drop the project's expired reservations (a crashed API never committed them); returns
/// how many.
async fn expire_reservations(
    tx: &mut Transaction<'_, Any>,
    project: &str,
) -> Result<usize, sqlx::Error> {
    let expired = sqlx::query("SELECT id FROM reservations WHERE project_id = $1 AND expire < $2")
        .bind(project)
        .bind(now())
        .fetch_all(&mut **tx)
        .await?;
    for r in &expired {
        let id: String = r.try_get(0)?;
        unreserve(tx, &id, false).await?;
    }
    Ok(expired.len())
}

/// Create the project's usage rows of `resources` that do not exist yet, in one statement.
async fn ensure_usage_rows(
    tx: &mut Transaction<'_, Any>,
    project: &str,
    resources: &[&str],
    ts: &str,
) -> Result<(), sqlx::Error> {
    if resources.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..resources.len())
        .map(|i| format!("($1, ${}, 0, 0, $2)", i + 3))
        .collect();
    let sql = format!(
        "INSERT INTO quota_usages (project_id, resource, in_use, reserved, created_at) \
         VALUES {} ON CONFLICT (project_id, resource) DO NOTHING",
        rows.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(project).bind(ts);
    for r in resources {
        q = q.bind(*r);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Add each `(resource, delta)` to the project's `in_use` (never below 0), in one statement.
async fn consume(
    tx: &mut Transaction<'_, Any>,
    project: &str,
    deltas: &[(&str, i64)],
    ts: &str,
) -> Result<(), sqlx::Error> {
    let whens: Vec<String> = (0..deltas.len())
        .map(|i| format!("WHEN ${} THEN ${}", 2 * i + 3, 2 * i + 4))
        .collect();
    let names: Vec<String> = (0..deltas.len())
        .map(|i| format!("${}", 2 * i + 3))
        .collect();
    let delta = format!("(CASE resource {} END)", whens.join(" "));
    let sql = format!(
        "UPDATE quota_usages SET in_use = CASE WHEN in_use + {delta} < 0 THEN 0 \
         ELSE in_use + {delta} END, updated_at = $1 \
         WHERE project_id = $2 AND resource IN ({})",
        names.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(ts).bind(project);
    for (resource, d) in deltas {
        q = q.bind(*resource).bind(*d);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Delete reservation `id` and, when it was still there, move its delta out of `reserved`
/// (and into `in_use` when `commit`). Returns whether it was applied.
async fn unreserve(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    commit: bool,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT project_id, resource, delta FROM reservations WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(false) };
    let done = sqlx::query("DELETE FROM reservations WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let (project, resource, delta): (String, String, i64) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let held = delta.max(0); // only positive deltas were reserved
    let in_use_delta = if commit { delta } else { 0 };
    sqlx::query(
        "UPDATE quota_usages SET \
         reserved = CASE WHEN reserved - $1 < 0 THEN 0 ELSE reserved - $1 END, \
         in_use = CASE WHEN in_use + $2 < 0 THEN 0 ELSE in_use + $2 END, updated_at = $3 \
         WHERE project_id = $4 AND resource = $5",
    )
    .bind(held)
    .bind(in_use_delta)
    .bind(now())
    .bind(&project)
    .bind(&resource)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

/// What a charge is checked against: the default class's and the project's limits, and the
/// project's usage (`in_use`, `reserved`) of the charged resources.
struct ChargeState {
    class: BTreeMap<String, i64>,
    own: BTreeMap<String, i64>,
    usage: BTreeMap<String, (i64, i64)>,
}

/// Read the [`ChargeState`] of `project` for the `counted` resources in one statement. On
/// PostgreSQL the usage rows are first locked `FOR UPDATE` in resource order by a statement of
/// their own (a `UNION` cannot lock), so concurrent charges queue instead of both passing.
async fn charge_state(
    tx: &mut Transaction<'_, Any>,
    engine: Engine,
    project: &str,
    counted: &[&str],
) -> Result<ChargeState, sqlx::Error> {
    let params = |first: usize| -> String {
        (0..counted.len())
            .map(|i| format!("${}", i + first))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if engine == Engine::Postgres && !counted.is_empty() {
        let sql = format!(
            "SELECT resource FROM quota_usages WHERE project_id = $1 AND resource IN ({}) \
             ORDER BY resource FOR UPDATE",
            params(2)
        );
        let mut q = sqlx::query(&sql).bind(project);
        for r in counted {
            q = q.bind(*r);
        }
        q.fetch_all(&mut **tx).await?;
    }
    let mut sql = String::from(
        "SELECT CAST(0 AS BIGINT), resource, hard_limit, CAST(0 AS BIGINT) FROM quota_classes \
         WHERE class_name = $1 UNION ALL \
         SELECT CAST(1 AS BIGINT), resource, hard_limit, CAST(0 AS BIGINT) FROM quotas \
         WHERE project_id = $2",
    );
    if !counted.is_empty() {
        sql.push_str(&format!(
            " UNION ALL SELECT CAST(2 AS BIGINT), resource, in_use, reserved FROM quota_usages \
             WHERE project_id = $2 AND resource IN ({})",
            params(3)
        ));
    }
    let mut q = sqlx::query(&sql).bind(DEFAULT_CLASS).bind(project);
    for r in counted {
        q = q.bind(*r);
    }
    let mut state = ChargeState {
        class: BTreeMap::new(),
        own: BTreeMap::new(),
        usage: BTreeMap::new(),
    };
    for row in q.fetch_all(&mut **tx).await? {
        let (source, resource): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
        let (a, b): (i64, i64) = (row.try_get(2)?, row.try_get(3)?);
        match source {
            0 => {
                state.class.insert(resource, a);
            }
            1 => {
                state.own.insert(resource, a);
            }
            _ => {
                state.usage.insert(resource, (a, b));
            }
        }
    }
    Ok(state)
}

/// Refuse `sorted` (merged deltas) when one passes its limit: a positive delta when
/// `in_use + reserved + delta` would pass a limit other than -1; `per_volume_gigabytes` when
/// the size itself does.
fn check(sorted: &[(&str, i64)], state: &ChargeState) -> Result<(), QuotaError> {
    for (resource, delta) in sorted {
        let limit = limit_of(resource, &state.class, &state.own);
        if *resource == PER_VOLUME {
            if limit >= 0 && *delta > limit {
                return Err(QuotaError::OverLimit {
                    resource: PER_VOLUME.into(),
                    requested: *delta,
                    used: 0,
                    limit,
                });
            }
            continue;
        }
        let (in_use, reserved) = *state.usage.get(*resource).ok_or_else(|| {
            DbError::Query(sqlx::Error::RowNotFound) // inserted by the charge's first statement
        })?;
        let used = in_use + reserved;
        if limit >= 0 && *delta > 0 && used + delta > limit {
            return Err(QuotaError::OverLimit {
                resource: resource.to_string(),
                requested: *delta,
                used,
                limit,
            });
        }
    }
    Ok(())
}

/// Subtract `amounts` (positive) from the project's `in_use` inside `tx`, never below zero:
/// [`Db::quota_release`] for work that must release in its own transaction (a volume's row
/// and its count change together).
pub(crate) async fn release_in<S: AsRef<str>>(
    tx: &mut Transaction<'_, Any>,
    project: &str,
    amounts: &[(S, i64)],
) -> Result<(), sqlx::Error> {
    let negated: Vec<(&str, i64)> = merged(amounts)
        .into_iter()
        .filter(|(r, _)| *r != PER_VOLUME)
        .map(|(r, a)| (r, -a))
        .collect();
    if negated.is_empty() {
        return Ok(());
    }
    consume(tx, project, &negated, &now()).await
}

impl Db {
    /// The default limits: built-in (with the per-volume-type resources), overridden by the
    /// quota class `default`. Its keys are every resource a quota set may name.
    pub async fn quota_defaults(&self) -> Result<BTreeMap<String, i64>, DbError> {
        Ok(overlay(
            &builtin_with_types(self.reader()).await?,
            &stored_limits(self.reader(), "quota_classes", "class_name", DEFAULT_CLASS).await?,
        ))
    }

    /// The limits of quota class `class` (the defaults where the class sets none).
    pub async fn quota_class_get(&self, class: &str) -> Result<BTreeMap<String, i64>, DbError> {
        let defaults = self.quota_defaults().await?;
        Ok(overlay(
            &defaults,
            &stored_limits(self.reader(), "quota_classes", "class_name", class).await?,
        ))
    }

    pub async fn quota_class_update(
        &self,
        class: &str,
        limits: &BTreeMap<String, i64>,
    ) -> Result<(), DbError> {
        let mut tx = self.writer().begin().await?;
        upsert_limits(&mut tx, "quota_classes", "class_name", class, limits).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A project's limits (its own where set, else the defaults).
    pub async fn quota_get(&self, project: &str) -> Result<BTreeMap<String, i64>, DbError> {
        let defaults = self.quota_defaults().await?;
        Ok(overlay(
            &defaults,
            &stored_limits(self.reader(), "quotas", "project_id", project).await?,
        ))
    }

    /// A project's limits with usage.
    pub async fn quota_get_with_usage(
        &self,
        project: &str,
    ) -> Result<BTreeMap<String, QuotaUsage>, DbError> {
        let limits = self.quota_get(project).await?;
        let rows = sqlx::query(
            "SELECT resource, in_use, reserved FROM quota_usages WHERE project_id = $1",
        )
        .bind(project)
        .fetch_all(self.reader())
        .await?;
        let mut usage: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for r in &rows {
            usage.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?));
        }
        Ok(limits
            .into_iter()
            .map(|(k, limit)| {
                let (in_use, reserved) = usage.get(&k).copied().unwrap_or((0, 0));
                (
                    k,
                    QuotaUsage {
                        limit,
                        in_use,
                        reserved,
                    },
                )
            })
            .collect())
    }

    pub async fn quota_update(
        &self,
        project: &str,
        limits: &BTreeMap<String, i64>,
    ) -> Result<(), DbError> {
        let mut tx = self.writer().begin().await?;
        upsert_limits(&mut tx, "quotas", "project_id", project, limits).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forget a project's own limits: it is back on the defaults. Usage is kept.
    pub async fn quota_destroy(&self, project: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM quotas WHERE project_id = $1")
            .bind(project)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Check `deltas` against the project's limits and reserve them, atomically. A positive
    /// delta fails when `in_use + reserved + delta` would pass a limit other than -1;
    /// `per_volume_gigabytes` checks the delta itself (a size) and reserves nothing.
    pub async fn quota_reserve<S: AsRef<str>>(
        &self,
        project: &str,
        deltas: &[(S, i64)],
    ) -> Result<Reservation, QuotaError> {
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        let items = self
            .quota_charge(&mut tx, project, deltas, Hold::Reserve)
            .await?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(Reservation {
            project_id: project.to_string(),
            items,
        })
    }

    /// Would [`Db::quota_reserve`] accept `deltas`? The same check, holding nothing (the
    /// transaction is rolled back) — for work that charges its usage later without a check of
    /// its own (a retype moves usage between types when it is done).
    pub async fn quota_check<S: AsRef<str>>(
        &self,
        project: &str,
        deltas: &[(S, i64)],
    ) -> Result<(), QuotaError> {
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        self.quota_charge(&mut tx, project, deltas, Hold::Reserve)
            .await?;
        tx.rollback().await.map_err(DbError::from)?;
        Ok(())
    }

    /// Check `deltas` as [`Db::quota_reserve`] does and hold them in `tx`: as reservations
    /// (returned, for a later commit or rollback), or, when the work is the rest of the same
    /// transaction (a row inserted by the API), straight into `in_use`.
    pub(crate) async fn quota_charge<S: AsRef<str>>(
        &self,
        tx: &mut Transaction<'_, Any>,
        project: &str,
        deltas: &[(S, i64)],
        hold: Hold,
    ) -> Result<Vec<ReservationItem>, QuotaError> {
        let sorted = merged(deltas);
        if let Some((bad, _)) = sorted.iter().find(|(r, _)| !is_chargeable(r)) {
            return Err(QuotaError::UnknownResource(format!("['{bad}']")));
        }
        let ts = now();
        let counted: Vec<&str> = sorted
            .iter()
            .map(|(r, _)| *r)
            .filter(|r| *r != PER_VOLUME)
            .collect();
        // One statement per step, however many resources: on SQLite each statement is a
        // round trip to the single writer connection, which every create queues for.
        // Writes first (SQLite: take the write lock before reading).
        ensure_usage_rows(tx, project, &counted, &ts)
            .await
            .map_err(DbError::from)?;
        let state = charge_state(tx, self.engine(), project, &counted)
            .await
            .map_err(DbError::from)?;
        match check(&sorted, &state) {
            Ok(()) => {}
            // Reservations a crashed process never settled hold quota until they expire: give
            // the expired ones back and look again before refusing (Cinder expires them from
            // a periodic task). Only a refusal pays for the look.
            Err(QuotaError::OverLimit { .. })
                if expire_reservations(tx, project)
                    .await
                    .map_err(DbError::from)?
                    > 0 =>
            {
                let state = charge_state(tx, self.engine(), project, &counted)
                    .await
                    .map_err(DbError::from)?;
                check(&sorted, &state)?;
            }
            Err(refused) => return Err(refused),
        }
        let mut items = Vec::new();
        let mut consumed: Vec<(&str, i64)> = Vec::new();
        let expire = format_time(time::OffsetDateTime::now_utc() + RESERVATION_EXPIRE);
        for (resource, delta) in &sorted {
            if *resource == PER_VOLUME {
                continue; // a size, checked above; nothing to hold
            }
            if hold == Hold::Consume {
                consumed.push((*resource, *delta));
                continue;
            }
            if *delta > 0 {
                sqlx::query("UPDATE quota_usages SET reserved = reserved + $1, updated_at = $2 WHERE project_id = $3 AND resource = $4")
                    .bind(*delta).bind(&ts).bind(project).bind(*resource)
                    .execute(&mut **tx)
                    .await
                    .map_err(DbError::from)?;
            }
            let id = uuid::Uuid::new_v4().to_string();
            sqlx::query("INSERT INTO reservations (id, project_id, resource, delta, expire, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&id).bind(project).bind(*resource).bind(*delta).bind(&expire).bind(&ts)
                .execute(&mut **tx)
                .await
                .map_err(DbError::from)?;
            items.push(ReservationItem {
                id,
                resource: resource.to_string(),
                delta: *delta,
            });
        }
        if !consumed.is_empty() {
            consume(tx, project, &consumed, &ts)
                .await
                .map_err(DbError::from)?;
        }
        Ok(items)
    }

    /// The work succeeded: move the reservation into `in_use`. Idempotent.
    pub async fn quota_commit(&self, reservation: &Reservation) -> Result<(), DbError> {
        self.finish(reservation, true).await
    }

    /// The work failed: drop the reservation. Idempotent.
    pub async fn quota_rollback(&self, reservation: &Reservation) -> Result<(), DbError> {
        self.finish(reservation, false).await
    }

    async fn finish(&self, reservation: &Reservation, commit: bool) -> Result<(), DbError> {
        let mut tx = self.writer().begin().await?;
        for item in &reservation.items {
            unreserve(&mut tx, &item.id, commit).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A resource was deleted: subtract `amounts` (positive numbers, e.g.
    /// `[("volumes", 1), ("gigabytes", 5)]`) from `in_use`, never below zero.
    pub async fn quota_release<S: AsRef<str>>(
        &self,
        project: &str,
        amounts: &[(S, i64)],
    ) -> Result<(), QuotaError> {
        let amounts = merged(amounts);
        if let Some((bad, _)) = amounts
            .iter()
            .find(|(r, _)| !is_chargeable(r) || *r == PER_VOLUME)
        {
            return Err(QuotaError::UnknownResource(format!("['{bad}']")));
        }
        if amounts.is_empty() {
            return Ok(());
        }
        let negated: Vec<(&str, i64)> = amounts.iter().map(|(r, a)| (*r, -a)).collect();
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        consume(&mut tx, project, &negated, &now())
            .await
            .map_err(DbError::from)?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
