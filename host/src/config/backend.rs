//! One backend's table (`[backends.NAME]`): which driver serves it, the LVM and iSCSI target
//! settings, their defaults, and the rules `Config::validate` applies per backend.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// One storage backend, served by its own volume service `host@name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackendConfig {
    /// Driver: `file` (sparse files under `path`), `lvm` (logical volumes in `volume_group`) or
    /// `wasm` (a WebAssembly driver component named by `plugin`).
    pub driver: String,
    /// Reported as `volume_backend_name`; defaults to the backend's name.
    pub volume_backend_name: Option<String>,
    /// Zone of this backend's service; defaults to the process's `availability_zone`.
    pub availability_zone: Option<String>,
    /// File driver: directory holding volume files; defaults to `<data_dir>/volumes/<name>`.
    pub path: Option<PathBuf>,
    /// Percentage of capacity the scheduler must keep free.
    pub reserved_percentage: u8,
    /// Thin provisioning: provisioned / total may reach this ratio.
    pub max_over_subscription_ratio: f64,
    /// File driver: the pool's declared size in GiB, reported instead of the filesystem's
    /// (free = declared − the volumes' apparent sizes): sparse files promise more than the
    /// disk has, so an operator may size the pool by policy. Default: the filesystem's.
    pub capacity_gb: Option<f64>,
    /// LVM driver: the volume group holding the volumes.
    pub volume_group: String,
    /// LVM driver: `default` (thick LVs) or `thin` (thin LVs in the pool `<volume_group>-pool`).
    pub lvm_type: String,
    /// LVM driver: mirrors per thick volume (0 = none).
    pub lvm_mirrors: u32,
    /// LVM driver: `false` on hosts without device-mapper: LVM runs with activation disabled
    /// and only metadata operations (create, extend, delete, stats) work.
    pub lvm_activation: bool,
    /// iSCSI target helper exporting volumes: `none`, `tgtadm` or `lioadm`.
    pub target_helper: String,
    /// IQN prefix of the targets; the volume name is appended.
    pub target_prefix: String,
    /// Portals (`IP` or `IP:PORT`) given to attaching hosts; the first is `target_portal`.
    pub target_portals: Vec<String>,
    /// Port of portals given without one.
    pub target_port: u16,
    /// tgtadm: directory of the per-volume target files; defaults to
    /// `<data_dir>/targets/<name>`.
    pub volumes_dir: Option<PathBuf>,
    /// Per-volume CHAP credentials on every export.
    pub use_chap_auth: bool,
    /// WASM driver: a `.wasm` component path, or a builtin driver name (`qemu_img_driver`).
    pub plugin: Option<String>,
    /// WASM driver: the exec manifest; defaults to `<component>.toml` beside a path, the
    /// shipped manifest for a builtin.
    pub plugin_manifest: Option<PathBuf>,
    /// WASM driver: the plugin's settings (its `config` interface; manifest roots may name
    /// them).
    pub plugin_config: BTreeMap<String, String>,
    /// WASM driver: keep only the manifest's grants of these programs (narrowing only).
    pub plugin_exec_allow: Option<Vec<String>>,
    /// WASM driver: time one call may spend in the plugin's own code, in ms (commands it
    /// runs are bounded by their manifest timeouts instead).
    pub plugin_deadline_ms: u64,
    /// WASM driver: memory cap of a plugin instance, in MiB.
    pub plugin_memory_mib: u64,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            driver: "file".into(),
            volume_backend_name: None,
            availability_zone: None,
            path: None,
            reserved_percentage: 0,
            max_over_subscription_ratio: 20.0,
            capacity_gb: None,
            volume_group: "cinder-volumes".into(),
            lvm_type: "default".into(),
            lvm_mirrors: 0,
            lvm_activation: true,
            target_helper: "none".into(),
            target_prefix: "iqn.2010-10.org.openstack:".into(),
            target_portals: vec!["127.0.0.1:3260".into()],
            target_port: 3260,
            volumes_dir: None,
            use_chap_auth: true,
            plugin: None,
            plugin_manifest: None,
            plugin_config: BTreeMap::new(),
            plugin_exec_allow: None,
            plugin_deadline_ms: 2000,
            plugin_memory_mib: 64,
        }
    }
}

