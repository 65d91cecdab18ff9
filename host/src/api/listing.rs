//! The listing query parameters every collection shares — `limit`, `marker`, `offset`,
//! `sort` (or `sort_key` / `sort_dir`), `all_tenants`, metadata filters — parsed into a
//! [`ListQuery`], and the `*_links` "next" link of a full page.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::ApiError;
use crate::db::listing::{parse_sort, FilterValue, ListQuery};
use crate::rpc::RequestContext;

/// The most items one page holds, asked for or not (Cinder's `osapi_max_limit` default): a
/// longer collection is paged with a next link.
pub const MAX_LIMIT: i64 = 1000;

/// A collection's raw query string parameters.
pub type Params = BTreeMap<String, String>;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(format!("Invalid input received: {}", msg.into()))
}

/// Cinder's boolean spellings.
pub fn truthy(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on" | "y" | "t" | ""
    )
}

/// `all_tenants` is honoured for admins only (others see their project, as Cinder).
pub fn all_tenants(ctx: &RequestContext, p: &Params) -> bool {
    ctx.is_admin && p.get("all_tenants").is_some_and(|v| truthy(v))
}

fn non_negative(p: &Params, key: &str) -> Result<Option<i64>, ApiError> {
    match p.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| bad(format!("{key} must be a non-negative integer, got '{v}'"))),
    }
}

/// Metadata filter as clients send it: `metadata={'k': 'v'}` (Python literal, as
/// cinderclient does) or JSON.
fn metadata_filter(v: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let json = v.replace('\'', "\"");
    let parsed: BTreeMap<String, Value> = serde_json::from_str(&json)
        .map_err(|_| bad(format!("metadata filter must be a dict, got '{v}'")))?;
    Ok(parsed
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}

/// The paging, sorting, tenancy and metadata parts of a listing. `filters` names the
/// equality filters the collection accepts: `(parameter, column, boolean?)`.
pub fn query(
    ctx: &RequestContext,
    project: &str,
    p: &Params,
    filters: &[(&str, &'static str, bool)],
) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery {
        project_id: if all_tenants(ctx, p) {
            p.get("project_id").cloned()
        } else {
            Some(project.to_string())
        },
        limit: Some(non_negative(p, "limit")?.map_or(MAX_LIMIT, |l| l.min(MAX_LIMIT))),
        offset: non_negative(p, "offset")?,
        marker: p.get("marker").cloned(),
        sort: parse_sort(
            p.get("sort").map(String::as_str),
            p.get("sort_key").map(String::as_str),
            p.get("sort_dir").map(String::as_str),
        )
        .map_err(|e| ApiError::BadRequest(e.to_string()))?,
        ..Default::default()
    };
    if let Some(m) = p.get("metadata") {
        q.metadata = metadata_filter(m)?;
    }
    for (param, column, boolean) in filters {
        if let Some(v) = p.get(*param) {
            let value = if *boolean {
                FilterValue::Bool(truthy(v))
            } else {
                FilterValue::Text(v.clone())
            };
            q.filters.push((column, value));
        }
    }
    Ok(q)
}

/// `[{"rel": "next", ...}]` when the page is full (more rows may follow) — `limit` items, or
/// [`MAX_LIMIT`] without one: the same query with the last id as the marker.
pub fn next_link(p: &Params, page_len: usize, last_id: Option<&str>, href: &str) -> Option<Value> {
    let asked = match p.get("limit") {
        Some(l) => l.parse::<i64>().ok()?,
        None => MAX_LIMIT,
    };
    let limit = asked.min(MAX_LIMIT) as usize;
    if limit == 0 || page_len < limit {
        return None;
    }
    let mut params = p.clone();
    params.remove("offset");
    params.insert("marker".into(), last_id?.to_string());
    let qs: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    Some(json!([{ "rel": "next", "href": format!("{href}?{}", qs.join("&")) }]))
}

/// A listing page as a JSON response, serialised into a buffer sized for `items` entries of
/// about `item_bytes` each: a 1000-volume page is ~0.8 MB, which axum's `Json` (128 bytes to
/// start) reaches through a dozen reallocations and copies.
pub fn page_response<T: serde::Serialize>(
    page: &T,
    items: usize,
    item_bytes: usize,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let mut buf = Vec::with_capacity(256 + items * item_bytes);
    serde_json::to_writer(&mut buf, page)
        .map_err(|e| ApiError::Internal(format!("cannot serialise the listing page: {e}")))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        buf,
    )
        .into_response())
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(admin: bool) -> RequestContext {
        RequestContext {
            project_id: Some("p".into()),
            is_admin: admin,
            ..Default::default()
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn all_tenants_is_for_admins_only() {
        let p = params(&[("all_tenants", "1")]);
        assert_eq!(query(&ctx(true), "p", &p, &[]).unwrap().project_id, None);
        assert_eq!(
            query(&ctx(false), "p", &p, &[]).unwrap().project_id,
            Some("p".into())
        );
    }

    #[test]
    fn bad_paging_values_are_400s() {
        for (k, v) in [("limit", "-1"), ("offset", "x"), ("sort", "size:sideways")] {
            let err = query(&ctx(false), "p", &params(&[(k, v)]), &[]).unwrap_err();
            assert!(matches!(err, ApiError::BadRequest(_)), "{k}={v}: {err}");
        }
    }

    #[test]
    fn metadata_and_boolean_filters_parse_like_cinderclient_sends_them() {
        let p = params(&[("metadata", "{'a': 'b'}"), ("bootable", "False")]);
        let q = query(&ctx(false), "p", &p, &[("bootable", "bootable", true)]).unwrap();
        assert_eq!(q.metadata.get("a").map(String::as_str), Some("b"));
        assert_eq!(q.filters, vec![("bootable", FilterValue::Bool(false))]);
        assert!(query(&ctx(false), "p", &params(&[("metadata", "x")]), &[]).is_err());
    }

    #[test]
    fn next_link_keeps_the_query_and_moves_the_marker() {
        let p = params(&[("limit", "2"), ("sort", "size:asc"), ("marker", "old")]);
        let link = next_link(&p, 2, Some("last"), "http://h/v3/p/volumes").unwrap();
        let href = link[0]["href"].as_str().unwrap();
        assert_eq!(
            href,
            "http://h/v3/p/volumes?limit=2&marker=last&sort=size:asc"
        );
        assert!(next_link(&p, 1, Some("last"), "x").is_none(), "short page");
    }

    #[test]
    fn pages_hold_at_most_max_limit_items_and_then_link_to_the_next() {
        let q = query(&ctx(false), "p", &params(&[]), &[]).unwrap();
        assert_eq!(q.limit, Some(MAX_LIMIT));
        let q = query(&ctx(false), "p", &params(&[("limit", "5000")]), &[]).unwrap();
        assert_eq!(q.limit, Some(MAX_LIMIT));
        let none = params(&[]);
        let full = MAX_LIMIT as usize;
        let link = next_link(&none, full, Some("last"), "http://h/v").unwrap();
        assert_eq!(link[0]["href"], "http://h/v?marker=last");
        assert!(next_link(&none, full - 1, Some("last"), "x").is_none());
    }
}
