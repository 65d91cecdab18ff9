//! Cinder's volume views: the summary (id, name, links) and the detailed view, with the
//! admin-only host and migration attributes, and the self / bookmark links.

use axum::http::HeaderMap;
use serde_json::{json, Value};

use crate::db::volumes::VolumeRow;

/// `http://HOST/v3/PROJECT`, the prefix of a volume's links.
pub fn base_url(headers: &HeaderMap, project: &str) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/v3/{project}")
}

/// Cinder's detailed volume view. `attachments` is the volume's attachment list view.
pub fn detail_view(v: &VolumeRow, base: &str, admin: bool, attachments: Value) -> Value {
    let mut view = json!({
        "id": v.id,
        "name": v.display_name,
        "description": v.display_description,
        "size": v.size,
        "status": v.status,
        "availability_zone": v.availability_zone,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
        "volume_type": v.volume_type_name.clone().or_else(|| v.volume_type_id.clone()),
        "snapshot_id": v.snapshot_id,
        "source_volid": v.source_volid,
        "metadata": v.metadata,
        "user_id": v.user_id,
        "bootable": if v.bootable { "true" } else { "false" },
        "encrypted": v.encrypted,
        "multiattach": v.multiattach,
        "replication_status": null,
        "consistencygroup_id": null,
        "migration_status": v.migration_status,
        "attachments": attachments,
        "os-vol-tenant-attr:tenant_id": v.project_id,
        "links": links(v, base),
    });
    if admin {
        view["os-vol-host-attr:host"] = json!(v.host);
        view["os-vol-mig-status-attr:migstat"] = json!(v.migration_status);
        view["os-vol-mig-status-attr:name_id"] = Value::Null;
    }
    view
}

/// The summary view of `GET /volumes`.
pub fn summary_view(v: &VolumeRow, base: &str) -> Value {
    json!({ "id": v.id, "name": v.display_name, "links": links(v, base) })
}

fn links(v: &VolumeRow, base: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{base}/volumes/{}", v.id)},
        {"rel": "bookmark", "href": format!("{base}/volumes/{}", v.id).replace("/v3/", "/")},
    ])
}
