//! The `kiln` binary: command-line parsing, logging set-up, and wiring the services of one
//! process together. Everything else lives in the library.

mod admin_cli;
mod plugin_cli;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};

use kiln::api::ApiManager;
use kiln::config::{Config, Overrides};
use kiln::db::{Db, DbOptions};
use kiln::scheduler::SchedulerManager;
use kiln::service::process::{self, ConfigSource, Starter};
use kiln::service::{Runtime, Service};
use kiln::volume::VolumeManager;

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Kiln: an OpenStack Cinder v3 compatible block-storage control plane"
)]
struct Cli {
    /// Configuration file (TOML). Without one, built-in defaults apply.
    #[arg(long, global = true, env = "KILN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone, Default)]
struct ApiFlags {
    /// Data directory (SQLite database, file-backend volumes); overrides `data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// API listen address, e.g. 127.0.0.1:8776; overrides `api.listen`.
    #[arg(long)]
    listen: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// API, scheduler and one volume service per enabled backend in one process, on SQLite
    /// and the in-process bus by default. Migrates the database itself.
    AllInOne(ApiFlags),
    /// The Cinder v3 REST API service.
    Api(ApiFlags),
    /// The scheduler service.
    Scheduler {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Volume services: one per enabled backend, or only the named ones.
    Volume {
        /// Serve only this backend (repeatable); default: every enabled backend.
        #[arg(long = "backend")]
        backends: Vec<String>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Scheduler plugin components: upload (validated by a scheduler), list; the author's
    /// new, build, test, inspect, record.
    Plugin {
        #[command(flatten)]
        endpoint: admin_cli::Endpoint,
        #[command(subcommand)]
        command: admin_cli::PluginCommand,
    },
    /// Scheduler chains: create a version, list, activate everywhere, roll back.
    Chain {
        #[command(flatten)]
        endpoint: admin_cli::Endpoint,
        #[command(subcommand)]
        command: admin_cli::ChainCommand,
    },
    /// Volume backends: show, hot-swap and roll back a backend's driver.
    Backend {
        #[command(flatten)]
        endpoint: admin_cli::Endpoint,
        #[command(subcommand)]
        command: admin_cli::BackendCommand,
    },
    /// Where would a volume go, and why (nothing is created).
    DryRun {
        #[command(flatten)]
        endpoint: admin_cli::Endpoint,
        #[command(flatten)]
        args: admin_cli::DryRunArgs,
    },
    /// Every service: host, zone, enabled / disabled (with reason), up / down, last heartbeat.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply every pending migration.
    Sync,
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.logging.level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if config.logging.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn db_options(config: &Config) -> DbOptions {
    DbOptions {
        max_connections: config.database.max_connections,
        sqlite_busy_timeout: Duration::from_millis(config.database.sqlite_busy_timeout_ms),
    }
}

/// Connect (retrying while unreachable) and make sure the schema is current.
async fn open_db(config: &Config, migrate: bool) -> Result<Db> {
    let db = Db::connect_with_retry(&config.database_url(), &db_options(config), None).await?;
    if migrate {
        db.migrate().await?;
    } else {
        db.check_migrated().await?;
    }
    Ok(db)
}

async fn run_services(
    source: ConfigSource,
    config: Config,
    which: Which,
    migrate: bool,
) -> Result<()> {
    let db = open_db(&config, migrate).await?;
    if config.messaging.url.starts_with("inproc://") && !matches!(which, Which::All) {
        tracing::warn!("messaging.url is inproc://: this process can only talk to services inside itself; use amqp:// to run services as separate processes");
    }
    let transport = kiln::rpc::connect(
        &config.messaging.url,
        &config.messaging.namespace,
        config.messaging.prefetch,
    )
    .await?;
    let rt = Runtime {
        db: db.clone(),
        transport,
        config: Arc::new(ArcSwap::from_pointee(config.clone())),
    };
    let mut starters: Vec<Starter> = Vec::new();
    if matches!(which, Which::All | Which::Scheduler) {
        starters.push(Box::new(|rt: Runtime| {
            Box::pin(async move { Service::start(Arc::new(SchedulerManager::new(&rt)), rt).await })
        }));
    }
    let backends = match &which {
        Which::All => config.enabled_backends.clone(),
        Which::Volume(only) if !only.is_empty() => only.clone(),
        Which::Volume(_) => config.enabled_backends.clone(),
        _ => Vec::new(),
    };
    for backend in backends {
        if !config.enabled_backends.contains(&backend) {
            bail!(
                "backend `{backend}` is not in enabled_backends ({:?})",
                config.enabled_backends
            );
        }
        let manager = VolumeManager::new(&rt, &backend)?;
        starters.push(Box::new(move |rt: Runtime| {
            Box::pin(async move { Service::start(Arc::new(manager), rt).await })
        }));
    }
    if matches!(which, Which::All | Which::Api) {
        starters.push(Box::new(|rt: Runtime| {
            Box::pin(async move { Service::start(Arc::new(ApiManager::new(&rt)), rt).await })
        }));
    }
    process::run(rt, starters, source).await?;
    db.close().await;
    Ok(())
}

enum Which {
    All,
    Api,
    Scheduler,
    Volume(Vec<String>),
}

async fn status(config: &Config, json: bool) -> Result<()> {
    let db = Db::connect_with_retry(
        &config.database_url(),
        &db_options(config),
        Some(Duration::from_secs(10)),
    )
    .await?;
    db.check_migrated().await?;
    let down_time = config.service_down_time();
    let rows = db.service_list().await?;
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|s| {
                serde_json::json!({
                    "binary": s.binary, "host": s.host, "zone": s.availability_zone,
                    "status": if s.disabled { "disabled" } else { "enabled" },
                    "state": if s.is_up(down_time) { "up" } else { "down" },
                    "disabled_reason": s.disabled_reason, "updated_at": s.updated_at,
                    "report_count": s.report_count, "rpc_version": s.rpc_current_version,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{:<16} {:<28} {:<10} {:<9} {:<6} {:<28} DISABLED REASON",
        "BINARY", "HOST", "ZONE", "STATUS", "STATE", "LAST HEARTBEAT"
    );
    for s in &rows {
        let last = s.updated_at.clone().unwrap_or_default();
        println!(
            "{:<16} {:<28} {:<10} {:<9} {:<6} {:<28} {}",
            s.binary,
            s.host,
            s.availability_zone,
            if s.disabled { "disabled" } else { "enabled" },
            if s.is_up(down_time) { "up" } else { "down" },
            format!("{last} ({})", kiln::db::services::age(&last)),
            s.disabled_reason.clone().unwrap_or_default()
        );
    }
    if rows.is_empty() {
        println!("(no services have registered yet)");
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let overrides = match &cli.command {
        Command::AllInOne(f) | Command::Api(f) => Overrides {
            data_dir: f.data_dir.clone(),
            listen: f.listen.clone(),
        },
        Command::Scheduler { data_dir } | Command::Volume { data_dir, .. } => Overrides {
            data_dir: data_dir.clone(),
            listen: None,
        },
        _ => Overrides::default(),
    };
    let source = ConfigSource {
        path: cli.config.clone(),
        overrides,
    };
    let config = match source.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kiln: {e}");
            std::process::exit(2);
        }
    };
    init_logging(&config);
    let runtime = tokio::runtime::Runtime::new().expect("start the tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::AllInOne(_) => run_services(source, config, Which::All, true).await,
            Command::Api(_) => run_services(source, config, Which::Api, false).await,
            Command::Scheduler { .. } => {
                run_services(source, config, Which::Scheduler, false).await
            }
            Command::Volume { backends, .. } => {
                run_services(source, config, Which::Volume(backends), false).await
            }
            Command::Db {
                command: DbCommand::Sync,
            } => {
                let db = Db::connect_with_retry(
                    &config.database_url(),
                    &db_options(&config),
                    Some(Duration::from_secs(30)),
                )
                .await?;
                db.migrate().await.context("kiln db sync")?;
                println!("database {} is up to date", db.url());
                Ok(())
            }
            Command::Status { json } => status(&config, json).await,
            Command::Plugin { endpoint, command } => {
                admin_cli::plugin(&config, &endpoint, command).await
            }
            Command::Chain { endpoint, command } => {
                admin_cli::chain(&config, &endpoint, command).await
            }
            Command::Backend { endpoint, command } => {
                admin_cli::backend(&config, &endpoint, command).await
            }
            Command::DryRun { endpoint, args } => {
                admin_cli::dry_run(&config, &endpoint, args).await
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Err(e) = result {
        eprintln!("kiln: {e:#}");
        std::process::exit(1);
    }
}
