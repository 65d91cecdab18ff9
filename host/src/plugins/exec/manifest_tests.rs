//! Unit tests of the exec matcher: each pattern kind, `..` and symlink escapes, `sh -c`,
//! ungranted programs, environment variables and working directories, narrowing.

use std::collections::BTreeMap;

use super::*;

const MANIFEST: &str = r#"
[roots]
volumes = { config = "root" }
fixed = { dir = "/srv/kiln-test-fixed" }

[target]
roots = ["volumes"]

[[grant]]
program = "/usr/bin/qemu-img"
args = ["create", "-f", "raw", { path = "volumes" }, { size = true }]

[[grant]]
program = "/usr/bin/qemu-img"
args = ["info", "--output=json", { path = "volumes" }]
env = ["TMPDIR"]
cwd = "volumes"
timeout_ms = 5000
output_cap = 4096

[[grant]]
program = "/usr/bin/tool"
args = [{ literal = "--id" }, { uuid = true }, { regex = "[a-z]{1,8}" }]
tail = { regex = "-[a-z]" }
"#;

fn manifest(root: &str) -> Manifest {
    let config = BTreeMap::from([("root".to_string(), root.to_string())]);
    Manifest::parse(MANIFEST, &config, "test.toml").unwrap()
}

fn req<'a>(program: &'a str, args: &'a [String]) -> Request<'a> {
    Request {
        program,
        args,
        env: &[],
        cwd: None,
    }
}

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn denied(m: &Manifest, program: &str, args: &[&str]) -> String {
    let args = argv(args);
    match m.check(&req(program, &args)) {
        Ok(g) => panic!("{program} {args:?} granted by {g:?}"),
        Err(reason) => reason,
    }
}

fn granted(m: &Manifest, program: &str, args: &[&str]) {
    let args = argv(args);
    if let Err(reason) = m.check(&req(program, &args)) {
        panic!("{program} {args:?} denied: {reason}");
    }
}

#[test]
fn literal_path_and_size_patterns() {
    let m = manifest("/vols");
    granted(
        &m,
        "/usr/bin/qemu-img",
        &["create", "-f", "raw", "/vols/volume-a", "10G"],
    );
    granted(
        &m,
        "/usr/bin/qemu-img",
        &["create", "-f", "raw", "/vols/./x", "1024M"],
    );
    granted(
        &m,
        "/usr/bin/qemu-img",
        &["create", "-f", "raw", "/vols/x", "4096"],
    );
    let r = denied(
        &m,
        "/usr/bin/qemu-img",
        &["create", "-f", "qcow2", "/vols/x", "1G"],
    );
    assert!(r.contains("argument 3 `qcow2` is not `raw`"), "{r}");
    for bad in ["10g", "G", "1.5G", "-1G", "10GB", "1G; rm -rf /", ""] {
        let r = denied(
            &m,
            "/usr/bin/qemu-img",
            &["create", "-f", "raw", "/vols/x", bad],
        );
        assert!(r.contains("is not a size"), "{bad}: {r}");
    }
    let r = denied(&m, "/usr/bin/qemu-img", &["create", "-f", "raw", "/vols/x"]);
    assert!(r.contains("4 arguments given, the grant takes 5"), "{r}");
    let r = denied(
        &m,
        "/usr/bin/qemu-img",
        &["create", "-f", "raw", "/vols/x", "1G", "-q"],
    );
    assert!(r.contains("6 arguments given"), "{r}");
}

#[test]
fn paths_cannot_escape_their_root() {
    let m = manifest("/vols");
    for bad in [
        "/vols/../etc/shadow",
        "/vols/a/../../etc",
        "/vols/..",
        "/volsx/a",
        "/etc/passwd",
        "vols/a",
        "../vols/a",
    ] {
        let r = denied(&m, "/usr/bin/qemu-img", &["create", "-f", "raw", bad, "1G"]);
        assert!(r.contains("root `volumes`"), "{bad}: {r}");
    }
    let r = denied(
        &m,
        "/usr/bin/qemu-img",
        &["create", "-f", "raw", "/vols/a/../b", "1G"],
    );
    assert!(r.contains("contains `..`"), "{r}");
}

