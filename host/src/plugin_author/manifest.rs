//! `kiln-plugin.toml`, the file at the root of a plugin project: what the plugin is called,
//! which world it implements and in which language it is written. `kiln plugin new` writes it,
//! `kiln plugin build` reads it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AuthorError;
use crate::plugins::PluginKind;

/// The manifest's file name.
pub const FILE: &str = "kiln-plugin.toml";

/// The WIT package the templates are written against.
pub const PACKAGE: &str = "kiln:plugin@0.1.0";

/// Which world the plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Filter,
    Weigher,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Weigher => "weigher",
        }
    }

    /// The fully qualified world name (`kiln:plugin/filter@0.1.0`).
    pub fn world(&self) -> String {
        let (package, version) = PACKAGE.split_once('@').expect("PACKAGE has a version");
        format!("{package}/{}@{version}", self.as_str())
    }

    pub fn plugin_kind(&self) -> PluginKind {
        match self {
            Kind::Filter => PluginKind::Filter,
            Kind::Weigher => PluginKind::Weigher,
        }
    }

    pub fn parse(s: &str) -> Result<Kind, AuthorError> {
        match s {
            "filter" => Ok(Kind::Filter),
            "weigher" => Ok(Kind::Weigher),
            other => Err(AuthorError::Usage(format!(
                "kind must be `filter` or `weigher`, not `{other}`"
            ))),
        }
    }
}

/// The language of a plugin project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    C,
    Zig,
    Python,
    Js,
}

impl Language {
    pub const ALL: [Language; 5] = [
        Language::Rust,
        Language::C,
        Language::Zig,
        Language::Python,
        Language::Js,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::C => "c",
            Language::Zig => "zig",
            Language::Python => "python",
            Language::Js => "js",
        }
    }

    pub fn parse(s: &str) -> Result<Language, AuthorError> {
        Language::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| {
                AuthorError::Usage(format!(
                    "language must be one of rust, c, zig, python, js, not `{s}`"
                ))
            })
    }
}

/// The contents of `kiln-plugin.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The project's name (`min-free-filter`): lower-case letters, digits and `-`.
    pub name: String,
    pub kind: Kind,
    pub language: Language,
    /// The WIT world, fully qualified; must be `kind`'s world.
    pub world: String,
}

impl Manifest {
    pub fn new(name: &str, kind: Kind, language: Language) -> Result<Manifest, AuthorError> {
        check_name(name)?;
        Ok(Manifest {
            name: name.to_string(),
            kind,
            language,
            world: kind.world(),
        })
    }

    /// Read and check `dir/kiln-plugin.toml`.
    pub fn load(dir: &Path) -> Result<Manifest, AuthorError> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| AuthorError::Manifest {
            path: path.clone(),
            reason: format!(
                "{e} (a plugin project has a {FILE}; create one with `kiln plugin new`)"
            ),
        })?;
        Manifest::parse(&text).map_err(|reason| AuthorError::Manifest { path, reason })
    }

    pub fn parse(text: &str) -> Result<Manifest, String> {
        let m: Manifest = toml::from_str(text).map_err(|e| e.message().to_string())?;
        check_name(&m.name).map_err(|e| e.to_string())?;
        if m.world != m.kind.world() {
            return Err(format!(
                "world `{}` does not match kind `{}` (expected `{}`)",
                m.world,
                m.kind.as_str(),
                m.kind.world()
            ));
        }
        Ok(m)
    }

    pub fn render(&self) -> String {
        format!(
            "# A Kiln scheduler plugin project: `kiln plugin build` reads this file.\n\
             name = \"{}\"\nkind = \"{}\"\nlanguage = \"{}\"\nworld = \"{}\"\n",
            self.name,
            self.kind.as_str(),
            self.language.as_str(),
            self.world
        )
    }

    /// `min_free_filter`: file and library names.
    pub fn snake(&self) -> String {
        self.name.replace('-', "_")
    }

    /// `MinFreeFilter`: the name the plugin gives itself (its `name` export).
    pub fn display_name(&self) -> String {
        self.name
            .split('-')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Where `kiln plugin build` writes the component, relative to the project.
    pub fn output(&self) -> PathBuf {
        PathBuf::from("build").join(format!("{}.wasm", self.snake()))
    }
}

fn check_name(name: &str) -> Result<(), AuthorError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(AuthorError::Usage(format!(
            "plugin name `{name}`: use lower-case letters, digits and single dashes, starting \
             with a letter (at most 64 characters), e.g. `min-free-filter`"
        )))
    }
}

/// The project directory for `name` under `dir` (default: the current directory).
pub fn project_dir(name: &str, dir: Option<&Path>) -> PathBuf {
    dir.map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_round_trips_and_derives_its_names() {
        let m = Manifest::new("min-free-filter", Kind::Filter, Language::Rust).unwrap();
        assert_eq!(m.world, "kiln:plugin/filter@0.1.0");
        assert_eq!(Manifest::parse(&m.render()).unwrap(), m);
        assert_eq!(m.display_name(), "MinFreeFilter");
        assert_eq!(m.snake(), "min_free_filter");
        assert_eq!(m.output(), PathBuf::from("build/min_free_filter.wasm"));
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        let e = Manifest::parse(
            "name = \"x\"\nkind = \"filter\"\nlanguage = \"rust\"\nworld = \"kiln:plugin/weigher@0.1.0\"\n",
        )
        .unwrap_err();
        assert!(e.contains("does not match kind"), "{e}");
        let e = Manifest::parse(
            "name = \"x\"\nkind = \"sorter\"\nlanguage = \"rust\"\nworld = \"w\"\n",
        )
        .unwrap_err();
        assert!(e.contains("unknown variant"), "{e}");
        for bad in ["Upper", "1st", "a--b", "a-", "a_b", ""] {
            assert!(
                Manifest::new(bad, Kind::Filter, Language::C).is_err(),
                "{bad}"
            );
        }
    }
}
