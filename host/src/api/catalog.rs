//! The catalog part of the v3 API, mounted by `v3_routes()` with one `.merge`: volume types
//! (`types.rs`), their encryption (`encryption.rs`) and per-project defaults
//! (`default_types.rs`), QoS specs (`qos.rs`), quotas and quota classes (`quotas.rs`), limits
//! (`limits.rs`), availability zones (`zones.rs`), extensions (`extensions.rs`) and user
//! messages (`messages.rs`). Also the small helpers those handlers share: Cinder-style
//! JSON body errors, path parameters that work with and without `{project_id}`, admin
//! checks and strict boolean parsing.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::Router;

use super::context::Ctx;
use super::error::ApiError;
use super::{
    default_types, encryption, extensions, limits, messages, qos, quotas, types, zones, AppState,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(types::routes())
        .merge(default_types::routes())
        .merge(encryption::routes())
        .merge(qos::routes())
        .merge(quotas::routes())
        .merge(limits::routes())
        .merge(zones::routes())
        .merge(extensions::routes())
        .merge(messages::routes())
}

/// Path parameters by name (the nested `{project_id}` may or may not be there).
pub type Params = HashMap<String, String>;

pub fn param<'a>(p: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    p.get(name)
        .map(String::as_str)
        .ok_or_else(|| ApiError::NotFound("The resource could not be found.".into()))
}

/// 403 unless the caller is an admin (the rules themselves are in `policy.rs`).
pub fn require_admin(ctx: &Ctx) -> Result<(), ApiError> {
    super::policy::authorize_admin(&ctx.0, "this operation")
}

/// The caller's project.
pub fn project(ctx: &Ctx) -> &str {
    ctx.0.project_id.as_deref().unwrap_or_default()
}

/// A JSON object body; anything else is Cinder's 400.
pub fn json_body(body: &Bytes) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::BadRequest(
            "The request body must be a JSON object.".into(),
        )),
        Err(e) => Err(ApiError::BadRequest(format!("Malformed request body: {e}"))),
    }
}

/// `body[key]` as an object, or 400 naming the missing key (Cinder's `is_valid_body`).
pub fn member(
    mut body: serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match body.remove(key) {
        Some(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(ApiError::BadRequest(format!(
            "Missing required element '{key}' in request body."
        ))),
    }
}

/// oslo's strict `bool_from_string`: true/false, yes/no, on/off, 1/0, t/f, y/n.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// A JSON boolean, or a string `parse_bool` accepts.
pub fn json_bool(v: &serde_json::Value, what: &str) -> Result<bool, ApiError> {
    match v {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::String(s) => parse_bool(s),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::BadRequest(format!(
            "Invalid value '{v}' for {what}: must be a boolean."
        ))
    })
}

/// Validate a name the way Cinder's schema does: a string of 1 to 255 characters that is
/// not only whitespace and has none at either end.
pub fn valid_name(v: Option<&serde_json::Value>, what: &str) -> Result<String, ApiError> {
    let s = match v {
        Some(serde_json::Value::String(s)) => s,
        None | Some(serde_json::Value::Null) => {
            return Err(ApiError::BadRequest(format!(
                "{what} is a required property."
            )))
        }
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "Invalid {what} {other}: must be a string."
            )))
        }
    };
    if s.trim().is_empty() || s.trim() != s || s.chars().count() > 255 {
        return Err(ApiError::BadRequest(format!(
            "Invalid {what} '{s}': it must be 1 to 255 characters, not blank, without leading or trailing whitespace."
        )));
    }
    Ok(s.clone())
}

/// An optional description: a string of at most 255 characters (or null).
pub fn valid_description(v: Option<&serde_json::Value>) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.chars().count() <= 255 => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::BadRequest(format!(
            "Invalid description {other}: it must be a string of at most 255 characters."
        ))),
    }
}

/// Spec values: strings (numbers and booleans are taken as their text, as the clients
/// send `--property k=v` strings anyway); keys 1 to 255 characters, values at most 255.
pub fn string_map(
    m: &serde_json::Map<String, serde_json::Value>,
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    m.iter()
        .map(|(k, v)| {
            if k.is_empty() || k.chars().count() > 255 {
                return Err(ApiError::BadRequest(format!(
                    "Invalid key '{k}': it must be 1 to 255 characters."
                )));
            }
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "Invalid value {other} for key '{k}': it must be a string."
                    )))
                }
            };
            if v.chars().count() > 255 {
                return Err(ApiError::BadRequest(format!(
                    "Invalid value for key '{k}': at most 255 characters."
                )));
            }
            Ok((k.clone(), v))
        })
        .collect()
}

/// `http://HOST` of the request, for links.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8776");
    format!("http://{host}")
}

/// Cinder's `self` and `bookmark` links of a member.
pub fn links(headers: &HeaderMap, project: &str, collection: &str, id: &str) -> serde_json::Value {
    let base = base_url(headers);
    serde_json::json!([
        {"rel": "self", "href": format!("{base}/v3/{project}/{collection}/{id}")},
        {"rel": "bookmark", "href": format!("{base}/{project}/{collection}/{id}")},
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_maps_are_validated_like_cinder() {
        let j = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(valid_name(Some(&j("\"gold\"")), "name").unwrap(), "gold");
        for bad in ["\"\"", "\"  \"", "\" x\"", "1", "null"] {
            assert!(valid_name(Some(&j(bad)), "name").is_err(), "{bad}");
        }
        assert!(valid_name(Some(&serde_json::Value::String("a".repeat(256))), "name").is_err());
        assert!(valid_name(None, "name").is_err());
        let m = j(r#"{"a": "1", "b": 2, "c": true}"#);
        let got = string_map(m.as_object().unwrap()).unwrap();
        assert_eq!(got["b"], "2");
        assert_eq!(got["c"], "True");
        assert!(string_map(j(r#"{"a": {"x": 1}}"#).as_object().unwrap()).is_err());
        assert!(string_map(j(r#"{"": "x"}"#).as_object().unwrap()).is_err());
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("maybe"), None);
        assert!(json_body(&Bytes::from_static(b"{nope")).is_err());
        assert!(json_body(&Bytes::from_static(b"[1]")).is_err());
    }
}
