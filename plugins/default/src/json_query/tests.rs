//! Ports of Cinder's JsonFilter tests (`test_host_filters.py`), plus Kiln's variables.

use super::*;
use crate::testutil::{caps, pool, text};
use kiln_plugin_sdk::{CapValue, Capacity};

fn host(ram: f64, disk: f64, enabled: bool) -> Pool {
    let mut p = pool("host1@lvm", "pool0");
    caps(
        &mut p,
        &[
            ("free_ram_mb", CapValue::Number(ram)),
            ("free_disk_mb", CapValue::Number(disk)),
            ("enabled", CapValue::Boolean(enabled)),
        ],
    );
    p
}

fn run(query: &str, p: &Pool) -> Result<bool, String> {
    compile(query)?.passes(p)
}

const QUERY: &str = r#"["and", [">=", "$free_ram_mb", 1024], [">=", "$free_disk_mb", 204800]]"#;

#[test]
fn query_over_pool_fields_passes() {
    assert_eq!(run(QUERY, &host(1024.0, 204800.0, true)), Ok(true)); // test_json_filter_passes
}

#[test]
fn no_query_passes() {
    assert_eq!(run("", &host(0.0, 0.0, true)), Ok(true)); // test_json_filter_passes_with_no_query
}

#[test]
fn query_fails_on_either_condition() {
    assert_eq!(run(QUERY, &host(1023.0, 204800.0, true)), Ok(false)); // _fails_on_memory
    assert_eq!(run(QUERY, &host(1024.0, 204799.0, true)), Ok(false)); // _fails_on_disk
}

#[test]
fn capability_variables_are_looked_up() {
    // test_json_filter_fails_on_caps_disabled
    let q = r#"["and", [">=", "$free_ram_mb", 1024], [">=", "$free_disk_mb", 204800], "$capabilities.enabled"]"#;
    assert_eq!(run(q, &host(1024.0, 204800.0, false)), Ok(false));
    assert_eq!(run(q, &host(1024.0, 204800.0, true)), Ok(true));
}

#[test]
fn service_of_an_offered_pool_is_enabled() {
    // test_json_filter_fails_on_service_disabled: the host only offers pools of enabled,
    // unfrozen services, so `$service.disabled` is false here.
    let q = r#"["and", ["not", "$service.disabled"], ["not", "$service.frozen"], ["=", "$service.availability_zone", "nova"], ["=", "$service.host", "host1"]]"#;
    assert_eq!(run(q, &host(0.0, 0.0, true)), Ok(true));
}

#[test]
fn happy_day() {
    // test_json_filter_happy_day
    let q = r#"["and", "$capabilities.enabled", ["=", "$capabilities.opt1", "match"],
        ["or", ["and", ["<", "$free_ram_mb", 30], ["<", "$free_disk_mb", 300]],
               ["and", [">", "$free_ram_mb", 30], [">", "$free_disk_mb", 300]]]]"#;
    let h = |ram, disk, enabled, opt1: &str| {
        let mut p = host(ram, disk, enabled);
        caps(&mut p, &[("opt1", text(opt1))]);
        run(q, &p)
    };
    assert_eq!(h(10.0, 200.0, true, "match"), Ok(true));
    assert_eq!(h(40.0, 400.0, true, "match"), Ok(true));
    assert_eq!(
        h(40.0, 400.0, false, "match"),
        Ok(false),
        "capabilities disabled"
    );
    assert_eq!(
        h(30.0, 300.0, true, "match"),
        Ok(false),
        "exact memory/disk"
    );
    assert_eq!(
        h(20.0, 400.0, true, "match"),
        Ok(false),
        "memory lower, disk higher"
    );
    assert_eq!(h(20.0, 400.0, true, "no-match"), Ok(false), "opt1 differs");
}

