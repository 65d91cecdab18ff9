//! The volume service: one per enabled backend, host `HOST@BACKEND`. It owns the backend's
//! driver, serves the `volume` topic, reports the driver's stats to every scheduler —
//! periodically, at start-up, and whenever a scheduler asks (`publish_service_capabilities`) —
//! and runs the volume operations ([`flows`]).

mod attach;
mod create;
pub mod driver_slot;
pub mod driver_swap;
#[cfg(test)]
mod flow_tests;
mod flows;
pub mod migrate;
mod recovery;
mod snapshots;

pub use attach::{ConnectArgs, DisconnectArgs};
pub use snapshots::RevertArgs;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::{debug, info};

use crate::config::Config;
use crate::drivers;
use crate::rpc::{Dispatcher, RemoteError, RequestContext, RpcClient, RpcError, Version};
use crate::scheduler::{self, CapabilityReport};
use crate::service::{Manager, PeriodicTask, Runtime, ServiceSpec};

pub const BINARY: &str = "kiln-volume";
pub const TOPIC: &str = "volume";
/// The volume RPC API this build serves. 3.0: publish_service_capabilities; 3.1:
/// create_volume, delete_volume; 3.2: extend_volume; 3.3: create_snapshot, delete_snapshot,
/// delete_volume with `cascade`; 3.4: initialize_connection, terminate_connection;
/// 3.5: swap_driver, rollback_driver; 3.6: retype_volume; 3.8: migrate_volume,
/// create_migration_volume (and extend_volume of an attached volume, `previous_status`); 3.9:
/// revert_to_snapshot.
pub const RPC_VERSION: Version = Version::new(3, 9);

/// Client side of the volume RPC API, used by the scheduler and the API service.
#[derive(Clone)]
pub struct VolumeApi {
    client: RpcClient,
}

impl VolumeApi {
    pub fn new(rt: &Runtime) -> Self {
        VolumeApi {
            client: rt.client(TOPIC),
        }
    }

    pub fn client(&self) -> &RpcClient {
        &self.client
    }

    /// Ask every volume service to report its capabilities now (fanout).
    pub async fn publish_service_capabilities(&self, ctx: &RequestContext) -> Result<(), RpcError> {
        self.client
            .fanout(
                ctx,
                "publish_service_capabilities",
                Version::new(3, 0),
                serde_json::json!({}),
            )
            .await
    }

    /// Create the placed volume on `backend` (`host@backend`).
    pub async fn create_volume(
        &self,
        ctx: &RequestContext,
        backend: &str,
        args: &scheduler::placement::CreateArgs,
    ) -> Result<(), RpcError> {
        self.client
            .cast(
                ctx,
                Some(backend),
                "create_volume",
                Version::new(3, 1),
                args,
            )
            .await
    }

    /// Grow a volume on `backend` (`host@backend`) after the scheduler accepted it.
    pub async fn extend_volume(
        &self,
        ctx: &RequestContext,
        backend: &str,
        args: &scheduler::extend::ExtendArgs,
    ) -> Result<(), RpcError> {
        self.client
            .cast(
                ctx,
                Some(backend),
                "extend_volume",
                Version::new(3, 2),
                args,
            )
            .await
    }

    /// Delete volume `volume_id` from `backend` (`host@backend`); with `cascade`, its
    /// snapshots first.
    pub async fn delete_volume(
        &self,
        ctx: &RequestContext,
        backend: &str,
        volume_id: &str,
        cascade: bool,
    ) -> Result<(), RpcError> {
        let (version, args) = if cascade {
            (
                Version::new(3, 3),
                serde_json::json!({ "volume_id": volume_id, "cascade": true }),
            )
        } else {
            (
                Version::new(3, 1),
                serde_json::json!({ "volume_id": volume_id }),
            )
        };
        self.client
            .cast(ctx, Some(backend), "delete_volume", version, args)
            .await
    }

