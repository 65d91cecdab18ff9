//! Test support: structural checks of an OpenAPI 3.1 document — the required top-level
//! fields, every operation's shape (operationId unique, responses present, path parameters
//! exactly the template's and required), every `$ref` resolving inside the document, and
//! every component schema used somewhere.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

/// One problem, with the JSON pointer of where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct Invalid {
    pub at: String,
    pub problem: String,
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Every problem found; empty when the document is valid.
pub fn check(doc: &Value) -> Vec<Invalid> {
    let mut problems = Vec::new();
    let mut bad = |at: &str, problem: String| {
        problems.push(Invalid {
            at: at.to_string(),
            problem,
        })
    };
    if !doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1."))
    {
        bad("/openapi", "must be a 3.1.x version string".into());
    }
    for field in ["title", "version"] {
        if !doc["info"][field].is_string() {
            bad(&format!("/info/{field}"), "required string missing".into());
        }
    }
    let Some(paths) = doc["paths"].as_object() else {
        bad("/paths", "must be an object".into());
        return problems;
    };
    let mut operation_ids = HashSet::new();
    for (path, item) in paths {
        let at_path = format!("/paths/{}", escape(path));
        if !path.starts_with('/') {
            bad(&at_path, "path must start with /".into());
        }
        let template: BTreeSet<&str> = super::build::path_params(path).into_iter().collect();
        let Some(item) = item.as_object() else {
            bad(&at_path, "path item must be an object".into());
            continue;
        };
        for (method, op) in item {
            let at = format!("{at_path}/{method}");
            if !METHODS.contains(&method.as_str()) {
                bad(&at, format!("unknown method {method}"));
                continue;
            }
            match op["operationId"].as_str() {
                Some(id) if !operation_ids.insert(id.to_string()) => {
                    bad(&at, format!("duplicate operationId {id}"))
                }
                Some(_) => {}
                None => bad(&at, "operationId missing".into()),
            }
            if op["responses"].as_object().is_none_or(|r| r.is_empty()) {
                bad(&at, "responses missing or empty".into());
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let mut in_path = BTreeSet::new();
            let mut seen = HashSet::new();
            for p in &params {
                if p.get("$ref").is_some() {
                    continue;
                }
                let (Some(name), Some(location)) = (p["name"].as_str(), p["in"].as_str()) else {
                    bad(&at, format!("parameter without name / in: {p}"));
                    continue;
                };
                if !seen.insert((name, location)) {
                    bad(&at, format!("parameter {name} ({location}) twice"));
                }
                if p.get("schema").is_none() && p.get("content").is_none() {
                    bad(&at, format!("parameter {name} has no schema"));
                }
                if location == "path" {
                    in_path.insert(name);
                    if p["required"] != Value::Bool(true) {
                        bad(&at, format!("path parameter {name} must be required"));
                    }
                }
            }
            if in_path != template {
                bad(
                    &at,
                    format!("path parameters {in_path:?} differ from the template's {template:?}"),
                );
            }
            if let Some(body) = op.get("requestBody") {
                if body["content"].as_object().is_none_or(|c| c.is_empty()) {
                    bad(&at, "requestBody without content".into());
                }
            }
        }
    }
    let mut used = HashSet::new();
    refs(doc, "", &mut |at, target| {
        if !target.starts_with("#/") {
            bad(at, format!("$ref {target} is not local"));
        } else if doc.pointer(&target[1..]).is_none() {
            bad(at, format!("$ref {target} does not resolve"));
        }
        used.insert(target.to_string());
    });
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for name in schemas.keys() {
            if !used.contains(&format!("#/components/schemas/{name}")) {
                bad(
                    &format!("/components/schemas/{name}"),
                    "schema never used".into(),
                );
            }
        }
    }
    problems
}

/// Calls `f(pointer, target)` for every `$ref` in `v`.
fn refs(v: &Value, at: &str, f: &mut dyn FnMut(&str, &str)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let here = format!("{at}/{}", escape(k));
                match (k.as_str(), child) {
                    ("$ref", Value::String(target)) => f(&here, target),
                    _ => refs(child, &here, f),
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                refs(child, &format!("{at}/{i}"), f);
            }
        }
        _ => {}
    }
}
