//! The variables a pool's `filter_function` / `goodness_function` can use, mapped from Kiln's
//! pool and request onto the dictionaries Cinder's DriverFilter and GoodnessWeigher pass:
//!
//! - `capabilities.X`: [`Pool::capability`] (the standard fields and the driver's own).
//! - `stats.X`: Cinder's backend stats: `host` (the pool's full name `host@backend#pool`,
//!   as Cinder's pool-level host), `volume_backend_name`, `vendor_name`, `driver_version`,
//!   `storage_protocol`, `QoS_support` (from the capabilities; None when not reported),
//!   `total_capacity_gb`, `free_capacity_gb`, `allocated_capacity_gb`,
//!   `reserved_percentage`, `updated` (None); for the DriverFilter also `backend_id` (the
//!   full name) and `cluster_name` (None: Kiln has no clusters).
//! - `volume.X`: the request's volume: `size` (GiB; for extend the current size),
//!   `volume_type_id`, `project_id`, `multiattach`, `availability_zone` (when exactly one
//!   is requested).
//! - `extra.X`: the volume type's extra spec `X`.
//! - `qos.X`: Kiln requests carry no QoS specs, so every `qos.X` is missing (an error, as in
//!   Cinder for a key the specs lack).

use std::borrow::Cow;

use kiln_plugin_sdk::{Pool, Request};

use super::{Scope, Var};
use crate::common::{capability, CapRef};

/// Variables of one pool for one request.
pub struct PoolScope<'a> {
    pub pool: &'a Pool,
    pub request: &'a Request,
    /// DriverFilter's stats also carry `backend_id` and `cluster_name`; the
    /// GoodnessWeigher's do not.
    pub driver_filter: bool,
}

fn cap_var(c: CapRef<'_>) -> Var<'_> {
    match c {
        CapRef::Text(s) => Var::Text(Cow::Borrowed(s)),
        CapRef::Number(n) => Var::Number(n),
        CapRef::Boolean(b) => Var::Boolean(b),
    }
}

impl PoolScope<'_> {
    fn stats(&self, entry: &str) -> Option<Var<'_>> {
        let pool = self.pool;
        match entry {
            "host" => Some(Var::Text(Cow::Owned(pool.name()))),
            "backend_id" if self.driver_filter => Some(Var::Text(Cow::Owned(pool.name()))),
            "cluster_name" if self.driver_filter => Some(Var::Null),
            "volume_backend_name"
            | "vendor_name"
            | "driver_version"
            | "storage_protocol"
            | "QoS_support" => Some(capability(pool, entry).map_or(Var::Null, cap_var)),
            "total_capacity_gb"
            | "free_capacity_gb"
            | "allocated_capacity_gb"
            | "reserved_percentage" => capability(pool, entry).map(cap_var),
            "updated" => Some(Var::Null),
            _ => None,
        }
    }

    fn volume(&self, entry: &str) -> Option<Var<'_>> {
        let r = self.request;
        Some(match entry {
            "size" => Var::Number(r.size_gb as f64),
            "volume_type_id" => match &r.volume_type {
                Some(t) => Var::Text(Cow::Borrowed(&t.id)),
                None => Var::Null,
            },
            "project_id" => Var::Text(Cow::Borrowed(&r.project_id)),
            "multiattach" => Var::Boolean(r.multiattach),
            "availability_zone" => match r.availability_zones.as_slice() {
                [zone] => Var::Text(Cow::Borrowed(zone)),
                _ => Var::Null,
            },
            _ => return None,
        })
    }
}

impl Scope for PoolScope<'_> {
    fn var(&self, dict: &str, entry: &str) -> Option<Var<'_>> {
        match dict {
            "capabilities" => capability(self.pool, entry).map(cap_var),
            "stats" => self.stats(entry),
            "volume" => self.volume(entry),
            "extra" => {
                let spec = self.request.volume_type.as_ref()?.extra_specs.get(entry)?;
                Some(Var::Text(Cow::Borrowed(spec)))
            }
            _ => None,
        }
    }
}
