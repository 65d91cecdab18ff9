//! Third-party volume drivers as WebAssembly components: the example qemu-img driver (built
//! into `plugins/dist/`, embedded as a builtin) through the same conformance suite as the
//! native file driver, wired through `drivers::build`; and a hostile driver (built from
//! `plugins/hostile/exec-driver` by this test) whose every attack on the exec sandbox is
//! denied, audited and counted, fails the operation with a clear error, and runs nothing —
//! a sentinel file proves it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Result;
use kiln::config::{BackendConfig, Config};
use kiln::drivers::{self, DriverError, VolumeDriver, VolumeRef};
use kiln::plugins::driver::WasmDriver;
use kiln::plugins::exec::manifest::Manifest;
use kiln::plugins::exec::Decision;
use kiln_integration_tests::driver_suite;

fn wasm_backend(plugin: &str, settings: &[(&str, &str)]) -> BackendConfig {
    BackendConfig {
        driver: "wasm".into(),
        plugin: Some(plugin.into()),
        plugin_config: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_img_driver_passes_the_suite() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("images");
    std::fs::create_dir(&root)?;
    let settings = wasm_backend(
        "qemu_img_driver",
        &[("root", root.to_str().unwrap()), ("capacity_gb", "50")],
    );
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let driver = drivers::build(&config, "qemu", &settings)?;
    driver_suite::run(driver.as_ref(), &|v: &VolumeRef| root.join(&v.name)).await?;
    let left: Vec<_> = std::fs::read_dir(&root)?.collect();
    assert!(left.is_empty(), "files left behind: {left:?}");

    // Stats come from qemu-img info of each volume.
    let a = VolumeRef::new(uuid::Uuid::new_v4(), 3);
    driver.create_volume(&a).await?;
    driver.create_volume(&a).await?; // redelivered: same image, no error
    let stats = driver.get_volume_stats().await?;
    let pool = &stats.pools[0];
    assert_eq!(pool.total_volumes, 1);
    assert_eq!(pool.allocated_capacity_gb, 3.0);
    assert_eq!(pool.total_capacity_gb, drivers::Capacity::Gb(50.0));
    assert_eq!(pool.free_capacity_gb, drivers::Capacity::Gb(47.0));
    // No target helper configured: the export fails saying so.
    let err = driver
        .create_export(&a, &Default::default())
        .await
        .expect_err("no target helper");
    assert!(matches!(err, DriverError::NotSupported { .. }), "{err}");
    assert!(err.to_string().contains("target_helper"), "{err}");
    driver.delete_volume(&a).await?;
    assert!(!root.join(&a.name).exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_root_or_setting_is_a_clear_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("nope");
    let settings = wasm_backend("qemu_img_driver", &[("root", missing.to_str().unwrap())]);
    let driver = drivers::build(&Config::default(), "qemu", &settings)?;
    let err = driver.do_setup().await.expect_err("root does not exist");
    assert!(
        err.to_string().contains("not readable") && err.to_string().contains("create it"),
        "{err}"
    );
    // The manifest's root is the `root` setting: without it the driver cannot be built.
    let err = drivers::build(
        &Config::default(),
        "qemu",
        &wasm_backend("qemu_img_driver", &[]),
    )
    .err()
    .expect("no root setting");
    assert!(err.to_string().contains("`root`"), "{err}");
    // Narrowing the manifest removes grants: without rm, delete is denied.
    let root = dir.path().join("images");
    std::fs::create_dir(&root)?;
    let mut narrowed = wasm_backend("qemu_img_driver", &[("root", root.to_str().unwrap())]);
    narrowed.plugin_exec_allow = Some(vec!["/usr/bin/qemu-img".into(), "/usr/bin/ls".into()]);
    let driver = drivers::build(&Config::default(), "qemu", &narrowed)?;
    let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    driver.create_volume(&v).await?;
    let err = driver.delete_volume(&v).await.expect_err("rm not granted");
    assert!(
        matches!(&err, DriverError::ExecDenied { message, .. } if message.contains("/usr/bin/rm")),
        "{err}"
    );
    assert!(root.join(&v.name).exists());
    Ok(())
}

/// Build the hostile plugins once per test binary.
fn hostile_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = std::env::temp_dir().join(format!("kiln-hostile-drv-{}", std::process::id()));
        let status = std::process::Command::new(root.join("scripts/build-plugins"))
            .arg("--hostile")
            .arg(&out)
            .status()
            .expect("run scripts/build-plugins");
        assert!(status.success(), "building the hostile plugins failed");
        out
    })
}

