//! Component schemas of the volume resources: volume create / update bodies and the detail
//! view (`volumes/view.rs`), the volume actions (`volume_actions/`), snapshots, attachments
//! and transfers. Field lists follow the handlers; microversion-dependent fields say from
//! which version they appear.

use serde_json::{json, Value};

use super::schemas::{
    action_union, array, boolean, envelope, integer, loose_bool, nullable_string, object, r, string,
};

/// The volume actions `volume_actions::action` dispatches, with their arguments. The
/// `volume_actions_are_all_documented` test keeps this list and the dispatch in step.
pub fn volume_actions() -> Vec<(&'static str, Value)> {
    let connector = r("Connector");
    let none =
        json!({ "type": ["object", "null"], "description": "No arguments (`null` or `{}`)." });
    vec![
        (
            "os-extend",
            object(
                json!({ "new_size": json!({ "type": ["integer", "string"],
                "description": "The new size in GiB, larger than the current one." }) }),
                &["new_size"],
            ),
        ),
        (
            "os-migrate_volume",
            object(
                json!({
                    "host": string("Destination `host@backend[#pool]`; from 3.16 optional (the scheduler chooses)."),
                    "force_host_copy": loose_bool("Copy through the host even when the driver could do better."),
                    "lock_volume": loose_bool("Keep the volume in `maintenance` while it moves."),
                }),
                &[],
            ),
        ),
        (
            "revert",
            object(
                json!({ "snapshot_id": string("3.40+: the volume's latest snapshot (same size, both available).") }),
                &["snapshot_id"],
            ),
        ),
        (
            "os-retype",
            object(
                json!({
                    "new_type": string("Name or id of the new volume type."),
                    "migration_policy": json!({ "enum": ["never", "on-demand"] }),
                }),
                &["new_type"],
            ),
        ),
        (
            "os-reset_status",
            object(
                json!({ "status": string("The new status."),
                        "attach_status": string("The new attach status.") }),
                &[],
            ),
        ),
        ("os-force_delete", none.clone()),
        (
            "os-set_bootable",
            object(
                json!({ "bootable": loose_bool("Bootable flag.") }),
                &["bootable"],
            ),
        ),
        (
            "os-update_readonly_flag",
            object(
                json!({ "readonly": loose_bool("Read-only flag.") }),
                &["readonly"],
            ),
        ),
        ("os-reserve", none.clone()),
        ("os-unreserve", none.clone()),
        ("os-begin_detaching", none.clone()),
        ("os-roll_detaching", none),
        (
            "os-attach",
            object(
                json!({
                    "instance_uuid": string("The server attaching it."),
                    "host_name": string("The host attaching it (instead of a server)."),
                    "mountpoint": string("Device path, e.g. /dev/vdb."),
                    "mode": json!({ "enum": ["rw", "ro"] }),
                }),
                &[],
            ),
        ),
        (
            "os-detach",
            object(
                json!({ "attachment_id": string("The attachment to end.") }),
                &[],
            ),
        ),
        (
            "os-initialize_connection",
            object(json!({ "connector": connector.clone() }), &["connector"]),
        ),
        (
            "os-terminate_connection",
            object(json!({ "connector": connector }), &["connector"]),
        ),
    ]
}

/// The snapshot actions of `snapshots::action`.
pub fn snapshot_actions() -> Vec<(&'static str, Value)> {
    vec![
        (
            "os-reset_status",
            object(json!({ "status": string("The new status.") }), &["status"]),
        ),
        (
            "os-update_snapshot_status",
            object(
                json!({ "status": string("available / error (from creating), error_deleting (from deleting)."),
                        "progress": string("e.g. 90%") }),
                &["status"],
            ),
        ),
        ("os-force_delete", json!({ "type": ["object", "null"] })),
    ]
}

