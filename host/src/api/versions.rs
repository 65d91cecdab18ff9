//! Version discovery: `GET /` answers 300 with every API version, `GET /v3/` the v3 document.
//! Both answer without a token (under noauth and Keystone alike), so keystoneauth's discovery
//! works; the range advertised is `microversion::MIN`..=`MAX`.

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

use super::microversion::{MAX, MIN};

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8776");
    format!("http://{host}")
}

fn v3(base: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "v3.0",
        "status": "CURRENT",
        "version": MAX.to_string(),
        "min_version": MIN.to_string(),
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": format!("{base}/v3/")}
        ],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}
        ]
    })
}

pub async fn all(headers: HeaderMap) -> impl IntoResponse {
    let base = base_url(&headers);
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(serde_json::json!({ "versions": [v3(&base)] })),
    )
}

pub async fn v3_root(headers: HeaderMap) -> impl IntoResponse {
    let base = base_url(&headers);
    Json(serde_json::json!({ "versions": [v3(&base)] }))
}
