//! Component schemas of generic volume groups: group types and specs, groups (views,
//! create / update bodies, actions), group snapshots, and volume type encryption.

use serde_json::{json, Value};

use super::schemas::{
    action_union, array, boolean, envelope, loose_bool, nullable_string, object, r, string,
};

fn group_type() -> Value {
    object(
        json!({
            "id": string("UUID"),
            "name": string("Unique among live group types."),
            "description": nullable_string("At most 255 characters."),
            "is_public": boolean("Visible to every project."),
            "group_specs": r("StringMap"),
        }),
        &["id", "name"],
    )
}

fn group() -> Value {
    object(
        json!({
            "id": string("UUID"),
            "name": nullable_string("Display name."),
            "description": nullable_string("Display description."),
            "status": string("creating, available, error, deleting, ..."),
            "availability_zone": string("Zone of the group's backend."),
            "created_at": string("UTC timestamp."),
            "group_type": string("The group type's id."),
            "volume_types": array(string("A volume type's id.")),
            "group_snapshot_id": nullable_string("3.14+: the group snapshot it was made from."),
            "source_group_id": nullable_string("3.14+: the group it was copied from."),
            "volumes": array(string("3.25+ (with list_volume): member volume ids.")),
            "project_id": string("3.58+."),
        }),
        &["id", "status", "group_type", "volume_types"],
    )
}

fn summary() -> Value {
    object(
        json!({ "id": string("UUID"), "name": nullable_string("Display name.") }),
        &["id"],
    )
}

fn group_snapshot() -> Value {
    object(
        json!({
            "id": string("UUID"),
            "name": nullable_string("Display name."),
            "description": nullable_string("Display description."),
            "status": string("creating, available, error, deleting, ..."),
            "created_at": string("UTC timestamp."),
            "group_id": string("The group snapshotted."),
            "group_type_id": string("3.19+: the group's type."),
            "project_id": string("3.58+."),
        }),
        &["id", "status", "group_id"],
    )
}

fn encryption_spec() -> Value {
    object(
        json!({
            "provider": string("The encryptor (e.g. luks, or a class path)."),
            "cipher": nullable_string("e.g. aes-xts-plain64."),
            "key_size": json!({ "type": ["integer", "null"], "description": "Bits." }),
            "control_location": json!({ "enum": ["front-end", "back-end"] }),
        }),
        &["provider"],
    )
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        ("GroupType", group_type()),
        ("GroupTypeResponse", envelope("group_type", r("GroupType"))),
        (
            "GroupTypeList",
            envelope("group_types", array(r("GroupType"))),
        ),
        (
            "GroupTypeCreateRequest",
            envelope(
                "group_type",
                object(
                    json!({ "name": json!({ "type": "string", "minLength": 1, "maxLength": 255 }),
                            "description": json!({ "type": "string", "maxLength": 255 }),
                            "is_public": loose_bool("Default true."),
                            "group_specs": r("StringMap") }),
                    &["name"],
                ),
            ),
        ),
        (
            "GroupTypeUpdateRequest",
            envelope(
                "group_type",
                json!({ "type": "object", "minProperties": 1,
                        "properties": { "name": string("New name."),
                                        "description": string("New description."),
                                        "is_public": loose_bool("Visibility.") } }),
            ),
        ),
        ("GroupSpecsBody", envelope("group_specs", r("StringMap"))),
        ("Group", group()),
        ("GroupSummary", summary()),
        ("GroupResponse", envelope("group", r("Group"))),
        ("GroupSummaryResponse", envelope("group", r("GroupSummary"))),
        ("GroupList", envelope("groups", array(r("Group")))),
        (
            "GroupSummaryList",
            envelope("groups", array(r("GroupSummary"))),
        ),
        (
            "GroupCreateRequest",
            envelope(
                "group",
                object(
                    json!({ "group_type": string("Name or id of the group type."),
                            "volume_types": array(string("Name or id of a volume type.")),
                            "name": string("Display name."),
                            "description": string("Display description."),
                            "availability_zone": string("Zone to place the group in.") }),
                    &["group_type", "volume_types"],
                ),
            ),
        ),
        (
            "GroupCreateFromSrcRequest",
            envelope(
                "create-from-src",
                object(
                    json!({ "group_snapshot_id": string("Make the group from this group snapshot."),
                            "source_group_id": string("Or copy this group."),
                            "name": string("Display name."),
                            "description": string("Display description.") }),
                    &[],
                ),
            ),
        ),
        (
            "GroupUpdateRequest",
            envelope(
                "group",
                object(
                    json!({ "name": string("New name."),
                            "description": string("New description."),
                            "add_volumes": string("Comma-separated volume ids to add."),
                            "remove_volumes": string("Comma-separated volume ids to remove.") }),
                    &[],
                ),
            ),
        ),
        (
            "GroupAction",
            action_union(
                "groups",
                vec![
                    (
                        "delete",
                        object(
                            json!({ "delete-volumes": loose_bool("Delete the member volumes too (default false).") }),
                            &[],
                        ),
                    ),
                    (
                        "reset_status",
                        object(json!({ "status": string("The new status.") }), &["status"]),
                    ),
                ],
            ),
        ),
        ("GroupSnapshot", group_snapshot()),
        ("GroupSnapshotSummary", summary()),
        (
            "GroupSnapshotResponse",
            envelope("group_snapshot", r("GroupSnapshot")),
        ),
        (
            "GroupSnapshotSummaryResponse",
            envelope("group_snapshot", r("GroupSnapshotSummary")),
        ),
        (
            "GroupSnapshotList",
            envelope("group_snapshots", array(r("GroupSnapshot"))),
        ),
        (
            "GroupSnapshotSummaryList",
            envelope("group_snapshots", array(r("GroupSnapshotSummary"))),
        ),
        (
            "GroupSnapshotCreateRequest",
            envelope(
                "group_snapshot",
                object(
                    json!({ "group_id": string("The group to snapshot."),
                            "name": string("Display name."),
                            "description": string("Display description.") }),
                    &["group_id"],
                ),
            ),
        ),
        (
            "GroupSnapshotAction",
            action_union(
                "group_snapshots",
                vec![(
                    "reset_status",
                    object(json!({ "status": string("The new status.") }), &["status"]),
                )],
            ),
        ),
        (
            "Encryption",
            json!({ "oneOf": [encryption_spec(), { "type": "object", "maxProperties": 0 }],
                    "description": "The type's encryption, or {} when it has none." }),
        ),
        ("EncryptionBody", envelope("encryption", encryption_spec())),
    ]
}
