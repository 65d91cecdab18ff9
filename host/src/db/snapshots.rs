//! The `snapshots` table: rows created by the API in `creating`, made `available` (or
//! `error`) by the volume service holding the source volume, soft-deleted when the backend
//! copy is gone. Metadata lives in `snapshot_metadata` (see [`super::metadata`]).

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::listing::{ListQuery, SortKey, Table};
use super::{get_flag, now, Db, DbError};

/// One snapshot, with its metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotRow {
    pub id: String,
    pub volume_id: String,
    pub project_id: String,
    pub user_id: String,
    pub display_name: Option<String>,
    pub display_description: Option<String>,
    pub status: String,
    pub progress: Option<String>,
    /// GiB: the source volume's size when the snapshot was taken.
    pub volume_size: i64,
    pub volume_type_id: Option<String>,
    pub provider_location: Option<String>,
    pub group_snapshot_id: Option<String>,
    pub use_quota: bool,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

const COLUMNS: &str = "id, volume_id, project_id, user_id, display_name, display_description, \
    status, progress, volume_size, volume_type_id, provider_location, group_snapshot_id, \
    use_quota, created_at, updated_at";

/// How the API lists snapshots.
pub const TABLE: Table = Table {
    name: "snapshots",
    columns: COLUMNS,
    metadata: ("snapshot_metadata", "snapshot_id"),
    sort_keys: &[
        SortKey {
            name: "id",
            column: "id",
        },
        SortKey {
            name: "name",
            column: "COALESCE({t}.display_name, '')",
        },
        SortKey {
            name: "status",
            column: "status",
        },
        SortKey {
            name: "size",
            column: "volume_size",
        },
        SortKey {
            name: "volume_id",
            column: "volume_id",
        },
        SortKey {
            name: "created_at",
            column: "created_at",
        },
        SortKey {
            name: "updated_at",
            column: "updated_at",
        },
        SortKey {
            name: "project_id",
            column: "project_id",
        },
    ],
};

fn from_row(r: &AnyRow) -> Result<SnapshotRow, sqlx::Error> {
    Ok(SnapshotRow {
        id: r.try_get("id")?,
        volume_id: r.try_get("volume_id")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        display_name: r.try_get("display_name")?,
        display_description: r.try_get("display_description")?,
        status: r.try_get("status")?,
        progress: r.try_get("progress")?,
        volume_size: r.try_get("volume_size")?,
        volume_type_id: r.try_get("volume_type_id")?,
        provider_location: r.try_get("provider_location")?,
        group_snapshot_id: r.try_get("group_snapshot_id")?,
        use_quota: get_flag(r, "use_quota")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        metadata: BTreeMap::new(),
    })
}

