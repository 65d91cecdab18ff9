//! Configuration: one TOML file (`--config` / `KILN_CONFIG`), `KILN_*` environment overrides,
//! and defaults that let `kiln all-in-one` run with no file at all.
//!
//! Every key is documented in `etc/kiln.example.toml`; a unit test keeps that file and the
//! structs below in step. Loading never half-succeeds: a bad value stops start-up with the
//! key and the reason ([`ConfigError`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

mod backend;
mod keystone;
pub use backend::BackendConfig;
pub use keystone::KeystoneConfig;

/// Why a configuration could not be used. Each variant names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The whole configuration of one Kiln process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Name of this node in the services table; volume services append `@backend`.
    pub host: String,
    /// Availability zone reported by every service of this process.
    pub availability_zone: String,
    /// Where the embedded defaults keep their state (SQLite file, file-backend volumes).
    pub data_dir: PathBuf,
    /// Seconds between heartbeats into the services table.
    pub report_interval: u64,
    /// A service whose last heartbeat is older than this many seconds is down.
    pub service_down_time: u64,
    /// Seconds between runs of a service's periodic tasks.
    pub periodic_interval: u64,
    /// Upper bound, in seconds, of the random delay before the first periodic run.
    pub periodic_fuzzy_delay: u64,
    /// Seconds between capability reports of each volume service.
    pub backend_stats_polling_interval: u64,
    /// Seconds in-flight work may take to finish after SIGTERM / SIGINT.
    pub graceful_shutdown_timeout: u64,
    /// Backends served by `kiln volume` / `kiln all-in-one`: one volume service each.
    pub enabled_backends: Vec<String>,
    pub database: DatabaseConfig,
    pub messaging: MessagingConfig,
    pub api: ApiConfig,
    pub keystone: KeystoneConfig,
    pub logging: LoggingConfig,
    pub scheduler: SchedulerConfig,
    /// One table per backend name, e.g. `[backends.file]`.
    pub backends: BTreeMap<String, BackendConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`; empty = `sqlite://<data_dir>/kiln.db`.
    pub url: String,
    /// Connections in the read pool (PostgreSQL: the only pool).
    pub max_connections: u32,
    /// Milliseconds a SQLite statement waits for a lock before failing.
    pub sqlite_busy_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagingConfig {
    /// `inproc://` (one process) or `amqp://USER:PASS@HOST:PORT/VHOST` (RabbitMQ).
    pub url: String,
    /// Prefix of every queue and exchange name (Cinder's `control_exchange`).
    pub namespace: String,
    /// Seconds an RPC call waits for its reply.
    pub rpc_response_timeout: u64,
    /// Unacknowledged messages a consumer holds at once (AMQP prefetch).
    pub prefetch: u16,
    /// Handlers one service runs concurrently.
    pub max_concurrent_handlers: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address the REST API listens on.
    pub listen: String,
    /// `noauth` (token `user:project`) or `keystone` (tokens validated with Keystone, see
    /// `[keystone]`).
    pub auth_strategy: String,
    /// Name of the group type `GET /group_types/default` answers (Cinder's
    /// `default_group_type`); empty: none, and that request is a 404 as in Cinder.
    pub default_group_type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// A tracing filter, e.g. `info` or `kiln=debug,sqlx=warn`; `RUST_LOG` wins when set.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Placement attempts per volume, the first included (Cinder's `scheduler_max_attempts`).
    pub max_attempts: u32,
    /// The chain placing volumes until an operator activates another: `default` (Cinder's
    /// default filters and Capacity weigher), `chance` (random among the pools that pass) or
    /// `simple` (fewest volumes).
    pub chain: String,
    /// Where precompiled plugin artifacts are cached; default `<data_dir>/plugin-cache`.
    pub plugin_cache_dir: Option<PathBuf>,
    /// A standalone scheduler serves Prometheus `/metrics` on this IP:PORT when set (an
    /// all-in-one's scheduler metrics are on the API's `/metrics` already).
    pub metrics_listen: Option<String>,
    /// Seconds a volume may stay `creating` on no backend before the scheduler settles it
    /// (`error`, its quota given back, a user message): what a crash between scheduling
    /// steps, or a lost message, leaves behind. Checked at start and every
    /// `periodic_interval`.
    pub unplaced_create_timeout: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_attempts: 3,
            chain: "default".into(),
            plugin_cache_dir: None,
            metrics_listen: None,
            unplaced_create_timeout: 600,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let mut backends = BTreeMap::new();
        backends.insert("file".to_string(), BackendConfig::default());
        Config {
            host: default_host(),
            availability_zone: "nova".into(),
            data_dir: PathBuf::from("./kiln-data"),
            report_interval: 10,
            service_down_time: 60,
            periodic_interval: 60,
            periodic_fuzzy_delay: 60,
            backend_stats_polling_interval: 60,
            graceful_shutdown_timeout: 60,
            enabled_backends: vec!["file".into()],
            database: DatabaseConfig::default(),
            messaging: MessagingConfig::default(),
            api: ApiConfig::default(),
            keystone: KeystoneConfig::default(),
            logging: LoggingConfig::default(),
            scheduler: SchedulerConfig::default(),
            backends,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: String::new(),
            max_connections: 10,
            sqlite_busy_timeout_ms: 30_000,
        }
    }
}

