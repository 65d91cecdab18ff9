//! User metadata of volumes and snapshots (`volume_metadata`, `snapshot_metadata`): the
//! key/value pairs of one resource read, merged, replaced or removed key by key. The table is
//! named by the resource's [`Table`].

use std::collections::BTreeMap;

use sqlx::Row;

use super::listing::Table;
use super::{Db, DbError};

impl Db {
    /// The metadata of resource `id`.
    pub async fn metadata_get(
        &self,
        table: &Table,
        id: &str,
    ) -> Result<BTreeMap<String, String>, DbError> {
        let (meta, fk) = table.metadata;
        let rows = sqlx::query(&format!("SELECT key, value FROM {meta} WHERE {fk} = $1"))
            .bind(id)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

    /// Set the keys of `items` (others stay, unless `replace`), returning the result.
    pub async fn metadata_set(
        &self,
        table: &Table,
        id: &str,
        items: &BTreeMap<String, String>,
        replace: bool,
    ) -> Result<BTreeMap<String, String>, DbError> {
        let (meta, fk) = table.metadata;
        let mut tx = self.writer().begin().await?;
        if replace {
            sqlx::query(&format!("DELETE FROM {meta} WHERE {fk} = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for (k, v) in items {
            sqlx::query(&format!("DELETE FROM {meta} WHERE {fk} = $1 AND key = $2"))
                .bind(id)
                .bind(k)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!(
                "INSERT INTO {meta} ({fk}, key, value) VALUES ($1, $2, $3)"
            ))
            .bind(id)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.metadata_get(table, id).await
    }

    /// Remove key `key`; `false` when it was not there.
    pub async fn metadata_delete(
        &self,
        table: &Table,
        id: &str,
        key: &str,
    ) -> Result<bool, DbError> {
        let (meta, fk) = table.metadata;
        let done = sqlx::query(&format!("DELETE FROM {meta} WHERE {fk} = $1 AND key = $2"))
            .bind(id)
            .bind(key)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use crate::db::testing;
    use crate::db::volumes::{NewVolume, TABLE};

    #[tokio::test]
    async fn metadata_merges_replaces_and_deletes() {
        let (db, _dir) = testing::sqlite().await;
        db.volume_create(&NewVolume {
            id: "v".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            size: 1,
            availability_zone: "nova".into(),
            metadata: [("a".to_string(), "1".to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap();
        let m = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let merged = db
            .metadata_set(&TABLE, "v", &m(&[("a", "2"), ("b", "3")]), false)
            .await
            .unwrap();
        assert_eq!(merged, m(&[("a", "2"), ("b", "3")]));
        let replaced = db
            .metadata_set(&TABLE, "v", &m(&[("c", "4")]), true)
            .await
            .unwrap();
        assert_eq!(replaced, m(&[("c", "4")]));
        assert!(db.metadata_delete(&TABLE, "v", "c").await.unwrap());
        assert!(!db.metadata_delete(&TABLE, "v", "c").await.unwrap());
        assert!(db.metadata_get(&TABLE, "v").await.unwrap().is_empty());
    }
}
