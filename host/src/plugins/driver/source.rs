//! Where a [`WasmDriver`] comes from: the backend's configuration (`plugin` = a `.wasm` path or
//! a builtin name; the manifest `plugin_manifest`, else the one beside the component), or a
//! component uploaded for a driver hot swap (bytes from the database, with the manifest given
//! to the swap, else the configured one). `plugin_exec_allow` narrows whichever manifest is
//! used: configuration narrows, never widens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{shared_engine, WasmDriver, DEFAULT_LIMITS};
use crate::config::{BackendConfig, Config};
use crate::drivers::DriverError;
use crate::plugins::exec::Manifest;
use crate::plugins::Limits;
use crate::targets::TargetHelper;

fn invalid(backend: &str, message: String) -> DriverError {
    DriverError::Invalid {
        backend: backend.to_string(),
        message,
    }
}

fn read(backend: &str, p: &Path) -> Result<Vec<u8>, DriverError> {
    std::fs::read(p).map_err(|source| DriverError::Io {
        backend: backend.to_string(),
        what: format!("read {}", p.display()),
        source,
    })
}

fn read_text(backend: &str, p: &Path) -> Result<String, DriverError> {
    Ok(String::from_utf8_lossy(&read(backend, p)?).into_owned())
}

/// The configured `plugin`: a path to a `.wasm` file, else a builtin driver's name.
enum Configured<'a> {
    Path(PathBuf),
    Builtin(&'a str),
}

fn configured<'a>(
    backend: &str,
    settings: &'a BackendConfig,
) -> Result<Configured<'a>, DriverError> {
    let spec = settings
        .plugin
        .as_deref()
        .ok_or_else(|| invalid(backend, "driver = \"wasm\" needs `plugin`".into()))?;
    if spec.ends_with(".wasm") || spec.contains('/') {
        Ok(Configured::Path(PathBuf::from(spec)))
    } else {
        Ok(Configured::Builtin(spec))
    }
}

fn builtin(
    backend: &str,
    name: &str,
) -> Result<&'static crate::plugins::builtin::BuiltinDriver, DriverError> {
    crate::plugins::builtin::driver(name).ok_or_else(|| {
        invalid(
            backend,
            format!(
                "plugin `{name}` is neither a .wasm path nor a builtin driver ({})",
                crate::plugins::builtin::DRIVERS
                    .iter()
                    .map(|d| d.file)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// The configured manifest's text and where it came from (for messages).
fn configured_manifest(
    backend: &str,
    settings: &BackendConfig,
) -> Result<(String, String), DriverError> {
    if let Some(p) = &settings.plugin_manifest {
        return Ok((read_text(backend, p)?, p.display().to_string()));
    }
    match configured(backend, settings)? {
        Configured::Path(path) => {
            let manifest = path.with_extension("toml");
            Ok((
                read_text(backend, &manifest)?,
                manifest.display().to_string(),
            ))
        }
        Configured::Builtin(name) => {
            let b = builtin(backend, name)?;
            Ok((b.manifest.to_string(), format!("builtin {}.toml", b.file)))
        }
    }
}

/// Parse `text` with the backend's settings and narrow it by `plugin_exec_allow`.
fn manifest(
    backend: &str,
    settings: &BackendConfig,
    text: &str,
    origin: &str,
) -> Result<Manifest, DriverError> {
    let mut manifest = Manifest::parse(text, &settings.plugin_config, origin)
        .map_err(|e| invalid(backend, format!("exec manifest {e}")))?;
    if let Some(allow) = &settings.plugin_exec_allow {
        manifest
            .narrow(allow)
            .map_err(|e| invalid(backend, format!("plugin_exec_allow: {e}")))?;
    }
    Ok(manifest)
}

fn limits(settings: &BackendConfig) -> Limits {
    Limits {
        call_deadline: Duration::from_millis(settings.plugin_deadline_ms),
        memory_bytes: (settings.plugin_memory_mib as usize) << 20,
        ..DEFAULT_LIMITS
    }
}

fn engine(backend: &str) -> Result<Arc<crate::plugins::PluginEngine>, DriverError> {
    shared_engine().map_err(|e| DriverError::Backend {
        backend: backend.to_string(),
        message: e.to_string(),
    })
}

impl WasmDriver {
    /// The driver configured for `backend` (`driver = "wasm"`): `plugin` is a path to a
    /// `.wasm` component or the name of a builtin driver; the manifest is `plugin_manifest`,
    /// else `<component>.toml` beside it; `plugin_exec_allow` narrows it.
    pub fn from_config(
        _config: &Config,
        backend: &str,
        settings: &BackendConfig,
        target: Option<Arc<dyn TargetHelper>>,
    ) -> Result<WasmDriver, DriverError> {
        let (name, bytes) = match configured(backend, settings)? {
            Configured::Path(path) => {
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| path.display().to_string());
                (name, read(backend, &path)?)
            }
            Configured::Builtin(name) => {
                let b = builtin(backend, name)?;
                (b.file.to_string(), b.bytes.to_vec())
            }
        };
        let (text, origin) = configured_manifest(backend, settings)?;
        let manifest = manifest(backend, settings, &text, &origin)?;
        WasmDriver::load(
            &engine(backend)?,
            backend,
            &name,
            &bytes,
            manifest,
            settings.plugin_config.clone(),
            limits(settings),
            target,
        )
    }

    /// A driver swap's candidate for `backend`: the uploaded component `name` (`bytes`) with
    /// the exec manifest `manifest_text` given with the swap, else the backend's configured
    /// manifest; settings, limits and target helper are the backend's.
    pub fn from_upload(
        backend: &str,
        settings: &BackendConfig,
        target: Option<Arc<dyn TargetHelper>>,
        name: &str,
        bytes: &[u8],
        manifest_text: Option<&str>,
    ) -> Result<WasmDriver, DriverError> {
        let (text, origin) = match manifest_text {
            Some(t) => (t.to_string(), format!("given with the swap to {name}")),
            None => configured_manifest(backend, settings)?,
        };
        let manifest = manifest(backend, settings, &text, &origin)?;
        WasmDriver::load(
            &engine(backend)?,
            backend,
            name,
            bytes,
            manifest,
            settings.plugin_config.clone(),
            limits(settings),
            target,
        )
    }

    /// Check that `bytes` is a component of the `volume-driver` world that links and
    /// instantiates, without calling it (its settings are a backend's): what an upload of a
    /// `driver` component is validated with. A filter, a weigher or a component importing
    /// anything beyond `log`, `config`, `exec` and `target` is refused.
    pub fn check_component(name: &str, bytes: &[u8]) -> Result<(), DriverError> {
        WasmDriver::load(
            &engine("upload")?,
            "upload",
            name,
            bytes,
            Manifest::default(),
            BTreeMap::new(),
            DEFAULT_LIMITS,
            None,
        )
        .map(|_| ())
    }
}
