//! The project templates of `kiln plugin new`, embedded in the binary (`templates/`), and
//! their rendering: `{{name}}`-style placeholders filled from the manifest. A Rust project
//! depends on the SDK by path or git; a C, Zig, Python or JavaScript project carries the WIT
//! (and C and Zig its generated C bindings), so it builds without a Kiln checkout.

use std::collections::BTreeMap;

use super::manifest::{Kind, Language, Manifest};
use super::AuthorError;

/// The WIT contract, as this binary was built against it.
pub const WIT: &str = include_str!("../../../wit/kiln-plugin.wit");

/// How a Rust project depends on `kiln-plugin-sdk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A directory holding the SDK crate (`plugin-sdk/` of a Kiln checkout).
    Path(std::path::PathBuf),
    /// A git repository holding the Kiln workspace.
    Git(String),
}

impl SdkSource {
    fn dependency(&self) -> String {
        match self {
            SdkSource::Path(p) => format!("path = {}", toml_string(&p.display().to_string())),
            SdkSource::Git(url) => format!("git = {}", toml_string(url)),
        }
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// One file of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Relative to the project directory.
    pub path: &'static str,
    pub contents: Vec<u8>,
}

struct Notes {
    toolchain: String,
    files: String,
}

fn notes(language: Language) -> Notes {
    let text = match language {
        Language::Rust => include_str!("templates/rust/notes.toml"),
        Language::C => include_str!("templates/c/notes.toml"),
        Language::Zig => include_str!("templates/zig/notes.toml"),
        Language::Python => include_str!("templates/python/notes.toml"),
        Language::Js => include_str!("templates/js/notes.toml"),
    };
    let t: BTreeMap<String, String> = toml::from_str(text).expect("embedded notes are valid TOML");
    Notes {
        toolchain: t["toolchain"].clone(),
        files: t["files"].clone(),
    }
}

/// What the author runs in a new project before `kiln plugin build`, beyond installing the
/// language's toolchain: JavaScript installs jco into the project.
pub fn setup(language: Language) -> Option<&'static str> {
    match language {
        Language::Js => Some("npm install"),
        Language::Rust | Language::C | Language::Zig | Language::Python => None,
    }
}

/// The examples' npm lock file (`plugins/examples/js/package-lock.json`: what
/// `scripts/build-examples` installs and the tests build with), under the project's name, so
/// that `npm install` in a new project installs exactly that tree.
const EXAMPLE_LOCK: &str = include_str!("../../../plugins/examples/js/package-lock.json");
const EXAMPLE_LOCK_HEAD: &str = "{\n  \"name\": \"kiln-example-plugins-js\",\n  \"lockfileVersion\": 3,\n  \
    \"requires\": true,\n  \"packages\": {\n    \"\": {\n      \"name\": \"kiln-example-plugins-js\",\n      \
    \"license\": \"Apache-2.0\",\n";

fn js_lock(name: &str) -> Result<String, AuthorError> {
    let rest = EXAMPLE_LOCK
        .strip_prefix(EXAMPLE_LOCK_HEAD)
        .ok_or_else(|| {
            AuthorError::Usage(
                "plugins/examples/js/package-lock.json does not start as kiln expects (a bug in \
             kiln's templates)"
                    .into(),
            )
        })?;
    let name = toml_string(name); // a project name needs no escaping; quoted alike in JSON
    Ok(format!(
        "{{\n  \"name\": {name},\n  \"lockfileVersion\": 3,\n  \"requires\": true,\n  \
         \"packages\": {{\n    \"\": {{\n      \"name\": {name},\n{rest}"
    ))
}

/// Replace every `{{key}}` of `vars` in `text` (twice, so values may hold placeholders);
/// a placeholder left over is a bug in the templates.
pub fn render(text: &str, vars: &BTreeMap<&str, String>) -> Result<String, AuthorError> {
    let mut out = text.to_string();
    for _ in 0..2 {
        for (k, v) in vars {
            out = out.replace(&format!("{{{{{k}}}}}"), v);
        }
    }
    if let Some(at) = out.find("{{") {
        let end = out[at..].find("}}").map_or(out.len(), |e| at + e + 2);
        return Err(AuthorError::Usage(format!(
            "template placeholder {} has no value (a bug in kiln's templates)",
            &out[at..end]
        )));
    }
    Ok(out)
}

