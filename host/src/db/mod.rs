//! The shared database: connection pools for SQLite (embedded default) and PostgreSQL,
//! migrations (`migrations/sqlite`, `migrations/postgres`, embedded in the binary), the
//! "is this database migrated?" check, and the queries of each table in submodules.
//!
//! SQLite must never surface "database is locked": it runs in WAL mode with a busy timeout,
//! and every write goes through a pool of exactly one connection ([`Db::writer`]), so writers
//! queue in-process instead of fighting over the file lock. Reads use a separate pool, and
//! reads of many rows a third one whose connections they use directly (`sqlite_direct`).
//! PostgreSQL uses one pool for both.

pub mod attachments;
pub mod backend_drivers;
pub mod default_types;
pub mod encryption;
pub mod group_snapshots;
pub mod group_types;
pub mod groups;
pub mod listing;
pub mod metadata;
pub mod migration;
pub mod placement;
pub mod plugins;
pub mod qos;
pub mod quotas;
pub mod services;
pub mod snapshots;
pub mod sqlite_direct;
pub mod transfers;
pub mod types;
pub mod user_messages;
pub mod volume_create;
pub mod volume_pages;
pub mod volumes;

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor, Row};
use tracing::{info, warn};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Database failures at the module boundary.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot reach the database at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error(
        "the database at {url} is not migrated (missing migrations: {missing}); run `kiln db sync`"
    )]
    NotMigrated { url: String, missing: String },
    #[error(
        "the database at {url} has migrations this kiln does not know ({unknown}); upgrade kiln"
    )]
    TooNew { url: String, unknown: String },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    List(#[from] listing::ListError),
    #[error("database query failed: {0}")]
    Direct(#[from] sqlite_direct::DirectError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Pools of one database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    engine: Engine,
    url: String,
    read: AnyPool,
    write: AnyPool,
    /// SQLite only: connections for reads that return many rows (`sqlite_direct`).
    direct: Option<sqlite_direct::Direct>,
}

/// Options of [`Db::connect`].
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_connections: u32,
    pub sqlite_busy_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            max_connections: 10,
            sqlite_busy_timeout: Duration::from_secs(30),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Db {
    /// Open pools for `url` (`sqlite://PATH` or `postgres://…`). A SQLite file and its
    /// directory are created when missing.
    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let err = |source| DbError::Connect {
            url: redact(url),
            source,
        };
        if url.starts_with("sqlite:") {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            if let Some(parent) = std::path::Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| err(sqlx::Error::Io(e)))?;
                }
            }
            let full = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            let busy_ms = opts.sqlite_busy_timeout.as_millis() as u64;
            // The single writer connection: SQLite allows one writer at a time anyway, so
            // queueing here (fairly, with a long acquire timeout) replaces lock errors by waits.
            let write = sqlite_pool_options(busy_ms)
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(120))
                .connect(&full)
                .await
                .map_err(err)?;
            let read = sqlite_pool_options(busy_ms)
                .max_connections(opts.max_connections)
                .connect(&full)
                .await
                .map_err(err)?;
            let direct = sqlite_direct::Direct::connect(
                &full,
                opts.sqlite_busy_timeout,
                opts.max_connections,
            )
            .await
            .map_err(err)?;
            Ok(Db {
                engine: Engine::Sqlite,
                url: url.to_string(),
                read,
                write,
                direct: Some(direct),
            })
        } else {
            let pool = AnyPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await
                .map_err(err)?;
            Ok(Db {
                engine: Engine::Postgres,
                url: url.to_string(),
                read: pool.clone(),
                write: pool,
                direct: None,
            })
        }
    }

    /// [`Db::connect`], retrying with back-off while the database is unreachable and saying
    /// so in the log. Gives up only when `give_up` passes (`None`: never).
    pub async fn connect_with_retry(
        url: &str,
        opts: &DbOptions,
        give_up: Option<Duration>,
    ) -> Result<Db, DbError> {
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            match Db::connect(url, opts).await {
                Ok(db) => return Ok(db),
                Err(e) => {
                    if give_up.is_some_and(|g| started.elapsed() >= g) {
                        return Err(e);
                    }
                    warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "database unreachable; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The URL with any password hidden.
    pub fn url(&self) -> String {
        redact(&self.url)
    }

    /// Pool for reads.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Pool for writes (on SQLite, a single connection).
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    fn migrator(&self) -> &'static Migrator {
        match self.engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Apply every pending migration (`kiln db sync`). Idempotent.
    pub async fn migrate(&self) -> Result<(), DbError> {
        self.migrator().run(&self.write).await?;
        info!(url = %self.url(), "database schema is up to date");
        Ok(())
    }

    /// Refuse to run on a database whose schema is behind (or ahead of) this binary.
    pub async fn check_migrated(&self) -> Result<(), DbError> {
        let applied: Vec<i64> =
            match sqlx::query("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(&self.read)
                .await
            {
                Ok(rows) => rows.iter().map(|r: &AnyRow| r.get::<i64, _>(0)).collect(),
                Err(_) => Vec::new(), // no migrations table: nothing applied
            };
        let known: Vec<i64> = self.migrator().iter().map(|m| m.version).collect();
        let missing: Vec<String> = known
            .iter()
            .filter(|v| !applied.contains(v))
            .map(|v| v.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(DbError::NotMigrated {
                url: self.url(),
                missing: missing.join(", "),
            });
        }
        let unknown: Vec<String> = applied
            .iter()
            .filter(|v| !known.contains(v))
            .map(|v| v.to_string())
            .collect();
        if !unknown.is_empty() {
            return Err(DbError::TooNew {
                url: self.url(),
                unknown: unknown.join(", "),
            });
        }
        Ok(())
    }

    /// The direct-read connections (SQLite only).
    pub(crate) fn direct(&self) -> Option<&sqlite_direct::Direct> {
        self.direct.as_ref()
    }

    /// Close the pools, waiting for connections in use.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
        if let Some(d) = &self.direct {
            d.close().await;
        }
    }
}

/// Pool options for SQLite: WAL (readers never block the writer), a busy timeout (a writer
/// from another process waits instead of failing), foreign keys on. No ping before handing
/// out a connection: an idle connection to a local file cannot have been dropped by a peer,
/// and each ping is a round trip to the connection's worker thread (sqlx still pings on
/// release, which flushes a dropped transaction's rollback).
fn sqlite_pool_options(busy_ms: u64) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute(format!("PRAGMA busy_timeout = {busy_ms}").as_str())
                    .await?;
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
}

/// Read a flag column: INTEGER 0/1 on SQLite, BOOLEAN on PostgreSQL.
pub fn get_flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(column) {
        Ok(b) => Ok(b),
        Err(_) => row.try_get::<i64, _>(column).map(|v| v != 0),
    }
}

