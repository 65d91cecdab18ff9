//! Kiln's default AllocatedCapacityWeigher (Cinder semantics; the logic lives in `kiln-default-plugins`).
kiln_plugin_sdk::export_weigher!(kiln_default_plugins::AllocatedCapacityWeigher);
