//! The `volumes` table and its metadata: rows created by the API, placed by the scheduler
//! (with the database-side capacity check that keeps two schedulers from over-committing a
//! pool), and moved through their states by the volume service.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::listing::{SortKey, Table};
pub use super::volume_create::NewVolume;
use super::{get_flag, now, Db, DbError};

/// One volume, with its metadata. Listing pages build it in `db::volume_pages` — decoded by
/// position on SQLite, deserialised from JSON on PostgreSQL — so a new field needs its
/// column in `FIELDS` and in `read_page` there too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeRow {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub display_name: Option<String>,
    pub display_description: Option<String>,
    pub size: i64,
    pub status: String,
    pub attach_status: String,
    pub migration_status: Option<String>,
    /// The status to return to when a migration ends (Cinder's `previous_status`).
    pub previous_status: Option<String>,
    /// The backend name's id when it differs from `id` (after a migration; Cinder's `_name_id`).
    pub name_id: Option<String>,
    pub availability_zone: String,
    /// `host@backend#pool` once placed.
    pub host: Option<String>,
    pub volume_type_id: Option<String>,
    /// The type's name (joined), shown by the API.
    pub volume_type_name: Option<String>,
    pub snapshot_id: Option<String>,
    pub source_volid: Option<String>,
    /// The generic volume group the volume belongs to (3.13).
    pub group_id: Option<String>,
    #[serde(deserialize_with = "super::volume_pages::flag")]
    pub bootable: bool,
    #[serde(deserialize_with = "super::volume_pages::flag")]
    pub multiattach: bool,
    #[serde(deserialize_with = "super::volume_pages::flag")]
    pub encrypted: bool,
    pub provider_location: Option<String>,
    pub provider_auth: Option<String>,
    /// The volume counts against its project's quota (Cinder's `use_quota`).
    #[serde(deserialize_with = "super::volume_pages::flag")]
    pub use_quota: bool,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub launched_at: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

const COLUMNS: &str = "id, project_id, user_id, display_name, display_description, size, status, \
    attach_status, migration_status, previous_status, name_id, availability_zone, host, volume_type_id, \
    (SELECT t.name FROM volume_types t WHERE t.id = volumes.volume_type_id) AS volume_type_name, \
    snapshot_id, source_volid, group_id, bootable, multiattach, encrypted, provider_location, provider_auth, \
    use_quota, created_at, updated_at, launched_at";

fn from_row(r: &AnyRow) -> Result<VolumeRow, sqlx::Error> {
    Ok(VolumeRow {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        display_name: r.try_get("display_name")?,
        display_description: r.try_get("display_description")?,
        size: r.try_get("size")?,
        status: r.try_get("status")?,
        attach_status: r.try_get("attach_status")?,
        migration_status: r.try_get("migration_status")?,
        previous_status: r.try_get("previous_status")?,
        name_id: r.try_get("name_id")?,
        availability_zone: r.try_get("availability_zone")?,
        host: r.try_get("host")?,
        volume_type_id: r.try_get("volume_type_id")?,
        volume_type_name: r.try_get("volume_type_name")?,
        snapshot_id: r.try_get("snapshot_id")?,
        source_volid: r.try_get("source_volid")?,
        group_id: r.try_get("group_id")?,
        bootable: get_flag(r, "bootable")?,
        multiattach: get_flag(r, "multiattach")?,
        encrypted: get_flag(r, "encrypted")?,
        provider_location: r.try_get("provider_location")?,
        provider_auth: r.try_get("provider_auth")?,
        use_quota: get_flag(r, "use_quota")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        launched_at: r.try_get("launched_at")?,
        metadata: BTreeMap::new(),
    })
}

/// SQL condition: the volume takes part in no running migration (Cinder's
/// `AVAILABLE_MIGRATION_STATUS`: none, deleting, error, success).
pub(crate) const NOT_MIGRATING: &str =
    "(migration_status IS NULL OR migration_status IN ('deleting', 'error', 'success'))";