struct Attack {
    driver: WasmDriver,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

/// The hostile driver with `attack`; `sentinel` is given relative to its root's parent.
fn hostile(attack: &str, sentinel: impl Fn(&Path) -> PathBuf) -> Attack {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("scratch");
    std::fs::create_dir(&root).unwrap();
    let sentinel = sentinel(&root);
    let wasm = hostile_dir().join("exec_driver.wasm");
    let settings = wasm_backend(
        wasm.to_str().unwrap(),
        &[
            ("root", root.to_str().unwrap()),
            ("attack", attack),
            ("sentinel", sentinel.to_str().unwrap()),
        ],
    );
    let driver = WasmDriver::from_config(&Config::default(), "hostile", &settings, None)
        .unwrap_or_else(|e| panic!("loading the hostile driver: {e}"));
    Attack {
        driver,
        root,
        _dir: dir,
    }
}

/// Run `attack`: create_volume must fail with ExecDenied naming `reason`, the denial must be
/// audited and counted, nothing granted, and `sentinel` must not exist.
async fn denied(attack: &str, sentinel: impl Fn(&Path) -> PathBuf, program: &str, reason: &str) {
    let a = hostile(attack, &sentinel);
    let sentinel = sentinel(&a.root);
    // Only ever clean up inside this test's own temporary directory.
    let scratch = a.root.parent().expect("the root has a parent");
    assert!(
        sentinel.starts_with(scratch),
        "{attack}: the sentinel {} must live in the test's temporary directory",
        sentinel.display()
    );
    let _ = std::fs::remove_file(&sentinel);
    let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    let err = a
        .driver
        .create_volume(&v)
        .await
        .expect_err("the attack must fail");
    match &err {
        DriverError::ExecDenied { backend, message } => {
            assert_eq!(backend, "hostile");
            assert!(message.contains("plugin exec_driver"), "{attack}: {err}");
            assert!(message.contains(reason), "{attack}: {err}");
        }
        other => panic!("{attack}: expected ExecDenied, got {other:?}"),
    }
    let exec = a.driver.exec();
    assert_eq!(exec.stats().denied.load(Ordering::Relaxed), 1, "{attack}");
    assert_eq!(exec.stats().granted.load(Ordering::Relaxed), 0, "{attack}");
    assert_eq!(exec.stats().failed.load(Ordering::Relaxed), 0, "{attack}");
    let audit = exec.recent();
    assert_eq!(audit.len(), 1, "{attack}: {audit:?}");
    assert_eq!(audit[0].plugin, "exec_driver");
    assert_eq!(audit[0].argv[0], program, "{attack}: {audit:?}");
    assert!(
        matches!(&audit[0].decision, Decision::Denied(r) if r.contains(reason)),
        "{attack}: {audit:?}"
    );
    assert!(
        !sentinel.exists(),
        "{attack}: {} was created: an ungranted command ran",
        sentinel.display()
    );
}

fn outside(root: &Path) -> PathBuf {
    root.parent().unwrap().join("sentinel")
}

fn inside(root: &Path) -> PathBuf {
    root.join("sentinel")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_granted_command_runs() {
    // The control: the hostile driver's one grant does work, so the denials below are the
    // matcher's doing, not a broken set-up.
    let a = hostile("none", inside);
    a.driver
        .create_volume(&VolumeRef::new(uuid::Uuid::new_v4(), 1))
        .await
        .unwrap();
    assert!(inside(&a.root).exists());
    assert_eq!(a.driver.exec().stats().granted.load(Ordering::Relaxed), 1);
    assert_eq!(a.driver.exec().recent()[0].decision, Decision::Granted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_is_denied() {
    denied(
        "shell",
        outside,
        "/bin/sh",
        "program `/bin/sh` is not granted",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ungranted_program_is_denied() {
    denied(
        "ungranted",
        outside,
        "/usr/bin/touch",
        "program `/usr/bin/touch` is not granted",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_argument_outside_its_pattern_is_denied() {
    denied(
        "argument",
        inside,
        "/usr/bin/qemu-img",
        "argument 4 `qcow2` is not `raw`",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_escaping_the_root_is_denied() {
    denied(
        "escape",
        |root| root.join("..").join("sentinel"),
        "/usr/bin/qemu-img",
        "contains `..`",
    )
    .await;
    denied("escape", outside, "/usr/bin/qemu-img", "is not under").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_out_of_the_root_is_denied() {
    let link_to_parent = |root: &Path| {
        let link = root.join("link");
        if !link.exists() {
            std::os::unix::fs::symlink(root.parent().unwrap(), &link).unwrap();
        }
        link.join("sentinel")
    };
    denied(
        "escape",
        link_to_parent,
        "/usr/bin/qemu-img",
        "through a symlink",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_variable_not_granted_is_denied() {
    denied(
        "env",
        inside,
        "/usr/bin/qemu-img",
        "environment variable `LD_PRELOAD` is not allowed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporting_a_host_file_is_denied() {
    // Checked before any target helper is asked (this backend has none). The file asked for
    // lies outside the driver's root (a stand-in for a host file such as /etc/shadow; the test
    // never names a real host file, so nothing outside its temporary directory is touched).
    denied("export", outside, "target:export", "is not under").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_driver_is_stopped_at_its_deadline() {
    let mut a = hostile("spin", inside);
    // A short deadline for the test.
    let dir = a.root.clone();
    let mut settings = wasm_backend(
        hostile_dir().join("exec_driver.wasm").to_str().unwrap(),
        &[("root", dir.to_str().unwrap()), ("attack", "spin")],
    );
    settings.plugin_deadline_ms = 100;
    a.driver = WasmDriver::from_config(&Config::default(), "hostile", &settings, None).unwrap();
    let started = Instant::now();
    let err = a
        .driver
        .create_volume(&VolumeRef::new(uuid::Uuid::new_v4(), 1))
        .await
        .expect_err("spins");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, DriverError::Backend { message, .. }
            if message.contains("create_volume") && message.contains("exec_driver")
                && message.contains("100 ms deadline")),
        "{err}"
    );
    assert_eq!(a.driver.stats().timeouts.load(Ordering::Relaxed), 1);
    // The trapped instance is gone; the next call gets a fresh one.
    a.driver
        .delete_volume(&VolumeRef::new(uuid::Uuid::new_v4(), 1))
        .await
        .unwrap();
}

#[test]
fn the_shipped_manifest_grants_only_qemu_img_rm_and_ls() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("plugins/dist/qemu_img_driver.toml")).unwrap();
    let config = BTreeMap::from([("root".to_string(), "/srv/images".to_string())]);
    let m = Manifest::parse(&text, &config, "qemu_img_driver.toml").unwrap();
    let mut programs: Vec<&str> = m.grants.iter().map(|g| g.program.as_str()).collect();
    programs.dedup();
    assert_eq!(
        programs,
        ["/usr/bin/qemu-img", "/usr/bin/rm", "/usr/bin/ls"]
    );
    assert_eq!(
        std::fs::read_to_string(root.join("plugins/qemu-img-driver/qemu_img_driver.toml")).unwrap(),
        text,
        "plugins/dist has a stale manifest: run scripts/build-plugins"
    );
}

#[tokio::test]
async fn builtin_driver_is_embedded() {
    assert!(kiln::plugins::builtin::driver("qemu_img_driver").is_some());
    let err = drivers::build(
        &Config::default(),
        "x",
        &wasm_backend("no_such_driver", &[("root", "/tmp")]),
    )
    .err()
    .expect("unknown builtin");
    assert!(err.to_string().contains("qemu_img_driver"), "{err}");
}

/// `id OPTION [USER]` run by the test itself (the expected values of the run-as checks).
fn id(args: &[&str]) -> String {
    let out = std::process::Command::new("/usr/bin/id")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "id {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Run-as users are applied only when kiln runs as root (as the tests do here).
fn running_as_root() -> bool {
    let root = id(&["-u"]) == "0";
    if !root {
        eprintln!("not root: a run-as user cannot be applied; skipping");
    }
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grants_run_as_user_is_applied() {
    use kiln::plugins::exec::{Exec, ExecRequest};
    if !running_as_root() {
        return;
    }
    let manifest = r#"
[[grant]]
program = "/usr/bin/id"
args = [{ regex = "-[ugG]" }]
user = "nobody"
"#;
    let m = Manifest::parse(manifest, &BTreeMap::new(), "runas.toml").unwrap();
    let exec = Exec::new("runas", m);
    let ask = |opt: &str| ExecRequest {
        program: "/usr/bin/id".into(),
        args: vec![opt.into()],
        ..Default::default()
    };
    // The granted command reports the uid, gid and groups it really runs with: nobody's,
    // and no supplementary group of kiln's (root's) is kept.
    for (opt, want) in [
        ("-u", id(&["-u", "nobody"])),
        ("-g", id(&["-g", "nobody"])),
        ("-G", id(&["-g", "nobody"])),
    ] {
        let out = exec.run(ask(opt)).await.unwrap();
        assert_eq!(out.status, Some(0), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            want,
            "id {opt}"
        );
    }
    assert_ne!(id(&["-u", "nobody"]), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_command_runs_as_the_manifest_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !running_as_root() {
        return;
    }
    // The hostile driver's control run (its one granted command creates the sentinel image)
    // under a manifest that runs it as `nobody`: the file it creates belongs to nobody.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("scratch");
    std::fs::create_dir(&root).unwrap();
    // Only this test's own directories: nobody must reach and write the root.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let shipped = std::fs::read_to_string(hostile_dir().join("exec_driver.toml")).unwrap();
    let manifest = dir.path().join("runas.toml");
    std::fs::write(&manifest, format!("{shipped}user = \"nobody\"\n")).unwrap();
    let sentinel = root.join("sentinel");
    let mut settings = wasm_backend(
        hostile_dir().join("exec_driver.wasm").to_str().unwrap(),
        &[
            ("root", root.to_str().unwrap()),
            ("attack", "none"),
            ("sentinel", sentinel.to_str().unwrap()),
        ],
    );
    settings.plugin_manifest = Some(manifest.clone());
    let driver = WasmDriver::from_config(&Config::default(), "runas", &settings, None).unwrap();
    driver
        .create_volume(&VolumeRef::new(uuid::Uuid::new_v4(), 1))
        .await
        .unwrap();
    let owner = std::fs::metadata(&sentinel).unwrap().uid();
    assert_eq!(
        owner.to_string(),
        id(&["-u", "nobody"]),
        "the command ran as nobody"
    );

    // An unknown user makes the manifest invalid: the driver is not built at all.
    std::fs::write(
        &manifest,
        format!("{shipped}user = \"kiln-no-such-user-4e1d\"\n"),
    )
    .unwrap();
    let err = WasmDriver::from_config(&Config::default(), "runas", &settings, None)
        .err()
        .expect("unknown run-as user");
    assert!(
        matches!(&err, DriverError::Invalid { .. })
            && err.to_string().contains("/usr/bin/qemu-img")
            && err
                .to_string()
                .contains("run-as user `kiln-no-such-user-4e1d` does not exist on this host"),
        "{err}"
    );
}
