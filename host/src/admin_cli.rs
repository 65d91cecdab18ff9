//! `kiln plugin upload|list` (the author's `new|build|test|inspect|record` are in plugin_cli.rs), `kiln chain …`, `kiln dry-run` and `kiln backend driver-…`: the plugin admin commands of
//! the `kiln` binary (declared by main.rs only). They talk to a running API over HTTP like any
//! client, so they work against a remote deployment as well as an all-in-one.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use kiln::config::Config;

/// Where the API is and who we are.
#[derive(Args, Clone)]
pub struct Endpoint {
    /// The API's v3 root including a project, e.g. http://127.0.0.1:8776/v3/admin.
    /// Default: `api.listen` of the configuration, project `admin`.
    #[arg(long, env = "KILN_URL", global = true)]
    pub url: Option<String>,
    /// Auth token (noauth: USER:PROJECT).
    #[arg(long, env = "KILN_TOKEN", default_value = "admin:admin", global = true)]
    pub token: String,
}

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Upload a component; the scheduler validates it (world, trial run) before it is kept.
    Upload {
        file: PathBuf,
        /// `filter` or `weigher`.
        #[arg(long)]
        kind: String,
        /// Name shown in listings; default: the file's stem.
        #[arg(long)]
        name: Option<String>,
    },
    /// Uploaded components.
    List,
    /// Scaffold a plugin project (templates for rust, c, zig, python, js).
    New(crate::plugin_cli::NewArgs),
    /// Build the project in DIR (default: .) into build/NAME.wasm, a checked component.
    Build { dir: Option<PathBuf> },
    /// Run a component offline over recorded pools: each pool's verdict or weight.
    Test(crate::plugin_cli::TestArgs),
    /// A component's world, imports and exports; fails on imports its world does not grant.
    Inspect { file: PathBuf },
    /// Save the running scheduler's pools (WIT shape) for `kiln plugin test`.
    Record {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum ChainCommand {
    /// Record a chain version from a JSON file (a ChainSpec: name, filters, weighers).
    Create { file: PathBuf },
    /// Chain versions and the active one.
    List,
    /// Validate and activate a version on every scheduler.
    Activate { version: i64 },
    /// Activate the chain that was active before the current one.
    Rollback,
}

#[derive(Args)]
pub struct DryRunArgs {
    /// Volume size in GiB.
    #[arg(long)]
    pub size: u64,
    /// Availability zone.
    #[arg(long)]
    pub zone: Option<String>,
    /// Volume-type extra spec KEY=VALUE (repeatable).
    #[arg(long = "extra-spec")]
    pub extra_specs: Vec<String>,
}

fn base(config: &Config, ep: &Endpoint) -> String {
    ep.url
        .clone()
        .unwrap_or_else(|| format!("http://{}/v3/admin", config.api.listen))
        .trim_end_matches('/')
        .to_string()
}

pub(crate) async fn send(req: reqwest::RequestBuilder, token: &str) -> Result<Value> {
    let resp = req
        .header("X-Auth-Token", token)
        .send()
        .await
        .context("cannot reach the Kiln API; is it running (see --url)?")?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = body
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|e| e["message"].as_str())
            .unwrap_or("no details");
        bail!("{status}: {msg}");
    }
    Ok(body)
}

