//! The scheduler service: holds every volume service's capability reports in its
//! [`host_manager::HostManager`], keeps the active plugin chain's pool table in step with them
//! ([`pools`]), and places volumes ([`filter_scheduler`], [`placement`]). On start it asks
//! every volume service to report at once, so a restarted scheduler is never blind for a
//! whole polling interval.

pub mod chains;
pub mod extend;
mod filter_scheduler;
pub mod groups;
pub mod host_manager;
pub mod hot_swap;
pub mod migrate;
pub mod placement;
pub mod pools;
pub mod retype;
pub mod shadow;
mod state_lock;

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::config::Config;
use crate::drivers::BackendStats;
use crate::plugins::{Chain, PluginEngine};
use crate::rpc::{Dispatcher, RemoteError, RequestContext, RpcClient, RpcError, Version};
use crate::service::{Manager, PeriodicTask, Runtime, ServiceSpec};
use crate::volume;
use host_manager::{HostManager, PoolView};
use pools::PoolIndex;

pub const BINARY: &str = "kiln-scheduler";
pub const TOPIC: &str = "scheduler";
/// The scheduler RPC API this build serves. 3.0: update_service_capabilities, get_pools;
/// 3.1: create_volume; 3.2: activate_chain, validate_chain, dry_run; 3.3: extend_volume;
/// 3.4: shadow_chain, shadow_report; 3.5: retype_volume; 3.6: plugin_pools; 3.7: create_group,
/// create_volume with `group_backend`; 3.8: migrate_volume (and retype_volume migrating with
/// `migration_policy = on-demand`).
pub const RPC_VERSION: Version = Version::new(3, 8);

/// Arguments of `shadow_chain`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShadowArgs {
    pub version: Option<i64>,
}

/// A volume service's stats, fanned out to every scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilityReport {
    /// Always `volume`.
    pub service_name: String,
    /// `host@backend`.
    pub host: String,
    /// The zone of the reporting volume service (the pools' `availability_zone`).
    #[serde(default)]
    pub availability_zone: Option<String>,
    pub capabilities: BackendStats,
    /// When the stats were taken (UTC, the database's format); older reports lose.
    pub timestamp: String,
}

/// Client side of the scheduler RPC API.
#[derive(Clone)]
pub struct SchedulerApi {
    client: RpcClient,
}

impl SchedulerApi {
    pub fn new(rt: &Runtime) -> Self {
        SchedulerApi {
            client: rt.client(TOPIC),
        }
    }

    pub fn client(&self) -> &RpcClient {
        &self.client
    }

    /// Fan a capability report out to every scheduler.
    pub async fn update_service_capabilities(
        &self,
        ctx: &RequestContext,
        report: &CapabilityReport,
    ) -> Result<(), RpcError> {
        self.client
            .fanout(
                ctx,
                "update_service_capabilities",
                Version::new(3, 0),
                report,
            )
            .await
    }

    /// Place a new volume (the API casts this after recording the volume as `creating`; the
    /// volume service casts it again to reschedule after a driver failure).
    pub async fn create_volume(
        &self,
        ctx: &RequestContext,
        args: &placement::CreateArgs,
    ) -> Result<(), RpcError> {
        // A volume of a group must land on the group's backend: a 3.6 scheduler would not
        // know the field, so such a request needs 3.7.
        let version = if args.request_spec.group_backend.is_some() {
            Version::new(3, 7)
        } else {
            Version::new(3, 1)
        };
        self.client
            .cast(ctx, None, "create_volume", version, args)
            .await
    }

    /// Choose the backend of a new generic volume group (it is `creating` until then).
    pub async fn create_group(
        &self,
        ctx: &RequestContext,
        args: &groups::CreateGroupArgs,
    ) -> Result<(), RpcError> {
        self.client
            .cast(ctx, None, "create_group", Version::new(3, 7), args)
            .await
    }

    /// Check that a volume's pool can take its growth, then have its service extend it.
    pub async fn extend_volume(
        &self,
        ctx: &RequestContext,
        args: &extend::ExtendArgs,
    ) -> Result<(), RpcError> {
        self.client
            .cast(ctx, None, "extend_volume", Version::new(3, 3), args)
            .await
    }

    /// Check that a volume's pool satisfies a new type, then have its service retype it.
    pub async fn retype_volume(
        &self,
        ctx: &RequestContext,
        args: &retype::RetypeArgs,
    ) -> Result<(), RpcError> {
        self.client
            .cast(ctx, None, "retype_volume", Version::new(3, 5), args)
            .await
    }

