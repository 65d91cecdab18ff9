//! The driver each volume backend serves with (driver hot swap, migration 0006): an
//! activation history per backend (`host@backend`) whose newest row is the live driver — an
//! uploaded `driver` component with the manifest it was swapped in with, or the driver
//! configured in `backends.NAME` (no component). A volume service loads it at start-up, so a
//! restart keeps a swapped driver; a rollback activates the row before.

use serde::Serialize;
use sqlx::Row;

use super::{now, Db, DbError};

/// One activation of a backend's driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendDriverRow {
    pub id: i64,
    /// `host@backend`.
    pub backend: String,
    /// The uploaded component; `None`: the driver configured for the backend.
    pub component_sha256: Option<String>,
    /// The exec manifest (TOML) given with the swap; `None`: the configured manifest.
    pub manifest: Option<String>,
    /// What the driver reported as `driver_version` when it was validated.
    pub driver_version: String,
    pub activated_at: String,
}

impl BackendDriverRow {
    /// Same driver and manifest (what a rollback must differ in).
    pub fn same_driver(&self, other: &BackendDriverRow) -> bool {
        self.component_sha256 == other.component_sha256 && self.manifest == other.manifest
    }
}

/// An uploaded component with its bytes.
#[derive(Debug, Clone)]
pub struct ComponentBytes {
    pub sha256: String,
    pub name: String,
    /// `filter`, `weigher` or `driver`.
    pub kind: String,
    pub bytes: Vec<u8>,
}

impl Db {
    /// Record that `backend` now serves with `component_sha256` (or its configured driver).
    pub async fn backend_driver_activate(
        &self,
        backend: &str,
        component_sha256: Option<&str>,
        manifest: Option<&str>,
        driver_version: &str,
    ) -> Result<BackendDriverRow, DbError> {
        let activated_at = now();
        let row = sqlx::query(
            "INSERT INTO backend_drivers (backend, component_sha256, manifest, driver_version, activated_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(backend)
        .bind(component_sha256)
        .bind(manifest)
        .bind(driver_version)
        .bind(&activated_at)
        .fetch_one(self.writer())
        .await?;
        Ok(BackendDriverRow {
            id: row.try_get("id")?,
            backend: backend.to_string(),
            component_sha256: component_sha256.map(String::from),
            manifest: manifest.map(String::from),
            driver_version: driver_version.to_string(),
            activated_at,
        })
    }

    /// The activation history of `backend`, newest first: `[active, previous, ...]`.
    pub async fn backend_driver_history(
        &self,
        backend: &str,
    ) -> Result<Vec<BackendDriverRow>, DbError> {
        let rows = sqlx::query(
            "SELECT id, backend, component_sha256, manifest, driver_version, activated_at \
             FROM backend_drivers WHERE backend = $1 ORDER BY id DESC",
        )
        .bind(backend)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BackendDriverRow {
                    id: r.try_get("id")?,
                    backend: r.try_get("backend")?,
                    component_sha256: r.try_get("component_sha256")?,
                    manifest: r.try_get("manifest")?,
                    driver_version: r.try_get("driver_version")?,
                    activated_at: r.try_get("activated_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// The driver `backend` serves with, if it was ever swapped.
    pub async fn backend_driver_active(
        &self,
        backend: &str,
    ) -> Result<Option<BackendDriverRow>, DbError> {
        Ok(self
            .backend_driver_history(backend)
            .await?
            .into_iter()
            .next())
    }

    /// Component `sha256` with its name, kind and bytes.
    pub async fn component_with_bytes(&self, sha256: &str) -> Result<ComponentBytes, DbError> {
        let r = sqlx::query(
            "SELECT sha256, name, kind, bytes FROM plugin_components WHERE sha256 = $1",
        )
        .bind(sha256)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("Plugin component {sha256}")))?;
        Ok(ComponentBytes {
            sha256: r.try_get("sha256")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            bytes: r.try_get("bytes")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::db::testing;

    #[tokio::test]
    async fn history_per_backend_newest_first() {
        let (db, _dir) = testing::sqlite().await;
        assert!(db.backend_driver_active("h@a").await.unwrap().is_none());
        db.component_put("c1", "drv", "driver", b"\0asm")
            .await
            .unwrap();
        let first = db
            .backend_driver_activate("h@a", Some("c1"), None, "1.0")
            .await
            .unwrap();
        db.backend_driver_activate("h@b", None, None, "9")
            .await
            .unwrap();
        let second = db
            .backend_driver_activate("h@a", None, Some("[roots]"), "0.9")
            .await
            .unwrap();
        let history = db.backend_driver_history("h@a").await.unwrap();
        assert_eq!(history, vec![second.clone(), first.clone()]);
        assert_eq!(db.backend_driver_active("h@a").await.unwrap(), Some(second));
        assert!(!history[0].same_driver(&history[1]));
        assert!(history[1].same_driver(&first));
        let c = db.component_with_bytes("c1").await.unwrap();
        assert_eq!((c.name.as_str(), c.kind.as_str()), ("drv", "driver"));
        assert_eq!(c.bytes, b"\0asm".to_vec());
        assert!(db.component_with_bytes("nope").await.is_err());
    }
}
