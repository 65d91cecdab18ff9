//! The documented routes of the volume resources: volumes, their actions and metadata,
//! snapshots, attachments (3.27) and transfers. One entry per route and method; the
//! `route_scan` test fails when a `.route(...)` declaration has no entry here or in the other
//! `routes_*.rs` tables, or an entry names a route that is no longer declared.

use super::op::{q, Op, Query};
use crate::api::{snapshots, volumes};

const CASCADE: &[Query] = &[q(
    "cascade",
    "boolean",
    "Delete the volume's available / error snapshots first.",
)];

pub const OPS: &[Op] = &[
    // Volumes (`volumes/`).
    Op::get("/volumes", "List volumes (id, name, links)")
        .listing(volumes::FILTERS)
        .ok(200, "VolumeSummaryList"),
    Op::post(
        "/volumes",
        "Create a volume (raw, from a snapshot, or a clone)",
    )
    .body("VolumeCreateRequest")
    .ok(202, "VolumeResponse"),
    Op::get("/volumes/detail", "List volumes with details")
        .listing(volumes::FILTERS)
        .ok(200, "VolumeDetailList"),
    Op::get(
        "/volumes/summary",
        "Count, total size and metadata of the listed volumes",
    )
    .listing(volumes::FILTERS)
    .ok(200, "VolumeSummaryReport"),
    Op::get("/volumes/{id}", "Show a volume").ok(200, "VolumeResponse"),
    Op::put(
        "/volumes/{id}",
        "Update a volume's name, description or metadata",
    )
    .body("VolumeUpdateRequest")
    .ok(200, "VolumeResponse"),
    Op::delete("/volumes/{id}", "Delete a volume")
        .query(CASCADE)
        .empty(202),
    Op::post(
        "/volumes/{id}/action",
        "Run a volume action (the body's only key names it)",
    )
    .body("VolumeAction")
    .empty(202)
    .also(200, "VolumeActionResult"),
    // Volume and snapshot metadata (`metadata.rs`).
    Op::get("/volumes/{id}/metadata", "Show a volume's metadata").ok(200, "MetadataBody"),
    Op::post(
        "/volumes/{id}/metadata",
        "Merge keys into a volume's metadata",
    )
    .body("MetadataBody")
    .ok(200, "MetadataBody"),
    Op::put("/volumes/{id}/metadata", "Replace a volume's metadata")
        .body("MetadataBody")
        .ok(200, "MetadataBody"),
    Op::get("/volumes/{id}/metadata/{key}", "Show one metadata key").ok(200, "MetaItem"),
    Op::put("/volumes/{id}/metadata/{key}", "Set one metadata key")
        .body("MetaItem")
        .ok(200, "MetaItem"),
    Op::delete("/volumes/{id}/metadata/{key}", "Delete one metadata key").empty(200),
    Op::get("/snapshots/{id}/metadata", "Show a snapshot's metadata").ok(200, "MetadataBody"),
    Op::post(
        "/snapshots/{id}/metadata",
        "Merge keys into a snapshot's metadata",
    )
    .body("MetadataBody")
    .ok(200, "MetadataBody"),
    Op::put("/snapshots/{id}/metadata", "Replace a snapshot's metadata")
        .body("MetadataBody")
        .ok(200, "MetadataBody"),
    Op::get("/snapshots/{id}/metadata/{key}", "Show one metadata key").ok(200, "MetaItem"),
    Op::put("/snapshots/{id}/metadata/{key}", "Set one metadata key")
        .body("MetaItem")
        .ok(200, "MetaItem"),
    Op::delete("/snapshots/{id}/metadata/{key}", "Delete one metadata key").empty(200),
    // Snapshots (`snapshots.rs`).
    Op::get("/snapshots", "List snapshots")
        .listing(snapshots::FILTERS)
        .ok(200, "SnapshotList"),
    Op::post("/snapshots", "Create a snapshot of a volume")
        .body("SnapshotCreateRequest")
        .ok(202, "SnapshotResponse"),
    Op::get("/snapshots/detail", "List snapshots with details")
        .listing(snapshots::FILTERS)
        .ok(200, "SnapshotList"),
    Op::get("/snapshots/{id}", "Show a snapshot").ok(200, "SnapshotResponse"),
    Op::put("/snapshots/{id}", "Update a snapshot's name or description")
        .body("SnapshotUpdateRequest")
        .ok(200, "SnapshotResponse"),
    Op::delete("/snapshots/{id}", "Delete a snapshot").empty(202),
    Op::post("/snapshots/{id}/action", "Run a snapshot action")
        .body("SnapshotAction")
        .empty(202),
    // Attachments (`attachments/`, 3.27).
    Op::get("/attachments", "List attachments").ok(200, "AttachmentList"),
    Op::post(
        "/attachments",
        "Create an attachment (reserve, or connect with a connector)",
    )
    .body("AttachmentCreateRequest")
    .ok(200, "AttachmentResponse"),
    Op::get("/attachments/detail", "List attachments with details").ok(200, "AttachmentList"),
    Op::get("/attachments/{id}", "Show an attachment").ok(200, "AttachmentResponse"),
    Op::put(
        "/attachments/{id}",
        "Connect an attachment (export, connection info)",
    )
    .body("AttachmentUpdateRequest")
    .ok(200, "AttachmentResponse"),
    Op::delete(
        "/attachments/{id}",
        "Delete an attachment; answers the ones left",
    )
    .ok(200, "AttachmentList"),
    Op::post(
        "/attachments/{id}/action",
        "Complete an attachment (3.44 os-complete)",
    )
    .body("AttachmentAction")
    .empty(204),
    // Transfers (`transfers.rs`): the legacy and the 3.55 paths, same handlers.
    Op::get("/os-volume-transfer", "List transfers").ok(200, "TransferList"),
    Op::post("/os-volume-transfer", "Offer a volume for transfer")
        .body("TransferCreateRequest")
        .ok(202, "TransferResponse"),
    Op::get("/os-volume-transfer/detail", "List transfers with details").ok(200, "TransferList"),
    Op::get("/os-volume-transfer/{id}", "Show a transfer").ok(200, "TransferResponse"),
    Op::delete("/os-volume-transfer/{id}", "Cancel a transfer").empty(202),
    Op::post("/os-volume-transfer/{id}/accept", "Accept a transfer")
        .body("TransferAcceptRequest")
        .ok(202, "TransferResponse"),
    Op::get("/volume-transfers", "List transfers").ok(200, "TransferList"),
    Op::post("/volume-transfers", "Offer a volume for transfer")
        .body("TransferCreateRequest")
        .ok(202, "TransferResponse"),
    Op::get("/volume-transfers/detail", "List transfers with details").ok(200, "TransferList"),
    Op::get("/volume-transfers/{id}", "Show a transfer").ok(200, "TransferResponse"),
    Op::delete("/volume-transfers/{id}", "Cancel a transfer").empty(202),
    Op::post("/volume-transfers/{id}/accept", "Accept a transfer")
        .body("TransferAcceptRequest")
        .ok(202, "TransferResponse"),
];