    /// Choose (or check) a destination for a volume's migration and place its new volume
    /// there; the source's volume service then migrates.
    pub async fn migrate_volume(
        &self,
        ctx: &RequestContext,
        args: &migrate::MigrateArgs,
    ) -> Result<(), RpcError> {
        self.client
            .cast(ctx, None, "migrate_volume", Version::new(3, 8), args)
            .await
    }

    /// Start (`Some(version)`) or stop (`None`) shadow mode on every scheduler.
    pub async fn shadow_chain(
        &self,
        ctx: &RequestContext,
        version: Option<i64>,
    ) -> Result<(), RpcError> {
        self.client
            .fanout(
                ctx,
                "shadow_chain",
                Version::new(3, 4),
                ShadowArgs { version },
            )
            .await
    }

    /// One scheduler's shadow report.
    pub async fn shadow_report(
        &self,
        ctx: &RequestContext,
    ) -> Result<shadow::ShadowReport, RpcError> {
        self.client
            .call(
                ctx,
                None,
                "shadow_report",
                Version::new(3, 4),
                serde_json::json!({}),
            )
            .await
    }

    /// Tell every scheduler to run the chain the database now says is active.
    pub async fn activate_chain(&self, ctx: &RequestContext) -> Result<(), RpcError> {
        self.client
            .fanout(
                ctx,
                "activate_chain",
                Version::new(3, 2),
                serde_json::json!({}),
            )
            .await
    }

    /// Have one scheduler build `spec` over its pools and run a trial request through it.
    pub async fn validate_chain(
        &self,
        ctx: &RequestContext,
        spec: &chains::ChainSpec,
    ) -> Result<hot_swap::Validation, RpcError> {
        self.client
            .call(ctx, None, "validate_chain", Version::new(3, 2), spec)
            .await
    }

    /// Where `spec` would be placed now, and why.
    pub async fn dry_run(
        &self,
        ctx: &RequestContext,
        spec: &placement::RequestSpec,
    ) -> Result<hot_swap::DryRun, RpcError> {
        self.client
            .call(ctx, None, "dry_run", Version::new(3, 2), spec)
            .await
    }

    /// The pools of one scheduler's live chain as its plugins see them (WIT records), of
    /// backends that are up and enabled: what `kiln plugin record` saves.
    pub async fn plugin_pools(
        &self,
        ctx: &RequestContext,
    ) -> Result<crate::plugin_author::pool_file::PoolFile, RpcError> {
        self.client
            .call(
                ctx,
                None,
                "plugin_pools",
                Version::new(3, 6),
                serde_json::json!({}),
            )
            .await
    }

    /// The pools one scheduler knows, of backends that are up and enabled.
    pub async fn get_pools(&self, ctx: &RequestContext) -> Result<Vec<PoolView>, RpcError> {
        #[derive(Deserialize)]
        struct Pool {
            name: String,
            capabilities: serde_json::Value,
        }
        let pools: Vec<Pool> = self
            .client
            .call(
                ctx,
                None,
                "get_pools",
                Version::new(3, 0),
                serde_json::json!({}),
            )
            .await?;
        Ok(pools
            .into_iter()
            .map(|p| PoolView {
                name: p.name,
                capabilities: p.capabilities,
            })
            .collect())
    }
}

/// What placements read and change together, under one lock: the reports, the pool ids, and
/// the active chain (which holds the authoritative pool table). A decision takes about 0.1 ms
/// at 1000 pools, so one lock per scheduler costs little and makes each placement see the
/// consumption of the one before it.
pub(crate) struct State {
    hosts: HostManager,
    index: PoolIndex,
    chain: Chain,
    spec: chains::ChainSpec,
    /// "preset default", "v3 my-chain": what logs and dry runs call the live chain.
    label: String,
    /// Decisions made so far by this process: logs number placements and activations with it,
    /// so which chain decided what can be checked whatever order log lines land in.
    decided: u64,
    /// A candidate chain decided beside the live one (shadow mode), if any.
    shadow: Option<shadow::Shadow>,
}

impl State {
    /// Apply pool changes to the live chain and the shadow.
    fn apply(&mut self, deltas: &[kiln_plugin_sdk::PoolDelta]) -> Vec<crate::plugins::PluginError> {
        let mut errors = self.chain.apply(deltas);
        if let Some(shadow) = &mut self.shadow {
            errors.extend(shadow.apply(deltas));
        }
        errors
    }
}

