//! The `volumes` table and its metadata: rows created by the API, placed by the scheduler
//! (with the database-side capacity check that keeps two schedulers from over-committing a
//! pool), and moved through their states by the volume service.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::listing::{SortKey, Table};
use super::quotas::{Hold, QuotaError};
use super::{get_flag, now, Db, DbError};

/// One volume, with its metadata. Deserialised from the database's JSON pages
/// (`db::volume_pages`), so a new field needs its column there too.
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

/// What the API records for a new volume.
#[derive(Debug, Clone, Default)]
pub struct NewVolume {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub display_name: Option<String>,
    pub display_description: Option<String>,
    pub size: i64,
    pub availability_zone: String,
    pub volume_type_id: Option<String>,
    pub snapshot_id: Option<String>,
    pub source_volid: Option<String>,
    pub group_id: Option<String>,
    pub multiattach: bool,
    /// The volume type has an encryption spec.
    pub encrypted: bool,
    pub metadata: BTreeMap<String, String>,
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

/// Insert `v` (status `creating`) and its metadata in `tx`; returns the row as stored (the
/// columns the insert leaves to their defaults as the schema sets them; a test compares it
/// with a read), except `volume_type_name`, which the caller knows.
async fn insert_volume(
    tx: &mut Transaction<'_, Any>,
    v: &NewVolume,
) -> Result<VolumeRow, sqlx::Error> {
    let ts = now();
    sqlx::query(
            "INSERT INTO volumes (id, project_id, user_id, display_name, display_description, size, \
             status, availability_zone, volume_type_id, snapshot_id, source_volid, group_id, multiattach, encrypted, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'creating', $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&v.id)
        .bind(&v.project_id)
        .bind(&v.user_id)
        .bind(&v.display_name)
        .bind(&v.display_description)
        .bind(v.size)
        .bind(&v.availability_zone)
        .bind(&v.volume_type_id)
        .bind(&v.snapshot_id)
        .bind(&v.source_volid)
        .bind(&v.group_id)
        .bind(v.multiattach)
        .bind(v.encrypted)
        .bind(&ts)
        .bind(&ts)
        .execute(&mut **tx)
        .await?;
    for (k, val) in &v.metadata {
        sqlx::query("INSERT INTO volume_metadata (volume_id, key, value) VALUES ($1, $2, $3)")
            .bind(&v.id)
            .bind(k)
            .bind(val)
            .execute(&mut **tx)
            .await?;
    }
    Ok(VolumeRow {
        id: v.id.clone(),
        project_id: v.project_id.clone(),
        user_id: v.user_id.clone(),
        display_name: v.display_name.clone(),
        display_description: v.display_description.clone(),
        size: v.size,
        status: "creating".into(),
        attach_status: "detached".into(),
        migration_status: None,
        previous_status: None,
        name_id: None,
        availability_zone: v.availability_zone.clone(),
        host: None,
        volume_type_id: v.volume_type_id.clone(),
        volume_type_name: None,
        snapshot_id: v.snapshot_id.clone(),
        source_volid: v.source_volid.clone(),
        group_id: v.group_id.clone(),
        bootable: false,
        multiattach: v.multiattach,
        encrypted: v.encrypted,
        provider_location: None,
        provider_auth: None,
        use_quota: true,
        created_at: ts.clone(),
        updated_at: Some(ts),
        launched_at: None,
        metadata: v.metadata.clone(),
    })
}

impl Db {
    /// Insert a volume in status `creating`.
    pub async fn volume_create(&self, v: &NewVolume) -> Result<VolumeRow, DbError> {
        let mut tx = self.writer().begin().await?;
        insert_volume(&mut tx, v).await?;
        tx.commit().await?;
        self.volume_get(&v.id).await
    }

    /// Insert a volume in status `creating` and charge `quota` (as for
    /// [`Db::quota_reserve`]) to its project, in one transaction: over quota, nothing is
    /// inserted; inserted, the usage is already counted. The API's create path — one
    /// transaction where reserve, insert and commit took three — and the row comes back
    /// without a read (its `volume_type_name` unset: the caller has the type).
    pub async fn volume_create_charged(
        &self,
        v: &NewVolume,
        quota: &[(&str, i64)],
    ) -> Result<VolumeRow, QuotaError> {
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        self.quota_charge(&mut tx, &v.project_id, quota, Hold::Consume)
            .await?;
        let row = insert_volume(&mut tx, v).await.map_err(DbError::from)?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(row)
    }

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

    /// The driver created the volume: record where, and make it available.
    pub async fn volume_created(
        &self,
        id: &str,
        provider_location: Option<&str>,
        provider_auth: Option<&str>,
    ) -> Result<(), DbError> {
        let ts = now();
        sqlx::query(
            "UPDATE volumes SET status = 'available', provider_location = $1, provider_auth = $2, \
             launched_at = $3, updated_at = $3 WHERE id = $4 AND NOT deleted",
        )
        .bind(provider_location)
        .bind(provider_auth)
        .bind(&ts)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
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

    /// A retype without migration is done: the new type, back to `status`.
    pub async fn volume_retyped(
        &self,
        id: &str,
        type_id: &str,
        status: &str,
    ) -> Result<(), DbError> {
        let done = sqlx::query(
            "UPDATE volumes SET volume_type_id = $1, status = $2, updated_at = $3 WHERE id = $4 AND NOT deleted",
        )
        .bind(type_id)
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

    /// Mark a volume deleted (soft delete, as Cinder), with its metadata removed.
    pub async fn volume_destroy(&self, id: &str) -> Result<(), DbError> {
        let ts = now();
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM volume_metadata WHERE volume_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE volumes SET status = 'deleted', deleted = $1, deleted_at = $2, terminated_at = $2, \
             updated_at = $2 WHERE id = $3",
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
    use crate::db::listing::ListQuery;
    use crate::db::testing;

    fn new_volume(id: &str, size: i64) -> NewVolume {
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

    #[tokio::test]
    async fn a_charged_create_counts_quota_in_use_or_inserts_nothing() {
        let (db, _dir) = testing::sqlite().await;
        db.quota_update("p1", &[("volumes".to_string(), 1)].into())
            .await
            .unwrap();
        let charge = [
            ("volumes", 1),
            ("gigabytes", 3),
            ("per_volume_gigabytes", 3),
        ];
        let mut typed = new_volume("a", 3);
        typed.volume_type_id = Some(db.volume_type_resolve(None).await.unwrap().id);
        typed.multiattach = true;
        let mut made = db.volume_create_charged(&typed, &charge).await.unwrap();
        let stored = db.volume_get("a").await.unwrap();
        made.volume_type_name = stored.volume_type_name.clone();
        assert_eq!(made, stored, "the row built in memory is the row stored");
        let usage = db.quota_get_with_usage("p1").await.unwrap();
        assert_eq!((usage["volumes"].in_use, usage["volumes"].reserved), (1, 0));
        assert_eq!(usage["gigabytes"].in_use, 3);
        let err = db
            .volume_create_charged(&new_volume("b", 3), &charge)
            .await
            .unwrap_err();
        assert!(
            matches!(err, QuotaError::OverLimit { ref resource, .. } if resource == "volumes"),
            "{err}"
        );
        assert!(
            matches!(db.volume_get("b").await, Err(DbError::NotFound(_))),
            "over quota inserts nothing"
        );
        let usage = db.quota_get_with_usage("p1").await.unwrap();
        assert_eq!(
            (usage["volumes"].in_use, usage["gigabytes"].in_use),
            (1, 3),
            "and counts nothing"
        );
    }
}