/// What the API records for a new snapshot.
#[derive(Debug, Clone, Default)]
pub struct NewSnapshot {
    pub id: String,
    pub volume_id: String,
    pub project_id: String,
    pub user_id: String,
    pub display_name: Option<String>,
    pub display_description: Option<String>,
    pub volume_size: i64,
    pub volume_type_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// Insert the row of `s` (`creating`, progress `0%`) and its metadata in `tx`.
pub(crate) async fn insert_snapshot(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    s: &NewSnapshot,
    group_snapshot_id: Option<&str>,
    ts: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO snapshots (id, volume_id, project_id, user_id, display_name, \
         display_description, status, progress, volume_size, volume_type_id, group_snapshot_id, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'creating', '0%', $7, $8, $9, $10, $10)",
    )
    .bind(&s.id)
    .bind(&s.volume_id)
    .bind(&s.project_id)
    .bind(&s.user_id)
    .bind(&s.display_name)
    .bind(&s.display_description)
    .bind(s.volume_size)
    .bind(&s.volume_type_id)
    .bind(group_snapshot_id)
    .bind(ts)
    .execute(&mut **tx)
    .await?;
    for (k, v) in &s.metadata {
        sqlx::query("INSERT INTO snapshot_metadata (snapshot_id, key, value) VALUES ($1, $2, $3)")
            .bind(&s.id)
            .bind(k)
            .bind(v)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Db {
    /// Insert a snapshot in status `creating` (progress `0%`).
    pub async fn snapshot_create(&self, s: &NewSnapshot) -> Result<SnapshotRow, DbError> {
        let ts = now();
        let mut tx = self.writer().begin().await?;
        insert_snapshot(&mut tx, s, None, &ts).await?;
        tx.commit().await?;
        self.snapshot_get(&s.id).await
    }

    /// Live snapshots where `cond` (one `$1` placeholder bound to `arg`), oldest first.
    pub(crate) async fn snapshots_where(
        &self,
        cond: &str,
        arg: &str,
    ) -> Result<Vec<SnapshotRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM snapshots WHERE {cond} AND NOT deleted ORDER BY created_at, id"
        ))
        .bind(arg)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// The snapshot `id` (not deleted), with its metadata.
    pub async fn snapshot_get(&self, id: &str) -> Result<SnapshotRow, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM snapshots WHERE id = $1 AND NOT deleted"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("Snapshot {id}")))?;
        let mut s = from_row(&row)?;
        s.metadata = self.metadata_get(&TABLE, id).await?;
        Ok(s)
    }

    /// Snapshots matching `q` (newest first unless `q` sorts), with their metadata.
    pub async fn snapshot_list(&self, q: &ListQuery) -> Result<Vec<SnapshotRow>, DbError> {
        let mut rows = self.list_rows(&TABLE, q, from_row).await?;
        let ids: Vec<String> = rows.iter().map(|s| s.id.clone()).collect();
        let mut metadata = self.metadata_of(&TABLE, &ids).await?;
        for s in &mut rows {
            s.metadata = metadata.remove(&s.id).unwrap_or_default();
        }
        Ok(rows)
    }

    /// The snapshots of a volume (not deleted), oldest first.
    pub async fn snapshots_of_volume(&self, volume_id: &str) -> Result<Vec<SnapshotRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM snapshots WHERE volume_id = $1 AND NOT deleted ORDER BY created_at, id"
        ))
        .bind(volume_id)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// The snapshots of the volumes placed on `backend` (`host@backend`, any pool).
    pub async fn snapshots_on_backend(&self, backend: &str) -> Result<Vec<SnapshotRow>, DbError> {
        let cols = COLUMNS
            .split(", ")
            .map(|c| format!("s.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {cols} FROM snapshots s JOIN volumes v ON v.id = s.volume_id \
             WHERE NOT s.deleted AND (v.host = $1 OR v.host LIKE $2) ORDER BY s.created_at, s.id"
        ))
        .bind(backend)
        .bind(format!("{backend}#%"))
        .fetch_all(self.reader())
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Set a snapshot's status (and progress, when given).
    pub async fn snapshot_set_status(
        &self,
        id: &str,
        status: &str,
        progress: Option<&str>,
    ) -> Result<(), DbError> {
        let done = sqlx::query(
            "UPDATE snapshots SET status = $1, progress = COALESCE($2, progress), updated_at = $3 \
             WHERE id = $4 AND NOT deleted",
        )
        .bind(status)
        .bind(progress)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!("Snapshot {id}")));
        }
        Ok(())
    }

    /// Move a snapshot from one of `from` to `to`; `false` when it was in another status.
    pub async fn snapshot_transition(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
    ) -> Result<bool, DbError> {
        let placeholders: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "UPDATE snapshots SET status = $1, updated_at = $2 WHERE id = $3 AND NOT deleted \
             AND status IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(to).bind(now()).bind(id);
        for s in from {
            q = q.bind(*s);
        }
        Ok(q.execute(self.writer()).await?.rows_affected() == 1)
    }

    /// The driver took the snapshot: record where, make it available at 100%.
    pub async fn snapshot_created(
        &self,
        id: &str,
        provider_location: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE snapshots SET status = 'available', progress = '100%', provider_location = $1, \
             updated_at = $2 WHERE id = $3 AND NOT deleted",
        )
        .bind(provider_location)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Rename / redescribe a snapshot (`None` leaves a field as it is).
    pub async fn snapshot_update(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE snapshots SET display_name = COALESCE($1, display_name), \
             display_description = COALESCE($2, display_description), updated_at = $3 \
             WHERE id = $4 AND NOT deleted",
        )
        .bind(name)
        .bind(description)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Mark a snapshot deleted (soft delete), with its metadata removed.
    pub async fn snapshot_destroy(&self, id: &str) -> Result<(), DbError> {
        let ts = now();
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM snapshot_metadata WHERE snapshot_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE snapshots SET status = 'deleted', deleted = $1, deleted_at = $2, updated_at = $2 \
             WHERE id = $3",
        )
        .bind(true)
        .bind(&ts)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::listing::{FilterValue, SortDir};
    use crate::db::testing;
    use crate::db::volumes::NewVolume;

    async fn with_volume(db: &Db) {
        db.volume_create(&NewVolume {
            id: "v".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            size: 3,
            availability_zone: "nova".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }

    fn snap(id: &str, name: &str) -> NewSnapshot {
        NewSnapshot {
            id: id.into(),
            volume_id: "v".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            display_name: Some(name.into()),
            volume_size: 3,
            metadata: [("k".to_string(), id.to_string())].into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn snapshots_move_through_their_states() {
        let (db, _dir) = testing::sqlite().await;
        with_volume(&db).await;
        let s = db.snapshot_create(&snap("s1", "one")).await.unwrap();
        assert_eq!(
            (s.status.as_str(), s.progress.as_deref()),
            ("creating", Some("0%"))
        );
        assert_eq!(s.metadata["k"], "s1");
        assert!(!db
            .snapshot_transition("s1", &["available"], "deleting")
            .await
            .unwrap());
        db.snapshot_created("s1", Some("loc")).await.unwrap();
        let s = db.snapshot_get("s1").await.unwrap();
        assert_eq!(
            (s.status.as_str(), s.progress.as_deref()),
            ("available", Some("100%"))
        );
        assert!(db
            .snapshot_transition("s1", &["available", "error"], "deleting")
            .await
            .unwrap());
        assert_eq!(db.snapshots_of_volume("v").await.unwrap().len(), 1);
        db.snapshot_destroy("s1").await.unwrap();
        assert!(db.snapshots_of_volume("v").await.unwrap().is_empty());
        assert!(matches!(
            db.snapshot_get("s1").await,
            Err(DbError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn listing_filters_sorts_and_pages() {
        let (db, _dir) = testing::sqlite().await;
        with_volume(&db).await;
        for (id, name) in [("a", "zeta"), ("b", "alpha"), ("c", "mid")] {
            db.snapshot_create(&snap(id, name)).await.unwrap();
        }
        let by_name = db
            .snapshot_list(&ListQuery {
                sort: vec![("name".into(), SortDir::Asc)],
                ..Default::default()
            })
            .await
            .unwrap();
        let names: Vec<_> = by_name
            .iter()
            .map(|s| s.display_name.clone().unwrap())
            .collect();
        assert_eq!(names, ["alpha", "mid", "zeta"]);
        assert_eq!(
            by_name[0].metadata["k"], "b",
            "metadata comes with the page"
        );
        let after = db
            .snapshot_list(&ListQuery {
                sort: vec![("name".into(), SortDir::Asc)],
                marker: Some("b".into()),
                limit: Some(1),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(after[0].id, "c");
        let offset = db
            .snapshot_list(&ListQuery {
                sort: vec![("name".into(), SortDir::Asc)],
                offset: Some(2),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(offset.len(), 1);
        assert_eq!(offset[0].id, "a");
        let filtered = db
            .snapshot_list(&ListQuery {
                filters: vec![("display_name", FilterValue::Text("mid".into()))],
                metadata: [("k".to_string(), "c".to_string())].into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(filtered.len(), 1);
        assert!(matches!(
            db.snapshot_list(&ListQuery {
                marker: Some("nope".into()),
                ..Default::default()
            })
            .await,
            Err(DbError::List(_))
        ));
    }
}