pub struct SchedulerManager {
    rt: Runtime,
    host: String,
    zone: String,
    /// Identifies this process in retry records (consumption is reverted only where it was made).
    instance: String,
    state: Arc<state_lock::PriorityLock<State>>,
    engine: OnceLock<Arc<PluginEngine>>,
    volume: volume::VolumeApi,
    /// Held by each activation (start-up, SIGHUP, fanout, reconciliation) from reading the
    /// wanted chain to swapping it in, so a slower activation of an older chain cannot land
    /// after a newer one.
    activating: tokio::sync::Mutex<()>,
}

impl SchedulerManager {
    pub fn new(rt: &Runtime) -> Self {
        let config = rt.config();
        let spec = chains::preset(&config.scheduler.chain)
            .or_else(|| chains::preset("default"))
            .expect("the default preset exists");
        SchedulerManager {
            rt: rt.clone(),
            host: config.host.clone(),
            zone: config.availability_zone.clone(),
            instance: uuid::Uuid::new_v4().to_string(),
            state: Arc::new(state_lock::PriorityLock::new(State {
                hosts: HostManager::default(),
                index: PoolIndex::default(),
                chain: Chain::default(),
                spec,
                label: "none yet".into(),
                decided: 0,
                shadow: None,
            })),
            engine: OnceLock::new(),
            volume: volume::VolumeApi::new(rt),
            activating: tokio::sync::Mutex::new(()),
        }
    }

    /// Run `f` on the locked state on a blocking thread (plugin calls are synchronous).
    pub(crate) async fn with_state<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> R + Send + 'static,
    ) -> Result<R, RemoteError> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || f(&mut state.lock()))
            .await
            .map_err(|e| RemoteError::new("HandlerError", format!("scheduler task failed: {e}")))
    }

    /// Take a capability report: into the host manager, and as deltas into the chain.
    async fn take_report(&self, report: CapabilityReport) -> Result<bool, RemoteError> {
        self.with_state(move |s| {
            if !s.hosts.update(report.clone()) {
                return false;
            }
            let deltas = s.index.apply_report(&report);
            for e in s.apply(&deltas) {
                tracing::warn!(error = %e, "plugin failed to take a pool update; replaced");
            }
            true
        })
        .await
    }

    /// The live chain's pools of active backends, as WIT records, by id.
    async fn plugin_pools(&self) -> Result<crate::plugin_author::pool_file::PoolFile, RemoteError> {
        use crate::plugin_author::pool_file::{PoolFile, PoolJson};
        let active = self.active_backends().await?;
        let mut pools = self
            .with_state(move |s| {
                s.chain
                    .table()
                    .iter()
                    .filter(|p| active.contains(&p.backend))
                    .map(PoolJson::from_pool)
                    .collect::<Vec<_>>()
            })
            .await?;
        pools.sort_by_key(|p| p.id);
        let recorded_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .ok();
        Ok(PoolFile {
            scheduler: Some(self.host.clone()),
            recorded_at,
            pools,
        })
    }

    /// Volume services that may receive volumes: up, enabled, not frozen.
    async fn active_backends(&self) -> Result<HashSet<String>, RemoteError> {
        let down_time = self.rt.config().service_down_time();
        let rows = self
            .rt
            .db
            .service_list()
            .await
            .map_err(|e| RemoteError::new("HandlerError", e.to_string()))?;
        Ok(rows
            .into_iter()
            .filter(|s| {
                s.binary == volume::BINARY && !s.disabled && !s.frozen && s.is_up(down_time)
            })
            .map(|s| s.host)
            .collect())
    }
}

#[async_trait]
impl Manager for SchedulerManager {
    fn spec(&self) -> ServiceSpec {
        ServiceSpec {
            binary: BINARY,
            topic: TOPIC,
            host: self.host.clone(),
            availability_zone: self.zone.clone(),
            rpc_version: RPC_VERSION,
        }
    }