fn vars(m: &Manifest, sdk: Option<&SdkSource>) -> BTreeMap<&'static str, String> {
    let notes = notes(m.language);
    let (behaviour, test_config, prints) = match m.kind {
        Kind::Filter => (
            "It rejects every pool whose free capacity is below the `min_free_gb` setting \
             (default 10), with a reason such as `8 GB free, below min_free_gb 10`.",
            "--setting min_free_gb=50",
            "verdict and, for a rejection, the reason",
        ),
        Kind::Weigher => (
            "It prefers pools whose capability `capability` (setting; default \
             `storage_protocol`) is the text `value` (setting; default `iSCSI`): they weigh 1, \
             every other pool 0.",
            "--setting capability=storage_protocol --setting value=file",
            "raw and normalised weight",
        ),
    };
    let language_name = match m.language {
        Language::Rust => "Rust",
        Language::C => "C",
        Language::Zig => "Zig",
        Language::Python => "Python",
        Language::Js => "JavaScript",
    };
    let mut v = BTreeMap::new();
    v.insert("name", m.name.clone());
    v.insert("display", m.display_name());
    v.insert("snake", m.snake());
    v.insert("kind", m.kind.as_str().to_string());
    v.insert("KIND", m.kind.as_str().to_ascii_uppercase());
    v.insert("world", m.world.clone());
    v.insert("output", m.output().display().to_string());
    v.insert("language_name", language_name.to_string());
    v.insert("behaviour", behaviour.to_string());
    v.insert("test_config", test_config.to_string());
    v.insert("test_prints", prints.to_string());
    v.insert(
        "setup",
        setup(m.language).map_or_else(String::new, |cmd| {
            format!("{cmd:<39}# first: the toolchain into this project\n")
        }),
    );
    v.insert("toolchain", notes.toolchain);
    v.insert("files", notes.files);
    if let Some(sdk) = sdk {
        v.insert("sdk_dependency", sdk.dependency());
    }
    v
}

macro_rules! t {
    ($path:literal) => {
        include_str!(concat!("templates/", $path))
    };
}

/// The `wit-bindgen c` bindings of the C examples (`plugins/examples/c/bindings`, regenerated and
/// checked by `scripts/build-examples` when the WIT changes): one copy serves both.
macro_rules! c_bindings {
    ($path:literal) => {
        include_str!(concat!("../../../plugins/examples/c/bindings/", $path))
    };
}

/// The `wit-bindgen c` bindings of both worlds under `bindings/`, for a C or Zig project.
fn c_bindings() -> Vec<File> {
    let mut files: Vec<File> = [
        ("bindings/WIT_SHA256", c_bindings!("WIT_SHA256")),
        ("bindings/filter/filter.c", c_bindings!("filter/filter.c")),
        ("bindings/filter/filter.h", c_bindings!("filter/filter.h")),
        (
            "bindings/weigher/weigher.c",
            c_bindings!("weigher/weigher.c"),
        ),
        (
            "bindings/weigher/weigher.h",
            c_bindings!("weigher/weigher.h"),
        ),
    ]
    .into_iter()
    .map(|(path, text)| File {
        path,
        contents: text.into(),
    })
    .collect();
    for (path, bytes) in [
        (
            "bindings/filter/filter_component_type.o",
            &include_bytes!("../../../plugins/examples/c/bindings/filter/filter_component_type.o")
                [..],
        ),
        (
            "bindings/weigher/weigher_component_type.o",
            &include_bytes!(
                "../../../plugins/examples/c/bindings/weigher/weigher_component_type.o"
            )[..],
        ),
    ] {
        files.push(File {
            path,
            contents: bytes.to_vec(),
        });
    }
    files
}

