//! Real `kiln` processes for end-to-end tests: spawn with a config, signal, wait for exit,
//! read `kiln status --json`, and fresh PostgreSQL databases.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `kiln` binary under test: `KILN_BIN`, else `<target>/debug/kiln` next to this test.
pub fn kiln_bin() -> PathBuf {
    if let Ok(p) = std::env::var("KILN_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // <target>/debug/deps/<test> → <target>/debug/kiln
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("kiln");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p kiln`",
        bin.display()
    );
    bin
}

/// A running `kiln` process, killed when dropped.
pub struct Kiln {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Kiln {
    /// Start `kiln ARGS` in `dir`, with `config` as its config file (if any); output goes to
    /// `dir/<name>.log`.
    pub fn start(name: &str, dir: &Path, config: Option<&Path>, args: &[&str]) -> Kiln {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("create log");
        let mut cmd = Command::new(kiln_bin());
        cmd.args(args)
            .current_dir(dir)
            .env_remove("KILN_CONFIG")
            .env("RUST_LOG", "info,kiln=debug")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if let Some(c) = config {
            cmd.env("KILN_CONFIG", c);
        }
        let child = cmd.spawn().expect("spawn kiln");
        Kiln {
            name: name.to_string(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Wait up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status (or `None` if still running after `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        self.wait_exit(timeout)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kiln {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `kiln ARGS` to completion with `config`; returns (exit code, stdout, stderr).
pub fn kiln_run(dir: &Path, config: Option<&Path>, args: &[&str]) -> (i32, String, String) {
    kiln_run_env(dir, config, args, &[])
}

/// [`kiln_run`] with extra environment variables (e.g. a `PATH` holding a toolchain).
pub fn kiln_run_env(
    dir: &Path,
    config: Option<&Path>,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> (i32, String, String) {
    let mut cmd = Command::new(kiln_bin());
    cmd.args(args)
        .current_dir(dir)
        .env_remove("KILN_CONFIG")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied());
    if let Some(c) = config {
        cmd.env("KILN_CONFIG", c);
    }
    let out = cmd.output().expect("run kiln");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One service line of `kiln status --json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct StatusRow {
    pub binary: String,
    pub host: String,
    pub zone: String,
    pub status: String,
    pub state: String,
    pub disabled_reason: Option<String>,
    pub report_count: i64,
}

/// `kiln status --json`, or an empty list while the database is not ready.
pub fn status(dir: &Path, config: Option<&Path>) -> Vec<StatusRow> {
    let (code, out, _) = kiln_run(dir, config, &["status", "--json"]);
    if code != 0 {
        return Vec::new();
    }
    serde_json::from_str(&out).unwrap_or_default()
}

/// Poll `kiln status` until `pred` holds, or panic after `timeout` with the last status.
pub fn wait_status(
    dir: &Path,
    config: Option<&Path>,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&[StatusRow]) -> bool,
) -> Vec<StatusRow> {
    let deadline = Instant::now() + timeout;
    loop {
        let rows = status(dir, config);
        if pred(&rows) {
            return rows;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}; last status: {rows:#?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Is `host`/`binary` listed with `state`?
pub fn has(rows: &[StatusRow], binary: &str, host: &str, state: &str) -> bool {
    rows.iter()
        .any(|r| r.binary == binary && r.host == host && r.state == state)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The PostgreSQL server the tests use (`KILN_TEST_PG_URL`, default local trust auth).
pub fn pg_admin_url() -> String {
    std::env::var("KILN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh, empty PostgreSQL database; returns its URL.
pub async fn fresh_pg_database() -> String {
    use sqlx::Connection;
    let admin = pg_admin_url();
    let name = format!("kiln_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::postgres::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed for this test: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}
