//! The plugin author's workflow, as a new author following docs/plugin-guide.md would run it,
//! in every language `kiln plugin new` offers (Rust, C, Zig, Python, JavaScript).
//!
//! Filters, against a running `kiln all-in-one` ([`author_a_filter`]): `kiln plugin new`
//! scaffolds a filter into a temp dir outside the repository, the guide's per-language set-up
//! runs (JavaScript: `npm install` in the project), the author changes the source (the reason
//! it gives), `kiln plugin build` builds it with the toolchain on `PATH` where the guide has
//! the user put it, `kiln plugin inspect` checks it, `kiln plugin record` saves the
//! scheduler's pools and `kiln plugin test` runs the filter over them offline; then it is
//! uploaded, put in a chain and activated, the next volume lands on another pool than before
//! (the dry run giving the author's reason), and a rollback brings the old placement back.
//!
//! Weighers, offline ([`author_a_weigher`]): scaffolded, built, inspected, and weighing
//! hand-written pools by their settings through `kiln plugin test`. Last, a component that
//! imports WASI is refused by `inspect` and `test`, and without a toolchain each language's
//! build names what to install.
//!
//! The toolchains are the ones `scripts/build-examples` installs (the test command runs it
//! first); a missing one fails the test with `kiln plugin build`'s own message.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_integration_tests::cloud::{http, Cloud};
use kiln_integration_tests::plugin_tools;
use kiln_integration_tests::process::kiln_run_env;
use serde_json::{json, Value};

/// Two file backends of declared sizes: a 30 GiB, b 100 GiB. Uploading or activating a new
/// component makes the scheduler compile it inside the RPC call: the 18 MiB Python component
/// took over 60 s (the default rpc_response_timeout) in a debug kiln on a 2-core machine at
/// load 12, hence the longer timeout.
const TWO_BACKENDS: &str = "host = \"node1\"\nenabled_backends = [\"a\", \"b\"]\n\
    [messaging]\nrpc_response_timeout = 300\n\
    [backends.a]\ndriver = \"file\"\ncapacity_gb = 30.0\n\
    [backends.b]\ndriver = \"file\"\ncapacity_gb = 100.0\n";

/// The flows run one at a time: each builds with a whole toolchain and compiles components,
/// and in parallel on 2 cores they slow each other past the scheduler's deadlines.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A language as the guide (§5, and the project's README) has a user set it up.
struct Language {
    /// `--lang` of `kiln plugin new`.
    lang: &'static str,
    /// `PATH` for every command: with the toolchain where the guide has the user put it.
    path: OsString,
    /// Commands the guide has the user run in the new project before `kiln plugin build`.
    setup: &'static [&'static [&'static str]],
}

/// How the guide has a user set up `lang`.
fn language(lang: &'static str) -> Language {
    let (path, setup): (OsString, &'static [&'static [&'static str]]) = match lang {
        // rustup's wasm32 target or Debian's rustc-web; clang-19 and wasi-libc from apt.
        "rust" | "c" => (plugin_tools::path(), &[]),
        // `pip install ziglang==0.17.1` / `componentize-py==0.25.1` in a venv on PATH.
        "zig" | "python" => (plugin_tools::path_with(&[&plugin_tools::venv_bin()]), &[]),
        // Node.js and npm from the system; jco from `npm install` in the project.
        "js" => (plugin_tools::path(), &[&["npm", "install"]]),
        other => panic!("no such language: {other}"),
    };
    Language { lang, path, setup }
}

/// Scaffold a `kind` project named `name` in `w`, check `kiln plugin new`'s next steps name
/// the language's set-up, and run it; returns the project directory.
fn scaffold(s: &Session, l: &Language, w: &Path, kind: &str, name: &str) -> std::path::PathBuf {
    let out = s.kiln(
        w,
        &["plugin", "new", "--lang", l.lang, "--kind", kind, name],
    );
    assert!(
        out.contains(&format!("world kiln:plugin/{kind}@0.1.0")),
        "{out}"
    );
    // What to do next, including the language's own set-up step.
    let next = out
        .lines()
        .find(|l| l.starts_with("next: "))
        .unwrap_or_else(|| panic!("no next step: {out}"));
    for step in l.setup {
        assert!(next.contains(&step.join(" ")), "{next}");
    }
    let project = w.join(name);
    assert!(project.join("kiln-plugin.toml").is_file());
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    for step in l.setup {
        assert!(readme.contains(&step.join(" ")), "{readme}");
    }
    for step in l.setup {
        shell(&project, &s.path, step);
    }
    project
}

/// `kiln plugin build` in `project`; the component's path.
fn build(s: &Session, project: &Path, name: &str) -> String {
    let out = s.kiln(project, &["plugin", "build"]);
    let wasm = project.join(format!("build/{}.wasm", name.replace('-', "_")));
    assert!(out.contains(wasm.to_str().unwrap()), "{out}");
    wasm.to_str().unwrap().to_string()
}

/// The author's own change to the scaffold, in whichever source file holds it: `from`
/// becomes `to` (exactly one file of the project's sources must contain `from`).
fn edit_source(project: &Path, from: &str, to: &str) {
    let mut edited = Vec::new();
    let mut dirs = vec![project.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let skip = ["node_modules", "build", "target", "bindings", ".zig-cache"];
            if path.is_dir() {
                if !skip.iter().any(|s| path.ends_with(s)) {
                    dirs.push(path);
                }
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                if text.contains(from) && !path.ends_with("README.md") {
                    std::fs::write(&path, text.replace(from, to)).unwrap();
                    edited.push(path);
                }
            }
        }
    }
    assert_eq!(edited.len(), 1, "`{from}` in {edited:?} under {project:?}");
}

/// The environment of the author's shell, and the running all-in-one it talks to, if any.
struct Session {
    cloud: Option<Cloud>,
    path: OsString,
}

impl Session {
    fn cloud(&self) -> &Cloud {
        self.cloud
            .as_ref()
            .expect("this session runs no all-in-one")
    }

