//! The attach state machine shared by the attachments API (3.27+) and the legacy volume
//! actions (`os-reserve`, `os-attach`, `os-detach`, ...): which volume states allow what,
//! the attachment records, and the calls to the volume service that export the volume and
//! remove the export when the last attachment ends.

use serde_json::Value;

use crate::api::{ApiError, AppState};
use crate::db::attachments::{AttachmentRow, AttachmentUpdate, NewAttachment};
use crate::db::volumes::VolumeRow;
use crate::drivers::Connector;
use crate::rpc::RequestContext;
use crate::volume::{ConnectArgs, DisconnectArgs};

fn invalid(msg: String) -> ApiError {
    ApiError::BadRequest(format!("Invalid volume: {msg}"))
}

/// `host@backend` of a placed volume.
pub fn backend_of(row: &VolumeRow) -> Result<&str, ApiError> {
    let host = row.host.as_deref().ok_or_else(|| {
        invalid(format!(
            "volume {} is not on any backend (status {}).",
            row.id, row.status
        ))
    })?;
    Ok(host.split_once('#').map_or(host, |(b, _)| b))
}

/// A volume may take one more attachment: available, or already attached and multiattach.
pub async fn check_attachable(st: &AppState, row: &VolumeRow) -> Result<(), ApiError> {
    let live = st
        .rt
        .db
        .attachments_of(std::slice::from_ref(&row.id))
        .await?;
    let ok = match row.status.as_str() {
        "available" => true,
        "in-use" | "reserved" | "attaching" => row.multiattach,
        _ => false,
    };
    if !ok || (!live.is_empty() && !row.multiattach) {
        return Err(invalid(format!(
            "volume {} is {} with {} attachment(s); only an available volume, or a multiattach \
             volume, can be attached",
            row.id,
            row.status,
            live.len()
        )));
    }
    Ok(())
}

/// Parse a connector object (Cinder's connector dict).
pub fn connector(v: &Value) -> Result<Connector, ApiError> {
    serde_json::from_value(v.clone()).map_err(|e| {
        ApiError::BadRequest(format!(
            "Invalid input received: connector must be an object with at least 'host': {e}"
        ))
    })
}

/// The volume's access mode: `ro` when the admin made it read-only.
pub async fn access_mode(st: &AppState, volume_id: &str) -> Result<String, ApiError> {
    let admin = st
        .rt
        .db
        .metadata_get(&crate::db::volumes::ADMIN_METADATA, volume_id)
        .await?;
    Ok(match admin.get("readonly").map(String::as_str) {
        Some("True") | Some("true") => "ro".into(),
        _ => "rw".into(),
    })
}

/// Export the volume for `connector` through its volume service.
pub async fn connect(
    st: &AppState,
    ctx: &RequestContext,
    row: &VolumeRow,
    connector: Connector,
    mode: &str,
) -> Result<Value, ApiError> {
    let args = ConnectArgs {
        volume_id: row.id.clone(),
        connector,
        access_mode: mode.to_string(),
    };
    let info = st
        .volume
        .initialize_connection(ctx, backend_of(row)?, &args)
        .await
        .map_err(|e| {
            ApiError::Internal(format!(
                "Unable to fetch connection information from backend: {e}"
            ))
        })?;
    Ok(serde_json::to_value(info).expect("connection info serialises"))
}

/// Create an attachment record.
pub async fn new_attachment(
    st: &AppState,
    row: &VolumeRow,
    instance: Option<String>,
    host: Option<String>,
    mountpoint: Option<String>,
    mode: &str,
    status: &str,
) -> Result<AttachmentRow, ApiError> {
    Ok(st
        .rt
        .db
        .attachment_create(&NewAttachment {
            id: uuid::Uuid::new_v4().to_string(),
            volume_id: row.id.clone(),
            instance_uuid: instance,
            attached_host: host,
            mountpoint,
            attach_mode: mode.to_string(),
            attach_status: status.to_string(),
        })
        .await?)
}

/// The attachment is in use: it is `attached`, the volume `in-use`.
pub async fn complete(st: &AppState, a: &AttachmentRow) -> Result<AttachmentRow, ApiError> {
    let a = st
        .rt
        .db
        .attachment_update(
            &a.id,
            &AttachmentUpdate {
                attach_status: Some("attached".into()),
                attached_now: true,
                ..Default::default()
            },
        )
        .await?;
    st.rt
        .db
        .volume_set_attach_state(&a.volume_id, "in-use", "attached")
        .await?;
    Ok(a)
}

/// End an attachment: tell the backend (its connector, and the export when it was the
/// last), drop the record, and put the volume back to `available` (or keep it `in-use`
/// for the other attachments). Returns the attachments left.
pub async fn detach(
    st: &AppState,
    ctx: &RequestContext,
    row: &VolumeRow,
    a: &AttachmentRow,
) -> Result<Vec<AttachmentRow>, ApiError> {
    let others: Vec<AttachmentRow> = st
        .rt
        .db
        .attachments_of(std::slice::from_ref(&row.id))
        .await?
        .into_iter()
        .filter(|o| o.id != a.id)
        .collect();
    let connector = a
        .connector
        .as_ref()
        .and_then(|c| serde_json::from_value::<Connector>(c.clone()).ok());
    if row.host.is_some() {
        let args = DisconnectArgs {
            volume_id: row.id.clone(),
            connector,
            remove_export: others.is_empty(),
        };
        st.volume
            .terminate_connection(ctx, backend_of(row)?, &args)
            .await
            .map_err(|e| ApiError::Internal(format!("the backend could not detach: {e}")))?;
    }
    st.rt.db.attachment_destroy(&a.id).await?;
    settle(st, &row.id, &others).await?;
    Ok(others)
}

/// The volume's state from its remaining attachments.
pub async fn settle(
    st: &AppState,
    volume_id: &str,
    remaining: &[AttachmentRow],
) -> Result<(), ApiError> {
    let attached = remaining.iter().any(|a| a.attach_status == "attached");
    let (status, attach_status) = match (attached, remaining.is_empty()) {
        (true, _) => ("in-use", "attached"),
        (false, true) => ("available", "detached"),
        (false, false) => ("reserved", "detached"),
    };
    st.rt
        .db
        .volume_set_attach_state(volume_id, status, attach_status)
        .await?;
    Ok(())
}
