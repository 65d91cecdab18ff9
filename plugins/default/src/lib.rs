//! # Kiln's default scheduler filters and weighers
//!
//! The logic of the default chain, ported from OpenStack Cinder's scheduler with Cinder's
//! semantics, written against the plain-Rust types of `kiln-plugin-sdk` (so the host can run
//! the same code natively for comparisons, and the WebAssembly components wrap it with the
//! SDK's `export_filter!` / `export_weigher!`).
//!
//! | Type | Cinder source |
//! |---|---|
//! | [`AvailabilityZoneFilter`] | `filters/availability_zone_filter.py` |
//! | [`CapacityFilter`] | `filters/capacity_filter.py` |
//! | [`CapabilitiesFilter`] | `filters/capabilities_filter.py` + `extra_specs_ops.py` |
//! | [`SameBackendFilter`], [`DifferentBackendFilter`] | `filters/affinity_filter.py` |
//! | [`JsonFilter`] | `filters/json_filter.py` |
//! | [`DriverFilter`] | `filters/driver_filter.py` + `evaluator/evaluator.py` |
//! | [`CapacityWeigher`] | `weights/capacity.py` + `utils.calculate_virtual_free_capacity` |
//! | [`AllocatedCapacityWeigher`] | `weights/capacity.py` |
//! | [`VolumeNumberWeigher`] | `weights/volume_number.py` |
//! | [`GoodnessWeigher`] | `weights/goodness.py` |
//! | [`ChanceWeigher`] | `weights/chance.py` |
//!
//! Weighers return *raw* weights; the host normalises them to [0, 1] and applies each
//! weigher's multiplier (Cinder's defaults: Capacity +1, AllocatedCapacity −1,
//! VolumeNumber −1, Goodness +1, Chance +1). No plugin panics on any input: bad user input
//! becomes a `Reject` with the reason, or a weight of 0.
//!
//! Each module's `//!` comment lists its deliberate deviations from Cinder.

mod affinity_filter;
mod allocated_capacity_weigher;
mod availability_zone_filter;
mod capabilities_filter;
mod capacity_filter;
mod capacity_weigher;
mod chance_weigher;
mod common;
mod driver_filter;
pub mod evaluator;
mod extra_specs;
mod goodness_weigher;
mod json_filter;
mod json_query;
mod volume_number_weigher;

#[cfg(test)]
mod perf;
#[cfg(test)]
mod testutil;

pub use affinity_filter::{DifferentBackendFilter, SameBackendFilter};
pub use allocated_capacity_weigher::AllocatedCapacityWeigher;
pub use availability_zone_filter::AvailabilityZoneFilter;
pub use capabilities_filter::CapabilitiesFilter;
pub use capacity_filter::CapacityFilter;
pub use capacity_weigher::CapacityWeigher;
pub use chance_weigher::ChanceWeigher;
pub use driver_filter::DriverFilter;
pub use goodness_weigher::GoodnessWeigher;
pub use json_filter::JsonFilter;
pub use volume_number_weigher::VolumeNumberWeigher;