#[test]
fn symlinks_out_of_the_root_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("vols");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("pw")).unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    let m = manifest(root.to_str().unwrap());
    let path = |p: &str| root.join(p).to_string_lossy().into_owned();
    for bad in ["link/new-file", "link", "pw"] {
        let r = denied(
            &m,
            "/usr/bin/qemu-img",
            &["create", "-f", "raw", &path(bad), "1G"],
        );
        assert!(r.contains("through a symlink"), "{bad}: {r}");
    }
    for good in ["sub/new", "new", "sub"] {
        granted(
            &m,
            "/usr/bin/qemu-img",
            &["create", "-f", "raw", &path(good), "1G"],
        );
    }
}

#[test]
fn shells_and_ungranted_programs_are_refused() {
    let m = manifest("/vols");
    let r = denied(&m, "/bin/sh", &["-c", "touch /tmp/x"]);
    assert_eq!(r, "program `/bin/sh` is not granted");
    denied(
        &m,
        "/usr/bin/sh",
        &["-c", "qemu-img create -f raw /vols/x 1G"],
    );
    let r = denied(&m, "qemu-img", &["create", "-f", "raw", "/vols/x", "1G"]);
    assert!(r.contains("not granted"), "{r}");
    denied(
        &m,
        "/usr/bin/../bin/qemu-img",
        &["create", "-f", "raw", "/vols/x", "1G"],
    );
    denied(&m, "/usr/bin/touch", &["/tmp/x"]);
}

#[test]
fn uuid_regex_and_tail_patterns() {
    let m = manifest("/vols");
    let id = "0b5a4f8e-8f59-4e3e-a0c6-6a3f3b0f4f1e";
    granted(&m, "/usr/bin/tool", &["--id", id, "abc"]);
    granted(&m, "/usr/bin/tool", &["--id", id, "abc", "-v", "-q"]);
    let r = denied(&m, "/usr/bin/tool", &["--id", &id.to_uppercase(), "abc"]);
    assert!(r.contains("not a lowercase hyphenated UUID"), "{r}");
    denied(
        &m,
        "/usr/bin/tool",
        &["--id", "0b5a4f8e8f594e3ea0c66a3f3b0f4f1e", "abc"],
    );
    // The regex is anchored: a matching substring is not enough.
    let r = denied(&m, "/usr/bin/tool", &["--id", id, "abc;rm"]);
    assert!(r.contains("argument 3"), "{r}");
    denied(&m, "/usr/bin/tool", &["--id", id, "toolongname"]);
    let r = denied(&m, "/usr/bin/tool", &["--id", id, "abc", "-v", "--evil"]);
    assert!(r.contains("argument 5 `--evil`"), "{r}");
    denied(&m, "/usr/bin/tool", &["--id", id, "a\0b"]);
}

#[test]
fn environment_and_working_directory() {
    let m = manifest("/vols");
    let args = argv(&["info", "--output=json", "/vols/x"]);
    let ok_env = vec![("TMPDIR".to_string(), "/vols".to_string())];
    let mut r = req("/usr/bin/qemu-img", &args);
    r.env = &ok_env;
    r.cwd = Some("/vols/sub");
    let g = m.check(&r).unwrap();
    assert_eq!(g.timeout, Duration::from_millis(5000));
    assert_eq!(g.output_cap, 4096);
    assert_eq!(g.cwd.as_deref(), Some(Path::new("/vols")));

    let bad_env = vec![("LD_PRELOAD".to_string(), "/tmp/x.so".to_string())];
    r.env = &bad_env;
    let reason = m.check(&r).unwrap_err();
    assert!(
        reason.contains("environment variable `LD_PRELOAD` is not allowed"),
        "{reason}"
    );

    r.env = &[];
    r.cwd = Some("/etc");
    let reason = m.check(&r).unwrap_err();
    assert!(reason.contains("working directory"), "{reason}");
    // The create grant allows no working directory at all.
    let args = argv(&["create", "-f", "raw", "/vols/x", "1G"]);
    let mut r = req("/usr/bin/qemu-img", &args);
    r.cwd = Some("/vols");
    assert!(m.check(&r).unwrap_err().contains("no working directory"));
}

