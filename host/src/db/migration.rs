//! The database side of volume migration (Cinder's generic migration): starting one with a
//! compare-and-set, the temporary target volume (`migration_status = target:<source id>`,
//! outside quota), the swap of identities that makes the user's volume live on the
//! destination (one transaction: either both rows moved or neither), and ending one.

use sqlx::Row;

use super::volumes::{VolumeRow, NOT_MIGRATING};
use super::{now, Db, DbError};

/// The `migration_status` of the temporary volume receiving `source_id`'s data.
pub fn target_marker(source_id: &str) -> String {
    format!("target:{source_id}")
}

impl Db {
    /// Start migrating volume `id`: from one of `from` and no running migration, to
    /// `migration_status = starting`, remembering the status to return to (`previous`, else
    /// the current one); the status becomes `during` (`maintenance` when the caller locks the
    /// volume) or stays. `false` when the volume was in another state.
    pub async fn volume_migration_start(
        &self,
        id: &str,
        from: &[&str],
        during: Option<&str>,
        previous: Option<&str>,
    ) -> Result<bool, DbError> {
        let list = from
            .iter()
            .map(|s| format!("'{}'", s.replace('\'', "")))
            .collect::<Vec<_>>()
            .join(", ");
        let done = sqlx::query(&format!(
            "UPDATE volumes SET migration_status = 'starting', previous_status = COALESCE($4, status), \
             status = COALESCE($1, status), updated_at = $2 \
             WHERE id = $3 AND NOT deleted AND status IN ({list}) AND {NOT_MIGRATING}"
        ))
        .bind(during)
        .bind(now())
        .bind(id)
        .bind(previous)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Set the `migration_status` of a volume (`migrating`, ...).
    pub async fn volume_set_migration_status(
        &self,
        id: &str,
        migration_status: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE volumes SET migration_status = $1, updated_at = $2 WHERE id = $3 AND NOT deleted",
        )
        .bind(migration_status)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// End a migration that did not swap: `migration_status` (`error`), and the status the
    /// volume had when it started.
    pub async fn volume_migration_end(
        &self,
        id: &str,
        migration_status: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE volumes SET migration_status = $1, status = COALESCE(previous_status, status), \
             previous_status = NULL, updated_at = $2 WHERE id = $3 AND NOT deleted",
        )
        .bind(migration_status)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Record the temporary volume `new_id` that receives `source`'s data: same owner, size,
    /// zone and flags, the type `type_id` (a retype's new type, else the source's), status
    /// `creating`, outside quota (the user's volume keeps counting), not placed yet.
    pub async fn volume_migration_target_create(
        &self,
        source: &VolumeRow,
        new_id: &str,
        type_id: Option<&str>,
    ) -> Result<VolumeRow, DbError> {
        let ts = now();
        sqlx::query(
            "INSERT INTO volumes (id, project_id, user_id, display_name, display_description, size, \
             status, migration_status, availability_zone, volume_type_id, multiattach, bootable, \
             use_quota, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'creating', $7, $8, $9, $10, $11, $12, $13, $13)",
        )
        .bind(new_id)
        .bind(&source.project_id)
        .bind(&source.user_id)
        .bind(&source.display_name)
        .bind(&source.display_description)
        .bind(source.size)
        .bind(target_marker(&source.id))
        .bind(&source.availability_zone)
        .bind(type_id.or(source.volume_type_id.as_deref()))
        .bind(source.multiattach)
        .bind(source.bootable)
        .bind(false)
        .bind(&ts)
        .execute(self.writer())
        .await?;
        self.volume_get(new_id).await
    }

    /// The temporary volumes of migrations of `source_id` (normally none or one).
    pub async fn volume_migration_targets(
        &self,
        source_id: &str,
    ) -> Result<Vec<VolumeRow>, DbError> {
        let rows = sqlx::query(
            "SELECT id FROM volumes WHERE migration_status = $1 AND NOT deleted ORDER BY created_at",
        )
        .bind(target_marker(source_id))
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get("id")?;
            out.push(self.volume_get(&id).await?);
        }
        Ok(out)
    }

