//! # Kiln plugin SDK
//!
//! Write a Kiln scheduler filter or weigher as a WebAssembly component in a few lines. The
//! SDK keeps the plugin's pool table in step with the host (the `pool-sync` half of the WIT
//! contract in `wit/kiln-plugin.wit`), turns the WIT types into plain Rust types, and exports
//! your type through wit-bindgen. You write one function.
//!
//! ```ignore
//! // Cargo.toml: kiln-plugin-sdk = { path = "…", features = ["filter"] }, crate-type = ["cdylib"]
//! use kiln_plugin_sdk::{Filter, Pool, Request, Verdict};
//!
//! struct MinFree;
//!
//! impl Filter for MinFree {
//!     const NAME: &'static str = "MinFreeFilter";
//!     fn new() -> Self { MinFree }
//!     fn passes(&self, pool: &Pool, _request: &Request) -> Verdict {
//!         match pool.free_capacity_gb.gb() {
//!             Some(free) if free < 100.0 => Verdict::Reject(format!("only {free} GB free")),
//!             _ => Verdict::Pass,
//!         }
//!     }
//! }
//!
//! kiln_plugin_sdk::export_filter!(MinFree);
//! ```
//!
//! Build it for `wasm32-unknown-unknown` and wrap the module into a component (see the
//! README beside this crate, or `scripts/build-plugins`). A weigher is the same with
//! [`Weigher`], `features = ["weigher"]` and [`export_weigher!`].
//!
//! A volume driver implements [`VolumeDriver`] with `features = ["driver"]` and
//! [`export_driver!`]; it runs commands only through [`exec::run`] (granted by the manifest
//! beside its component) and exports through [`target`].
//!
//! Without a world feature the crate is plain Rust (types, [`PoolTable`], traits), which is
//! how the host runs the same plugin logic natively for comparison.

#[cfg(any(feature = "filter", feature = "weigher"))]
#[doc(hidden)]
pub mod bindings;
pub mod driver;
#[cfg(feature = "driver")]
#[doc(hidden)]
pub mod driver_bindings;
mod mem;
mod table;
mod types;

pub use driver::{
    exec, target, BackendStats, ConnectionInfo, Connector, DriverError, ModelUpdate, PoolStats,
    Snapshot, Volume, VolumeDriver,
};
pub use table::PoolTable;
pub use types::*;

/// A scheduler filter: decides, per candidate pool, whether it can take the request.
pub trait Filter: 'static {
    /// The name shown in messages, e.g. "CapacityFilter".
    const NAME: &'static str;

    /// Build the filter once per component instance (read settings with [`config::get`]).
    fn new() -> Self;

    /// Does `pool` pass for `request`?
    fn passes(&self, pool: &Pool, request: &Request) -> Verdict;

    /// All candidates at once; override to do per-request work once (parse the request's
    /// extra specs, say). The default calls [`Filter::passes`] per pool.
    fn filter(&self, request: &Request, pools: &[&Pool]) -> Vec<Verdict> {
        pools.iter().map(|p| self.passes(p, request)).collect()
    }

    /// The hot path: pass or not, without a reason. The host calls this on every request
    /// and asks [`Filter::filter`] for reasons only when it must explain a decision (no pool
    /// left, a dry run). Override it when writing the reason costs more than the check — the
    /// default filters do; it must agree with [`Filter::filter`] pool for pool.
    fn accept(&self, request: &Request, pools: &[&Pool]) -> Vec<bool> {
        self.filter(request, pools)
            .iter()
            .map(Verdict::is_pass)
            .collect()
    }
}

/// A scheduler weigher: a raw weight per candidate pool; the host normalises the weights of
/// all candidates to [0, 1] and multiplies them by the weigher's multiplier. Higher wins.
pub trait Weigher: 'static {
    const NAME: &'static str;

    fn new() -> Self;

    /// The raw weight of `pool` for `request`. Never NaN; `f64::INFINITY` ranks just above
    /// the best finite weight (Cinder's handling of "infinite" capacity).
    fn weight(&self, pool: &Pool, request: &Request) -> f64;

    /// All candidates at once; the default calls [`Weigher::weight`] per pool.
    fn weigh(&self, request: &Request, pools: &[&Pool]) -> Vec<f64> {
        pools.iter().map(|p| self.weight(p, request)).collect()
    }
}

