//! Volume types: the `volume_types` table with its extra specs (`volume_type_extra_specs`) and
//! project access list (`volume_type_projects`). Types are soft-deleted; names are unique
//! among live types (a partial unique index, so concurrent creates from two API processes
//! cannot both win). The type named [`DEFAULT_TYPE_NAME`] (created by migration 0002) is the
//! default: volumes created without a type get it, and it cannot be deleted or renamed.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{get_flag, now, Db, DbError};

/// Cinder's default `default_volume_type`.
pub const DEFAULT_TYPE_NAME: &str = "__DEFAULT__";

/// A live volume type with its extra specs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeTypeRow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub qos_specs_id: Option<String>,
    pub extra_specs: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

impl VolumeTypeRow {
    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_TYPE_NAME
    }
}

/// Why a change to a volume type was refused. Messages are Cinder's.
#[derive(Debug, thiserror::Error)]
pub enum TypeError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("Volume Type {0} already exists.")]
    Exists(String),
    #[error("Target volume type is still in use.")]
    InUse,
    #[error("Volume Type is currently in use.")]
    SpecsInUse,
    #[error("Default volume type can not be deleted.")]
    DeleteDefault,
    /// The type is some project's default (`/default-types`).
    #[error("The volume type {0} is a default volume type and cannot be deleted.")]
    ProjectDefault(String),
    #[error("The default volume type {DEFAULT_TYPE_NAME} cannot be renamed.")]
    RenameDefault,
    #[error("Volume Type {type_id} has no extra specs with key {key}.")]
    SpecNotFound { type_id: String, key: String },
    #[error("Type access modification is not applicable to public volume type.")]
    PublicAccess,
    #[error("Volume type access for {type_id} / {project} combination already exists.")]
    AccessExists { type_id: String, project: String },
    #[error("Volume type access not found for {type_id} / {project} combination.")]
    AccessNotFound { type_id: String, project: String },
}

/// Which types [`Db::volume_type_list`] returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct TypeFilter<'a> {
    /// `Some(true)`: public types, plus the private ones `project` may use; `Some(false)`:
    /// private types only; `None`: all.
    pub is_public: Option<bool>,
    pub project: Option<&'a str>,
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

