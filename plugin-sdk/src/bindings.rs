//! wit-bindgen bindings of the world this plugin implements, conversions from the generated
//! types to the SDK's, the instance-wide pool table, and the export macros.

use std::cell::RefCell;

use crate::PoolTable;

thread_local! {
    /// The pool table of this component instance (a component instance is single-threaded).
    pub static TABLE: RefCell<PoolTable> = RefCell::new(PoolTable::new());
}

#[cfg(feature = "filter")]
pub mod filter {
    wit_bindgen::generate!({
        world: "filter",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_filter_world",
        default_bindings_module: "kiln_plugin_sdk::bindings::filter",
    });
    crate::conversions!();
}

#[cfg(feature = "weigher")]
pub mod weigher {
    wit_bindgen::generate!({
        world: "weigher",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_weigher_world",
        default_bindings_module: "kiln_plugin_sdk::bindings::weigher",
    });
    crate::conversions!();
}

/// Conversions between one world's generated types and the SDK's; expanded in each world
/// module (the generated types differ per world).
#[doc(hidden)]
#[macro_export]
macro_rules! conversions {
    () => {
        use self::kiln::plugin::types as w;

        impl From<w::Capacity> for $crate::Capacity {
            fn from(c: w::Capacity) -> Self {
                match c {
                    w::Capacity::Gb(v) => $crate::Capacity::Gb(v),
                    w::Capacity::Infinite => $crate::Capacity::Infinite,
                    w::Capacity::Unknown => $crate::Capacity::Unknown,
                }
            }
        }

        impl From<w::CapValue> for $crate::CapValue {
            fn from(c: w::CapValue) -> Self {
                match c {
                    w::CapValue::Text(s) => $crate::CapValue::Text(s),
                    w::CapValue::Number(n) => $crate::CapValue::Number(n),
                    w::CapValue::Boolean(b) => $crate::CapValue::Boolean(b),
                }
            }
        }

        impl From<w::Pool> for $crate::Pool {
            fn from(p: w::Pool) -> Self {
                $crate::Pool {
                    id: p.id,
                    backend: p.backend,
                    pool: p.pool,
                    host: p.host,
                    availability_zone: p.availability_zone,
                    total_capacity_gb: p.total_capacity_gb.into(),
                    free_capacity_gb: p.free_capacity_gb.into(),
                    allocated_capacity_gb: p.allocated_capacity_gb,
                    provisioned_capacity_gb: p.provisioned_capacity_gb,
                    reserved_percentage: p.reserved_percentage,
                    max_over_subscription_ratio: p.max_over_subscription_ratio,
                    thin_provisioning_support: p.thin_provisioning_support,
                    thick_provisioning_support: p.thick_provisioning_support,
                    total_volumes: p.total_volumes,
                    multiattach: p.multiattach,
                    filter_function: p.filter_function,
                    goodness_function: p.goodness_function,
                    capabilities: p
                        .capabilities
                        .into_iter()
                        .map(|(k, v)| (k, v.into()))
                        .collect(),
                }
            }
        }

        impl From<w::PoolDelta> for $crate::PoolDelta {
            fn from(d: w::PoolDelta) -> Self {
                match d {
                    w::PoolDelta::Upsert(p) => $crate::PoolDelta::Upsert(p.into()),
                    w::PoolDelta::Consume(c) => $crate::PoolDelta::Consume($crate::Consumption {
                        id: c.id,
                        free_capacity_gb: c.free_capacity_gb.into(),
                        allocated_capacity_gb: c.allocated_capacity_gb,
                        provisioned_capacity_gb: c.provisioned_capacity_gb,
                        total_volumes: c.total_volumes,
                    }),
                    w::PoolDelta::Remove(id) => $crate::PoolDelta::Remove(id),
                    w::PoolDelta::Clear => $crate::PoolDelta::Clear,
                }
            }
        }

        impl From<w::Request> for $crate::Request {
            fn from(r: w::Request) -> Self {
                $crate::Request {
                    operation: match r.operation {
                        w::Operation::Create => $crate::Operation::Create,
                        w::Operation::Extend => $crate::Operation::Extend,
                        w::Operation::Retype => $crate::Operation::Retype,
                        w::Operation::Migrate => $crate::Operation::Migrate,
                    },
                    volume_id: r.volume_id,
                    project_id: r.project_id,
                    size_gb: r.size_gb,
                    new_size_gb: r.new_size_gb,
                    volume_type: r.volume_type.map(|t| $crate::VolumeType {
                        id: t.id,
                        name: t.name,
                        extra_specs: t.extra_specs.into_iter().collect(),
                    }),
                    availability_zones: r.availability_zones,
                    scheduler_hints: r.scheduler_hints.into_iter().collect(),
                    hint_volume_pools: r.hint_volume_pools.into_iter().collect(),
                    metadata: r.metadata.into_iter().collect(),
                    multiattach: r.multiattach,
                    backends_tried: r.backends_tried,
                }
            }
        }

        /// Apply deltas to the instance's pool table.
        pub fn apply(deltas: Vec<w::PoolDelta>) {
            $crate::bindings::TABLE
                .with(|t| t.borrow_mut().apply(deltas.into_iter().map(Into::into)));
        }

        pub fn pool_count() -> u32 {
            $crate::bindings::TABLE.with(|t| t.borrow().len() as u32)
        }
    };
}

