//! `kiln plugin build`: read `kiln-plugin.toml`, run the project's language toolchain with the
//! recipes Kiln's own build scripts use, and write `build/<name>.wasm`, a component that
//! [`super::inspect`] then checks. A missing tool stops the build with what to install.
//!
//! - Rust: `cargo build --target wasm32-unknown-unknown` (a rustup target when installed,
//!   else Debian's rustc-web with `-Zbuild-std`, as `scripts/build-plugins`), then
//!   `kiln-componentize`.
//! - C: `clang-19 --target=wasm32-wasi -mexec-model=reactor` over the project's wit-bindgen
//!   bindings, then `kiln-componentize`.
//! - Zig: `zig translate-c` of the bindings' header (the module `world`), `zig build-exe
//!   -target wasm32-wasi -mexec-model=reactor` over the same bindings, then `kiln-componentize`.
//! - Python: `componentize-py … --stub-wasi` (a filter's `accept` built as `kiln-accept`
//!   and renamed back by `kiln-componentize --rename-export`).
//! - JavaScript: `jco componentize … --backend qjs --backend-qjs-stub-wasi` (the project's
//!   own jco, from `npm install`, before one on PATH).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::inspect;
use super::manifest::{Kind, Language, Manifest};
use super::AuthorError;

/// A found tool, or how to get it.
fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn env_or_path(var: &str, program: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| which(program))
}

fn missing(tool: &str, language: Language, install: &str) -> AuthorError {
    AuthorError::MissingTool {
        tool: tool.to_string(),
        language: language.as_str(),
        install: install.to_string(),
    }
}

/// `kiln-componentize`: `$KILN_COMPONENTIZE`, beside this `kiln`, or on PATH.
fn componentizer(language: Language) -> Result<PathBuf, AuthorError> {
    let exe = std::env::current_exe().ok();
    let beside = exe
        .as_ref()
        .map(|exe| exe.with_file_name("kiln-componentize"))
        .filter(|p| p.is_file());
    std::env::var_os("KILN_COMPONENTIZE")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or(beside)
        .or_else(|| which("kiln-componentize"))
        .ok_or_else(|| {
            missing(
                "kiln-componentize",
                language,
                &componentizer_install(exe.as_deref()),
            )
        })
}

