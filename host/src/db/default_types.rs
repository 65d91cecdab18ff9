//! Per-project default volume types (`default_volume_types`, Cinder 3.62): which type a
//! volume created in a project without naming one gets. A project without a row gets the
//! type named [`super::types::DEFAULT_TYPE_NAME`].

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now, Db, DbError};

/// One project's default type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefaultTypeRow {
    pub project_id: String,
    pub volume_type_id: String,
}

fn from_row(r: &AnyRow) -> Result<DefaultTypeRow, sqlx::Error> {
    Ok(DefaultTypeRow {
        project_id: r.try_get("project_id")?,
        volume_type_id: r.try_get("volume_type_id")?,
    })
}

impl Db {
    /// Make live type `type_id` the default of `project` (replacing any). NotFound when the
    /// type is not live — checked in the same statement, so a concurrent delete of the type
    /// cannot leave a default pointing at it.
    pub async fn default_type_set(
        &self,
        project: &str,
        type_id: &str,
    ) -> Result<DefaultTypeRow, DbError> {
        let ts = now();
        let done = sqlx::query(
            "INSERT INTO default_volume_types (project_id, volume_type_id, created_at) \
             SELECT $1, id, $3 FROM volume_types WHERE id = $2 AND NOT deleted \
             ON CONFLICT (project_id) DO UPDATE SET volume_type_id = excluded.volume_type_id, \
             updated_at = $3",
        )
        .bind(project)
        .bind(type_id)
        .bind(&ts)
        .execute(self.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!("Volume type {type_id}")));
        }
        Ok(DefaultTypeRow {
            project_id: project.to_string(),
            volume_type_id: type_id.to_string(),
        })
    }

    /// The default type set for `project`, if any.
    pub async fn default_type_get(&self, project: &str) -> Result<Option<DefaultTypeRow>, DbError> {
        let row = sqlx::query(
            "SELECT project_id, volume_type_id FROM default_volume_types WHERE project_id = $1",
        )
        .bind(project)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Every project's default type, by project.
    pub async fn default_type_list(&self) -> Result<Vec<DefaultTypeRow>, DbError> {
        let rows = sqlx::query(
            "SELECT project_id, volume_type_id FROM default_volume_types ORDER BY project_id",
        )
        .fetch_all(self.reader())
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Forget `project`'s default type (idempotent, as Cinder's unset).
    pub async fn default_type_unset(&self, project: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM default_volume_types WHERE project_id = $1")
            .bind(project)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::db::testing;
    use crate::db::types::TypeError;
    use crate::db::DbError;

    #[tokio::test]
    async fn a_project_default_replaces_default_for_that_project_only_and_pins_the_type() {
        let (db, _dir) = testing::sqlite().await;
        let gold = db
            .volume_type_create("gold", None, true, &Default::default())
            .await
            .unwrap();
        assert_eq!(db.default_type_get("p").await.unwrap(), None);
        assert_eq!(
            db.volume_type_resolve("p", None).await.unwrap().name,
            "__DEFAULT__"
        );

        db.default_type_set("p", &gold.id).await.unwrap();
        assert_eq!(
            db.volume_type_resolve("p", None).await.unwrap().name,
            "gold"
        );
        assert_eq!(
            db.volume_type_resolve("q", None).await.unwrap().name,
            "__DEFAULT__"
        );
        assert_eq!(
            db.volume_type_resolve("p", Some("__DEFAULT__"))
                .await
                .unwrap()
                .name,
            "__DEFAULT__",
            "a named type wins over the project's default"
        );
        // Setting again replaces; the list has one row per project.
        let default = db.volume_type_resolve("q", None).await.unwrap();
        db.default_type_set("p", &default.id).await.unwrap();
        db.default_type_set("p", &gold.id).await.unwrap();
        db.default_type_set("q", &gold.id).await.unwrap();
        let all = db.default_type_list().await.unwrap();
        assert_eq!(
            all.iter()
                .map(|d| d.project_id.as_str())
                .collect::<Vec<_>>(),
            ["p", "q"]
        );

        // A project's default cannot be deleted; unset (twice: idempotent), then it can.
        assert!(matches!(
            db.volume_type_delete(&gold.id).await,
            Err(TypeError::ProjectDefault(_))
        ));
        for p in ["p", "p", "q"] {
            db.default_type_unset(p).await.unwrap();
        }
        db.volume_type_delete(&gold.id).await.unwrap();
        assert!(matches!(
            db.default_type_set("p", &gold.id).await,
            Err(DbError::NotFound(_))
        ));
    }
}
