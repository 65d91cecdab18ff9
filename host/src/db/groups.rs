//! Generic volume groups (3.13+): the `volume_groups` table (GROUPS is an SQL keyword) and the
//! volume types a group may hold (`group_volume_types`, in the order given). Membership is
//! `volumes.group_id`. A group is `creating` until the scheduler gives it a backend (`host`,
//! `host@backend`) — or, made from a source, until its volumes are made — then `available`;
//! a group being deleted is destroyed when its last volume is gone. The `*_settle` functions
//! are what the volume service calls at the end of a volume's creation or deletion.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now, Db, DbError};

/// One group with its volume types.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRow {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: String,
    pub availability_zone: String,
    /// `host@backend` once placed.
    pub host: Option<String>,
    pub group_type_id: String,
    pub volume_type_ids: Vec<String>,
    pub group_snapshot_id: Option<String>,
    pub source_group_id: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

/// What the API records for a new group (status `creating`).
#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub availability_zone: String,
    /// Known at once for a group made from a source (the source's backend).
    pub host: Option<String>,
    pub group_type_id: String,
    pub volume_type_ids: Vec<String>,
    pub group_snapshot_id: Option<String>,
    pub source_group_id: Option<String>,
}

/// How a group's membership change was refused (the API answers 400 with the message).
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(
        "Cannot add volume {0} to the group: it is in another group or changed while being added."
    )]
    Taken(String),
    #[error("Cannot remove volume {0} from the group: it is not in the group.")]
    NotMember(String),
}

