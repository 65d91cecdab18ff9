//! One Kiln process: the services it runs, and its reaction to signals. SIGTERM / SIGINT stop
//! every service gracefully (the process then exits 0); SIGHUP reloads the configuration and
//! hands it to every service, keeping the old one when the new one is invalid.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use super::{Runtime, Service, ServiceError};
use crate::config::{Config, Overrides};

/// Starts one service on the process's runtime.
pub type Starter = Box<
    dyn FnOnce(Runtime) -> Pin<Box<dyn Future<Output = Result<Service, ServiceError>> + Send>>
        + Send,
>;

/// Where the configuration came from, so SIGHUP can read it again.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub path: Option<PathBuf>,
    pub overrides: Overrides,
}

impl ConfigSource {
    pub fn load(&self) -> Result<Config, crate::config::ConfigError> {
        Config::load(self.path.as_deref(), &self.overrides)
    }
}

/// Start every service, then serve until SIGTERM / SIGINT. Returns once all stopped.
pub async fn run(
    rt: Runtime,
    starters: Vec<Starter>,
    source: ConfigSource,
) -> Result<(), ServiceError> {
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    let mut hup = signal(SignalKind::hangup()).expect("install SIGHUP handler");

    let mut services = Vec::new();
    for start in starters {
        let started = tokio::select! {
            s = start(rt.clone()) => s,
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        match started {
            Ok(s) => services.push(s),
            Err(e) => {
                stop_all(services, rt.config().grace_period()).await;
                return Err(e);
            }
        }
    }
    info!(services = services.len(), "kiln is running");

    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM received; stopping"); break; }
            _ = int.recv() => { info!("SIGINT received; stopping"); break; }
            _ = hup.recv() => reload(&rt, &services, &source).await,
        }
    }
    stop_all(services, rt.config().grace_period()).await;
    Ok(())
}

async fn reload(rt: &Runtime, services: &[Service], source: &ConfigSource) {
    match source.load() {
        Ok(config) => {
            let old = rt.config();
            if config.database_url() != old.database_url()
                || config.messaging.url != old.messaging.url
            {
                info!("database and messaging URLs take effect at the next restart only");
            }
            rt.config.store(std::sync::Arc::new(config.clone()));
            let mut failed = 0;
            for s in services {
                if let Err(e) = s.reload(&config).await {
                    failed += 1;
                    let spec = s.spec();
                    error!(service = %format!("{}@{}", spec.binary, spec.host), error = %e, "SIGHUP: the service could not apply the new configuration; it runs on what it had");
                }
            }
            if failed == 0 {
                info!("SIGHUP: configuration reloaded");
            } else {
                warn!(services_failed = failed, "SIGHUP: configuration reloaded, but not every service applied it (see the errors above)");
            }
        }
        Err(e) => {
            error!(error = %e, "SIGHUP: the new configuration is invalid; keeping the running one")
        }
    }
}

async fn stop_all(services: Vec<Service>, grace: Duration) {
    let stops = services.into_iter().map(|s| s.stop(grace));
    futures::future::join_all(stops).await;
}
