//! Assembling the OpenAPI 3.1 document from the route tables: one operation per entry and
//! served path (project-scoped and project-less for `/v3` resources), with the path, query and
//! `OpenStack-API-Version` parameters, the microversion gate (`microversion::gate_of`, the
//! `GATES` table) as `x-openstack-microversion`, the admin-only rule (`policy::route_rule`) as
//! `x-openstack-policy`, public routes (`auth::PUBLIC`) without security, and Cinder's error
//! responses.

use serde_json::{json, Map, Value};

use super::op::{Body, Filters, Mount, Op, Reply, Verb};
use super::schemas::{self, r};
use crate::api::{auth, microversion, policy};

/// Every documented operation, in table order.
pub fn ops() -> impl Iterator<Item = &'static Op> {
    super::routes_volumes::OPS
        .iter()
        .chain(super::routes_catalog::OPS)
        .chain(super::routes_groups::OPS)
        .chain(super::routes_admin::OPS)
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in ops() {
        for (path, project_less) in op.served_paths() {
            let item = paths.entry(path.clone()).or_insert_with(|| json!({}));
            item[op.verb.key()] = operation(op, &path, project_less);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Kiln Block Storage API (OpenStack Cinder v3)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "Kiln's Cinder v3 REST API, microversions {} to {} (`OpenStack-API-Version: \
                 volume X.Y`). Every `/v3/{{project_id}}/...` resource is also served without \
                 the project (`/v3/...`, Cinder 3.67; Kiln serves that form at every \
                 microversion), acting in the token's project; those operations carry \
                 `x-openstack-project-less: true`. Gated resources carry \
                 `x-openstack-microversion`, admin-only operations `x-openstack-policy`. \
                 Generated from the route tables in host/src/api/openapi/.",
                microversion::MIN,
                microversion::MAX
            ),
        },
        "servers": [{ "url": "/" }],
        "security": [{ "token": [] }],
        "x-openstack-microversions": {
            "min": microversion::MIN.to_string(),
            "max": microversion::MAX.to_string(),
        },
        "paths": paths,
        "components": components(),
    })
}

fn components() -> Value {
    let error = |about: &str, schema: Value| json!({ "description": about, "content": { "application/json": { "schema": schema } } });
    json!({
        "securitySchemes": {
            "token": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Auth-Token",
                "description": "A Keystone token, or `USER:PROJECT` under noauth.",
            }
        },
        "parameters": {
            "OpenStackApiVersion": {
                "name": "OpenStack-API-Version",
                "in": "header",
                "required": false,
                "schema": { "type": "string", "examples": ["volume 3.71", "volume latest"] },
                "description": format!(
                    "`volume X.Y` ({} to {}, or `latest`); absent means {}. The legacy \
                     `OpenStack-Volume-microversion: X.Y` is accepted too.",
                    microversion::MIN, microversion::MAX, microversion::MIN
                ),
            }
        },
        "headers": {
            "OpenStackApiVersion": {
                "description": "The microversion the request was served at.",
                "schema": { "type": "string" },
            },
            "RequestId": {
                "description": "`req-<uuid>`, also in the logs.",
                "schema": { "type": "string" },
            }
        },
        "responses": {
            "BadRequest": error("Invalid input, malformed body or URL, or a malformed microversion.", r("BadRequestError")),
            "Unauthorized": error(
                "No valid token (keystonemiddleware's body under Keystone auth).",
                json!({ "oneOf": [r("KeystoneUnauthorized"), r("UnauthorizedError")] }),
            ),
            "Forbidden": error("Refused by policy.", r("ForbiddenError")),
            "NotFound": error(
                "Not found, or the resource is newer than the requested microversion.",
                r("NotFoundError"),
            ),
            "NotAcceptable": error("The requested microversion is not served.", r("ComputeFaultError")),
            "Conflict": error("Conflicting state or duplicate name.", r("ConflictError")),
            "OverLimit": error("Over quota.", r("OverLimitError")),
        },
        "schemas": schemas::all(),
    })
}

/// `get_v3_project_id_volumes_id`: unique per method and served path.
fn operation_id(verb: Verb, path: &str) -> String {
    let mut id = verb.key().to_string();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(
            segment
                .chars()
                .filter(|c| !matches!(c, '{' | '}'))
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    if path.len() > 1 && path.ends_with('/') {
        id.push_str("_slash");
    }
    id
}

/// The names of the `{param}`s of a path template, in order.
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn param(name: &str, location: &str, kind: &str, about: &str, required: bool) -> Value {
    json!({
        "name": name,
        "in": location,
        "required": required,
        "schema": { "type": kind },
        "description": about,
    })
}

fn path_about(name: &str) -> &'static str {
    match name {
        "project_id" => "The project: the token's own (admins: any).",
        "id" => "The resource's id.",
        "key" => "The metadata / extra-spec key.",
        _ => "Path parameter.",
    }
}