    /// `kiln ARGS` in `dir` (against the cloud's API, if any); stdout, or a panic with
    /// everything.
    fn kiln(&self, dir: &Path, args: &[&str]) -> String {
        let mut all = args.to_vec();
        if let Some(cloud) = &self.cloud {
            all.extend(["--url", &cloud.api, "--token", "admin:demo"]);
        }
        let env = [("PATH", self.path.as_os_str())];
        let started = Instant::now();
        let (code, out, err) = kiln_run_env(dir, None, &all, &env);
        assert_eq!(
            code,
            0,
            "kiln {args:?} failed{}\nstdout:\n{out}\nstderr:\n{err}",
            if args.get(1) == Some(&"build") {
                format!(
                    " (the toolchains are installed by scripts/build-examples, under {})",
                    plugin_tools::tools_dir().display()
                )
            } else {
                String::new()
            }
        );
        eprintln!("kiln {args:?}: {:.1} s", started.elapsed().as_secs_f64());
        out
    }

    /// Where a 1 GiB volume lands now (backend of the created volume).
    fn place_volume(&self) -> String {
        let cloud = self.cloud();
        let (status, body) = cloud.create(json!({"volume": {"size": 1}}));
        assert_eq!(status, 202, "{body}");
        let id = body["volume"]["id"].as_str().unwrap().to_string();
        let v = cloud.settle(&id);
        assert_eq!(v["status"], "available", "{v}\n{}", cloud.aio.log_text());
        let host = v["os-vol-host-attr:host"].as_str().unwrap_or_default();
        host.split('#').next().unwrap_or_default().to_string()
    }

    /// `kiln chain create` + `kiln chain activate`, then wait until the scheduler runs it.
    fn activate(&self, dir: &Path, spec: Value) -> i64 {
        let file = dir.join(format!("{}.json", spec["name"].as_str().unwrap()));
        std::fs::write(&file, spec.to_string()).unwrap();
        let out = self.kiln(dir, &["chain", "create", file.to_str().unwrap()]);
        let created: Value = serde_json::from_str(&out).unwrap();
        let version = created["chain"]["version"].as_i64().unwrap();
        self.kiln(dir, &["chain", "activate", &version.to_string()]);
        self.wait_for_chain(spec["name"].as_str().unwrap());
        version
    }