impl Default for MessagingConfig {
    fn default() -> Self {
        MessagingConfig {
            url: "inproc://".into(),
            namespace: "kiln".into(),
            rpc_response_timeout: 60,
            prefetch: 64,
            max_concurrent_handlers: 64,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: "127.0.0.1:8776".into(),
            auth_strategy: "noauth".into(),
            default_group_type: String::new(),
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

fn default_host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into a buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if let Ok(name) = std::str::from_utf8(&buf[..end]) {
            if !name.is_empty() {
                return name.to_string();
            }
        }
    }
    "localhost".into()
}

/// Overrides given on the command line; they win over file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
}

impl Config {
    /// Load defaults ← file (if any) ← `KILN_*` environment ← command-line overrides, then
    /// validate. `KILN_DATABASE__URL` sets `database.url` (`__` separates nested keys).
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = path {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            figment = figment.merge(Toml::string(&text));
        }
        // Only variables naming a configuration key are configuration: others with the prefix
        // (the config file's own path, tool paths of `kiln plugin build`, test harness
        // variables such as KILN_BIN) are someone else's.
        let known: Vec<String> = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        };
        figment = figment.merge(
            Env::prefixed("KILN_")
                .filter(move |k| {
                    let top = k.as_str().split("__").next().unwrap_or_default();
                    known.iter().any(|n| n.eq_ignore_ascii_case(top))
                })
                .split("__"),
        );
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(render_figment_error(e)))?;
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(listen) = &overrides.listen {
            config.api.listen = listen.clone();
        }
        config.validate()?;
        Ok(config)
    }

    /// Check cross-key rules that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.host.is_empty() || self.host.contains('@') || self.host.contains('#') {
            return Err(invalid(
                "host",
                "must be non-empty and contain no '@' or '#'",
            ));
        }
        if self.report_interval == 0 {
            return Err(invalid("report_interval", "must be at least 1 second"));
        }
        if self.service_down_time <= self.report_interval {
            return Err(invalid(
                "service_down_time",
                format!(
                    "must be greater than report_interval ({} s), got {} s; otherwise healthy \
                     services would flap between up and down",
                    self.report_interval, self.service_down_time
                ),
            ));
        }
        if self.periodic_interval == 0 {
            return Err(invalid("periodic_interval", "must be at least 1 second"));
        }
        if self.backend_stats_polling_interval == 0 {
            return Err(invalid(
                "backend_stats_polling_interval",
                "must be at least 1 second",
            ));
        }
        if let Some(addr) = &self.scheduler.metrics_listen {
            if addr.parse::<SocketAddr>().is_err() {
                return Err(invalid(
                    "scheduler.metrics_listen",
                    format!("`{addr}` is not an IP:PORT address"),
                ));
            }
        }
        if self.scheduler.unplaced_create_timeout == 0 {
            return Err(invalid(
                "scheduler.unplaced_create_timeout",
                "must be at least 1 (seconds)",
            ));
        }
        if self.scheduler.max_attempts == 0 {
            return Err(invalid("scheduler.max_attempts", "must be at least 1"));
        }
        if crate::scheduler::chains::preset(&self.scheduler.chain).is_none() {
            return Err(invalid(
                "scheduler.chain",
                format!(
                    "`{}` is not a chain preset; use one of {}",
                    self.scheduler.chain,
                    crate::scheduler::chains::PRESETS.join(", ")
                ),
            ));
        }
        if self.api.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "api.listen",
                format!("`{}` is not an IP:PORT address", self.api.listen),
            ));
        }
        match self.api.auth_strategy.as_str() {
            "noauth" => {}
            "keystone" => self.keystone.validate()?,
            other => {
                return Err(invalid(
                    "api.auth_strategy",
                    format!("`{other}` is not supported; use `noauth` or `keystone`"),
                ))
            }
        }
        let url = self.database_url();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                format!("`{url}` is neither sqlite://PATH nor postgres://…"),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        let m = &self.messaging.url;
        if !(m.starts_with("inproc://") || m.starts_with("amqp://")) {
            return Err(invalid(
                "messaging.url",
                format!("`{m}` is neither inproc:// nor amqp://…"),
            ));
        }
        if self.messaging.namespace.is_empty() || self.messaging.namespace.contains(['.', ' ']) {
            return Err(invalid(
                "messaging.namespace",
                "must be non-empty, without '.' or spaces",
            ));
        }
        if self.messaging.rpc_response_timeout == 0 {
            return Err(invalid(
                "messaging.rpc_response_timeout",
                "must be at least 1 second",
            ));
        }
        if self.messaging.max_concurrent_handlers == 0 {
            return Err(invalid(
                "messaging.max_concurrent_handlers",
                "must be at least 1",
            ));
        }
        if !matches!(self.logging.format.as_str(), "text" | "json") {
            return Err(invalid("logging.format", "must be `text` or `json`"));
        }
        for name in &self.enabled_backends {
            if name.is_empty() || name.contains(['@', '#', '.', ' ']) {
                return Err(invalid(
                    "enabled_backends",
                    format!(
                        "backend name `{name}` must be non-empty, without '@', '#', '.' or spaces"
                    ),
                ));
            }
            let Some(backend) = self.backends.get(name) else {
                return Err(invalid(
                    "enabled_backends",
                    format!("backend `{name}` is enabled but has no [backends.{name}] table"),
                ));
            };
            let key = |k: &str| format!("backends.{name}.{k}");
            backend.validate(&key)?;
            if backend.reserved_percentage > 100 {
                return Err(invalid(
                    key("reserved_percentage"),
                    "must be between 0 and 100",
                ));
            }
            if backend.max_over_subscription_ratio.is_nan()
                || backend.max_over_subscription_ratio < 1.0
            {
                return Err(invalid(
                    key("max_over_subscription_ratio"),
                    "must be a number >= 1.0",
                ));
            }
        }
        Ok(())
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("kiln.db").display())
        } else {
            self.database.url.clone()
        }
    }

    /// Host name of the volume service for `backend`: `host@backend`.
    pub fn backend_host(&self, backend: &str) -> String {
        format!("{}@{}", self.host, backend)
    }

    /// The backend's zone, falling back to the process's.
    pub fn backend_zone(&self, backend: &str) -> String {
        self.backends
            .get(backend)
            .and_then(|b| b.availability_zone.clone())
            .unwrap_or_else(|| self.availability_zone.clone())
    }

    pub fn report_interval(&self) -> Duration {
        Duration::from_secs(self.report_interval)
    }
    pub fn service_down_time(&self) -> Duration {
        Duration::from_secs(self.service_down_time)
    }
    pub fn periodic_interval(&self) -> Duration {
        Duration::from_secs(self.periodic_interval)
    }
    pub fn periodic_fuzzy_delay(&self) -> Duration {
        Duration::from_secs(self.periodic_fuzzy_delay)
    }
    pub fn stats_interval(&self) -> Duration {
        Duration::from_secs(self.backend_stats_polling_interval)
    }
    pub fn grace_period(&self) -> Duration {
        Duration::from_secs(self.graceful_shutdown_timeout)
    }
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_secs(self.messaging.rpc_response_timeout)
    }
}

