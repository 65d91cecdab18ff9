//! `kiln plugin new | build | test | inspect | record`: the plugin author's commands (the
//! binary edge over `kiln::plugin_author`; `upload` and `list` are in admin_cli.rs). All but
//! `record` work offline, without a running Kiln.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use kiln::plugin_author::templates::{self, SdkSource};
use kiln::plugin_author::{
    build, inspect, manifest, new, offline, pool_file, Kind, Language, Manifest,
};

#[derive(Args)]
pub struct NewArgs {
    /// The project's name: lower-case letters, digits and dashes (`min-free-filter`).
    pub name: String,
    /// rust, c, zig, python or js.
    #[arg(long)]
    pub lang: String,
    /// filter or weigher.
    #[arg(long)]
    pub kind: String,
    /// The project directory (must not exist or be empty); default: ./NAME.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Rust: the kiln-plugin-sdk to depend on, a `plugin-sdk` directory; default: the one of
    /// the Kiln checkout this binary was built from, when it is still there.
    #[arg(long, conflicts_with = "sdk_git")]
    pub sdk_path: Option<PathBuf>,
    /// Rust: depend on kiln-plugin-sdk from this git repository (a Kiln checkout) instead.
    #[arg(long)]
    pub sdk_git: Option<String>,
}

#[derive(Args)]
pub struct TestArgs {
    /// The component (`kiln plugin build` writes build/NAME.wasm).
    pub plugin: PathBuf,
    /// Pools: a file from `kiln plugin record` (or written by hand, same shape).
    #[arg(long)]
    pub pools: PathBuf,
    /// The request: JSON in the shape of the WIT `request` record, e.g. {"size-gb": 10}.
    #[arg(long)]
    pub request: PathBuf,
    /// A setting of the plugin, KEY=VALUE (repeatable), as a chain definition's `config`.
    #[arg(long = "setting")]
    pub settings: Vec<String>,
    /// Only these pool ids are candidates (comma-separated); default: every pool.
    #[arg(long, value_delimiter = ',')]
    pub candidates: Option<Vec<u32>>,
    /// Deadline of one call in milliseconds, as a chain stage's `limits.call_deadline_ms`
    /// (default 50: what the scheduler gives a stage without limits).
    #[arg(long)]
    pub call_deadline_ms: Option<u64>,
    /// Where compiled components are kept between runs; default:
    /// $XDG_CACHE_HOME/kiln/precompiled or ~/.cache/kiln/precompiled.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Compile the component on every run and keep nothing.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

pub fn new(args: NewArgs) -> Result<()> {
    let m = Manifest::new(
        &args.name,
        Kind::parse(&args.kind)?,
        Language::parse(&args.lang)?,
    )?;
    let sdk = match (args.sdk_path, args.sdk_git) {
        (Some(p), _) => Some(SdkSource::Path(p)),
        (None, Some(url)) => Some(SdkSource::Git(url)),
        (None, None) => None,
    };
    let dir = manifest::project_dir(&args.name, args.dir.as_deref());
    let s = new::scaffold(&m, &dir, sdk)?;
    println!(
        "created {} ({} {} in {}, world {})",
        s.dir.display(),
        m.kind.as_str(),
        m.display_name(),
        m.language.as_str(),
        m.world
    );
    let setup = templates::setup(m.language).map_or_else(String::new, |cmd| format!("{cmd} && "));
    println!(
        "next: cd {} && {setup}kiln plugin build && kiln plugin inspect {}",
        s.dir.display(),
        m.output().display()
    );
    Ok(())
}

pub fn build(dir: Option<PathBuf>) -> Result<()> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let out = build::build(&dir)?;
    println!("{}", out.display());
    Ok(())
}

pub fn inspect(file: PathBuf) -> Result<()> {
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let found = inspect::inspect(&bytes)?;
    print!("{}", inspect::render(&found));
    if !found.ok() {
        bail!(
            "{}: Kiln would refuse this component ({} problem(s) above)",
            file.display(),
            found.problems.len()
        );
    }
    Ok(())
}

pub fn test(args: TestArgs) -> Result<()> {
    let bytes = std::fs::read(&args.plugin)
        .with_context(|| format!("cannot read {}", args.plugin.display()))?;
    let pools = pool_file::read_pools(&args.pools)?;
    let request = pool_file::read_request(&args.request)?;
    let mut config = BTreeMap::new();
    for kv in &args.settings {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--setting {kv}: expected KEY=VALUE"))?;
        config.insert(k.to_string(), v.to_string());
    }
    let limits = kiln::scheduler::chains::StageLimits {
        call_deadline_ms: args.call_deadline_ms,
        ..Default::default()
    }
    .resolve()
    .map_err(|e| anyhow::anyhow!("--call-deadline-ms: {e}"))?;
    let cache_dir = match (args.no_cache, args.cache_dir) {
        (true, _) => None,
        (false, Some(dir)) => Some(dir),
        (false, None) => offline::default_cache_dir(),
    };
    let opts = offline::Options {
        candidates: args.candidates,
        config,
        limits,
        cache_dir,
    };
    let report = offline::run(&bytes, &pools, &request, opts)?;
    print!("{}", offline::render(&report));
    if !report.problems.is_empty() {
        bail!(
            "the plugin misbehaved ({} problem(s) above)",
            report.problems.len()
        );
    }
    Ok(())
}

/// `kiln plugin record`: the scheduler's pools into `out`.
pub async fn record(base: &str, token: &str, out: PathBuf) -> Result<()> {
    let req = reqwest::Client::new().get(format!("{base}/kiln-scheduler/pools"));
    let body = crate::admin_cli::send(req, token).await?;
    let file: pool_file::PoolFile =
        serde_json::from_value(body).context("the API answered something else than pools")?;
    std::fs::write(&out, serde_json::to_string_pretty(&file)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "{} pools of scheduler {} written to {}",
        file.pools.len(),
        file.scheduler.as_deref().unwrap_or("?"),
        out.display()
    );
    Ok(())
}
