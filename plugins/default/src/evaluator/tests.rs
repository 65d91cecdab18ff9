//! Ports of Cinder's `test_evaluator.py`, plus the Kiln-specific behaviour.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::*;
use crate::testutil::{caps, pool, request, text, vtype, Rng};
use kiln_plugin_sdk::{CapValue, Capacity, Request};

/// Variables from a map of `dict.entry` → value.
#[derive(Default)]
struct Vars(BTreeMap<&'static str, Var<'static>>);

impl Scope for Vars {
    fn var(&self, dict: &str, entry: &str) -> Option<Var<'_>> {
        self.0.get(format!("{dict}.{entry}").as_str()).cloned()
    }
}

fn stats_vars() -> Vars {
    let mut v = Vars::default();
    v.0.insert("stats.iops", Var::Number(1000.0));
    v.0.insert("stats.usage", Var::Number(0.65));
    v.0.insert("stats.count", Var::Number(503.0));
    v.0.insert("stats.free_space", Var::Number(407.0));
    v.0.insert("request.iops", Var::Number(500.0));
    v.0.insert("request.size", Var::Number(4.0));
    v
}

fn ev(src: &str) -> Result<Value, String> {
    parse(src)?.eval(&Vars::default())
}

fn n(src: &str) -> f64 {
    match ev(src) {
        Ok(Value::Num(x)) => x,
        other => panic!("{src}: {other:?}"),
    }
}

fn b(src: &str) -> bool {
    match ev(src) {
        Ok(Value::Bool(x)) => x,
        other => panic!("{src}: {other:?}"),
    }
}

#[test]
fn simple_integer() {
    assert_eq!(n("1+1"), 2.0);
    assert_eq!(n("2+3+4"), 9.0);
    assert_eq!(n("11+12"), 23.0);
    assert_eq!(n("5*6"), 30.0);
    assert_eq!(n("22/11"), 2.0);
    assert_eq!(n("109-71"), 38.0);
    assert_eq!(n("872 - 453 + 44 / 22 * 4 + 66"), 493.0);
}

#[test]
fn simple_float() {
    assert_eq!(n("1.0 + 1.0"), 2.0);
    assert_eq!(n("1.5 + 1.0"), 2.5);
    assert_eq!(n("1.5 * 2.0"), 3.0);
}

#[test]
fn int_float_mix() {
    assert_eq!(n("1.5 + 1"), 2.5);
    assert_eq!(n("8.5 / 2"), 4.25);
    assert_eq!(n("10/4+0.75    + 2"), 5.25);
}

#[test]
fn negative_numbers() {
    assert_eq!(n("-2"), -2.0);
    assert_eq!(n("-2+1"), -1.0);
    assert_eq!(n("5+-2"), 3.0);
    assert_eq!(n("--2"), 2.0);
    assert_eq!(n("+2"), 2.0);
}

#[test]
fn exponent() {
    assert_eq!(n("2^3"), 8.0);
    assert_eq!(n("-2 ^ 3"), -8.0);
    assert_eq!(n("-2 ^ 2"), -4.0);
    assert_eq!(n("2.5 ^ 3"), 15.625);
    assert_eq!(n("4 ^ 1.5"), 8.0);
    assert_eq!(n("2 ^ 3 ^ 2"), 512.0, "right associative");
    assert!(
        ev("2 ^ -1").is_err(),
        "the exponent cannot start with a sign"
    );
    assert!(ev("0 ^ (0 - 1)").is_err());
    assert!(ev("(0 - 8) ^ 0.5").is_err());
}

#[test]
fn function() {
    assert_eq!(n("abs(-5)"), 5.0);
    assert_eq!(n("abs(2)"), 2.0);
    assert_eq!(n("min(1, 100)"), 1.0);
    assert_eq!(n("max(1, 100)"), 100.0);
    assert_eq!(n("max(1, 100, 7)"), 100.0);
    assert_eq!(n("abs 5"), 5.0);
    assert_eq!(n("max(3, min(4, 2))"), 3.0);
    assert!(ev("max(1)").is_err());
    assert!(ev("abs(1, 2)").is_err());
    assert_eq!(ev("foo(1)"), Err("unknown function foo".into()));
}

#[test]
fn parentheses() {
    assert_eq!(n("(1)"), 1.0);
    assert_eq!(n("(-1)"), -1.0);
    assert_eq!(n("(1+1)"), 2.0);
    assert_eq!(n("(1+2) * 5"), 15.0);
    assert_eq!(n("(1+2)*(3-1)/((1+(2-1)))"), 3.0);
    assert_eq!(n("((1.0 / 0.5) * (2)) *(-2)"), -8.0);
}

