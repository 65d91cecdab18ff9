//! The `tgtadm` helper (after Cinder's `volume/targets/tgt.py`): one target file per volume
//! in `volumes_dir` (`<target IQN>` with `backing-store`, `driver iscsi`, CHAP
//! `incominguser`, `write-cache on`), loaded with `tgt-admin --conf <file> --update <iqn>`,
//! verified by parsing `tgtadm --lld iscsi --op show --mode target`, removed with
//! `tgt-admin --force --delete <iqn>`. tgtd reads a LUN's size when the LUN is created, so
//! after an extend the LUN is deleted and re-added.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Chap, IscsiLocation, TargetHelper, TargetSettings};
use crate::drivers::exec::{run_checked, Cmd, CommandRunner, Retry};
use crate::drivers::{ConnectionInfo, Connector, DriverError, ModelUpdate, VolumeRef};

/// tgt's data LUN (LUN 0 is the controller).
pub const LUN: u32 = 1;

/// Loads tried in all when tgt-admin's tid collides with a concurrent load (see `load`).
const TID_RACE_ATTEMPTS: u32 = 5;
const TID_RACE_FIRST_DELAY: Duration = Duration::from_millis(50);

/// tgtadm's answer when `--op new --mode target --tid N` finds tid N taken.
fn is_tid_collision(e: &DriverError) -> bool {
    matches!(e, DriverError::Command { stderr, .. } if stderr.contains("this target already exists"))
}

pub struct TgtAdm {
    settings: TargetSettings,
    volumes_dir: PathBuf,
    runner: Arc<dyn CommandRunner>,
}

/// One target in `tgtadm --op show` output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TgtTarget {
    pub tid: u32,
    pub iqn: String,
    pub luns: Vec<TgtLun>,
    /// Incoming CHAP users bound to the target.
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TgtLun {
    pub lun: u32,
    /// `Size:` in tgt's MB (10^6 bytes, rounded).
    pub size_mb: Option<u64>,
    /// `Backing store path:`; `None` for the controller LUN.
    pub backing_path: Option<String>,
}

/// Parse `tgtadm --lld iscsi --op show --mode target`.
pub fn parse_show(out: &str) -> Vec<TgtTarget> {
    let mut targets: Vec<TgtTarget> = Vec::new();
    let mut in_accounts = false;
    for raw in out.lines() {
        let line = raw.trim();
        if let Some(rest) = raw.strip_prefix("Target ") {
            in_accounts = false;
            if let Some((tid, iqn)) = rest.split_once(':') {
                if let Ok(tid) = tid.trim().parse() {
                    targets.push(TgtTarget {
                        tid,
                        iqn: iqn.trim().to_string(),
                        ..Default::default()
                    });
                }
            }
            continue;
        }
        let Some(t) = targets.last_mut() else {
            continue;
        };
        if line == "Account information:" {
            in_accounts = true;
        } else if line.ends_with("information:") {
            in_accounts = false;
        } else if in_accounts && !line.is_empty() {
            t.accounts
                .push(line.trim_end_matches("(outgoing)").trim().to_string());
        } else if let Some(n) = line.strip_prefix("LUN: ") {
            if let Ok(lun) = n.trim().parse() {
                t.luns.push(TgtLun {
                    lun,
                    ..Default::default()
                });
            }
        } else if let Some(size) = line.strip_prefix("Size: ") {
            if let Some(l) = t.luns.last_mut() {
                l.size_mb = size.split_whitespace().next().and_then(|n| n.parse().ok());
            }
        } else if let Some(path) = line.strip_prefix("Backing store path:") {
            if let Some(l) = t.luns.last_mut() {
                let path = path.trim();
                l.backing_path = (path != "None" && !path.is_empty()).then(|| path.to_string());
            }
        }
    }
    targets
}

/// The per-volume target file.
pub fn target_file(iqn: &str, backing_path: &Path, chap: Option<&Chap>) -> String {
    let mut s = format!(
        "<target {iqn}>\n    backing-store {}\n    driver iscsi\n",
        backing_path.display()
    );
    if let Some(c) = chap {
        s.push_str(&format!("    incominguser {} {}\n", c.user, c.secret));
    }
    s.push_str("    write-cache on\n</target>\n");
    s
}

pub fn cmd_update(conf: &Path, iqn: &str) -> Cmd {
    Cmd::new(
        "tgt-admin",
        [
            "--conf".to_string(),
            conf.display().to_string(),
            "--update".into(),
            iqn.into(),
        ],
    )
}

pub fn cmd_delete(iqn: &str) -> Cmd {
    Cmd::new("tgt-admin", ["--force", "--delete", iqn])
}

