//! The OpenAPI 3.1 document of Kiln's Cinder v3 API, served without a token at
//! `GET /openapi.json`. This module owns the document: the route tables (`routes_*.rs`, one
//! `op::Op` entry per route and method), the component schemas (`schemas*.rs`), the assembly
//! (`build.rs`: microversion gates from `microversion::GATES`, admin-only rules from
//! `policy.rs`, public routes from `auth::PUBLIC`), and the tests that keep it true: every
//! `.route(...)` declared under `host/src/api` is documented and every documented route is
//! declared (`route_scan.rs`), and the document is structurally valid (`validate.rs`).
//!
//! Documenting a new route is one entry in the table of its resource group, e.g.
//! `Op::get("/groups/{id}", "Show a group").ok(200, "GroupResponse")` plus its schemas.

mod build;
mod op;
mod routes_admin;
mod routes_catalog;
mod routes_groups;
mod routes_volumes;
mod schemas;
mod schemas_catalog;
mod schemas_groups;
mod schemas_volumes;

#[cfg(test)]
mod route_scan;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod validate;

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;

pub use build::document;

/// Where `v3_routes()` is nested (`router()` in `api/mod.rs`); the `route_scan` tests check
/// that these are exactly the prefixes the router nests at.
pub const PROJECT_PREFIX: &str = "/v3/{project_id}";
pub const PROJECTLESS_PREFIX: &str = "/v3";

/// `GET /openapi.json`: the document, built once per process.
pub async fn serve() -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let body = DOCUMENT.get_or_init(|| document().to_string());
    ([(header::CONTENT_TYPE, "application/json")], body.as_str())
}
