//! Running storage commands: the injectable [`CommandRunner`] (argv only, never a shell),
//! the real tokio implementation, a recording fake for unit tests, and [`run_checked`], which
//! turns a failed command into a [`DriverError::Command`] and retries LVM lock contention.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::DriverError;

/// One command: a program and its arguments, run with `LC_ALL=C`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
}

impl Cmd {
    pub fn new<I, S>(program: &str, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            program: program.to_string(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// The command as one line, arguments with spaces or quotes single-quoted (for messages
    /// and logs only; nothing ever passes it to a shell).
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(|a| {
                if a.is_empty() || a.contains([' ', '\'', '"', '{', '}', '\t']) {
                    format!("'{}'", a.replace('\'', "'\\''"))
                } else {
                    a.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a finished command produced. A non-zero exit is an output, not an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdOutput {
    /// Exit status; `None` when killed by a signal.
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn ok(stdout: &str) -> Self {
        CmdOutput {
            status: Some(0),
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }
    pub fn failed(status: i32, stderr: &str) -> Self {
        CmdOutput {
            status: Some(status),
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// Runs commands. The real one is [`TokioRunner`]; tests inject [`FakeRunner`].
#[async_trait]
pub trait CommandRunner: Send + Sync {
    /// Run `cmd` to completion; `Err` only when it could not be started or timed out.
    async fn run(&self, cmd: &Cmd) -> std::io::Result<CmdOutput>;
}

/// Runs commands with `tokio::process` (no shell, `LC_ALL=C`, stdin closed, killed on
/// timeout).
#[derive(Debug, Clone)]
pub struct TokioRunner {
    pub timeout: Duration,
}

impl Default for TokioRunner {
    fn default() -> Self {
        TokioRunner {
            timeout: Duration::from_secs(300),
        }
    }
}

#[async_trait]
impl CommandRunner for TokioRunner {
    async fn run(&self, cmd: &Cmd) -> std::io::Result<CmdOutput> {
        let started = std::time::Instant::now();
        let child = tokio::process::Command::new(&cmd.program)
            .args(&cmd.args)
            .env("LC_ALL", "C")
            // LVM otherwise complains on stderr about descriptors inherited from the service.
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} s; killed", self.timeout.as_secs()),
                )
            })??;
        let output = CmdOutput {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        tracing::debug!(
            command = %cmd.display(),
            status = ?output.status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ran storage command"
        );
        Ok(output)
    }
}

type Responder = Box<dyn Fn(&Cmd) -> CmdOutput + Send + Sync>;

/// A recording runner for unit tests: remembers every command and answers with `respond`
/// (by default: success with empty output).
pub struct FakeRunner {
    calls: Mutex<Vec<Cmd>>,
    respond: Responder,
}

impl Default for FakeRunner {
    fn default() -> Self {
        FakeRunner::new(|_| CmdOutput::ok(""))
    }
}

impl FakeRunner {
    pub fn new(respond: impl Fn(&Cmd) -> CmdOutput + Send + Sync + 'static) -> Self {
        FakeRunner {
            calls: Mutex::new(Vec::new()),
            respond: Box::new(respond),
        }
    }

    /// Every command run so far, as `program arg arg …` lines (see [`Cmd::display`]).
    pub fn lines(&self) -> Vec<String> {
        self.calls().iter().map(Cmd::display).collect()
    }

    /// Every command run so far.
    pub fn calls(&self) -> Vec<Cmd> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forget the commands recorded so far.
    pub fn clear(&self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[async_trait]
impl CommandRunner for FakeRunner {
    async fn run(&self, cmd: &Cmd) -> std::io::Result<CmdOutput> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(cmd.clone());
        Ok((self.respond)(cmd))
    }
}

/// Whether a failed LVM command failed because another LVM command held the lock.
pub fn is_lock_contention(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    [
        "can't get lock",
        "cannot get lock",
        "failed to lock",
        "lock failed",
        "unable to obtain lock",
    ]
    .iter()
    .any(|needle| s.contains(needle))
}

/// How [`run_checked`] retries.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each further one.
    pub first_delay: Duration,
}

impl Retry {
    pub const NONE: Retry = Retry {
        attempts: 1,
        first_delay: Duration::ZERO,
    };
    /// LVM: up to 3 tries on lock contention, 200 ms then 400 ms apart.
    pub const LVM_LOCK: Retry = Retry {
        attempts: 3,
        first_delay: Duration::from_millis(200),
    };
}

/// Run `cmd`; a non-zero exit becomes [`DriverError::Command`] with the argv and stderr.
/// Lock contention (see [`is_lock_contention`]) is retried as `retry` says.
pub async fn run_checked(
    runner: &dyn CommandRunner,
    backend: &str,
    cmd: &Cmd,
    retry: Retry,
) -> Result<CmdOutput, DriverError> {
    let mut delay = retry.first_delay;
    let mut attempt = 1;
    loop {
        let out = runner.run(cmd).await.map_err(|e| DriverError::Backend {
            backend: backend.to_string(),
            message: format!(
                "cannot run `{}`: {e}; check that `{}` is installed and in PATH",
                cmd.display(),
                cmd.program
            ),
        })?;
        if out.success() {
            return Ok(out);
        }
        if attempt < retry.attempts && is_lock_contention(&out.stderr) {
            tracing::warn!(
                backend,
                command = %cmd.display(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                "lock contention, retrying"
            );
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
            continue;
        }
        return Err(DriverError::Command {
            backend: backend.to_string(),
            argv: cmd.display(),
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn display_quotes_only_what_needs_it() {
        let c = Cmd::new("lvs", ["--config", "global{activation=0}", "vg/lv"]);
        assert_eq!(c.display(), "lvs --config 'global{activation=0}' vg/lv");
    }

    #[test]
    fn lock_messages_are_recognised() {
        assert!(is_lock_contention(
            "  Can't get lock for cinder-volumes\n  Cannot process volume group cinder-volumes"
        ));
        assert!(is_lock_contention("  Failed to lock logical volume vg/lv."));
        assert!(!is_lock_contention("  Volume group \"vg\" not found"));
    }

    #[tokio::test]
    async fn lock_contention_is_retried_then_reported() {
        let n = std::sync::Arc::new(AtomicU32::new(0));
        let seen = n.clone();
        let fake = FakeRunner::new(move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) < 1 {
                CmdOutput::failed(5, "Can't get lock for vg")
            } else {
                CmdOutput::ok("done")
            }
        });
        let retry = Retry {
            attempts: 3,
            first_delay: Duration::from_millis(1),
        };
        let cmd = Cmd::new("lvs", ["vg"]);
        let out = run_checked(&fake, "b", &cmd, retry).await.unwrap();
        assert_eq!(out.stdout, "done");
        assert_eq!(fake.calls().len(), 2);

        let always = FakeRunner::new(|_| CmdOutput::failed(5, "Can't get lock for vg"));
        let err = run_checked(&always, "b", &cmd, retry).await.unwrap_err();
        assert_eq!(always.calls().len(), 3);
        assert!(
            matches!(
                err,
                DriverError::Command {
                    status: Some(5),
                    ..
                }
            ),
            "{err}"
        );

        let other = FakeRunner::new(|_| CmdOutput::failed(5, "Volume group not found"));
        run_checked(&other, "b", &cmd, retry).await.unwrap_err();
        assert_eq!(other.calls().len(), 1, "only lock contention is retried");
    }

    #[tokio::test]
    async fn tokio_runner_runs_argv_without_a_shell_in_the_c_locale() {
        let r = TokioRunner::default();
        let out = r
            .run(&Cmd::new("sh", ["-c", "echo \"$LC_ALL\" \"$0\"", "a b;c"]))
            .await
            .unwrap();
        assert_eq!(out.stdout, "C a b;c\n");
        let err = r
            .run(&Cmd::new("/nonexistent/tool", ["x"]))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        let out = r
            .run(&Cmd::new("false", Vec::<String>::new()))
            .await
            .unwrap();
        assert_eq!(out.status, Some(1));
    }
}