#[test]
fn manifests_are_validated_and_narrowed() {
    let none = BTreeMap::new();
    let e = Manifest::parse(MANIFEST, &none, "m.toml").unwrap_err();
    assert!(e.contains("setting `root`, which is not set"), "{e}");
    let e = Manifest::parse("[[grant]]\nprogram = \"qemu-img\"\n", &none, "m.toml").unwrap_err();
    assert!(e.contains("absolute path"), "{e}");
    let e = Manifest::parse(
        "[[grant]]\nprogram = \"/bin/x\"\nenv = [\"LD_PRELOAD\"]\n",
        &none,
        "m.toml",
    )
    .unwrap_err();
    assert!(e.contains("LD_PRELOAD"), "{e}");
    let e = Manifest::parse(
        "[[grant]]\nprogram = \"/bin/x\"\nargs = [{ path = \"nope\" }]\n",
        &none,
        "m.toml",
    )
    .unwrap_err();
    assert!(e.contains("unknown root `nope`"), "{e}");
    let e = Manifest::parse(
        "[[grant]]\nprogram = \"/bin/x\"\nshell = true\n",
        &none,
        "m.toml",
    )
    .unwrap_err();
    assert!(e.contains("shell"), "{e}");

    let mut m = manifest("/vols");
    assert!(m.narrow(&["/bin/sh".to_string()]).is_err());
    m.narrow(&["/usr/bin/tool".to_string()]).unwrap();
    denied(
        &m,
        "/usr/bin/qemu-img",
        &["create", "-f", "raw", "/vols/x", "1G"],
    );
}

#[test]
fn target_paths_must_be_under_a_target_root() {
    let m = manifest("/vols");
    assert_eq!(
        m.check_target_path("/vols/volume-1").unwrap(),
        PathBuf::from("/vols/volume-1")
    );
    assert!(m.check_target_path("/etc/shadow").is_err());
    assert!(m.check_target_path("/vols/../etc/shadow").is_err());
    let bare = Manifest::default();
    assert!(bare
        .check_target_path("/vols/x")
        .unwrap_err()
        .contains("no [target] roots"));
}

#[test]
fn run_as_user_resolves_to_uid_and_group() {
    let parse = |grant: &str| {
        Manifest::parse(
            &format!("[[grant]]\nprogram = \"/usr/bin/id\"\n{grant}\n"),
            &BTreeMap::new(),
            "runas.toml",
        )
    };
    let m = parse("user = \"root\"").unwrap();
    assert_eq!((m.grants[0].uid, m.grants[0].gid), (Some(0), Some(0)));
    let m = parse("user = \"root\"\ngid = 7").unwrap();
    assert_eq!((m.grants[0].uid, m.grants[0].gid), (Some(0), Some(7)));
    let m = parse("uid = 5").unwrap();
    assert_eq!((m.grants[0].uid, m.grants[0].gid), (Some(5), None));
    let err = parse("user = \"kiln-no-such-user-4e1d\"").unwrap_err();
    assert_eq!(
        err,
        "runas.toml: /usr/bin/id: run-as user `kiln-no-such-user-4e1d` does not exist on this host"
    );
    let err = parse("user = \"root\"\nuid = 0").unwrap_err();
    assert!(err.contains("give `user` or `uid`, not both"), "{err}");
}
