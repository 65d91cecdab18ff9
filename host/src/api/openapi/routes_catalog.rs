//! The documented routes of the catalog (`catalog.rs`): volume types with extra specs and
//! access, per-project default types, QoS specs, quota sets and classes, limits,
//! availability zones, extensions and user messages. One entry per route and method (see
//! `routes_volumes.rs`).

use super::op::{q, Op, Query};

const VOL_TYPE_ID: &[Query] = &[q("vol_type_id", "string", "The volume type's id.")];

pub const OPS: &[Op] = &[
    // Volume types (`types.rs`).
    Op::get("/types", "List volume types")
        .query(&[q(
            "is_public",
            "string",
            "Admins: `true` (default) public + granted, `false` private only, `None` all.",
        )])
        .ok(200, "VolumeTypeList"),
    Op::post("/types", "Create a volume type")
        .body("VolumeTypeCreateRequest")
        .ok(200, "VolumeTypeResponse"),
    Op::get(
        "/types/{id}",
        "Show a volume type (by id or name; `default`)",
    )
    .ok(200, "VolumeTypeResponse"),
    Op::put(
        "/types/{id}",
        "Update a volume type's name, description or is_public",
    )
    .body("VolumeTypeUpdateRequest")
    .ok(200, "VolumeTypeResponse"),
    Op::delete("/types/{id}", "Delete a volume type").empty(202),
    Op::get("/types/{id}/extra_specs", "List a type's extra specs").ok(200, "ExtraSpecsBody"),
    Op::post("/types/{id}/extra_specs", "Set extra specs of a type")
        .body("ExtraSpecsBody")
        .ok(200, "ExtraSpecsBody"),
    Op::get("/types/{id}/extra_specs/{key}", "Show one extra spec").ok(200, "StringMap"),
    Op::put(
        "/types/{id}/extra_specs/{key}",
        "Set one extra spec (the URL's key only)",
    )
    .body("StringMap")
    .ok(200, "StringMap"),
    Op::delete("/types/{id}/extra_specs/{key}", "Delete one extra spec").empty(202),
    // Per-project default types (`default_types.rs`, 3.62, admin).
    Op::get("/default-types", "List every project's default volume type")
        .ok(200, "DefaultTypeList"),
    Op::get(
        "/default-types/{target}",
        "Show a project's default volume type",
    )
    .ok(200, "DefaultTypeResponse"),
    Op::put(
        "/default-types/{target}",
        "Set or replace a project's default volume type",
    )
    .body("DefaultTypeSetRequest")
    .ok(200, "DefaultTypeResponse"),
    Op::delete(
        "/default-types/{target}",
        "Unset a project's default volume type",
    )
    .empty(204),
    Op::get(
        "/types/{id}/os-volume-type-access",
        "List the projects granted a private type",
    )
    .ok(200, "VolumeTypeAccessList"),
    Op::post(
        "/types/{id}/action",
        "Grant or revoke a project's access to a private type",
    )
    .body("VolumeTypeAction")
    .empty(202),
    // QoS specs (`qos.rs`).
    Op::get("/qos-specs", "List QoS specs").ok(200, "QosSpecsList"),
    Op::post("/qos-specs", "Create QoS specs")
        .body("QosSpecsCreateRequest")
        .ok(200, "QosSpecsResponse"),
    Op::get("/qos-specs/{id}", "Show QoS specs").ok(200, "QosSpecsResponse"),
    Op::put(
        "/qos-specs/{id}",
        "Set keys of QoS specs (`consumer` changes the consumer)",
    )
    .body("QosSpecsUpdateRequest")
    .ok(200, "QosSpecsUpdateRequest"),
    Op::delete("/qos-specs/{id}", "Delete QoS specs")
        .query(&[q(
            "force",
            "boolean",
            "Disassociate the specs from their types first.",
        )])
        .empty(202),
    Op::put("/qos-specs/{id}/delete_keys", "Delete keys of QoS specs")
        .body("QosDeleteKeysRequest")
        .empty(202),
    Op::get(
        "/qos-specs/{id}/associations",
        "List the types associated with QoS specs",
    )
    .ok(200, "QosAssociations"),
    Op::get(
        "/qos-specs/{id}/associate",
        "Associate QoS specs with a volume type",
    )
    .query(VOL_TYPE_ID)
    .empty(202),
    Op::get(
        "/qos-specs/{id}/disassociate",
        "Disassociate QoS specs from a volume type",
    )
    .query(VOL_TYPE_ID)
    .empty(202),
    Op::get(
        "/qos-specs/{id}/disassociate_all",
        "Disassociate QoS specs from every type",
    )
    .empty(202),
    // Quotas (`quotas.rs`).
    Op::get("/os-quota-sets/{target}", "Show a project's quotas")
        .query(&[q(
            "usage",
            "boolean",
            "Answer {limit, in_use, reserved} per resource.",
        )])
        .ok(200, "QuotaSetResponse"),
    Op::put("/os-quota-sets/{target}", "Update a project's quotas")
        .body("QuotaSetUpdateRequest")
        .ok(200, "QuotaSetResponse"),
    Op::delete(
        "/os-quota-sets/{target}",
        "Reset a project's quotas to the defaults",
    )
    .empty(200),
    Op::get(
        "/os-quota-sets/{target}/defaults",
        "Show the default quotas",
    )
    .ok(200, "QuotaSetResponse"),
    Op::get("/os-quota-class-sets/{class}", "Show a quota class").ok(200, "QuotaClassSetResponse"),
    Op::put("/os-quota-class-sets/{class}", "Update a quota class")
        .body("QuotaClassSetUpdateRequest")
        .ok(200, "QuotaClassSetResponse"),
    // Limits, zones, extensions, messages.
    Op::get(
        "/limits",
        "Absolute limits and usage of the caller's project",
    )
    .query(&[q(
        "project_id",
        "string",
        "Admins (3.39): another project's limits.",
    )])
    .ok(200, "Limits"),
    Op::get("/os-availability-zone", "List availability zones").ok(200, "AvailabilityZones"),
    Op::get("/extensions", "List Cinder's legacy extensions").ok(200, "Extensions"),
    Op::get("/messages", "List user messages (newest first)")
        .query(&[
            q("limit", "integer", "At most this many messages."),
            q("marker", "string", "Start after the message with this id."),
            q("event_id", "string", "Filter: event id."),
            q(
                "resource_type",
                "string",
                "Filter: resource type (VOLUME, ...).",
            ),
            q("resource_uuid", "string", "Filter: the resource's id."),
            q("message_level", "string", "Filter: ERROR, ..."),
            q(
                "request_id",
                "string",
                "Filter: the request that caused it.",
            ),
        ])
        .ok(200, "MessageList"),
    Op::get("/messages/{id}", "Show a user message").ok(200, "MessageResponse"),
    Op::delete("/messages/{id}", "Delete a user message").empty(204),
];
