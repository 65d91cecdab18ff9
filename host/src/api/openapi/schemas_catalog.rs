//! Component schemas of the catalog and operator resources: volume types (with the access
//! actions), QoS specs, quota sets and classes, limits, zones, extensions, user messages,
//! services and pools, and the request bodies of Kiln's `kiln-*` admin API.

use serde_json::{json, Value};

use super::schemas::{
    action_union, array, boolean, envelope, integer, loose_bool, nullable_string, object, r, string,
};

/// Quota values: an integer from -1 (unlimited), or a string of one.
fn quota_value() -> Value {
    json!({ "type": ["integer", "string"], "description": "-1 is unlimited." })
}

fn quota_set(id_about: &str) -> Value {
    let mut properties = json!({ "id": string(id_about) });
    for (resource, _) in crate::db::quotas::RESOURCES {
        properties[resource] = json!({
            "oneOf": [
                { "type": "integer" },
                object(json!({ "limit": integer("Limit."), "in_use": integer("Used."),
                               "reserved": integer("Reserved.") }), &["limit", "in_use"]),
            ],
            "description": "The limit, or with ?usage=true {limit, in_use, reserved}.",
        });
    }
    json!({ "type": "object", "properties": properties,
            "additionalProperties": { "description": "Per-volume-type resources \
            (volumes_<type>, snapshots_<type>, gigabytes_<type>), in the same form." } })
}

fn quota_update(key: &str) -> Value {
    let mut properties = json!({ "skip_validation": loose_bool("Allow a limit below the usage.") });
    for (resource, _) in crate::db::quotas::RESOURCES {
        properties[resource] = quota_value();
    }
    let mut inner = json!({ "type": "object", "properties": properties });
    // Cinder's per-volume-type resources of live types.
    inner["patternProperties"] = json!({ "^(volumes|snapshots|gigabytes)_.+$": quota_value() });
    inner["additionalProperties"] = json!(false);
    envelope(key, inner)
}

fn volume_type() -> Value {
    object(
        json!({
            "id": string("UUID"),
            "name": string("Unique among live types."),
            "description": nullable_string("At most 255 characters."),
            "is_public": boolean("Visible to every project."),
            "os-volume-type-access:is_public": boolean("Same as is_public."),
            "extra_specs": r("StringMap"),
            "qos_specs_id": nullable_string("Admins only."),
        }),
        &["id", "name"],
    )
}

fn default_type() -> Value {
    object(
        json!({ "project_id": string("The project."),
                "volume_type_id": string("Its default volume type.") }),
        &["project_id", "volume_type_id"],
    )
}

fn qos_specs() -> Value {
    object(
        json!({
            "id": string("UUID"),
            "name": string("Unique."),
            "consumer": json!({ "enum": ["front-end", "back-end", "both"] }),
            "specs": r("StringMap"),
        }),
        &["id", "name", "consumer"],
    )
}

