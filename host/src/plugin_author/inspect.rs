//! `kiln plugin inspect`: what a component is — which Kiln world its exports implement, what it
//! imports and exports (with the functions inside each interface) — and whether Kiln would run
//! it. Imports are checked against what the world grants: a filter or weigher may import only
//! `log` and `config` (and the type-only `types`); a volume driver also `exec`, `target` and
//! `driver-types`. Anything else — every `wasi:*` interface included — is refused, as the
//! host's linker would refuse it at upload.

use wasmparser::{
    component_types::ComponentEntityType, types::TypesRef, ComponentExternalKind, ComponentTypeRef,
    Parser, Payload, Validator, WasmFeatures,
};

use super::AuthorError;

/// The interfaces of the `kiln:plugin` package, by world.
const PACKAGE: &str = "kiln:plugin/";
const SCHEDULER_IMPORTS: &[&str] = &["types", "log", "config"];
const DRIVER_IMPORTS: &[&str] = &["types", "log", "config", "exec", "driver-types", "target"];

/// A world a component can implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    Filter,
    Weigher,
    VolumeDriver,
}

impl World {
    pub fn name(&self) -> &'static str {
        match self {
            World::Filter => "filter",
            World::Weigher => "weigher",
            World::VolumeDriver => "volume-driver",
        }
    }

    /// The exports the world requires (interfaces without their version).
    fn exports(&self) -> &'static [&'static str] {
        match self {
            World::Filter => &["kiln:plugin/pool-sync", "name", "accept", "filter"],
            World::Weigher => &["kiln:plugin/pool-sync", "name", "weigh"],
            World::VolumeDriver => &["kiln:plugin/driver"],
        }
    }

    fn granted(&self) -> &'static [&'static str] {
        match self {
            World::Filter | World::Weigher => SCHEDULER_IMPORTS,
            World::VolumeDriver => DRIVER_IMPORTS,
        }
    }
}

/// One import or export.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub name: String,
    /// `instance`, `func`, `type` …
    pub kind: &'static str,
    /// Functions of an instance, or a function's parameters: `log(level, message)`.
    pub detail: Vec<String>,
    /// Imports only: whether the world grants it.
    pub granted: bool,
}

/// What `inspect` found.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub size: usize,
    pub sha256: String,
    /// The world the exports implement, if any.
    pub world: Option<World>,
    /// `kiln:plugin@0.1.0`, from the versions of the package's interfaces.
    pub package_version: Option<String>,
    pub imports: Vec<Item>,
    pub exports: Vec<Item>,
    /// Why Kiln would not run it; empty when it would.
    pub problems: Vec<String>,
}

impl Inspection {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// `kiln:plugin/log@0.1.0` → (`log`, `0.1.0`); other names → None.
fn kiln_interface(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(PACKAGE)?;
    Some(rest.split_once('@').unwrap_or((rest, "")))
}

fn kind_name(kind: ComponentExternalKind) -> &'static str {
    match kind {
        ComponentExternalKind::Module => "module",
        ComponentExternalKind::Func => "func",
        ComponentExternalKind::Value => "value",
        ComponentExternalKind::Type => "type",
        ComponentExternalKind::Instance => "instance",
        ComponentExternalKind::Component => "component",
    }
}

fn ref_kind(ty: &ComponentTypeRef) -> &'static str {
    match ty {
        ComponentTypeRef::Module(_) => "module",
        ComponentTypeRef::Func(_) => "func",
        ComponentTypeRef::Value(_) => "value",
        ComponentTypeRef::Type(_) => "type",
        ComponentTypeRef::Instance(_) => "instance",
        ComponentTypeRef::Component(_) => "component",
    }
}