/// How to get `kiln-componentize` beside the running `kiln`: a `cargo build` of the same
/// profile when `kiln` runs from a Cargo target directory (`target/release/kiln` needs
/// `--release`).
fn componentizer_install(exe: Option<&Path>) -> String {
    let dir = exe.and_then(Path::parent);
    let profile = dir
        .and_then(|d| d.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let build = match profile {
        "release" => "`cargo build --release -p kiln-componentize`".to_string(),
        "debug" => "`cargo build -p kiln-componentize`".to_string(),
        other if dir.is_some_and(|d| d.join("../.rustc_info.json").is_file()) => {
            format!("`cargo build --profile {other} -p kiln-componentize`")
        }
        _ => "`cargo build --release -p kiln-componentize`".to_string(),
    };
    let beside = dir.map_or_else(
        || "beside `kiln`".to_string(),
        |d| format!("so that it lands beside this `kiln` in {}", d.display()),
    );
    format!(
        "Build it in the Kiln checkout with {build} ({beside}), or install it with `cargo \
         install --path plugins/componentize`, or point $KILN_COMPONENTIZE at it."
    )
}

fn run(cmd: &mut Command) -> Result<(), AuthorError> {
    let shown = format!("{cmd:?}");
    tracing::debug!(command = %shown, "running");
    let status = cmd.status().map_err(|e| {
        let program = PathBuf::from(cmd.get_program());
        // A script (jco, componentize-py) whose interpreter is missing fails to start with
        // "not found" although the script itself exists.
        let hint = if e.kind() == std::io::ErrorKind::NotFound && program.is_file() {
            format!(
                " ({} exists: the interpreter on its first line is probably not on PATH)",
                program.display()
            )
        } else {
            String::new()
        };
        AuthorError::ToolNotStarted {
            command: shown.clone(),
            error: format!("{e}{hint}"),
        }
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(AuthorError::ToolFailed {
            command: shown,
            status: status.to_string(),
        })
    }
}

/// Build the project in `dir`; the component's path. The component is inspected: one Kiln
/// would refuse fails the build.
pub fn build(dir: &Path) -> Result<PathBuf, AuthorError> {
    let m = Manifest::load(dir)?;
    let dir = dir
        .canonicalize()
        .map_err(AuthorError::io("resolve", dir))?;
    let out = dir.join(m.output());
    let build_dir = out.parent().expect("output has a directory").to_path_buf();
    std::fs::create_dir_all(&build_dir).map_err(AuthorError::io("create", &build_dir))?;
    tracing::info!(name = %m.name, language = m.language.as_str(), kind = m.kind.as_str(), "building plugin");
    match m.language {
        Language::Rust => rust(&m, &dir, &out)?,
        Language::C => c(&m, &dir, &out)?,
        Language::Zig => zig(&m, &dir, &out)?,
        Language::Python => python(&m, &dir, &out)?,
        Language::Js => js(&m, &dir, &out)?,
    }
    let bytes = std::fs::read(&out).map_err(AuthorError::io("read", &out))?;
    let found = inspect::inspect(&bytes)?;
    if !found.ok() {
        return Err(AuthorError::Invalid(format!(
            "{} was built but Kiln would refuse it: {}",
            out.display(),
            found.problems.join("; ")
        )));
    }
    if found.world.map(|w| w.name()) != Some(m.kind.as_str()) {
        return Err(AuthorError::Invalid(format!(
            "{} implements {:?}, but kiln-plugin.toml says kind = \"{}\"",
            out.display(),
            found.world.map(|w| w.name()),
            m.kind.as_str()
        )));
    }
    Ok(out)
}

/// Where Rust plugins are compiled (std included, when built from source).
fn wasm_target_dir() -> PathBuf {
    std::env::var_os("KILN_WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
            home.join(".cache/kiln-plugin-wasm-target")
        })
}

fn rust(m: &Manifest, dir: &Path, out: &Path) -> Result<(), AuthorError> {
    let componentize = componentizer(m.language)?;
    let rustup_target = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .is_some_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "wasm32-unknown-unknown")
        });
    let target_dir = wasm_target_dir();
    let registry = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default()
        .join("registry/src");
    let mut flags = format!(
        "-C panic=abort -C opt-level=3 --remap-path-prefix={}=/plugin --remap-path-prefix={}=/cargo-registry",
        dir.display(),
        registry.display()
    );
    let mut cmd;
    if rustup_target {
        cmd = Command::new("cargo");
        cmd.arg("build");
    } else {
        let debian = Path::new("/usr/bin/rustc").is_file()
            && Path::new("/usr/lib/rustlib/src/rust/library").is_dir()
            && which("wasm-ld-19").is_some();
        if !debian {
            return Err(missing(
                "a Rust toolchain for wasm32-unknown-unknown",
                m.language,
                "Either `rustup target add wasm32-unknown-unknown`, or on Debian/Ubuntu \
                 `apt-get install rustc-web cargo-web rust-web-src lld-19` (Kiln's \
                 scripts/build-plugins installs the latter).",
            ));
        }
        flags.push_str(" -C linker=wasm-ld-19");
        cmd = Command::new("/usr/bin/cargo");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![PathBuf::from("/usr/bin")];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap_or(path))
            .env("RUSTC", "/usr/bin/rustc")
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["build", "-Zbuild-std=std,panic_abort"]);
    }
    cmd.args([
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "--manifest-path",
    ])
    .arg(dir.join("Cargo.toml"))
    .env("CARGO_TARGET_DIR", &target_dir)
    .env("RUSTFLAGS", flags)
    .env_remove("RUSTC_WRAPPER");
    run(&mut cmd)?;
    let module = target_dir
        .join("wasm32-unknown-unknown/release")
        .join(format!("{}.wasm", m.snake()));
    run(Command::new(componentize).arg(&module).arg(out))
}

fn c(m: &Manifest, dir: &Path, out: &Path) -> Result<(), AuthorError> {
    let clang = env_or_path("CLANG", "clang-19").ok_or_else(|| {
        missing(
            "clang-19",
            m.language,
            "On Debian/Ubuntu: `apt-get install clang-19 lld-19 libclang-rt-19-dev-wasm32 \
             wasi-libc` (or set $CLANG to a clang with the wasm32-wasi target).",
        )
    })?;
    let rt = Path::new("/usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a");
    if std::env::var_os("CLANG").is_none()
        && (!rt.is_file() || !Path::new("/usr/lib/wasm32-wasi/libc.a").is_file())
    {
        return Err(missing(
            "the wasm32 compiler runtime and wasi-libc",
            m.language,
            "On Debian/Ubuntu: `apt-get install libclang-rt-19-dev-wasm32 wasi-libc`.",
        ));
    }
    let componentize = componentizer(m.language)?;
    let world = m.kind.as_str();
    let module = dir.join("build").join(format!("{}.module.wasm", m.snake()));
    let bindings = dir.join("bindings").join(world);
    let mut cmd = Command::new(clang);
    cmd.args([
        "--target=wasm32-wasi",
        "-mexec-model=reactor",
        "-O2",
        "-std=c11",
        "-Wall",
        "-Wl,--strip-debug",
    ])
    .arg(format!("-DKILN_WORLD_{}", world.to_ascii_uppercase()))
    .arg("-I")
    .arg(&bindings)
    .arg("-I")
    .arg(dir.join("src"))
    .arg("-o")
    .arg(&module)
    .arg(dir.join("src/plugin.c"))
    .arg(dir.join("src/pool_table.c"))
    .arg(bindings.join(format!("{world}.c")))
    .arg(bindings.join(format!("{world}_component_type.o")));
    run(&mut cmd)?;
    run(Command::new(componentize).arg(&module).arg(out))
}

