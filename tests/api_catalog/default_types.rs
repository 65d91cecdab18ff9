//! Per-project default volume types (`/default-types`, 3.62) through the API: set, show, list,
//! unset, what `GET /types/default` answers with one set, the pinned type's refused delete,
//! and Cinder's errors.

use serde_json::json;

use super::{assert_error, Api, PROJECT};

pub async fn default_types(api: &Api) {
    assert_eq!(
        api.at("3.61").get("/default-types").await.0,
        404,
        "default types start at 3.62"
    );
    let api = api.at("3.62");
    let (s, all) = api.get("/default-types").await;
    assert_eq!((s, &all), (200, &json!({"default_types": []})));
    assert_error(
        &api.get(&format!("/default-types/{PROJECT}")).await,
        404,
        "itemNotFound",
    );
    let put = |body: serde_json::Value| {
        let api = api.clone();
        async move {
            api.call("PUT", &format!("/default-types/{PROJECT}"), Some(body))
                .await
        }
    };
    assert_error(
        &put(json!({"default_type": {"volume_type": "nope"}})).await,
        400,
        "badRequest",
    );
    assert_error(&put(json!({"default_type": {}})).await, 400, "badRequest");
    assert_error(&put(json!({"volume_type": "x"})).await, 400, "badRequest");

    let (s, t) = api
        .call(
            "POST",
            "/types",
            Some(json!({"volume_type": {"name": "platinum"}})),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    let id = t["volume_type"]["id"].as_str().unwrap().to_string();
    let (s, d) = put(json!({"default_type": {"volume_type": "platinum"}})).await;
    assert_eq!(s, 200, "{d}");
    let want = json!({"default_type": {"project_id": PROJECT, "volume_type_id": id}});
    assert_eq!(d, want);
    assert_eq!(
        api.get(&format!("/default-types/{PROJECT}")).await,
        (200, want)
    );
    let (_, all) = api.get("/default-types").await;
    assert_eq!(
        all["default_types"].as_array().map(Vec::len),
        Some(1),
        "{all}"
    );
    let (_, d) = api.get("/types/default").await;
    assert_eq!(
        d["volume_type"]["name"], "platinum",
        "the project's default"
    );

    let refused = api.call("DELETE", &format!("/types/{id}"), None).await;
    assert_error(&refused, 400, "badRequest");
    assert!(
        refused.1["badRequest"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("is a default volume type")),
        "{}",
        refused.1
    );

    for _ in 0..2 {
        let (s, _) = api
            .call("DELETE", &format!("/default-types/{PROJECT}"), None)
            .await;
        assert_eq!(s, 204, "unset, and unset again");
    }
    assert_eq!(api.get(&format!("/default-types/{PROJECT}")).await.0, 404);
    let (_, d) = api.get("/types/default").await;
    assert_eq!(d["volume_type"]["name"], "__DEFAULT__");
    assert_eq!(
        api.call("DELETE", &format!("/types/{id}"), None).await.0,
        202
    );
}
