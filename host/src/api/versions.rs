//! Version discovery: `GET /` answers 300 with every API version, `GET /v3/` the v3 document.
//! Both answer without a token, so keystoneauth's discovery works under noauth.

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;

/// The microversions this build serves. Grows with the API issue's negotiation.
pub const MIN_VERSION: &str = "3.0";
pub const MAX_VERSION: &str = "3.0";

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
        "version": MAX_VERSION,
        "min_version": MIN_VERSION,
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