/// `name(a, b)` for a function; the functions of an instance.
fn detail(types: TypesRef<'_>, name: &str, ty: &ComponentEntityType) -> Vec<String> {
    let func =
        |types: TypesRef<'_>, name: &str, id: wasmparser::component_types::ComponentFuncTypeId| {
            let f = &types[id];
            let params: Vec<&str> = f.params.iter().map(|(n, _)| n.as_str()).collect();
            let arrow = if f.result.is_some() { " -> …" } else { "" };
            format!("{name}({}){arrow}", params.join(", "))
        };
    match ty {
        ComponentEntityType::Func(id) => vec![func(types, name, *id)],
        ComponentEntityType::Instance(id) => types[*id]
            .exports
            .iter()
            .filter_map(|(n, item)| match item.ty {
                ComponentEntityType::Func(f) => Some(func(types, n, f)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Why `world` does not grant the import `name`, or None when it does.
pub fn import_problem(world: World, name: &str) -> Option<String> {
    if kiln_interface(name).is_some_and(|(i, _)| world.granted().contains(&i)) {
        return None;
    }
    let hint = if name.starts_with("wasi:") {
        " (WASI: Kiln grants plugins no files, clock, network, environment or randomness; \
         avoid stdio and other I/O, or stub WASI out: componentize-py --stub-wasi, jco \
         --backend-qjs-stub-wasi)"
    } else {
        ""
    };
    Some(format!(
        "imports `{name}`, which the `{}` world does not grant{hint}",
        world.name()
    ))
}

/// Inspect the component `bytes`. An error means it is not a valid component at all;
/// anything Kiln would refuse about a valid one is in [`Inspection::problems`].
pub fn inspect(bytes: &[u8]) -> Result<Inspection, AuthorError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(AuthorError::Invalid(
            "not WebAssembly (no \\0asm header)".into(),
        ));
    }
    if !Parser::is_component(bytes) {
        return Err(AuthorError::Invalid(
            "a core module, not a component: wrap it with `kiln-componentize MODULE OUT` \
             (`kiln plugin build` does)"
                .into(),
        ));
    }
    let types = Validator::new_with_features(WasmFeatures::all())
        .validate_all(bytes)
        .map_err(|e| AuthorError::Invalid(format!("the component does not validate: {e}")))?;
    let types = types.as_ref();

    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| AuthorError::Invalid(e.to_string()))?;
        match payload {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| AuthorError::Invalid(e.to_string()))?;
                    let name = import.name.name.to_string();
                    let detail = types
                        .component_item_for_import(&name)
                        .map(|i| detail(types, &name, &i.ty))
                        .unwrap_or_default();
                    imports.push(Item {
                        kind: ref_kind(&import.ty),
                        name,
                        detail,
                        granted: false,
                    });
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| AuthorError::Invalid(e.to_string()))?;
                    let name = export.name.name.to_string();
                    let detail = types
                        .component_item_for_export(&name)
                        .map(|i| detail(types, &name, &i.ty))
                        .unwrap_or_default();
                    exports.push(Item {
                        kind: kind_name(export.kind),
                        name,
                        detail,
                        granted: true,
                    });
                }
            }
            _ => {}
        }
    }

    let exported = |wanted: &str| {
        exports
            .iter()
            .any(|e| e.name == wanted || e.name.split_once('@').is_some_and(|(n, _)| n == wanted))
    };
    let world = [World::Filter, World::Weigher, World::VolumeDriver]
        .into_iter()
        .find(|w| w.exports().iter().all(|e| exported(e)));
    let mut problems = Vec::new();
    let mut versions: Vec<String> = imports
        .iter()
        .chain(&exports)
        .filter_map(|i| kiln_interface(&i.name).map(|(_, v)| v.to_string()))
        .collect();
    versions.sort();
    versions.dedup();
    for v in &versions {
        // Before 1.0 a host serves the same minor version only.
        if !v.starts_with("0.1.") {
            problems.push(format!(
                "built against kiln:plugin@{v}; this Kiln serves kiln:plugin@0.1.x"
            ));
        }
    }
    match world {
        None => problems.push(
            "its exports implement no Kiln world: a filter exports `kiln:plugin/pool-sync`, \
             `name`, `accept` and `filter`; a weigher `kiln:plugin/pool-sync`, `name` and \
             `weigh`; a volume driver `kiln:plugin/driver`"
                .into(),
        ),
        Some(w) => {
            for import in &mut imports {
                // A type import (`use types.{request}` of the world) carries no authority.
                if import.kind == "type" {
                    import.granted = true;
                    continue;
                }
                match import_problem(w, &import.name) {
                    None => import.granted = true,
                    Some(p) => problems.push(p),
                }
            }
        }
    }
    Ok(Inspection {
        size: bytes.len(),
        sha256: crate::plugins::engine::content_hash(bytes),
        world,
        package_version: versions.first().map(|v| format!("kiln:plugin@{v}")),
        imports,
        exports,
        problems,
    })
}

