//! QoS specs: `quality_of_service_specs` (id, name, consumer; soft-deleted, names unique
//! among live rows) with the key/value specs as child rows in
//! `quality_of_service_specs_keys`. A volume type points at its QoS specs through
//! `volume_types.qos_specs_id` (at most one per type, as in Cinder).

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::types::is_unique_violation;
use super::{now, Db, DbError};

/// Cinder's valid consumers; `back-end` is the default.
pub const CONSUMERS: [&str; 3] = ["front-end", "back-end", "both"];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QosSpecsRow {
    pub id: String,
    pub name: String,
    pub consumer: String,
    pub specs: BTreeMap<String, String>,
    pub created_at: String,
}

/// A volume type associated with QoS specs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QosAssociation {
    pub id: String,
    pub name: String,
}

/// Why a QoS change was refused. Messages are Cinder's.
#[derive(Debug, thiserror::Error)]
pub enum QosError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("QoS Specs {0} already exists.")]
    Exists(String),
    #[error("Valid consumer of QoS specs are: ['front-end', 'back-end', 'both']")]
    BadConsumer,
    #[error("Qos specs still in use.")]
    InUse,
    #[error("QoS spec {id} has no spec with key {key}.")]
    KeyNotFound { id: String, key: String },
    #[error("Type {type_id} is already associated with another qos specs: {qos_id}")]
    TypeTaken { type_id: String, qos_id: String },
}

fn not_found(id: &str) -> DbError {
    DbError::NotFound(format!("QoS spec {id}"))
}

