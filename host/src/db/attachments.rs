//! The `volume_attachment` table: one row per attachment of a volume to an instance or host,
//! from `reserved` through `attaching` to `attached`, soft-deleted (`detached`) when it ends.
//! The connector and the connection info are stored as JSON text.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now, Db, DbError};

/// One attachment.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentRow {
    pub id: String,
    pub volume_id: String,
    pub instance_uuid: Option<String>,
    pub attached_host: Option<String>,
    pub mountpoint: Option<String>,
    /// `rw` or `ro`.
    pub attach_mode: Option<String>,
    /// `reserved`, `attaching`, `attached`, `detaching`, `detached`, `error_attaching`.
    pub attach_status: String,
    pub connector: Option<serde_json::Value>,
    pub connection_info: Option<serde_json::Value>,
    pub attach_time: Option<String>,
    pub detach_time: Option<String>,
    pub created_at: String,
}

const COLUMNS: &str = "id, volume_id, instance_uuid, attached_host, mountpoint, attach_mode, \
    attach_status, connector, connection_info, attach_time, detach_time, created_at";

/// [`COLUMNS`] qualified by `alias` (for joins).
fn qualified_columns(alias: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c} AS {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn json_col(r: &AnyRow, col: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let text: Option<String> = r.try_get(col)?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

fn from_row(r: &AnyRow) -> Result<AttachmentRow, sqlx::Error> {
    Ok(AttachmentRow {
        id: r.try_get("id")?,
        volume_id: r.try_get("volume_id")?,
        instance_uuid: r.try_get("instance_uuid")?,
        attached_host: r.try_get("attached_host")?,
        mountpoint: r.try_get("mountpoint")?,
        attach_mode: r.try_get("attach_mode")?,
        attach_status: r.try_get("attach_status")?,
        connector: json_col(r, "connector")?,
        connection_info: json_col(r, "connection_info")?,
        attach_time: r.try_get("attach_time")?,
        detach_time: r.try_get("detach_time")?,
        created_at: r.try_get("created_at")?,
    })
}

/// What a new attachment starts with.
#[derive(Debug, Clone, Default)]
pub struct NewAttachment {
    pub id: String,
    pub volume_id: String,
    pub instance_uuid: Option<String>,
    pub attached_host: Option<String>,
    pub mountpoint: Option<String>,
    pub attach_mode: String,
    pub attach_status: String,
}

/// Changes to an attachment; `None` leaves a column as it is.
#[derive(Debug, Clone, Default)]
pub struct AttachmentUpdate {
    pub attach_status: Option<String>,
    pub attached_host: Option<String>,
    pub mountpoint: Option<String>,
    pub connector: Option<serde_json::Value>,
    pub connection_info: Option<serde_json::Value>,
    /// Stamp `attach_time` now.
    pub attached_now: bool,
}

impl Db {
    pub async fn attachment_create(&self, a: &NewAttachment) -> Result<AttachmentRow, DbError> {
        let ts = now();
        sqlx::query(
            "INSERT INTO volume_attachment (id, volume_id, instance_uuid, attached_host, mountpoint, \
             attach_mode, attach_status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&a.id)
        .bind(&a.volume_id)
        .bind(&a.instance_uuid)
        .bind(&a.attached_host)
        .bind(&a.mountpoint)
        .bind(&a.attach_mode)
        .bind(&a.attach_status)
        .bind(&ts)
        .execute(self.writer())
        .await?;
        self.attachment_get(&a.id).await
    }

    /// The attachment `id` (not deleted).
    pub async fn attachment_get(&self, id: &str) -> Result<AttachmentRow, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM volume_attachment WHERE id = $1 AND NOT deleted"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("Attachment {id}")))?;
        Ok(from_row(&row)?)
    }

    /// The live attachments of each of `volume_ids` (oldest first).
    pub async fn attachments_of(
        &self,
        volume_ids: &[String],
    ) -> Result<Vec<AttachmentRow>, DbError> {
        let (from, cond) =
            super::listing::among_ids(self.engine(), "volume_attachment", "a", "volume_id", 1);
        let sql = format!(
            "SELECT {} FROM {from} WHERE {cond} AND NOT a.deleted ORDER BY a.created_at, a.id",
            qualified_columns("a")
        );
        let rows = sqlx::query(&sql)
            .bind(super::listing::json_list(volume_ids))
            .fetch_all(self.reader())
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Live attachments, optionally of one project's volumes, newest first.
    pub async fn attachment_list(
        &self,
        project_id: Option<&str>,
    ) -> Result<Vec<AttachmentRow>, DbError> {
        let cols = qualified_columns("a");
        let mut sql = format!(
            "SELECT {cols} FROM volume_attachment a JOIN volumes v ON v.id = a.volume_id \
             WHERE NOT a.deleted"
        );
        if project_id.is_some() {
            sql.push_str(" AND v.project_id = $1");
        }
        sql.push_str(" ORDER BY a.created_at DESC, a.id DESC");
        let mut q = sqlx::query(&sql);
        if let Some(p) = project_id {
            q = q.bind(p);
        }
        let rows = q.fetch_all(self.reader()).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    pub async fn attachment_update(
        &self,
        id: &str,
        u: &AttachmentUpdate,
    ) -> Result<AttachmentRow, DbError> {
        let ts = now();
        let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
        let done = sqlx::query(
            "UPDATE volume_attachment SET attach_status = COALESCE($1, attach_status), \
             attached_host = COALESCE($2, attached_host), mountpoint = COALESCE($3, mountpoint), \
             connector = COALESCE($4, connector), connection_info = COALESCE($5, connection_info), \
             attach_time = CASE WHEN $6 THEN $7 ELSE attach_time END, updated_at = $7 \
             WHERE id = $8 AND NOT deleted",
        )
        .bind(&u.attach_status)
        .bind(&u.attached_host)
        .bind(&u.mountpoint)
        .bind(json(&u.connector))
        .bind(json(&u.connection_info))
        .bind(u.attached_now)
        .bind(&ts)
        .bind(id)
        .execute(self.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound(format!("Attachment {id}")));
        }
        self.attachment_get(id).await
    }

    /// End an attachment (soft delete, status `detached`).
    pub async fn attachment_destroy(&self, id: &str) -> Result<(), DbError> {
        let ts = now();
        sqlx::query(
            "UPDATE volume_attachment SET attach_status = 'detached', detach_time = $1, deleted = $2, \
             deleted_at = $1, updated_at = $1 WHERE id = $3",
        )
        .bind(&ts)
        .bind(true)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing;
    use crate::db::volumes::NewVolume;

    #[tokio::test]
    async fn attachments_live_until_destroyed() {
        let (db, _dir) = testing::sqlite().await;
        db.volume_create(&NewVolume {
            id: "v".into(),
            project_id: "p".into(),
            user_id: "u".into(),
            size: 1,
            availability_zone: "nova".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        let a = db
            .attachment_create(&NewAttachment {
                id: "a".into(),
                volume_id: "v".into(),
                instance_uuid: Some("i".into()),
                attach_mode: "rw".into(),
                attach_status: "reserved".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(a.attach_status, "reserved");
        assert_eq!(a.attach_time, None);
        let a = db
            .attachment_update(
                "a",
                &AttachmentUpdate {
                    attach_status: Some("attached".into()),
                    connector: Some(serde_json::json!({"host": "h"})),
                    attached_now: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(a.attach_status, "attached");
        assert_eq!(a.connector.unwrap()["host"], "h");
        assert!(a.attach_time.is_some());
        assert_eq!(db.attachments_of(&["v".into()]).await.unwrap().len(), 1);
        assert_eq!(db.attachment_list(Some("p")).await.unwrap().len(), 1);
        assert!(db.attachment_list(Some("other")).await.unwrap().is_empty());
        db.attachment_destroy("a").await.unwrap();
        assert!(db.attachments_of(&["v".into()]).await.unwrap().is_empty());
    }
}