/// Zig: `$ZIG` (words: `python -m ziglang` works), else `zig`, else PyPI ziglang's
/// `python-zig`, on PATH.
fn zig_command(m: &Manifest) -> Result<Command, AuthorError> {
    let words: Vec<String> = std::env::var("ZIG")
        .ok()
        .map(|z| z.split_whitespace().map(String::from).collect())
        .filter(|w: &Vec<String>| !w.is_empty())
        .or_else(|| {
            which("zig")
                .or_else(|| which("python-zig"))
                .map(|p| vec![p.display().to_string()])
        })
        .ok_or_else(|| {
            missing(
                "zig",
                m.language,
                "`pip install ziglang==0.17.1` (in a venv; put its bin/ on PATH: kiln runs its \
                 `python-zig`), or Zig 0.17 from ziglang.org on PATH, or set $ZIG.",
            )
        })?;
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]);
    Ok(cmd)
}

fn zig(m: &Manifest, dir: &Path, out: &Path) -> Result<(), AuthorError> {
    let zig = || zig_command(m);
    zig()?;
    let componentize = componentizer(m.language)?;
    let world = m.kind.as_str();
    let build = dir.join("build");
    let bindings = dir.join("bindings").join(world);
    let cache = dir.join(".zig-cache");
    // The world's header as a Zig module.
    let module_zig = build.join(format!("world_{world}.zig"));
    let file =
        std::fs::File::create(&module_zig).map_err(AuthorError::io("create", &module_zig))?;
    let mut translate = zig()?;
    translate
        .args(["translate-c", "-lc", "-target", "wasm32-wasi", "-I"])
        .arg(&bindings)
        .arg(bindings.join(format!("{world}.h")))
        .env("ZIG_LOCAL_CACHE_DIR", &cache)
        .stdout(file);
    run(&mut translate)?;
    let module = build.join(format!("{}.module.wasm", m.snake()));
    let mut compile = zig()?;
    compile
        .args([
            "build-exe",
            "-target",
            "wasm32-wasi",
            "-O",
            "ReleaseSmall",
            "-fno-entry",
            "-mexec-model=reactor",
            "-lc",
            "-fstrip",
            "--name",
        ])
        .arg(m.snake())
        .arg(format!("-femit-bin={}", module.display()))
        .args(["--dep", "world"])
        .arg(format!("-Mroot={}", dir.join("src/plugin.zig").display()))
        .arg("-I")
        .arg(&bindings)
        .arg(bindings.join(format!("{world}.c")))
        .arg(bindings.join(format!("{world}_component_type.o")))
        .arg(format!("-Mworld={}", module_zig.display()))
        .current_dir(&build)
        .env("ZIG_LOCAL_CACHE_DIR", &cache);
    run(&mut compile)?;
    run(Command::new(componentize).arg(&module).arg(out))
}

