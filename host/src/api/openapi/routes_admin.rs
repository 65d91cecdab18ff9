//! The documented routes at the listener's root (version discovery, health, metrics, this
//! document) and of the operators' API: `os-services`, `os-hosts`, `capabilities`,
//! `scheduler-stats`, and Kiln's own `kiln-*` resources (scheduler plugins and chains, dry
//! runs, volume-driver hot swap). One entry per route and method (see `routes_volumes.rs`).

use super::op::{q, Op};

pub const OPS: &[Op] = &[
    // The root (`mod.rs` `router()`).
    Op::get("/", "Version discovery: every API version (300)")
        .root()
        .ok(300, "Versions"),
    Op::get("/v3", "The v3 version document")
        .root()
        .ok(200, "Versions"),
    Op::get("/v3/", "The v3 version document")
        .root()
        .ok(200, "Versions"),
    Op::get("/healthcheck", "Liveness: `OK`").root().text(),
    Op::get("/metrics", "Prometheus metrics").root().text(),
    Op::get("/openapi.json", "This OpenAPI 3.1 document")
        .root()
        .ok(200, "AnyObject"),
    // Services and hosts (`services.rs`, `hosts.rs`).
    Op::get("/os-services", "List services")
        .query(&[
            q(
                "host",
                "string",
                "Filter: host (`node` also matches `node@backend`).",
            ),
            q(
                "binary",
                "string",
                "Filter: binary (Cinder's or Kiln's name).",
            ),
        ])
        .ok(200, "ServiceList"),
    Op::put(
        "/os-services/{action}",
        "enable, disable, disable-log-reason, freeze or thaw a service",
    )
    .body("ServiceUpdateRequest")
    .ok(200, "AnyObject"),
    Op::get("/scheduler-stats/get_pools", "The scheduler's pools")
        .query(&[q("detail", "boolean", "Include each pool's capabilities.")])
        .ok(200, "PoolList"),
    Op::get("/os-hosts", "List hosts").ok(200, "AnyObject"),
    Op::get(
        "/os-hosts/{host}",
        "Volume usage of a host, in total and per project",
    )
    .ok(200, "AnyObject"),
    Op::get(
        "/capabilities/{host}",
        "Capabilities of a backend (`node@backend`)",
    )
    .ok(200, "AnyObject"),
    // Scheduler plugins and chains (`plugins.rs`).
    Op::get("/kiln-plugins", "List uploaded plugin components").ok(200, "AnyObject"),
    Op::post(
        "/kiln-plugins",
        "Upload and validate a WebAssembly component",
    )
    .query(&[
        q("name", "string", "The component's name (1-255 characters)."),
        q("kind", "string", "`filter`, `weigher` or `driver`."),
    ])
    .binary()
    .ok(201, "AnyObject"),
    Op::get("/kiln-chains", "List scheduler chain versions").ok(200, "AnyObject"),
    Op::post("/kiln-chains", "Validate and record a chain version")
        .body("ChainCreateRequest")
        .ok(201, "AnyObject"),
    Op::post(
        "/kiln-chains/rollback",
        "Activate the previously active chain",
    )
    .ok(200, "AnyObject"),
    Op::get(
        "/kiln-chains/shadow",
        "The shadow chain's comparison report",
    )
    .ok(200, "AnyObject"),
    Op::delete("/kiln-chains/shadow", "Stop shadow mode").empty(202),
    Op::post(
        "/kiln-chains/{version}/shadow",
        "Run a chain version in shadow mode",
    )
    .empty(202),
    Op::post(
        "/kiln-chains/{version}/activate",
        "Validate and activate a chain version",
    )
    .ok(200, "AnyObject"),
    Op::post(
        "/kiln-scheduler/dry-run",
        "Where would a volume go, and why",
    )
    .body("DryRunRequest")
    .ok(200, "AnyObject"),
    Op::get("/kiln-scheduler/pools", "The live chain's pool table").ok(200, "AnyObject"),
    // Volume-driver hot swap (`backend_drivers.rs`).
    Op::get(
        "/kiln-backends/{backend}/driver",
        "The driver a backend runs",
    )
    .ok(200, "AnyObject"),
    Op::post("/kiln-backends/{backend}/driver", "Swap a backend's driver")
        .body("DriverSwapRequest")
        .ok(200, "AnyObject"),
    Op::post(
        "/kiln-backends/{backend}/driver/rollback",
        "Roll a backend back to its previous driver",
    )
    .ok(200, "AnyObject"),
];
