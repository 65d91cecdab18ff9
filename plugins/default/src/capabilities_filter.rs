//! `CapabilitiesFilter`: Cinder's `capabilities_filter.py`.
//!
//! Every extra spec of the request's volume type that is unscoped (`key`) or in the
//! `capabilities:` scope (`capabilities:key`) must be satisfied by the pool's capability of
//! that name ([`Pool::capability`]: the standard fields, then the driver's capabilities),
//! with the operators of [`crate::extra_specs`]. Keys in any other scope
//! (`provisioning:type`, `qos:…`, vendor scopes) are ignored. No volume type, or no extra
//! specs, passes. A pool that does not report the capability is rejected naming it.
//! The extra specs are parsed once per request ([`Filter::filter`]).
//!
//! Deviations:
//! - Nested scopes: Cinder walks `capabilities:a:b` into nested capability dictionaries.
//!   Kiln capabilities are flat, so the remainder after `capabilities:` is looked up as one
//!   literal name: `capabilities:a:b` matches a capability named `a:b`.
//! - Cinder matches each element of a list-valued capability; Kiln capability values are
//!   never lists.
//! - Cinder's extend check (a backend reporting `online_extend_support` = False cannot extend
//!   an attached volume) needs the volume's attach status, which the Kiln request lacks; it
//!   is not applied.
//! - Python type errors in an operator (see `extra_specs`) reject the pool instead of failing
//!   the whole request.

use kiln_plugin_sdk::{Filter, Pool, Request, Verdict};

use crate::common::{CapKey, CapRef, Reason};
use crate::extra_specs::{self, Requirement};

/// Keeps the pools whose capabilities satisfy the volume type's extra specs.
#[derive(Debug, Default, Clone, Copy)]
pub struct CapabilitiesFilter;

/// One extra spec the filter checks.
struct Spec<'r> {
    /// The extra spec's key as written.
    key: &'r str,
    /// The capability it names; `None` for the bare key `capabilities` (no name).
    capability: Option<(&'r str, CapKey<'r>)>,
    /// The extra spec's value as written.
    raw: &'r str,
    requirement: Requirement<'r>,
}

fn compile(request: &Request) -> Vec<Spec<'_>> {
    let Some(vtype) = &request.volume_type else {
        return Vec::new();
    };
    vtype
        .extra_specs
        .iter()
        .filter_map(|(key, raw)| {
            let name = match key.strip_prefix("capabilities:") {
                Some(rest) => Some(rest),
                None if key.contains(':') => return None, // another scope: ignored
                None if key == "capabilities" => None,
                None => Some(key.as_str()),
            };
            Some(Spec {
                key,
                capability: name.map(|n| (n, CapKey::of(n))),
                raw,
                requirement: extra_specs::parse(raw),
            })
        })
        .collect()
}

/// Reasons already written during this request, per spec: with many pools, the same
/// rejection (same spec, same value) repeats, and cloning is cheaper than formatting.
#[derive(Default)]
struct Memo<'p> {
    missing: Option<String>,
    by_value: Vec<(CapRef<'p>, String)>,
}

const MEMO_VALUES: usize = 16;

fn check<'p>(pool: &'p Pool, specs: &[Spec<'_>], memo: &mut [Memo<'p>]) -> Verdict {
    for (spec, memo) in specs.iter().zip(memo) {
        let Some((name, key)) = spec.capability else {
            return Verdict::Reject(format!("extra spec '{}' names no capability", spec.key));
        };
        let Some(value) = key.get(pool) else {
            let why = memo.missing.get_or_insert_with(|| {
                Reason::new("does not report capability '")
                    .s(name)
                    .s("'")
                    .done()
            });
            return Verdict::Reject(why.clone());
        };
        let failure = match spec.requirement.matches(value) {
            Ok(true) => continue,
            Ok(false) => None,
            Err(why) => Some(why),
        };
        if let Some((_, why)) = memo.by_value.iter().find(|(v, _)| *v == value) {
            return Verdict::Reject(why.clone());
        }
        let why = Reason::new("capability ").s(name).s(" is ").v(value);
        let why = match failure {
            None => why.s(", needs '").s(spec.raw).s("'"),
            Some(e) => why.s(", cannot match '").s(spec.raw).s("': ").s(e),
        }
        .done();
        if memo.by_value.len() < MEMO_VALUES {
            memo.by_value.push((value, why.clone()));
        }
        return Verdict::Reject(why);
    }
    Verdict::Pass
}

