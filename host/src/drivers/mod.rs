//! Volume drivers: the native [`VolumeDriver`] trait and its implementations. A volume
//! service owns one driver; the manager asks it for stats, which become the capability
//! reports the scheduler places volumes by. (The volume operations join the trait with the
//! volume-service issue; the WASM driver world mirrors it.)

pub mod file;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::{BackendConfig, Config};

/// Driver failures at the module boundary.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("backend {backend}: {what}: {source}")]
    Io {
        backend: String,
        what: String,
        source: std::io::Error,
    },
    #[error("backend {backend}: unknown driver `{driver}`")]
    UnknownDriver { backend: String, driver: String },
}

/// A capacity in GiB, or Cinder's `infinite` / `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Capacity {
    Gb(f64),
    Special(SpecialCapacity),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecialCapacity {
    Infinite,
    Unknown,
}

/// One pool of a backend, as reported to the scheduler (Cinder's pool stats keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolStats {
    pub pool_name: String,
    pub total_capacity_gb: Capacity,
    pub free_capacity_gb: Capacity,
    pub allocated_capacity_gb: f64,
    pub provisioned_capacity_gb: f64,
    pub reserved_percentage: u8,
    pub max_over_subscription_ratio: f64,
    pub thin_provisioning_support: bool,
    pub thick_provisioning_support: bool,
    pub total_volumes: u64,
    pub multiattach: bool,
    #[serde(rename = "QoS_support")]
    pub qos_support: bool,
    /// Driver-specific capabilities matched by volume-type extra specs.
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A backend's stats: what `get_volume_stats` returns in Cinder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendStats {
    pub volume_backend_name: String,
    pub vendor_name: String,
    pub driver_version: String,
    pub storage_protocol: String,
    pub pools: Vec<PoolStats>,
}

/// The operations a volume driver offers the manager.
#[async_trait]
pub trait VolumeDriver: Send + Sync {
    /// Prepare the backend (create directories, check tools); run by `init_host`.
    async fn do_setup(&self) -> Result<(), DriverError>;
    /// Current capacity and capabilities.
    async fn get_volume_stats(&self) -> Result<BackendStats, DriverError>;
}

/// Build the driver configured for `backend`.
pub fn build(
    config: &Config,
    backend: &str,
    settings: &BackendConfig,
) -> Result<Box<dyn VolumeDriver>, DriverError> {
    match settings.driver.as_str() {
        "file" => Ok(Box::new(file::FileDriver::new(config, backend, settings))),
        other => Err(DriverError::UnknownDriver {
            backend: backend.to_string(),
            driver: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_serialises_like_cinder() {
        assert_eq!(
            serde_json::to_value(Capacity::Gb(1.5)).unwrap(),
            serde_json::json!(1.5)
        );
        assert_eq!(
            serde_json::to_value(Capacity::Special(SpecialCapacity::Infinite)).unwrap(),
            serde_json::json!("infinite")
        );
        let c: Capacity = serde_json::from_value(serde_json::json!("unknown")).unwrap();
        assert_eq!(c, Capacity::Special(SpecialCapacity::Unknown));
    }
}