    /// Export a volume on `backend` for a host and return its `connection_info` (a call).
    pub async fn initialize_connection(
        &self,
        ctx: &RequestContext,
        backend: &str,
        args: &ConnectArgs,
    ) -> Result<crate::drivers::ConnectionInfo, RpcError> {
        self.client
            .call(
                ctx,
                Some(backend),
                "initialize_connection",
                Version::new(3, 4),
                args,
            )
            .await
    }

    /// A host stops using a volume on `backend` (and, when asked, its export goes; a call).
    pub async fn terminate_connection(
        &self,
        ctx: &RequestContext,
        backend: &str,
        args: &DisconnectArgs,
    ) -> Result<(), RpcError> {
        self.client
            .call(
                ctx,
                Some(backend),
                "terminate_connection",
                Version::new(3, 4),
                args,
            )
            .await
    }

    /// Record a retype the scheduler accepted on `backend` (no migration).
    pub async fn retype_volume(
        &self,
        ctx: &RequestContext,
        backend: &str,
        args: &scheduler::retype::RetypeArgs,
    ) -> Result<(), RpcError> {
        self.client
            .cast(
                ctx,
                Some(backend),
                "retype_volume",
                Version::new(3, 6),
                args,
            )
            .await
    }

    /// Migrate a volume away from `backend`, its current one, to the temporary volume the
    /// scheduler placed (the source's service runs the migration).
    pub async fn migrate_volume(
        &self,
        ctx: &RequestContext,
        backend: &str,
        args: &migrate::MigrateVolumeArgs,
    ) -> Result<(), RpcError> {
        self.client
            .cast(
                ctx,
                Some(backend),
                "migrate_volume",
                Version::new(3, 8),
                args,
            )
            .await
    }

    /// Create a migration's temporary volume on `backend` (its destination) and say where
    /// this host can open it (a call: the migrating service waits for it).
    pub async fn create_migration_volume(
        &self,
        ctx: &RequestContext,
        backend: &str,
        args: &migrate::TargetArgs,
    ) -> Result<migrate::MigrationTarget, RpcError> {
        self.client
            .call(
                ctx,
                Some(backend),
                "create_migration_volume",
                Version::new(3, 8),
                args,
            )
            .await
    }

    /// Take snapshot `snapshot_id` on `backend` (the one holding its volume).
    pub async fn create_snapshot(
        &self,
        ctx: &RequestContext,
        backend: &str,
        snapshot_id: &str,
    ) -> Result<(), RpcError> {
        self.client
            .cast(
                ctx,
                Some(backend),
                "create_snapshot",
                Version::new(3, 3),
                snapshots::SnapshotArgs {
                    snapshot_id: snapshot_id.to_string(),
                },
            )
            .await
    }

    /// Revert volume `volume_id` on `backend` to its latest snapshot `snapshot_id`.
    pub async fn revert_to_snapshot(
        &self,
        ctx: &RequestContext,
        backend: &str,
        args: snapshots::RevertArgs,
    ) -> Result<(), RpcError> {
        self.client
            .cast(
                ctx,
                Some(backend),
                "revert_to_snapshot",
                Version::new(3, 9),
                args,
            )
            .await
    }

    /// Delete snapshot `snapshot_id` from `backend`.
    pub async fn delete_snapshot(
        &self,
        ctx: &RequestContext,
        backend: &str,
        snapshot_id: &str,
    ) -> Result<(), RpcError> {
        self.client
            .cast(
                ctx,
                Some(backend),
                "delete_snapshot",
                Version::new(3, 3),
                snapshots::SnapshotArgs {
                    snapshot_id: snapshot_id.to_string(),
                },
            )
            .await
    }
}

