//! `kiln plugin new`: write a project from the embedded templates into a new directory.

use std::path::{Path, PathBuf};

use super::templates::{self, SdkSource};
use super::{AuthorError, Manifest};

/// The SDK of the Kiln checkout this binary was built from, if it is still there: the default
/// `--sdk-path` of a Rust project.
pub fn default_sdk() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
    dir.join("Cargo.toml")
        .is_file()
        .then(|| dir.canonicalize().ok())
        .flatten()
}

/// What was created.
#[derive(Debug)]
pub struct Scaffold {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Create the project of `manifest` in `dir`, which must not exist or be empty.
pub fn scaffold(
    manifest: &Manifest,
    dir: &Path,
    sdk: Option<SdkSource>,
) -> Result<Scaffold, AuthorError> {
    let sdk = match sdk {
        Some(SdkSource::Path(p)) => {
            Some(SdkSource::Path(p.canonicalize().map_err(|e| {
                AuthorError::Usage(format!("--sdk-path {}: {e}", p.display()))
            })?))
        }
        Some(git) => Some(git),
        None => default_sdk().map(SdkSource::Path),
    };
    if let (super::Language::Rust, Some(SdkSource::Path(p))) = (manifest.language, &sdk) {
        if !p.join("Cargo.toml").is_file() {
            return Err(AuthorError::Usage(format!(
                "--sdk-path {}: no Cargo.toml there (give the plugin-sdk directory of a Kiln checkout)",
                p.display()
            )));
        }
    }
    let files = templates::project(manifest, sdk.as_ref())?;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(AuthorError::io("read", dir))?;
        if entries.next().is_some() {
            return Err(AuthorError::Usage(format!(
                "{} exists and is not empty; choose another --dir",
                dir.display()
            )));
        }
    }
    let mut written = Vec::new();
    for f in &files {
        let path = dir.join(f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(AuthorError::io("create", parent))?;
        }
        std::fs::write(&path, &f.contents).map_err(AuthorError::io("write", &path))?;
        written.push(path);
    }
    // A Rust project next to a checkout starts from the checkout's lock file, so it builds with
    // the versions Kiln is tested with (cargo drops the entries the project does not use).
    if let Some(SdkSource::Path(sdk)) = &sdk {
        let lock = sdk.join("../Cargo.lock");
        if manifest.language == super::Language::Rust && lock.is_file() {
            let to = dir.join("Cargo.lock");
            std::fs::copy(&lock, &to).map_err(AuthorError::io("copy", &lock))?;
            written.push(to);
        }
    }
    tracing::info!(dir = %dir.display(), name = %manifest.name, kind = manifest.kind.as_str(), language = manifest.language.as_str(), "plugin project created");
    Ok(Scaffold {
        dir: dir.to_path_buf(),
        files: written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin_author::{Kind, Language};

    #[test]
    fn a_project_is_written_once_and_never_over_existing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        let m = Manifest::new("min-free", Kind::Filter, Language::C).unwrap();
        let s = scaffold(&m, &dir, None).unwrap();
        assert!(dir.join("src/plugin.c").is_file());
        assert!(dir
            .join("bindings/filter/filter_component_type.o")
            .is_file());
        assert_eq!(Manifest::load(&dir).unwrap(), m);
        assert!(s.files.len() >= 10, "{:?}", s.files);
        let e = scaffold(&m, &dir, None).unwrap_err().to_string();
        assert!(e.contains("not empty"), "{e}");
    }

    #[test]
    fn a_rust_project_uses_this_checkouts_sdk_by_default() {
        let tmp = tempfile::tempdir().unwrap();
        let m = Manifest::new("w", Kind::Weigher, Language::Rust).unwrap();
        scaffold(&m, tmp.path(), None).unwrap();
        let cargo = std::fs::read_to_string(tmp.path().join("Cargo.toml")).unwrap();
        let sdk = default_sdk().expect("tests run in a checkout");
        assert!(cargo.contains(&sdk.display().to_string()), "{cargo}");
        assert!(tmp.path().join("Cargo.lock").is_file());
        let empty = tempfile::tempdir().unwrap();
        let bad = scaffold(
            &m,
            &tmp.path().join("q"),
            Some(SdkSource::Path(empty.path().into())),
        )
        .unwrap_err();
        assert!(bad.to_string().contains("no Cargo.toml"), "{bad}");
    }
}