/// The inspection as text for a terminal.
pub fn render(i: &Inspection) -> String {
    let mut out = String::new();
    let world = match (i.world, &i.package_version) {
        (Some(w), Some(v)) => format!(
            "{}/{}@{}",
            "kiln:plugin",
            w.name(),
            v.rsplit('@').next().unwrap_or("")
        ),
        (Some(w), None) => w.name().to_string(),
        (None, _) => "none (see below)".into(),
    };
    out.push_str(&format!(
        "component  {} bytes, sha256:{}\nworld      {world}\n",
        i.size, i.sha256
    ));
    for (title, items) in [("imports", &i.imports), ("exports", &i.exports)] {
        out.push_str(&format!("{title}\n"));
        if items.is_empty() {
            out.push_str("  (none)\n");
        }
        for item in items {
            let mark = if title == "imports" && !item.granted {
                "  NOT GRANTED"
            } else {
                ""
            };
            out.push_str(&format!("  {:<9} {}{mark}\n", item.kind, item.name));
            for d in &item.detail {
                out.push_str(&format!("              {d}\n"));
            }
        }
    }
    if i.ok() {
        out.push_str("verdict    OK: Kiln can run it\n");
    } else {
        for p in &i.problems {
            out.push_str(&format!("refused    {p}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(name: &str) -> &'static [u8] {
        crate::plugins::builtin::get(name).unwrap().bytes
    }

    #[test]
    fn the_default_filter_and_weigher_are_recognised_and_pass() {
        let i = inspect(builtin("capacity_filter")).unwrap();
        assert_eq!(i.world, Some(World::Filter), "{}", render(&i));
        assert!(i.ok(), "{}", render(&i));
        assert_eq!(i.package_version.as_deref(), Some("kiln:plugin@0.1.0"));
        let types = i
            .imports
            .iter()
            .find(|m| m.name == "kiln:plugin/types@0.1.0")
            .expect("imports the types");
        assert!(types.granted);
        assert!(i.imports.iter().all(|m| m.granted), "{}", render(&i));
        let text = render(&i);
        assert!(text.contains("accept(request, candidates) -> …"), "{text}");
        assert!(text.contains("verdict    OK"), "{text}");

        let w = inspect(builtin("capacity_weigher")).unwrap();
        assert_eq!(w.world, Some(World::Weigher));
        assert!(w.ok(), "{}", render(&w));
        // The weigher reads its multiplier: it imports `config`, which is granted.
        let config = w
            .imports
            .iter()
            .find(|m| m.name == "kiln:plugin/config@0.1.0")
            .expect("imports config");
        assert!(config.granted);
        assert!(
            config.detail.contains(&"get(key) -> …".to_string()),
            "{config:?}"
        );
    }

    #[test]
    fn a_driver_is_a_driver_and_non_components_are_errors() {
        let d = inspect(
            crate::plugins::builtin::driver("qemu_img_driver")
                .unwrap()
                .bytes,
        )
        .unwrap();
        assert_eq!(d.world, Some(World::VolumeDriver), "{}", render(&d));
        assert!(d.ok(), "{}", render(&d));
        assert!(d
            .imports
            .iter()
            .any(|i| i.name.contains("exec") && i.granted));

        let e = inspect(b"not wasm").unwrap_err().to_string();
        assert!(e.contains("not WebAssembly"), "{e}");
        // An empty core module: the header of version 1.
        let e = inspect(b"\0asm\x01\0\0\0").unwrap_err().to_string();
        assert!(e.contains("core module"), "{e}");
    }

    #[test]
    fn wasi_and_other_ungranted_imports_are_refused() {
        let wasi = import_problem(World::Filter, "wasi:cli/environment@0.2.0").unwrap();
        assert!(
            wasi.contains("does not grant") && wasi.contains("--stub-wasi"),
            "{wasi}"
        );
        let exec = import_problem(World::Weigher, "kiln:plugin/exec@0.1.0").unwrap();
        assert!(exec.contains("`weigher` world does not grant"), "{exec}");
        assert!(import_problem(World::VolumeDriver, "kiln:plugin/exec@0.1.0").is_none());
        assert!(import_problem(World::Filter, "kiln:plugin/config@0.1.0").is_none());
        assert!(import_problem(World::Filter, "other:pkg/log@0.1.0").is_some());
    }
}
