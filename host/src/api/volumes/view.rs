//! Cinder's volume views: the summary (id, name, links) and the detailed view, with the
//! admin-only host and migration attributes, and the self / bookmark links.

use axum::http::HeaderMap;
use serde_json::{json, Value};

use crate::api::Microversion;
use crate::db::volumes::VolumeRow;

/// `http://HOST/v3/PROJECT`, the prefix of a volume's links.
pub fn base_url(headers: &HeaderMap, project: &str) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/v3/{project}")
}

/// Who is looking, and at which microversion: what a view shows.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// `http://HOST/v3/PROJECT`.
    pub base: String,
    pub admin: bool,
    pub version: Microversion,
}

/// Cinder's detailed volume view at the viewer's microversion. `attachments` is the volume's
/// attachment list view.
pub fn detail_view(v: &VolumeRow, viewer: &Viewer, attachments: Value) -> Value {
    let (base, admin, mv) = (viewer.base.as_str(), viewer.admin, viewer.version);
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
        "attachments": attachments,
        "os-vol-tenant-attr:tenant_id": v.project_id,
        "links": links(v, base),
    });
    if admin {
        view["migration_status"] = json!(v.migration_status);
        view["os-vol-host-attr:host"] = json!(v.host);
        view["os-vol-mig-status-attr:migstat"] = json!(v.migration_status);
        view["os-vol-mig-status-attr:name_id"] = Value::Null;
    }
    // Fields added by later microversions (Cinder's v3 volume view).
    if mv.at_least(13) {
        view["group_id"] = Value::Null;
    }
    if mv.at_least(21) && admin {
        view["provider_id"] = Value::Null;
    }
    if mv.at_least(48) {
        view["shared_targets"] = json!(false);
        view["service_uuid"] = Value::Null;
    }
    if mv.at_least(61) && admin {
        view["cluster_name"] = Value::Null;
    }
    if mv.at_least(63) {
        view["volume_type_id"] = json!(v.volume_type_id);
    }
    if mv.at_least(65) {
        view["consumes_quota"] = json!(v.use_quota);
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