impl Filter for CapabilitiesFilter {
    const NAME: &'static str = "CapabilitiesFilter";

    fn new() -> Self {
        CapabilitiesFilter
    }

    fn passes(&self, pool: &Pool, request: &Request) -> Verdict {
        let specs = compile(request);
        let mut memo: Vec<Memo<'_>> = specs.iter().map(|_| Memo::default()).collect();
        check(pool, &specs, &mut memo)
    }

    fn filter(&self, request: &Request, pools: &[&Pool]) -> Vec<Verdict> {
        let specs = compile(request);
        if specs.is_empty() {
            return vec![Verdict::Pass; pools.len()];
        }
        let mut memo: Vec<Memo<'_>> = specs.iter().map(|_| Memo::default()).collect();
        pools.iter().map(|p| check(p, &specs, &mut memo)).collect()
    }

    /// Without reasons: the same matching, nothing formatted or memoised.
    fn accept(&self, request: &Request, pools: &[&Pool]) -> Vec<bool> {
        let specs = compile(request);
        pools.iter().map(|p| satisfies(p, &specs)).collect()
    }
}

/// Whether `pool` meets every spec; [`check`] without the reason.
fn satisfies(pool: &Pool, specs: &[Spec<'_>]) -> bool {
    specs.iter().all(|spec| {
        let Some((_, key)) = spec.capability else {
            return false;
        };
        key.get(pool)
            .is_some_and(|value| spec.requirement.matches(value) == Ok(true))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{caps, pool, request, text, vtype};
    use kiln_plugin_sdk::CapValue;

    fn run(ecaps: &[(&str, CapValue)], especs: &[(&str, &str)]) -> Verdict {
        let mut p = pool("host1@lvm", "pool");
        caps(&mut p, &[("enabled", CapValue::Boolean(true))]);
        caps(&mut p, ecaps);
        let r = Request {
            volume_type: vtype(especs),
            ..request(1)
        };
        CapabilitiesFilter::new().passes(&p, &r)
    }

    fn passes(ecaps: &[(&str, CapValue)], especs: &[(&str, &str)]) -> bool {
        run(ecaps, especs) == Verdict::Pass
    }

    fn num(n: f64) -> CapValue {
        CapValue::Number(n)
    }

    #[test]
    fn simple_specs_match_string_capabilities() {
        // test_capability_filter_passes_extra_specs_simple / fails_extra_specs_simple
        let c = [("opt1", text("1")), ("opt2", text("2"))];
        assert!(passes(&c, &[("opt1", "1"), ("opt2", "2")]));
        assert_eq!(
            run(&c, &[("opt1", "1"), ("opt2", "222")]),
            Verdict::Reject("capability opt2 is '2', needs '222'".into())
        );
    }

    #[test]
    fn operators_compare_numeric_capabilities() {
        // test_capability_filter_passes_extra_specs_complex / fails_extra_specs_complex
        let c = [("opt1", num(10.0)), ("opt2", num(5.0))];
        assert!(passes(&c, &[("opt1", ">= 2"), ("opt2", "<= 8")]));
        assert_eq!(
            run(&c, &[("opt1", ">= 2"), ("opt2", ">= 8")]),
            Verdict::Reject("capability opt2 is 5, needs '>= 8'".into())
        );
    }

    #[test]
    fn capabilities_scope_is_stripped() {
        // test_capability_filter_passes_scope_extra_specs (flattened) / fails_scope_extra_specs
        assert!(passes(
            &[("opt1", num(10.0))],
            &[("capabilities:opt1", ">= 2")]
        ));
        assert!(!passes(
            &[("opt1", num(10.0))],
            &[("capabilities:opt1", "<= 2")]
        ));
    }

    #[test]
    fn other_scopes_are_ignored() {
        // test_capability_filter_passes_fakescope_extra_specs
        let c = [("opt2", num(5.0))];
        assert!(passes(&c, &[("scope_lv1:opt1", "= 2"), ("opt2", ">= 3")]));
        assert!(passes(
            &c,
            &[("provisioning:type", "thin"), ("qos:maxIOPS", "100")]
        ));
    }

    #[test]
    fn nested_scope_looks_up_a_literal_flat_name() {
        // test_capability_filter_passes_multi_level_scope_extra_specs, flattened to a key
        // named "scope_lv0:scope_lv1:scope_lv2:opt1".
        let c = [("scope_lv0:scope_lv1:scope_lv2:opt1", num(10.0))];
        assert!(passes(
            &c,
            &[("capabilities:scope_lv0:scope_lv1:scope_lv2:opt1", ">= 2")]
        ));
        // test_capability_filter_fails_wrong_scope_extra_specs
        assert_eq!(
            run(
                &[("scope_lv0:opt1", num(10.0))],
                &[("capabilities:scope_lv1:opt1", ">= 2")]
            ),
            Verdict::Reject("does not report capability 'scope_lv1:opt1'".into())
        );
    }

    #[test]
    fn missing_capability_is_rejected_naming_it() {
        assert_eq!(
            run(&[], &[("capabilities:replication", "<is> True")]),
            Verdict::Reject("does not report capability 'replication'".into())
        );
        assert!(!passes(&[], &[("capabilities", "x")]));
    }

    #[test]
    fn standard_fields_are_capabilities() {
        let mut p = pool("host1@lvm", "gold");
        p.thin_provisioning_support = true;
        p.thick_provisioning_support = false;
        p.total_capacity_gb = kiln_plugin_sdk::Capacity::Infinite;
        let check = |specs: &[(&str, &str)]| {
            let r = Request {
                volume_type: vtype(specs),
                ..request(1)
            };
            CapabilitiesFilter::new().passes(&p, &r)
        };
        assert_eq!(
            check(&[("capabilities:thin_provisioning_support", "<is> True")]),
            Verdict::Pass
        );
        assert_eq!(check(&[("pool_name", "gold")]), Verdict::Pass);
        assert_eq!(check(&[("total_capacity_gb", "infinite")]), Verdict::Pass);
        assert!(matches!(
            check(&[("thick_provisioning_support", "<is> True")]),
            Verdict::Reject(_)
        ));
    }

    #[test]
    fn booleans_and_numbers_keep_python_typing() {
        // A Python bool never equals the string "True": use "<is> True".
        assert!(!passes(
            &[("dedup", CapValue::Boolean(true))],
            &[("dedup", "True")]
        ));
        assert!(passes(
            &[("dedup", CapValue::Boolean(true))],
            &[("dedup", "<is> True")]
        ));
        assert!(!passes(&[("iops", num(5.0))], &[("iops", "5")]));
        assert!(passes(&[("iops", num(5.0))], &[("iops", "== 5")]));
    }

    #[test]
    fn python_type_errors_reject_with_the_reason() {
        let v = run(&[("iops", num(5.0))], &[("iops", "<in> 5")]);
        assert_eq!(
            v,
            Verdict::Reject(
                "capability iops is 5, cannot match '<in> 5': '<in>' needs a text capability"
                    .into()
            )
        );
    }

    #[test]
    fn no_type_or_no_specs_passes() {
        let p = pool("host1@lvm", "pool");
        assert_eq!(
            CapabilitiesFilter::new().passes(&p, &request(1)),
            Verdict::Pass
        );
        let r = Request {
            volume_type: vtype(&[]),
            ..request(1)
        };
        assert_eq!(CapabilitiesFilter::new().passes(&p, &r), Verdict::Pass);
    }

    #[test]
    fn batch_compiles_once_and_agrees_with_single() {
        let mut a = pool("a@x", "p");
        caps(&mut a, &[("vendor_name", text("Open Source"))]);
        let mut b = pool("b@x", "p");
        caps(&mut b, &[("vendor_name", text("Acme"))]);
        let r = Request {
            volume_type: vtype(&[("vendor_name", "<or> Acme <or> Other")]),
            ..request(1)
        };
        let f = CapabilitiesFilter::new();
        let v = f.filter(&r, &[&a, &b]);
        assert_eq!(v, vec![f.passes(&a, &r), f.passes(&b, &r)]);
        assert_eq!(v[1], Verdict::Pass);
    }
}
