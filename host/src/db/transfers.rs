//! The `transfers` table: a volume offered by its project to whoever presents the auth key.
//! Only `sha256(salt || key)` is stored. Accepting moves the volume (and, unless
//! `no_snapshots`, its snapshots) to the acceptor's project in one transaction.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{get_flag, now, Db, DbError};

/// One transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferRow {
    pub id: String,
    pub volume_id: String,
    pub display_name: Option<String>,
    pub salt: String,
    pub crypt_hash: String,
    pub source_project_id: String,
    pub destination_project_id: Option<String>,
    pub accepted: bool,
    pub no_snapshots: bool,
    pub created_at: String,
}

const COLUMNS: &str = "id, volume_id, display_name, salt, crypt_hash, source_project_id, \
    destination_project_id, accepted, no_snapshots, created_at";

fn from_row(r: &AnyRow) -> Result<TransferRow, sqlx::Error> {
    Ok(TransferRow {
        id: r.try_get("id")?,
        volume_id: r.try_get("volume_id")?,
        display_name: r.try_get("display_name")?,
        salt: r.try_get("salt")?,
        crypt_hash: r.try_get("crypt_hash")?,
        source_project_id: r.try_get("source_project_id")?,
        destination_project_id: r.try_get("destination_project_id")?,
        accepted: get_flag(r, "accepted")?,
        no_snapshots: get_flag(r, "no_snapshots")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Db {
    /// Record a transfer and put the volume in `awaiting-transfer` (it must be `available`).
    /// `Ok(None)` when the volume was not available.
    pub async fn transfer_create(&self, t: &TransferRow) -> Result<Option<TransferRow>, DbError> {
        let ts = now();
        let mut tx = self.writer().begin().await?;
        let moved = sqlx::query(
            "UPDATE volumes SET status = 'awaiting-transfer', updated_at = $1 \
             WHERE id = $2 AND NOT deleted AND status = 'available'",
        )
        .bind(&ts)
        .bind(&t.volume_id)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO transfers (id, volume_id, display_name, salt, crypt_hash, \
             source_project_id, no_snapshots, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&t.id)
        .bind(&t.volume_id)
        .bind(&t.display_name)
        .bind(&t.salt)
        .bind(&t.crypt_hash)
        .bind(&t.source_project_id)
        .bind(t.no_snapshots)
        .bind(&ts)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(self.transfer_get(&t.id).await?))
    }

    /// The open transfer `id`.
    pub async fn transfer_get(&self, id: &str) -> Result<TransferRow, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM transfers WHERE id = $1 AND NOT deleted"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| DbError::NotFound(format!("Transfer {id}")))?;
        Ok(from_row(&row)?)
    }

    /// Open transfers, of one project or all, newest first.
    pub async fn transfer_list(&self, project: Option<&str>) -> Result<Vec<TransferRow>, DbError> {
        let mut sql = format!("SELECT {COLUMNS} FROM transfers WHERE NOT deleted");
        if project.is_some() {
            sql.push_str(" AND source_project_id = $1");
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC");
        let mut q = sqlx::query(&sql);
        if let Some(p) = project {
            q = q.bind(p);
        }
        let rows = q.fetch_all(self.reader()).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Cancel a transfer: the volume is `available` again.
    pub async fn transfer_cancel(&self, t: &TransferRow) -> Result<(), DbError> {
        let ts = now();
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "UPDATE transfers SET deleted = $1, deleted_at = $2, updated_at = $2 WHERE id = $3",
        )
        .bind(true)
        .bind(&ts)
        .bind(&t.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE volumes SET status = 'available', updated_at = $1 \
             WHERE id = $2 AND status = 'awaiting-transfer'",
        )
        .bind(&ts)
        .bind(&t.volume_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Hand the volume (and its snapshots unless `no_snapshots`) to `project` / `user`; the
    /// transfer is closed. `false` when it was accepted or cancelled meanwhile.
    pub async fn transfer_accept(
        &self,
        t: &TransferRow,
        project: &str,
        user: &str,
    ) -> Result<bool, DbError> {
        let ts = now();
        let mut tx = self.writer().begin().await?;
        let closed = sqlx::query(
            "UPDATE transfers SET accepted = $1, destination_project_id = $2, deleted = $1, \
             deleted_at = $3, updated_at = $3 WHERE id = $4 AND NOT deleted",
        )
        .bind(true)
        .bind(project)
        .bind(&ts)
        .bind(&t.id)
        .execute(&mut *tx)
        .await?;
        if closed.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE volumes SET project_id = $1, user_id = $2, status = 'available', updated_at = $3 \
             WHERE id = $4",
        )
        .bind(project)
        .bind(user)
        .bind(&ts)
        .bind(&t.volume_id)
        .execute(&mut *tx)
        .await?;
        if !t.no_snapshots {
            sqlx::query(
                "UPDATE snapshots SET project_id = $1, user_id = $2, updated_at = $3 \
                 WHERE volume_id = $4 AND NOT deleted",
            )
            .bind(project)
            .bind(user)
            .bind(&ts)
            .bind(&t.volume_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