/// True when `migration_status` says a migration is running on (or towards) this volume.
pub fn migration_active(migration_status: Option<&str>) -> bool {
    !matches!(
        migration_status,
        None | Some("deleting" | "error" | "success" | "none")
    )
}

/// How the API lists volumes (see [`super::listing`]).
pub const TABLE: Table = Table {
    name: "volumes",
    columns: COLUMNS,
    metadata: ("volume_metadata", "volume_id"),
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
            column: "size",
        },
        SortKey {
            name: "availability_zone",
            column: "availability_zone",
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
            name: "bootable",
            column: "bootable",
        },
        SortKey {
            name: "volume_type",
            column: "COALESCE({t}.volume_type_id, '')",
        },
        SortKey {
            name: "user_id",
            column: "user_id",
        },
        SortKey {
            name: "project_id",
            column: "project_id",
        },
    ],
};

/// The admin metadata of volumes (`readonly`, ...), read and written with the metadata
/// functions; not listable.
pub const ADMIN_METADATA: Table = Table {
    name: "volumes",
    columns: "id",
    metadata: ("volume_admin_metadata", "volume_id"),
    sort_keys: &[],
};

impl Db {
    /// The volume `id` (not deleted), with its metadata.
    pub async fn volume_get(&self, id: &str) -> Result<VolumeRow, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM volumes WHERE id = $1 AND NOT deleted"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("Volume {id}")))?;
        let mut v = from_row(&row)?;
        v.metadata = self.metadata_get(&TABLE, id).await?;
        Ok(v)
    }

    /// The live volumes of group `group_id`, oldest first, with their metadata.
    pub async fn volumes_of_group(&self, group_id: &str) -> Result<Vec<VolumeRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM volumes WHERE NOT deleted AND group_id = $1 ORDER BY created_at, id"
        ))
        .bind(group_id)
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut v = from_row(r)?;
            v.metadata = self.metadata_get(&TABLE, &v.id).await?;
            out.push(v);
        }
        Ok(out)
    }

    /// The volumes placed on `backend` (`host@backend`, any pool), with their metadata.
    pub async fn volumes_on_backend(&self, backend: &str) -> Result<Vec<VolumeRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM volumes WHERE NOT deleted AND (host = $1 OR host LIKE $2)"
        ))
        .bind(backend)
        .bind(format!("{backend}#%"))
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut v = from_row(r)?;
            v.metadata = self.metadata_get(&TABLE, &v.id).await?;
            out.push(v);
        }
        Ok(out)
    }

    /// Set the status (and optionally more columns) of a volume.
    pub async fn volume_set_status(&self, id: &str, status: &str) -> Result<(), DbError> {
        let done = sqlx::query(
            "UPDATE volumes SET status = $1, updated_at = $2 WHERE id = $3 AND NOT deleted",
        )
        .bind(status)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!("Volume {id}")));
        }
        Ok(())
    }

    /// Move a volume from one of `from` to `to`; `false` when it was in another status (a
    /// compare-and-set, so two actions cannot both start).
    /// A volume being migrated (or the temporary target of a migration) never moves: its
    /// `migration_status` must be empty or a finished one.
    pub async fn volume_transition(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
    ) -> Result<bool, DbError> {
        let list = from
            .iter()
            .map(|s| format!("'{}'", s.replace('\'', "")))
            .collect::<Vec<_>>()
            .join(", ");
        let done = sqlx::query(&format!(
            "UPDATE volumes SET status = $1, updated_at = $2 WHERE id = $3 AND NOT deleted AND status IN ({list}) \
             AND {NOT_MIGRATING}"
        ))
        .bind(to)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The driver created the volume: record where, and make it available — only while it is
    /// still `creating` (a compare-and-set: a repeated delivery of the create, or a recovery
    /// that settled the volume meanwhile, must not turn `error` or `deleting` into
    /// `available`). `false`: the volume was in another status (or gone), nothing written.
    pub async fn volume_created(
        &self,
        id: &str,
        provider_location: Option<&str>,
        provider_auth: Option<&str>,
    ) -> Result<bool, DbError> {
        let ts = now();
        let done = sqlx::query(
            "UPDATE volumes SET status = 'available', provider_location = $1, provider_auth = $2, \
             launched_at = $3, updated_at = $3 WHERE id = $4 AND NOT deleted AND status = 'creating'",
        )
        .bind(provider_location)
        .bind(provider_auth)
        .bind(&ts)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A create failed for good: `creating` → `error`, and the volume stops counting against
    /// its project's quota (its count and size are given back and `use_quota` cleared, in the
    /// same transaction, so the later delete of the errored volume releases nothing twice).
    /// `false`: the volume was no longer `creating` (or gone); nothing changed.
    pub async fn volume_create_failed(&self, id: &str) -> Result<bool, DbError> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(
            "UPDATE volumes SET status = 'error', updated_at = $1 \
             WHERE id = $2 AND NOT deleted AND status = 'creating'",
        )
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        release_volume_quota(&mut tx, id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Move a volume from one of `from` to `to` whatever its migration status (a settle step:
    /// failures and recovery, which must not overwrite a status someone else set meanwhile).
    /// `false` when it was in another status or gone.
    pub async fn volume_settle_status(
        &self,
        id: &str,
        from: &[&str],
        to: &str,
    ) -> Result<bool, DbError> {
        let list = from
            .iter()
            .map(|s| format!("'{}'", s.replace('\'', "")))
            .collect::<Vec<_>>()
            .join(", ");
        let done = sqlx::query(&format!(
            "UPDATE volumes SET status = $1, updated_at = $2 WHERE id = $3 AND NOT deleted \
             AND status IN ({list})"
        ))
        .bind(to)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Volumes `creating` on no backend whose row has not changed since `before` (a
    /// timestamp): what a crash between scheduling steps leaves behind. A migration's
    /// temporary volume is its migration's business and never listed.
    pub async fn volumes_unplaced_creating(&self, before: &str) -> Result<Vec<VolumeRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM volumes WHERE NOT deleted AND status = 'creating' \
             AND host IS NULL AND migration_status IS NULL AND updated_at < $1 \
             ORDER BY created_at, id"
        ))
        .bind(before)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| from_row(r).map_err(DbError::from))
            .collect()
    }

    /// Rename / redescribe a volume (`None` leaves a field as it is).
    pub async fn volume_update(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE volumes SET display_name = COALESCE($1, display_name), \
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

    /// Record where the backend exported the volume and its credentials.
    pub async fn volume_set_provider(
        &self,
        id: &str,
        provider_location: Option<&str>,
        provider_auth: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE volumes SET provider_location = $1, provider_auth = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(provider_location)
        .bind(provider_auth)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// A retype without migration is done: the new type, back to `status`; the volume's count
    /// and size move to the new type's quota resources in the same transaction.
    pub async fn volume_retyped(
        &self,
        id: &str,
        type_id: &str,
        status: &str,
    ) -> Result<(), DbError> {
        let before = self.volume_get(id).await?;
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(
            "UPDATE volumes SET volume_type_id = $1, status = $2, updated_at = $3 WHERE id = $4 AND NOT deleted",
        )
        .bind(type_id)
        .bind(status)
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!("Volume {id}")));
        }
        if before.use_quota {
            super::quotas::move_type_usage(
                &mut tx,
                &before.project_id,
                before.size,
                before.volume_type_id.as_deref(),
                Some(type_id),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Set the `bootable` flag.
    pub async fn volume_set_bootable(&self, id: &str, bootable: bool) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE volumes SET bootable = $1, updated_at = $2 WHERE id = $3 AND NOT deleted",
        )
        .bind(bootable)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Set status and attach status together (attach / detach bookkeeping).
    pub async fn volume_set_attach_state(
        &self,
        id: &str,
        status: &str,
        attach_status: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE volumes SET status = $1, attach_status = $2, updated_at = $3 WHERE id = $4 AND NOT deleted",
        )
        .bind(status)
        .bind(attach_status)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// The driver grew the volume: record the size, back to `status` (`available`, or `in-use`
    /// after an online extend).
    pub async fn volume_extended(
        &self,
        id: &str,
        new_size: i64,
        status: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE volumes SET size = $1, status = $4, updated_at = $2 WHERE id = $3 AND NOT deleted",
        )
        .bind(new_size)
        .bind(now())
        .bind(id)
        .bind(status)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Mark a volume deleted (soft delete, as Cinder), with its metadata removed; when it still
    /// counted against its project's quota (`use_quota`), its count and size are released in
    /// the same transaction — a volume whose failed create already gave them back (or a
    /// migration's temporary volume, which never took any) releases nothing.
    pub async fn volume_destroy(&self, id: &str) -> Result<(), DbError> {
        let ts = now();
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM volume_metadata WHERE volume_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "UPDATE volumes SET status = 'deleted', deleted = $1, deleted_at = $2, terminated_at = $2, \
             updated_at = $2 WHERE id = $3 AND NOT deleted",
        )
        .bind(true)
        .bind(&ts)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            release_volume_quota(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Stop counting volume `id` against its project's quota, inside `tx`: when it still counts
/// (`use_quota`), clear the flag and give back its count and size (project-wide and per type).
/// The flag is cleared by a conditional update first, so of two callers only one releases.
pub(crate) async fn release_volume_quota(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE volumes SET use_quota = $1 WHERE id = $2 AND use_quota")
        .bind(false)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let row = sqlx::query(
        "SELECT project_id, size, \
         (SELECT t.name FROM volume_types t WHERE t.id = volumes.volume_type_id) AS type_name \
         FROM volumes WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    let (project, size, type_name): (String, i64, Option<String>) = (
        row.try_get("project_id")?,
        row.try_get("size")?,
        row.try_get("type_name")?,
    );
    super::quotas::release_in(
        tx,
        &project,
        &super::quotas::with_type(&[("volumes", 1), ("gigabytes", size)], type_name.as_deref()),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
pub(in crate::db) mod tests {
    use super::*;
    use crate::db::listing::ListQuery;
    use crate::db::testing;

    pub(in crate::db) fn new_volume(id: &str, size: i64) -> NewVolume {
        NewVolume {
            id: id.into(),
            project_id: "p1".into(),
            user_id: "u1".into(),
            display_name: Some(format!("vol-{id}")),
            size,
            availability_zone: "nova".into(),
            metadata: [("k".to_string(), "v".to_string())].into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn create_get_list_destroy_round_trip() {
        let (db, _dir) = testing::sqlite().await;
        let v = db.volume_create(&new_volume("a", 1)).await.unwrap();
        assert_eq!(v.status, "creating");
        assert_eq!(v.metadata.get("k").map(String::as_str), Some("v"));
        db.volume_create(&new_volume("b", 2)).await.unwrap();
        let all = db.volume_list(&ListQuery::default()).await.unwrap();
        assert_eq!(all.len(), 2);
        let page = db
            .volume_list(&ListQuery {
                limit: Some(1),
                ..Default::default()
            })
            .await
            .unwrap();
        let rest = db
            .volume_list(&ListQuery {
                marker: Some(page[0].id.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rest.len(), 1, "the marker pages past the first volume");
        assert_ne!(rest[0].id, page[0].id);
        db.volume_destroy("a").await.unwrap();
        assert!(matches!(
            db.volume_get("a").await,
            Err(DbError::NotFound(_))
        ));
        assert!(db
            .volume_transition("b", &["creating"], "deleting")
            .await
            .unwrap());
        assert!(!db
            .volume_transition("b", &["available"], "deleting")
            .await
            .unwrap());
    }
}
