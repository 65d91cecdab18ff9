//! Group types (3.11): the `group_types` table with its specs (`group_type_specs`). Like
//! volume types they are soft-deleted, names are unique among live types (a partial unique
//! index), and a type some live group uses cannot be deleted.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::types::is_unique_violation;
use super::{get_flag, now, Db, DbError};

/// A live group type with its specs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupTypeRow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub group_specs: BTreeMap<String, String>,
    pub created_at: String,
}

/// Why a change to a group type was refused. Messages are Cinder's.
#[derive(Debug, thiserror::Error)]
pub enum GroupTypeError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("Group Type {0} already exists.")]
    Exists(String),
    #[error("Group Type {0} deletion is not allowed with groups present with the type.")]
    InUse(String),
    #[error("Group Type {type_id} has no specs with key {key}.")]
    SpecNotFound { type_id: String, key: String },
}

const COLUMNS: &str = "id, name, description, is_public, created_at";

fn from_row(r: &AnyRow) -> Result<GroupTypeRow, sqlx::Error> {
    Ok(GroupTypeRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        is_public: get_flag(r, "is_public")?,
        group_specs: BTreeMap::new(),
        created_at: r.try_get("created_at")?,
    })
}

fn not_found(what: &str) -> DbError {
    DbError::NotFound(format!("Group type {what}"))
}

