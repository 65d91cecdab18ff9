//! The documented routes of generic volume groups: group types with their group specs
//! (`group_types.rs`), groups (`groups/`), group snapshots (`group_snapshots.rs`), and volume
//! type encryption (`encryption.rs`). One entry per route and method (see `routes_volumes.rs`).

use super::op::Op;

pub const OPS: &[Op] = &[
    // Group types (3.11).
    Op::get("/group_types", "List group types").ok(200, "GroupTypeList"),
    Op::post("/group_types", "Create a group type")
        .body("GroupTypeCreateRequest")
        .ok(200, "GroupTypeResponse"),
    Op::get("/group_types/{id}", "Show a group type (by id; `default`)")
        .ok(200, "GroupTypeResponse"),
    Op::put(
        "/group_types/{id}",
        "Update a group type's name, description or is_public",
    )
    .body("GroupTypeUpdateRequest")
    .ok(200, "GroupTypeResponse"),
    Op::delete("/group_types/{id}", "Delete a group type").empty(202),
    Op::get("/group_types/{id}/group_specs", "List a group type's specs").ok(200, "GroupSpecsBody"),
    Op::post("/group_types/{id}/group_specs", "Set group specs of a type")
        .body("GroupSpecsBody")
        .ok(200, "GroupSpecsBody"),
    Op::get("/group_types/{id}/group_specs/{key}", "Show one group spec").ok(200, "StringMap"),
    Op::put(
        "/group_types/{id}/group_specs/{key}",
        "Set one group spec (the URL's key only)",
    )
    .body("StringMap")
    .ok(200, "StringMap"),
    Op::delete(
        "/group_types/{id}/group_specs/{key}",
        "Delete one group spec",
    )
    .empty(202),
    // Groups (3.13).
    Op::get("/groups", "List groups (id, name)").ok(200, "GroupSummaryList"),
    Op::post(
        "/groups",
        "Create a group, placed on one backend that holds all its volume types",
    )
    .body("GroupCreateRequest")
    .ok(202, "GroupSummaryResponse"),
    Op::post(
        "/groups/action",
        "Create a group from a group snapshot or a source group (3.14)",
    )
    .body("GroupCreateFromSrcRequest")
    .ok(202, "GroupSummaryResponse"),
    Op::get("/groups/detail", "List groups with details").ok(200, "GroupList"),
    Op::get("/groups/{id}", "Show a group").ok(200, "GroupResponse"),
    Op::put(
        "/groups/{id}",
        "Update a group's name or description; add or remove volumes",
    )
    .body("GroupUpdateRequest")
    .empty(202),
    Op::post(
        "/groups/{id}/action",
        "Delete a group (with its volumes), or reset its status (3.20)",
    )
    .body("GroupAction")
    .empty(202),
    // Group snapshots (3.14).
    Op::get("/group_snapshots", "List group snapshots (id, name)")
        .ok(200, "GroupSnapshotSummaryList"),
    Op::post("/group_snapshots", "Snapshot every volume of a group")
        .body("GroupSnapshotCreateRequest")
        .ok(202, "GroupSnapshotSummaryResponse"),
    Op::get(
        "/group_snapshots/detail",
        "List group snapshots with details",
    )
    .ok(200, "GroupSnapshotList"),
    Op::get("/group_snapshots/{id}", "Show a group snapshot").ok(200, "GroupSnapshotResponse"),
    Op::delete(
        "/group_snapshots/{id}",
        "Delete a group snapshot and its snapshots",
    )
    .empty(202),
    Op::post(
        "/group_snapshots/{id}/action",
        "Reset a group snapshot's status (3.19)",
    )
    .body("GroupSnapshotAction")
    .empty(202),
    // Volume type encryption.
    Op::get(
        "/types/{id}/encryption",
        "Show a type's encryption (empty when none)",
    )
    .ok(200, "Encryption"),
    Op::post(
        "/types/{id}/encryption",
        "Make a type encrypted (refused while volumes of it exist)",
    )
    .body("EncryptionBody")
    .ok(200, "EncryptionBody"),
    Op::get(
        "/types/{id}/encryption/{key}",
        "Show one field of a type's encryption (`encryption_id`: all of it)",
    )
    .ok(200, "AnyObject"),
    Op::put(
        "/types/{id}/encryption/{key}",
        "Update a type's encryption (the URL's key is its encryption id)",
    )
    .body("EncryptionBody")
    .ok(200, "EncryptionBody"),
    Op::delete(
        "/types/{id}/encryption/{key}",
        "Remove a type's encryption (refused while volumes of it exist)",
    )
    .empty(202),
];