/// The current time as stored in the database: UTC `YYYY-MM-DDTHH:MM:SS.ffffff`.
pub fn now() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

const TIME_FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]"
);

pub fn format_time(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(TIME_FORMAT)
        .expect("a UTC timestamp always formats")
}

/// Parse a stored timestamp (as written by [`now`]).
pub fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::PrimitiveDateTime::parse(s, TIME_FORMAT)
        .ok()
        .map(|t| t.assume_utc())
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A migrated SQLite database in a fresh temporary directory.
    pub async fn sqlite() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("kiln.db").display());
        let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
        db.migrate().await.unwrap();
        (db, dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://kiln:s3cret@db:5432/kiln"),
            "postgres://kiln:***@db:5432/kiln"
        );
        assert_eq!(redact("postgres://kiln@db/kiln"), "postgres://kiln@db/kiln");
        assert_eq!(
            redact("sqlite://./kiln-data/kiln.db"),
            "sqlite://./kiln-data/kiln.db"
        );
    }

    #[test]
    fn timestamps_round_trip_and_sort_as_text() {
        let a = now();
        let t = parse_time(&a).unwrap();
        assert_eq!(format_time(t), a);
        let later = format_time(t + time::Duration::milliseconds(1500));
        assert!(later > a);
    }

    #[tokio::test]
    async fn unmigrated_database_is_refused_until_synced() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sub/kiln.db").display());
        let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
        let err = db.check_migrated().await.unwrap_err();
        assert!(err.to_string().contains("kiln db sync"), "{err}");
        db.migrate().await.unwrap();
        db.check_migrated().await.unwrap();
        db.migrate().await.unwrap(); // idempotent
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_concurrent_sqlite_writers_never_see_database_locked() {
        let (db, _dir) = testing::sqlite().await;
        let mut tasks = Vec::new();
        for i in 0..50 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = db.writer().begin().await?;
                let id = format!("{i:08}-0000-0000-0000-000000000000");
                sqlx::query("INSERT INTO volumes (id, project_id, user_id, size, status, availability_zone, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(&id).bind("p").bind("u").bind(1_i64).bind("creating").bind("nova").bind(now())
                    .execute(&mut *tx).await?;
                sqlx::query("INSERT INTO quota_usages (project_id, resource, in_use, created_at) VALUES ($1, 'volumes', 1, $2) ON CONFLICT (project_id, resource) DO UPDATE SET in_use = quota_usages.in_use + 1")
                    .bind("p").bind(now())
                    .execute(&mut *tx).await?;
                tx.commit().await?;
                // A concurrent reader on the other pool meanwhile.
                sqlx::query("SELECT COUNT(*) FROM volumes").fetch_one(db.reader()).await?;
                Ok::<_, sqlx::Error>(())
            }));
        }
        for t in tasks {
            t.await.unwrap().expect("no writer may fail");
        }
        let n: i64 = sqlx::query("SELECT in_use FROM quota_usages WHERE project_id = 'p'")
            .fetch_one(db.reader())
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 50);
    }
}