    /// The data of `source_id` now lives in `target_id`: swap what locates the data on a
    /// backend (host, provider location and auth, backend name) and the type, so the user's
    /// id now names the destination copy (`migration_status = success`, back to its previous
    /// status) and the temporary id names the old copy, left `deleting` for its backend to
    /// remove. One transaction.
    pub async fn volume_migration_swap(
        &self,
        source_id: &str,
        target_id: &str,
    ) -> Result<(), DbError> {
        let src = self.volume_get(source_id).await?;
        let tgt = self.volume_get(target_id).await?;
        if tgt.migration_status.as_deref() != Some(target_marker(source_id).as_str()) {
            return Err(DbError::NotFound(format!(
                "Migration target {target_id} of volume {source_id}"
            )));
        }
        let ts = now();
        let mut tx = self.writer().begin().await?;
        let moved = sqlx::query(
            "UPDATE volumes SET host = $1, provider_location = $2, provider_auth = $3, name_id = $4, \
             volume_type_id = $5, status = COALESCE(previous_status, status), previous_status = NULL, \
             migration_status = 'success', updated_at = $6 WHERE id = $7 AND NOT deleted",
        )
        .bind(&tgt.host)
        .bind(&tgt.provider_location)
        .bind(&tgt.provider_auth)
        .bind(tgt.name_id.as_deref().unwrap_or(&tgt.id))
        .bind(&tgt.volume_type_id)
        .bind(&ts)
        .bind(source_id)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(DbError::NotFound(format!("Volume {source_id}")));
        }
        sqlx::query(
            "UPDATE volumes SET host = $1, provider_location = $2, provider_auth = $3, name_id = $4, \
             volume_type_id = $5, status = 'deleting', migration_status = 'deleting', updated_at = $6 \
             WHERE id = $7",
        )
        .bind(&src.host)
        .bind(&src.provider_location)
        .bind(&src.provider_auth)
        .bind(src.name_id.as_deref().unwrap_or(&src.id))
        .bind(&src.volume_type_id)
        .bind(&ts)
        .bind(target_id)
        .execute(&mut *tx)
        .await?;
        if src.use_quota {
            // A retype by migration: the volume now counts against its new type.
            super::quotas::move_type_usage(
                &mut tx,
                &src.project_id,
                src.size,
                src.volume_type_id.as_deref(),
                tgt.volume_type_id.as_deref(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::placement::PoolLimit;
    use crate::db::testing;
    use crate::db::volumes::NewVolume;

    async fn placed(db: &Db, id: &str, pool: &str) -> VolumeRow {
        db.volume_create(&NewVolume {
            id: id.into(),
            project_id: "p1".into(),
            user_id: "u1".into(),
            size: 2,
            availability_zone: "nova".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        db.volume_place(id, pool, 2, PoolLimit { capacity_gb: None })
            .await
            .unwrap()
            .unwrap();
        db.volume_created(id, Some(format!("/a/volume-{id}").as_str()), None)
            .await
            .unwrap();
        db.volume_get(id).await.unwrap()
    }

    #[tokio::test]
    async fn a_migration_swaps_identities_and_blocks_other_actions_meanwhile() {
        let (db, _dir) = testing::sqlite().await;
        let src = placed(&db, "x", "h@a#a").await;
        assert!(db
            .volume_migration_start("x", &["available"], Some("maintenance"), None)
            .await
            .unwrap());
        assert!(
            !db.volume_migration_start("x", &["maintenance"], None, None)
                .await
                .unwrap(),
            "a second migration cannot start"
        );
        assert!(
            !db.volume_transition("x", &["maintenance"], "deleting")
                .await
                .unwrap(),
            "a migrating volume cannot be deleted"
        );
        let tgt = db
            .volume_migration_target_create(&src, "t", None)
            .await
            .unwrap();
        assert_eq!(
            (tgt.status.as_str(), tgt.use_quota),
            ("creating", false),
            "the target is outside quota"
        );
        db.volume_place("t", "h@b#b", 2, PoolLimit { capacity_gb: None })
            .await
            .unwrap()
            .unwrap();
        db.volume_created("t", Some("/b/volume-t"), None)
            .await
            .unwrap();
        assert_eq!(db.volume_migration_targets("x").await.unwrap().len(), 1);
        db.volume_migration_swap("x", "t").await.unwrap();
        let x = db.volume_get("x").await.unwrap();
        assert_eq!(x.host.as_deref(), Some("h@b#b"));
        assert_eq!(x.name_id.as_deref(), Some("t"));
        assert_eq!(x.provider_location.as_deref(), Some("/b/volume-t"));
        assert_eq!(
            (x.status.as_str(), x.migration_status.as_deref()),
            ("available", Some("success"))
        );
        let t = db.volume_get("t").await.unwrap();
        assert_eq!(t.host.as_deref(), Some("h@a#a"));
        assert_eq!(
            t.name_id.as_deref(),
            Some("x"),
            "the old copy keeps its name"
        );
        assert_eq!(t.status, "deleting");
        assert!(db.volume_migration_targets("x").await.unwrap().is_empty());
        assert!(
            db.volume_migration_swap("x", "t").await.is_err(),
            "a swap happens once"
        );
    }

    #[tokio::test]
    async fn a_failed_migration_returns_to_the_previous_status() {
        let (db, _dir) = testing::sqlite().await;
        placed(&db, "x", "h@a#a").await;
        assert!(db
            .volume_migration_start("x", &["available"], Some("maintenance"), None)
            .await
            .unwrap());
        db.volume_migration_end("x", "error").await.unwrap();
        let x = db.volume_get("x").await.unwrap();
        assert_eq!(
            (x.status.as_str(), x.migration_status.as_deref()),
            ("available", Some("error"))
        );
        assert!(
            db.volume_transition("x", &["available"], "deleting")
                .await
                .unwrap(),
            "after an error the volume can be used again"
        );
    }
}