/// figment's errors name the key path ("for key `default.report_interval`"); strip its
/// internal profile prefix so the message names the key as the operator wrote it.
fn render_figment_error(e: figment::Error) -> String {
    e.into_iter()
        .map(|err| {
            let key = err.path.join(".");
            let msg = err.kind.to_string();
            if key.is_empty() {
                msg
            } else {
                format!("key `{key}`: {msg}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(toml: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        std::fs::write(&path, toml).unwrap();
        Config::load(Some(&path), &Overrides::default())
    }

    #[test]
    fn defaults_run_all_in_one_without_a_file() {
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(c.api.listen, "127.0.0.1:8776");
        assert_eq!(c.report_interval, 10);
        assert_eq!(c.service_down_time, 60);
        assert_eq!(c.data_dir, PathBuf::from("./kiln-data"));
        assert_eq!(c.database_url(), "sqlite://./kiln-data/kiln.db");
        assert_eq!(c.messaging.url, "inproc://");
        assert_eq!(c.enabled_backends, vec!["file"]);
    }

    #[test]
    fn service_down_time_must_exceed_report_interval() {
        let err = load_str("report_interval = 10\nservice_down_time = 10\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("service_down_time"), "{msg}");
        assert!(msg.contains("greater than report_interval"), "{msg}");
    }

    #[test]
    fn bad_type_names_the_key() {
        let msg = load_str("report_interval = \"ten\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("report_interval"), "{msg}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let msg = load_str("[database]\nurll = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("urll"), "{msg}");
    }

    #[test]
    fn enabled_backend_needs_a_table() {
        let msg = load_str("enabled_backends = [\"lvm1\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("enabled_backends") && msg.contains("[backends.lvm1]"),
            "{msg}"
        );
    }

    #[test]
    fn overrides_win() {
        let o = Overrides {
            data_dir: Some("/tmp/x".into()),
            listen: Some("127.0.0.1:9999".into()),
        };
        let c = Config::load(None, &o).unwrap();
        assert_eq!(c.api.listen, "127.0.0.1:9999");
        assert_eq!(c.database_url(), "sqlite:///tmp/x/kiln.db");
    }

    #[test]
    fn example_config_is_complete_and_valid() {
        // etc/kiln.example.toml documents every key: it must parse with deny_unknown_fields
        // and, serialised back, carry the same set of keys as the defaults.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/kiln.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed: Config = toml::from_str(&text).expect("example config parses");
        parsed.validate().expect("example config is valid");
        fn keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
            if let toml::Value::Table(t) = v {
                for (k, v) in t {
                    let p = format!("{prefix}{k}");
                    out.push(p.clone());
                    keys(v, &format!("{p}."), out);
                }
            }
        }
        let documented: toml::Value = toml::from_str(&text).unwrap();
        let mut doc_keys = vec![];
        keys(&documented, "", &mut doc_keys);
        let mut all = Config::default();
        all.backends.get_mut("file").unwrap().volume_backend_name = Some("x".into());
        all.backends.get_mut("file").unwrap().availability_zone = Some("x".into());
        all.backends.get_mut("file").unwrap().path = Some("x".into());
        all.backends.get_mut("file").unwrap().volumes_dir = Some("x".into());
        all.backends.get_mut("file").unwrap().plugin = Some("x".into());
        all.backends.get_mut("file").unwrap().plugin_manifest = Some("x".into());
        all.backends.get_mut("file").unwrap().plugin_exec_allow = Some(vec![]);
        let mut default_keys = vec![];
        keys(&toml::Value::try_from(&all).unwrap(), "", &mut default_keys);
        for k in default_keys {
            assert!(
                doc_keys.contains(&k),
                "key `{k}` is not documented in etc/kiln.example.toml"
            );
        }
    }
}
