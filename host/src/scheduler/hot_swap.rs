//! Changing the chain of a running scheduler, and asking it questions without placing:
//! - activation (start-up, SIGHUP and the `activate_chain` fanout share [`SchedulerManager::activate_current`]):
//!   the database's active chain, or the configured preset when none was ever activated, is
//!   compiled off-lock, then instantiated over the live pool table and swapped in under the lock
//!   — a request in flight finishes on the chain it started with; a chain that fails to build
//!   leaves the live one untouched;
//! - reconciliation (a periodic task, every `report_interval`): the live chain is compared with
//!   the database's and re-activated through the same path when they differ — a scheduler that
//!   missed the fanout or failed to build the chain catches up without a restart;
//! - validation (`validate_chain`): build a candidate over a copy of the live pools and run a
//!   trial request through it;
//! - dry run (`dry_run`): where would this request go, and why, without consuming anything.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::chains::{self, ChainSpec, Components};
use super::placement::{self, RequestSpec, RetryInfo};
use super::SchedulerManager;
use crate::plugins::{Explain, PluginEngine, PluginKind};
use crate::rpc::RemoteError;

fn bad(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new("BadRequest", e.to_string())
}

fn handler_error(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new("HandlerError", e.to_string())
}

/// What a validation found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validation {
    pub stages: Vec<String>,
    /// Pools the trial request (1 GB, no type, any zone) was decided over.
    pub trial_candidates: usize,
    /// Pools that passed every filter in the trial.
    pub trial_passed: usize,
}

/// A dry run's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DryRun {
    pub chain: String,
    /// `host@backend#pool` that would be chosen.
    pub chosen: Option<String>,
    /// Surviving pools with their total weight, best first.
    pub weighed: Vec<(String, f64)>,
    /// `(filter, pool, reason)` for every removed pool.
    pub removed: Vec<(String, String, String)>,
    pub failures: Vec<String>,
}

