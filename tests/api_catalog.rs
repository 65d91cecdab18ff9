//! The catalog API end to end against a real `kiln all-in-one` process, on SQLite and on
//! PostgreSQL: volume types (CRUD, extra specs, access, default type, per-project default
//! types), QoS specs, quotas and
//! quota classes, limits, availability zones, extensions, user messages, Cinder's error
//! bodies, and the database's JSON pages of volumes. Also quota reservations racing on
//! PostgreSQL (`SELECT … FOR UPDATE`), and the real `openstack` CLI (skipped only when pip
//! cannot install it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln::db::quotas::QuotaError;
use kiln::db::user_messages::NewMessage;
use kiln::db::{Db, DbOptions};
use kiln_integration_tests::process::{self as p, Kiln};
use serde_json::{json, Value};

#[path = "api_catalog/default_types.rs"]
mod default_types;
#[path = "api_catalog/qos.rs"]
mod qos;
#[path = "api_catalog/types.rs"]
mod types;
#[path = "api_catalog/volume_pages.rs"]
mod volume_pages;

use default_types::default_types;
use qos::qos;
use types::types;
use volume_pages::volume_pages;

/// A hex project id, as Cinder's URLs require.
const PROJECT: &str = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0";

#[derive(Clone)]
struct Api {
    base: String,
    http: reqwest::Client,
    /// Sent as `OpenStack-API-Version: volume X.Y` when set.
    microversion: Option<&'static str>,
}

impl Api {
    fn new(listen: &str) -> Api {
        Api {
            base: format!("http://{listen}/v3/{PROJECT}"),
            http: reqwest::Client::new(),
            microversion: None,
        }
    }