impl BackendConfig {
    /// Rules of one backend table; `key` turns a field name into `backends.NAME.field`.
    pub(super) fn validate(&self, key: &dyn Fn(&str) -> String) -> Result<(), ConfigError> {
        if !matches!(self.driver.as_str(), "file" | "lvm" | "wasm") {
            return Err(invalid(
                key("driver"),
                format!("unknown driver `{}`; known: file, lvm, wasm", self.driver),
            ));
        }
        if self
            .capacity_gb
            .is_some_and(|c| !(c.is_finite() && c > 0.0))
        {
            return Err(invalid(
                key("capacity_gb"),
                "must be a positive number of GiB",
            ));
        }
        if self.driver == "wasm" {
            if self.plugin.as_deref().is_none_or(str::is_empty) {
                return Err(invalid(
                    key("plugin"),
                    "driver = \"wasm\" needs the component: a .wasm path or a builtin name",
                ));
            }
            if self.plugin_deadline_ms == 0 || self.plugin_memory_mib == 0 {
                return Err(invalid(
                    key("plugin_deadline_ms"),
                    "plugin_deadline_ms and plugin_memory_mib must be positive",
                ));
            }
        }
        if !matches!(self.target_helper.as_str(), "none" | "tgtadm" | "lioadm") {
            return Err(invalid(
                key("target_helper"),
                format!(
                    "unknown target helper `{}`; known: none, tgtadm, lioadm",
                    self.target_helper
                ),
            ));
        }
        if self.driver == "lvm" {
            let vg_ok = !self.volume_group.is_empty()
                && !self.volume_group.starts_with('-')
                && self
                    .volume_group
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c));
            if !vg_ok {
                return Err(invalid(
                    key("volume_group"),
                    format!(
                        "`{}` is not a volume group name (letters, digits, `._-+`)",
                        self.volume_group
                    ),
                ));
            }
            if !matches!(self.lvm_type.as_str(), "default" | "thin") {
                return Err(invalid(
                    key("lvm_type"),
                    format!("unknown LVM type `{}`; known: default, thin", self.lvm_type),
                ));
            }
            if self.lvm_type == "thin" && self.lvm_mirrors > 0 {
                return Err(invalid(
                    key("lvm_mirrors"),
                    "mirrors are not supported with lvm_type = \"thin\"; set lvm_mirrors = 0",
                ));
            }
        }
        if self.target_helper != "none" {
            let prefix_ok = !self.target_prefix.is_empty()
                && self
                    .target_prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".:-".contains(c));
            if !prefix_ok {
                return Err(invalid(
                    key("target_prefix"),
                    "must be a non-empty IQN prefix (letters, digits, `.:-`)",
                ));
            }
            if let Err(reason) = self.portals() {
                return Err(invalid(key("target_portals"), reason));
            }
        }
        Ok(())
    }

    /// `target_portals` as `IP:PORT` strings (`target_port` added where missing).
    pub fn portals(&self) -> Result<Vec<String>, String> {
        if self.target_portals.is_empty() {
            return Err("needs at least one portal".into());
        }
        self.target_portals
            .iter()
            .map(|p| {
                if p.parse::<SocketAddr>().is_ok() {
                    Ok(p.clone())
                } else if let Ok(ip) = p.parse::<std::net::IpAddr>() {
                    Ok(SocketAddr::new(ip, self.target_port).to_string())
                } else {
                    Err(format!("`{p}` is neither IP nor IP:PORT"))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Overrides};

    fn load_str(toml: &str) -> Result<Config, crate::config::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.toml");
        std::fs::write(&path, toml).unwrap();
        Config::load(Some(&path), &Overrides::default())
    }

    #[test]
    fn backend_drivers_and_helpers_are_validated_by_key() {
        let base = "enabled_backends = [\"b\"]\n[backends.b]\n";
        let msg = load_str(&format!("{base}driver = \"ceph\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("backends.b.driver") && msg.contains("file, lvm, wasm"),
            "{msg}"
        );
        let msg = load_str(&format!("{base}target_helper = \"iet\"\n"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("backends.b.target_helper"), "{msg}");
        let msg = load_str(&format!("{base}driver = \"wasm\"\n"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("backends.b.plugin"), "{msg}");
        let ok = load_str(&format!(
            "{base}driver = \"wasm\"\nplugin = \"qemu_img_driver\"\n\
             plugin_config = {{ root = \"/srv/vols\" }}\n"
        ))
        .unwrap();
        assert_eq!(ok.backends["b"].plugin_config["root"], "/srv/vols");
        let msg = load_str(&format!("{base}driver = \"lvm\"\nlvm_type = \"fat\"\n"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("backends.b.lvm_type"), "{msg}");
        let msg = load_str(&format!(
            "{base}driver = \"lvm\"\nlvm_type = \"thin\"\nlvm_mirrors = 1\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(msg.contains("backends.b.lvm_mirrors"), "{msg}");
        let msg = load_str(&format!(
            "{base}target_helper = \"tgtadm\"\ntarget_portals = [\"host:x\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(msg.contains("backends.b.target_portals"), "{msg}");
        let ok = load_str(&format!(
            "{base}driver = \"lvm\"\nvolume_group = \"vg0\"\ntarget_helper = \"lioadm\"\n\
             target_portals = [\"10.0.0.1\", \"10.0.0.2:3261\"]\n"
        ))
        .unwrap();
        assert_eq!(
            ok.backends["b"].portals().unwrap(),
            vec!["10.0.0.1:3260", "10.0.0.2:3261"]
        );
    }
}