/// The files of a new project for `m`. A Rust project needs `sdk`.
pub fn project(m: &Manifest, sdk: Option<&SdkSource>) -> Result<Vec<File>, AuthorError> {
    let vars = vars(m, sdk);
    let r = |text: &str| render(text, &vars).map(String::into_bytes);
    let filter = m.kind == Kind::Filter;
    let mut files = vec![
        File {
            path: super::manifest::FILE,
            contents: m.render().into_bytes(),
        },
        File {
            path: "README.md",
            contents: r(t!("common/README.md.in"))?,
        },
    ];
    let wit = || File {
        path: "wit/kiln-plugin.wit",
        contents: WIT.as_bytes().to_vec(),
    };
    match m.language {
        Language::Rust => {
            if sdk.is_none() {
                return Err(AuthorError::Usage(
                    "a Rust plugin depends on kiln-plugin-sdk: give --sdk-path DIR (the \
                     plugin-sdk directory of a Kiln checkout) or --sdk-git URL"
                        .into(),
                ));
            }
            files.push(File {
                path: "Cargo.toml",
                contents: r(t!("rust/Cargo.toml.in"))?,
            });
            let lib = if filter {
                t!("rust/filter.rs.in")
            } else {
                t!("rust/weigher.rs.in")
            };
            files.push(File {
                path: "src/lib.rs",
                contents: r(lib)?,
            });
            files.push(File {
                path: ".gitignore",
                contents: t!("rust/gitignore.in").into(),
            });
        }
        Language::C => {
            let src = if filter {
                t!("c/filter.c.in")
            } else {
                t!("c/weigher.c.in")
            };
            files.push(File {
                path: "src/plugin.c",
                contents: r(src)?,
            });
            for (path, text) in [
                ("src/world.h", t!("c/world.h")),
                ("src/pool_table.h", t!("c/pool_table.h")),
                ("src/pool_table.c", t!("c/pool_table.c")),
                (".gitignore", t!("c/gitignore.in")),
            ] {
                files.push(File {
                    path,
                    contents: text.into(),
                });
            }
            files.extend(c_bindings());
            files.push(wit());
        }
        Language::Zig => {
            let src = if filter {
                t!("zig/filter.zig.in")
            } else {
                t!("zig/weigher.zig.in")
            };
            files.push(File {
                path: "src/plugin.zig",
                contents: r(src)?,
            });
            for (path, text) in [
                // The Zig example's pool table, unchanged: one copy serves both.
                (
                    "src/pool_table.zig",
                    include_str!("../../../plugins/examples/zig/src/pool_table.zig"),
                ),
                (".gitignore", t!("zig/gitignore.in")),
            ] {
                files.push(File {
                    path,
                    contents: text.into(),
                });
            }
            files.extend(c_bindings());
            files.push(wit());
        }
        Language::Python => {
            let src = if filter {
                t!("python/filter.py.in")
            } else {
                t!("python/weigher.py.in")
            };
            files.push(File {
                path: "app.py",
                contents: r(src)?,
            });
            files.push(File {
                path: "pool_table.py",
                contents: t!("python/pool_table.py").into(),
            });
            files.push(File {
                path: ".gitignore",
                contents: t!("python/gitignore.in").into(),
            });
            files.push(wit());
        }
        Language::Js => {
            let src = if filter {
                t!("js/filter.js.in")
            } else {
                t!("js/weigher.js.in")
            };
            files.push(File {
                path: "src/plugin.js",
                contents: r(src)?,
            });
            files.push(File {
                path: "src/pool_table.js",
                contents: t!("js/pool_table.js").into(),
            });
            files.push(File {
                path: "package.json",
                contents: r(t!("js/package.json.in"))?,
            });
            files.push(File {
                path: "package-lock.json",
                contents: js_lock(&m.name)?.into_bytes(),
            });
            files.push(File {
                path: ".gitignore",
                contents: t!("js/gitignore.in").into(),
            });
            files.push(wit());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(files: &[File], path: &str) -> String {
        let f = files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no {path}"));
        String::from_utf8(f.contents.clone()).unwrap()
    }

    #[test]
    fn every_language_and_kind_renders_without_leftover_placeholders() {
        let sdk = SdkSource::Path("/opt/kiln/plugin-sdk".into());
        for lang in Language::ALL {
            for kind in [Kind::Filter, Kind::Weigher] {
                let m = Manifest::new("min-free", kind, lang).unwrap();
                let files = project(&m, Some(&sdk)).unwrap();
                for f in &files {
                    if let Ok(s) = std::str::from_utf8(&f.contents) {
                        assert!(!s.contains("{{"), "{lang:?} {kind:?} {}: {s}", f.path);
                    }
                }
                let manifest = Manifest::parse(&text(&files, "kiln-plugin.toml")).unwrap();
                assert_eq!(manifest, m);
                let readme = text(&files, "README.md");
                assert!(readme.contains("# MinFree"), "{readme}");
                assert!(readme.contains("build/min_free.wasm"), "{readme}");
                assert!(readme.contains(&m.world), "{readme}");
            }
        }
    }

    #[test]
    fn the_rust_template_names_the_sdk_and_the_world_feature() {
        let m = Manifest::new("min-free-filter", Kind::Filter, Language::Rust).unwrap();
        let files = project(&m, Some(&SdkSource::Path("/src/kiln/plugin-sdk".into()))).unwrap();
        let cargo = text(&files, "Cargo.toml");
        let parsed: toml::Value = toml::from_str(&cargo).unwrap();
        let dep = &parsed["dependencies"]["kiln-plugin-sdk"];
        assert_eq!(dep["path"].as_str(), Some("/src/kiln/plugin-sdk"));
        assert_eq!(dep["features"][0].as_str(), Some("filter"));
        assert_eq!(parsed["package"]["name"].as_str(), Some("min-free-filter"));
        let lib = text(&files, "src/lib.rs");
        assert!(lib.contains("export_filter!(MinFreeFilter)"), "{lib}");
        assert!(lib.contains("const NAME: &'static str = \"MinFreeFilter\""));

        let m = Manifest::new("proto-weigher", Kind::Weigher, Language::Rust).unwrap();
        let files = project(&m, Some(&SdkSource::Git("https://example.org/kiln".into()))).unwrap();
        let cargo: toml::Value = toml::from_str(&text(&files, "Cargo.toml")).unwrap();
        let dep = &cargo["dependencies"]["kiln-plugin-sdk"];
        assert_eq!(dep["git"].as_str(), Some("https://example.org/kiln"));
        assert_eq!(dep["features"][0].as_str(), Some("weigher"));
        assert!(text(&files, "src/lib.rs").contains("export_weigher!(ProtoWeigher)"));

        let err = project(&m, None).unwrap_err().to_string();
        assert!(err.contains("--sdk-path"), "{err}");
    }

    #[test]
    fn non_rust_projects_carry_the_wit_and_c_its_current_bindings() {
        for lang in [Language::C, Language::Zig, Language::Python, Language::Js] {
            let m = Manifest::new("x", Kind::Weigher, lang).unwrap();
            let files = project(&m, None).unwrap();
            assert_eq!(text(&files, "wit/kiln-plugin.wit"), WIT);
        }
        // The embedded C bindings were generated from this very WIT.
        let sha = crate::plugins::engine::content_hash(WIT.as_bytes());
        assert_eq!(
            c_bindings!("WIT_SHA256").trim(),
            sha,
            "wit/kiln-plugin.wit changed: regenerate plugins/examples/c/bindings with \
             `scripts/build-examples --regenerate-bindings`"
        );
        let m = Manifest::new("x", Kind::Filter, Language::Python).unwrap();
        assert!(text(&project(&m, None).unwrap(), "app.py").contains("def kiln_accept"));
    }

    #[test]
    fn a_js_project_pins_the_npm_tree_the_examples_are_built_with() {
        let m = Manifest::new("js-min-free", Kind::Filter, Language::Js).unwrap();
        let files = project(&m, None).unwrap();
        let package: serde_json::Value =
            serde_json::from_str(&text(&files, "package.json")).unwrap();
        let lock: serde_json::Value =
            serde_json::from_str(&text(&files, "package-lock.json")).unwrap();
        assert_eq!(lock["name"], "js-min-free");
        assert_eq!(lock["packages"][""]["name"], "js-min-free");
        // npm installs from the lock only while it agrees with package.json.
        assert_eq!(
            lock["packages"][""]["devDependencies"],
            package["devDependencies"]
        );
        let jco = package["devDependencies"]["@bytecodealliance/jco"]
            .as_str()
            .unwrap();
        assert_eq!(
            lock["packages"]["node_modules/@bytecodealliance/jco"]["version"],
            jco
        );
        // The same pins as the examples, whose build CI checks.
        let example: serde_json::Value =
            serde_json::from_str(include_str!("../../../plugins/examples/js/package.json"))
                .unwrap();
        assert_eq!(example["devDependencies"], package["devDependencies"]);
        assert_eq!(example["overrides"], package["overrides"]);
        assert!(text(&files, "README.md").contains("npm install"));
    }

    #[test]
    fn a_missing_value_is_reported() {
        let e = render("a {{nope}} b", &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("{{nope}}"), "{e}");
    }
}
