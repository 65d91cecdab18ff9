//! User messages (the `/messages` API) over the `messages` table: what failed for a user and
//! why. Written by the services (scheduler: no valid backend, with the filters' reasons in
//! `detail`), read and deleted by users. Rows are hard-deleted.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{format_time, now, Db, DbError};

/// How long a message is kept at least (Cinder's `message_ttl`, 30 days).
pub const MESSAGE_TTL: time::Duration = time::Duration::days(30);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageRow {
    pub id: String,
    pub project_id: String,
    pub request_id: Option<String>,
    pub resource_type: Option<String>,
    pub resource_uuid: Option<String>,
    pub event_id: String,
    pub message_level: String,
    pub action_id: Option<String>,
    pub detail_id: Option<String>,
    pub detail: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// A message to record.
#[derive(Debug, Clone, Default)]
pub struct NewMessage<'a> {
    pub project_id: &'a str,
    pub request_id: Option<&'a str>,
    pub resource_type: Option<&'a str>,
    pub resource_uuid: Option<&'a str>,
    /// Cinder's action id, e.g. `001` (schedule allocate volume).
    pub action_id: &'a str,
    /// Cinder's detail id, e.g. `003` (no backend available).
    pub detail_id: &'a str,
    /// Kiln's own explanation (which filter removed which pools).
    pub detail: Option<&'a str>,
}

/// Which messages [`Db::user_message_list`] returns; newest first.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// `None`: every project (admin).
    pub project_id: Option<String>,
    /// Exact-match filters on columns: event_id, resource_type, resource_uuid,
    /// message_level, request_id.
    pub equals: Vec<(&'static str, String)>,
    pub limit: Option<i64>,
    /// Return messages after this one (in list order).
    pub marker: Option<String>,
}

/// Columns a filter may name.
pub const FILTER_COLUMNS: [&str; 5] = [
    "event_id",
    "resource_type",
    "resource_uuid",
    "message_level",
    "request_id",
];

const COLUMNS: &str = "id, project_id, request_id, resource_type, resource_uuid, event_id, message_level, action_id, detail_id, detail, created_at, expires_at";

