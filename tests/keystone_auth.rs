//! Keystone auth end to end: a real Keystone 30 (PyPI, uwsgi, on the local PostgreSQL, started
//! by `scripts/keystone` in a temp dir with its own database) and a real `kiln all-in-one` with
//! `auth_strategy = "keystone"`. Users, projects and tokens are made through Keystone's API.
//! Checks 401 + `WWW-Authenticate`, token-less discovery, roles → admin policy, the URL
//! project check, project-less URLs, microversion headers and the validation cache (a revoked
//! token is honoured until the cache TTL, refused after). Skipped only when the venv cannot be
//! installed (no network); `TEMPEST_VENV` reuses one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_integration_tests::process::{self as p, Kiln};
use serde_json::{json, Value};

const CACHE_TTL: u64 = 4;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A Keystone started by `scripts/keystone`, stopped (and its database dropped) on drop.
struct Keystone {
    dir: PathBuf,
    db: String,
    url: String,
}

impl Keystone {
    fn start(dir: &Path) -> Option<Keystone> {
        let venv = Command::new(repo().join("scripts/keystone"))
            .arg("venv")
            .status()
            .is_ok_and(|s| s.success());
        if !venv {
            return None;
        }
        let port = p::free_port();
        let db = format!("kiln_keystone_{}", uuid::Uuid::new_v4().simple());
        let ks = Keystone {
            dir: dir.join("keystone"),
            db,
            url: format!("http://127.0.0.1:{port}/v3"),
        };
        let out = Command::new(repo().join("scripts/keystone"))
            .arg("start")
            .arg(&ks.dir)
            .arg(port.to_string())
            .arg(&ks.db)
            .output()
            .expect("run scripts/keystone");
        assert!(
            out.status.success(),
            "scripts/keystone start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(ks)
    }
}

impl Drop for Keystone {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/keystone"))
            .arg("stop")
            .arg(&self.dir)
            .arg(&self.db)
            .status();
    }
}

struct Http {
    client: reqwest::Client,
}