    fn dispatcher(self: Arc<Self>) -> Option<Dispatcher> {
        let mut d = Dispatcher::new(RPC_VERSION);
        let me = self.clone();
        d.register(
            "update_service_capabilities",
            move |_ctx, report: CapabilityReport| {
                let me = me.clone();
                async move {
                    let host = report.host.clone();
                    if me.take_report(report).await? {
                        tracing::debug!(host = %host, "capability report taken");
                    }
                    Ok(())
                }
            },
        );
        let me = self.clone();
        d.register("create_volume", move |ctx, args: placement::CreateArgs| {
            let me = me.clone();
            async move { me.schedule_create(&ctx, args).await }
        });
        let me = self.clone();
        d.register("create_group", move |ctx, args: groups::CreateGroupArgs| {
            let me = me.clone();
            async move { me.schedule_create_group(&ctx, args).await }
        });
        let me = self.clone();
        d.register("extend_volume", move |ctx, args: extend::ExtendArgs| {
            let me = me.clone();
            async move { me.schedule_extend(&ctx, args).await }
        });
        let me = self.clone();
        d.register("retype_volume", move |ctx, args: retype::RetypeArgs| {
            let me = me.clone();
            async move { me.schedule_retype(&ctx, args).await }
        });
        let me = self.clone();
        d.register("migrate_volume", move |ctx, args: migrate::MigrateArgs| {
            let me = me.clone();
            async move { me.schedule_migrate(&ctx, args).await }
        });
        let me = self.clone();
        d.register("shadow_chain", move |_ctx, args: ShadowArgs| {
            let me = me.clone();
            async move { me.set_shadow(args.version).await }
        });
        let me = self.clone();
        d.register("shadow_report", move |_ctx, _args: serde_json::Value| {
            let me = me.clone();
            async move {
                let host = me.host.clone();
                me.with_state(move |s| {
                    let mut r = s
                        .shadow
                        .as_ref()
                        .map(|sh| sh.report.clone())
                        .unwrap_or_default();
                    r.scheduler = host;
                    r
                })
                .await
            }
        });
        let me = self.clone();
        d.register("activate_chain", move |_ctx, _args: serde_json::Value| {
            let me = me.clone();
            async move {
                me.activate_current()
                    .await
                    .map_err(|e| RemoteError::new("HandlerError", e))
            }
        });
        let me = self.clone();
        d.register("validate_chain", move |_ctx, spec: chains::ChainSpec| {
            let me = me.clone();
            async move { me.validate_chain(spec).await }
        });
        let me = self.clone();
        d.register("dry_run", move |_ctx, spec: placement::RequestSpec| {
            let me = me.clone();
            async move { me.dry_run(spec).await }
        });
        let me = self.clone();
        d.register("get_pools", move |_ctx, _args: serde_json::Value| {
            let me = me.clone();
            async move {
                let active = me.active_backends().await?;
                me.with_state(move |s| s.hosts.pools(&active)).await
            }
        });
        let me = self.clone();
        d.register("plugin_pools", move |_ctx, _args: serde_json::Value| {
            let me = me.clone();
            async move { me.plugin_pools().await }
        });
        Some(d)
    }

    async fn init_host(&self) -> Result<(), String> {
        self.activate_current().await
    }

    async fn reload(&self, _config: &Config) -> Result<(), String> {
        self.activate_current().await
    }

    async fn after_start(&self) -> Result<(), String> {
        if let Some(addr) = self.rt.config().scheduler.metrics_listen.clone() {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (scheduler.metrics_listen): {e}"))?;
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(|| async {
                    (
                        [("content-type", "text/plain; version=0.0.4")],
                        crate::metrics::render(),
                    )
                }),
            );
            // Ends with the process: the listener holds no state worth draining.
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "scheduler metrics listener failed");
                }
            });
            info!(%addr, "scheduler metrics on /metrics");
        }
        self.rt
            .refresh_version_cap(self.volume.client(), volume::BINARY)
            .await
            .map_err(|e| e.to_string())?;
        self.volume
            .publish_service_capabilities(&RequestContext::internal())
            .await
            .map_err(|e| e.to_string())?;
        info!("asked every volume service for its capabilities");
        // Volumes a crash left `creating` on no backend (never fatal to the start).
        if let Err(e) = self.settle_unplaced_creates().await {
            tracing::warn!(error = %e, "could not settle volumes left creating on no backend");
        }
        Ok(())
    }

    fn periodic_tasks(self: Arc<Self>) -> Vec<PeriodicTask> {
        let me = self.clone();
        let reconcile = PeriodicTask {
            name: "reconcile_chain",
            interval: |c: &Config| c.report_interval(),
            run: Arc::new(move || {
                let me = me.clone();
                Box::pin(async move { me.reconcile_chain().await.map(|_| ()) })
            }),
        };
        let me = self.clone();
        vec![
            reconcile,
            PeriodicTask {
                name: "refresh_rpc_version_cap",
                interval: |c: &Config| c.periodic_interval(),
                run: Arc::new(move || {
                    let me = me.clone();
                    Box::pin(async move {
                        me.rt
                            .refresh_version_cap(me.volume.client(), volume::BINARY)
                            .await
                            .map_err(|e| e.to_string())
                    })
                }),
            },
            {
                let me = self.clone();
                PeriodicTask {
                    name: "settle_unplaced_creates",
                    interval: |c: &Config| c.periodic_interval(),
                    run: Arc::new(move || {
                        let me = me.clone();
                        Box::pin(async move { me.settle_unplaced_creates().await.map(|_| ()) })
                    }),
                }
            },
        ]
    }
}
