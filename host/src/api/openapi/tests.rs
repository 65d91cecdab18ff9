//! The tests that keep the OpenAPI document true to the router and valid.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::build::{document, ops};
use super::op::{Mount, Verb};
use super::route_scan::{self, Declared};
use super::{validate, PROJECTLESS_PREFIX, PROJECT_PREFIX};

/// Every `.route(...)` declaration under host/src/api: (path, verb) → where.
fn declared() -> BTreeMap<(String, Verb), String> {
    let mut out = BTreeMap::new();
    for (file, src) in route_scan::sources(&route_scan::api_dir()).expect("read the API source") {
        for Declared { path, verbs, at } in
            route_scan::scan(&file, &src).unwrap_or_else(|e| panic!("{e}"))
        {
            for verb in verbs {
                out.insert((path.clone(), verb), at.clone());
            }
        }
    }
    out
}

#[test]
fn every_declared_route_is_documented_and_every_documented_route_is_declared() {
    let declared = declared();
    assert!(
        declared.len() > 90,
        "the scan found only {} routes",
        declared.len()
    );
    let mut documented = BTreeSet::new();
    let mut twice = Vec::new();
    for op in ops() {
        if !documented.insert((op.path.to_string(), op.verb)) {
            twice.push(format!("{} {}", op.verb.key().to_uppercase(), op.path));
        }
    }
    let undocumented: Vec<String> = declared
        .iter()
        .filter(|(key, _)| !documented.contains(*key))
        .map(|((path, verb), at)| {
            format!("{} {path} (declared at {at})", verb.key().to_uppercase())
        })
        .collect();
    let stale: Vec<String> = documented
        .iter()
        .filter(|key| !declared.contains_key(*key))
        .map(|(path, verb)| format!("{} {path}", verb.key().to_uppercase()))
        .collect();
    assert!(
        undocumented.is_empty() && stale.is_empty() && twice.is_empty(),
        "routes without an entry in host/src/api/openapi/routes_*.rs: {undocumented:#?}\n\
         documented routes the router no longer declares: {stale:#?}\n\
         documented twice: {twice:#?}"
    );
}

#[test]
fn v3_routes_are_nested_at_the_documented_prefixes() {
    let mut nests: Vec<String> = route_scan::sources(&route_scan::api_dir())
        .unwrap()
        .iter()
        .flat_map(|(_, src)| route_scan::nests(src))
        .collect();
    nests.sort();
    assert_eq!(nests, [PROJECTLESS_PREFIX, PROJECT_PREFIX]);
}

#[test]
fn the_scanner_reads_literals_loops_consts_and_closures_and_refuses_the_unknown() {
    let src = r#"
        // .route("/commented", get(nope))
        const ONE: &str = "/one";
        fn routes() -> Router<AppState> {
            let mut r = Router::new()
                .route("/a/{id}", get(show).put(update).layer(DefaultBodyLimit::max(1)))
                .route(ONE, axum::routing::post(one));
            for (kind, base) in [(Kind::V, "/volumes"), (Kind::S, "/snapshots")] {
                r = r.route(&format!("{base}/{{id}}/metadata"),
                    get(move |p: Path<Params>| index(kind, p)).delete(move |p| delete(kind, p, '{')));
            }
            for base in ["/x", "/y"] {
                r = r.route(base, get(list));
            }
            r
        }
    "#;
    let found: Vec<(String, Vec<Verb>)> = route_scan::scan("t.rs", src)
        .unwrap()
        .into_iter()
        .map(|d| (d.path, d.verbs))
        .collect();
    let expected = [
        ("/a/{id}", vec![Verb::Get, Verb::Put]),
        ("/one", vec![Verb::Post]),
        ("/volumes/{id}/metadata", vec![Verb::Get, Verb::Delete]),
        ("/snapshots/{id}/metadata", vec![Verb::Get, Verb::Delete]),
        ("/x", vec![Verb::Get]),
        ("/y", vec![Verb::Get]),
    ];
    let expected: Vec<(String, Vec<Verb>)> = expected
        .into_iter()
        .map(|(p, v)| (p.to_string(), v))
        .collect();
    assert_eq!(found, expected);

    let err =
        route_scan::scan("t.rs", "fn f() { Router::new()\n.route(\"/z\", any(h)) }").unwrap_err();
    assert!(err.to_string().starts_with("t.rs:2:"), "{err}");
    assert!(err.to_string().contains("any"), "{err}");
    assert!(route_scan::scan("t.rs", ".route(path_of(x), get(h))").is_err());
}

