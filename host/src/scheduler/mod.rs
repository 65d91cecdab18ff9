//! The scheduler service: holds every volume service's capability reports in its
//! [`host_manager::HostManager`] and answers where volumes can go. On start it asks every
//! volume service to report at once, so a restarted scheduler is never blind for a whole
//! polling interval. (Filters, weighers and placement arrive with the scheduler issue.)

pub mod host_manager;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use tracing::info;

use crate::config::Config;
use crate::drivers::BackendStats;
use crate::rpc::{Dispatcher, RemoteError, RequestContext, RpcClient, RpcError, Version};
use crate::service::{Manager, PeriodicTask, Runtime, ServiceSpec};
use crate::volume;
use host_manager::{HostManager, PoolView};

pub const BINARY: &str = "kiln-scheduler";
pub const TOPIC: &str = "scheduler";
/// The scheduler RPC API this build serves. 3.0: update_service_capabilities, get_pools.
pub const RPC_VERSION: Version = Version::new(3, 0);

/// A volume service's stats, fanned out to every scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilityReport {
    /// Always `volume`.
    pub service_name: String,
    /// `host@backend`.
    pub host: String,
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

pub struct SchedulerManager {
    rt: Runtime,
    host: String,
    zone: String,
    hosts: RwLock<HostManager>,
    volume: volume::VolumeApi,
}

impl SchedulerManager {
    pub fn new(rt: &Runtime) -> Self {
        let config = rt.config();
        SchedulerManager {
            rt: rt.clone(),
            host: config.host.clone(),
            zone: config.availability_zone.clone(),
            hosts: RwLock::new(HostManager::default()),
            volume: volume::VolumeApi::new(rt),
        }
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
                    if me.hosts.write().await.update(report) {
                        tracing::debug!(host = %host, "capability report taken");
                    }
                    Ok(())
                }
            },
        );
        let me = self.clone();
        d.register("get_pools", move |_ctx, _args: serde_json::Value| {
            let me = me.clone();
            async move {
                let active = me.active_backends().await?;
                Ok(me.hosts.read().await.pools(&active))
            }
        });
        Some(d)
    }

    async fn after_start(&self) -> Result<(), String> {
        self.rt
            .refresh_version_cap(self.volume.client(), volume::BINARY)
            .await
            .map_err(|e| e.to_string())?;
        self.volume
            .publish_service_capabilities(&RequestContext::internal())
            .await
            .map_err(|e| e.to_string())?;
        info!("asked every volume service for its capabilities");
        Ok(())
    }

    fn periodic_tasks(self: Arc<Self>) -> Vec<PeriodicTask> {
        let me = self.clone();
        vec![PeriodicTask {
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
        }]
    }
}
