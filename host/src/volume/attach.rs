//! The backend side of attaching a volume: export it and tell the attaching host how to reach
//! it (`initialize_connection`, Cinder's `connection_info`), and undo that
//! (`terminate_connection`, then `remove_export` once nothing uses the volume). The API keeps
//! the attachment records and the volume's attach state; this module only runs the driver.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::flows::{handler_error, volume_ref};
use super::VolumeManager;
use crate::db::user_messages::NewMessage;
use crate::db::volumes::VolumeRow;
use crate::drivers::{ConnectionInfo, Connector};
use crate::rpc::{RemoteError, RequestContext};

/// Cinder's message action "attach volume".
pub(crate) const ACTION_ATTACH: &str = "002";

/// Arguments of `initialize_connection`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectArgs {
    pub volume_id: String,
    pub connector: Connector,
    /// `rw` or `ro`: reported to the host as `access_mode`.
    #[serde(default = "rw")]
    pub access_mode: String,
}

fn rw() -> String {
    "rw".into()
}

/// Arguments of `terminate_connection`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DisconnectArgs {
    pub volume_id: String,
    /// The host that stops using the volume; `None`: only remove the export.
    #[serde(default)]
    pub connector: Option<Connector>,
    /// Remove the export too (the last attachment ended).
    #[serde(default)]
    pub remove_export: bool,
}

impl VolumeManager {
    /// Export the volume for `connector` and return how it reaches it. A failure is told to
    /// the volume's owner (a user message) and answered as an error; a connection step that
    /// fails after the export was made removes the export again.
    pub(crate) async fn initialize_connection(
        &self,
        ctx: &RequestContext,
        args: ConnectArgs,
    ) -> Result<ConnectionInfo, RemoteError> {
        let row = self
            .rt
            .db
            .volume_get(&args.volume_id)
            .await
            .map_err(handler_error)?;
        let mut volume = volume_ref(&row)?;
        let driver = self.driver().await;
        let update = match driver.create_export(&volume, &args.connector).await {
            Ok(update) => update,
            Err(e) => {
                drop(driver);
                let why = format!(
                    "volume {} could not be exported for host {}: {e}",
                    row.id, args.connector.host
                );
                return Err(self.attach_failed(ctx, &row, why).await);
            }
        };
        let connected = async {
            if update.provider_location.is_some() || update.provider_auth.is_some() {
                volume.apply(&update);
                self.rt
                    .db
                    .volume_set_provider(
                        &row.id,
                        volume.provider_location.as_deref(),
                        volume.provider_auth.as_deref(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
            }
            driver
                .initialize_connection(&volume, &args.connector)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        let mut info = match connected {
            Ok(info) => info,
            Err(e) => {
                // Undo the export this call made (a volume already attached elsewhere keeps
                // its export: another host still uses it).
                let mut why = format!(
                    "the connection of volume {} for host {} failed: {e}",
                    row.id, args.connector.host
                );
                if row.attach_status != "attached" {
                    match driver.remove_export(&volume).await {
                        Ok(()) => {}
                        Err(r) if r.is_not_found() => {}
                        Err(r) => why.push_str(&format!("; its export could not be removed: {r}")),
                    }
                }
                drop(driver);
                return Err(self.attach_failed(ctx, &row, why).await);
            }
        };
        if let Some(data) = info.data.as_object_mut() {
            data.insert("volume_id".into(), row.id.clone().into());
            data.insert("access_mode".into(), args.access_mode.clone().into());
            data.entry("encrypted").or_insert(row.encrypted.into());
            data.entry("qos_specs").or_insert(serde_json::Value::Null);
        }
        info!(volume_id = %row.id, host = %args.connector.host, kind = %info.driver_volume_type, "connection initialised");
        Ok(info)
    }

    /// An attach step failed: a user message on the volume (action "attach volume"), and the
    /// error to answer.
    async fn attach_failed(
        &self,
        ctx: &RequestContext,
        row: &VolumeRow,
        why: String,
    ) -> RemoteError {
        warn!(volume_id = %row.id, reason = %why, "attach failed");
        if let Err(e) = self
            .rt
            .db
            .user_message_create(&NewMessage {
                project_id: &row.project_id,
                request_id: Some(&ctx.request_id),
                resource_type: Some("VOLUME"),
                resource_uuid: Some(&row.id),
                action_id: ACTION_ATTACH,
                detail_id: "001",
                detail: Some(&why),
            })
            .await
        {
            warn!(volume_id = %row.id, error = %e, "could not record the attach failure message");
        }
        handler_error(why)
    }

    /// The connector's host no longer uses the volume; remove the export when asked.
    pub(crate) async fn terminate_connection(
        &self,
        _ctx: &RequestContext,
        args: DisconnectArgs,
    ) -> Result<(), RemoteError> {
        let row = self
            .rt
            .db
            .volume_get(&args.volume_id)
            .await
            .map_err(handler_error)?;
        let volume = volume_ref(&row)?;
        let driver = self.driver().await;
        if let Some(c) = &args.connector {
            driver
                .terminate_connection(&volume, c)
                .await
                .map_err(handler_error)?;
        }
        if args.remove_export {
            match driver.remove_export(&volume).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(handler_error(e)),
            }
        }
        info!(volume_id = %row.id, remove_export = args.remove_export, "connection terminated");
        Ok(())
    }
}