const COLUMNS: &str = "id, project_id, user_id, name, description, status, availability_zone, \
    host, group_type_id, group_snapshot_id, source_group_id, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<GroupRow, sqlx::Error> {
    Ok(GroupRow {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        status: r.try_get("status")?,
        availability_zone: r.try_get("availability_zone")?,
        host: r.try_get("host")?,
        group_type_id: r.try_get("group_type_id")?,
        volume_type_ids: Vec::new(),
        group_snapshot_id: r.try_get("group_snapshot_id")?,
        source_group_id: r.try_get("source_group_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn not_found(id: &str) -> DbError {
    DbError::NotFound(format!("Group {id}"))
}

impl Db {
    /// Insert a group in status `creating` with its volume types.
    pub async fn group_create(&self, g: &NewGroup) -> Result<GroupRow, DbError> {
        let ts = now();
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO volume_groups (id, project_id, user_id, name, description, status, \
             availability_zone, host, group_type_id, group_snapshot_id, source_group_id, \
             created_at, updated_at, deleted) \
             VALUES ($1, $2, $3, $4, $5, 'creating', $6, $7, $8, $9, $10, $11, $11, $12)",
        )
        .bind(&g.id)
        .bind(&g.project_id)
        .bind(&g.user_id)
        .bind(&g.name)
        .bind(&g.description)
        .bind(&g.availability_zone)
        .bind(&g.host)
        .bind(&g.group_type_id)
        .bind(&g.group_snapshot_id)
        .bind(&g.source_group_id)
        .bind(&ts)
        .bind(false)
        .execute(&mut *tx)
        .await?;
        for (i, t) in g.volume_type_ids.iter().enumerate() {
            sqlx::query(
                "INSERT INTO group_volume_types (group_id, volume_type_id, position) VALUES ($1, $2, $3)",
            )
            .bind(&g.id)
            .bind(t)
            .bind(i as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.group_get(&g.id).await
    }

    /// The live group `id` with its volume types.
    pub async fn group_get(&self, id: &str) -> Result<GroupRow, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM volume_groups WHERE id = $1 AND NOT deleted"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| not_found(id))?;
        let mut g = from_row(&row)?;
        g.volume_type_ids = self.group_volume_types(id).await?;
        Ok(g)
    }

    async fn group_volume_types(&self, id: &str) -> Result<Vec<String>, DbError> {
        let rows = sqlx::query(
            "SELECT volume_type_id FROM group_volume_types WHERE group_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    /// Live groups, newest first: of `project`, or of every project when `None`.
    pub async fn group_list(&self, project: Option<&str>) -> Result<Vec<GroupRow>, DbError> {
        let filter = if project.is_some() {
            " AND project_id = $1"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM volume_groups WHERE NOT deleted{filter} ORDER BY created_at DESC, id DESC"
        );
        let mut q = sqlx::query(&sql);
        if let Some(p) = project {
            q = q.bind(p);
        }
        let rows = q.fetch_all(self.reader()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut g = from_row(r)?;
            g.volume_type_ids = self.group_volume_types(&g.id).await?;
            out.push(g);
        }
        Ok(out)
    }

    /// Rename / redescribe a group (`None` leaves a field as it is).
    pub async fn group_update(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE volume_groups SET name = COALESCE($1, name), \
             description = COALESCE($2, description), updated_at = $3 WHERE id = $4 AND NOT deleted",
        )
        .bind(name)
        .bind(description)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Move a group from one of `from` (any status when empty) to `to`; `false` when it was
    /// in another status.
    pub async fn group_transition(
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
            "UPDATE volume_groups SET status = $1, updated_at = $2 WHERE id = $3 AND NOT deleted{cond}"
        ))
        .bind(to)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The scheduler chose the group's backend: record it; the group is available.
    pub async fn group_placed(&self, id: &str, backend: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE volume_groups SET host = $1, status = 'available', updated_at = $2 \
             WHERE id = $3 AND NOT deleted AND status = 'creating'",
        )
        .bind(backend)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Add and remove volumes in one transaction. An added volume must still be in no group,
    /// a removed one in this group; otherwise nothing changes.
    pub async fn group_change_members(
        &self,
        id: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), MembershipError> {
        let ts = now();
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        for v in add {
            let done = sqlx::query(
                "UPDATE volumes SET group_id = $1, updated_at = $2 WHERE id = $3 AND NOT deleted \
                 AND group_id IS NULL",
            )
            .bind(id)
            .bind(&ts)
            .bind(v)
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
            if done.rows_affected() == 0 {
                return Err(MembershipError::Taken(v.clone()));
            }
        }
        for v in remove {
            let done = sqlx::query(
                "UPDATE volumes SET group_id = NULL, updated_at = $1 WHERE id = $2 AND NOT deleted \
                 AND group_id = $3",
            )
            .bind(&ts)
            .bind(v)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
            if done.rows_affected() == 0 {
                return Err(MembershipError::NotMember(v.clone()));
            }
        }
        sqlx::query("UPDATE volume_groups SET updated_at = $1 WHERE id = $2")
            .bind(&ts)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
        tx.commit().await.map_err(DbError::from)?;
        Ok(())
    }

    /// Soft-delete a group and release its `groups` quota (once: only the call that deleted
    /// the row releases).
    pub async fn group_destroy(&self, id: &str) -> Result<(), DbError> {
        let ts = now();
        let project: Option<String> = sqlx::query(
            "UPDATE volume_groups SET status = 'deleted', deleted = $1, deleted_at = $2, updated_at = $2 \
             WHERE id = $3 AND NOT deleted RETURNING project_id",
        )
        .bind(true)
        .bind(&ts)
        .bind(id)
        .fetch_optional(self.writer())
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
        if let Some(project) = project {
            self.quota_release(&project, &[("groups", 1)])
                .await
                .map_err(|e| match e {
                    super::quotas::QuotaError::Db(d) => d,
                    other => DbError::NotFound(other.to_string()),
                })?;
        }
        Ok(())
    }

    /// A volume of group `id` finished creating (or failed): a group made from a source
    /// becomes `available` once none of its volumes is `creating` any more, `error` if one
    /// failed.
    pub async fn group_settle_creating(&self, id: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE volume_groups SET updated_at = $1, status = CASE WHEN EXISTS \
             (SELECT 1 FROM volumes v WHERE v.group_id = $2 AND NOT v.deleted AND v.status = 'error') \
             THEN 'error' ELSE 'available' END \
             WHERE id = $2 AND NOT deleted AND status = 'creating' AND host IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM volumes v WHERE v.group_id = $2 AND NOT v.deleted AND v.status = 'creating')",
        )
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// A volume of group `id` was deleted (or failed to be): a group being deleted is
    /// destroyed once it has no volume left; `error_deleting` when a volume could not go.
    pub async fn group_settle_deleting(&self, id: &str) -> Result<(), DbError> {
        let g = match self.group_get(id).await {
            Ok(g) => g,
            Err(DbError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if g.status != "deleting" {
            return Ok(());
        }
        let volumes = self.volumes_of_group(id).await?;
        if volumes.is_empty() {
            return self.group_destroy(id).await;
        }
        if volumes.iter().all(|v| v.status != "deleting") {
            self.group_transition(id, &["deleting"], "error_deleting")
                .await?;
        }
        Ok(())
    }

    /// Groups being made from group snapshot `gs` (Cinder refuses to delete a group snapshot
    /// while one is).
    pub async fn groups_from_group_snapshot(&self, gs: &str) -> Result<usize, DbError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) FROM volume_groups WHERE group_snapshot_id = $1 AND NOT deleted \
             AND status = 'creating'",
        )
        .bind(gs)
        .fetch_one(self.reader())
        .await?
        .try_get(0)?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing;
    use crate::db::volumes::NewVolume;

    async fn group(db: &Db, id: &str, host: Option<&str>) -> GroupRow {
        let gt = db
            .group_type_create(&format!("gt-{id}"), None, true, &Default::default())
            .await
            .unwrap();
        db.group_create(&NewGroup {
            id: id.into(),
            project_id: "p1".into(),
            user_id: "u1".into(),
            name: Some("g".into()),
            availability_zone: "nova".into(),
            host: host.map(String::from),
            group_type_id: gt.id,
            volume_type_ids: vec!["6cc2462a-3926-4fcd-ba0d-f9e28335ab77".into()],
            ..Default::default()
        })
        .await
        .unwrap()
    }

    async fn volume(db: &Db, id: &str, group: Option<&str>) {
        db.volume_create(&NewVolume {
            id: id.into(),
            project_id: "p1".into(),
            user_id: "u1".into(),
            size: 1,
            availability_zone: "nova".into(),
            group_id: group.map(String::from),
            ..Default::default()
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_group_is_placed_and_its_members_change_atomically() {
        let (db, _dir) = testing::sqlite().await;
        let g = group(&db, "g1", None).await;
        assert_eq!(g.status, "creating");
        assert_eq!(g.volume_type_ids.len(), 1);
        assert!(db.group_placed("g1", "node@file").await.unwrap());
        assert!(
            !db.group_placed("g1", "node@other").await.unwrap(),
            "placed once"
        );
        volume(&db, "v1", None).await;
        volume(&db, "v2", Some("g1")).await;
        db.group_change_members("g1", &["v1".into()], &[])
            .await
            .unwrap();
        assert_eq!(db.volumes_of_group("g1").await.unwrap().len(), 2);
        // Removing a stranger fails and undoes the add made in the same call.
        volume(&db, "v3", None).await;
        let err = db
            .group_change_members("g1", &["v3".into()], &["nope".into()])
            .await
            .unwrap_err();
        assert!(matches!(err, MembershipError::NotMember(_)));
        assert!(db.volume_get("v3").await.unwrap().group_id.is_none());
        db.group_change_members("g1", &[], &["v1".into()])
            .await
            .unwrap();
        assert!(db.volume_get("v1").await.unwrap().group_id.is_none());
    }

    #[tokio::test]
    async fn groups_settle_when_their_volumes_are_done() {
        let (db, _dir) = testing::sqlite().await;
        group(&db, "g1", Some("node@file")).await;
        volume(&db, "v1", Some("g1")).await;
        volume(&db, "v2", Some("g1")).await;
        db.volume_created("v1", None, None).await.unwrap();
        db.group_settle_creating("g1").await.unwrap();
        assert_eq!(db.group_get("g1").await.unwrap().status, "creating");
        db.volume_set_status("v2", "error").await.unwrap();
        db.group_settle_creating("g1").await.unwrap();
        assert_eq!(db.group_get("g1").await.unwrap().status, "error");

        assert!(db.group_transition("g1", &[], "deleting").await.unwrap());
        db.volume_destroy("v1").await.unwrap();
        db.group_settle_deleting("g1").await.unwrap();
        assert_eq!(db.group_get("g1").await.unwrap().status, "error_deleting");
        db.volume_destroy("v2").await.unwrap();
        db.group_transition("g1", &[], "deleting").await.unwrap();
        db.group_settle_deleting("g1").await.unwrap();
        assert!(matches!(
            db.group_get("g1").await,
            Err(DbError::NotFound(_))
        ));
    }
}
