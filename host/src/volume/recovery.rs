//! `init_host` recovery of one backend after a restart (Cinder's `init_host`): volumes and
//! snapshots a crash left half-way are settled — `creating` → `error` with a message, the
//! create's steps reverted (its partly made data deleted, its quota given back; `create.rs`),
//! `deleting` resumed, `extending` → `error_extending` (`in-use` when attached), `retyping`
//! back to where it was, a migration running from here undone (`migrate.rs`) — and the exports
//! of attached volumes are re-ensured (a target daemon restart loses them; a failure is told
//! to the owner). Only attached volumes: Kiln exports a volume when it is attached
//! (`initialize_connection`), not when it is created, so an available volume has no export to
//! restore. Every status write is from the status read (a compare-and-set), so work a repeated
//! delivery finishes while this runs is never overwritten.

use tracing::{info, warn};

use super::flows::{volume_ref, DeleteArgs};
use super::snapshots::SnapshotArgs;
use super::VolumeManager;
use crate::db::user_messages::NewMessage;
use crate::rpc::RequestContext;

/// What recovery did, for the log and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub errored: usize,
    pub deletes_resumed: usize,
    pub exports_ensured: usize,
    pub export_failures: usize,
}

impl VolumeManager {
    /// Settle what a crash left behind on this backend, resuming interrupted deletes (the RPC
    /// server already serves while this runs).
    pub(crate) async fn recover(&self) -> Result<Recovered, String> {
        let ctx = RequestContext::internal();
        let db = &self.rt.db;
        let mut done = Recovered::default();
        let volumes = db
            .volumes_on_backend(&self.host)
            .await
            .map_err(|e| e.to_string())?;
        let mut to_delete: Vec<(String, bool)> = Vec::new();
        for v in &volumes {
            if matches!(
                v.migration_status.as_deref(),
                Some("starting" | "migrating")
            ) {
                self.settle_migration(&ctx, v).await?;
                done.errored += 1;
                continue;
            }
            if v.status == "creating" {
                match self.settle_interrupted_create(&ctx, v).await {
                    Ok(true) => done.errored += 1,
                    Ok(false) => {}
                    Err(e) => {
                        warn!(volume_id = %v.id, error = %e, "could not settle an interrupted create")
                    }
                }
                continue;
            }
            let settle = match v.status.as_str() {
                // An attached volume stays usable at its recorded size.
                "extending" if v.attach_status == "attached" => {
                    Some(("in-use", "was being extended while attached"))
                }
                "extending" => Some(("error_extending", "was being extended")),
                "reverting" => Some(("error", "was being reverted to a snapshot")),
                _ => None,
            };
            // Each write is from the status read above: work that finished meanwhile (a
            // repeated delivery served while this runs) is not undone.
            if let Some((status, what)) = settle {
                let why = format!(
                    "volume {} {what} when the volume service {} stopped; its state on the \
                     backend is unknown",
                    v.id, self.host
                );
                let moved = db
                    .volume_settle_status(&v.id, &[v.status.as_str()], status)
                    .await
                    .map_err(|e| e.to_string())?;
                if moved {
                    let _ = db
                        .user_message_create(&NewMessage {
                            project_id: &v.project_id,
                            request_id: Some(&ctx.request_id),
                            resource_type: Some("VOLUME"),
                            resource_uuid: Some(&v.id),
                            action_id: match v.status.as_str() {
                                "extending" => "007",
                                "reverting" => super::snapshots::ACTION_REVERT,
                                _ => "001",
                            },
                            detail_id: "001",
                            detail: Some(&why),
                        })
                        .await;
                    warn!(volume_id = %v.id, status, "settled a volume left half-way by a restart");
                    done.errored += 1;
                }
            }
            if v.status == "retyping" {
                let back = if v.attach_status == "attached" {
                    "in-use"
                } else {
                    "available"
                };
                if db
                    .volume_settle_status(&v.id, &["retyping"], back)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    done.errored += 1;
                }
            }
            if v.status == "deleting" {
                let snapshots = db
                    .snapshots_of_volume(&v.id)
                    .await
                    .map_err(|e| e.to_string())?;
                to_delete.push((v.id.clone(), !snapshots.is_empty()));
            }
            if v.attach_status == "attached" || v.status == "in-use" {
                match volume_ref(v) {
                    Ok(vref) => match self.driver().await.ensure_export(&vref).await {
                        Ok(()) => done.exports_ensured += 1,
                        Err(e) => {
                            warn!(volume_id = %v.id, error = %e, "could not re-ensure the export");
                            done.export_failures += 1;
                            let why = format!(
                                "the export of attached volume {} could not be re-created when \
                                 the volume service {} started, so its host may have lost the \
                                 connection: {e}",
                                v.id, self.host
                            );
                            let _ = db
                                .user_message_create(&NewMessage {
                                    project_id: &v.project_id,
                                    request_id: Some(&ctx.request_id),
                                    resource_type: Some("VOLUME"),
                                    resource_uuid: Some(&v.id),
                                    action_id: "002",
                                    detail_id: "001",
                                    detail: Some(&why),
                                })
                                .await;
                        }
                    },
                    Err(e) => warn!(volume_id = %v.id, error = %e.message, "bad volume record"),
                }
            }
        }
        let snapshots = db
            .snapshots_on_backend(&self.host)
            .await
            .map_err(|e| e.to_string())?;
        let mut snapshot_deletes = Vec::new();
        for s in &snapshots {
            match s.status.as_str() {
                "creating" => {
                    db.snapshot_set_status(&s.id, "error", None)
                        .await
                        .map_err(|e| e.to_string())?;
                    let why = format!(
                        "snapshot {} was being created when the volume service {} stopped",
                        s.id, self.host
                    );
                    let _ = db
                        .user_message_create(&NewMessage {
                            project_id: &s.project_id,
                            request_id: Some(&ctx.request_id),
                            resource_type: Some("SNAPSHOT"),
                            resource_uuid: Some(&s.id),
                            action_id: "009",
                            detail_id: "001",
                            detail: Some(&why),
                        })
                        .await;
                    done.errored += 1;
                }
                // A revert's snapshot is unchanged by it, whatever became of the volume.
                "restoring" => {
                    db.snapshot_set_status(&s.id, "available", None)
                        .await
                        .map_err(|e| e.to_string())?;
                    done.errored += 1;
                }
                // A cascading volume delete resumes its own snapshots.
                "deleting" if !to_delete.iter().any(|(v, _)| *v == s.volume_id) => {
                    snapshot_deletes.push(s.id.clone());
                }
                _ => {}
            }
        }
        done.deletes_resumed = to_delete.len() + snapshot_deletes.len();
        for snapshot_id in snapshot_deletes {
            if let Err(e) = self
                .delete_snapshot(&ctx, SnapshotArgs { snapshot_id })
                .await
            {
                warn!(error = %e.message, "resumed snapshot delete failed");
            }
        }
        for (volume_id, cascade) in to_delete {
            if let Err(e) = self
                .delete_volume(&ctx, DeleteArgs { volume_id, cascade })
                .await
            {
                warn!(error = %e.message, "resumed volume delete failed");
            }
        }
        info!(host = %self.host, errored = done.errored, deletes_resumed = done.deletes_resumed,
              exports_ensured = done.exports_ensured, export_failures = done.export_failures,
              "recovery after start finished");
        Ok(done)
    }
}