fn print(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn plugin(config: &Config, ep: &Endpoint, cmd: PluginCommand) -> Result<()> {
    let client = reqwest::Client::new();
    let base = base(config, ep);
    match cmd {
        PluginCommand::Upload { file, kind, name } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let name = name.unwrap_or_else(|| {
                file.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let req = client
                .post(format!("{base}/kiln-plugins"))
                .query(&[("name", name.as_str()), ("kind", kind.as_str())])
                .header("Content-Type", "application/wasm")
                .body(bytes);
            print(&send(req, &ep.token).await?)
        }
        PluginCommand::List => {
            print(&send(client.get(format!("{base}/kiln-plugins")), &ep.token).await?)
        }
        PluginCommand::New(args) => crate::plugin_cli::new(args),
        PluginCommand::Build { dir } => crate::plugin_cli::build(dir),
        PluginCommand::Test(args) => crate::plugin_cli::test(args),
        PluginCommand::Inspect { file } => crate::plugin_cli::inspect(file),
        PluginCommand::Record { out } => crate::plugin_cli::record(&base, &ep.token, out).await,
    }
}

pub async fn chain(config: &Config, ep: &Endpoint, cmd: ChainCommand) -> Result<()> {
    let client = reqwest::Client::new();
    let base = base(config, ep);
    let req = match cmd {
        ChainCommand::Create { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let spec: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let body = if spec.get("chain").is_some() {
                spec
            } else {
                json!({ "chain": spec })
            };
            client.post(format!("{base}/kiln-chains")).json(&body)
        }
        ChainCommand::List => client.get(format!("{base}/kiln-chains")),
        ChainCommand::Activate { version } => {
            client.post(format!("{base}/kiln-chains/{version}/activate"))
        }
        ChainCommand::Rollback => client.post(format!("{base}/kiln-chains/rollback")),
    };
    print(&send(req, &ep.token).await?)
}

pub async fn dry_run(config: &Config, ep: &Endpoint, args: DryRunArgs) -> Result<()> {
    let mut specs = serde_json::Map::new();
    for kv in &args.extra_specs {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--extra-spec {kv}: expected KEY=VALUE"))?;
        specs.insert(k.to_string(), Value::String(v.to_string()));
    }
    let mut volume = json!({ "size": args.size });
    if let Some(z) = args.zone {
        volume["availability_zone"] = json!(z);
    }
    if !specs.is_empty() {
        volume["extra_specs"] = Value::Object(specs);
    }
    let req = reqwest::Client::new()
        .post(format!("{}/kiln-scheduler/dry-run", base(config, ep)))
        .json(&json!({ "volume": volume }));
    print(&send(req, &ep.token).await?)
}

#[derive(Subcommand)]
pub enum BackendCommand {
    /// The driver a backend serves with, and its swap history.
    #[command(name = "driver-show")]
    Show {
        /// `host@backend`.
        backend: String,
    },
    /// Replace a backend's driver on the running volume service: validate, drain, swap.
    #[command(name = "driver-swap")]
    Swap {
        /// `host@backend`.
        backend: String,
        /// An uploaded driver component (`sha256:<hex>`).
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        component: Option<String>,
        /// Upload this component (kind `driver`) first, then swap to it.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Name of the uploaded component; default: the file's stem.
        #[arg(long, requires = "file")]
        name: Option<String>,
        /// Exec manifest (TOML) for the new driver; default: the backend's configured one.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Seconds to wait for operations in flight (default 60).
        #[arg(long)]
        drain_timeout: Option<u64>,
    },
    /// Return a backend to the driver it served with before the current one.
    #[command(name = "driver-rollback")]
    Rollback {
        backend: String,
        #[arg(long)]
        drain_timeout: Option<u64>,
    },
}

pub async fn backend(config: &Config, ep: &Endpoint, cmd: BackendCommand) -> Result<()> {
    let client = reqwest::Client::new();
    let base = base(config, ep);
    let req = match cmd {
        BackendCommand::Show { backend } => {
            client.get(format!("{base}/kiln-backends/{backend}/driver"))
        }
        BackendCommand::Swap {
            backend,
            component,
            file,
            name,
            manifest,
            drain_timeout,
        } => {
            let component = match (component, file) {
                (Some(c), _) => c,
                (None, Some(file)) => {
                    let bytes = std::fs::read(&file)
                        .with_context(|| format!("cannot read {}", file.display()))?;
                    let name = name.unwrap_or_else(|| {
                        file.file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    });
                    let upload = client
                        .post(format!("{base}/kiln-plugins"))
                        .query(&[("name", name.as_str()), ("kind", "driver")])
                        .header("Content-Type", "application/wasm")
                        .body(bytes);
                    let uploaded = send(upload, &ep.token).await?;
                    let sha = uploaded["plugin"]["sha256"]
                        .as_str()
                        .context("the upload answered no sha256")?;
                    format!("sha256:{sha}")
                }
                (None, None) => bail!("give --component or --file"),
            };
            let manifest = match manifest {
                Some(p) => Some(
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("cannot read {}", p.display()))?,
                ),
                None => None,
            };
            let mut driver = json!({ "component": component });
            if let Some(m) = manifest {
                driver["manifest"] = json!(m);
            }
            if let Some(t) = drain_timeout {
                driver["drain_timeout"] = json!(t);
            }
            client
                .post(format!("{base}/kiln-backends/{backend}/driver"))
                .json(&json!({ "driver": driver }))
        }
        BackendCommand::Rollback {
            backend,
            drain_timeout,
        } => {
            let mut body = json!({});
            if let Some(t) = drain_timeout {
                body["drain_timeout"] = json!(t);
            }
            client
                .post(format!("{base}/kiln-backends/{backend}/driver/rollback"))
                .json(&json!({ "rollback": body }))
        }
    };
    print(&send(req, &ep.token).await?)
}