/// `answer` over the candidates `table` holds, in candidate order. Every candidate is held
/// unless the host's sync is broken; then each missing one gets `missing(id)` in its place (and
/// a held one the answer fell short of gets `short()`), so positions stay aligned.
fn per_candidate<T>(
    table: &PoolTable,
    candidates: &[u32],
    answer: impl FnOnce(&[&Pool]) -> Vec<T>,
    missing: impl Fn(u32) -> T,
    short: impl Fn() -> T,
) -> Vec<T> {
    let (known, absent) = table.resolve(candidates);
    let answers = answer(&known);
    if absent.is_empty() {
        return answers;
    }
    let mut it = answers.into_iter();
    candidates
        .iter()
        .map(|id| match table.get(*id) {
            Some(_) => it.next().unwrap_or_else(&short),
            None => missing(*id),
        })
        .collect()
}

/// Run `filter` over `candidates` of `table` (what the exported `filter` function does).
/// A candidate the table does not hold is rejected, saying so.
pub fn run_filter<F: Filter>(
    filter: &F,
    table: &PoolTable,
    request: &Request,
    candidates: &[u32],
) -> Vec<Verdict> {
    per_candidate(
        table,
        candidates,
        |known| filter.filter(request, known),
        |id| Verdict::Reject(format!("pool {id} is unknown to {}", F::NAME)),
        || Verdict::Pass,
    )
}

/// Run `filter`'s reason-free hot path over `candidates` of `table` (the exported
/// `accept` function). A candidate the table does not hold is rejected.
pub fn run_accept<F: Filter>(
    filter: &F,
    table: &PoolTable,
    request: &Request,
    candidates: &[u32],
) -> Vec<bool> {
    per_candidate(
        table,
        candidates,
        |known| filter.accept(request, known),
        |_| false,
        || false,
    )
}

/// Run `weigher` over `candidates` of `table`. A candidate the table does not hold weighs 0.
pub fn run_weigher<W: Weigher>(
    weigher: &W,
    table: &PoolTable,
    request: &Request,
    candidates: &[u32],
) -> Vec<f64> {
    per_candidate(
        table,
        candidates,
        |known| weigher.weigh(request, known),
        |_| 0.0,
        || 0.0,
    )
}

/// The plugin's settings from its chain definition (only inside a component).
pub mod config {
    /// The value of `key`, if the operator set it.
    pub fn get(key: &str) -> Option<String> {
        #[cfg(feature = "filter")]
        return crate::bindings::filter::kiln::plugin::config::get(key);
        #[cfg(all(feature = "weigher", not(feature = "filter")))]
        return crate::bindings::weigher::kiln::plugin::config::get(key);
        #[cfg(all(feature = "driver", not(any(feature = "filter", feature = "weigher"))))]
        return crate::driver_bindings::kiln::plugin::config::get(key);
        #[cfg(not(any(feature = "filter", feature = "weigher", feature = "driver")))]
        {
            let _ = key;
            None
        }
    }

    /// `key` parsed as `T`, or `default` when unset or unparsable.
    pub fn get_or<T: std::str::FromStr>(key: &str, default: T) -> T {
        get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
    }
}

/// Logging into the host's log (only inside a component; a no-op natively).
pub mod log {
    #[derive(Debug, Clone, Copy)]
    pub enum Level {
        Trace,
        Debug,
        Info,
        Warn,
        Error,
    }

    pub fn log(level: Level, message: &str) {
        #[cfg(feature = "filter")]
        {
            use crate::bindings::filter::kiln::plugin::log as l;
            let level = match level {
                Level::Trace => l::Level::Trace,
                Level::Debug => l::Level::Debug,
                Level::Info => l::Level::Info,
                Level::Warn => l::Level::Warn,
                Level::Error => l::Level::Error,
            };
            l::log(level, message);
        }
        #[cfg(all(feature = "weigher", not(feature = "filter")))]
        {
            use crate::bindings::weigher::kiln::plugin::log as l;
            let level = match level {
                Level::Trace => l::Level::Trace,
                Level::Debug => l::Level::Debug,
                Level::Info => l::Level::Info,
                Level::Warn => l::Level::Warn,
                Level::Error => l::Level::Error,
            };
            l::log(level, message);
        }
        #[cfg(all(feature = "driver", not(any(feature = "filter", feature = "weigher"))))]
        {
            use crate::driver_bindings::kiln::plugin::log as l;
            let level = match level {
                Level::Trace => l::Level::Trace,
                Level::Debug => l::Level::Debug,
                Level::Info => l::Level::Info,
                Level::Warn => l::Level::Warn,
                Level::Error => l::Level::Error,
            };
            l::log(level, message);
        }
        #[cfg(not(any(feature = "filter", feature = "weigher", feature = "driver")))]
        let _ = (level, message);
    }

    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
}
