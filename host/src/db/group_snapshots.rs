//! Group snapshots (3.14+): the `group_snapshots` table. Its member snapshots are ordinary
//! `snapshots` rows carrying `group_snapshot_id`, created with it in one transaction and
//! taken by the volume service one by one; the group snapshot is `available` once they all
//! are (`error` if one failed), and is destroyed when its last snapshot is deleted.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::snapshots::NewSnapshot;
use super::{now, Db, DbError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSnapshotRow {
    pub id: String,
    pub group_id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: String,
    pub group_type_id: String,
    pub created_at: String,
    pub updated_at: Option<String>,
}

/// What the API records for a new group snapshot (status `creating`).
#[derive(Debug, Clone, Default)]
pub struct NewGroupSnapshot {
    pub id: String,
    pub group_id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub group_type_id: String,
}

const COLUMNS: &str = "id, group_id, project_id, user_id, name, description, status, \
    group_type_id, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<GroupSnapshotRow, sqlx::Error> {
    Ok(GroupSnapshotRow {
        id: r.try_get("id")?,
        group_id: r.try_get("group_id")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        status: r.try_get("status")?,
        group_type_id: r.try_get("group_type_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Db {
    /// Insert a group snapshot and its member snapshots (all `creating`) in one transaction.
    pub async fn group_snapshot_create(
        &self,
        gs: &NewGroupSnapshot,
        members: &[NewSnapshot],
    ) -> Result<GroupSnapshotRow, DbError> {
        let ts = now();
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO group_snapshots (id, group_id, project_id, user_id, name, description, \
             status, group_type_id, created_at, updated_at, deleted) \
             VALUES ($1, $2, $3, $4, $5, $6, 'creating', $7, $8, $8, $9)",
        )
        .bind(&gs.id)
        .bind(&gs.group_id)
        .bind(&gs.project_id)
        .bind(&gs.user_id)
        .bind(&gs.name)
        .bind(&gs.description)
        .bind(&gs.group_type_id)
        .bind(&ts)
        .bind(false)
        .execute(&mut *tx)
        .await?;
        for s in members {
            super::snapshots::insert_snapshot(&mut tx, s, Some(&gs.id), &ts).await?;
        }
        tx.commit().await?;
        self.group_snapshot_get(&gs.id).await
    }

    pub async fn group_snapshot_get(&self, id: &str) -> Result<GroupSnapshotRow, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM group_snapshots WHERE id = $1 AND NOT deleted"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("GroupSnapshot {id}")))?;
        Ok(from_row(&row)?)
    }

    /// Live group snapshots, newest first: of `project`, or of every project when `None`.
    pub async fn group_snapshot_list(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<GroupSnapshotRow>, DbError> {
        let filter = if project.is_some() {
            " AND project_id = $1"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM group_snapshots WHERE NOT deleted{filter} ORDER BY created_at DESC, id DESC"
        );
        let mut q = sqlx::query(&sql);
        if let Some(p) = project {
            q = q.bind(p);
        }
        let rows = q.fetch_all(self.reader()).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// How many live group snapshots group `group_id` has.
    pub async fn group_snapshot_count(&self, group_id: &str) -> Result<usize, DbError> {
        let n: i64 =
            sqlx::query("SELECT COUNT(*) FROM group_snapshots WHERE group_id = $1 AND NOT deleted")
                .bind(group_id)
                .fetch_one(self.reader())
                .await?
                .try_get(0)?;
        Ok(n as usize)
    }

    /// Move a group snapshot from one of `from` (any status when empty) to `to`.
    pub async fn group_snapshot_transition(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
    ) -> Result<bool, DbError> {
        let cond = if from.is_empty() {
            String::new()
        } else {
            let list = from
                .iter()
                .map(|s| format!("'{}'", s.replace('\'', "")))
                .collect::<Vec<_>>()
                .join(", ");
            format!(" AND status IN ({list})")
        };
        let done = sqlx::query(&format!(
            "UPDATE group_snapshots SET status = $1, updated_at = $2 WHERE id = $3 AND NOT deleted{cond}"
        ))
        .bind(to)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The live member snapshots of group snapshot `id`.
    pub async fn snapshots_of_group_snapshot(
        &self,
        id: &str,
    ) -> Result<Vec<super::snapshots::SnapshotRow>, DbError> {
        self.snapshots_where("group_snapshot_id = $1", id).await
    }

    pub async fn group_snapshot_destroy(&self, id: &str) -> Result<(), DbError> {
        let ts = now();
        sqlx::query(
            "UPDATE group_snapshots SET status = 'deleted', deleted = $1, deleted_at = $2, \
             updated_at = $2 WHERE id = $3 AND NOT deleted",
        )
        .bind(true)
        .bind(&ts)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// A member snapshot finished (or failed): a `creating` group snapshot becomes
    /// `available` once none of its snapshots is `creating`, `error` if one failed.
    pub async fn group_snapshot_settle_creating(&self, id: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE group_snapshots SET updated_at = $1, status = CASE WHEN EXISTS \
             (SELECT 1 FROM snapshots s WHERE s.group_snapshot_id = $2 AND NOT s.deleted AND s.status = 'error') \
             THEN 'error' ELSE 'available' END \
             WHERE id = $2 AND NOT deleted AND status = 'creating' AND NOT EXISTS \
             (SELECT 1 FROM snapshots s WHERE s.group_snapshot_id = $2 AND NOT s.deleted AND s.status = 'creating')",
        )
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// A member snapshot was deleted (or failed to be): a `deleting` group snapshot is
    /// destroyed with its last snapshot; `error_deleting` when one could not go.
    pub async fn group_snapshot_settle_deleting(&self, id: &str) -> Result<(), DbError> {
        let gs = match self.group_snapshot_get(id).await {
            Ok(gs) => gs,
            Err(DbError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if gs.status != "deleting" {
            return Ok(());
        }
        let left = self.snapshots_of_group_snapshot(id).await?;
        if left.is_empty() {
            return self.group_snapshot_destroy(id).await;
        }
        if left.iter().all(|s| s.status != "deleting") {
            self.group_snapshot_transition(id, &["deleting"], "error_deleting")
                .await?;
        }
        Ok(())
    }
}