fn volume_detail() -> Value {
    let mut v = object(
        json!({
            "id": string("UUID"),
            "name": nullable_string("Display name."),
            "description": nullable_string("Display description."),
            "size": integer("GiB."),
            "status": string("creating, available, in-use, error, ..."),
            "availability_zone": string("Zone of the volume's service."),
            "created_at": string("UTC timestamp."),
            "updated_at": nullable_string("UTC timestamp."),
            "volume_type": nullable_string("The type's name."),
            "snapshot_id": nullable_string("Source snapshot."),
            "source_volid": nullable_string("Source volume of a clone."),
            "metadata": r("Metadata"),
            "user_id": nullable_string("Owner user."),
            "bootable": string("\"true\" or \"false\"."),
            "encrypted": boolean("Always false (no encryption)."),
            "multiattach": boolean("May be attached more than once."),
            "replication_status": nullable_string("Always null."),
            "consistencygroup_id": nullable_string("Always null."),
            "attachments": array(r("AnyObject")),
            "os-vol-tenant-attr:tenant_id": string("Owner project."),
            "links": array(r("Link")),
            "migration_status": nullable_string("Admins only."),
            "os-vol-host-attr:host": nullable_string("Admins only: host@backend#pool."),
            "os-vol-mig-status-attr:migstat": nullable_string("Admins only."),
            "os-vol-mig-status-attr:name_id": nullable_string("Admins only."),
            "group_id": nullable_string("3.13+."),
            "provider_id": nullable_string("3.21+, admins only."),
            "shared_targets": boolean("3.48+."),
            "service_uuid": nullable_string("3.48+."),
            "cluster_name": nullable_string("3.61+, admins only."),
            "volume_type_id": nullable_string("3.63+."),
            "consumes_quota": boolean("3.65+."),
        }),
        &["id", "size", "status", "links"],
    );
    v["description"] = json!("Cinder's v3 detailed volume view (`volumes/view.rs`).");
    v
}

fn volume_create() -> Value {
    object(
        json!({
            "size": json!({ "type": ["integer", "string"], "description": "GiB, positive (a snapshot's size by default)." }),
            "name": string("At most 255 characters."),
            "display_name": string("Legacy name."),
            "description": string("At most 255 characters."),
            "display_description": string("Legacy description."),
            "metadata": r("Metadata"),
            "availability_zone": string("A zone of a volume service."),
            "volume_type": string("Name or id; default __DEFAULT__ or the source's type."),
            "source_volid": string("Clone this volume."),
            "snapshot_id": string("Create from this available snapshot."),
            "multiattach": loose_bool("May be attached more than once."),
        }),
        &[],
    )
}

fn snapshot() -> Value {
    object(
        json!({
            "id": string("UUID"),
            "created_at": string("UTC timestamp."),
            "updated_at": nullable_string("UTC timestamp."),
            "name": nullable_string("Display name."),
            "description": nullable_string("Display description."),
            "volume_id": string("The snapshotted volume."),
            "status": string("creating, available, deleting, error, error_deleting, ..."),
            "size": integer("GiB."),
            "metadata": r("Metadata"),
            "os-extended-snapshot-attributes:progress": nullable_string("Show and detail only."),
            "os-extended-snapshot-attributes:project_id": string("Show and detail only."),
            "group_snapshot_id": nullable_string("3.14+."),
            "user_id": nullable_string("3.41+."),
            "consumes_quota": boolean("3.65+."),
        }),
        &["id", "volume_id", "status", "size"],
    )
}

fn attachment() -> Value {
    object(
        json!({
            "id": string("UUID"),
            "status": string("reserved, attaching, attached, detached, error_attaching, ..."),
            "instance": nullable_string("The server."),
            "volume_id": string("The volume."),
            "attached_at": nullable_string("Detail / show only."),
            "detached_at": nullable_string("Detail / show only."),
            "attach_mode": nullable_string("rw or ro (detail / show only)."),
            "connection_info": r("AnyObject"),
        }),
        &["id", "status", "volume_id"],
    )
}

