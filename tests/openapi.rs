//! `GET /openapi.json` on a real `kiln all-in-one` (noauth): served without a token (while a
//! resource without one is 401), an OpenAPI 3.1 document listing volume create in both URL
//! forms with its body schema, and every documented parameter-less GET answered by the live
//! router (not its 404 fallback or a 405).

use kiln_integration_tests::cloud::{block_on, Cloud};
use serde_json::Value;

/// (status, content type, body) of a GET, with an optional token and microversion.
fn get(url: &str, token: Option<&str>) -> (u16, String, Value) {
    block_on(async {
        let mut req = reqwest::Client::new()
            .get(url)
            .header("OpenStack-API-Version", "volume latest");
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = r.text().await.unwrap();
        (
            status,
            content_type,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    })
}

#[test]
fn openapi_document_is_served_without_a_token_and_matches_the_router() {
    let cloud = Cloud::start("");
    let root = cloud.api.trim_end_matches("/v3/demo").to_string();

    let (s, _, _) = get(&format!("{}/volumes", cloud.api), None);
    assert_eq!(s, 401, "resources need a token");

    let (s, content_type, doc) = get(&format!("{root}/openapi.json"), None);
    assert_eq!(s, 200, "{doc}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(doc["openapi"], "3.1.0");

    for path in ["/v3/{project_id}/volumes", "/v3/volumes"] {
        let post = &doc["paths"][path]["post"];
        let schema_ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("POST {path} has no JSON body: {post}"));
        assert_eq!(schema_ref, "#/components/schemas/VolumeCreateRequest");
        let schema = doc.pointer(&schema_ref[1..]).expect("the $ref resolves");
        for field in ["size", "name", "volume_type", "snapshot_id", "source_volid"] {
            assert!(
                schema["properties"]["volume"]["properties"][field].is_object(),
                "volume create body lacks {field}: {schema}"
            );
        }
        assert!(post["responses"]["413"].is_object());
    }

    // Every documented GET without path parameters (other than the project) is routed.
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(rest) = path.strip_prefix("/v3/{project_id}") else {
            continue;
        };
        if item.get("get").is_none() || rest.contains('{') {
            continue;
        }
        for url in [format!("{}{rest}", cloud.api), format!("{root}/v3{rest}")] {
            let (s, _, body) = get(&url, Some("alice:demo"));
            let fallback =
                s == 404 && body["itemNotFound"]["message"] == "The resource could not be found.";
            assert!(s != 405 && !fallback, "GET {url}: {s} {body}");
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} GETs checked");
}
