//! The plugin toolchains as `scripts/build-examples` installs them — componentize-py and ziglang
//! in a venv and jco through npm under `$KILN_EXAMPLES_TOOLS` (default
//! `~/.cache/kiln-examples-tools`), clang-19 from apt — and the `PATH` a user following
//! docs/plugin-guide.md would have with them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `$KILN_EXAMPLES_TOOLS`, else `~/.cache/kiln-examples-tools` (scripts/build-examples' default).
pub fn tools_dir() -> PathBuf {
    match std::env::var_os("KILN_EXAMPLES_TOOLS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/kiln-examples-tools"),
    }
}

/// The venv's `bin/` holding `componentize-py` (and `python-zig`).
pub fn venv_bin() -> PathBuf {
    tools_dir().join("venv/bin")
}

/// This process's `PATH` with `dirs` in front.
pub fn path_with(dirs: &[&Path]) -> OsString {
    let mut all: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    if let Some(path) = std::env::var_os("PATH") {
        all.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(all).expect("PATH entries without separators")
}

/// This process's `PATH`.
pub fn path() -> OsString {
    path_with(&[])
}
