//! `GoodnessWeigher`: Cinder's `weights/goodness.py`.
//!
//! The raw weight is the pool's `goodness_function` (see [`crate::evaluator`]; the variables
//! are [`crate::evaluator::PoolScope`]'s, without `stats.backend_id` / `stats.cluster_name`,
//! as in Cinder's goodness stats): `true` → 100, `false` → 0, a number in 0..=100 as is.
//! No function, an error, or a result outside 0..=100 weighs 0 (Cinder logs a warning for
//! each). Each distinct expression is parsed once per request. The host applies the
//! multiplier (Cinder's `goodness_weight_multiplier`, default 1.0).
//!
//! Deviations: a NaN or list result weighs 0 (Cinder would return NaN, or raise and fail the
//! request).

use kiln_plugin_sdk::{Pool, Request, Weigher};

use crate::evaluator::{ExprCache, PoolScope, Value};

/// Weighs pools by their backend's own goodness rating (0 poor … 100 perfect).
#[derive(Debug, Default, Clone, Copy)]
pub struct GoodnessWeigher;

fn rating<'p>(pool: &'p Pool, request: &Request, cache: &mut ExprCache<'p>) -> f64 {
    let Some(src) = pool.goodness_function.as_deref() else {
        return 0.0;
    };
    let Ok(expr) = cache.get(src) else {
        return 0.0;
    };
    match expr.eval(&PoolScope {
        pool,
        request,
        driver_filter: false,
    }) {
        Ok(Value::Bool(true)) => 100.0,
        Ok(Value::Num(n)) if (0.0..=100.0).contains(&n) => n,
        _ => 0.0,
    }
}

impl Weigher for GoodnessWeigher {
    const NAME: &'static str = "GoodnessWeigher";

    fn new() -> Self {
        GoodnessWeigher
    }

    fn weight(&self, pool: &Pool, request: &Request) -> f64 {
        rating(pool, request, &mut ExprCache::default())
    }

    fn weigh(&self, request: &Request, pools: &[&Pool]) -> Vec<f64> {
        let mut cache = ExprCache::default();
        pools
            .iter()
            .map(|p| rating(p, request, &mut cache))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{caps, pool, request, text, vtype};
    use kiln_plugin_sdk::{CapValue, Capacity};

    fn with(f: Option<&str>) -> Pool {
        let mut p = pool("host1@lvm", "pool0");
        p.goodness_function = f.map(String::from);
        p
    }

    fn w(p: &Pool, r: &Request) -> f64 {
        GoodnessWeigher::new().weight(p, r)
    }

    #[test]
    fn no_goodness_function_weighs_zero() {
        let mut p = with(None);
        caps(&mut p, &[("foo", text("50"))]);
        assert_eq!(w(&p, &request(1)), 0.0);
    }

    #[test]
    fn passing_host() {
        assert_eq!(w(&with(Some("100")), &request(1)), 100.0);
        assert_eq!(w(&with(Some("0")), &request(1)), 0.0);
        assert_eq!(w(&with(Some("100 / 2")), &request(1)), 50.0);
    }

    #[test]
    fn capabilities_substitution() {
        let mut p = with(Some("10 + capabilities.foo"));
        caps(&mut p, &[("foo", CapValue::Number(50.0))]);
        assert_eq!(w(&p, &request(1)), 60.0);
    }

    #[test]
    fn extra_specs_substitution() {
        let r = Request {
            volume_type: vtype(&[("foo", "50")]),
            ..request(1)
        };
        assert_eq!(w(&with(Some("10 + extra.foo")), &r), 60.0);
    }

    #[test]
    fn volume_substitution() {
        // Cinder's test uses an arbitrary `volume.foo`; Kiln maps the known fields.
        assert_eq!(w(&with(Some("10 + volume.size")), &request(50)), 60.0);
        assert_eq!(w(&with(Some("10 + volume.foo")), &request(50)), 0.0);
    }

    #[test]
    fn qos_substitution_is_missing_in_kiln() {
        assert_eq!(w(&with(Some("10 + qos.foo")), &request(1)), 0.0);
    }

    #[test]
    fn stats_substitution() {
        let mut p = with(Some("stats.free_capacity_gb > 20"));
        p.free_capacity_gb = Capacity::Gb(50.0);
        assert_eq!(w(&p, &request(1)), 100.0);
        p.free_capacity_gb = Capacity::Gb(10.0);
        assert_eq!(w(&p, &request(1)), 0.0);
    }

    #[test]
    fn invalid_substitution() {
        assert_eq!(w(&with(Some("10 + stats.my_val")), &request(1)), 0.0);
        assert_eq!(
            w(&with(Some("stats.backend_id")), &request(1)),
            0.0,
            "not in goodness stats"
        );
    }

    #[test]
    fn host_rating_out_of_bounds() {
        assert_eq!(w(&with(Some("-10")), &request(1)), 0.0);
        assert_eq!(w(&with(Some("200")), &request(1)), 0.0);
        assert_eq!(w(&with(Some("0 - 0.5")), &request(1)), 0.0);
    }

    #[test]
    fn invalid_goodness_function() {
        assert_eq!(w(&with(Some("50 / 0")), &request(1)), 0.0);
        assert_eq!(w(&with(Some("50 +")), &request(1)), 0.0);
        assert_eq!(w(&with(Some("nan")), &request(1)), 0.0);
        assert_eq!(w(&with(Some("1, 2")), &request(1)), 0.0);
    }

    #[test]
    fn untyped_volume() {
        assert_eq!(w(&with(Some("67")), &request(1)), 67.0);
    }

    #[test]
    fn fractions_are_kept() {
        assert_eq!(w(&with(Some("12.5")), &request(1)), 12.5);
    }

    #[test]
    fn batch_agrees_with_single() {
        let pools = [
            with(Some("100")),
            with(None),
            with(Some("1 == 1")),
            with(Some("100")),
        ];
        let refs: Vec<&Pool> = pools.iter().collect();
        assert_eq!(
            GoodnessWeigher::new().weigh(&request(1), &refs),
            vec![100.0, 0.0, 100.0, 100.0]
        );
    }
}