    /// Activation reaches the schedulers by fanout: wait until dry runs use chain `name`.
    fn wait_for_chain(&self, name: &str) {
        let started = Instant::now();
        loop {
            let (status, d) = http(
                "POST",
                &format!("{}/kiln-scheduler/dry-run", self.cloud().api),
                Some(json!({"volume": {"size": 1}})),
            );
            assert_eq!(status, 200, "{d}");
            if d["dry_run"]["chain"]
                .as_str()
                .unwrap_or_default()
                .ends_with(&format!(" {name}"))
            {
                return;
            }
            // Each scheduler builds the chain (loads, instantiates and fully syncs every
            // plugin) before switching: ~6 s for the Python filter on a loaded machine.
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the scheduler never switched to {name}: {d}\n{}",
                self.cloud().aio.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A chain preferring the pool with the least free space, with `extra` filters first.
fn chain(name: &str, extra: Vec<Value>) -> Value {
    let mut filters = extra;
    filters.push(json!({"plugin": "capacity_filter"}));
    json!({
        "name": name,
        "filters": filters,
        "weighers": [{"plugin": "capacity_weigher", "multiplier": -1.0,
                      "config": {"capacity_weight_multiplier": "-1"}}]
    })
}

/// Run `argv` in `dir` with `path` as `PATH`, as the author would in their shell.
fn shell(dir: &Path, path: &OsStr, argv: &[&str]) {
    let started = Instant::now();
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?} (as the guide says): {e}"));
    assert!(
        out.status.success(),
        "{argv:?} in {} failed ({})\nstdout:\n{}\nstderr:\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{argv:?}: {:.1} s", started.elapsed().as_secs_f64());
}

/// Scaffold, set up, change the reason it gives, build, inspect, record, test, upload,
/// activate; the placement moves from a to b, with the author's reason, and back on rollback.
fn author_a_filter(l: Language) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let s = Session {
        cloud: Some(Cloud::start(TWO_BACKENDS)),
        path: l.path.clone(),
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let name = format!("{}-min-free", l.lang);
    let project = scaffold(&s, &l, w, "filter", &name);
    // As an author would: make the filter their own (here, its reason for a refused pool).
    edit_source(&project, "below min_free_gb", "under the floor of");
    let wasm = build(&s, &project, &name);
    let wasm = wasm.as_str();

    let out = s.kiln(w, &["plugin", "inspect", wasm]);
    assert!(out.contains("world      kiln:plugin/filter@0.1.0"), "{out}");
    assert!(out.contains("kiln:plugin/pool-sync@0.1.0"), "{out}");
    assert!(out.contains("verdict    OK"), "{out}");
    assert!(!out.contains("wasi:"), "{out}");

    // The scheduler's pools, recorded before any volume exists: a 30 GiB free, b 100.
    let pools = w.join("pools.json");
    s.kiln(w, &["plugin", "record", "--out", pools.to_str().unwrap()]);
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(&pools).unwrap()).unwrap();
    let list = recorded["pools"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{recorded}");
    assert_eq!(recorded["scheduler"], "node1", "{recorded}");
    let free: Vec<(String, f64)> = list
        .iter()
        .map(|p| {
            (
                p["backend"].as_str().unwrap().to_string(),
                p["free-capacity-gb"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(free.contains(&("node1@a".into(), 30.0)), "{free:?}");
    assert!(free.contains(&("node1@b".into(), 100.0)), "{free:?}");

    let request = w.join("request.json");
    std::fs::write(&request, r#"{"size-gb": 1}"#).unwrap();
    let out = s.kiln(
        w,
        &[
            "plugin",
            "test",
            wasm,
            "--pools",
            pools.to_str().unwrap(),
            "--request",
            request.to_str().unwrap(),
            "--setting",
            "min_free_gb=50",
        ],
    );
    let line = |pool: &str| {
        out.lines()
            .find(|l| l.contains(pool))
            .unwrap_or_else(|| panic!("no line for {pool}: {out}"))
            .to_string()
    };
    assert!(
        line("node1@a#a").contains("reject  30 GB free, under the floor of 50"),
        "{out}"
    );
    assert!(line("node1@b#b").ends_with("pass"), "{out}");
    assert!(
        out.contains("chosen by a chain of only this plugin: node1@b#b"),
        "{out}"
    );

    // Without the filter, a chain preferring the least free space places on a.
    s.activate(w, chain("least-free", vec![]));
    assert_eq!(s.place_volume(), "node1@a");

    // Upload the authored filter, add it to that chain, activate: a is now refused.
    let out = s.kiln(w, &["plugin", "upload", wasm, "--kind", "filter"]);
    let uploaded: Value = serde_json::from_str(&out).unwrap();
    let sha = uploaded["plugin"]["sha256"].as_str().unwrap();
    let mine = json!({"plugin": format!("sha256:{sha}"), "config": {"min_free_gb": "50"}});
    s.activate(w, chain("least-free-with-mine", vec![mine]));
    assert_eq!(s.place_volume(), "node1@b");
    // The dry run names the authored filter and its reason for a.
    let out = s.kiln(w, &["dry-run", "--size", "1"]);
    assert!(out.contains("under the floor of 50"), "{out}");
    assert!(
        !out.contains("below min_free_gb"),
        "the author's edit is live: {out}"
    );

    // Rollback: the previous chain places on a again.
    s.kiln(w, &["chain", "rollback"]);
    s.wait_for_chain("least-free");
    assert_eq!(s.place_volume(), "node1@a");
    eprintln!(
        "{}: scaffold to rollback in {:.1} s",
        l.lang,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_rust_filter_goes_from_scaffold_to_changing_placements() {
    author_a_filter(language("rust"));
}

#[test]
fn a_c_filter_goes_from_scaffold_to_changing_placements() {
    author_a_filter(language("c"));
}

#[test]
fn a_zig_filter_goes_from_scaffold_to_changing_placements() {
    author_a_filter(language("zig"));
}

#[test]
fn a_python_filter_goes_from_scaffold_to_changing_placements() {
    author_a_filter(language("python"));
}

#[test]
fn a_javascript_filter_goes_from_scaffold_to_changing_placements() {
    author_a_filter(language("js"));
}

/// Three pools, one of them NFS, for the weigher scaffold (which prefers pools whose
/// `capability` setting has the text `value`).
const PROTOCOL_POOLS: &str = r#"{"pools": [
  {"id": 0, "backend": "node1@a", "pool": "a", "total-capacity-gb": 100, "free-capacity-gb": 90,
   "capabilities": {"storage_protocol": "iSCSI"}},
  {"id": 1, "backend": "node1@b", "pool": "b", "total-capacity-gb": 100, "free-capacity-gb": 10,
   "capabilities": {"storage_protocol": "NFS"}},
  {"id": 2, "backend": "node1@c", "pool": "c", "total-capacity-gb": 100, "free-capacity-gb": 50,
   "capabilities": {}}
]}"#;

/// The weigher scaffold of `l`, offline: built, inspected as a weigher, and weighing the pools
/// by its setting, with the default and with `value=NFS`.
fn author_a_weigher(l: Language) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = Session {
        cloud: None,
        path: l.path.clone(),
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let name = format!("{}-prefer-protocol", l.lang);
    let project = scaffold(&s, &l, w, "weigher", &name);
    let wasm = build(&s, &project, &name);

    let out = s.kiln(w, &["plugin", "inspect", &wasm]);
    assert!(
        out.contains("world      kiln:plugin/weigher@0.1.0"),
        "{out}"
    );
    assert!(out.contains("verdict    OK"), "{out}");

    let pools = w.join("pools.json");
    std::fs::write(&pools, PROTOCOL_POOLS).unwrap();
    let request = w.join("request.json");
    std::fs::write(&request, r#"{"size-gb": 1}"#).unwrap();
    let weigh = |settings: &[&str]| {
        let mut args = vec![
            "plugin",
            "test",
            &wasm,
            "--pools",
            pools.to_str().unwrap(),
            "--request",
            request.to_str().unwrap(),
        ];
        for kv in settings {
            args.extend(["--setting", kv]);
        }
        s.kiln(w, &args)
    };
    let row = |out: &str, pool: &str| {
        out.lines()
            .find(|l| l.contains(pool))
            .unwrap_or_else(|| panic!("no line for {pool}: {out}"))
            .split_whitespace()
            .skip(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let out = weigh(&[]);
    assert_eq!(row(&out, "node1@a#a"), "raw 1 normalised 1.0000", "{out}");
    assert_eq!(row(&out, "node1@b#b"), "raw 0 normalised 0.0000", "{out}");
    assert_eq!(row(&out, "node1@c#c"), "raw 0 normalised 0.0000", "{out}");
    assert!(
        out.contains("chosen by a chain of only this plugin: node1@a#a"),
        "{out}"
    );
    let out = weigh(&["value=NFS"]);
    assert_eq!(row(&out, "node1@a#a"), "raw 0 normalised 0.0000", "{out}");
    assert_eq!(row(&out, "node1@b#b"), "raw 1 normalised 1.0000", "{out}");
    assert!(
        out.contains("chosen by a chain of only this plugin: node1@b#b"),
        "{out}"
    );
}

#[test]
fn a_rust_weigher_scaffold_builds_and_weighs_by_its_settings() {
    author_a_weigher(language("rust"));
}

#[test]
fn a_c_weigher_scaffold_builds_and_weighs_by_its_settings() {
    author_a_weigher(language("c"));
}

#[test]
fn a_zig_weigher_scaffold_builds_and_weighs_by_its_settings() {
    author_a_weigher(language("zig"));
}

#[test]
fn a_python_weigher_scaffold_builds_and_weighs_by_its_settings() {
    author_a_weigher(language("python"));
}

#[test]
fn a_javascript_weigher_scaffold_builds_and_weighs_by_its_settings() {
    author_a_weigher(language("js"));
}

/// A component that imports WASI (here a Python weigher componentized without
/// `--stub-wasi`, the mistake the guide warns about) is refused by `kiln plugin inspect` and
/// `kiln plugin test`, naming the import and how to stub it out.
#[test]
fn inspect_and_test_refuse_a_component_importing_wasi_and_say_how_to_stub_it() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let l = language("python");
    let s = Session {
        cloud: None,
        path: l.path.clone(),
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let project = scaffold(&s, &l, w, "weigher", "py-with-wasi");
    let wasm = w.join("with-wasi.wasm");
    let wasm = wasm.to_str().unwrap();
    shell(
        &project,
        &s.path,
        &[
            "componentize-py",
            "-d",
            "wit",
            "-w",
            "weigher",
            "componentize",
            "app",
            "-o",
            wasm,
        ],
    );
    let env = [("PATH", s.path.as_os_str())];
    let (code, out, err) = kiln_run_env(w, None, &["plugin", "inspect", wasm], &env);
    assert_ne!(code, 0, "inspect accepted a WASI component:\n{out}\n{err}");
    assert!(out.contains("wasi:"), "the refused import is named:\n{out}");
    assert!(out.contains("--stub-wasi"), "the way out is named:\n{out}");
    assert!(err.contains("Kiln would refuse this component"), "{err}");

    let pools = w.join("pools.json");
    std::fs::write(&pools, PROTOCOL_POOLS).unwrap();
    let request = w.join("request.json");
    std::fs::write(&request, r#"{"size-gb": 1}"#).unwrap();
    let (code, out, err) = kiln_run_env(
        w,
        None,
        &[
            "plugin",
            "test",
            wasm,
            "--pools",
            pools.to_str().unwrap(),
            "--request",
            request.to_str().unwrap(),
        ],
        &env,
    );
    assert_ne!(code, 0, "test ran a WASI component:\n{out}\n{err}");
    assert!(err.contains("wasi:"), "{err}");
}

/// Without its toolchain, `kiln plugin build` stops before running anything and names what to
/// install, for every language.
#[test]
fn a_build_without_the_toolchain_names_what_to_install() {
    let work = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let env = [
        ("PATH", empty.path().as_os_str()),
        ("KILN_COMPONENTIZE_PY", OsStr::new("")),
        ("KILN_JCO", OsStr::new("")),
        ("CLANG", OsStr::new("")),
        ("ZIG", OsStr::new("")),
    ];
    for (lang, tool, install) in [
        (
            "rust",
            "a Rust toolchain for wasm32-unknown-unknown",
            "rustup target add wasm32-unknown-unknown",
        ),
        ("c", "clang-19", "apt-get install clang-19"),
        ("zig", "zig", "pip install ziglang==0.17.1"),
        (
            "python",
            "componentize-py",
            "pip install componentize-py==0.25.1",
        ),
        ("js", "jco", "Run `npm install` in the project"),
    ] {
        let name = format!("{lang}-missing");
        let (code, out, err) = kiln_run_env(
            work.path(),
            None,
            &["plugin", "new", "--lang", lang, "--kind", "filter", &name],
            &env,
        );
        assert_eq!(code, 0, "{out}\n{err}");
        let (code, out, err) =
            kiln_run_env(&work.path().join(&name), None, &["plugin", "build"], &env);
        assert_ne!(code, 0, "{lang}: built without a toolchain?\n{out}\n{err}");
        assert!(
            err.contains(&format!(
                "{tool} is needed to build a {lang} plugin and was not found"
            )),
            "{lang}: {err}"
        );
        assert!(err.contains(install), "{lang}: {err}");
        assert!(
            !work
                .path()
                .join(&name)
                .join("build")
                .read_dir()
                .is_ok_and(|mut d| d.next().is_some()),
            "{lang}: a failed build left output behind"
        );
    }
}
