//! The `services` table: one row per (host, binary), found or created at start-up, bumped by
//! every heartbeat, read by `kiln status`, the scheduler (up / disabled / frozen) and RPC
//! clients (minimum RPC version for the version cap).

use std::time::Duration;

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{get_flag, now, parse_time, Db, DbError};
use crate::rpc::Version;

/// One row of the services table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRow {
    pub id: i64,
    pub uuid: String,
    pub host: String,
    pub binary: String,
    pub topic: String,
    pub availability_zone: String,
    pub report_count: i64,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub frozen: bool,
    pub rpc_current_version: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

impl ServiceRow {
    /// Up while the last heartbeat (or creation) is newer than `down_time`.
    pub fn is_up(&self, down_time: Duration) -> bool {
        let last = self.updated_at.as_deref().unwrap_or(&self.created_at);
        let Some(last) = parse_time(last) else {
            return false;
        };
        let threshold = time::OffsetDateTime::now_utc() - down_time;
        last >= threshold
    }
}

const COLUMNS: &str = "id, uuid, host, \"binary\", topic, availability_zone, report_count, disabled, disabled_reason, frozen, rpc_current_version, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<ServiceRow, sqlx::Error> {
    Ok(ServiceRow {
        id: r.try_get("id")?,
        uuid: r.try_get("uuid")?,
        host: r.try_get("host")?,
        binary: r.try_get("binary")?,
        topic: r.try_get("topic")?,
        availability_zone: r.try_get("availability_zone")?,
        report_count: r.try_get("report_count")?,
        disabled: get_flag(r, "disabled")?,
        disabled_reason: r.try_get("disabled_reason")?,
        frozen: get_flag(r, "frozen")?,
        rpc_current_version: r.try_get("rpc_current_version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// What a starting service registers as.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub host: &'a str,
    pub binary: &'a str,
    pub topic: &'a str,
    pub availability_zone: &'a str,
    pub rpc_version: Version,
}

impl Db {
    /// Find the row of (host, binary) or create it; either way record the current zone, topic
    /// and RPC version (a restarted, upgraded service announces its new version). The
    /// disabled flag and reason an operator set are kept.
    pub async fn service_register(&self, reg: &Registration<'_>) -> Result<ServiceRow, DbError> {
        let ts = now();
        sqlx::query(
            "INSERT INTO services (uuid, host, \"binary\", topic, availability_zone, rpc_current_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (host, \"binary\") DO UPDATE SET \
             topic = excluded.topic, availability_zone = excluded.availability_zone, \
             rpc_current_version = excluded.rpc_current_version, updated_at = excluded.updated_at",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(reg.host)
        .bind(reg.binary)
        .bind(reg.topic)
        .bind(reg.availability_zone)
        .bind(reg.rpc_version.to_string())
        .bind(&ts)
        .bind(&ts)
        .execute(self.writer())
        .await?;
        self.service_get(reg.host, reg.binary)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("service {}/{}", reg.host, reg.binary)))
    }

    pub async fn service_get(
        &self,
        host: &str,
        binary: &str,
    ) -> Result<Option<ServiceRow>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM services WHERE host = $1 AND \"binary\" = $2"
        ))
        .bind(host)
        .bind(binary)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Bump `report_count` and `updated_at`. Returns `false` when the row is gone (an operator
    /// deleted it), so the caller can register again.
    pub async fn service_heartbeat(&self, id: i64) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE services SET report_count = report_count + 1, updated_at = $1 WHERE id = $2",
        )
        .bind(now())
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every service, ordered by binary then host.
    pub async fn service_list(&self) -> Result<Vec<ServiceRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM services ORDER BY \"binary\", host"
        ))
        .fetch_all(self.reader())
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Enable or disable a service (with the operator's reason).
    pub async fn service_set_disabled(
        &self,
        host: &str,
        binary: &str,
        disabled: bool,
        reason: Option<&str>,
    ) -> Result<ServiceRow, DbError> {
        let done = sqlx::query("UPDATE services SET disabled = $1, disabled_reason = $2, modified_at = $3 WHERE host = $4 AND \"binary\" = $5")
            .bind(disabled)
            .bind(reason)
            .bind(now())
            .bind(host)
            .bind(binary)
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!(
                "service {binary} on host {host}"
            )));
        }
        self.service_get(host, binary)
            .await?
            .ok_or_else(|| DbError::NotFound(format!("service {binary} on host {host}")))
    }

    /// Freeze or thaw one service (by id) when it is not already in that state; whether it
    /// changed. A frozen volume service's backend receives no new placements.
    pub async fn service_set_frozen(&self, id: i64, frozen: bool) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE services SET frozen = $1, modified_at = $2 WHERE id = $3 AND frozen = $4",
        )
        .bind(frozen)
        .bind(now())
        .bind(id)
        .bind(!frozen)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The lowest RPC version recorded by the services of `binary` — up or down, since a
    /// down service may come back — or `None` when no service recorded one.
    pub async fn service_min_rpc_version(&self, binary: &str) -> Result<Option<Version>, DbError> {
        let rows = sqlx::query("SELECT rpc_current_version FROM services WHERE \"binary\" = $1 AND rpc_current_version IS NOT NULL")
            .bind(binary)
            .fetch_all(self.reader())
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get::<Option<String>, _>(0))
            .filter_map(|v| v.parse::<Version>().ok())
            .min())
    }
}

