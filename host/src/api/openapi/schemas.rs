//! The component schemas of the document: the shared ones here (links, metadata, the Cinder
//! error bodies, version documents, the generic object) and the JSON Schema helpers the
//! resource files use; the resources' bodies and views in `schemas_volumes.rs` and
//! `schemas_catalog.rs`. Action bodies are a `oneOf` keyed by the action name, each marked
//! with its admin-only rule from `policy.rs`.

use serde_json::{json, Map, Value};

use crate::api::policy;

/// Every component schema, by name.
pub fn all() -> Map<String, Value> {
    let mut out = Map::new();
    for (name, schema) in common()
        .into_iter()
        .chain(super::schemas_volumes::schemas())
        .chain(super::schemas_catalog::schemas())
        .chain(super::schemas_groups::schemas())
    {
        let previous = out.insert(name.to_string(), schema);
        assert!(previous.is_none(), "schema {name} is defined twice");
    }
    out
}

/// `#/components/schemas/<name>`.
pub fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

pub fn string(about: &str) -> Value {
    json!({ "type": "string", "description": about })
}

pub fn nullable_string(about: &str) -> Value {
    json!({ "type": ["string", "null"], "description": about })
}

pub fn integer(about: &str) -> Value {
    json!({ "type": "integer", "description": about })
}

pub fn boolean(about: &str) -> Value {
    json!({ "type": "boolean", "description": about })
}

/// A boolean Cinder also takes as a string (`"true"`, `"False"`, ...).
pub fn loose_bool(about: &str) -> Value {
    json!({ "type": ["boolean", "string"], "description": about })
}

/// An object with these properties, `required` of them required.
pub fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required })
}

/// `{"<key>": <schema>}` with the key required: Cinder's envelopes.
pub fn envelope(key: &str, schema: Value) -> Value {
    let mut properties = Map::new();
    properties.insert(key.to_string(), schema);
    object(Value::Object(properties), &[key])
}

pub fn array(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

/// The body of `POST /<collection>/{id}/action`: one of the actions, each an object whose
/// only key is the action's name. Admin-only actions (`policy::admin_actions`) carry their
/// rule in `x-openstack-policy`.
pub fn action_union(collection: &str, actions: Vec<(&'static str, Value)>) -> Value {
    let admin: Vec<_> = policy::admin_actions(collection).collect();
    let variants: Vec<Value> = actions
        .into_iter()
        .map(|(name, args)| {
            let mut variant = envelope(name, args);
            variant["title"] = json!(name);
            variant["additionalProperties"] = json!(false);
            if let Some((_, rule)) = admin.iter().find(|(a, _)| *a == name) {
                variant["description"] = json!(format!("Admin only ({rule})."));
                variant["x-openstack-policy"] = json!(rule);
            }
            variant
        })
        .collect();
    json!({ "oneOf": variants })
}

/// The Cinder fault inside an error body.
fn fault() -> Value {
    object(
        json!({
            "code": integer("The HTTP status."),
            "message": string("What went wrong."),
        }),
        &["code", "message"],
    )
}

/// The error bodies by the key Cinder uses (`error.rs`): `(schema name, key)`.
pub const ERRORS: &[(&str, &str)] = &[
    ("BadRequestError", "badRequest"),
    ("UnauthorizedError", "unauthorized"),
    ("ForbiddenError", "forbidden"),
    ("NotFoundError", "itemNotFound"),
    ("ConflictError", "conflictingRequest"),
    ("OverLimitError", "overLimit"),
    ("ComputeFaultError", "computeFault"),
];

fn common() -> Vec<(&'static str, Value)> {
    let mut out = vec![
        (
            "AnyObject",
            json!({ "type": "object", "description": "A JSON object (not described further)." }),
        ),
        (
            "StringMap",
            json!({ "type": "object", "additionalProperties": { "type": "string" } }),
        ),
        ("Fault", fault()),
        (
            "Link",
            object(
                json!({ "rel": string("self, bookmark, next"), "href": string("URL") }),
                &["rel", "href"],
            ),
        ),
        (
            "Metadata",
            json!({
                "type": "object",
                "additionalProperties": { "type": "string", "maxLength": 255 },
                "description": "Key / value strings (each at most 255 characters).",
            }),
        ),
        ("MetadataBody", envelope("metadata", r("Metadata"))),
        (
            "MetaItem",
            envelope(
                "meta",
                json!({ "type": "object", "additionalProperties": { "type": "string" },
                        "minProperties": 1, "maxProperties": 1 }),
            ),
        ),
        (
            "Version",
            object(
                json!({
                    "id": string("v3.0"),
                    "status": string("CURRENT"),
                    "version": string("The newest microversion (3.71)."),
                    "min_version": string("The oldest microversion (3.0)."),
                    "updated": string("Date of the newest microversion."),
                    "links": array(r("Link")),
                    "media-types": array(r("AnyObject")),
                }),
                &["id", "status", "version", "min_version"],
            ),
        ),
        ("Versions", envelope("versions", array(r("Version")))),
    ];
    for (name, key) in ERRORS {
        let mut schema = envelope(key, r("Fault"));
        schema["description"] = json!(format!("Cinder error body `{{\"{key}\": ...}}`."));
        out.push((name, schema));
    }
    // keystonemiddleware's 401 (Keystone auth) or the noauth middleware's.
    out.push((
        "KeystoneUnauthorized",
        envelope(
            "error",
            object(
                json!({ "code": integer("401"), "title": string("Unauthorized"),
                        "message": string("The request you have made requires authentication.") }),
                &["code", "message"],
            ),
        ),
    ));
    out
}
