//! Service lifecycle (DESIGN.md §3): what every Kiln service — api, scheduler, volume — does
//! around its own work. Start = `init_host`, find-or-create the services row, consumers on
//! `topic`, `topic.host` and the `topic` fanout, heartbeat every `report_interval`, periodic
//! tasks after a random delay up to `periodic_fuzzy_delay`. Stop = stop consuming, let
//! in-flight handlers finish within the grace period, end the background tasks.
//!
//! The per-service behaviour is a [`Manager`]; the process-level loop (signals, reload,
//! several services in one process) lives in [`process`].

pub mod process;
pub mod supervisor;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Config;
use crate::db::services::Registration;
use crate::db::{Db, DbError};
use crate::rpc::server::RpcServer;
use crate::rpc::{Dispatcher, RpcClient, RpcError, Transport, Version};
use supervisor::{supervise, Backoff};

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("{service}: init_host failed: {reason}")]
    InitHost { service: String, reason: String },
}

/// What a service is, as recorded in the services table.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// `kiln-api`, `kiln-scheduler`, `kiln-volume`.
    pub binary: &'static str,
    /// RPC topic: `api`, `scheduler`, `volume`.
    pub topic: &'static str,
    /// `host` or `host@backend`.
    pub host: String,
    pub availability_zone: String,
    pub rpc_version: Version,
}

/// Shared by every service of one process.
#[derive(Clone)]
pub struct Runtime {
    pub db: Db,
    pub transport: Arc<dyn Transport>,
    /// The live configuration; SIGHUP swaps it.
    pub config: Arc<ArcSwap<Config>>,
}

impl Runtime {
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// An RPC client for `topic`, with the configured call timeout.
    pub fn client(&self, topic: &str) -> RpcClient {
        RpcClient::new(self.transport.clone(), topic, self.config().rpc_timeout())
    }

    /// Cap `client` at the minimum RPC version recorded by the services of `binary`.
    pub async fn refresh_version_cap(
        &self,
        client: &RpcClient,
        binary: &str,
    ) -> Result<(), DbError> {
        let cap = self.db.service_min_rpc_version(binary).await?;
        if cap != client.version_cap() {
            info!(topic = client.topic(), cap = ?cap.map(|c| c.to_string()), "RPC version cap changed");
        }
        client.set_version_cap(cap);
        Ok(())
    }
}

type TaskFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A periodic task of a manager: run every `interval(config)` after a fuzzy first delay.
pub struct PeriodicTask {
    pub name: &'static str,
    pub interval: fn(&Config) -> Duration,
    pub run: Arc<dyn Fn() -> TaskFuture + Send + Sync>,
}

/// A long-running task of a manager (e.g. the HTTP server), restarted if it crashes.
pub struct BackgroundTask {
    pub name: &'static str,
    pub run: Box<dyn FnMut() -> TaskFuture + Send>,
}

/// The behaviour of one service.
#[async_trait]
pub trait Manager: Send + Sync + 'static {
    fn spec(&self) -> ServiceSpec;

    /// Prepare the host before the service registers and consumes (drivers, recovery).
    async fn init_host(&self) -> Result<(), String> {
        Ok(())
    }

    /// RPC methods served on `topic`, `topic.host` and the fanout; `None`: no consumers.
    fn dispatcher(self: Arc<Self>) -> Option<Dispatcher> {
        None
    }

    /// Runs once the consumers are up (e.g. the scheduler asks for capability reports).
    async fn after_start(&self) -> Result<(), String> {
        Ok(())
    }

    fn periodic_tasks(self: Arc<Self>) -> Vec<PeriodicTask> {
        Vec::new()
    }

    fn background_tasks(self: Arc<Self>) -> Vec<BackgroundTask> {
        Vec::new()
    }

    /// The configuration was reloaded (SIGHUP). An error says what of the new configuration
    /// this service could not apply (it keeps running on what it had); the caller logs it.
    async fn reload(&self, _config: &Config) -> Result<(), String> {
        Ok(())
    }

    /// The service is stopping; in-flight RPC handlers have finished or timed out.
    async fn stop(&self, _grace: Duration) {}
}

/// A running service.
pub struct Service {
    spec: ServiceSpec,
    manager: Arc<dyn ManagerDyn>,
    rpc: Option<RpcServer>,
    tasks: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
}

/// Object-safe view of a manager used after start.
#[async_trait]
trait ManagerDyn: Send + Sync {
    async fn reload(&self, config: &Config) -> Result<(), String>;
    async fn stop(&self, grace: Duration);
}

#[async_trait]
impl<M: Manager> ManagerDyn for M {
    async fn reload(&self, config: &Config) -> Result<(), String> {
        Manager::reload(self, config).await
    }
    async fn stop(&self, grace: Duration) {
        Manager::stop(self, grace).await
    }
}