impl Http {
    async fn send(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self.client.request(method.parse().unwrap(), url);
        if let Some(t) = token {
            req = req.header("X-Auth-Token", t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A project-scoped token for `user` (password auth); (token, project id).
    async fn token(&self, ks: &str, user: &str, password: &str, project: &str) -> (String, String) {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }});
        let r = self
            .client
            .post(format!("{ks}/auth/tokens"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "token for {user}");
        let token = r.headers()["x-subject-token"].to_str().unwrap().to_string();
        let v: Value = r.json().await.unwrap();
        (
            token,
            v["token"]["project"]["id"].as_str().unwrap().to_string(),
        )
    }

    /// POST to Keystone as admin; the created object.
    async fn create(&self, ks: &str, admin: &str, path: &str, body: Value) -> Value {
        let (status, _, v) = self
            .send("POST", &format!("{ks}{path}"), Some(admin), &[], Some(body))
            .await;
        assert_eq!(status, 201, "POST {path}: {v}");
        v
    }
}

fn error_kind(v: &Value) -> &str {
    v.as_object()
        .and_then(|m| m.keys().next())
        .map(String::as_str)
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn keystone_tokens_roles_and_policy() {
    let dir = tempfile::tempdir().unwrap();
    let Some(ks) = Keystone::start(dir.path()) else {
        eprintln!("skipped: the Keystone venv cannot be installed (no network?)");
        return;
    };
    let http = Http {
        client: reqwest::Client::new(),
    };
    let k = ks.url.as_str();
    let (admin, admin_project) = http.token(k, "admin", "kiln-admin", "admin").await;

    // A member user in its own project.
    let project = http
        .create(
            k,
            &admin,
            "/projects",
            json!({"project": {"name": "demo", "domain_id": "default"}}),
        )
        .await["project"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let user = http
        .create(
            k,
            &admin,
            "/users",
            json!({"user": {"name": "alice", "password": "alice-pw", "domain_id": "default"}}),
        )
        .await["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, _, roles) = http
        .send(
            "GET",
            &format!("{k}/roles?name=member"),
            Some(&admin),
            &[],
            None,
        )
        .await;
    let member = roles["roles"][0]["id"].as_str().unwrap();
    let (status, _, _) = http
        .send(
            "PUT",
            &format!("{k}/projects/{project}/users/{user}/roles/{member}"),
            Some(&admin),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (alice, alice_project) = http.token(k, "alice", "alice-pw", "demo").await;
    assert_eq!(alice_project, project);

    // Kiln with keystone auth.
    let listen = format!("127.0.0.1:{}", p::free_port());
    let cfg = dir.path().join("kiln.toml");
    std::fs::write(
        &cfg,
        format!(
            "[api]\nlisten = \"{listen}\"\nauth_strategy = \"keystone\"\n\
             [keystone]\nauth_url = \"{k}\"\nusername = \"kiln\"\npassword = \"kiln-service\"\n\
             project_name = \"service\"\ncache_ttl = {CACHE_TTL}\n"
        ),
    )
    .unwrap();
    let aio = Kiln::start("aio", dir.path(), Some(&cfg), &["all-in-one"]);
    let api = format!("http://{listen}/v3");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = http
            .client
            .get(format!("{api}/"))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200);
        if up {
            break;
        }
        assert!(Instant::now() < deadline, "API not up:\n{}", aio.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Discovery needs no token and advertises 3.0 .. 3.71.
    let (status, _, v) = http.send("GET", &format!("{api}/"), None, &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(v["versions"][0]["version"], "3.71");
    assert_eq!(v["versions"][0]["min_version"], "3.0");
    let (status, _, _) = http
        .send("GET", &format!("http://{listen}/"), None, &[], None)
        .await;
    assert_eq!(status, 300);

    // No token, a bogus token: keystonemiddleware's 401 with WWW-Authenticate.
    let uri = format!("Keystone uri=\"{}\"", k.trim_end_matches("/v3"));
    for token in [None, Some("not-a-token")] {
        let (status, headers, v) = http
            .send("GET", &format!("{api}/{project}/volumes"), token, &[], None)
            .await;
        assert_eq!(status, 401, "{token:?}: {v}");
        assert_eq!(headers["www-authenticate"], uri.as_str());
        assert_eq!(v["error"]["code"], 401);
    }

    // A member: its own project, with and without the project in the URL.
    let (status, headers, v) = http
        .send(
            "GET",
            &format!("{api}/{project}/volumes"),
            Some(&alice),
            &[("OpenStack-API-Version", "volume 3.44")],
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(headers["openstack-api-version"], "volume 3.44");
    assert_eq!(headers["vary"], "OpenStack-API-Version");
    let (status, _, v) = http
        .send(
            "GET",
            &format!("{api}/volumes/detail"),
            Some(&alice),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, _, v) = http
        .send(
            "GET",
            &format!("{api}/{project}/limits"),
            Some(&alice),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");

    // Another project's URL: Cinder's 400 "Malformed request url".
    let (status, _, v) = http
        .send(
            "GET",
            &format!("{api}/{admin_project}/volumes"),
            Some(&alice),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["badRequest"]["message"], "Malformed request url");

    // Admin-only rules refuse the member with 403 naming the rule.
    for (method, path, body) in [
        ("GET", "os-services".to_string(), None),
        ("GET", "scheduler-stats/get_pools".to_string(), None),
        (
            "POST",
            "types".to_string(),
            Some(json!({"volume_type": {"name": "gold"}})),
        ),
        ("GET", "qos-specs".to_string(), None),
        (
            "PUT",
            format!("os-quota-sets/{project}"),
            Some(json!({"quota_set": {"volumes": 99}})),
        ),
        (
            "POST",
            format!("volumes/{}/action", uuid::Uuid::new_v4()),
            Some(json!({"os-reset_status": {"status": "error"}})),
        ),
    ] {
        let (status, _, v) = http
            .send(
                method,
                &format!("{api}/{project}/{path}"),
                Some(&alice),
                &[],
                body,
            )
            .await;
        assert_eq!(status, 403, "{method} {path}: {v}");
        assert_eq!(error_kind(&v), "forbidden", "{v}");
        assert!(
            v["forbidden"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Policy doesn't allow"),
            "{v}"
        );
    }
    // A member's own quota is readable.
    let (status, _, v) = http
        .send(
            "GET",
            &format!("{api}/{project}/os-quota-sets/{project}"),
            Some(&alice),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");

    // The admin role: admin-only resources, and other projects through the URL.
    let (status, _, v) = http
        .send(
            "GET",
            &format!("{api}/{admin_project}/os-services"),
            Some(&admin),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["services"].as_array().unwrap().len() >= 3, "{v}");
    let (status, _, v) = http
        .send(
            "GET",
            &format!("{api}/{project}/volumes"),
            Some(&admin),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");

    // The cache: a revoked token is honoured until the TTL has run out, then refused.
    let (status, _, _) = http
        .send(
            "GET",
            &format!("{api}/{project}/volumes"),
            Some(&alice),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 200);
    let validated = Instant::now();
    let (status, _, _) = http
        .send(
            "DELETE",
            &format!("{k}/auth/tokens"),
            Some(&admin),
            &[("X-Subject-Token", alice.as_str())],
            None,
        )
        .await;
    assert_eq!(status, 204, "revoke");
    let (revoked, _, _) = http
        .send(
            "GET",
            &format!("{k}/auth/tokens"),
            Some(&admin),
            &[("X-Subject-Token", alice.as_str())],
            None,
        )
        .await;
    assert_eq!(revoked, 404, "Keystone must refuse the revoked token");
    let (status, _, _) = http
        .send(
            "GET",
            &format!("{api}/{project}/volumes"),
            Some(&alice),
            &[],
            None,
        )
        .await;
    // Only meaningful while the entry is surely fresh (a loaded machine may be slower).
    if validated.elapsed() < Duration::from_secs(CACHE_TTL - 1) {
        assert_eq!(status, 200, "a cached validation is used within the TTL");
    }
    tokio::time::sleep(Duration::from_secs(CACHE_TTL + 1)).await;
    let (status, headers, _) = http
        .send(
            "GET",
            &format!("{api}/{project}/volumes"),
            Some(&alice),
            &[],
            None,
        )
        .await;
    assert_eq!(status, 401, "the revoked token is refused after the TTL");
    assert!(headers.contains_key("www-authenticate"));

    drop(aio);
    drop(ks);
}
