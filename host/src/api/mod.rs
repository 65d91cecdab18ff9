//! The API service: the Cinder v3 REST API on axum. This module owns the service lifecycle
//! (bind at `init_host`, serve after start, drain on stop), the router, and the request-id
//! and access-log middleware; each resource lives in its own submodule.

mod attachments;
mod auth;
mod backend_drivers;
mod catalog;
mod context;
mod default_types;
mod encryption;
mod error;
mod extensions;
mod group_snapshots;
mod group_types;
mod groups;
mod hosts;
mod limits;
mod listing;
mod messages;
mod metadata;
mod microversion;
mod openapi;
mod plugins;
mod policy;
mod qos;
mod quotas;
mod services;
mod snapshots;
mod transfers;
mod types;
mod versions;
mod volume_actions;
pub(crate) mod volumes;
mod zones;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, Instrument};

pub use error::ApiError;

use crate::rpc::Version;
use crate::scheduler::SchedulerApi;
use crate::service::{Manager, Runtime, ServiceSpec};
use crate::volume::VolumeApi;

pub const BINARY: &str = "kiln-api";
pub const TOPIC: &str = "api";

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub rt: Runtime,
    pub scheduler: SchedulerApi,
    pub volume: VolumeApi,
    /// The volume services' zones (see `zones`).
    pub zones: Arc<zones::ZoneCache>,
}

/// The resources of the v3 API, mounted with and without `{project_id}` (3.67).
fn v3_routes() -> Router<AppState> {
    Router::new()
        .route("/os-services", get(services::list))
        .route("/os-services/{action}", put(services::update))
        .route("/scheduler-stats/get_pools", get(services::get_pools))
        .merge(volumes::routes())
        .route("/volumes/{id}/action", post(volume_actions::action))
        .merge(metadata::routes())
        .merge(snapshots::routes())
        .merge(attachments::routes())
        .merge(transfers::routes())
        .merge(group_types::routes())
        .merge(groups::routes())
        .merge(group_snapshots::routes())
        .route(
            "/kiln-plugins",
            get(plugins::list)
                .post(plugins::upload)
                .layer(axum::extract::DefaultBodyLimit::max(64 << 20)),
        )
        .route(
            "/kiln-chains",
            get(plugins::list_chains).post(plugins::create_chain),
        )
        .route("/kiln-chains/rollback", post(plugins::rollback))
        .route(
            "/kiln-chains/shadow",
            get(plugins::shadow_report).delete(plugins::stop_shadow),
        )
        .route("/kiln-chains/{version}/shadow", post(plugins::start_shadow))
        .route(
            "/kiln-chains/{version}/activate",
            post(plugins::activate_chain),
        )
        .route("/kiln-scheduler/dry-run", post(plugins::dry_run))
        .route("/kiln-scheduler/pools", get(plugins::scheduler_pools))
        .route(
            "/kiln-backends/{backend}/driver",
            get(backend_drivers::show).post(backend_drivers::swap),
        )
        .route(
            "/kiln-backends/{backend}/driver/rollback",
            post(backend_drivers::rollback),
        )
        .merge(catalog::routes())
        .merge(hosts::routes())
}

pub use auth::{Auth, AuthError};
pub use microversion::{ApiVersion, Microversion};

pub fn router(state: AppState, auth: Auth) -> Router {
    Router::new()
        .route("/", get(versions::all))
        .route("/v3", get(versions::v3_root))
        .route("/v3/", get(versions::v3_root))
        .route("/healthcheck", get(|| async { "OK" }))
        .route("/openapi.json", get(openapi::serve))
        .route(
            "/metrics",
            get(|| async {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    crate::metrics::render(),
                )
            }),
        )
        .nest("/v3/{project_id}", v3_routes())
        .merge(Router::new().nest("/v3", v3_routes()))
        .route_layer(axum::middleware::from_fn(microversion::gate))
        .route_layer(axum::middleware::from_fn_with_state(auth, auth::middleware))
        .fallback(|| async { ApiError::NotFound("The resource could not be found.".into()) })
        .layer(axum::middleware::from_fn(microversion::middleware))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// Give every request an `x-openstack-request-id` (`req-<uuid>`), log it with the outcome,
/// and return it to the client.
async fn request_id(mut req: Request, next: Next) -> Response {
    let id = format!("req-{}", uuid::Uuid::new_v4());
    let value = HeaderValue::from_str(&id).expect("a uuid is a valid header value");
    req.headers_mut()
        .insert("x-openstack-request-id", value.clone());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = Instant::now();
    let span = tracing::info_span!("api", request_id = %id);
    let mut resp = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        info!(%method, %path, status = resp.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    });
    resp.headers_mut().insert("x-openstack-request-id", value);
    resp
}

pub struct ApiManager {
    rt: Runtime,
    host: String,
    zone: String,
    listener: Mutex<Option<std::net::TcpListener>>,
    server: Mutex<Option<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl ApiManager {
    pub fn new(rt: &Runtime) -> Self {
        let config = rt.config();
        ApiManager {
            rt: rt.clone(),
            host: config.host.clone(),
            zone: config.availability_zone.clone(),
            listener: Mutex::new(None),
            server: Mutex::new(None),
            stop: watch::channel(false).0,
        }
    }
}

#[async_trait]
impl Manager for ApiManager {
    fn spec(&self) -> ServiceSpec {
        ServiceSpec {
            binary: BINARY,
            topic: TOPIC,
            host: self.host.clone(),
            availability_zone: self.zone.clone(),
            rpc_version: Version::new(3, 0),
        }
    }

    /// Bind the listen address now, so a taken port stops start-up with a clear error.
    async fn init_host(&self) -> Result<(), String> {
        let addr = self.rt.config().api.listen.clone();
        let listener = std::net::TcpListener::bind(&addr)
            .map_err(|e| format!("cannot listen on {addr} (api.listen): {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        *self.listener.lock().expect("listener lock") = Some(listener);
        Ok(())
    }

    async fn after_start(&self) -> Result<(), String> {
        let std_listener = self
            .listener
            .lock()
            .expect("listener lock")
            .take()
            .ok_or("API listener missing")?;
        let addr = std_listener.local_addr().map_err(|e| e.to_string())?;
        let listener =
            tokio::net::TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
        let auth = Auth::from_config(&self.rt.config()).map_err(|e| e.to_string())?;
        let app = router(
            AppState {
                rt: self.rt.clone(),
                scheduler: SchedulerApi::new(&self.rt),
                volume: VolumeApi::new(&self.rt),
                zones: Default::default(),
            },
            auth,
        );
        let mut stop = self.stop.subscribe();
        let handle = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "API server failed");
            }
        });
        *self.server.lock().expect("server lock") = Some(handle);
        info!(%addr, "Cinder v3 API listening");
        Ok(())
    }

    /// Stop accepting connections and let requests in flight finish within `grace`.
    async fn stop(&self, grace: Duration) {
        let _ = self.stop.send(true);
        let handle = self.server.lock().expect("server lock").take();
        if let Some(handle) = handle {
            if tokio::time::timeout(grace, handle).await.is_err() {
                tracing::warn!("API requests still running at the end of the grace period");
            }
        }
    }
}