#[test]
fn comparisons() {
    assert!(b("1 < 2"));
    assert!(b("2 > 1"));
    assert!(b("2 != 1"));
    assert!(!b("1 > 2"));
    assert!(!b("2 < 1"));
    assert!(!b("2 == 1"));
    assert!(b("(1 == 1) == !(1 == 2)"));
    assert!(b("1 <> 2"));
    assert!(b("1 < 2 < 3"), "chained like Python");
    assert!(!b("1 < 3 < 2"));
    assert!(b("1 == (2 > 1)"), "True == 1");
}

#[test]
fn logic_ops() {
    assert!(b("(1 == 1) AND (2 == 2)"));
    assert!(b("(1 == 1) and (2 == 2)"));
    assert!(b("(1 == 1) && (2 == 2)"));
    assert!(!b("(1 == 1) && (5 == 2)"));
    assert!(b("(1 == 1) OR (5 == 2)"));
    assert!(b("(1 == 1) or (5 == 2)"));
    assert!(b("(1 == 1) || (5 == 2)"));
    assert!(!b("(5 == 1) || (5 == 2)"));
    assert!(!b("(1 == 1) AND NOT (2 == 2)"));
    assert!(!b("(1 == 1) AND not (2 == 2)"));
    assert!(!b("(1 == 1) AND !(2 == 2)"));
    assert!(b("(1 == 1) AND NOT (5 == 2)"));
    assert!(b("(1 == 1) OR NOT (2 == 2) AND (5 == 5)"));
}

#[test]
fn and_or_return_operands_and_use_every_operand() {
    assert_eq!(n("5 and 3"), 3.0);
    assert_eq!(n("0 or 7"), 7.0);
    assert_eq!(n("0 and 7"), 0.0);
    // Cinder would ignore the third operand; Kiln does not.
    assert!(!b("(1 == 1) and (1 == 1) and (1 == 2)"));
    assert!(b("(1 == 2) or (1 == 2) or (1 == 1)"));
    assert!(
        ev("(1 == 2) and (1 / 0)").is_err(),
        "no short circuit, as in Cinder"
    );
}

#[test]
fn not_binds_looser_than_arithmetic() {
    assert!(!b("not 1 + 1"));
    assert!(b("not 1 == 0"), "(not 1) == 0");
}

#[test]
fn ternary_conditional() {
    assert_eq!(n("(1 < 2) ? 5 : 10"), 5.0);
    assert_eq!(n("(1 > 2) ? 5 : 10"), 10.0);
    assert_eq!(n("1 < 2 ? 5 : 10"), 5.0);
    assert_eq!(
        n("1 ? 5 : nonsense"),
        5.0,
        "only the chosen branch is evaluated"
    );
    assert_eq!(n("0 ? 1 : 0 ? 2 : 3"), 3.0, "chains fold left");
    assert!(ev("1 ? 2").is_err());
}

#[test]
fn variables_dict() {
    let v = stats_vars();
    assert_eq!(
        parse("stats.iops + request.iops").unwrap().eval(&v),
        Ok(Value::Num(1500.0))
    );
}

#[test]
fn float_variables_truncate_like_python_int() {
    let v = stats_vars();
    assert_eq!(parse("stats.usage").unwrap().eval(&v), Ok(Value::Num(0.0)));
    assert_eq!(
        parse("stats.usage < 0.5").unwrap().eval(&v),
        Ok(Value::Bool(true))
    );
    let mut v = Vars::default();
    v.0.insert("a.text", Var::Text(Cow::Borrowed(" 1.5 ")));
    v.0.insert("a.flag", Var::Boolean(true));
    v.0.insert("a.inf", Var::Number(f64::INFINITY));
    v.0.insert("a.none", Var::Null);
    v.0.insert("a.word", Var::Text(Cow::Borrowed("infinite")));
    assert_eq!(
        parse("a.text").unwrap().eval(&v),
        Ok(Value::Num(1.5)),
        "text is not truncated"
    );
    assert_eq!(parse("a.flag + 1").unwrap().eval(&v), Ok(Value::Num(2.0)));
    assert!(parse("a.inf").unwrap().eval(&v).is_err());
    assert!(parse("a.none").unwrap().eval(&v).is_err());
    assert_eq!(
        parse("a.word").unwrap().eval(&v),
        Err("a.word is 'infinite', not a number".into())
    );
}

#[test]
fn missing_var() {
    let v = stats_vars();
    for src in ["foo.bob + 5", "stats.bob + 5", "fake.var + 1"] {
        assert!(parse(src).unwrap().eval(&v).is_err(), "{src}");
    }
    assert_eq!(
        parse("stats.bob").unwrap().eval(&v),
        Err("unknown variable stats.bob".into())
    );
}

#[test]
fn bad_expression() {
    assert!(parse("1/*1").is_err());
    assert!(parse("").is_err());
    assert!(parse("1 +").is_err());
    assert!(parse("(1").is_err());
    assert!(parse("1 = 1").is_err());
    assert!(
        parse("'a' == 'a'").is_err(),
        "no quoted strings in Cinder's grammar"
    );
    assert!(parse("1 2").is_err());
    assert_eq!(
        parse("1 + $").unwrap_err(),
        "parse error at char 4: unexpected '$'"
    );
}

