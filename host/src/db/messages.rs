//! The `messages` table: what failed and why, in words a user can act on (Cinder's user
//! messages, served by the `/messages` API). Written by the scheduler and the volume service
//! whenever an action on a user's resource fails.

use serde::Serialize;
use sqlx::Row;

use super::{format_time, now, Db, DbError};

/// How long a message is kept (Cinder's `message_ttl` default: 30 days).
const TTL: time::Duration = time::Duration::days(30);

/// A user message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageRow {
    pub id: String,
    pub project_id: String,
    pub request_id: Option<String>,
    pub resource_type: Option<String>,
    pub resource_uuid: Option<String>,
    /// Cinder's event id (`VOLUME_VOLUME_001_002` style).
    pub event_id: String,
    pub message_level: String,
    /// Cinder's action id (`001` = schedule allocate volume, ...).
    pub action_id: Option<String>,
    /// Cinder's detail id (`002` = no valid backend, ...).
    pub detail_id: Option<String>,
    /// Kiln's explanation: which filter removed which pools and why, the driver's error ...
    pub detail: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// A message to record.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub project_id: &'a str,
    pub request_id: &'a str,
    pub resource_type: &'a str,
    pub resource_uuid: &'a str,
    pub action_id: &'a str,
    pub detail_id: &'a str,
    pub detail: &'a str,
}

impl Db {
    /// Record an ERROR-level user message.
    pub async fn message_create(&self, m: &NewMessage<'_>) -> Result<String, DbError> {
        let id = uuid::Uuid::new_v4().to_string();
        let event_id = format!(
            "VOLUME_{}_{}_{}",
            m.resource_type.to_uppercase(),
            m.action_id,
            m.detail_id
        );
        let created = time::OffsetDateTime::now_utc();
        sqlx::query(
            "INSERT INTO messages (id, project_id, request_id, resource_type, resource_uuid, event_id, \
             message_level, action_id, detail_id, detail, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'ERROR', $7, $8, $9, $10, $11)",
        )
        .bind(&id)
        .bind(m.project_id)
        .bind(m.request_id)
        .bind(m.resource_type)
        .bind(m.resource_uuid)
        .bind(&event_id)
        .bind(m.action_id)
        .bind(m.detail_id)
        .bind(m.detail)
        .bind(now())
        .bind(format_time(created + TTL))
        .execute(self.writer())
        .await?;
        Ok(id)
    }

    /// Messages of `project_id` (every project when `None`), newest first.
    pub async fn message_list(&self, project_id: Option<&str>) -> Result<Vec<MessageRow>, DbError> {
        let rows = match project_id {
            Some(p) => {
                sqlx::query("SELECT * FROM messages WHERE project_id = $1 ORDER BY created_at DESC")
                    .bind(p)
                    .fetch_all(self.reader())
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM messages ORDER BY created_at DESC")
                    .fetch_all(self.reader())
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
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
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }
}
