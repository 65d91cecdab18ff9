//! Where volumes live: placing a volume on a pool with the database-side capacity check that
//! keeps two schedulers, each with its own in-memory view, from over-committing it; forgetting
//! a placement before a reschedule; the pools of volumes named by affinity hints.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{now, Db, DbError, Engine};

/// The pool-level limit a placement must respect (see [`Db::volume_place`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolLimit {
    /// GiB the pool may hold in volumes: total × over-subscription ratio (thin) or total
    /// (thick), less the reserved share. `None`: infinite or unknown, never refused.
    pub capacity_gb: Option<f64>,
}

impl Db {
    /// Forget the placement of a volume about to be rescheduled: only while it is still
    /// `creating` on `backend` (`host@backend`); `false` when it was settled or moved meanwhile.
    pub async fn volume_unplace(&self, id: &str, backend: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE volumes SET host = NULL, updated_at = $1 WHERE id = $2 AND NOT deleted \
             AND status = 'creating' AND (host = $3 OR host LIKE $4)",
        )
        .bind(now())
        .bind(id)
        .bind(backend)
        .bind(format!("{backend}#%"))
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Place volume `id` (size `size_gb`) on `pool` (`host@backend#pool`) unless the volumes
    /// already placed there would then exceed `limit`: the database-side check that keeps
    /// two schedulers, each with its own in-memory view, from over-committing one pool.
    /// The sum and the update are one statement, serialised per pool: SQLite has a single
    /// writer (and the statement is one round trip to it); on PostgreSQL the statement runs
    /// after a transaction-level advisory lock on the pool's name, so its snapshot sees every
    /// placement committed before. Returns the GiB already placed when refused. Only a volume
    /// still `creating` (or `extending`: an accepted growth is checked the same way) is placed:
    /// one settled meanwhile (errored by the sweep of unplaced creates, say) is
    /// [`DbError::NotFound`], like one deleted.
    pub async fn volume_place(
        &self,
        id: &str,
        pool: &str,
        size_gb: i64,
        limit: PoolLimit,
    ) -> Result<Result<(), f64>, DbError> {
        const PLACE: &str = "UPDATE volumes SET host = $1, updated_at = $2 \
             WHERE id = $3 AND NOT deleted AND status IN ('creating', 'extending') AND ($4 IS NULL OR $5 + \
             (SELECT COALESCE(SUM(size), 0) FROM volumes \
              WHERE host = $1 AND NOT deleted AND id <> $3) <= $4)";
        let place = sqlx::query(PLACE)
            .bind(pool)
            .bind(now())
            .bind(id)
            .bind(limit.capacity_gb)
            .bind(size_gb);
        let placed = if self.engine() == Engine::Postgres {
            let mut tx = self.writer().begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(pool)
                .execute(&mut *tx)
                .await?;
            let done = place.execute(&mut *tx).await?;
            tx.commit().await?;
            done
        } else {
            place.execute(self.writer()).await?
        }
        .rows_affected()
            > 0;
        if placed {
            return Ok(Ok(()));
        }
        // Refused or gone: say which (the rare path; a read after the fact is enough for
        // the message).
        let row = sqlx::query(
            "SELECT CAST((SELECT COUNT(*) FROM volumes WHERE id = $2 AND NOT deleted \
             AND status IN ('creating', 'extending')) AS BIGINT) AS found, \
             CAST((SELECT COALESCE(SUM(size), 0) FROM volumes \
                   WHERE host = $1 AND NOT deleted AND id <> $2) AS BIGINT) AS used",
        )
        .bind(pool)
        .bind(id)
        .fetch_one(self.writer())
        .await?;
        if row.try_get::<i64, _>("found")? == 0 {
            return Err(DbError::NotFound(format!("Volume {id}")));
        }
        Ok(Err(row.try_get::<i64, _>("used")? as f64))
    }

    /// Where each of `ids` lives (`host@backend#pool`), for the affinity hints; volumes not
    /// found or not placed are absent.
    pub async fn volume_hosts(&self, ids: &[String]) -> Result<BTreeMap<String, String>, DbError> {
        let mut out = BTreeMap::new();
        for id in ids {
            let row = sqlx::query("SELECT host FROM volumes WHERE id = $1 AND NOT deleted")
                .bind(id)
                .fetch_optional(self.reader())
                .await?;
            if let Some(Some(host)) = row
                .map(|r| r.try_get::<Option<String>, _>("host"))
                .transpose()?
            {
                out.insert(id.clone(), host);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing;
    use crate::db::volumes::NewVolume;

    fn new_volume(id: &str, size: i64) -> NewVolume {
        NewVolume {
            id: id.into(),
            project_id: "p1".into(),
            user_id: "u1".into(),
            size,
            availability_zone: "nova".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn placement_refuses_to_over_commit_a_pool() {
        let (db, _dir) = testing::sqlite().await;
        let limit = PoolLimit {
            capacity_gb: Some(10.0),
        };
        for (id, size) in [("a", 6), ("b", 4), ("c", 1)] {
            db.volume_create(&new_volume(id, size)).await.unwrap();
        }
        assert_eq!(
            db.volume_place("a", "h@b#p", 6, limit).await.unwrap(),
            Ok(())
        );
        assert_eq!(
            db.volume_place("b", "h@b#p", 4, limit).await.unwrap(),
            Ok(())
        );
        assert_eq!(
            db.volume_place("c", "h@b#p", 1, limit).await.unwrap(),
            Err(10.0),
            "a full pool refuses the placement"
        );
        assert_eq!(db.volume_get("c").await.unwrap().host, None);
        assert_eq!(
            db.volume_place("c", "h@b#q", 1, limit).await.unwrap(),
            Ok(()),
            "another pool is unaffected"
        );
        assert!(
            matches!(
                db.volume_place("zzz", "h@b#q", 1, limit).await,
                Err(DbError::NotFound(_))
            ),
            "a volume that is gone is not found, not refused"
        );
        let unlimited = PoolLimit { capacity_gb: None };
        assert_eq!(
            db.volume_place("c", "h@b#p", 1, unlimited).await.unwrap(),
            Ok(()),
            "an infinite or unknown capacity never refuses"
        );
        let hosts = db.volume_hosts(&["a".into(), "zzz".into()]).await.unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts["a"], "h@b#p");
    }
}
