//! Volume migration on the volume services (Cinder's `_migrate_volume_generic`): the source
//! backend's service runs it. It asks the destination's service to create the temporary
//! volume the scheduler placed there (`create_migration_volume`, a call answering where this
//! host can open it), copies the data host-side from its own volume's local path into it,
//! then swaps the two rows' identities in one transaction (the user's id now names the
//! destination copy) and deletes the old copy, now the temporary row, from its backend.
//! Any failure before the swap deletes the temporary volume, puts the volume back as it was
//! (`migration_status = error`) and tells its owner why; nothing of the source is touched.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::flows::{handler_error, volume_ref, DeleteArgs};
use super::VolumeManager;
use crate::db::user_messages::NewMessage;
use crate::rpc::{RemoteError, RequestContext};

/// Arguments of `migrate_volume` (to the source backend's service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrateVolumeArgs {
    /// The user's volume.
    pub volume_id: String,
    /// The temporary volume placed on the destination.
    pub new_volume_id: String,
    /// The destination `host@backend`.
    pub dest_backend: String,
}

/// Arguments of `create_migration_volume` (to the destination backend's service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetArgs {
    pub new_volume_id: String,
}

/// Where the destination's service can open the temporary volume it created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationTarget {
    /// The machine the destination's service runs on (`host` of its configuration).
    pub host: String,
    /// A path of the volume's bytes on that machine, when its driver exposes one.
    pub local_path: Option<String>,
    /// Why there is no path.
    #[serde(default)]
    pub no_path: Option<String>,
}

/// Why this process cannot write the destination at `path` (another machine without a
/// shared path, or a path that is not the new volume's), if it cannot.
fn unreachable_destination(path: &Path, size_bytes: u64) -> Option<String> {
    match std::fs::metadata(path) {
        Err(e) => Some(format!("{} cannot be opened here: {e}", path.display())),
        Ok(m) if m.is_file() && m.len() < size_bytes => Some(format!(
            "{} holds {} bytes, less than the volume's {size_bytes}; it is not the new volume",
            path.display(),
            m.len()
        )),
        Ok(_) => match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(_) => None,
            Err(e) => Some(format!(
                "{} cannot be opened for writing here: {e}",
                path.display()
            )),
        },
    }
}