pub fn cmd_show() -> Cmd {
    Cmd::new(
        "tgtadm",
        ["--lld", "iscsi", "--op", "show", "--mode", "target"],
    )
}

pub fn cmd_new_lun(tid: u32, backing_path: &Path) -> Cmd {
    Cmd::new(
        "tgtadm",
        [
            "--lld".to_string(),
            "iscsi".into(),
            "--op".into(),
            "new".into(),
            "--mode".into(),
            "logicalunit".into(),
            "--tid".into(),
            tid.to_string(),
            "--lun".into(),
            LUN.to_string(),
            "-b".into(),
            backing_path.display().to_string(),
        ],
    )
}

pub fn cmd_delete_lun(tid: u32) -> Cmd {
    Cmd::new(
        "tgtadm",
        [
            "--lld".to_string(),
            "iscsi".into(),
            "--op".into(),
            "delete".into(),
            "--mode".into(),
            "logicalunit".into(),
            "--tid".into(),
            tid.to_string(),
            "--lun".into(),
            LUN.to_string(),
        ],
    )
}

impl TgtAdm {
    pub fn new(
        settings: TargetSettings,
        volumes_dir: PathBuf,
        runner: Arc<dyn CommandRunner>,
    ) -> Self {
        // tgtd is another process with its own working directory: give it absolute paths.
        let volumes_dir = std::path::absolute(&volumes_dir).unwrap_or(volumes_dir);
        TgtAdm {
            settings,
            volumes_dir,
            runner,
        }
    }

    async fn run(&self, cmd: Cmd) -> Result<String, DriverError> {
        run_checked(
            self.runner.as_ref(),
            &self.settings.backend,
            &cmd,
            Retry::NONE,
        )
        .await
        .map(|o| o.stdout)
    }

    async fn show(&self) -> Result<Vec<TgtTarget>, DriverError> {
        Ok(parse_show(&self.run(cmd_show()).await?))
    }

    async fn find(&self, iqn: &str) -> Result<Option<TgtTarget>, DriverError> {
        Ok(self.show().await?.into_iter().find(|t| t.iqn == iqn))
    }

    fn conf_path(&self, v: &VolumeRef) -> Result<PathBuf, DriverError> {
        Ok(self
            .volumes_dir
            .join(v.backend_name(&self.settings.backend)?))
    }

