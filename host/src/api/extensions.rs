//! `GET /extensions`: the legacy extension list clients probe (Cinder's contrib
//! extensions). Every alias Cinder lists is answered, so a client that checks for one before
//! using the resource finds it; which of those resources Kiln implements is in docs/api.md.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::context::Ctx;
use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/extensions", get(list))
}

/// (alias, name, description), as Cinder lists them.
const EXTENSIONS: [(&str, &str, &str); 32] = [
    ("os-hosts", "Hosts", "Admin-only host administration."),
    (
        "os-vol-tenant-attr",
        "VolumeTenantAttribute",
        "Expose the internal project_id as an attribute of a volume.",
    ),
    ("os-quota-sets", "Quotas", "Quota management support."),
    (
        "os-availability-zone",
        "AvailabilityZones",
        "Describe Availability Zones.",
    ),
    (
        "os-volume-encryption-metadata",
        "VolumeEncryptionMetadata",
        "Volume encryption metadata retrieval support.",
    ),
    ("backups", "Backups", "Backups support."),
    (
        "os-snapshot-actions",
        "SnapshotActions",
        "Enable snapshot manager actions.",
    ),
    (
        "os-volume-actions",
        "VolumeActions",
        "Enable volume actions.",
    ),
    (
        "os-snapshot-manage",
        "SnapshotManage",
        "Allows existing backend storage to be 'managed' by Cinder.",
    ),
    (
        "os-volume-unmanage",
        "VolumeUnmanage",
        "Enable volume unmanage operation.",
    ),
    (
        "consistencygroups",
        "Consistencygroups",
        "consistency groups support.",
    ),
    (
        "os-vol-host-attr",
        "VolumeHostAttribute",
        "Expose host as an attribute of a volume.",
    ),
    (
        "encryption",
        "VolumeTypeEncryption",
        "Encryption support for volume types.",
    ),
    (
        "os-vol-image-meta",
        "VolumeImageMetadata",
        "Show image metadata associated with the volume.",
    ),
    ("os-types-manage", "TypesManage", "Types manage support."),
    ("capabilities", "Capabilities", "Capabilities support."),
    ("cgsnapshots", "Cgsnapshots", "cgsnapshots support."),
    (
        "os-types-extra-specs",
        "TypesExtraSpecs",
        "Type extra specs support.",
    ),
    (
        "os-used-limits",
        "UsedLimits",
        "Provide data on limited resources that are being used.",
    ),
    (
        "os-vol-mig-status-attr",
        "VolumeMigStatusAttribute",
        "Expose migration_status as an attribute of a volume.",
    ),
    (
        "os-volume-type-access",
        "VolumeTypeAccess",
        "Volume type access support.",
    ),
    (
        "os-extended-services",
        "ExtendedServices",
        "Extended services support.",
    ),
    (
        "os-extended-snapshot-attributes",
        "ExtendedSnapshotAttributes",
        "Extended SnapshotAttributes support.",
    ),
    (
        "os-snapshot-unmanage",
        "SnapshotUnmanage",
        "Enable volume unmanage operation.",
    ),
    ("qos-specs", "Qos_specs_manage", "QoS specs support."),
    (
        "os-quota-class-sets",
        "QuotaClasses",
        "Quota classes management support.",
    ),
    (
        "os-volume-transfer",
        "VolumeTransfer",
        "Volume transfer management support.",
    ),
    (
        "os-volume-manage",
        "VolumeManage",
        "Allows existing backend storage to be 'managed' by Cinder.",
    ),
    ("os-admin-actions", "AdminActions", "Enable admin actions."),
    ("os-services", "Services", "Services support."),
    (
        "scheduler-stats",
        "Scheduler_stats",
        "Scheduler stats support.",
    ),
    (
        "OS-SCH-HNT",
        "SchedulerHints",
        "Pass arbitrary key/value pairs to the scheduler.",
    ),
];

pub async fn list(_ctx: Ctx) -> Json<Value> {
    let list: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(alias, name, description)| {
            json!({
                "alias": alias,
                "name": name,
                "description": description,
                "links": [],
                "updated": "2011-08-24T00:00:00+00:00",
            })
        })
        .collect();
    Json(json!({ "extensions": list }))
}