fn python(m: &Manifest, dir: &Path, out: &Path) -> Result<(), AuthorError> {
    let cpy = env_or_path("KILN_COMPONENTIZE_PY", "componentize-py").ok_or_else(|| {
        missing(
            "componentize-py",
            m.language,
            "`pip install componentize-py==0.25.1` (in a venv; put its bin/ on PATH or set \
             $KILN_COMPONENTIZE_PY).",
        )
    })?;
    let world = m.kind.as_str();
    if m.kind == Kind::Weigher {
        return run(Command::new(cpy)
            .current_dir(dir)
            .args([
                "-d",
                "wit",
                "-w",
                world,
                "componentize",
                "app",
                "--stub-wasi",
                "-o",
            ])
            .arg(out));
    }
    // componentize-py links libc, whose accept(2) clashes with the world's `accept` export:
    // build against a copy of the WIT naming it `kiln-accept`, then rename the export back.
    let componentize = componentizer(m.language)?;
    let wit = std::fs::read_to_string(dir.join("wit/kiln-plugin.wit"))
        .map_err(AuthorError::io("read", dir.join("wit/kiln-plugin.wit")))?;
    let marker = "    export accept: func(";
    if wit.matches(marker).count() != 1 {
        return Err(AuthorError::Invalid(
            "wit/kiln-plugin.wit does not declare `export accept: func(` once".into(),
        ));
    }
    let tmp_wit = dir.join("build/wit");
    std::fs::create_dir_all(&tmp_wit).map_err(AuthorError::io("create", &tmp_wit))?;
    let renamed = tmp_wit.join("kiln-plugin.wit");
    std::fs::write(
        &renamed,
        wit.replace(marker, "    export kiln-accept: func("),
    )
    .map_err(AuthorError::io("write", &renamed))?;
    let raw = dir
        .join("build")
        .join(format!("{}.kiln-accept.wasm", m.snake()));
    run(Command::new(cpy)
        .current_dir(dir)
        .arg("-d")
        .arg(&tmp_wit)
        .args(["-w", world, "componentize", "app", "--stub-wasi", "-o"])
        .arg(&raw))?;
    run(Command::new(componentize)
        .args(["--rename-export", "kiln-accept=accept"])
        .arg(&raw)
        .arg(out))
}

/// jco: `$KILN_JCO`, else the project's own (`npm install` there, pinned by package.json and
/// package-lock.json), else one on PATH.
fn jco(m: &Manifest, dir: &Path) -> Result<PathBuf, AuthorError> {
    let local = dir.join("node_modules/.bin/jco");
    std::env::var_os("KILN_JCO")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| local.is_file().then_some(local))
        .or_else(|| which("jco"))
        .ok_or_else(|| {
            missing(
                "jco",
                m.language,
                "Run `npm install` in the project (it installs @bytecodealliance/jco 1.35.0 as \
                 pinned by package.json and package-lock.json; needs Node.js 18+ and npm from \
                 your distribution), or set $KILN_JCO.",
            )
        })
}

fn js(m: &Manifest, dir: &Path, out: &Path) -> Result<(), AuthorError> {
    let jco = jco(m, dir)?;
    run(Command::new(jco)
        .current_dir(dir)
        .arg("componentize")
        .arg(dir.join("src/plugin.js"))
        .arg("--wit")
        .arg(dir.join("wit"))
        .arg("--world-name")
        .arg(m.kind.as_str())
        .args([
            "--backend",
            "qjs",
            "--backend-qjs-stub-wasi",
            "--backend-qjs-disable-async",
            "-o",
        ])
        .arg(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_without_a_manifest_says_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = build(dir.path()).unwrap_err().to_string();
        assert!(e.contains("kiln plugin new"), "{e}");
    }

    #[test]
    fn a_missing_tool_is_named_with_how_to_install_it() {
        let e = missing("jco", Language::Js, "Run `npm install`.").to_string();
        assert_eq!(
            e,
            "jco is needed to build a js plugin and was not found. Run `npm install`."
        );
        // PATH lookups find real programs and nothing else.
        assert!(which("sh").is_some());
        assert!(which("surely-not-a-program-kiln").is_none());
    }

    #[test]
    fn kiln_componentize_is_built_with_the_profile_of_the_running_kiln() {
        let release = componentizer_install(Some(Path::new("/src/kiln/target/release/kiln")));
        assert!(
            release.contains("`cargo build --release -p kiln-componentize`"),
            "{release}"
        );
        assert!(release.contains("/src/kiln/target/release"), "{release}");
        let debug = componentizer_install(Some(Path::new("/src/kiln/target/debug/kiln")));
        assert!(
            debug.contains("`cargo build -p kiln-componentize`"),
            "{debug}"
        );
        let installed = componentizer_install(Some(Path::new("/usr/local/bin/kiln")));
        assert!(installed.contains("cargo install --path plugins/componentize"));
    }

    #[test]
    fn a_tool_that_cannot_start_is_told_apart_from_one_that_failed() {
        let dir = tempfile::tempdir().unwrap();
        // A script whose interpreter does not exist: the file is there, exec says ENOENT.
        let script = dir.path().join("tool");
        std::fs::write(&script, "#!/nonexistent/interpreter\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = run(&mut Command::new(&script)).unwrap_err().to_string();
        assert!(e.starts_with("cannot start `"), "{e}");
        assert!(e.contains("interpreter on its first line"), "{e}");
        let e = run(Command::new("sh").args(["-c", "exit 3"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("failed (exit status: 3)"), "{e}");
    }
}