    async fn write_conf(&self, path: &Path, text: String) -> Result<(), DriverError> {
        let (dir, path_owned) = (self.volumes_dir.clone(), path.to_path_buf());
        let r = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
            // The file holds the CHAP secret: owner-only, replaced atomically.
            let tmp = path_owned.with_extension("tmp");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path_owned)
        })
        .await;
        let what = format!("cannot write target file {}", path.display());
        match r {
            Ok(r) => r.map_err(|source| DriverError::Io {
                backend: self.settings.backend.clone(),
                what,
                source,
            }),
            Err(e) => Err(self.settings.backend_err(format!("{what}: {e}"))),
        }
    }

    /// `tgt-admin --update`: tgt-admin numbers a new target "largest tid shown + 1", so two
    /// loads at once — two volumes attached together, or two kiln processes on one tgtd —
    /// can pick the same tid and the loser fails with "this target already exists". Loads
    /// are serialised within the process, and a collision (our IQN still absent) is retried
    /// after a short, jittered wait so another process's load can finish.
    async fn load(&self, conf: &Path, iqn: &str) -> Result<(), DriverError> {
        static LOADS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = LOADS.lock().await;
        let mut delay = TID_RACE_FIRST_DELAY;
        for attempt in 1.. {
            match self.run(cmd_update(conf, iqn)).await {
                Err(e)
                    if attempt < TID_RACE_ATTEMPTS
                        && is_tid_collision(&e)
                        && self.find(iqn).await?.is_none() =>
                {
                    let wait = delay
                        + Duration::from_millis(rand::random_range(0..=delay.as_millis() as u64));
                    tracing::warn!(backend = %self.settings.backend, iqn, attempt, wait_ms = wait.as_millis() as u64, "tgt-admin picked a tid another load took; retrying");
                    tokio::time::sleep(wait).await;
                    delay *= 2;
                }
                r => return r.map(|_| ()),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// Write the file, load it, make sure LUN 1 is backed by `backing_path`; returns the tid.
    async fn export(
        &self,
        v: &VolumeRef,
        backing_path: &Path,
        chap: Option<&Chap>,
    ) -> Result<u32, DriverError> {
        let iqn = self.settings.iqn(v)?;
        // The daemon resolves the backing store from its own working directory.
        let backing_path =
            &std::path::absolute(backing_path).map_err(|source| DriverError::Io {
                backend: self.settings.backend.clone(),
                what: format!("cannot resolve {}", backing_path.display()),
                source,
            })?;
        let shown = backing_path.display().to_string();
        if shown.is_empty()
            || shown
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        {
            return Err(self.settings.invalid(format!(
                "backing path `{shown}` cannot go into a tgt target file (whitespace or <>)"
            )));
        }
        let conf = self.conf_path(v)?;
        self.write_conf(&conf, target_file(&iqn, backing_path, chap))
            .await?;
        self.load(&conf, &iqn).await?;
        let target = self.find(&iqn).await?.ok_or_else(|| {
            self.settings.backend_err(format!(
                "`tgt-admin --update {iqn}` did not create the target; check that tgtd is \
                 running (`tgtadm --lld iscsi --op show --mode target`) and its log"
            ))
        })?;
        let backed = |t: &TgtTarget| {
            t.luns
                .iter()
                .any(|l| l.lun == LUN && l.backing_path.as_deref() == Some(shown.as_str()))
        };
        if !backed(&target) {
            // Cinder's recovery: the target exists but its LUN is missing.
            tracing::warn!(backend = %self.settings.backend, iqn = %iqn, tid = target.tid, "LUN 1 missing, adding it");
            self.run(cmd_new_lun(target.tid, backing_path)).await?;
            let again = self.find(&iqn).await?;
            if !again.as_ref().is_some_and(backed) {
                return Err(self.settings.backend_err(format!(
                    "target {iqn} has no LUN {LUN} backed by {shown} after `tgtadm --op new`; \
                     check the backing store exists and tgtd's log"
                )));
            }
        }
        tracing::info!(backend = %self.settings.backend, iqn = %iqn, tid = target.tid, "exported volume");
        Ok(target.tid)
    }
}

#[async_trait]
impl TargetHelper for TgtAdm {
    async fn create_export(
        &self,
        v: &VolumeRef,
        backing_path: &Path,
    ) -> Result<ModelUpdate, DriverError> {
        let chap = self.settings.chap_for(v)?;
        let tid = self.export(v, backing_path, chap.as_ref()).await?;
        Ok(ModelUpdate {
            provider_location: Some(
                IscsiLocation {
                    portals: self.settings.portals.clone(),
                    tid,
                    iqn: self.settings.iqn(v)?,
                    lun: LUN,
                }
                .format(),
            ),
            provider_auth: chap.map(|c| c.provider_auth()),
        })
    }

    async fn ensure_export(&self, v: &VolumeRef, backing_path: &Path) -> Result<(), DriverError> {
        let iqn = self.settings.iqn(v)?;
        if let Some(t) = self.find(&iqn).await? {
            if t.luns.iter().any(|l| l.lun == LUN) {
                return Ok(());
            }
        }
        if self.settings.use_chap && v.provider_auth.is_none() {
            return Err(self.settings.invalid(format!(
                "volume {} has no recorded CHAP credentials to re-export with; call \
                 create_export instead",
                v.id
            )));
        }
        let chap = self.settings.chap_for(v)?;
        self.export(v, backing_path, chap.as_ref())
            .await
            .map(|_| ())
    }

    async fn remove_export(&self, v: &VolumeRef) -> Result<(), DriverError> {
        let iqn = self.settings.iqn(v)?;
        let conf = self.conf_path(v)?;
        if self.find(&iqn).await?.is_some() {
            self.run(cmd_delete(&iqn)).await?;
            if self.find(&iqn).await?.is_some() {
                return Err(self.settings.backend_err(format!(
                    "target {iqn} is still present after `tgt-admin --force --delete`; check \
                     tgtd's log"
                )));
            }
        }
        match tokio::fs::remove_file(&conf).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::Io {
                backend: self.settings.backend.clone(),
                what: format!("cannot remove target file {}", conf.display()),
                source: e,
            }),
            _ => {
                tracing::info!(backend = %self.settings.backend, iqn = %iqn, "removed export");
                Ok(())
            }
        }
    }

    async fn initialize_connection(
        &self,
        v: &VolumeRef,
        _c: &Connector,
    ) -> Result<ConnectionInfo, DriverError> {
        self.settings.connection_info(v)
    }

    async fn extend_target(&self, v: &VolumeRef, backing_path: &Path) -> Result<(), DriverError> {
        let iqn = self.settings.iqn(v)?;
        let Some(t) = self.find(&iqn).await? else {
            return Ok(()); // not exported: the next export reads the new size
        };
        self.run(cmd_delete_lun(t.tid)).await?;
        self.run(cmd_new_lun(t.tid, backing_path)).await?;
        tracing::info!(backend = %self.settings.backend, iqn = %iqn, tid = t.tid, "re-read LUN size after extend");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