    /// The same client asking for microversion `v`.
    fn at(&self, v: &'static str) -> Api {
        Api {
            microversion: Some(v),
            ..self.clone()
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut req = self
            .http
            .request(method.parse().unwrap(), &url)
            .header("X-Auth-Token", format!("admin:{PROJECT}"));
        if let Some(v) = self.microversion {
            req = req.header("OpenStack-API-Version", format!("volume {v}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    async fn wait_ready(&self, aio: &Kiln) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self
                .http
                .get(format!("{}/extensions", self.base))
                .header("X-Auth-Token", "admin:admin")
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "API not ready:\n{}",
                aio.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Assert a Cinder error body: `{kind: {code, message}}`.
fn assert_error(got: &(u16, Value), status: u16, kind: &str) {
    assert_eq!(got.0, status, "{:?}", got.1);
    assert_eq!(got.1[kind]["code"], status, "{:?}", got.1);
    assert!(
        got.1[kind]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{:?}",
        got.1
    );
}

async fn quotas_and_limits(api: &Api) {
    let mut want = json!({"id": PROJECT, "volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10,
                      "backup_gigabytes": 1000, "per_volume_gigabytes": -1, "groups": 10});
    // Cinder's per-volume-type keys, unlimited by default, for every live type.
    let (_, types) = api.get("/types?is_public=None").await;
    let types = types["volume_types"]
        .as_array()
        .expect("a type list")
        .clone();
    assert!(!types.is_empty(), "the default type at least");
    for t in types {
        let name = t["name"].as_str().expect("a type name");
        for resource in ["volumes", "gigabytes", "snapshots"] {
            want[format!("{resource}_{name}")] = json!(-1);
        }
    }
    let (s, q) = api.get(&format!("/os-quota-sets/{PROJECT}")).await;
    assert_eq!((s, &q["quota_set"]), (200, &want));
    let (_, d) = api.get(&format!("/os-quota-sets/{PROJECT}/defaults")).await;
    assert_eq!(d["quota_set"], want);
    let (s, u) = api
        .get(&format!("/os-quota-sets/{PROJECT}?usage=true"))
        .await;
    assert_eq!(
        (s, &u["quota_set"]["gigabytes"]),
        (200, &json!({"limit": 1000, "in_use": 0, "reserved": 0}))
    );

    let (s, up) = api
        .call(
            "PUT",
            &format!("/os-quota-sets/{PROJECT}"),
            Some(json!({"quota_set": {"volumes": 20, "gigabytes": "50"}})),
        )
        .await;
    assert_eq!(
        (
            s,
            &up["quota_set"]["volumes"],
            &up["quota_set"]["gigabytes"]
        ),
        (200, &json!(20), &json!(50)),
        "{up}"
    );
    assert_error(
        &api.call(
            "PUT",
            &format!("/os-quota-sets/{PROJECT}"),
            Some(json!({"quota_set": {"bananas": 1}})),
        )
        .await,
        400,
        "badRequest",
    );
    assert_error(
        &api.call(
            "PUT",
            &format!("/os-quota-sets/{PROJECT}"),
            Some(json!({"quota_set": {"volumes": -5}})),
        )
        .await,
        400,
        "badRequest",
    );

    let (s, l) = api.get("/limits").await;
    assert_eq!(s, 200);
    assert_eq!(l["limits"]["rate"], json!([]));
    let abs = &l["limits"]["absolute"];
    assert_eq!(
        (
            &abs["maxTotalVolumes"],
            &abs["maxTotalVolumeGigabytes"],
            &abs["totalVolumesUsed"]
        ),
        (&json!(20), &json!(50), &json!(0))
    );
    assert_eq!(abs["maxTotalSnapshots"], 10);

    let (s, _) = api
        .call("DELETE", &format!("/os-quota-sets/{PROJECT}"), None)
        .await;
    assert_eq!(s, 200);
    let (_, q) = api.get(&format!("/os-quota-sets/{PROJECT}")).await;
    assert_eq!(q["quota_set"], want);

    let (s, c) = api
        .call(
            "PUT",
            "/os-quota-class-sets/default",
            Some(json!({"quota_class_set": {"snapshots": 30}})),
        )
        .await;
    assert_eq!(
        (s, &c["quota_class_set"]["snapshots"]),
        (200, &json!(30)),
        "{c}"
    );
    let (_, c) = api.get("/os-quota-class-sets/default").await;
    assert_eq!(
        (
            &c["quota_class_set"]["id"],
            &c["quota_class_set"]["snapshots"]
        ),
        (&json!("default"), &json!(30))
    );
    let (_, d) = api.get(&format!("/os-quota-sets/{PROJECT}/defaults")).await;
    assert_eq!(
        d["quota_set"]["snapshots"], 30,
        "the default class moves the defaults"
    );
    api.call(
        "PUT",
        "/os-quota-class-sets/default",
        Some(json!({"quota_class_set": {"snapshots": 10}})),
    )
    .await;
}

async fn zones_extensions_errors(api: &Api) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, z) = api.get("/os-availability-zone").await;
        assert_eq!(s, 200);
        if z == json!({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": true}}]})
        {
            break;
        }
        assert!(Instant::now() < deadline, "zone never available: {z}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, e) = api.get("/extensions").await;
    assert_eq!(s, 200);
    let aliases: Vec<&str> = e["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["alias"].as_str())
        .collect();
    for a in [
        "os-types-manage",
        "os-types-extra-specs",
        "os-volume-type-access",
        "qos-specs",
        "os-quota-sets",
        "os-quota-class-sets",
        "os-availability-zone",
        "os-used-limits",
    ] {
        assert!(aliases.contains(&a), "{a} missing from {aliases:?}");
    }
    assert_error(&api.get("/no-such-thing").await, 404, "itemNotFound");
    let r = api
        .http
        .post(format!("{}/types", api.base))
        .header("X-Auth-Token", "admin:admin")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["badRequest"]["code"], 400);
}

async fn messages(api: &Api, db: &Db) {
    // Messages exist from 3.3 on (Cinder's MESSAGES_BASE_MICRO_VERSION).
    assert_error(&api.get("/messages").await, 404, "itemNotFound");
    let api = &api.at("3.3");
    let (s, l) = api.get("/messages").await;
    assert_eq!((s, l), (200, json!({"messages": []})));
    assert_error(
        &api.get("/messages/00000000-0000-0000-0000-000000000000")
            .await,
        404,
        "itemNotFound",
    );
    // A message as the scheduler writes it, through the same database.
    let m = db
        .user_message_create(&NewMessage {
            project_id: PROJECT,
            request_id: Some("req-x"),
            resource_type: Some("VOLUME"),
            resource_uuid: Some("11111111-1111-1111-1111-111111111111"),
            action_id: "001",
            detail_id: "003",
            detail: Some("CapacityFilter removed 1 pool."),
        })
        .await
        .unwrap();
    let (s, shown) = api.get(&format!("/messages/{}", m.id)).await;
    assert_eq!(s, 200, "{shown}");
    let v = &shown["message"];
    assert_eq!(v["event_id"], "VOLUME_VOLUME_001_003");
    assert_eq!(v["user_message"], "schedule allocate volume:Could not find any available weighted backend. CapacityFilter removed 1 pool.");
    assert_eq!(
        (&v["message_level"], &v["request_id"], &v["resource_type"]),
        (&json!("ERROR"), &json!("req-x"), &json!("VOLUME"))
    );
    assert!(
        v["guaranteed_until"].as_str().is_some()
            && v["links"].as_array().is_some_and(|l| l.len() == 2)
    );
    let (_, l) = api
        .get("/messages?resource_uuid=11111111-1111-1111-1111-111111111111")
        .await;
    assert_eq!(l["messages"].as_array().unwrap().len(), 1);
    let (_, l) = api.get("/messages?resource_uuid=other").await;
    assert_eq!(l["messages"], json!([]));
    assert_eq!(
        api.call("DELETE", &format!("/messages/{}", m.id), None)
            .await
            .0,
        204
    );
    assert_error(
        &api.get(&format!("/messages/{}", m.id)).await,
        404,
        "itemNotFound",
    );
}

async fn suite(listen: &str, aio: &Kiln, db_url: &str) {
    let api = Api::new(listen);
    api.wait_ready(aio).await;
    let db = Db::connect(db_url, &DbOptions::default()).await.unwrap();
    types(&api).await;
    default_types(&api).await;
    qos(&api).await;
    quotas_and_limits(&api).await;
    zones_extensions_errors(&api).await;
    messages(&api, &db).await;
    volume_pages(&db).await;
}

fn write_config(dir: &Path, db_url: &str, listen: &str) -> PathBuf {
    let path = dir.join("kiln.toml");
    std::fs::write(&path, format!("report_interval = 1\nservice_down_time = 5\n[database]\nurl = \"{db_url}\"\n[api]\nlisten = \"{listen}\"\n")).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_api_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", p::free_port());
    let db_url = format!("sqlite://{}", dir.path().join("kiln.db").display());
    let cfg = write_config(dir.path(), &db_url, &listen);
    let aio = Kiln::start("aio", dir.path(), Some(&cfg), &["all-in-one"]);
    suite(&listen, &aio, &db_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_api_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", p::free_port());
    let db_url = p::fresh_pg_database().await;
    let cfg = write_config(dir.path(), &db_url, &listen);
    let aio = Kiln::start("aio", dir.path(), Some(&cfg), &["all-in-one"]);
    suite(&listen, &aio, &db_url).await;
}

/// Two "API processes" (two pools) race 40 reservations against a limit of 7 on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quota_reservations_are_serialised_on_postgres() {
    let url = p::fresh_pg_database().await;
    let a = Db::connect(&url, &DbOptions::default()).await.unwrap();
    a.migrate().await.unwrap();
    let b = Db::connect(&url, &DbOptions::default()).await.unwrap();
    a.quota_update("p", &[("volumes".to_string(), 7)].into())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let db = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            db.quota_reserve("p", &[("volumes", 1), ("gigabytes", 1)])
                .await
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => held.push(r),
            Err(QuotaError::OverLimit { resource, .. }) => assert_eq!(resource, "volumes"),
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(held.len(), 7);
    let u = a.quota_get_with_usage("p").await.unwrap();
    assert_eq!((u["volumes"].reserved, u["gigabytes"].reserved), (7, 7));
    for (i, r) in held.iter().enumerate() {
        if i % 2 == 0 {
            a.quota_commit(r).await.unwrap()
        } else {
            b.quota_rollback(r).await.unwrap()
        }
        a.quota_commit(r).await.unwrap(); // a second settle changes nothing
    }
    let u = a.quota_get_with_usage("p").await.unwrap();
    assert_eq!((u["volumes"].in_use, u["volumes"].reserved), (4, 0));
    a.quota_release("p", &[("volumes", 4)]).await.unwrap();
    assert_eq!(
        a.quota_get_with_usage("p").await.unwrap()["volumes"].in_use,
        0
    );
    // The default type and resolve work on PostgreSQL too.
    let t = a.volume_type_resolve("p", None).await.unwrap();
    assert_eq!(t.name, "__DEFAULT__");
}
