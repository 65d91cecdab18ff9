//! Kiln's default DriverFilter (Cinder semantics; the logic lives in `kiln-default-plugins`).
kiln_plugin_sdk::export_filter!(kiln_default_plugins::DriverFilter);
