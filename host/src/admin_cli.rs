//! `kiln plugin …`, `kiln chain …` and `kiln dry-run`: the scheduler-plugin admin commands of
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

async fn send(req: reqwest::RequestBuilder, token: &str) -> Result<Value> {
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
