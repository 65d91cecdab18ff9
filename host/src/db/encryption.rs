//! Volume type encryption (`volume_type_encryption`, Cinder's `encryption` table): at most one
//! live spec per volume type (a partial unique index), soft-deleted. The API refuses changes
//! while volumes of the type exist; that check and the write are separate statements, as in
//! Cinder.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::types::is_unique_violation;
use super::{get_flag, now, Db, DbError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncryptionRow {
    pub encryption_id: String,
    pub volume_type_id: String,
    pub provider: String,
    pub cipher: Option<String>,
    pub key_size: Option<i64>,
    pub control_location: String,
    pub deleted: bool,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub deleted_at: Option<String>,
}

/// The fields a create or update sets (`None`: left as it is on update).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncryptionSpec {
    pub provider: Option<String>,
    pub cipher: Option<Option<String>>,
    pub key_size: Option<Option<i64>>,
    pub control_location: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("Volume type encryption for type {0} already exists.")]
    Exists(String),
    #[error("Volume type encryption for type {0} does not exist.")]
    NotFound(String),
}

const COLUMNS: &str = "encryption_id, volume_type_id, provider, cipher, key_size, \
    control_location, deleted, created_at, updated_at, deleted_at";

fn from_row(r: &AnyRow) -> Result<EncryptionRow, sqlx::Error> {
    Ok(EncryptionRow {
        encryption_id: r.try_get("encryption_id")?,
        volume_type_id: r.try_get("volume_type_id")?,
        provider: r.try_get("provider")?,
        cipher: r.try_get("cipher")?,
        key_size: r.try_get("key_size")?,
        control_location: r.try_get("control_location")?,
        deleted: get_flag(r, "deleted")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        deleted_at: r.try_get("deleted_at")?,
    })
}

impl Db {
    /// The live encryption spec of a volume type, if any.
    pub async fn encryption_get(&self, type_id: &str) -> Result<Option<EncryptionRow>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM volume_type_encryption WHERE volume_type_id = $1 AND NOT deleted"
        ))
        .bind(type_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Record a type's encryption (`provider` and `control_location` are required).
    pub async fn encryption_create(
        &self,
        type_id: &str,
        spec: &EncryptionSpec,
    ) -> Result<EncryptionRow, EncryptionError> {
        let id = uuid::Uuid::new_v4().to_string();
        let done = sqlx::query(
            "INSERT INTO volume_type_encryption (encryption_id, volume_type_id, provider, cipher, \
             key_size, control_location, created_at, deleted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(type_id)
        .bind(spec.provider.clone().unwrap_or_default())
        .bind(spec.cipher.clone().flatten())
        .bind(spec.key_size.flatten())
        .bind(
            spec.control_location
                .clone()
                .unwrap_or_else(|| "front-end".into()),
        )
        .bind(now())
        .bind(false)
        .execute(self.writer())
        .await;
        match done {
            Err(e) if is_unique_violation(&e) => {
                return Err(EncryptionError::Exists(type_id.to_string()))
            }
            other => other.map_err(DbError::from)?,
        };
        self.encryption_get(type_id)
            .await?
            .ok_or_else(|| EncryptionError::NotFound(type_id.to_string()))
    }

    /// Change the given fields of a type's live encryption spec.
    pub async fn encryption_update(
        &self,
        type_id: &str,
        spec: &EncryptionSpec,
    ) -> Result<EncryptionRow, EncryptionError> {
        let Some(mut row) = self.encryption_get(type_id).await? else {
            return Err(EncryptionError::NotFound(type_id.to_string()));
        };
        if let Some(p) = &spec.provider {
            row.provider = p.clone();
        }
        if let Some(c) = &spec.cipher {
            row.cipher = c.clone();
        }
        if let Some(k) = spec.key_size {
            row.key_size = k;
        }
        if let Some(c) = &spec.control_location {
            row.control_location = c.clone();
        }
        sqlx::query(
            "UPDATE volume_type_encryption SET provider = $1, cipher = $2, key_size = $3, \
             control_location = $4, updated_at = $5 WHERE encryption_id = $6 AND NOT deleted",
        )
        .bind(&row.provider)
        .bind(&row.cipher)
        .bind(row.key_size)
        .bind(&row.control_location)
        .bind(now())
        .bind(&row.encryption_id)
        .execute(self.writer())
        .await
        .map_err(DbError::from)?;
        self.encryption_get(type_id)
            .await?
            .ok_or_else(|| EncryptionError::NotFound(type_id.to_string()))
    }

    /// Soft-delete a type's live encryption spec.
    pub async fn encryption_delete(&self, type_id: &str) -> Result<(), EncryptionError> {
        let ts = now();
        let done = sqlx::query(
            "UPDATE volume_type_encryption SET deleted = $1, deleted_at = $2, updated_at = $2 \
             WHERE volume_type_id = $3 AND NOT deleted",
        )
        .bind(true)
        .bind(&ts)
        .bind(type_id)
        .execute(self.writer())
        .await
        .map_err(DbError::from)?;
        if done.rows_affected() == 0 {
            return Err(EncryptionError::NotFound(type_id.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing;

    #[tokio::test]
    async fn one_live_encryption_per_type() {
        let (db, _dir) = testing::sqlite().await;
        let t = db
            .volume_type_create("enc", None, true, &Default::default())
            .await
            .unwrap();
        assert!(db.encryption_get(&t.id).await.unwrap().is_none());
        let spec = EncryptionSpec {
            provider: Some("luks".into()),
            control_location: Some("front-end".into()),
            ..Default::default()
        };
        let e = db.encryption_create(&t.id, &spec).await.unwrap();
        assert_eq!(e.provider, "luks");
        assert_eq!(e.key_size, None);
        assert!(matches!(
            db.encryption_create(&t.id, &spec).await,
            Err(EncryptionError::Exists(_))
        ));
        let e2 = db
            .encryption_update(
                &t.id,
                &EncryptionSpec {
                    key_size: Some(Some(256)),
                    cipher: Some(Some("aes-xts-plain64".into())),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(e2.key_size, Some(256));
        assert_eq!(e2.provider, "luks", "fields not given are kept");
        db.encryption_delete(&t.id).await.unwrap();
        assert!(db.encryption_get(&t.id).await.unwrap().is_none());
        assert!(matches!(
            db.encryption_delete(&t.id).await,
            Err(EncryptionError::NotFound(_))
        ));
        db.encryption_create(&t.id, &spec).await.unwrap();
    }
}