pub struct VolumeManager {
    rt: Runtime,
    backend: String,
    host: String,
    zone: String,
    /// The backend's driver, replaceable at run time ([`driver_slot`]).
    slot: driver_slot::DriverSlot,
    scheduler: scheduler::SchedulerApi,
    /// Other volume services (a migration's destination), capped like the scheduler client.
    peers: VolumeApi,
    /// Volumes a create or the start-up recovery is working on in this process ([`Claim`]):
    /// a repeated delivery of a create, or recovery, leaves them to whoever holds them.
    busy: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// A volume held by one flow of this process; released on drop.
pub(crate) struct Claim<'a> {
    busy: &'a std::sync::Mutex<std::collections::HashSet<String>>,
    id: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

impl VolumeManager {
    pub fn new(rt: &Runtime, backend: &str) -> Result<Self, drivers::DriverError> {
        let config = rt.config();
        let settings = config.backends.get(backend).cloned().unwrap_or_default();
        Ok(VolumeManager {
            rt: rt.clone(),
            backend: backend.to_string(),
            host: config.backend_host(backend),
            zone: config.backend_zone(backend),
            slot: driver_slot::DriverSlot::new(
                drivers::build(&config, backend, &settings)?,
                driver_swap::configured_active(&settings),
            ),
            scheduler: scheduler::SchedulerApi::new(rt),
            peers: VolumeApi::new(rt),
            busy: Default::default(),
        })
    }

    /// Hold volume `id` for one flow; `None` when another flow of this process holds it.
    pub(crate) fn claim(&self, id: &str) -> Option<Claim<'_>> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        busy.insert(id.to_string()).then(|| Claim {
            busy: &self.busy,
            id: id.to_string(),
        })
    }

    /// Whether `host` (`host@backend#pool`) is on this service's backend.
    pub(crate) fn is_mine(&self, host: Option<&str>) -> bool {
        host.map(|h| h.split_once('#').map_or(h, |(b, _)| b))
            .is_some_and(|b| b == self.host)
    }

    /// The backend's driver for one call (waits while a driver swap drains or replaces it;
    /// never hold the guard while asking for another).
    pub(crate) async fn driver(&self) -> driver_slot::DriverGuard<'_> {
        self.slot.get().await
    }

    /// Ask the driver for stats and fan them out to every scheduler. Each pool reports
    /// `online_extend_support` (what the driver says, unless its stats already do).
    pub async fn report_capabilities(&self) -> Result<(), String> {
        let (mut stats, online) = {
            let driver = self.driver().await;
            let stats = driver.get_volume_stats().await.map_err(|e| e.to_string())?;
            (stats, driver.supports_online_extend())
        };
        for pool in &mut stats.pools {
            pool.extra
                .entry("online_extend_support".into())
                .or_insert(serde_json::Value::Bool(online));
        }
        let report = CapabilityReport {
            service_name: TOPIC.into(),
            host: self.host.clone(),
            availability_zone: Some(self.zone.clone()),
            capabilities: stats,
            timestamp: crate::db::now(),
        };
        self.scheduler
            .update_service_capabilities(&RequestContext::internal(), &report)
            .await
            .map_err(|e| e.to_string())?;
        debug!(host = %self.host, "capabilities reported");
        Ok(())
    }
}

#[async_trait]
impl Manager for VolumeManager {
    fn spec(&self) -> ServiceSpec {
        ServiceSpec {
            binary: BINARY,
            topic: TOPIC,
            host: self.host.clone(),
            availability_zone: self.zone.clone(),
            rpc_version: RPC_VERSION,
        }
    }

    async fn init_host(&self) -> Result<(), String> {
        self.init_driver().await?;
        info!(backend = %self.backend, host = %self.host, driver = %self.slot.active().label, "driver initialised");
        Ok(())
    }