fn from_row(r: &AnyRow) -> Result<MessageRow, sqlx::Error> {
    Ok(MessageRow {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        request_id: r.try_get("request_id")?,
        resource_type: r.try_get("resource_type")?,
        resource_uuid: r.try_get("resource_uuid")?,
        event_id: r.try_get("event_id")?,
        message_level: r.try_get("message_level")?,
        action_id: r.try_get("action_id")?,
        detail_id: r.try_get("detail_id")?,
        detail: r.try_get("detail")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

impl Db {
    /// Record an ERROR message; the event id is Cinder's `VOLUME_<RESOURCE>_<ACTION>_<DETAIL>`.
    pub async fn user_message_create(&self, m: &NewMessage<'_>) -> Result<MessageRow, DbError> {
        let id = uuid::Uuid::new_v4().to_string();
        let created = time::OffsetDateTime::now_utc();
        let resource = m.resource_type.unwrap_or("VOLUME");
        let event_id = format!("VOLUME_{resource}_{}_{}", m.action_id, m.detail_id);
        sqlx::query(&format!("INSERT INTO messages ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
            .bind(&id)
            .bind(m.project_id)
            .bind(m.request_id)
            .bind(m.resource_type)
            .bind(m.resource_uuid)
            .bind(&event_id)
            .bind("ERROR")
            .bind(m.action_id)
            .bind(m.detail_id)
            .bind(m.detail)
            .bind(format_time(created))
            .bind(format_time(created + MESSAGE_TTL))
            .execute(self.writer())
            .await?;
        self.user_message_get(&id, None).await
    }

    /// One message; with `project`, only when it belongs to that project.
    pub async fn user_message_get(
        &self,
        id: &str,
        project: Option<&str>,
    ) -> Result<MessageRow, DbError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM messages WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .map(|r| from_row(&r))
            .transpose()?
            .filter(|m| project.is_none_or(|p| m.project_id == p));
        row.ok_or_else(|| DbError::NotFound(format!("Message {id}")))
    }

    pub async fn user_message_list(&self, f: &MessageFilter) -> Result<Vec<MessageRow>, DbError> {
        let mut sql = format!("SELECT {COLUMNS} FROM messages WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(p) = &f.project_id {
            binds.push(p.clone());
            sql.push_str(&format!(" AND project_id = ${}", binds.len()));
        }
        for (col, value) in &f.equals {
            assert!(FILTER_COLUMNS.contains(col), "not a filter column: {col}");
            binds.push(value.clone());
            sql.push_str(&format!(" AND {col} = ${}", binds.len()));
        }
        if let Some(marker) = &f.marker {
            let m = self
                .user_message_get(marker, f.project_id.as_deref())
                .await?;
            binds.push(m.created_at);
            let c = binds.len();
            binds.push(m.id);
            let i = binds.len();
            sql.push_str(&format!(
                " AND (created_at < ${c} OR (created_at = ${c} AND id < ${i}))"
            ));
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC");
        if let Some(limit) = f.limit {
            sql.push_str(&format!(" LIMIT {}", limit.max(0)));
        }
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(self.reader()).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Delete a message; with `project`, only one of that project.
    pub async fn user_message_delete(
        &self,
        id: &str,
        project: Option<&str>,
    ) -> Result<(), DbError> {
        self.user_message_get(id, project).await?;
        sqlx::query("DELETE FROM messages WHERE id = $1")
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Delete messages past their expiry (a periodic task may call this).
    pub async fn user_message_expire(&self) -> Result<u64, DbError> {
        let done = sqlx::query("DELETE FROM messages WHERE expires_at < $1")
            .bind(now())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing;

    #[tokio::test]
    async fn messages_are_scoped_filtered_paged_and_deleted() {
        let (db, _dir) = testing::sqlite().await;
        let mut ids = Vec::new();
        for (i, project) in ["p1", "p1", "p2", "p1"].iter().enumerate() {
            let uuid = format!("vol-{i}");
            let m = db
                .user_message_create(&NewMessage {
                    project_id: project,
                    request_id: Some("req-1"),
                    resource_type: Some("VOLUME"),
                    resource_uuid: Some(&uuid),
                    action_id: "001",
                    detail_id: "003",
                    detail: Some("CapacityFilter removed pool a"),
                })
                .await
                .unwrap();
            assert_eq!(m.event_id, "VOLUME_VOLUME_001_003");
            assert!(m.expires_at.as_deref() > Some(m.created_at.as_str()));
            ids.push(m.id);
        }
        let p1 = MessageFilter {
            project_id: Some("p1".into()),
            ..Default::default()
        };
        let all = db.user_message_list(&p1).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(
            all.windows(2).all(|w| w[0].created_at >= w[1].created_at),
            "newest first"
        );
        let page1 = db
            .user_message_list(&MessageFilter {
                limit: Some(2),
                ..p1.clone()
            })
            .await
            .unwrap();
        let page2 = db
            .user_message_list(&MessageFilter {
                marker: Some(page1[1].id.clone()),
                ..p1.clone()
            })
            .await
            .unwrap();
        assert_eq!(page1.len() + page2.len(), 3);
        assert_eq!(page2[0].id, all[2].id);
        let one = db
            .user_message_list(&MessageFilter {
                equals: vec![("resource_uuid", "vol-1".into())],
                ..p1.clone()
            })
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(
            db.user_message_list(&MessageFilter::default())
                .await
                .unwrap()
                .len(),
            4
        );
        // Another project's message is not found for p1, nor deletable by it.
        assert!(db.user_message_get(&ids[2], Some("p1")).await.is_err());
        assert!(db.user_message_delete(&ids[2], Some("p1")).await.is_err());
        db.user_message_delete(&ids[0], Some("p1")).await.unwrap();
        assert!(matches!(
            db.user_message_get(&ids[0], None).await,
            Err(DbError::NotFound(_))
        ));
        assert_eq!(db.user_message_expire().await.unwrap(), 0);
    }
}
