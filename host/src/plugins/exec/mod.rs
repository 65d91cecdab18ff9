//! The host side of the WIT `exec` interface for driver plugins: every command a plugin asks
//! for is checked against its [`Manifest`] (deny by default), audit-logged (plugin, argv,
//! decision, exit status, duration) and counted, and only a granted one is run — argv only
//! (no shell), environment cleared to `LC_ALL=C`, a fixed `PATH` and the granted variables,
//! under the grant's working directory root, deadline and output cap, as the grant's user
//! when the host runs as root.

pub mod manifest;
mod user;

use std::collections::VecDeque;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

pub use manifest::{Grant, Manifest, Pattern};

/// The fixed `PATH` of every command.
pub const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// How many audit records [`Exec::recent`] keeps.
const RECENT: usize = 256;

/// A command as the plugin built it (the WIT `exec.command`).
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub stdin: Option<Vec<u8>>,
    pub timeout_ms: Option<u32>,
}

/// What a finished command produced (the WIT `exec.output`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub truncated: bool,
}

/// Why a command did not run to completion (the WIT `exec.exec-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("cannot start: {0}")]
    SpawnFailed(String),
    #[error("killed after {0} ms")]
    Timeout(u32),
}

/// The decision recorded for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Granted,
    Denied(String),
}

/// One audit record: every call, granted or denied.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub plugin: String,
    /// Program then arguments.
    pub argv: Vec<String>,
    pub decision: Decision,
    /// Exit status of a granted command that ran to its end.
    pub status: Option<i32>,
    /// Why a granted command did not finish (spawn failure, timeout).
    pub error: Option<String>,
    pub duration: Duration,
}

/// Counters of one plugin's exec calls.
#[derive(Debug, Default)]
pub struct ExecStats {
    pub granted: AtomicU64,
    pub denied: AtomicU64,
    /// Granted but not finished: could not start, or timed out.
    pub failed: AtomicU64,
}

/// One plugin's exec authority.
pub struct Exec {
    plugin: String,
    manifest: Manifest,
    stats: ExecStats,
    recent: Mutex<VecDeque<AuditRecord>>,
    /// `uid` / `gid` of grants are honoured only when the host runs as root.
    is_root: bool,
}