/// Format a heartbeat age for humans: "3 s ago".
pub fn age(ts: &str) -> String {
    match parse_time(ts) {
        Some(t) => {
            let secs = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
            format!("{secs} s ago")
        }
        None => "never".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{format_time, testing};

    fn reg<'a>(host: &'a str, version: Version) -> Registration<'a> {
        Registration {
            host,
            binary: "kiln-volume",
            topic: "volume",
            availability_zone: "nova",
            rpc_version: version,
        }
    }

    #[tokio::test]
    async fn register_is_find_or_create_and_keeps_operator_flags() {
        let (db, _d) = testing::sqlite().await;
        let a = db
            .service_register(&reg("h@a", Version::new(3, 0)))
            .await
            .unwrap();
        assert!(!a.disabled);
        db.service_set_disabled("h@a", "kiln-volume", true, Some("maintenance"))
            .await
            .unwrap();
        let again = db
            .service_register(&reg("h@a", Version::new(3, 1)))
            .await
            .unwrap();
        assert_eq!(again.id, a.id, "restart must reuse the row");
        assert!(again.disabled);
        assert_eq!(again.disabled_reason.as_deref(), Some("maintenance"));
        assert_eq!(again.rpc_current_version.as_deref(), Some("3.1"));
        assert_eq!(db.service_list().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn heartbeat_bumps_count_and_reports_a_deleted_row() {
        let (db, _d) = testing::sqlite().await;
        let a = db
            .service_register(&reg("h@a", Version::new(3, 0)))
            .await
            .unwrap();
        assert!(db.service_heartbeat(a.id).await.unwrap());
        assert!(db.service_heartbeat(a.id).await.unwrap());
        let row = db.service_get("h@a", "kiln-volume").await.unwrap().unwrap();
        assert_eq!(row.report_count, 2);
        assert!(row.is_up(Duration::from_secs(60)));
        assert!(!db.service_heartbeat(a.id + 100).await.unwrap());
    }

    #[tokio::test]
    async fn stale_heartbeat_means_down() {
        let (db, _d) = testing::sqlite().await;
        let mut a = db
            .service_register(&reg("h@a", Version::new(3, 0)))
            .await
            .unwrap();
        a.updated_at = Some(format_time(
            time::OffsetDateTime::now_utc() - Duration::from_secs(61),
        ));
        assert!(!a.is_up(Duration::from_secs(60)));
        assert!(a.is_up(Duration::from_secs(120)));
    }

    #[tokio::test]
    async fn min_rpc_version_is_the_oldest_service() {
        let (db, _d) = testing::sqlite().await;
        assert_eq!(
            db.service_min_rpc_version("kiln-volume").await.unwrap(),
            None
        );
        db.service_register(&reg("h@a", Version::new(3, 4)))
            .await
            .unwrap();
        db.service_register(&reg("h@b", Version::new(3, 2)))
            .await
            .unwrap();
        assert_eq!(
            db.service_min_rpc_version("kiln-volume").await.unwrap(),
            Some(Version::new(3, 2))
        );
    }

    #[tokio::test]
    async fn disabling_an_unknown_service_is_not_found() {
        let (db, _d) = testing::sqlite().await;
        let e = db
            .service_set_disabled("nope", "kiln-volume", true, None)
            .await
            .unwrap_err();
        assert!(matches!(e, DbError::NotFound(_)));
    }
}
