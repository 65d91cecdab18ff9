//! `DriverFilter`: Cinder's `driver_filter.py`.
//!
//! A pool whose backend reports a `filter_function` passes when the expression (see
//! [`crate::evaluator`] for the grammar and [`crate::evaluator::PoolScope`] for the
//! variables) evaluates to a true value (Python truthiness: a non-zero number passes). No
//! `filter_function` passes. An expression that fails to parse or evaluate fails the pool,
//! as in Cinder, with the error as the reason. Each distinct expression is parsed once per
//! request.
//!
//! Deviations: only those of the evaluator (all operands of `and` / `or` count, chained
//! ternaries fold left); Kiln has no QoS specs, so `qos.X` is always missing.

use kiln_plugin_sdk::{Filter, Pool, Request, Verdict};

use crate::evaluator::{ExprCache, PoolScope};

/// Lets each backend decide, through its `filter_function`, which requests it takes.
#[derive(Debug, Default, Clone, Copy)]
pub struct DriverFilter;

fn check<'p>(pool: &'p Pool, request: &Request, cache: &mut ExprCache<'p>) -> Verdict {
    let Some(src) = pool.filter_function.as_deref() else {
        return Verdict::Pass;
    };
    let scope = PoolScope {
        pool,
        request,
        driver_filter: true,
    };
    let result = match cache.get(src) {
        Ok(expr) => expr.eval(&scope),
        Err(e) => Err(e.clone()),
    };
    match result {
        Ok(v) if v.truthy() => Verdict::Pass,
        Ok(_) => Verdict::Reject(format!("filter_function {} is false", quote(src))),
        Err(e) => Verdict::Reject(format!("filter_function {} failed: {e}", quote(src))),
    }
}

/// The expression for a message, shortened when long.
fn quote(src: &str) -> String {
    const MAX: usize = 80;
    let src = src.trim();
    match src.char_indices().nth(MAX) {
        None => format!("\"{src}\""),
        Some((cut, _)) => format!("\"{}…\"", &src[..cut]),
    }
}

impl Filter for DriverFilter {
    const NAME: &'static str = "DriverFilter";

    fn new() -> Self {
        DriverFilter
    }

    fn passes(&self, pool: &Pool, request: &Request) -> Verdict {
        check(pool, request, &mut ExprCache::default())
    }

    fn filter(&self, request: &Request, pools: &[&Pool]) -> Vec<Verdict> {
        let mut cache = ExprCache::default();
        pools
            .iter()
            .map(|p| check(p, request, &mut cache))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{caps, pool, request, vtype};
    use kiln_plugin_sdk::{CapValue, Capacity};

    fn with_function(f: Option<&str>) -> Pool {
        let mut p = pool("host1@lvm", "pool0");
        p.filter_function = f.map(String::from);
        p
    }

    fn run(p: &Pool, r: &Request) -> Verdict {
        DriverFilter::new().passes(p, r)
    }

    #[test]
    fn passing_function() {
        assert_eq!(
            run(&with_function(Some("1 == 1")), &request(1)),
            Verdict::Pass
        ); // test_passing_function
    }

    #[test]
    fn failing_function() {
        // test_failing_function
        assert_eq!(
            run(&with_function(Some("1 == 2")), &request(1)),
            Verdict::Reject("filter_function \"1 == 2\" is false".into())
        );
    }

    #[test]
    fn no_filter_function_passes() {
        assert_eq!(run(&with_function(None), &request(1)), Verdict::Pass); // test_no_filter_function / test_not_implemented
    }

    #[test]
    fn no_volume_extra_specs() {
        let r = Request {
            volume_type: vtype(&[]),
            ..request(1)
        };
        assert_eq!(run(&with_function(Some("1 == 1")), &r), Verdict::Pass); // test_no_volume_extra_specs
    }

    #[test]
    fn function_extra_spec_replacement() {
        let r = Request {
            volume_type: vtype(&[("var", "1")]),
            ..request(1)
        };
        assert_eq!(
            run(&with_function(Some("extra.var == 1")), &r),
            Verdict::Pass
        );
    }

    #[test]
    fn function_stats_replacement() {
        let mut p = with_function(Some("stats.total_capacity_gb < 200"));
        p.total_capacity_gb = Capacity::Gb(100.0);
        assert_eq!(run(&p, &request(1)), Verdict::Pass);
    }

    #[test]
    fn function_volume_replacement() {
        assert_eq!(
            run(&with_function(Some("volume.size < 5")), &request(1)),
            Verdict::Pass
        );
        assert!(matches!(
            run(&with_function(Some("volume.size < 5")), &request(5)),
            Verdict::Reject(_)
        ));
    }

    #[test]
    fn qos_specs_are_always_missing() {
        // test_function_qos_spec_replacement cannot pass in Kiln (no QoS specs on requests);
        // test_function_empty_qos: a missing qos key fails the backend.
        let v = run(&with_function(Some("qos.maxiops == 1")), &request(1));
        assert_eq!(
            v,
            Verdict::Reject(
                "filter_function \"qos.maxiops == 1\" failed: unknown variable qos.maxiops".into()
            )
        );
    }

    #[test]
    fn function_exception_caught() {
        // test_function_exception_caught
        let v = run(&with_function(Some("1 / 0 == 0")), &request(1));
        assert_eq!(
            v,
            Verdict::Reject("filter_function \"1 / 0 == 0\" failed: division by zero".into())
        );
        let v = run(&with_function(Some("1 +* 2")), &request(1));
        assert!(
            matches!(&v, Verdict::Reject(r) if r.contains("parse error")),
            "{v:?}"
        );
    }

    #[test]
    fn capabilities() {
        // test_capabilities / test_wrong_capabilities
        let mut p = with_function(Some("capabilities.foo == 10"));
        caps(&mut p, &[("foo", CapValue::Number(10.0))]);
        assert_eq!(run(&p, &request(1)), Verdict::Pass);
        let mut p = with_function(Some("capabilities.foo == 10"));
        caps(&mut p, &[("bar", CapValue::Number(10.0))]);
        assert!(matches!(run(&p, &request(1)), Verdict::Reject(_)));
    }

    #[test]
    fn nonzero_numbers_pass() {
        assert_eq!(
            run(&with_function(Some("volume.size * 2")), &request(3)),
            Verdict::Pass
        );
        assert!(matches!(
            run(&with_function(Some("volume.size - 3")), &request(3)),
            Verdict::Reject(_)
        ));
    }

    #[test]
    fn long_functions_are_shortened_in_reasons() {
        let f = format!("0 * ({})", "1 + ".repeat(40) + "1");
        let Verdict::Reject(r) = run(&with_function(Some(&f)), &request(1)) else {
            panic!()
        };
        assert!(r.len() < 120 && r.contains('…'), "{r}");
    }

    #[test]
    fn shared_functions_are_parsed_once_per_request() {
        let pools: Vec<Pool> = (1..=3)
            .map(|i| {
                let mut p = with_function(Some("capabilities.total_capacity_gb > 150"));
                p.total_capacity_gb = Capacity::Gb(100.0 * f64::from(i));
                p
            })
            .collect();
        let refs: Vec<&Pool> = pools.iter().collect();
        let v = DriverFilter::new().filter(&request(1), &refs);
        assert_eq!(
            v[0],
            Verdict::Reject(
                "filter_function \"capabilities.total_capacity_gb > 150\" is false".into()
            )
        );
        assert_eq!(&v[1..], &[Verdict::Pass, Verdict::Pass]);
    }
}