const COLUMNS: &str = "id, name, description, is_public, qos_specs_id, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<VolumeTypeRow, sqlx::Error> {
    Ok(VolumeTypeRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        is_public: get_flag(r, "is_public")?,
        qos_specs_id: r.try_get("qos_specs_id")?,
        extra_specs: BTreeMap::new(),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn not_found(what: &str) -> DbError {
    DbError::NotFound(format!("Volume type {what}"))
}

impl Db {
    /// Create a type with its extra specs, atomically.
    pub async fn volume_type_create(
        &self,
        name: &str,
        description: Option<&str>,
        is_public: bool,
        extra_specs: &BTreeMap<String, String>,
    ) -> Result<VolumeTypeRow, TypeError> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        let inserted = sqlx::query("INSERT INTO volume_types (id, name, description, is_public, created_at, deleted) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&id).bind(name).bind(description).bind(is_public).bind(now()).bind(false)
            .execute(&mut *tx)
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(TypeError::Exists(name.to_string())),
            other => other.map_err(DbError::from)?,
        };
        for (k, v) in extra_specs {
            sqlx::query("INSERT INTO volume_type_extra_specs (volume_type_id, key, value) VALUES ($1, $2, $3)")
                .bind(&id).bind(k).bind(v)
                .execute(&mut *tx)
                .await
                .map_err(DbError::from)?;
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(self.volume_type_get(&id).await?)
    }

    /// A live type by id.
    pub async fn volume_type_get(&self, id: &str) -> Result<VolumeTypeRow, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM volume_types WHERE id = $1 AND NOT deleted"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| not_found(id))?;
        let mut t = from_row(&row)?;
        t.extra_specs = self.volume_type_extra_specs(id).await?;
        Ok(t)
    }

    /// A live type by id, else by name (Cinder's `get_by_name_or_id`).
    pub async fn volume_type_get_by_name_or_id(
        &self,
        name_or_id: &str,
    ) -> Result<VolumeTypeRow, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM volume_types WHERE (id = $1 OR name = $1) AND NOT deleted ORDER BY CASE WHEN id = $1 THEN 0 ELSE 1 END"
        ))
        .bind(name_or_id)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| not_found(name_or_id))?;
        let mut t = from_row(&row)?;
        t.extra_specs = self.volume_type_extra_specs(&t.id).await?;
        Ok(t)
    }

    /// The type a new volume of `project` gets: `name_or_id` when given, else the project's
    /// default type (`/default-types`), else the type named [`DEFAULT_TYPE_NAME`] (Cinder's
    /// `get_default_volume_type`).
    pub async fn volume_type_resolve(
        &self,
        project: &str,
        name_or_id: Option<&str>,
    ) -> Result<VolumeTypeRow, DbError> {
        if let Some(name_or_id) = name_or_id {
            return self.volume_type_get_by_name_or_id(name_or_id).await;
        }
        match self.default_type_get(project).await? {
            Some(d) => self.volume_type_get(&d.volume_type_id).await,
            None => self.volume_type_get_by_name_or_id(DEFAULT_TYPE_NAME).await,
        }
    }

    /// Live types, ordered by name.
    pub async fn volume_type_list(
        &self,
        filter: TypeFilter<'_>,
    ) -> Result<Vec<VolumeTypeRow>, DbError> {
        let mut sql = format!("SELECT {COLUMNS} FROM volume_types t WHERE NOT deleted");
        let mut project = None;
        match (filter.is_public, filter.project) {
            (Some(true), Some(p)) => {
                sql.push_str(" AND (is_public OR EXISTS (SELECT 1 FROM volume_type_projects a WHERE a.volume_type_id = t.id AND a.project_id = $1))");
                project = Some(p);
            }
            (Some(true), None) => sql.push_str(" AND is_public"),
            (Some(false), _) => sql.push_str(" AND NOT is_public"),
            (None, _) => {}
        }
        sql.push_str(" ORDER BY name");
        let mut q = sqlx::query(&sql);
        if let Some(p) = project {
            q = q.bind(p);
        }
        let rows = q.fetch_all(self.reader()).await?;
        let mut types: Vec<VolumeTypeRow> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
        let specs = sqlx::query("SELECT s.volume_type_id, s.key, s.value FROM volume_type_extra_specs s JOIN volume_types t ON t.id = s.volume_type_id WHERE NOT t.deleted")
            .fetch_all(self.reader())
            .await?;
        let mut by_type: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for r in &specs {
            by_type
                .entry(r.try_get(0)?)
                .or_default()
                .insert(r.try_get(1)?, r.try_get(2)?);
        }
        for t in &mut types {
            t.extra_specs = by_type.remove(&t.id).unwrap_or_default();
        }
        Ok(types)
    }

    /// Change name, description and/or visibility. A rename renames the type's per-type quota
    /// resources (`volumes_<name>`, ...) in the same transaction.
    pub async fn volume_type_update(
        &self,
        id: &str,
        name: Option<&str>,
        description: Option<&str>,
        is_public: Option<bool>,
    ) -> Result<VolumeTypeRow, TypeError> {
        let current = self.volume_type_get(id).await?;
        if current.is_default() && name.is_some_and(|n| n != current.name) {
            return Err(TypeError::RenameDefault);
        }
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        let done = sqlx::query("UPDATE volume_types SET name = COALESCE($1, name), description = COALESCE($2, description), is_public = COALESCE($3, is_public), updated_at = $4 WHERE id = $5 AND NOT deleted")
            .bind(name).bind(description).bind(is_public).bind(now()).bind(id)
            .execute(&mut *tx)
            .await;
        match done {
            Err(e) if is_unique_violation(&e) => {
                return Err(TypeError::Exists(name.unwrap_or_default().to_string()))
            }
            Err(e) => return Err(DbError::from(e).into()),
            Ok(d) if d.rows_affected() == 0 => return Err(not_found(id).into()),
            Ok(_) => {}
        }
        if let Some(new_name) = name {
            // The type's per-type quota resources are named after it.
            super::quotas::rename_type_resources(&mut tx, &current.name, new_name)
                .await
                .map_err(DbError::from)?;
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(self.volume_type_get(id).await?)
    }

    /// The name of type `id` (deleted or not), for charging quota to it; `None` for no type or
    /// an id that names none.
    pub async fn volume_type_name(&self, id: Option<&str>) -> Result<Option<String>, DbError> {
        let Some(id) = id else { return Ok(None) };
        let row = sqlx::query("SELECT name FROM volume_types WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Is any live volume of this type?
    pub async fn volume_type_in_use(&self, id: &str) -> Result<bool, DbError> {
        let n: i64 =
            sqlx::query("SELECT COUNT(*) FROM volumes WHERE volume_type_id = $1 AND NOT deleted")
                .bind(id)
                .fetch_one(self.reader())
                .await?
                .try_get(0)?;
        Ok(n > 0)
    }

    /// Soft-delete a type: refused for the default type, a project's default type and while
    /// volumes or live groups use it. One compare-and-swap statement, so a check cannot go
    /// stale before the write.
    pub async fn volume_type_delete(&self, id: &str) -> Result<(), TypeError> {
        let ts = now();
        let done = sqlx::query("UPDATE volume_types SET deleted = $1, deleted_at = $2, updated_at = $2 WHERE id = $3 AND NOT deleted AND name <> $4 AND NOT EXISTS (SELECT 1 FROM volumes v WHERE v.volume_type_id = $3 AND NOT v.deleted) AND NOT EXISTS (SELECT 1 FROM group_volume_types m JOIN volume_groups g ON g.id = m.group_id WHERE m.volume_type_id = $3 AND NOT g.deleted) AND NOT EXISTS (SELECT 1 FROM default_volume_types d WHERE d.volume_type_id = $3)")
            .bind(true).bind(&ts).bind(id).bind(DEFAULT_TYPE_NAME)
            .execute(self.writer())
            .await
            .map_err(DbError::from)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let t = self.volume_type_get(id).await?;
        let project_default: bool =
            sqlx::query("SELECT 1 FROM default_volume_types WHERE volume_type_id = $1")
                .bind(id)
                .fetch_optional(self.reader())
                .await
                .map_err(DbError::from)?
                .is_some();
        if t.is_default() {
            Err(TypeError::DeleteDefault)
        } else if project_default {
            Err(TypeError::ProjectDefault(id.to_string()))
        } else {
            Err(TypeError::InUse)
        }
    }

    pub async fn volume_type_extra_specs(
        &self,
        id: &str,
    ) -> Result<BTreeMap<String, String>, DbError> {
        let rows =
            sqlx::query("SELECT key, value FROM volume_type_extra_specs WHERE volume_type_id = $1")
                .bind(id)
                .fetch_all(self.reader())
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Create or update extra specs. Refused while volumes use the type (Cinder).
    pub async fn volume_type_extra_specs_update(
        &self,
        id: &str,
        specs: &BTreeMap<String, String>,
    ) -> Result<(), TypeError> {
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        // Write first: on SQLite this takes the write lock before anything is read.
        let touched =
            sqlx::query("UPDATE volume_types SET updated_at = $1 WHERE id = $2 AND NOT deleted")
                .bind(now())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(DbError::from)?;
        if touched.rows_affected() == 0 {
            return Err(not_found(id).into());
        }
        let used: i64 =
            sqlx::query("SELECT COUNT(*) FROM volumes WHERE volume_type_id = $1 AND NOT deleted")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(DbError::from)?
                .try_get(0)
                .map_err(DbError::from)?;
        if used > 0 {
            return Err(TypeError::SpecsInUse);
        }
        for (k, v) in specs {
            sqlx::query("INSERT INTO volume_type_extra_specs (volume_type_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (volume_type_id, key) DO UPDATE SET value = excluded.value")
                .bind(id).bind(k).bind(v)
                .execute(&mut *tx)
                .await
                .map_err(DbError::from)?;
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(())
    }

    /// Delete one extra spec. Refused while volumes use the type (Cinder).
    pub async fn volume_type_extra_spec_delete(
        &self,
        id: &str,
        key: &str,
    ) -> Result<(), TypeError> {
        self.volume_type_get(id).await?;
        if self.volume_type_in_use(id).await? {
            return Err(TypeError::SpecsInUse);
        }
        let done = sqlx::query(
            "DELETE FROM volume_type_extra_specs WHERE volume_type_id = $1 AND key = $2",
        )
        .bind(id)
        .bind(key)
        .execute(self.writer())
        .await
        .map_err(DbError::from)?;
        if done.rows_affected() == 0 {
            return Err(TypeError::SpecNotFound {
                type_id: id.to_string(),
                key: key.to_string(),
            });
        }
        Ok(())
    }

    /// Projects granted a private type.
    pub async fn volume_type_projects(&self, id: &str) -> Result<Vec<String>, DbError> {
        let rows = sqlx::query("SELECT project_id FROM volume_type_projects WHERE volume_type_id = $1 ORDER BY project_id")
            .bind(id)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// May `project` use type `t`? Public types: yes; private ones: when granted.
    pub async fn volume_type_accessible(
        &self,
        t: &VolumeTypeRow,
        project: &str,
    ) -> Result<bool, DbError> {
        Ok(t.is_public
            || self
                .volume_type_projects(&t.id)
                .await?
                .iter()
                .any(|p| p == project))
    }

    pub async fn volume_type_access_add(&self, id: &str, project: &str) -> Result<(), TypeError> {
        if self.volume_type_get(id).await?.is_public {
            return Err(TypeError::PublicAccess);
        }
        let done = sqlx::query(
            "INSERT INTO volume_type_projects (volume_type_id, project_id) VALUES ($1, $2)",
        )
        .bind(id)
        .bind(project)
        .execute(self.writer())
        .await;
        match done {
            Err(e) if is_unique_violation(&e) => Err(TypeError::AccessExists {
                type_id: id.to_string(),
                project: project.to_string(),
            }),
            Err(e) => Err(DbError::from(e).into()),
            Ok(_) => Ok(()),
        }
    }

    pub async fn volume_type_access_remove(
        &self,
        id: &str,
        project: &str,
    ) -> Result<(), TypeError> {
        if self.volume_type_get(id).await?.is_public {
            return Err(TypeError::PublicAccess);
        }
        let done = sqlx::query(
            "DELETE FROM volume_type_projects WHERE volume_type_id = $1 AND project_id = $2",
        )
        .bind(id)
        .bind(project)
        .execute(self.writer())
        .await
        .map_err(DbError::from)?;
        if done.rows_affected() == 0 {
            return Err(TypeError::AccessNotFound {
                type_id: id.to_string(),
                project: project.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
