//! The plugin author's workflow behind `kiln plugin new | build | test | inspect` (and the
//! pool file `kiln plugin record` writes): everything a filter or weigher author needs between
//! an empty directory and an upload, offline, through the same runtime the scheduler uses.
//!
//! - [`manifest`]: `kiln-plugin.toml` (name, kind, language, world) and the names derived from it.
//! - [`templates`] / [`new`]: the project templates embedded in the binary, and scaffolding.
//! - [`build`]: each language's toolchain, ending in a component; missing tools named.
//! - [`inspect`]: a component's world, imports and exports; imports the world does not grant
//!   are refused.
//! - [`pool_file`]: pools and requests as JSON in the shape of the WIT records.
//! - [`offline`]: a component run against a pool file through [`crate::plugins`] (full sync,
//!   a one-stage chain, the scheduler's normalisation).

pub mod build;
pub mod inspect;
pub mod manifest;
pub mod new;
pub mod offline;
pub mod pool_file;
pub mod templates;

pub use manifest::{Kind, Language, Manifest};

use std::path::PathBuf;

/// Why an author command failed. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("{tool} is needed to build a {language} plugin and was not found. {install}")]
    MissingTool {
        tool: String,
        language: &'static str,
        install: String,
    },
    #[error("`{command}` failed ({status}); its output is above")]
    ToolFailed { command: String, status: String },
    #[error("cannot start `{command}`: {error}")]
    ToolNotStarted { command: String, error: String },
    #[error("not a component Kiln can run: {0}")]
    Invalid(String),
    #[error(transparent)]
    Plugin(#[from] crate::plugins::PluginError),
}

impl AuthorError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| AuthorError::Io {
            action,
            path,
            source,
        }
    }
}
