//! Recording a new volume: the row the API inserts in status `creating` with its metadata,
//! alone or with its quota charged in the same transaction (the API's create path).

use std::collections::BTreeMap;

use sqlx::{Any, Transaction};

use super::quotas::{Hold, QuotaError};
use super::volumes::VolumeRow;
use super::{now, Db, DbError};

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
    pub async fn volume_create_charged<S: AsRef<str>>(
        &self,
        v: &NewVolume,
        quota: &[(S, i64)],
    ) -> Result<VolumeRow, QuotaError> {
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        self.quota_charge(&mut tx, &v.project_id, quota, Hold::Consume)
            .await?;
        let row = insert_volume(&mut tx, v).await.map_err(DbError::from)?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing;
    use crate::db::volumes::tests::new_volume;

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
        typed.volume_type_id = Some(db.volume_type_resolve("p1", None).await.unwrap().id);
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