impl Db {
    /// Create QoS specs named `name`; `consumer` defaults to `back-end`.
    pub async fn qos_create(
        &self,
        name: &str,
        consumer: Option<&str>,
        specs: &BTreeMap<String, String>,
    ) -> Result<QosSpecsRow, QosError> {
        let consumer = consumer.unwrap_or("back-end");
        if !CONSUMERS.contains(&consumer) {
            return Err(QosError::BadConsumer);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        let done = sqlx::query("INSERT INTO quality_of_service_specs (id, name, consumer, created_at, deleted) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id).bind(name).bind(consumer).bind(now()).bind(false)
            .execute(&mut *tx)
            .await;
        match done {
            Err(e) if is_unique_violation(&e) => return Err(QosError::Exists(name.to_string())),
            other => other.map_err(DbError::from)?,
        };
        for (k, v) in specs {
            sqlx::query("INSERT INTO quality_of_service_specs_keys (qos_specs_id, key, value) VALUES ($1, $2, $3)")
                .bind(&id).bind(k).bind(v)
                .execute(&mut *tx)
                .await
                .map_err(DbError::from)?;
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(self.qos_get(&id).await?)
    }

    pub async fn qos_get(&self, id: &str) -> Result<QosSpecsRow, DbError> {
        let r = sqlx::query("SELECT id, name, consumer, created_at FROM quality_of_service_specs WHERE id = $1 AND NOT deleted")
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| not_found(id))?;
        let keys = sqlx::query(
            "SELECT key, value FROM quality_of_service_specs_keys WHERE qos_specs_id = $1",
        )
        .bind(id)
        .fetch_all(self.reader())
        .await?;
        Ok(QosSpecsRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            consumer: r.try_get("consumer")?,
            created_at: r.try_get("created_at")?,
            specs: keys
                .iter()
                .map(|k| Ok((k.try_get(0)?, k.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()?,
        })
    }

    /// Every live QoS specs, ordered by name.
    pub async fn qos_list(&self) -> Result<Vec<QosSpecsRow>, DbError> {
        let ids =
            sqlx::query("SELECT id FROM quality_of_service_specs WHERE NOT deleted ORDER BY name")
                .fetch_all(self.reader())
                .await?;
        let mut out = Vec::with_capacity(ids.len());
        for r in &ids {
            let id: String = r.try_get(0)?;
            out.push(self.qos_get(&id).await?);
        }
        Ok(out)
    }

    /// Set keys (create or overwrite); the key `consumer` sets the consumer.
    pub async fn qos_set_keys(
        &self,
        id: &str,
        specs: &BTreeMap<String, String>,
    ) -> Result<(), QosError> {
        let consumer = specs.get("consumer").map(String::as_str);
        if consumer.is_some_and(|c| !CONSUMERS.contains(&c)) {
            return Err(QosError::BadConsumer);
        }
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        let done = sqlx::query("UPDATE quality_of_service_specs SET consumer = COALESCE($1, consumer), updated_at = $2 WHERE id = $3 AND NOT deleted")
            .bind(consumer).bind(now()).bind(id)
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
        if done.rows_affected() == 0 {
            return Err(not_found(id).into());
        }
        for (k, v) in specs.iter().filter(|(k, _)| *k != "consumer") {
            sqlx::query("INSERT INTO quality_of_service_specs_keys (qos_specs_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (qos_specs_id, key) DO UPDATE SET value = excluded.value")
                .bind(id).bind(k).bind(v)
                .execute(&mut *tx)
                .await
                .map_err(DbError::from)?;
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(())
    }

    /// Remove keys; every key must exist, else nothing is removed.
    pub async fn qos_delete_keys(&self, id: &str, keys: &[String]) -> Result<(), QosError> {
        let current = self.qos_get(id).await?;
        if let Some(missing) = keys.iter().find(|k| !current.specs.contains_key(*k)) {
            return Err(QosError::KeyNotFound {
                id: id.to_string(),
                key: missing.clone(),
            });
        }
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        for k in keys {
            sqlx::query(
                "DELETE FROM quality_of_service_specs_keys WHERE qos_specs_id = $1 AND key = $2",
            )
            .bind(id)
            .bind(k)
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(())
    }

    /// Delete QoS specs: refused while associated with a volume type unless `force`, which
    /// disassociates them first.
    pub async fn qos_delete(&self, id: &str, force: bool) -> Result<(), QosError> {
        let ts = now();
        let mut tx = self.writer().begin().await.map_err(DbError::from)?;
        let done = sqlx::query("UPDATE quality_of_service_specs SET deleted = $1, deleted_at = $2, updated_at = $2 WHERE id = $3 AND NOT deleted")
            .bind(true).bind(&ts).bind(id)
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
        if done.rows_affected() == 0 {
            return Err(not_found(id).into());
        }
        let freed = sqlx::query("UPDATE volume_types SET qos_specs_id = NULL, updated_at = $1 WHERE qos_specs_id = $2 AND NOT deleted")
            .bind(&ts).bind(id)
            .execute(&mut *tx)
            .await
            .map_err(DbError::from)?;
        if freed.rows_affected() > 0 && !force {
            return Err(QosError::InUse); // dropping the transaction rolls it back
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(())
    }

    /// Volume types associated with QoS specs `id`.
    pub async fn qos_associations(&self, id: &str) -> Result<Vec<QosAssociation>, DbError> {
        self.qos_get(id).await?;
        let rows = sqlx::query("SELECT id, name FROM volume_types WHERE qos_specs_id = $1 AND NOT deleted ORDER BY name")
            .bind(id)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(QosAssociation {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                })
            })
            .collect()
    }

    /// Associate QoS specs with a volume type. A type already associated with other specs is
    /// refused; associating twice with the same specs is a no-op.
    pub async fn qos_associate(&self, id: &str, type_id: &str) -> Result<(), QosError> {
        self.qos_get(id).await?;
        let t = self.volume_type_get(type_id).await?;
        let done = sqlx::query("UPDATE volume_types SET qos_specs_id = $1, updated_at = $2 WHERE id = $3 AND NOT deleted AND (qos_specs_id IS NULL OR qos_specs_id = $1)")
            .bind(id).bind(now()).bind(type_id)
            .execute(self.writer())
            .await
            .map_err(DbError::from)?;
        if done.rows_affected() == 0 {
            let now_t = self.volume_type_get(type_id).await?;
            return Err(QosError::TypeTaken {
                type_id: t.id,
                qos_id: now_t.qos_specs_id.unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Disassociate QoS specs from one volume type.
    pub async fn qos_disassociate(&self, id: &str, type_id: &str) -> Result<(), QosError> {
        self.qos_get(id).await?;
        self.volume_type_get(type_id).await?;
        sqlx::query("UPDATE volume_types SET qos_specs_id = NULL, updated_at = $1 WHERE id = $2 AND qos_specs_id = $3")
            .bind(now()).bind(type_id).bind(id)
            .execute(self.writer())
            .await
            .map_err(DbError::from)?;
        Ok(())
    }

    /// Disassociate QoS specs from every volume type.
    pub async fn qos_disassociate_all(&self, id: &str) -> Result<(), QosError> {
        self.qos_get(id).await?;
        sqlx::query(
            "UPDATE volume_types SET qos_specs_id = NULL, updated_at = $1 WHERE qos_specs_id = $2",
        )
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await
        .map_err(DbError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing;

    fn specs(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn qos_crud_keys_and_consumer() {
        let (db, _dir) = testing::sqlite().await;
        let q = db
            .qos_create(
                "fast",
                Some("front-end"),
                &specs(&[("total_iops_sec", "500")]),
            )
            .await
            .unwrap();
        assert_eq!(q.consumer, "front-end");
        assert!(matches!(
            db.qos_create("fast", None, &BTreeMap::new()).await,
            Err(QosError::Exists(_))
        ));
        assert!(matches!(
            db.qos_create("x", Some("middle"), &BTreeMap::new()).await,
            Err(QosError::BadConsumer)
        ));
        db.qos_set_keys(
            &q.id,
            &specs(&[
                ("total_iops_sec", "900"),
                ("read_bytes_sec", "1"),
                ("consumer", "both"),
            ]),
        )
        .await
        .unwrap();
        let got = db.qos_get(&q.id).await.unwrap();
        assert_eq!(got.consumer, "both");
        assert_eq!(
            got.specs,
            specs(&[("read_bytes_sec", "1"), ("total_iops_sec", "900")])
        );
        assert!(matches!(
            db.qos_delete_keys(&q.id, &["read_bytes_sec".into(), "nope".into()]).await,
            Err(QosError::KeyNotFound { key, .. }) if key == "nope"
        ));
        assert_eq!(
            db.qos_get(&q.id).await.unwrap().specs.len(),
            2,
            "all or nothing"
        );
        db.qos_delete_keys(&q.id, &["read_bytes_sec".into()])
            .await
            .unwrap();
        assert_eq!(
            db.qos_get(&q.id).await.unwrap().specs,
            specs(&[("total_iops_sec", "900")])
        );
        assert_eq!(db.qos_list().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn associated_qos_delete_is_refused_unless_forced() {
        let (db, _dir) = testing::sqlite().await;
        let q = db.qos_create("q", None, &BTreeMap::new()).await.unwrap();
        let other = db
            .qos_create("other", None, &BTreeMap::new())
            .await
            .unwrap();
        let t = db
            .volume_type_create("t", None, true, &BTreeMap::new())
            .await
            .unwrap();
        db.qos_associate(&q.id, &t.id).await.unwrap();
        db.qos_associate(&q.id, &t.id).await.unwrap(); // idempotent
        assert!(matches!(
            db.qos_associate(&other.id, &t.id).await,
            Err(QosError::TypeTaken { qos_id, .. }) if qos_id == q.id
        ));
        assert_eq!(
            db.qos_associations(&q.id).await.unwrap(),
            [QosAssociation {
                id: t.id.clone(),
                name: "t".into()
            }]
        );
        assert!(matches!(
            db.qos_delete(&q.id, false).await,
            Err(QosError::InUse)
        ));
        assert_eq!(
            db.volume_type_get(&t.id)
                .await
                .unwrap()
                .qos_specs_id
                .as_deref(),
            Some(q.id.as_str()),
            "a refused delete changes nothing"
        );
        db.qos_disassociate(&q.id, &t.id).await.unwrap();
        assert!(db.qos_associations(&q.id).await.unwrap().is_empty());
        db.qos_associate(&q.id, &t.id).await.unwrap();
        db.qos_disassociate_all(&q.id).await.unwrap();
        db.qos_associate(&q.id, &t.id).await.unwrap();
        db.qos_delete(&q.id, true).await.unwrap();
        assert!(db
            .volume_type_get(&t.id)
            .await
            .unwrap()
            .qos_specs_id
            .is_none());
        assert!(matches!(db.qos_get(&q.id).await, Err(DbError::NotFound(_))));
        // The name is free again.
        db.qos_create("q", None, &BTreeMap::new()).await.unwrap();
    }
}
