//! The `kiln` binary itself: it starts, knows its version and offers every service command.
//!
//! Being an integration test of the host package, this also makes `cargo test` build the
//! binary (with the same features as every other test target), which the end-to-end tests in
//! `tests/` run from the target directory.

use std::process::Command;

fn kiln(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .expect("run the kiln binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_binary_reports_its_version() {
    let (ok, out) = kiln(&["--version"]);
    assert!(ok, "kiln --version failed");
    assert!(
        out.contains(env!("CARGO_PKG_VERSION")),
        "version missing: {out}"
    );
}

#[test]
fn the_binary_offers_every_service_command() {
    let (ok, out) = kiln(&["--help"]);
    assert!(ok, "kiln --help failed");
    for command in ["all-in-one", "api", "scheduler", "volume", "db", "plugin"] {
        assert!(
            out.contains(command),
            "`{command}` missing from --help: {out}"
        );
    }
}