impl Exec {
    pub fn new(plugin: &str, manifest: Manifest) -> Exec {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let is_root = unsafe { libc::geteuid() } == 0;
        if !is_root
            && manifest
                .grants
                .iter()
                .any(|g| g.uid.is_some() || g.gid.is_some())
        {
            tracing::warn!(plugin, "the manifest names run-as users, but kiln does not run as root: commands run as kiln's own user");
        }
        Exec {
            plugin: plugin.to_string(),
            manifest,
            stats: ExecStats::default(),
            recent: Mutex::new(VecDeque::new()),
            is_root,
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn stats(&self) -> &ExecStats {
        &self.stats
    }

    /// The most recent audit records, oldest first.
    pub fn recent(&self) -> Vec<AuditRecord> {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn audit(&self, record: AuditRecord) {
        let argv = record.argv.join(" ");
        let ms = record.duration.as_secs_f64() * 1000.0;
        match &record.decision {
            Decision::Denied(reason) => {
                self.stats.denied.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target: "kiln::audit::exec", plugin = %self.plugin, %argv,
                    decision = "denied", %reason, "plugin command denied");
            }
            Decision::Granted => {
                if record.error.is_some() {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.stats.granted.fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(target: "kiln::audit::exec", plugin = %self.plugin, %argv,
                    decision = "granted", status = ?record.status, error = ?record.error,
                    duration_ms = ms, "plugin command ran");
            }
        }
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(record);
    }

    /// Record a denial decided outside the matcher (a `target` backing path, say).
    pub fn audit_denied(&self, argv: Vec<String>, reason: &str) {
        self.audit(AuditRecord {
            plugin: self.plugin.clone(),
            argv,
            decision: Decision::Denied(reason.to_string()),
            status: None,
            error: None,
            duration: Duration::ZERO,
        });
    }

    /// Check `req` against the manifest and, when granted, run it.
    pub async fn run(&self, req: ExecRequest) -> Result<ExecOutput, ExecError> {
        let started = Instant::now();
        let argv: Vec<String> = std::iter::once(req.program.clone())
            .chain(req.args.iter().cloned())
            .collect();
        let check = self.manifest.check(&manifest::Request {
            program: &req.program,
            args: &req.args,
            env: &req.env,
            cwd: req.cwd.as_deref(),
        });
        let grant = match check {
            Ok(g) => g,
            Err(reason) => {
                self.audit_denied(argv, &reason);
                return Err(ExecError::Denied(reason));
            }
        };
        let result = self.spawn(grant, req).await;
        self.audit(AuditRecord {
            plugin: self.plugin.clone(),
            argv,
            decision: Decision::Granted,
            status: result.as_ref().ok().and_then(|o| o.status),
            error: result.as_ref().err().map(ToString::to_string),
            duration: started.elapsed(),
        });
        result
    }

    async fn spawn(&self, grant: &Grant, req: ExecRequest) -> Result<ExecOutput, ExecError> {
        let timeout = match req.timeout_ms {
            Some(ms) => grant.timeout.min(Duration::from_millis(ms.into())),
            None => grant.timeout,
        };
        let mut cmd = std::process::Command::new(&req.program);
        cmd.args(&req.args)
            .env_clear()
            .env("LC_ALL", "C")
            .env("PATH", PATH)
            .envs(req.env.iter().map(|(k, v)| (k, v)))
            .current_dir(match (&req.cwd, &grant.cwd) {
                (Some(cwd), _) => std::path::PathBuf::from(cwd),
                (None, Some(root)) => root.clone(),
                (None, None) => "/".into(),
            })
            .stdin(if req.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.is_root {
            if let Some(gid) = grant.gid {
                cmd.gid(gid);
            }
            if let Some(uid) = grant.uid {
                cmd.uid(uid);
            }
        }
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| ExecError::SpawnFailed(format!("{}: {e}", req.program)))?;
        let cap = grant.output_cap;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let input = req.stdin.unwrap_or_default();
        let work = async {
            let feed = async {
                if let Some(mut w) = stdin {
                    // A program that does not read its input is not an error.
                    let _ = w.write_all(&input).await;
                }
            };
            let ((), (out, out_cut), (err, err_cut), status) =
                tokio::join!(feed, capped(stdout, cap), capped(stderr, cap), child.wait());
            (out, err, out_cut || err_cut, status)
        };
        match tokio::time::timeout(timeout, work).await {
            Ok((stdout, stderr, truncated, status)) => {
                let status =
                    status.map_err(|e| ExecError::SpawnFailed(format!("{}: {e}", req.program)))?;
                Ok(ExecOutput {
                    status: status.code(),
                    stdout,
                    stderr,
                    truncated,
                })
            }
            // Dropping `work` drops the child, which kill_on_drop kills.
            Err(_) => Err(ExecError::Timeout(timeout.as_millis() as u32)),
        }
    }
}

/// Read `r` to its end, keeping at most `cap` bytes (the rest is read and dropped so the
/// program never blocks on a full pipe).
async fn capped(mut r: impl AsyncRead + Unpin, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return (kept, cut),
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn exec(manifest: &str, root: &str) -> Exec {
        let config = BTreeMap::from([("root".to_string(), root.to_string())]);
        Exec::new(
            "test",
            Manifest::parse(manifest, &config, "t.toml").unwrap(),
        )
    }

    fn cmd(program: &str, args: &[&str]) -> ExecRequest {
        ExecRequest {
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn denied_commands_run_nothing_and_are_audited() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let e = exec(
            "[roots]\nr = { config = \"root\" }\n[[grant]]\nprogram = \"/usr/bin/touch\"\nargs = [{ path = \"r\" }]\n",
            root,
        );
        let outside = dir.path().join("..").join("kiln-exec-unit-sentinel");
        let err = e
            .run(cmd("/usr/bin/touch", &[outside.to_str().unwrap()]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ExecError::Denied(r) if r.contains("`..`")),
            "{err}"
        );
        let err = e
            .run(cmd(
                "/bin/sh",
                &["-c", "touch /tmp/kiln-exec-unit-sentinel"],
            ))
            .await
            .unwrap_err();
        assert!(matches!(&err, ExecError::Denied(_)), "{err}");
        assert!(!Path::new("/tmp/kiln-exec-unit-sentinel").exists());
        assert_eq!(e.stats().denied.load(Ordering::Relaxed), 2);
        assert_eq!(e.stats().granted.load(Ordering::Relaxed), 0);
        let recent = e.recent();
        assert_eq!(recent[1].argv[0], "/bin/sh");
        assert!(matches!(recent[1].decision, Decision::Denied(_)));

        let inside = dir.path().join("made");
        let out = e
            .run(cmd("/usr/bin/touch", &[inside.to_str().unwrap()]))
            .await
            .unwrap();
        assert_eq!(out.status, Some(0));
        assert!(inside.exists());
        assert_eq!(e.stats().granted.load(Ordering::Relaxed), 1);
    }

    use std::path::Path;

    #[tokio::test]
    async fn environment_is_scrubbed_output_capped_and_deadline_kept() {
        let e = exec(
            "[[grant]]\nprogram = \"/usr/bin/env\"\nenv = [\"KILN_X\"]\noutput_cap = 16\n\
             [[grant]]\nprogram = \"/usr/bin/sleep\"\nargs = [\"5\"]\ntimeout_ms = 200\n\
             [[grant]]\nprogram = \"/usr/bin/cat\"\n",
            "/",
        );
        let mut c = cmd("/usr/bin/env", &[]);
        c.env = vec![("KILN_X".into(), "y".into())];
        let out = e.run(c).await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.len() == 16 && out.truncated, "{text}");
        let mut c = cmd("/usr/bin/env", &[]);
        c.env = vec![("KILN_X".into(), "y".into())];
        let e2 = exec(
            "[[grant]]\nprogram = \"/usr/bin/env\"\nenv = [\"KILN_X\"]\n",
            "/",
        );
        let text = String::from_utf8(e2.run(c).await.unwrap().stdout).unwrap();
        // Nothing of the test process's environment (HOME, CARGO_*, ...) reaches the command.
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort();
        assert_eq!(lines, ["KILN_X=y", "LC_ALL=C", &format!("PATH={PATH}")]);

        let started = Instant::now();
        let err = e.run(cmd("/usr/bin/sleep", &["5"])).await.unwrap_err();
        assert_eq!(err, ExecError::Timeout(200));
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(e.stats().failed.load(Ordering::Relaxed), 1);

        let mut c = cmd("/usr/bin/cat", &[]);
        c.stdin = Some(b"hello".to_vec());
        assert_eq!(e.run(c).await.unwrap().stdout, b"hello");
    }
}
