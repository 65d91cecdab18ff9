//! The API edge on a real `kiln all-in-one` (noauth), over HTTP: microversion negotiation and
//! its headers and errors, per-resource gates, project-less URLs, `os-services` with Cinder's
//! binary names and host filter, freeze / thaw (and that a frozen backend gets no placement),
//! `os-hosts`, `capabilities/{host}`. Keystone auth is in `keystone_auth.rs`.

use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{block_on, Cloud};
use serde_json::{json, Value};

/// One request as admin of project `demo`; (status, headers, body).
fn call(
    method: &str,
    url: &str,
    version: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    block_on(async {
        let mut req = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .header("X-Auth-Token", "alice:demo");
        if let Some(v) = version {
            req = req.header("OpenStack-API-Version", v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    })
}

#[test]
fn microversions_services_hosts_and_capabilities() {
    let cloud = Cloud::start("");
    let api = &cloud.api; // http://HOST/v3/demo
    let root = api.trim_end_matches("/demo");

    // Negotiation: absent → 3.0, a version echoed, latest → 3.71, 406 and 400 bodies.
    let (s, h, _) = call("GET", &format!("{api}/volumes"), None, None);
    assert_eq!(s, 200);
    assert_eq!(h["openstack-api-version"], "volume 3.0");
    assert_eq!(h["vary"], "OpenStack-API-Version");
    let (_, h, _) = call("GET", &format!("{api}/volumes"), Some("volume 3.27"), None);
    assert_eq!(h["openstack-api-version"], "volume 3.27");
    let (_, h, _) = call(
        "GET",
        &format!("{api}/volumes"),
        Some("volume latest"),
        None,
    );
    assert_eq!(h["openstack-api-version"], "volume 3.71");
    let (s, _, v) = call("GET", &format!("{api}/volumes"), Some("volume 3.72"), None);
    assert_eq!(s, 406, "{v}");
    assert_eq!(
        v["computeFault"]["message"],
        "Version 3.72 is not supported by the API. Minimum is 3.0 and maximum is 3.71."
    );
    let (s, _, v) = call("GET", &format!("{api}/volumes"), Some("volume 3.x"), None);
    assert_eq!(s, 400, "{v}");
    assert!(v["badRequest"]["message"]
        .as_str()
        .unwrap()
        .contains("invalid format"));
    // The legacy header.
    let legacy = block_on(
        reqwest::Client::new()
            .get(format!("{api}/volumes"))
            .header("X-Auth-Token", "alice:demo")
            .header("OpenStack-Volume-microversion", "3.12")
            .send(),
    )
    .unwrap();
    assert_eq!(legacy.headers()["openstack-api-version"], "volume 3.12");
    // Discovery advertises the range, without a token.
    let r = block_on(reqwest::get(format!("{root}/"))).unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc: Value = block_on(r.json()).unwrap();
    assert_eq!(
        (
            &doc["versions"][0]["min_version"],
            &doc["versions"][0]["version"]
        ),
        (&json!("3.0"), &json!("3.71"))
    );

    // A gated resource: /messages from 3.3, on both URL forms.
    let (s, _, _) = call("GET", &format!("{api}/messages"), None, None);
    assert_eq!(s, 404);
    for url in [format!("{api}/messages"), format!("{root}/messages")] {
        let (s, _, v) = call("GET", &url, Some("volume 3.3"), None);
        assert_eq!(s, 200, "{url}: {v}");
    }

    // Project-less URLs act in the token's project: a volume made through one form is seen
    // through the other.
    let (s, _, v) = call(
        "POST",
        &format!("{root}/volumes"),
        None,
        Some(json!({"volume": {"size": 1, "name": "projectless"}})),
    );
    assert_eq!(s, 202, "{v}");
    let id = v["volume"]["id"].as_str().unwrap().to_string();
    assert!(
        v["volume"].get("os-vol-tenant-attr:tenant_id").is_none(),
        "{v}"
    );
    let shown = cloud.settle(&id);
    assert_eq!(shown["os-vol-tenant-attr:tenant_id"], "demo");
    let (s, _, v) = call("GET", &format!("{root}/volumes/{id}"), None, None);
    assert_eq!((s, &v["volume"]["name"]), (200, &json!("projectless")));

    // os-services: Cinder's binary names, the host filter matching node@backend.
    let (_, _, v) = call("GET", &format!("{api}/os-services"), None, None);
    let services = v["services"].as_array().unwrap();
    let volume = services
        .iter()
        .find(|s| s["binary"] == "cinder-volume")
        .unwrap_or_else(|| panic!("no cinder-volume in {v}"));
    assert!(volume.get("cluster").is_none(), "cluster only from 3.7");
    let vhost = volume["host"].as_str().unwrap().to_string();
    let node = vhost.split('@').next().unwrap().to_string();
    let (_, _, v) = call(
        "GET",
        &format!("{api}/os-services?host={node}&binary=cinder-volume"),
        Some("volume 3.49"),
        None,
    );
    let found = v["services"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{v}");
    assert_eq!(found[0]["backend_state"], "up");
    assert!(found[0]["cluster"].is_null() && found[0].get("cluster").is_some());

    // Freeze: the backend gets no placement; twice is 400; unknown host 400; thaw restores.
    let freeze = |action: &str, host: &str| {
        call(
            "PUT",
            &format!("{api}/os-services/{action}"),
            None,
            Some(json!({"host": host})),
        )
    };
    assert_eq!(freeze("freeze", &node).0, 200);
    assert_eq!(freeze("freeze", &node).0, 400);
    assert_eq!(freeze("freeze", "no-such-host").0, 400);
    let (_, _, v) = call(
        "GET",
        &format!("{api}/os-services?binary=cinder-volume"),
        None,
        None,
    );
    assert_eq!(v["services"][0]["frozen"], true, "{v}");
    // The scheduler leaves frozen backends out: no pool, so a new volume ends in error.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, v) = call(
            "GET",
            &format!("{api}/scheduler-stats/get_pools"),
            None,
            None,
        );
        if v["pools"].as_array().is_some_and(|p| p.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "frozen backend still offered: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, body) = cloud.create(json!({"volume": {"size": 1}}));
    let frozen_vol = body["volume"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.settle(&frozen_vol)["status"], "error");
    assert_eq!(freeze("thaw", &node).0, 200);
    assert_eq!(freeze("thaw", &node).0, 400);

    // os-hosts: every service; a volume host's usage, total then per project.
    let (s, _, v) = call("GET", &format!("{api}/os-hosts"), None, None);
    assert_eq!(s, 200);
    assert!(v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["service"] == "cinder-volume" && h["host_name"] == vhost.as_str()));
    let (s, _, v) = call("GET", &format!("{api}/os-hosts/{vhost}"), None, None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["host"][0]["resource"]["project"], "(total)");
    assert_eq!(v["host"][0]["resource"]["volume_count"], "1");
    assert_eq!(v["host"][1]["resource"]["project"], "demo");
    assert_eq!(
        call("GET", &format!("{api}/os-hosts/nowhere"), None, None).0,
        404
    );

    // capabilities of the backend, once the thawed backend is reported again.
    let deadline = Instant::now() + Duration::from_secs(20);
    let caps = loop {
        let (s, _, v) = call("GET", &format!("{api}/capabilities/{vhost}"), None, None);
        if s == 200 {
            break v;
        }
        assert!(Instant::now() < deadline, "capabilities: {s} {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(caps["namespace"], "OS::Storage::Capabilities::file");
    assert_eq!(caps["vendor_name"], "Open Source");
    assert_eq!(caps["properties"]["thin_provisioning"]["type"], "boolean");
    assert_eq!(
        call("GET", &format!("{api}/capabilities/nowhere@x"), None, None).0,
        404
    );
}
