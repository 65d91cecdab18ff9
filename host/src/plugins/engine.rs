//! The one wasmtime [`Engine`] of a process: pooling allocator, epoch interruption driven by
//! a ticker thread, and compilation with an on-disk cache of precompiled artifacts keyed by
//! the component's content hash and the engine's compatibility hash (so a restart, or a
//! second scheduler on the same data directory, never compiles the same component twice).

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::PluginError;

/// How often the epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Limits of the instance pool shared by every plugin of the process.
const MAX_INSTANCES: u32 = 256;

pub struct PluginEngine {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// Hex sha256 of `bytes`: the identity of a component.
pub fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl PluginEngine {
    /// Build the engine. `cache_dir`: where precompiled artifacts live (`None`: no disk cache).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Arc<Self>, PluginError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.parallel_compilation(true);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_INSTANCES);
        pool.total_core_instances(MAX_INSTANCES * 8);
        pool.total_memories(MAX_INSTANCES);
        pool.total_tables(MAX_INSTANCES * 2);
        pool.max_memories_per_component(4); // a QuickJS (jco) component has 3
        pool.max_tables_per_component(4);
        // A componentize-py (Python) component links the interpreter, libc and its stubs as
        // separate modules: 38 core instances (plugins/examples/python). Rust, C, Zig and
        // QuickJS components have at most a handful.
        pool.max_core_instances_per_component(64);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;

        let stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let ticker_stop = stop.clone();
        std::thread::Builder::new()
            .name("kiln-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Engine(format!("cannot start the epoch ticker: {e}")))?;

        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| PluginError::Cache(format!("cannot create {}: {e}", dir.display())))?;
        }
        Ok(Arc::new(PluginEngine {
            engine,
            cache_dir,
            stop_ticker: stop,
        }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn cache_path(&self, hash: &str) -> Option<PathBuf> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        self.cache_dir
            .as_ref()
            .map(|d| d.join(format!("{hash}-{:016x}.cwasm", h.finish())))
    }

    /// Compile `bytes` (a component), or load its precompiled artifact from the cache.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Component, PluginError> {
        let hash = content_hash(bytes);
        let path = self.cache_path(&hash);
        if let Some(path) = &path {
            if path.exists() {
                // SAFETY: the file is an artifact this engine configuration wrote itself
                // (named by content hash and engine compatibility hash) into the operator's
                // data directory; wasmtime also checks the compatibility header.
                match unsafe { Component::deserialize_file(&self.engine, path) } {
                    Ok(c) => return Ok(c),
                    Err(e) => {
                        tracing::warn!(plugin = name, path = %path.display(), error = %e, "precompiled artifact unusable; recompiling")
                    }
                }
            }
        }
        let compile_err = |e: wasmtime::Error| PluginError::Compile {
            plugin: name.to_string(),
            reason: format!("{e:#}"),
        };
        let Some(path) = path else {
            return Component::new(&self.engine, bytes).map_err(compile_err);
        };
        let artifact = self
            .engine
            .precompile_component(bytes)
            .map_err(compile_err)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, &artifact).and_then(|_| std::fs::rename(&tmp, &path)) {
            tracing::warn!(plugin = name, error = %e, "cannot write precompiled artifact; continuing without cache");
        }
        // SAFETY: `artifact` was produced by `precompile_component` of this very engine.
        unsafe { Component::deserialize(&self.engine, &artifact) }.map_err(compile_err)
    }
}
