//! A running `kiln all-in-one` driven over HTTP like a user would: start it with a config,
//! wait for its pools, create / show / settle volumes, read user messages.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{self as p, Kiln};

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// One HTTP request with a noauth token for project `demo`; (status, JSON body).
pub fn http(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    try_http(method, url, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// [`http`] at microversion `version` (e.g. `"3.27"`).
pub fn http_v(method: &str, url: &str, body: Option<Value>, version: &str) -> (u16, Value) {
    request(method, url, body, Some(version)).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub fn try_http(
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<(u16, Value), reqwest::Error> {
    request(method, url, body, None)
}

fn request(
    method: &str,
    url: &str,
    body: Option<Value>,
    version: Option<&str>,
) -> Result<(u16, Value), reqwest::Error> {
    block_on(async {
        let client = reqwest::Client::new();
        let mut req = client
            .request(method.parse().unwrap(), url)
            .header("X-Auth-Token", "alice:demo");
        if let Some(v) = version {
            req = req.header("OpenStack-API-Version", format!("volume {v}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    })
}

pub struct Cloud {
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT/v3/demo`
    pub api: String,
    pub aio: Kiln,
}

impl Cloud {
    pub fn start(config: &str) -> Cloud {
        Cloud::start_with_pools(config, config.matches("driver = \"file\"").count().max(1))
    }

    /// [`Cloud::start`] with backends of other drivers: returns once `pools` pools report.
    pub fn start_with_pools(config: &str, pools: usize) -> Cloud {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("kiln.toml");
        std::fs::write(&cfg, config).unwrap();
        let listen = format!("127.0.0.1:{}", p::free_port());
        let aio = Kiln::start(
            "aio",
            dir.path(),
            Some(&cfg),
            &["all-in-one", "--listen", &listen],
        );
        let api = format!("http://{listen}/v3/demo");
        let cloud = Cloud { dir, api, aio };
        cloud.wait_for_pools(pools);
        cloud
    }

    /// Kill the all-in-one (SIGKILL: a crash) and start it again on the same data directory,
    /// configuration and port; returns once its pools are reported again.
    pub fn crash_and_restart(&mut self) {
        self.aio.signal(libc::SIGKILL);
        self.aio.wait_exit(Duration::from_secs(10)).expect("killed");
        self.restart();
    }

    /// Start the all-in-one again after it exited (or was killed and waited for) on the same
    /// data directory, configuration and port; returns once its pools are reported again.
    pub fn restart(&mut self) {
        let cfg = self.dir.path().join("kiln.toml");
        let config = std::fs::read_to_string(&cfg).unwrap();
        let listen = self
            .api
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        self.aio = Kiln::start(
            "aio-restarted",
            self.dir.path(),
            Some(&cfg),
            &["all-in-one", "--listen", &listen],
        );
        self.wait_for_pools(config.matches("driver = \"file\"").count().max(1));
    }

    fn wait_for_pools(&self, backends: usize) {
        let cloud = self;
        let started = Instant::now();
        loop {
            let (status, body) = try_http(
                "GET",
                &format!("{}/scheduler-stats/get_pools", cloud.api),
                None,
            )
            .unwrap_or((0, Value::Null));
            if status == 200
                && body["pools"]
                    .as_array()
                    .is_some_and(|a| a.len() == backends)
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "pools never reported: {status} {body}\n{}",
                cloud.aio.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn volume_dir(&self, backend: &str) -> PathBuf {
        self.dir.path().join("kiln-data/volumes").join(backend)
    }

    pub fn create(&self, body: Value) -> (u16, Value) {
        http("POST", &format!("{}/volumes", self.api), Some(body))
    }

    pub fn show(&self, id: &str) -> (u16, Value) {
        http("GET", &format!("{}/volumes/{id}", self.api), None)
    }

    /// Wait until the volume leaves `creating` / `deleting`; its final view.
    pub fn settle(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let (status, body) = self.show(id);
            assert_eq!(status, 200, "{body}");
            let s = body["volume"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if s != "creating" && s != "deleting" {
                return body["volume"].clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "volume {id} stuck in {s}\n{}",
                self.aio.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the volume leaves `extending`; its view.
    pub fn settle_extend(&self, id: &str) -> Value {
        let started = Instant::now();
        loop {
            let (_, body) = self.show(id);
            if body["volume"]["status"] != "extending" {
                return body["volume"].clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "volume {id} stuck extending"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// User messages about `id`, read from the database.
    pub fn messages(&self, id: &str) -> Vec<String> {
        let url = format!(
            "sqlite://{}",
            self.dir.path().join("kiln-data/kiln.db").display()
        );
        block_on(async {
            use sqlx::Row;
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            sqlx::query("SELECT detail FROM messages WHERE resource_uuid = $1 ORDER BY created_at")
                .bind(id)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("detail"))
                .collect()
        })
    }
}

/// Project `demo`'s quota usage of `resource` (`in_use`), through the API.
pub fn in_use(cloud: &Cloud, resource: &str) -> i64 {
    let (status, body) = http(
        "GET",
        &format!("{}/os-quota-sets/demo?usage=true", cloud.api),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["quota_set"][resource]["in_use"]
        .as_i64()
        .unwrap_or_else(|| panic!("no usage of {resource}: {body}"))
}
