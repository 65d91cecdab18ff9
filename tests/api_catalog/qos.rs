//! QoS specs through the API: create, keys, associations with types, and refused deletes.

use serde_json::json;

use super::{assert_error, Api};

pub async fn qos(api: &Api) {
    let (s, q) = api.call("POST", "/qos-specs", Some(json!({"qos_specs": {"name": "iops", "consumer": "front-end", "total_iops_sec": "500"}}))).await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(q["qos_specs"]["consumer"], "front-end");
    assert_eq!(q["qos_specs"]["specs"], json!({"total_iops_sec": "500"}));
    let qid = q["qos_specs"]["id"].as_str().unwrap().to_string();
    assert_error(
        &api.call(
            "POST",
            "/qos-specs",
            Some(json!({"qos_specs": {"name": "iops"}})),
        )
        .await,
        409,
        "conflictingRequest",
    );
    assert_error(
        &api.call(
            "POST",
            "/qos-specs",
            Some(json!({"qos_specs": {"name": "c", "consumer": "middle"}})),
        )
        .await,
        400,
        "badRequest",
    );

    let (s, _) = api
        .call(
            "PUT",
            &format!("/qos-specs/{qid}"),
            Some(json!({"qos_specs": {"read_iops_sec": "100"}})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, shown) = api.get(&format!("/qos-specs/{qid}")).await;
    assert_eq!(
        shown["qos_specs"]["specs"],
        json!({"read_iops_sec": "100", "total_iops_sec": "500"})
    );
    assert_error(
        &api.call(
            "PUT",
            &format!("/qos-specs/{qid}/delete_keys"),
            Some(json!({"keys": ["nope"]})),
        )
        .await,
        400,
        "badRequest",
    );
    assert_eq!(
        api.call(
            "PUT",
            &format!("/qos-specs/{qid}/delete_keys"),
            Some(json!({"keys": ["read_iops_sec"]}))
        )
        .await
        .0,
        202
    );

    let (_, t) = api
        .call(
            "POST",
            "/types",
            Some(json!({"volume_type": {"name": "with-qos"}})),
        )
        .await;
    let tid = t["volume_type"]["id"].as_str().unwrap().to_string();
    assert_error(
        &api.get(&format!("/qos-specs/{qid}/associate")).await,
        400,
        "badRequest",
    );
    assert_error(
        &api.get(&format!("/qos-specs/{qid}/associate?vol_type_id=nope"))
            .await,
        404,
        "itemNotFound",
    );
    assert_eq!(
        api.get(&format!("/qos-specs/{qid}/associate?vol_type_id={tid}"))
            .await
            .0,
        202
    );
    let (_, assoc) = api.get(&format!("/qos-specs/{qid}/associations")).await;
    assert_eq!(
        assoc,
        json!({"qos_associations": [{"association_type": "volume_type", "name": "with-qos", "id": tid}]})
    );
    let (_, t) = api.get(&format!("/types/{tid}")).await;
    assert_eq!(t["volume_type"]["qos_specs_id"], json!(qid));

    assert_error(
        &api.call("DELETE", &format!("/qos-specs/{qid}"), None).await,
        400,
        "badRequest",
    );
    assert_eq!(
        api.get(&format!("/qos-specs/{qid}/disassociate?vol_type_id={tid}"))
            .await
            .0,
        202
    );
    assert_eq!(
        api.get(&format!("/qos-specs/{qid}/associate?vol_type_id={tid}"))
            .await
            .0,
        202
    );
    assert_eq!(
        api.get(&format!("/qos-specs/{qid}/disassociate_all"))
            .await
            .0,
        202
    );
    assert_eq!(
        api.get(&format!("/qos-specs/{qid}/associate?vol_type_id={tid}"))
            .await
            .0,
        202
    );
    assert_eq!(
        api.call("DELETE", &format!("/qos-specs/{qid}?force=true"), None)
            .await
            .0,
        202
    );
    assert_error(
        &api.get(&format!("/qos-specs/{qid}")).await,
        404,
        "itemNotFound",
    );
    let (_, list) = api.get("/qos-specs").await;
    assert_eq!(list, json!({"qos_specs": []}));
}
