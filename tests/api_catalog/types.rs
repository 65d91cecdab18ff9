//! Volume types through the API: CRUD, extra specs, project access, the default type, and
//! the errors Cinder gives for each.

use serde_json::json;

use super::{assert_error, Api, PROJECT};

pub async fn types(api: &Api) {
    let (s, d) = api.get("/types/default").await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["volume_type"]["name"], "__DEFAULT__");
    let default_id = d["volume_type"]["id"].as_str().unwrap().to_string();

    let (s, t) = api
        .call("POST", "/types", Some(json!({"volume_type": {"name": "gold", "description": "fast", "extra_specs": {"volume_backend_name": "file"}}})))
        .await;
    assert_eq!(s, 200, "{t}");
    let t = &t["volume_type"];
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(
        (t["name"].as_str(), t["is_public"].as_bool()),
        (Some("gold"), Some(true))
    );
    assert_eq!(t["os-volume-type-access:is_public"], true);
    assert_eq!(t["extra_specs"]["volume_backend_name"], "file");

    assert_error(
        &api.call(
            "POST",
            "/types",
            Some(json!({"volume_type": {"name": "gold"}})),
        )
        .await,
        409,
        "conflictingRequest",
    );
    assert_error(
        &api.call("POST", "/types", Some(json!({"volume_type": {"name": ""}})))
            .await,
        400,
        "badRequest",
    );
    assert_error(
        &api.call(
            "POST",
            "/types",
            Some(json!({"volume_type": {"name": "x".repeat(256)}})),
        )
        .await,
        400,
        "badRequest",
    );
    assert_error(
        &api.call("POST", "/types", Some(json!({"nope": {}}))).await,
        400,
        "badRequest",
    );

    // Show by id, by name, and without the project id in the URL (3.67).
    let (s, by_name) = api.get("/types/gold").await;
    assert_eq!(
        (s, by_name["volume_type"]["id"].as_str()),
        (200, Some(id.as_str()))
    );
    let host = api
        .base
        .trim_end_matches(&format!("/{PROJECT}"))
        .to_string();
    let (s, _) = api.get(&format!("{host}/types/{id}")).await;
    assert_eq!(s, 200);
    let (s, list) = api.get("/types").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list["volume_types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"gold") && names.contains(&"__DEFAULT__"),
        "{names:?}"
    );

    let (s, u) = api
        .call(
            "PUT",
            &format!("/types/{id}"),
            Some(json!({"volume_type": {"name": "gold2", "description": "faster"}})),
        )
        .await;
    assert_eq!(
        (s, u["volume_type"]["name"].as_str()),
        (200, Some("gold2")),
        "{u}"
    );
    assert_error(
        &api.call(
            "PUT",
            &format!("/types/{id}"),
            Some(json!({"volume_type": {}})),
        )
        .await,
        400,
        "badRequest",
    );

    // Extra specs.
    let (s, b) = api
        .call(
            "POST",
            &format!("/types/{id}/extra_specs"),
            Some(json!({"extra_specs": {"a": "1", "b": "2"}})),
        )
        .await;
    assert_eq!((s, &b["extra_specs"]["a"]), (200, &json!("1")));
    let (s, b) = api.get(&format!("/types/{id}/extra_specs/b")).await;
    assert_eq!((s, b), (200, json!({"b": "2"})));
    let (s, _) = api
        .call(
            "PUT",
            &format!("/types/{id}/extra_specs/b"),
            Some(json!({"b": "3"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_error(
        &api.call(
            "PUT",
            &format!("/types/{id}/extra_specs/b"),
            Some(json!({"c": "3"})),
        )
        .await,
        400,
        "badRequest",
    );
    let (s, _) = api
        .call("DELETE", &format!("/types/{id}/extra_specs/b"), None)
        .await;
    assert_eq!(s, 202);
    assert_error(
        &api.get(&format!("/types/{id}/extra_specs/b")).await,
        404,
        "itemNotFound",
    );
    let (_, all) = api.get(&format!("/types/{id}/extra_specs")).await;
    assert_eq!(
        all,
        json!({"extra_specs": {"a": "1", "volume_backend_name": "file"}})
    );

    // Private type and project access.
    let (s, pt) = api.call("POST", "/types", Some(json!({"volume_type": {"name": "private", "os-volume-type-access:is_public": false}}))).await;
    assert_eq!(s, 200, "{pt}");
    let pid = pt["volume_type"]["id"].as_str().unwrap().to_string();
    let (s, acc) = api
        .get(&format!("/types/{pid}/os-volume-type-access"))
        .await;
    assert_eq!((s, acc), (200, json!({"volume_type_access": []})));
    let add = json!({"addProjectAccess": {"project": "p2"}});
    assert_eq!(
        api.call("POST", &format!("/types/{pid}/action"), Some(add.clone()))
            .await
            .0,
        202
    );
    assert_error(
        &api.call("POST", &format!("/types/{pid}/action"), Some(add))
            .await,
        409,
        "conflictingRequest",
    );
    let (_, acc) = api
        .get(&format!("/types/{pid}/os-volume-type-access"))
        .await;
    assert_eq!(
        acc,
        json!({"volume_type_access": [{"volume_type_id": pid, "project_id": "p2"}]})
    );
    let rm = json!({"removeProjectAccess": {"project": "p2"}});
    assert_eq!(
        api.call("POST", &format!("/types/{pid}/action"), Some(rm.clone()))
            .await
            .0,
        202
    );
    assert_error(
        &api.call("POST", &format!("/types/{pid}/action"), Some(rm))
            .await,
        404,
        "itemNotFound",
    );
    assert_error(
        &api.get(&format!("/types/{id}/os-volume-type-access")).await,
        404,
        "itemNotFound",
    );
    let (_, public_only) = api.get("/types").await;
    assert!(
        !public_only.to_string().contains("\"private\""),
        "admins list public types by default"
    );
    let (_, all) = api.get("/types?is_public=None").await;
    assert!(all.to_string().contains("\"private\""));

    // Deletion.
    assert_error(
        &api.call("DELETE", &format!("/types/{default_id}"), None)
            .await,
        400,
        "badRequest",
    );
    assert_eq!(
        api.call("DELETE", &format!("/types/{pid}"), None).await.0,
        202
    );
    assert_error(
        &api.get(&format!("/types/{pid}")).await,
        404,
        "itemNotFound",
    );
    assert_error(
        &api.call("DELETE", &format!("/types/{pid}"), None).await,
        404,
        "itemNotFound",
    );
}