pub fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        ("VolumeType", volume_type()),
        (
            "VolumeTypeResponse",
            envelope("volume_type", r("VolumeType")),
        ),
        (
            "VolumeTypeList",
            envelope("volume_types", array(r("VolumeType"))),
        ),
        (
            "VolumeTypeCreateRequest",
            envelope(
                "volume_type",
                object(
                    json!({ "name": json!({ "type": "string", "minLength": 1, "maxLength": 255 }),
                            "description": json!({ "type": "string", "maxLength": 255 }),
                            "os-volume-type-access:is_public": loose_bool("Default true."),
                            "extra_specs": r("StringMap") }),
                    &["name"],
                ),
            ),
        ),
        (
            "VolumeTypeUpdateRequest",
            envelope(
                "volume_type",
                json!({ "type": "object", "minProperties": 1,
                        "properties": { "name": string("New name."),
                                        "description": string("New description."),
                                        "is_public": loose_bool("Visibility.") } }),
            ),
        ),
        ("ExtraSpecsBody", envelope("extra_specs", r("StringMap"))),
        (
            "VolumeTypeAccessList",
            envelope(
                "volume_type_access",
                array(object(
                    json!({ "volume_type_id": string("Type."), "project_id": string("Project.") }),
                    &["volume_type_id", "project_id"],
                )),
            ),
        ),
        (
            "VolumeTypeAction",
            action_union(
                "types",
                ["addProjectAccess", "removeProjectAccess"]
                    .into_iter()
                    .map(|a| {
                        (
                            a,
                            object(json!({ "project": string("Project id.") }), &["project"]),
                        )
                    })
                    .collect(),
            ),
        ),
        ("QosSpecs", qos_specs()),
        ("QosSpecsResponse", envelope("qos_specs", r("QosSpecs"))),
        ("QosSpecsList", envelope("qos_specs", array(r("QosSpecs")))),
        (
            "QosSpecsCreateRequest",
            envelope(
                "qos_specs",
                json!({ "type": "object", "required": ["name"],
                        "properties": { "name": string("Unique name."),
                                        "consumer": json!({ "enum": ["front-end", "back-end", "both"] }) },
                        "additionalProperties": { "type": "string" } }),
            ),
        ),
        (
            "QosSpecsUpdateRequest",
            envelope("qos_specs", r("StringMap")),
        ),
        (
            "QosDeleteKeysRequest",
            envelope("keys", array(json!({ "type": "string" }))),
        ),
        (
            "QosAssociations",
            envelope(
                "qos_associations",
                array(object(
                    json!({ "association_type": string("volume_type"), "name": string("Type name."),
                            "id": string("Type id.") }),
                    &["id"],
                )),
            ),
        ),
        ("QuotaSet", quota_set("The project.")),
        ("QuotaSetResponse", envelope("quota_set", r("QuotaSet"))),
        ("QuotaSetUpdateRequest", quota_update("quota_set")),
        (
            "DefaultTypeResponse",
            envelope("default_type", default_type()),
        ),
        (
            "DefaultTypeList",
            envelope("default_types", array(default_type())),
        ),
        (
            "DefaultTypeSetRequest",
            envelope(
                "default_type",
                object(
                    json!({ "volume_type": string("Name or id of a live volume type.") }),
                    &["volume_type"],
                ),
            ),
        ),
        (
            "QuotaClassSetResponse",
            envelope("quota_class_set", quota_set("The class.")),
        ),
        (
            "QuotaClassSetUpdateRequest",
            quota_update("quota_class_set"),
        ),
        (
            "Limits",
            envelope(
                "limits",
                object(
                    json!({ "rate": array(r("AnyObject")),
                            "absolute": json!({ "type": "object",
                                "additionalProperties": { "type": "integer" },
                                "description": "maxTotalVolumes, totalVolumesUsed, ..." }) }),
                    &["rate", "absolute"],
                ),
            ),
        ),
        (
            "AvailabilityZones",
            envelope(
                "availabilityZoneInfo",
                array(object(
                    json!({ "zoneName": string("Zone."),
                            "zoneState": object(json!({ "available": boolean("Usable.") }), &["available"]) }),
                    &["zoneName", "zoneState"],
                )),
            ),
        ),
        ("Extensions", envelope("extensions", array(r("AnyObject")))),
        (
            "Message",
            object(
                json!({ "id": string("UUID"), "event_id": string("VOLUME_..."),
                        "user_message": string("\"<action>:<detail>\" and Kiln's explanation."),
                        "message_level": string("ERROR"), "resource_type": nullable_string("VOLUME"),
                        "resource_uuid": nullable_string("The resource."),
                        "created_at": string("UTC."), "guaranteed_until": string("UTC."),
                        "request_id": string("The request."), "links": array(r("Link")) }),
                &["id", "event_id", "user_message"],
            ),
        ),
        ("MessageResponse", envelope("message", r("Message"))),
        ("MessageList", envelope("messages", array(r("Message")))),
        (
            "ServiceList",
            envelope(
                "services",
                array(object(
                    json!({ "binary": string("cinder-volume, cinder-scheduler, kiln-api"),
                            "host": string("host or host@backend"), "zone": string("Zone."),
                            "status": string("enabled / disabled"), "state": string("up / down"),
                            "updated_at": string("Last heartbeat."),
                            "disabled_reason": nullable_string("Why disabled."),
                            "frozen": boolean("Volume services."),
                            "backend_state": string("3.49+, volume services.") }),
                    &["binary", "host", "status", "state"],
                )),
            ),
        ),
        (
            "ServiceUpdateRequest",
            object(
                json!({ "host": string("The service's host."),
                        "binary": string("Its binary (enable / disable)."),
                        "disabled_reason": string("disable-log-reason: 1-255 characters.") }),
                &["host"],
            ),
        ),
        (
            "PoolList",
            envelope(
                "pools",
                array(object(
                    json!({ "name": string("host@backend#pool"), "capabilities": r("AnyObject") }),
                    &["name"],
                )),
            ),
        ),
        (
            "ChainCreateRequest",
            envelope(
                "chain",
                object(
                    json!({ "name": string("Chain name."),
                            "filters": array(r("ChainStage")), "weighers": array(r("ChainStage")) }),
                    &["name"],
                ),
            ),
        ),
        (
            "ChainStage",
            object(
                json!({ "plugin": string("A builtin name or sha256:<hex>."),
                        "multiplier": json!({ "type": "number" }), "config": r("AnyObject"),
                        "limits": object(json!({
                            "call_deadline_ms": integer("Deadline of one call (1 to 60000)."),
                            "sync_deadline_ms": integer("Deadline of a pool sync (1 to 600000)."),
                            "memory_mib": integer("Linear memory cap (1 to 4096).") }), &[]),
                        "on_failure": json!({ "type": "string",
                                              "enum": ["fail_closed", "fail_open"] }) }),
                &["plugin"],
            ),
        ),
        (
            "DryRunRequest",
            json!({ "type": "object", "required": ["volume"],
                    "properties": {
                        "volume": object(json!({ "size": integer("GiB."),
                            "availability_zone": string("Zone."), "extra_specs": r("StringMap"),
                            "operation": string("create, extend, retype"),
                            "new_size": integer("Extend: the new size.") }), &[]),
                        "OS-SCH-HNT:scheduler_hints": r("AnyObject") } }),
        ),
        (
            "DriverSwapRequest",
            envelope(
                "driver",
                object(
                    json!({ "component": string("sha256:<hex> of an uploaded driver component."),
                            "manifest": string("The exec manifest (TOML)."),
                            "drain_timeout": integer("Seconds to wait for running operations.") }),
                    &["component"],
                ),
            ),
        ),
    ]
}