impl Db {
    /// Create a group type with its specs, atomically.
    pub async fn group_type_create(
        &self,
        name: &str,
        description: Option<&str>,
        is_public: bool,
        specs: &BTreeMap<String, String>,
    ) -> Result<GroupTypeRow, GroupTypeError> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        let inserted = sqlx::query(
            "INSERT INTO group_types (id, name, description, is_public, created_at, deleted) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(name)
        .bind(description)
        .bind(is_public)
        .bind(now())
        .bind(false)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(GroupTypeError::Exists(name.to_string()))
            }
            other => other.map_err(DbError::from)?,
        };
        for (k, v) in specs {
            sqlx::query(
                "INSERT INTO group_type_specs (group_type_id, key, value) VALUES ($1, $2, $3)",
            )
            .bind(&id)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(self.group_type_get(&id).await?)
    }

    /// A live group type by id, else by name.
    pub async fn group_type_get(&self, name_or_id: &str) -> Result<GroupTypeRow, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM group_types WHERE (id = $1 OR name = $1) AND NOT deleted \
             ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END"
        ))
        .bind(name_or_id)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| not_found(name_or_id))?;
        let mut t = from_row(&row)?;
        t.group_specs = self.group_type_specs(&t.id).await?;
        Ok(t)
    }

    /// Live group types ordered by name; `public_only` hides the private ones.
    pub async fn group_type_list(&self, public_only: bool) -> Result<Vec<GroupTypeRow>, DbError> {
        let filter = if public_only { " AND is_public" } else { "" };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM group_types WHERE NOT deleted{filter} ORDER BY name"
        ))
        .fetch_all(self.reader())
        .await?;
        let mut out: Vec<GroupTypeRow> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
        let specs = sqlx::query(
            "SELECT s.group_type_id, s.key, s.value FROM group_type_specs s \
             JOIN group_types t ON t.id = s.group_type_id WHERE NOT t.deleted",
        )
        .fetch_all(self.reader())
        .await?;
        let mut by_type: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for r in &specs {
            by_type
                .entry(r.try_get(0)?)
                .or_default()
                .insert(r.try_get(1)?, r.try_get(2)?);
        }
        for t in &mut out {
            t.group_specs = by_type.remove(&t.id).unwrap_or_default();
        }
        Ok(out)
    }

    /// Rename / redescribe / publish a group type (`None` leaves a field as it is).
    pub async fn group_type_update(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
        is_public: Option<bool>,
    ) -> Result<GroupTypeRow, GroupTypeError> {
        let done = sqlx::query(
            "UPDATE group_types SET name = COALESCE($1, name), \
             description = COALESCE($2, description), is_public = COALESCE($3, is_public), \
             updated_at = $4 WHERE id = $5 AND NOT deleted",
        )
        .bind(name)
        .bind(description)
        .bind(is_public)
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await;
        match done {
            Err(e) if is_unique_violation(&e) => {
                return Err(GroupTypeError::Exists(name.unwrap_or_default().to_string()))
            }
            Err(e) => return Err(DbError::from(e).into()),
            Ok(d) if d.rows_affected() == 0 => return Err(not_found(id).into()),
            Ok(_) => {}
        }
        Ok(self.group_type_get(id).await?)
    }

    /// Soft-delete a group type no live group uses (checked in the same statement).
    pub async fn group_type_delete(&self, id: &str) -> Result<(), GroupTypeError> {
        let ts = now();
        let done = sqlx::query(
            "UPDATE group_types SET deleted = $1, deleted_at = $2 WHERE id = $3 AND NOT deleted \
             AND NOT EXISTS (SELECT 1 FROM volume_groups g WHERE g.group_type_id = $3 AND NOT g.deleted)",
        )
        .bind(true)
        .bind(&ts)
        .bind(id)
        .execute(self.writer())
        .await
        .map_err(DbError::from)?;
        if done.rows_affected() == 0 {
            // Gone, or in use: tell which.
            self.group_type_get(id).await?;
            return Err(GroupTypeError::InUse(id.to_string()));
        }
        Ok(())
    }

    pub async fn group_type_specs(&self, id: &str) -> Result<BTreeMap<String, String>, DbError> {
        let rows = sqlx::query("SELECT key, value FROM group_type_specs WHERE group_type_id = $1")
            .bind(id)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Create or replace specs of a live group type.
    pub async fn group_type_specs_update(
        &self,
        id: &str,
        specs: &BTreeMap<String, String>,
    ) -> Result<(), DbError> {
        let mut tx = self.writer().begin().await?;
        let live = sqlx::query("SELECT 1 FROM group_types WHERE id = $1 AND NOT deleted")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if live.is_none() {
            return Err(not_found(id));
        }
        for (k, v) in specs {
            sqlx::query(
                "INSERT INTO group_type_specs (group_type_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (group_type_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(id)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE group_types SET updated_at = $1 WHERE id = $2")
            .bind(now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn group_type_spec_delete(&self, id: &str, key: &str) -> Result<(), GroupTypeError> {
        self.group_type_get(id).await?;
        let done =
            sqlx::query("DELETE FROM group_type_specs WHERE group_type_id = $1 AND key = $2")
                .bind(id)
                .bind(key)
                .execute(self.writer())
                .await
                .map_err(DbError::from)?;
        if done.rows_affected() == 0 {
            return Err(GroupTypeError::SpecNotFound {
                type_id: id.into(),
                key: key.into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing;

    #[tokio::test]
    async fn group_types_round_trip_with_unique_live_names() {
        let (db, _dir) = testing::sqlite().await;
        let specs = [(
            "consistent_group_snapshot_enabled".to_string(),
            "<is> False".to_string(),
        )]
        .into();
        let t = db
            .group_type_create("gold", Some("d"), true, &specs)
            .await
            .unwrap();
        assert_eq!(t.group_specs, specs);
        assert!(matches!(
            db.group_type_create("gold", None, true, &BTreeMap::new())
                .await,
            Err(GroupTypeError::Exists(_))
        ));
        assert_eq!(db.group_type_get("gold").await.unwrap().id, t.id);
        let t2 = db
            .group_type_update(&t.id, Some("silver"), None, Some(false))
            .await
            .unwrap();
        assert_eq!(t2.name, "silver");
        assert!(!t2.is_public);
        assert!(db.group_type_list(true).await.unwrap().is_empty());
        db.group_type_specs_update(&t.id, &[("k".to_string(), "v".to_string())].into())
            .await
            .unwrap();
        assert_eq!(db.group_type_specs(&t.id).await.unwrap().len(), 2);
        db.group_type_spec_delete(&t.id, "k").await.unwrap();
        assert!(matches!(
            db.group_type_spec_delete(&t.id, "k").await,
            Err(GroupTypeError::SpecNotFound { .. })
        ));
        db.group_type_delete(&t.id).await.unwrap();
        assert!(matches!(
            db.group_type_get(&t.id).await,
            Err(DbError::NotFound(_))
        ));
        // The name is free again once the type is deleted.
        db.group_type_create("silver", None, true, &BTreeMap::new())
            .await
            .unwrap();
    }
}