#[test]
fn the_document_is_valid_openapi_3_1() {
    let problems = validate::check(&document());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_validator_finds_dangling_refs_wrong_path_params_and_duplicate_ids() {
    let doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "t", "version": "1" },
        "paths": {
            "/a/{id}": { "get": { "operationId": "x", "responses": { "200": { "$ref": "#/components/responses/Nope" } } } },
            "/b": { "get": { "operationId": "x", "responses": { "200": { "description": "ok" } } } },
        },
        "components": { "schemas": { "Unused": { "type": "object" } } },
    });
    let problems: Vec<String> = validate::check(&doc)
        .iter()
        .map(|p| p.to_string())
        .collect();
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(has("does not resolve"), "{problems:#?}");
    assert!(has("differ from the template"), "{problems:#?}");
    assert!(has("duplicate operationId x"), "{problems:#?}");
    assert!(has("never used"), "{problems:#?}");
}

#[test]
fn volume_create_is_documented_in_both_url_forms_with_its_body_and_errors() {
    let doc = document();
    for path in ["/v3/{project_id}/volumes", "/v3/volumes"] {
        let post = &doc["paths"][path]["post"];
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/VolumeCreateRequest",
            "{path}"
        );
        assert_eq!(
            post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/VolumeResponse"
        );
        for status in ["400", "403", "404", "409", "413"] {
            assert!(
                post["responses"][status]["$ref"].is_string(),
                "{path} {status}"
            );
        }
        let names: Vec<&str> = post["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str().or(p["$ref"].as_str()))
            .collect();
        assert!(names.contains(&"#/components/parameters/OpenStackApiVersion"));
        assert_eq!(names.contains(&"project_id"), path.contains("{project_id}"));
    }
    assert_eq!(
        doc["paths"]["/v3/volumes"]["post"]["x-openstack-project-less"],
        true
    );
    let size = &doc["components"]["schemas"]["VolumeCreateRequest"]["properties"]["volume"]
        ["properties"]["size"];
    assert!(size.is_object());
}

#[test]
fn gates_admin_rules_listings_and_public_routes_come_from_their_tables() {
    let doc = document();
    let paths = &doc["paths"];
    assert_eq!(
        paths["/v3/{project_id}/attachments"]["post"]["x-openstack-microversion"]["min"],
        "3.27"
    );
    assert_eq!(
        paths["/v3/{project_id}/volumes/summary"]["get"]["x-openstack-microversion"]["min"],
        "3.12"
    );
    assert!(paths["/v3/{project_id}/volumes"]["get"]["x-openstack-microversion"].is_null());
    assert_eq!(
        paths["/v3/os-services"]["get"]["x-openstack-policy"],
        "volume_extension:services:index"
    );
    assert_eq!(
        paths["/v3/{project_id}/types"]["post"]["x-openstack-admin-only"],
        true
    );
    assert!(paths["/v3/{project_id}/types"]["get"]["x-openstack-admin-only"].is_null());
    let listing: Vec<&str> = paths["/v3/{project_id}/volumes/detail"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for name in [
        "limit",
        "marker",
        "offset",
        "sort",
        "sort_key",
        "sort_dir",
        "all_tenants",
        "status",
        "bootable",
    ] {
        assert!(listing.contains(&name), "{name} missing from {listing:?}");
    }
    assert_eq!(paths["/openapi.json"]["get"]["security"], json!([]));
    assert_eq!(paths["/v3/"]["get"]["security"], json!([]));
    assert!(
        paths["/v3/volumes"]["get"]["security"].is_null(),
        "the global token scheme applies"
    );
    // Root routes are not mounted under /v3/{project_id}.
    assert!(paths["/v3/{project_id}/healthcheck"].is_null());
    assert!(ops().any(|op| op.mount == Mount::Root && op.path == "/openapi.json"));
}

#[test]
fn volume_and_snapshot_actions_are_all_documented_with_their_admin_rules() {
    let api = route_scan::api_dir();
    let read = |p: &str| std::fs::read_to_string(api.join(p)).unwrap();
    let doc = document();
    for (file, schema) in [
        ("volume_actions/mod.rs", "VolumeAction"),
        ("snapshots.rs", "SnapshotAction"),
    ] {
        let mut dispatched = route_scan::match_arms(&read(file), "match name.as_str() {");
        let mut documented: Vec<String> = doc["components"]["schemas"][schema]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["title"].as_str().unwrap().to_string())
            .collect();
        assert!(!dispatched.is_empty(), "no actions found in {file}");
        dispatched.sort();
        documented.sort();
        assert_eq!(
            dispatched, documented,
            "actions of {file} vs the {schema} schema"
        );
    }
    let variant = |schema: &str, name: &str| -> Value {
        doc["components"]["schemas"][schema]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["title"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        variant("VolumeAction", "os-reset_status")["x-openstack-policy"],
        "volume_extension:volume_admin_actions:reset_status"
    );
    assert!(variant("VolumeAction", "os-extend")["x-openstack-policy"].is_null());
    assert_eq!(
        variant("VolumeAction", "os-extend")["required"],
        json!(["os-extend"])
    );
    assert!(variant("VolumeTypeAction", "addProjectAccess")["x-openstack-policy"].is_string());
}
