//! Scheduler plugins in the database, the source of truth for hot swap: uploaded components
//! (content-addressed by sha256), chain definitions by version, and the activation history
//! whose newest row is the chain every scheduler runs.

use serde::Serialize;
use sqlx::Row;

use super::{now, Db, DbError};

/// An uploaded component, without its bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentRow {
    pub sha256: String,
    pub name: String,
    /// `filter` or `weigher`.
    pub kind: String,
    pub size: i64,
    pub created_at: String,
}

/// A chain definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainRow {
    pub version: i64,
    pub name: String,
    /// The `ChainSpec` as JSON.
    pub definition: String,
    pub created_at: String,
}

impl Db {
    /// Store a component (idempotent: the same bytes are the same row).
    pub async fn component_put(
        &self,
        sha256: &str,
        name: &str,
        kind: &str,
        bytes: &[u8],
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO plugin_components (sha256, name, kind, size, bytes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(name)
        .bind(kind)
        .bind(bytes.len() as i64)
        .bind(bytes.to_vec())
        .bind(now())
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// The bytes and kind of component `sha256`.
    pub async fn component_bytes(&self, sha256: &str) -> Result<(String, Vec<u8>), DbError> {
        let row = sqlx::query("SELECT kind, bytes FROM plugin_components WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| DbError::NotFound(format!("Plugin component {sha256}")))?;
        Ok((row.try_get("kind")?, row.try_get("bytes")?))
    }

    pub async fn component_delete(&self, sha256: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM plugin_components WHERE sha256 = $1")
            .bind(sha256)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Every component, newest first.
    pub async fn component_list(&self) -> Result<Vec<ComponentRow>, DbError> {
        let rows = sqlx::query(
            "SELECT sha256, name, kind, size, created_at FROM plugin_components ORDER BY created_at DESC, sha256",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ComponentRow {
                    sha256: r.try_get("sha256")?,
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    size: r.try_get("size")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// Record a new chain version; returns it.
    pub async fn chain_create(&self, name: &str, definition: &str) -> Result<i64, DbError> {
        let row = sqlx::query(
            "INSERT INTO scheduler_chains (name, definition, created_at) VALUES ($1, $2, $3) RETURNING version",
        )
        .bind(name)
        .bind(definition)
        .bind(now())
        .fetch_one(self.writer())
        .await?;
        Ok(row.try_get("version")?)
    }

    pub async fn chain_get(&self, version: i64) -> Result<ChainRow, DbError> {
        let r = sqlx::query(
            "SELECT version, name, definition, created_at FROM scheduler_chains WHERE version = $1",
        )
        .bind(version)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("Scheduler chain version {version}")))?;
        Ok(ChainRow {
            version: r.try_get("version")?,
            name: r.try_get("name")?,
            definition: r.try_get("definition")?,
            created_at: r.try_get("created_at")?,
        })
    }

    /// Every chain version, oldest first.
    pub async fn chain_list(&self) -> Result<Vec<ChainRow>, DbError> {
        let rows = sqlx::query(
            "SELECT version, name, definition, created_at FROM scheduler_chains ORDER BY version",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChainRow {
                    version: r.try_get("version")?,
                    name: r.try_get("name")?,
                    definition: r.try_get("definition")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// Make `version` the active chain.
    pub async fn chain_activate(&self, version: i64) -> Result<(), DbError> {
        self.chain_get(version).await?;
        sqlx::query(
            "INSERT INTO scheduler_chain_activations (version, activated_at) VALUES ($1, $2)",
        )
        .bind(version)
        .bind(now())
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// The activation history, newest first: `[active, previous, ...]`.
    pub async fn chain_activations(&self) -> Result<Vec<i64>, DbError> {
        let rows = sqlx::query("SELECT version FROM scheduler_chain_activations ORDER BY id DESC")
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>("version"))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// The active chain, if an operator ever activated one.
    pub async fn chain_active(&self) -> Result<Option<ChainRow>, DbError> {
        match self.chain_activations().await?.first() {
            Some(v) => Ok(Some(self.chain_get(*v).await?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::db::testing;

    #[tokio::test]
    async fn components_chains_and_activation_history() {
        let (db, _dir) = testing::sqlite().await;
        db.component_put("abc", "f", "filter", b"\0asm")
            .await
            .unwrap();
        db.component_put("abc", "f", "filter", b"\0asm")
            .await
            .unwrap();
        assert_eq!(
            db.component_list().await.unwrap().len(),
            1,
            "content-addressed"
        );
        assert_eq!(
            db.component_bytes("abc").await.unwrap().1,
            b"\0asm".to_vec()
        );
        assert!(db.chain_active().await.unwrap().is_none());
        let v1 = db.chain_create("one", "{}").await.unwrap();
        let v2 = db.chain_create("two", "{}").await.unwrap();
        assert!(v2 > v1);
        db.chain_activate(v1).await.unwrap();
        db.chain_activate(v2).await.unwrap();
        assert_eq!(db.chain_active().await.unwrap().unwrap().version, v2);
        assert_eq!(db.chain_activations().await.unwrap(), vec![v2, v1]);
        assert!(
            db.chain_activate(999).await.is_err(),
            "an unknown version is refused"
        );
    }
}