impl VolumeManager {
    /// Create a migration's temporary volume on this backend; where this host opens it.
    pub(crate) async fn create_migration_volume(
        &self,
        _ctx: &RequestContext,
        args: TargetArgs,
    ) -> Result<MigrationTarget, RemoteError> {
        let db = &self.rt.db;
        let row = db
            .volume_get(&args.new_volume_id)
            .await
            .map_err(handler_error)?;
        let mut volume = volume_ref(&row)?;
        if let Some(t) = &row.volume_type_id {
            if let Ok(t) = db.volume_type_get(t).await {
                volume.extra_specs = t.extra_specs;
            }
        }
        if row.status != "available" {
            let update = self
                .driver()
                .await
                .create_volume(&volume)
                .await
                .map_err(|e| {
                    RemoteError::new(
                        "MigrationTargetFailed",
                        format!("{} could not create the new volume: {e}", self.host),
                    )
                })?;
            volume.apply(&update);
            db.volume_created(
                &row.id,
                volume.provider_location.as_deref(),
                volume.provider_auth.as_deref(),
            )
            .await
            .map_err(handler_error)?;
            info!(volume_id = %row.id, host = %self.host, "migration target created");
        }
        let (local_path, no_path) = match self.driver().await.local_path(&volume).await {
            Ok(p) => (Some(p.display().to_string()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(MigrationTarget {
            host: self.rt.config().host.clone(),
            local_path,
            no_path,
        })
    }

    /// Run the migration of a volume of this backend (see the module docs).
    pub(crate) async fn migrate_volume(
        &self,
        ctx: &RequestContext,
        args: MigrateVolumeArgs,
    ) -> Result<(), RemoteError> {
        let db = &self.rt.db;
        let row = match db.volume_get(&args.volume_id).await {
            Ok(row) => row,
            Err(crate::db::DbError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(handler_error(e)),
        };
        // Redelivered after it finished, or settled by recovery: nothing to do.
        if !matches!(
            row.migration_status.as_deref(),
            Some("starting" | "migrating")
        ) {
            info!(volume_id = %row.id, migration_status = ?row.migration_status, "migration no longer running; ignored");
            return Ok(());
        }
        db.volume_set_migration_status(&row.id, Some("migrating"))
            .await
            .map_err(handler_error)?;
        info!(volume_id = %row.id, from = %self.host, to = %args.dest_backend, new_volume_id = %args.new_volume_id, "migration started");
        match self.copy_to_target(ctx, &row, &args).await {
            Ok(method) => {
                db.volume_migration_swap(&row.id, &args.new_volume_id)
                    .await
                    .map_err(handler_error)?;
                info!(volume_id = %row.id, to = %args.dest_backend, copy = ?method, "migration swapped; deleting the old copy");
                // The temporary row now names the old copy on this backend.
                self.delete_volume(
                    ctx,
                    DeleteArgs {
                        volume_id: args.new_volume_id.clone(),
                        cascade: false,
                    },
                )
                .await?;
                info!(volume_id = %row.id, host = %args.dest_backend, "volume migrated");
                Ok(())
            }
            Err(why) => self.migration_failed(ctx, &row, &args, &why).await,
        }
    }

    /// Create the destination volume and copy this volume's bytes into it.
    async fn copy_to_target(
        &self,
        ctx: &RequestContext,
        row: &crate::db::volumes::VolumeRow,
        args: &MigrateVolumeArgs,
    ) -> Result<crate::drivers::copy::CopyMethod, String> {
        let source = volume_ref(row).map_err(|e| e.message)?;
        // The source first: a backend whose volumes cannot be opened here fails before
        // anything is created.
        let src_path: PathBuf = self
            .driver()
            .await
            .local_path(&source)
            .await
            .map_err(|e| format!("the source volume cannot be read on {}: {e}", self.host))?;
        let target = self
            .volume_api()
            .create_migration_volume(
                ctx,
                &args.dest_backend,
                &TargetArgs {
                    new_volume_id: args.new_volume_id.clone(),
                },
            )
            .await
            .map_err(|e| format!("the destination {} failed: {e}", args.dest_backend))?;
        let Some(dst) = target.local_path.map(PathBuf::from) else {
            return Err(format!(
                "the destination {} exposes no path to copy into ({})",
                args.dest_backend,
                target.no_path.unwrap_or_default()
            ));
        };
        let size_bytes = (row.size.max(0) as u64) << 30;
        if let Some(why) = unreachable_destination(&dst, size_bytes) {
            return Err(format!(
                "the destination volume on {} (machine {}) is not reachable from {} (machine \
                 {}): {why}. Kiln copies host-side, so both volumes must be open to one \
                 machine (same host or a shared path)",
                args.dest_backend,
                target.host,
                self.host,
                self.rt.config().host
            ));
        }
        let (s, d) = (src_path.clone(), dst.clone());
        let method = tokio::task::spawn_blocking(move || {
            crate::drivers::copy::copy_into(&s, &d, size_bytes)
        })
        .await
        .map_err(|e| format!("the copy task failed: {e}"))?
        .map_err(|e| {
            format!(
                "copying {} to {} failed: {e}",
                src_path.display(),
                dst.display()
            )
        })?;
        Ok(method)
    }

    /// Undo a migration that did not swap: the temporary volume deleted (by its backend),
    /// the volume back to its previous status with `migration_status = error`, a message.
    pub(super) async fn migration_failed(
        &self,
        ctx: &RequestContext,
        row: &crate::db::volumes::VolumeRow,
        args: &MigrateVolumeArgs,
        why: &str,
    ) -> Result<(), RemoteError> {
        warn!(volume_id = %row.id, to = %args.dest_backend, reason = why, "migration failed; reverting");
        let db = &self.rt.db;
        // The temporary volume is no target any more: its backend deletes it like any volume.
        db.volume_set_migration_status(&args.new_volume_id, Some("deleting"))
            .await
            .map_err(handler_error)?;
        match db.volume_set_status(&args.new_volume_id, "deleting").await {
            Ok(()) | Err(crate::db::DbError::NotFound(_)) => {}
            Err(e) => return Err(handler_error(e)),
        }
        if let Err(e) = self
            .volume_api()
            .delete_volume(ctx, &args.dest_backend, &args.new_volume_id, false)
            .await
        {
            warn!(new_volume_id = %args.new_volume_id, error = %e, "could not ask for the temporary volume's delete; its backend resumes it at start-up");
        }
        db.volume_migration_end(&row.id, "error")
            .await
            .map_err(handler_error)?;
        let detail = format!(
            "migration of volume {} to {} failed and was undone (the volume is unchanged): {why}",
            row.id, args.dest_backend
        );
        db.user_message_create(&NewMessage {
            project_id: &row.project_id,
            request_id: Some(&ctx.request_id),
            resource_type: Some("VOLUME"),
            resource_uuid: Some(&row.id),
            action_id: "001",
            detail_id: "001",
            detail: Some(&detail),
        })
        .await
        .map_err(handler_error)?;
        Ok(())
    }

    /// Start-up recovery: a migration of `v` (on this backend) was cut short by a restart.
    /// Its temporary volumes are deleted by their backends and the volume returns to its
    /// previous status with `migration_status = error`; the swap had not happened (it moves
    /// the volume off this backend in the same transaction that ends the migration).
    pub(super) async fn settle_migration(
        &self,
        ctx: &RequestContext,
        v: &crate::db::volumes::VolumeRow,
    ) -> Result<(), String> {
        let db = &self.rt.db;
        for t in db
            .volume_migration_targets(&v.id)
            .await
            .map_err(|e| e.to_string())?
        {
            db.volume_set_migration_status(&t.id, Some("deleting"))
                .await
                .map_err(|e| e.to_string())?;
            match &t.host {
                Some(host) => {
                    let backend = crate::scheduler::migrate::backend_of(host);
                    if let Err(e) = self
                        .volume_api()
                        .delete_volume(ctx, backend, &t.id, false)
                        .await
                    {
                        warn!(new_volume_id = %t.id, error = %e, "could not ask for the temporary volume's delete");
                    }
                }
                None => db.volume_destroy(&t.id).await.map_err(|e| e.to_string())?,
            }
        }
        db.volume_migration_end(&v.id, "error")
            .await
            .map_err(|e| e.to_string())?;
        let why = format!(
            "migration of volume {} was interrupted when the volume service {} stopped; it was \
             undone and the volume is unchanged",
            v.id, self.host
        );
        let _ = db
            .user_message_create(&NewMessage {
                project_id: &v.project_id,
                request_id: Some(&ctx.request_id),
                resource_type: Some("VOLUME"),
                resource_uuid: Some(&v.id),
                action_id: "001",
                detail_id: "001",
                detail: Some(&why),
            })
            .await;
        warn!(volume_id = %v.id, "settled a migration left half-way by a restart");
        Ok(())
    }

    fn volume_api(&self) -> &super::VolumeApi {
        &self.peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_this_machine_cannot_open_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("volume-elsewhere");
        let why = unreachable_destination(&missing, 1 << 30).unwrap();
        assert!(why.contains("cannot be opened here"), "{why}");
        let small = dir.path().join("volume-small");
        std::fs::File::create(&small)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let why = unreachable_destination(&small, 1 << 30).unwrap();
        assert!(why.contains("not the new volume"), "{why}");
        let ok = dir.path().join("volume-ok");
        std::fs::File::create(&ok)
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        assert_eq!(unreachable_destination(&ok, 1 << 30), None);
    }
}