impl SchedulerManager {
    fn engine(&self) -> Result<std::sync::Arc<PluginEngine>, String> {
        if let Some(e) = self.engine.get() {
            return Ok(e.clone());
        }
        let config = self.rt.config();
        let dir = config
            .scheduler
            .plugin_cache_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("plugin-cache"));
        let e = PluginEngine::new(Some(dir)).map_err(|e| e.to_string())?;
        Ok(self.engine.get_or_init(|| e).clone())
    }

    /// The uploaded components `spec` names, from the database.
    async fn components(&self, spec: &ChainSpec) -> Result<Components, String> {
        let mut out = Components::new();
        for sha in chains::uploaded(spec) {
            let (kind, bytes) = self
                .rt
                .db
                .component_bytes(&sha)
                .await
                .map_err(|e| e.to_string())?;
            let kind = match kind.as_str() {
                "filter" => PluginKind::Filter,
                "weigher" => PluginKind::Weigher,
                other => return Err(format!("component {sha} has unknown kind {other}")),
            };
            out.insert(sha, (kind, bytes));
        }
        Ok(out)
    }

    /// The chain this scheduler should run: the database's active one, else the configured
    /// preset. Returns `(label, spec)`.
    async fn wanted_spec(&self) -> Result<(String, ChainSpec), String> {
        if let Some(row) = self.rt.db.chain_active().await.map_err(|e| e.to_string())? {
            let spec: ChainSpec = serde_json::from_str(&row.definition).map_err(|e| {
                format!(
                    "chain version {} is not a valid definition: {e}",
                    row.version
                )
            })?;
            return Ok((format!("v{} {}", row.version, row.name), spec));
        }
        let name = self.rt.config().scheduler.chain.clone();
        let spec = chains::preset(&name).ok_or_else(|| format!("unknown chain preset {name}"))?;
        Ok((format!("preset {name}"), spec))
    }

    /// [`Self::with_state`] ahead of every queued placement ([`super::state_lock`]).
    async fn with_state_first<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut super::State) -> R + Send + 'static,
    ) -> Result<R, RemoteError> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || f(&mut state.lock_first()))
            .await
            .map_err(|e| handler_error(format!("scheduler task failed: {e}")))
    }

    /// Build `spec` and make it the live chain. On failure the live chain stays.
    async fn activate_spec(&self, label: String, spec: ChainSpec) -> Result<(), String> {
        let engine = self.engine()?;
        let components = self.components(&spec).await?;
        let spec_c = spec.clone();
        let loaded =
            tokio::task::spawn_blocking(move || chains::load_all(&engine, &spec_c, &components))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot build chain {label}: {e}"))?;
        let label_c = label.clone();
        self.with_state_first(move |s| {
            let chain = chains::assemble(&loaded, s.chain.table())?;
            info!(chain = %label_c, stages = ?chain.stage_names(), pools = chain.table().len(), after_decisions = s.decided, "scheduler chain active");
            s.chain = chain;
            s.spec = spec;
            s.label = label_c;
            Ok::<_, crate::plugins::PluginError>(())
        })
        .await
        .map_err(|e| e.message)?
        .map_err(|e| format!("cannot build chain {label}: {e}"))
    }

    /// Start-up, SIGHUP and the `activate_chain` fanout: run the chain the database (or the
    /// configuration) says.
    pub(crate) async fn activate_current(&self) -> Result<(), String> {
        let _one = self.activating.lock().await;
        let (label, spec) = self.wanted_spec().await?;
        // Already live (reconciliation got there before a late fanout, or a SIGHUP changed
        // nothing of the chain): a chain is built only from its definition and content-addressed
        // components, so rebuilding it would change nothing.
        let (live_label, live_spec) = self
            .with_state_first(|s| (s.label.clone(), s.spec.clone()))
            .await
            .map_err(|e| e.message)?;
        if live_label == label && live_spec == spec {
            tracing::debug!(chain = %label, "scheduler chain already active");
            return Ok(());
        }
        let result = self.activate_spec(label, spec).await;
        if let Err(e) = &result {
            warn!(error = %e, "chain activation failed; the previous chain stays live");
        }
        result
    }

    /// Periodic reconciliation: the database is the source of truth and the fanout only tells.
    /// A scheduler that missed an `activate_chain` fanout (broker reconnect) or failed to build
    /// the chain runs a chain other than the wanted one; this notices and activates through
    /// [`Self::activate_current`], the path start-up and SIGHUP take. Returns whether it
    /// (re)activated.
    pub(crate) async fn reconcile_chain(&self) -> Result<bool, String> {
        let (label, spec) = self.wanted_spec().await?;
        let (live_label, live_spec) = self
            .with_state(|s| (s.label.clone(), s.spec.clone()))
            .await
            .map_err(|e| e.message)?;
        if live_label == label && live_spec == spec {
            return Ok(false);
        }
        warn!(live = %live_label, wanted = %label, "scheduler chain differs from the database's; activating it");
        self.activate_current().await?;
        Ok(true)
    }

    /// Shadow mode: build chain `version` beside the live one (or stop with `None`).
    pub(crate) async fn set_shadow(&self, version: Option<i64>) -> Result<(), RemoteError> {
        let Some(version) = version else {
            self.with_state(|s| s.shadow = None).await?;
            info!("shadow chain stopped");
            return Ok(());
        };
        let row = self.rt.db.chain_get(version).await.map_err(bad)?;
        let spec: ChainSpec = serde_json::from_str(&row.definition).map_err(handler_error)?;
        let engine = self.engine().map_err(handler_error)?;
        let components = self.components(&spec).await.map_err(bad)?;
        let loaded =
            tokio::task::spawn_blocking(move || chains::load_all(&engine, &spec, &components))
                .await
                .map_err(handler_error)?
                .map_err(bad)?;
        let label = format!("v{version} {}", row.name);
        self.with_state(move |s| {
            let chain = chains::assemble(&loaded, s.chain.table())?;
            info!(shadow = %label, "shadow chain running beside the live one");
            s.shadow = Some(super::shadow::Shadow::new(label, chain));
            Ok::<_, crate::plugins::PluginError>(())
        })
        .await?
        .map_err(bad)
    }

    /// Build `spec` beside the live chain and run a trial request through it.
    pub(crate) async fn validate_chain(&self, spec: ChainSpec) -> Result<Validation, RemoteError> {
        let engine = self.engine().map_err(handler_error)?;
        let components = self.components(&spec).await.map_err(bad)?;
        let spec_c = spec.clone();
        let loaded =
            tokio::task::spawn_blocking(move || chains::load_all(&engine, &spec_c, &components))
                .await
                .map_err(handler_error)?
                .map_err(bad)?;
        let active = self.active_backends().await?;
        let mut trial = self
            .with_state(move |s| {
                let candidates = s.index.candidates(&active, &[]);
                chains::assemble(&loaded, s.chain.table()).map(|c| (c, candidates))
            })
            .await?
            .map_err(bad)?;
        let (chain, candidates) = (&mut trial.0, trial.1);
        let request = placement::to_request(
            &RequestSpec {
                volume_id: "00000000-0000-4000-8000-000000000000".into(),
                size: 1,
                ..Default::default()
            },
            &RetryInfo::default(),
            Default::default(),
        );
        let decision = chain.decide_with(&request, &candidates, Explain::Always);
        if let Some(f) = decision.failures.first() {
            return Err(bad(format!("the trial request failed: {f}")));
        }
        Ok(Validation {
            stages: chain.stage_names(),
            trial_candidates: candidates.len(),
            trial_passed: decision.weighed.len(),
        })
    }

    /// Where `spec` would be placed now, with every filter's reasons and the weights.
    pub(crate) async fn dry_run(&self, spec: RequestSpec) -> Result<DryRun, RemoteError> {
        let active = self.active_backends().await?;
        let hinted = placement::hinted_volumes(&spec);
        let pools = self
            .rt
            .db
            .volume_hosts(&hinted)
            .await
            .map_err(handler_error)?;
        let request = placement::to_request(&spec, &RetryInfo::default(), pools);
        self.with_state(move |s| {
            let candidates = s.index.candidates(&active, &[]);
            let d = s.chain.decide_with(&request, &candidates, Explain::Always);
            let name = |id: u32| s.index.name(id).unwrap_or("?").to_string();
            DryRun {
                chain: s.label.clone(),
                chosen: d.best().map(name),
                weighed: d.weighed.iter().map(|(id, w)| (name(*id), *w)).collect(),
                removed: d
                    .removed
                    .iter()
                    .map(|r| {
                        (
                            r.filter.to_string(),
                            name(r.pool),
                            r.reason.clone().unwrap_or_default(),
                        )
                    })
                    .collect(),
                failures: d.failures.iter().map(ToString::to_string).collect(),
            }
        })
        .await
    }
}
