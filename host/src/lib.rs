//! Kiln: a block-storage control plane serving the OpenStack Cinder v3 API.
//!
//! The crate is organised one module per concept (see ARCHITECTURE.md):
//! [`config`] loads settings, [`db`] owns the schema and queries, [`rpc`] moves messages
//! between services, [`service`] runs a service's lifecycle (heartbeat, periodic tasks,
//! signals, supervision), and [`api`], [`scheduler`] and [`volume`] are the three services; [`plugins`] runs WASM
//! components ([`plugin_author`]: the plugin author's `kiln plugin new|build|test|inspect`), [`drivers`] and [`targets`] do the storage work, [`metrics`] counts.

pub mod api;
pub mod config;
pub mod db;
pub mod drivers;
pub mod metrics;
pub mod plugin_author;
pub mod plugins;
pub mod rpc;
pub mod scheduler;
pub mod service;
pub mod targets;
pub mod volume;