/// Export `$ty` (a [`crate::Filter`]) as this component's filter.
#[cfg(feature = "filter")]
#[macro_export]
macro_rules! export_filter {
    ($ty:ty) => {
        thread_local! {
            static KILN_FILTER_INSTANCE: $ty = <$ty as $crate::Filter>::new();
        }

        struct KilnFilterExport;

        impl $crate::bindings::filter::Guest for KilnFilterExport {
            fn name() -> String {
                <$ty as $crate::Filter>::NAME.to_string()
            }

            fn filter(
                request: $crate::bindings::filter::kiln::plugin::types::Request,
                candidates: Vec<u32>,
            ) -> Vec<$crate::bindings::filter::kiln::plugin::types::Verdict> {
                use $crate::bindings::filter::kiln::plugin::types::Verdict as W;
                let request: $crate::Request = request.into();
                let verdicts = KILN_FILTER_INSTANCE.with(|f| {
                    $crate::bindings::TABLE.with(|t| $crate::run_filter(f, &t.borrow(), &request, &candidates))
                });
                verdicts
                    .into_iter()
                    .map(|v| match v {
                        $crate::Verdict::Pass => W::Pass,
                        $crate::Verdict::Reject(reason) => W::Reject(reason),
                    })
                    .collect()
            }

            fn accept(
                request: $crate::bindings::filter::kiln::plugin::types::Request,
                candidates: Vec<u32>,
            ) -> Vec<bool> {
                let request: $crate::Request = request.into();
                KILN_FILTER_INSTANCE.with(|f| {
                    $crate::bindings::TABLE.with(|t| $crate::run_accept(f, &t.borrow(), &request, &candidates))
                })
            }
        }

        impl $crate::bindings::filter::exports::kiln::plugin::pool_sync::Guest for KilnFilterExport {
            fn apply(deltas: Vec<$crate::bindings::filter::kiln::plugin::types::PoolDelta>) {
                $crate::bindings::filter::apply(deltas)
            }
            fn pool_count() -> u32 {
                $crate::bindings::filter::pool_count()
            }
        }

        $crate::bindings::filter::export_filter_world!(KilnFilterExport with_types_in $crate::bindings::filter);
    };
}

/// Export `$ty` (a [`crate::Weigher`]) as this component's weigher.
#[cfg(feature = "weigher")]
#[macro_export]
macro_rules! export_weigher {
    ($ty:ty) => {
        thread_local! {
            static KILN_WEIGHER_INSTANCE: $ty = <$ty as $crate::Weigher>::new();
        }

        struct KilnWeigherExport;

        impl $crate::bindings::weigher::Guest for KilnWeigherExport {
            fn name() -> String {
                <$ty as $crate::Weigher>::NAME.to_string()
            }

            fn weigh(request: $crate::bindings::weigher::kiln::plugin::types::Request, candidates: Vec<u32>) -> Vec<f64> {
                let request: $crate::Request = request.into();
                KILN_WEIGHER_INSTANCE.with(|w| {
                    $crate::bindings::TABLE.with(|t| $crate::run_weigher(w, &t.borrow(), &request, &candidates))
                })
            }
        }

        impl $crate::bindings::weigher::exports::kiln::plugin::pool_sync::Guest for KilnWeigherExport {
            fn apply(deltas: Vec<$crate::bindings::weigher::kiln::plugin::types::PoolDelta>) {
                $crate::bindings::weigher::apply(deltas)
            }
            fn pool_count() -> u32 {
                $crate::bindings::weigher::pool_count()
            }
        }

        $crate::bindings::weigher::export_weigher_world!(KilnWeigherExport with_types_in $crate::bindings::weigher);
    };
}