#[test]
fn nonnumber_comparison() {
    let mut v = Vars::default();
    v.0.insert("nonnumber.test", Var::Text(Cow::Borrowed("foo")));
    v.0.insert("request.test", Var::Text(Cow::Borrowed("bar")));
    assert!(parse("nonnumber.test != request.test")
        .unwrap()
        .eval(&v)
        .is_err());
}

#[test]
fn div_zero() {
    assert_eq!(ev("7 / 0"), Err("division by zero".into()));
    assert!(ev("7 / (1 - 1.0)").is_err());
}

#[test]
fn words_parse_as_python_floats() {
    assert_eq!(n("inf"), f64::INFINITY);
    assert!(ev("abc").is_err());
    assert!(ev("a.b.c").is_err());
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse(&deep).unwrap_err().contains("nested too deeply"));
    assert!(parse(&"-".repeat(10_000)).is_err());
    assert!(parse(&"not ".repeat(10_000)).is_err());
    assert!(parse(&format!("2{}", " ^ 2".repeat(10_000))).is_err());
    assert!(parse(&"abs ".repeat(10_000)).is_err());
    let long = format!("1{}", " + 1".repeat(100_000));
    assert_eq!(
        parse(&long).unwrap().eval(&Vars::default()),
        Ok(Value::Num(100_001.0))
    );
}

#[test]
fn lists_flatten_like_cinder() {
    assert_eq!(
        ev("1, (2, 3)"),
        Ok(Value::List(vec![
            Value::Num(1.0),
            Value::Num(2.0),
            Value::Num(3.0)
        ]))
    );
    assert!(ev("max((1, 2), 3)").is_err());
    assert!(ev("(1, 2) + 1").is_err());
}

fn pool_scope_eval(src: &str, r: &Request) -> Result<Value, String> {
    let mut p = pool("host1@lvm", "pool0");
    p.total_capacity_gb = Capacity::Gb(100.0);
    p.free_capacity_gb = Capacity::Gb(45.7);
    caps(
        &mut p,
        &[
            ("foo", CapValue::Number(10.0)),
            ("vendor_name", text("Open Source")),
        ],
    );
    parse(src)?.eval(&PoolScope {
        pool: &p,
        request: r,
        driver_filter: true,
    })
}

#[test]
fn pool_scope_maps_cinder_dictionaries() {
    let r = Request {
        volume_type: vtype(&[("var", "1")]),
        multiattach: true,
        ..request(5)
    };
    let ok = |s: &str| assert_eq!(pool_scope_eval(s, &r), Ok(Value::Bool(true)), "{s}");
    ok("capabilities.foo == 10");
    ok("stats.total_capacity_gb < 200");
    ok("stats.free_capacity_gb == 45"); // Python's int(45.7)
    ok("capabilities.free_capacity_gb == 45");
    ok("volume.size < 10");
    ok("volume.multiattach == 1");
    ok("extra.var == 1");
    let err = |s: &str| assert!(pool_scope_eval(s, &r).is_err(), "{s}");
    err("qos.var == 1");
    err("capabilities.bar == 10");
    err("stats.host == 1");
    err("stats.vendor_name == 1");
    err("stats.driver_version == 1");
    err("stats.cluster_name == 1");
    err("stats.provisioned_capacity_gb == 1");
    err("volume.volume_type_id == 1");
    err("extra.missing == 1");
}

#[test]
fn random_expressions_never_panic() {
    const PIECES: [&str; 34] = [
        "1",
        "2.5",
        "0",
        "(",
        ")",
        "+",
        "-",
        "*",
        "/",
        "^",
        "?",
        ":",
        ",",
        "and",
        "or",
        "not",
        "!",
        "==",
        "<",
        ">=",
        "<>",
        "&&",
        "||",
        "abs",
        "max",
        "min",
        "capabilities.foo",
        "stats.host",
        "volume.size",
        "x.y.z",
        "inf",
        "nan",
        "é",
        "=",
    ];
    let r = Request {
        volume_type: vtype(&[("var", "1")]),
        ..request(5)
    };
    let mut p = pool("host1@lvm", "pool0");
    caps(&mut p, &[("foo", CapValue::Number(f64::NAN))]);
    let scope = PoolScope {
        pool: &p,
        request: &r,
        driver_filter: true,
    };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..20_000 {
        let len = 1 + rng.below(12);
        let src: Vec<&str> = (0..len).map(|_| PIECES[rng.below(PIECES.len())]).collect();
        let sep = if rng.below(2) == 0 { " " } else { "" };
        if let Ok(expr) = parse(&src.join(sep)) {
            let _ = expr.eval(&scope);
        }
    }
}
