//! Reads on SQLite that run on a connection's own handle instead of through sqlx's worker.
//!
//! sqlx runs each SQLite connection on a worker thread and hands every result row to the
//! async side through a channel: a thread wake-up per row, which for a 1000-volume listing
//! cost more than the query. For the few reads that return many rows, [`Direct::run`] takes a
//! connection from its own sqlx pool, locks the handle out of the worker
//! (`SqliteConnection::lock_handle`, sqlx's supported way to make direct SQLite calls) and runs
//! the read with rusqlite on the calling thread — as a blocking section of the multi-threaded
//! runtime, so other tasks move to another worker meanwhile. Writes never come here; they stay
//! on [`super::Db::writer`].

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::listing::FilterValue;

/// Why a direct read failed.
#[derive(Debug, thiserror::Error)]
pub enum DirectError {
    #[error("cannot use a SQLite connection: {0}")]
    Pool(#[from] sqlx::Error),
    #[error("SQLite query failed: {0}")]
    Query(#[from] rusqlite::Error),
}

/// A pool of SQLite connections for direct reads. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Direct {
    pool: SqlitePool,
}

impl Direct {
    /// Open up to `max` connections to the (existing, migrated or not) database at `url`.
    pub async fn connect(url: &str, busy: Duration, max: u32) -> Result<Direct, sqlx::Error> {
        let opts = SqliteConnectOptions::from_str(url)?
            .busy_timeout(busy)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        Ok(Direct { pool })
    }

    /// Close the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Run `read` on a pooled connection's handle, inside one read transaction (one snapshot
    /// for every statement of `read`).
    pub async fn run<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DirectError> {
        let mut conn = self.pool.acquire().await?;
        let mut locked = conn.lock_handle().await?;
        let handle = locked.as_raw_handle();
        let call = move || -> Result<T, DirectError> {
            // SAFETY: `locked` keeps sqlx's worker off this handle until it is dropped, after
            // this closure returns; the rusqlite connection does not own the handle (it is not
            // closed on drop) and is dropped here, finalising the statements it prepared.
            let c = unsafe { rusqlite::Connection::from_handle(handle.as_ptr()) }?;
            let tx = c.unchecked_transaction()?;
            let out = read(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(call),
            _ => call(),
        }
    }
}

/// Bind the listing's `$1, $2, ...` values to `stmt` (SQLite numbers `$N` parameters by
/// first appearance, which is the order the listing numbers them in).
pub fn bind_listing(
    stmt: &mut rusqlite::Statement<'_>,
    binds: &[FilterValue],
) -> rusqlite::Result<()> {
    for (i, value) in binds.iter().enumerate() {
        let name = format!("${}", i + 1);
        let Some(index) = stmt.parameter_index(&name)? else {
            return Err(rusqlite::Error::InvalidParameterName(name));
        };
        match value {
            FilterValue::Text(s) => stmt.raw_bind_parameter(index, s)?,
            FilterValue::Bool(b) => stmt.raw_bind_parameter(index, *b)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn direct() -> (tempfile::TempDir, Direct) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/d.db?mode=rwc", dir.path().display());
        let d = Direct::connect(&url, Duration::from_secs(1), 2)
            .await
            .unwrap();
        (dir, d)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_run_on_the_handle_and_bind_listing_parameters_by_number() {
        let (_dir, d) = direct().await;
        let got = d
            .run(|c| {
                c.execute_batch("CREATE TABLE t (a TEXT, b INTEGER); INSERT INTO t VALUES ('x', 1), ('y', 0), ('x', 0);")?;
                let mut stmt = c.prepare("SELECT count(*) FROM t WHERE a = $1 AND b = $2")?;
                bind_listing(
                    &mut stmt,
                    &[FilterValue::Text("x".into()), FilterValue::Bool(true)],
                )?;
                let mut rows = stmt.raw_query();
                rows.next()?.unwrap().get::<_, i64>(0)
            })
            .await
            .unwrap();
        assert_eq!(got, 1);
    }

    #[tokio::test]
    async fn a_current_thread_runtime_runs_reads_inline_and_errors_are_typed() {
        let (_dir, d) = direct().await;
        let err = d
            .run(|c| c.query_row("SELECT x FROM missing", [], |r| r.get::<_, i64>(0)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no such table: missing"), "{err}");
        // The connection went back to the pool usable (the failed read's transaction ended).
        let one = d
            .run(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
            .await
            .unwrap();
        assert_eq!(one, 1);
    }

    #[tokio::test]
    async fn a_missing_parameter_is_an_error_not_a_silent_null() {
        let (_dir, d) = direct().await;
        let err = d
            .run(|c| {
                let mut stmt = c.prepare("SELECT $1")?;
                bind_listing(
                    &mut stmt,
                    &[FilterValue::Text("a".into()), FilterValue::Text("b".into())],
                )
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("$2"), "{err}");
    }
}