#[test]
fn basic_operators() {
    // test_json_filter_basic_operators
    let p = host(0.0, 0.0, true);
    let cases: &[(&str, bool)] = &[
        (r#"["=", 1, 1]"#, true),
        (r#"["=", 1, 2]"#, false),
        (r#"["<", 1, 2]"#, true),
        (r#"["<", 1, 1]"#, false),
        (r#"["<", 2, 1]"#, false),
        (r#"[">", 2, 1]"#, true),
        (r#"[">", 2, 2]"#, false),
        (r#"[">", 2, 3]"#, false),
        (r#"["<=", 1, 2]"#, true),
        (r#"["<=", 1, 1]"#, true),
        (r#"["<=", 2, 1]"#, false),
        (r#"[">=", 2, 1]"#, true),
        (r#"[">=", 2, 2]"#, true),
        (r#"[">=", 2, 3]"#, false),
        (r#"["in", 1, 1]"#, true),
        (r#"["in", 1, 1, 2, 3]"#, true),
        (r#"["in", 4, 1, 2, 3]"#, false),
        (r#"["not", true]"#, false),
        (r#"["not", false]"#, true),
        (r#"["or", true, false]"#, true),
        (r#"["or", false, false]"#, false),
        (r#"["and", true, true]"#, true),
        (r#"["and", false, false]"#, false),
        (r#"["and", true, false]"#, false),
        (r#"["and", ["or", true, false], [">", 2, 1]]"#, true),
        // A top-level list result passes when any element is true.
        (r#"["not", true, false, true, false]"#, true),
        (r#"["not", true, true, true]"#, false),
    ];
    for (q, want) in cases {
        assert_eq!(run(q, &p), Ok(*want), "{q}");
    }
}

#[test]
fn unknown_operator_is_an_error() {
    // test_json_filter_unknown_operator_raises
    assert_eq!(
        run(r#"["!=", 1, 2]"#, &host(0.0, 0.0, true)),
        Err("unknown operator \"!=\"".into())
    );
    assert!(run(r#"[["=", 1, 1]]"#, &host(0.0, 0.0, true)).is_err());
}

#[test]
fn empty_queries_pass() {
    // test_json_filter_empty_filters_pass
    for q in ["[]", "{}", "null", "\"\"", "0", "false"] {
        assert_eq!(run(q, &host(0.0, 0.0, true)), Ok(true), "{q}");
    }
}

#[test]
fn too_few_arguments_are_false() {
    // test_json_filter_invalid_num_arguments_fails
    let p = host(0.0, 0.0, true);
    let q = r#"[">", ["and", ["or", ["not", ["<", [">=", ["<=", ["in"]]]]]]]]"#;
    assert_eq!(run(q, &p), Ok(false));
    assert_eq!(run(r#"[">", 1]"#, &p), Ok(false));
}

#[test]
fn unknown_variables_are_dropped() {
    // test_json_filter_unknown_variable_ignored
    let p = host(0.0, 0.0, true);
    assert_eq!(run(r#"["=", "$........", 1, 1]"#, &p), Ok(true));
    assert_eq!(run(r#"["=", "$foo", 2, 2]"#, &p), Ok(true));
    assert_eq!(run(r#"["=", "$capabilities.nope", 2, 2]"#, &p), Ok(true));
    assert_eq!(run(r#"["=", null, "", 2, 2]"#, &p), Ok(true));
}

#[test]
fn malformed_queries_are_errors() {
    let p = host(0.0, 0.0, true);
    assert!(run("[\"=\", 1", &p)
        .unwrap_err()
        .starts_with("invalid JSON"));
    assert!(run("\"=aa\"", &p)
        .unwrap_err()
        .contains("must be a JSON list"));
    assert!(run("{\"a\": 1}", &p).is_err());
    let deep = format!("{}{}", "[\"not\", ".repeat(500), "]".repeat(500));
    assert!(run(&deep, &p).is_err(), "serde_json's recursion limit");
}

#[test]
fn python_typing_of_values() {
    let mut p = host(0.0, 0.0, true);
    p.free_capacity_gb = Capacity::Infinite;
    // `=` between a string and a number is false; ordering them is Python's TypeError.
    assert_eq!(run(r#"["=", "$free_capacity_gb", 10]"#, &p), Ok(false));
    assert_eq!(
        run(r#"["=", "$free_capacity_gb", "infinite"]"#, &p),
        Ok(true)
    );
    assert_eq!(
        run(r#"[">=", "$free_capacity_gb", 10]"#, &p),
        Err("cannot order a string against a number".into())
    );
    // Booleans are numbers: True == 1.
    assert_eq!(run(r#"["=", "$capabilities.enabled", 1]"#, &p), Ok(true));
    assert_eq!(run(r#"["<", "abc", "abd"]"#, &p), Ok(true));
    assert_eq!(run(r#"["=", {"a": 1}, {"a": 1}]"#, &p), Ok(true));
}

#[test]
fn pool_attributes_follow_cinder_names() {
    let mut p = host(0.0, 0.0, true);
    p.total_capacity_gb = Capacity::Gb(500.0);
    caps(&mut p, &[("vendor_name", text("Open Source"))]);
    let q = r#"["and", ["=", "$host", "host1@lvm#pool0"], ["=", "$backend_id", "host1@lvm#pool0"],
        ["=", "$pool_name", "pool0"], ["=", "$total_capacity_gb", 500],
        ["=", "$capabilities.total_capacity_gb", 500], ["=", "$vendor_name", "Open Source"],
        "$capabilities", ["=", "$cluster_name", 1, 1]]"#;
    assert_eq!(run(q, &p), Ok(true));
    assert_eq!(
        run(r#"["=", "$total_capacity_gb.x", 1]"#, &p),
        Err("$total_capacity_gb has no fields".into())
    );
}

#[test]
fn random_queries_never_panic() {
    const PIECES: [&str; 22] = [
        "[",
        "]",
        ",",
        "\"=\"",
        "\"<\"",
        "\">=\"",
        "\"in\"",
        "\"not\"",
        "\"or\"",
        "\"and\"",
        "\"$free_ram_mb\"",
        "\"$capabilities.enabled\"",
        "\"$service.disabled\"",
        "\"$host\"",
        "\"$x.y\"",
        "1",
        "0.5",
        "true",
        "null",
        "\"\"",
        "{}",
        "\"txt\"",
    ];
    let p = host(1.0, 2.0, true);
    let mut rng = crate::testutil::Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = 1 + rng.below(14);
        let src: String = (0..len).map(|_| PIECES[rng.below(PIECES.len())]).collect();
        if let Ok(q) = compile(&src) {
            let _ = q.passes(&p);
        }
    }
}
