//! Host side of the WIT contract (`wit/kiln-plugin.wit`): wasmtime bindings of the `filter`
//! and `weigher` worlds (sharing one set of types), the host imports a plugin gets (`log`,
//! `config` — nothing else, no WASI), and conversions from the SDK's plain types, which the
//! host uses for pools and requests, to the generated ones.

use std::collections::BTreeMap;

use wasmtime::ResourceLimiter;

pub mod filter_world {
    wasmtime::component::bindgen!({ world: "filter", path: "../wit" });
}

pub mod weigher_world {
    wasmtime::component::bindgen!({
        world: "weigher",
        path: "../wit",
        with: {
            "kiln:plugin/types": super::filter_world::kiln::plugin::types,
            "kiln:plugin/log": super::filter_world::kiln::plugin::log,
            "kiln:plugin/config": super::filter_world::kiln::plugin::config,
        },
    });
}

pub use filter_world::kiln::plugin::types as wit;
use filter_world::kiln::plugin::{config, log, types};

use kiln_plugin_sdk as sdk;

/// Per-instance host state: the plugin's name and settings, and its memory cap.
pub struct HostState {
    pub plugin: String,
    pub config: BTreeMap<String, String>,
    pub limiter: MemoryCap,
}

/// Caps a plugin's linear memory; records that the cap was hit so the failure is reported
/// as "memory cap exceeded" rather than a bare trap.
pub struct MemoryCap {
    pub max_bytes: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "memory cap of {} MiB exceeded (wanted {} MiB)",
                self.max_bytes >> 20,
                desired >> 20
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl types::Host for HostState {}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let plugin = self.plugin.as_str();
        // Bound what a plugin can push into the host's log per line.
        let message: String = message.chars().take(2048).collect();
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl config::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    fn all(&mut self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

fn capacity(c: sdk::Capacity) -> wit::Capacity {
    match c {
        sdk::Capacity::Gb(v) => wit::Capacity::Gb(v),
        sdk::Capacity::Infinite => wit::Capacity::Infinite,
        sdk::Capacity::Unknown => wit::Capacity::Unknown,
    }
}

pub fn pool(p: &sdk::Pool) -> wit::Pool {
    wit::Pool {
        id: p.id,
        backend: p.backend.clone(),
        pool: p.pool.clone(),
        host: p.host.clone(),
        availability_zone: p.availability_zone.clone(),
        total_capacity_gb: capacity(p.total_capacity_gb),
        free_capacity_gb: capacity(p.free_capacity_gb),
        allocated_capacity_gb: p.allocated_capacity_gb,
        provisioned_capacity_gb: p.provisioned_capacity_gb,
        reserved_percentage: p.reserved_percentage,
        max_over_subscription_ratio: p.max_over_subscription_ratio,
        thin_provisioning_support: p.thin_provisioning_support,
        thick_provisioning_support: p.thick_provisioning_support,
        total_volumes: p.total_volumes,
        multiattach: p.multiattach,
        filter_function: p.filter_function.clone(),
        goodness_function: p.goodness_function.clone(),
        capabilities: p
            .capabilities
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    sdk::CapValue::Text(s) => wit::CapValue::Text(s.clone()),
                    sdk::CapValue::Number(n) => wit::CapValue::Number(*n),
                    sdk::CapValue::Boolean(b) => wit::CapValue::Boolean(*b),
                };
                (k.clone(), v)
            })
            .collect(),
    }
}

pub fn delta(d: &sdk::PoolDelta) -> wit::PoolDelta {
    match d {
        sdk::PoolDelta::Upsert(p) => wit::PoolDelta::Upsert(pool(p)),
        sdk::PoolDelta::Consume(c) => wit::PoolDelta::Consume(wit::Consumption {
            id: c.id,
            free_capacity_gb: capacity(c.free_capacity_gb),
            allocated_capacity_gb: c.allocated_capacity_gb,
            provisioned_capacity_gb: c.provisioned_capacity_gb,
            total_volumes: c.total_volumes,
        }),
        sdk::PoolDelta::Remove(id) => wit::PoolDelta::Remove(*id),
        sdk::PoolDelta::Clear => wit::PoolDelta::Clear,
    }
}

fn pairs(m: &BTreeMap<String, String>) -> Vec<(String, String)> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn request(r: &sdk::Request) -> wit::Request {
    wit::Request {
        operation: match r.operation {
            sdk::Operation::Create => wit::Operation::Create,
            sdk::Operation::Extend => wit::Operation::Extend,
            sdk::Operation::Retype => wit::Operation::Retype,
            sdk::Operation::Migrate => wit::Operation::Migrate,
        },
        volume_id: r.volume_id.clone(),
        project_id: r.project_id.clone(),
        size_gb: r.size_gb,
        new_size_gb: r.new_size_gb,
        volume_type: r.volume_type.as_ref().map(|t| wit::VolumeType {
            id: t.id.clone(),
            name: t.name.clone(),
            extra_specs: pairs(&t.extra_specs),
        }),
        availability_zones: r.availability_zones.clone(),
        scheduler_hints: pairs(&r.scheduler_hints),
        hint_volume_pools: pairs(&r.hint_volume_pools),
        metadata: pairs(&r.metadata),
        multiattach: r.multiattach,
        backends_tried: r.backends_tried.clone(),
    }
}

pub fn verdict(v: wit::Verdict) -> sdk::Verdict {
    match v {
        wit::Verdict::Pass => sdk::Verdict::Pass,
        wit::Verdict::Reject(reason) => sdk::Verdict::Reject(reason),
    }
}