/// Cinder's listing parameters (`listing.rs`) and the resource's equality filters.
fn listing_params(filters: Filters) -> Vec<Value> {
    let mut out = vec![
        json!({ "name": "limit", "in": "query", "required": false,
                "schema": { "type": "integer", "minimum": 0 }, "description": "Page size." }),
        param(
            "marker",
            "query",
            "string",
            "Start after this id (404 when unknown).",
            false,
        ),
        json!({ "name": "offset", "in": "query", "required": false,
                "schema": { "type": "integer", "minimum": 0 }, "description": "Skip this many." }),
        param(
            "sort",
            "query",
            "string",
            "`key[:asc|desc],...` over the resource's whitelisted keys.",
            false,
        ),
        param("sort_key", "query", "string", "Legacy sort key.", false),
        json!({ "name": "sort_dir", "in": "query", "required": false,
                "schema": { "enum": ["asc", "desc"] }, "description": "Legacy sort direction." }),
        param(
            "all_tenants",
            "query",
            "string",
            "Admins: every project (`1`, `true`).",
            false,
        ),
        param(
            "project_id",
            "query",
            "string",
            "With all_tenants: narrow to one project.",
            false,
        ),
        param(
            "metadata",
            "query",
            "string",
            "`{'k': 'v'}` (Python literal or JSON): metadata filter.",
            false,
        ),
    ];
    for (name, _, boolean) in filters {
        if out.iter().any(|p| p["name"] == *name) {
            continue;
        }
        let kind = if *boolean { "boolean" } else { "string" };
        out.push(param(name, "query", kind, "Equality filter.", false));
    }
    out
}

fn success(op: &Op, status: u16, reply: Reply) -> (String, Value) {
    let mut response = json!({ "description": op.summary });
    match reply {
        Reply::Json(schema) => {
            response["content"] = json!({ "application/json": { "schema": r(schema) } });
        }
        Reply::Text => {
            response["content"] = json!({ "text/plain": { "schema": { "type": "string" } } });
        }
        Reply::Empty => {}
    }
    if op.mount == Mount::V3 {
        response["headers"] = json!({
            "OpenStack-API-Version": { "$ref": "#/components/headers/OpenStackApiVersion" },
            "x-openstack-request-id": { "$ref": "#/components/headers/RequestId" },
        });
    }
    (status.to_string(), response)
}

fn operation(op: &Op, path: &str, project_less: bool) -> Value {
    let mut notes: Vec<String> = Vec::new();
    let mut o = json!({
        "operationId": operation_id(op.verb, path),
        "summary": op.summary,
        "tags": [tag(op)],
    });

    let mut parameters: Vec<Value> = path_params(path)
        .into_iter()
        .map(|name| param(name, "path", "string", path_about(name), true))
        .collect();
    if let Some(filters) = op.listing {
        parameters.extend(listing_params(filters));
    }
    for query in op.query {
        parameters.push(param(query.name, "query", query.kind, query.about, false));
    }
    if op.mount == Mount::V3 {
        parameters.push(json!({ "$ref": "#/components/parameters/OpenStackApiVersion" }));
    }
    o["parameters"] = Value::Array(parameters);

    match op.body {
        Body::None => {}
        Body::Json(schema) => {
            o["requestBody"] = json!({ "required": true,
                "content": { "application/json": { "schema": r(schema) } } });
        }
        Body::Binary => {
            o["requestBody"] = json!({ "required": true, "content": {
                "application/wasm": { "schema": { "type": "string", "contentMediaType": "application/wasm" } },
                "application/octet-stream": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } },
            } });
        }
    }

    let mut responses = Map::new();
    let (status, response) = success(op, op.status, op.reply);
    responses.insert(status, response);
    if let Some((status, schema)) = op.also {
        let (status, response) = success(op, status, Reply::Json(schema));
        responses.insert(status, response);
    }
    if op.mount == Mount::V3 {
        let mut errors = vec![
            ("400", "BadRequest"),
            ("401", "Unauthorized"),
            ("403", "Forbidden"),
            ("404", "NotFound"),
            ("406", "NotAcceptable"),
        ];
        if op.verb != Verb::Get {
            errors.extend([("409", "Conflict"), ("413", "OverLimit")]);
        }
        for (status, name) in errors {
            responses.insert(
                status.into(),
                json!({ "$ref": format!("#/components/responses/{name}") }),
            );
        }
    }
    o["responses"] = Value::Object(responses);

    if let Some(minor) = microversion::gate_of(path) {
        o["x-openstack-microversion"] = json!({
            "min": format!("{}.{minor}", microversion::MIN.major),
            "max": microversion::MAX.to_string(),
        });
        notes.push(format!(
            "Microversion {}.{minor} or later (older versions answer 404).",
            microversion::MIN.major
        ));
    }
    if op.mount == Mount::V3 {
        if let Some(rule) = policy::route_rule(&op.verb.method(), op.path) {
            o["x-openstack-policy"] = json!(rule);
            o["x-openstack-admin-only"] = json!(true);
            notes.push(format!("Admin only (`{rule}`)."));
        }
    }
    if project_less {
        o["x-openstack-project-less"] = json!(true);
        notes.push("Project-less form (Cinder 3.67): acts in the token's project.".into());
    }
    if auth::PUBLIC.contains(&path) {
        o["security"] = json!([]);
        notes.push("No token needed.".into());
    }
    if !notes.is_empty() {
        o["description"] = json!(notes.join(" "));
    }
    o
}

/// The tag of an operation: its resource (first path segment), `versions` for discovery.
fn tag(op: &Op) -> String {
    match (op.mount, op.path.split('/').find(|s| !s.is_empty())) {
        (Mount::Root, None | Some("v3")) => "versions".into(),
        (_, Some(first)) => first.to_string(),
        (Mount::V3, None) => "v3".into(),
    }
}
