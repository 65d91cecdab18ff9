//! The WebAssembly plugin runtime (DESIGN.md §6): scheduler filters and weighers are
//! components of the `kiln:plugin` WIT package (`wit/kiln-plugin.wit`), run by wasmtime with
//! no ambient authority — no WASI at all, only the `log` and `config` imports (and for
//! volume drivers `exec` and `target`, both mediated by the host).
//!
//! - [`engine`]: the process's one `Engine` (pooling allocator, epoch ticker) and the
//!   content-addressed cache of precompiled components.
//! - [`instance`]: a loaded plugin and its instances; deadlines, memory caps, typed failures.
//! - [`chain`]: an ordered set of filters and weighers that keeps every instance's pool table
//!   in sync by deltas, runs a request through them, and replaces failed instances.
//! - [`builtin`]: the default plugins, embedded in the binary.
//! - [`bindings`]: the host side of the WIT contract.
//! - [`driver`]: third-party volume drivers (`volume-driver` world) behind the native
//!   `VolumeDriver` trait, one instance per call.
//! - [`exec`]: the deny-by-default `exec` import of drivers: manifests, matcher, runner, audit.

pub mod bindings;
pub mod builtin;

pub mod chain;
pub mod driver;
pub mod engine;
pub mod exec;
pub mod instance;
pub mod stage;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use chain::{Chain, Decision, Explain, Removal};
pub use engine::PluginEngine;
pub use instance::{Limits, LoadedPlugin, PluginInstance};

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    Filter,
    Weigher,
}

impl PluginKind {
    pub fn world(&self) -> &'static str {
        match self {
            PluginKind::Filter => "filter",
            PluginKind::Weigher => "weigher",
        }
    }
}

/// What happens to a request when a plugin fails on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Filters: every candidate is rejected ("plugin X failed: ..."). The default for filters:
    /// a broken filter must not let a request through to a pool it should have removed.
    FailClosed,
    /// Filters: every candidate passes. Weighers: the weigher is left out of the sum. The
    /// default for weighers: a broken weigher only loses its influence on the ranking.
    FailOpen,
}

/// Why a plugin could not be loaded or did not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    #[error("plugin cache: {0}")]
    Cache(String),
    #[error("plugin {plugin}: cannot compile the component: {reason}")]
    Compile { plugin: String, reason: String },
    #[error("plugin {plugin} is not a valid `{world}` component: {reason}")]
    WrongWorld {
        plugin: String,
        world: &'static str,
        reason: String,
    },
    #[error("plugin {plugin}: cannot instantiate: {reason}")]
    Instantiate { plugin: String, reason: String },
    #[error("plugin {plugin} trapped: {reason}")]
    Trap { plugin: String, reason: String },
    #[error("plugin {plugin} ran past its {deadline_ms} ms deadline")]
    Timeout { plugin: String, deadline_ms: u64 },
    #[error("plugin {plugin} exceeded its {cap_mib} MiB memory cap")]
    MemoryExceeded { plugin: String, cap_mib: u64 },
    #[error("plugin {plugin} returned a malformed result: {reason}")]
    BadResult { plugin: String, reason: String },
}

/// Counters of one plugin, for logs and `/metrics`.
#[derive(Debug, Default)]
pub struct PluginStats {
    pub calls: AtomicU64,
    pub call_nanos: AtomicU64,
    pub traps: AtomicU64,
    pub timeouts: AtomicU64,
    pub memory_exceeded: AtomicU64,
    pub bad_results: AtomicU64,
    pub instantiations: AtomicU64,
}

impl PluginStats {
    fn record_call(&self, took: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.call_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    fn record_failure(&self, err: &PluginError) {
        let (plugin, kind) = match err {
            PluginError::Timeout { plugin, .. } => (plugin.as_str(), "timeout"),
            PluginError::MemoryExceeded { plugin, .. } => (plugin.as_str(), "memory"),
            PluginError::BadResult { plugin, .. } => (plugin.as_str(), "bad_result"),
            PluginError::Trap { plugin, .. } => (plugin.as_str(), "trap"),
            _ => ("", "other"),
        };
        crate::metrics::plugin_failure(plugin, kind);
        let counter = match err {
            PluginError::Timeout { .. } => &self.timeouts,
            PluginError::MemoryExceeded { .. } => &self.memory_exceeded,
            PluginError::BadResult { .. } => &self.bad_results,
            _ => &self.traps,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Failures of every kind.
    pub fn failures(&self) -> u64 {
        self.traps.load(Ordering::Relaxed)
            + self.timeouts.load(Ordering::Relaxed)
            + self.memory_exceeded.load(Ordering::Relaxed)
            + self.bad_results.load(Ordering::Relaxed)
    }
}