    fn dispatcher(self: Arc<Self>) -> Option<Dispatcher> {
        let mut d = Dispatcher::new(RPC_VERSION);
        let me = self.clone();
        d.register(
            "publish_service_capabilities",
            move |_ctx, _args: serde_json::Value| {
                let me = me.clone();
                async move {
                    me.report_capabilities()
                        .await
                        .map_err(|e| RemoteError::new("HandlerError", e))
                }
            },
        );
        let me = self.clone();
        d.register(
            "create_volume",
            move |ctx, args: scheduler::placement::CreateArgs| {
                let me = me.clone();
                async move { me.create_volume(&ctx, args).await }
            },
        );
        let me = self.clone();
        d.register(
            "extend_volume",
            move |ctx, args: scheduler::extend::ExtendArgs| {
                let me = me.clone();
                async move { me.extend_volume(&ctx, args).await }
            },
        );
        let me = self.clone();
        d.register("delete_volume", move |ctx, args: flows::DeleteArgs| {
            let me = me.clone();
            async move { me.delete_volume(&ctx, args).await }
        });
        let me = self.clone();
        d.register(
            "retype_volume",
            move |ctx, args: scheduler::retype::RetypeArgs| {
                let me = me.clone();
                async move { me.retype_volume(&ctx, args).await }
            },
        );
        let me = self.clone();
        d.register(
            "migrate_volume",
            move |ctx, args: migrate::MigrateVolumeArgs| {
                let me = me.clone();
                async move { me.migrate_volume(&ctx, args).await }
            },
        );
        let me = self.clone();
        d.register(
            "create_migration_volume",
            move |ctx, args: migrate::TargetArgs| {
                let me = me.clone();
                async move { me.create_migration_volume(&ctx, args).await }
            },
        );
        let me = self.clone();
        d.register("initialize_connection", move |ctx, args: ConnectArgs| {
            let me = me.clone();
            async move { me.initialize_connection(&ctx, args).await }
        });
        let me = self.clone();
        d.register("terminate_connection", move |ctx, args: DisconnectArgs| {
            let me = me.clone();
            async move { me.terminate_connection(&ctx, args).await }
        });
        let me = self.clone();
        d.register(
            "create_snapshot",
            move |ctx, args: snapshots::SnapshotArgs| {
                let me = me.clone();
                async move { me.create_snapshot(&ctx, args).await }
            },
        );
        let me = self.clone();
        d.register(
            "delete_snapshot",
            move |ctx, args: snapshots::SnapshotArgs| {
                let me = me.clone();
                async move { me.delete_snapshot(&ctx, args).await }
            },
        );
        let me = self.clone();
        d.register(
            "revert_to_snapshot",
            move |ctx, args: snapshots::RevertArgs| {
                let me = me.clone();
                async move { me.revert_to_snapshot(&ctx, args).await }
            },
        );
        let me = self.clone();
        d.register("swap_driver", move |_ctx, args: driver_swap::SwapArgs| {
            let me = me.clone();
            async move { me.swap_driver(args).await }
        });
        let me = self.clone();
        d.register(
            "rollback_driver",
            move |_ctx, args: driver_swap::RollbackArgs| {
                let me = me.clone();
                async move { me.rollback_driver(args).await }
            },
        );
        Some(d)
    }

    async fn after_start(&self) -> Result<(), String> {
        self.rt
            .refresh_version_cap(self.scheduler.client(), scheduler::BINARY)
            .await
            .map_err(|e| e.to_string())?;
        self.rt
            .refresh_version_cap(self.peers.client(), BINARY)
            .await
            .map_err(|e| e.to_string())?;
        self.recover().await?;
        self.report_capabilities().await
    }

    fn periodic_tasks(self: Arc<Self>) -> Vec<PeriodicTask> {
        let me = self.clone();
        vec![PeriodicTask {
            name: "report_capabilities",
            interval: |c: &Config| c.stats_interval(),
            run: Arc::new(move || {
                let me = me.clone();
                Box::pin(async move {
                    let _ = me
                        .rt
                        .refresh_version_cap(me.scheduler.client(), scheduler::BINARY)
                        .await;
                    let _ = me.rt.refresh_version_cap(me.peers.client(), BINARY).await;
                    me.report_capabilities().await
                })
            }),
        }]
    }

    async fn stop(&self, _grace: Duration) {}
}