fn transfer() -> Value {
    object(
        json!({
            "id": string("UUID"),
            "name": nullable_string("Display name."),
            "volume_id": string("The volume offered."),
            "links": array(r("Link")),
            "created_at": string("Detail / show."),
            "auth_key": string("Create only: the one-time key the acceptor needs."),
            "no_snapshots": boolean("3.55+."),
            "source_project_id": string("3.57+."),
            "destination_project_id": nullable_string("3.57+."),
            "accepted": boolean("3.57+."),
        }),
        &["id", "volume_id"],
    )
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    let list = |key: &str, item: &str| {
        let mut o = envelope(key, array(r(item)));
        o["properties"][format!("{key}_links")] = array(r("Link"));
        o
    };
    let mut create = envelope("volume", volume_create());
    create["properties"]["OS-SCH-HNT:scheduler_hints"] = json!({
        "type": "object",
        "description": "same_host / different_host: volume ids (affinity filters).",
    });
    vec![
        ("Volume", volume_detail()),
        (
            "VolumeSummary",
            object(
                json!({ "id": string("UUID"), "name": nullable_string("Display name."),
                        "links": array(r("Link")) }),
                &["id", "links"],
            ),
        ),
        ("VolumeCreateRequest", create),
        (
            "VolumeUpdateRequest",
            envelope(
                "volume",
                object(
                    json!({ "name": string("New name."), "display_name": string("Legacy name."),
                            "description": string("New description."),
                            "display_description": string("Legacy description."),
                            "metadata": r("Metadata") }),
                    &[],
                ),
            ),
        ),
        ("VolumeResponse", envelope("volume", r("Volume"))),
        ("VolumeSummaryList", list("volumes", "VolumeSummary")),
        ("VolumeDetailList", list("volumes", "Volume")),
        (
            "VolumeSummaryReport",
            envelope(
                "volume-summary",
                object(
                    json!({ "total_size": integer("GiB."), "total_count": integer("Volumes."),
                            "metadata": json!({ "type": "object" }) }),
                    &["total_size", "total_count"],
                ),
            ),
        ),
        ("VolumeAction", action_union("volumes", volume_actions())),
        (
            "VolumeActionResult",
            json!({ "description": "os-initialize_connection: the connection info; os-set_bootable: no body.",
                    "type": "object", "properties": { "connection_info": r("AnyObject") } }),
        ),
        (
            "Connector",
            json!({ "type": "object", "required": ["host"],
                    "properties": { "host": string("The connecting host."),
                                    "initiator": string("iSCSI initiator IQN."),
                                    "ip": string("Address."), "multipath": boolean("Multipath.") },
                    "description": "os-brick's connector properties." }),
        ),
        ("Snapshot", snapshot()),
        (
            "SnapshotCreateRequest",
            envelope(
                "snapshot",
                object(
                    json!({ "volume_id": string("The volume (404 when missing)."),
                            "name": string("Display name."), "display_name": string("Legacy name."),
                            "description": string("Description."),
                            "display_description": string("Legacy description."),
                            "metadata": r("Metadata"),
                            "force": loose_bool("Snapshot an in-use volume.") }),
                    &["volume_id"],
                ),
            ),
        ),
        (
            "SnapshotUpdateRequest",
            envelope(
                "snapshot",
                object(
                    json!({ "name": string("New name."), "display_name": string("Legacy name."),
                            "description": string("New description."),
                            "display_description": string("Legacy description.") }),
                    &[],
                ),
            ),
        ),
        ("SnapshotResponse", envelope("snapshot", r("Snapshot"))),
        ("SnapshotList", list("snapshots", "Snapshot")),
        (
            "SnapshotAction",
            action_union("snapshots", snapshot_actions()),
        ),
        ("Attachment", attachment()),
        (
            "AttachmentCreateRequest",
            envelope(
                "attachment",
                object(
                    json!({ "volume_id": string("The volume."),
                            "instance_uuid": string("The server."),
                            "connector": r("Connector"),
                            "mode": json!({ "enum": ["rw", "ro"] }) }),
                    &["volume_id"],
                ),
            ),
        ),
        (
            "AttachmentUpdateRequest",
            envelope(
                "attachment",
                object(json!({ "connector": r("Connector") }), &["connector"]),
            ),
        ),
        (
            "AttachmentResponse",
            envelope("attachment", r("Attachment")),
        ),
        (
            "AttachmentList",
            envelope("attachments", array(r("Attachment"))),
        ),
        (
            "AttachmentAction",
            action_union(
                "attachments",
                vec![("os-complete", json!({ "type": ["object", "null"] }))],
            ),
        ),
        ("Transfer", transfer()),
        (
            "TransferCreateRequest",
            envelope(
                "transfer",
                object(
                    json!({ "volume_id": string("An available volume."),
                            "name": string("Display name."),
                            "no_snapshots": loose_bool("3.55+: leave the snapshots behind.") }),
                    &["volume_id"],
                ),
            ),
        ),
        (
            "TransferAcceptRequest",
            envelope(
                "accept",
                object(
                    json!({ "auth_key": string("The key from create.") }),
                    &["auth_key"],
                ),
            ),
        ),
        ("TransferResponse", envelope("transfer", r("Transfer"))),
        ("TransferList", envelope("transfers", array(r("Transfer")))),
    ]
}