/// Retry `op` with back-off while it fails, logging each failure; only a shutdown stops it.
async fn retry_forever<T, E: std::fmt::Display, Fut: Future<Output = Result<T, E>>>(
    what: &str,
    service: &str,
    shutdown: &mut watch::Receiver<bool>,
    mut op: impl FnMut() -> Fut,
) -> Option<T> {
    let mut delay = Duration::from_millis(200);
    loop {
        match op().await {
            Ok(v) => return Some(v),
            Err(e) => {
                warn!(service, error = %e, retry_in_ms = delay.as_millis() as u64, "{what} failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return None,
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

impl Service {
    /// Start `manager` on `rt`. Returns once the service is registered and consuming.
    pub async fn start<M: Manager>(manager: Arc<M>, rt: Runtime) -> Result<Service, ServiceError> {
        let spec = manager.spec();
        let name = format!("{}@{}", spec.binary, spec.host);
        let (shutdown, mut shutdown_rx) = watch::channel(false);
        info!(service = %name, "starting");

        manager
            .init_host()
            .await
            .map_err(|reason| ServiceError::InitHost {
                service: name.clone(),
                reason,
            })?;

        let reg = Registration {
            host: &spec.host,
            binary: spec.binary,
            topic: spec.topic,
            availability_zone: &spec.availability_zone,
            rpc_version: spec.rpc_version,
        };
        let Some(row) = retry_forever(
            "registering in the services table",
            &name,
            &mut shutdown_rx,
            || rt.db.service_register(&reg),
        )
        .await
        else {
            return Err(ServiceError::Rpc(RpcError::Closed));
        };

        let rpc = match manager.clone().dispatcher() {
            Some(dispatcher) => {
                let listener = retry_forever(
                    "subscribing to the message bus",
                    &name,
                    &mut shutdown_rx,
                    || rt.transport.listen(spec.topic, &spec.host),
                )
                .await
                .ok_or(ServiceError::Rpc(RpcError::Closed))?;
                let max = rt.config().messaging.max_concurrent_handlers;
                Some(RpcServer::spawn(
                    rt.transport.clone(),
                    listener,
                    Arc::new(dispatcher),
                    max,
                ))
            }
            None => None,
        };

        let mut tasks = vec![heartbeat(
            &rt,
            spec.clone(),
            row.id,
            name.clone(),
            shutdown.subscribe(),
        )];
        for task in manager.clone().periodic_tasks() {
            tasks.push(periodic(&rt, task, name.clone(), shutdown.subscribe()));
        }
        for mut task in manager.clone().background_tasks() {
            tasks.push(supervise(
                task.name,
                name.clone(),
                shutdown.subscribe(),
                Backoff::default(),
                move || (task.run)(),
            ));
        }

        if let Err(e) = manager.after_start().await {
            warn!(service = %name, error = %e, "post-start step failed; the service runs on");
        }
        info!(service = %name, service_id = row.id, transport = %rt.transport.describe(), "started");
        Ok(Service {
            spec,
            manager,
            rpc,
            tasks,
            shutdown,
        })
    }

    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    pub async fn reload(&self, config: &Config) -> Result<(), String> {
        self.manager.reload(config).await
    }

    /// Stop consuming, wait up to `grace` for in-flight handlers, end background tasks.
    /// Returns `false` when handlers were still running at the deadline.
    pub async fn stop(self, grace: Duration) -> bool {
        let name = format!("{}@{}", self.spec.binary, self.spec.host);
        info!(service = %name, grace_s = grace.as_secs(), "stopping");
        let started = std::time::Instant::now();
        let finished = match self.rpc {
            Some(rpc) => rpc.shutdown(grace).await,
            None => true,
        };
        if !finished {
            warn!(service = %name, "in-flight RPC handlers did not finish within the grace period; their messages will be redelivered");
        }
        let _ = self.shutdown.send(true);
        let left = grace.saturating_sub(started.elapsed());
        self.manager.stop(left).await;
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .is_err()
            {
                warn!(service = %name, "a background task did not stop in time");
            }
        }
        info!(service = %name, "stopped");
        finished
    }
}

/// Bump the services row every `report_interval`. Database trouble is logged and retried at
/// the next beat (the service simply shows as down meanwhile); a deleted row is re-created.
fn heartbeat(
    rt: &Runtime,
    spec: ServiceSpec,
    id: i64,
    name: String,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let rt = rt.clone();
    supervise(
        "heartbeat",
        name.clone(),
        shutdown,
        Backoff::default(),
        move || {
            let rt = rt.clone();
            let spec = spec.clone();
            let name = name.clone();
            let mut id_now = id;
            async move {
                let mut lost = false;
                loop {
                    tokio::time::sleep(rt.config().report_interval()).await;
                    match rt.db.service_heartbeat(id_now).await {
                        Ok(true) => {
                            if lost {
                                info!(service = %name, "database connection recovered; heartbeats resumed");
                                lost = false;
                            }
                        }
                        Ok(false) => {
                            warn!(service = %name, "service row disappeared; registering again");
                            let reg = Registration {
                                host: &spec.host,
                                binary: spec.binary,
                                topic: spec.topic,
                                availability_zone: &spec.availability_zone,
                                rpc_version: spec.rpc_version,
                            };
                            match rt.db.service_register(&reg).await {
                                Ok(row) => id_now = row.id,
                                Err(e) => {
                                    warn!(service = %name, error = %e, "cannot register again; will retry")
                                }
                            }
                        }
                        Err(e) => {
                            lost = true;
                            warn!(service = %name, error = %e, "cannot report state to the database; will retry");
                        }
                    }
                }
            }
        },
    )
}

/// Run `task` every `interval(config)` after a random first delay in `0..=periodic_fuzzy_delay`.
fn periodic(
    rt: &Runtime,
    task: PeriodicTask,
    name: String,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let rt = rt.clone();
    let task_name = task.name;
    let run = task.run.clone();
    let interval = task.interval;
    supervise(
        task_name,
        name.clone(),
        shutdown,
        Backoff::default(),
        move || {
            let rt = rt.clone();
            let run = run.clone();
            let name = name.clone();
            async move {
                let fuzzy = rt.config().periodic_fuzzy_delay();
                let first = if fuzzy.is_zero() {
                    Duration::ZERO
                } else {
                    rand::rng().random_range(Duration::ZERO..=fuzzy)
                };
                tokio::time::sleep(first).await;
                loop {
                    if let Err(e) = run().await {
                        warn!(service = %name, task = task_name, error = %e, "periodic task failed; will run again next interval");
                    }
                    tokio::time::sleep(interval(&rt.config())).await;
                }
            }
        },
    )
}
