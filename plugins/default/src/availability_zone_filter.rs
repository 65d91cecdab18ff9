//! `AvailabilityZoneFilter`: Cinder's `availability_zone_filter.py`.
//!
//! A pool passes when its service's availability zone is one of the request's
//! `availability_zones`; an empty list accepts every zone.
//!
//! Deviation: Cinder falls back to `resource_properties.availability_zone` when the request
//! spec carries no zone list; Kiln's request has only the list (the host puts the volume's
//! zone into it), so there is no fallback.

use kiln_plugin_sdk::{Filter, Pool, Request, Verdict};

use crate::common::Reason;

/// Keeps the pools of the requested availability zones.
#[derive(Debug, Default, Clone, Copy)]
pub struct AvailabilityZoneFilter;

impl Filter for AvailabilityZoneFilter {
    const NAME: &'static str = "AvailabilityZoneFilter";

    fn new() -> Self {
        AvailabilityZoneFilter
    }

    fn passes(&self, pool: &Pool, request: &Request) -> Verdict {
        check(pool, request, &mut Vec::new())
    }

    fn filter(&self, request: &Request, pools: &[&Pool]) -> Vec<Verdict> {
        if request.availability_zones.is_empty() {
            return vec![Verdict::Pass; pools.len()];
        }
        let mut memo = Vec::new();
        pools.iter().map(|p| check(p, request, &mut memo)).collect()
    }

    /// Without reasons: a zone membership test, nothing formatted.
    fn accept(&self, request: &Request, pools: &[&Pool]) -> Vec<bool> {
        let zones = &request.availability_zones;
        pools
            .iter()
            .map(|p| zones.is_empty() || zones.contains(&p.availability_zone))
            .collect()
    }
}

/// `memo` holds the reasons written so far, per zone (pools of a zone share it).
fn check<'p>(pool: &'p Pool, request: &Request, memo: &mut Vec<(&'p str, String)>) -> Verdict {
    let zones = &request.availability_zones;
    if zones.is_empty() || zones.contains(&pool.availability_zone) {
        return Verdict::Pass;
    }
    let zone = pool.availability_zone.as_str();
    if let Some((_, why)) = memo.iter().find(|(z, _)| *z == zone) {
        return Verdict::Reject(why.clone());
    }
    let mut why = Reason::new("in availability zone ").s(zone).s(", not ");
    for (i, z) in zones.iter().enumerate() {
        why = why.s(if i == 0 { "" } else { " or " }).s(z);
    }
    let why = why.done();
    if memo.len() < 16 {
        memo.push((zone, why.clone()));
    }
    Verdict::Reject(why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{pool, request};

    fn run(pool_zone: &str, zones: &[&str]) -> Verdict {
        let mut p = pool("host1@lvm", "p");
        p.availability_zone = pool_zone.into();
        let mut r = request(1);
        r.availability_zones = zones.iter().map(|z| z.to_string()).collect();
        AvailabilityZoneFilter::new().passes(&p, &r)
    }

    // test_availability_zone_filter_same
    #[test]
    fn same_zone_passes() {
        assert_eq!(run("nova", &["nova"]), Verdict::Pass);
    }

    // test_availability_zone_filter_different
    #[test]
    fn different_zone_is_rejected_naming_both_zones() {
        assert_eq!(
            run("nova", &["bad"]),
            Verdict::Reject("in availability zone nova, not bad".into())
        );
    }

    // test_availability_zone_filter_empty
    #[test]
    fn no_requested_zone_passes_any_zone() {
        assert_eq!(run("nova", &[]), Verdict::Pass);
    }

    #[test]
    fn any_of_several_requested_zones_passes() {
        assert_eq!(run("az2", &["az1", "az2"]), Verdict::Pass);
        assert_eq!(
            run("az3", &["az1", "az2"]),
            Verdict::Reject("in availability zone az3, not az1 or az2".into())
        );
    }

    #[test]
    fn batch_agrees_with_single() {
        let zones = ["az1", "az2", "az3", "az2"];
        let pools: Vec<Pool> = zones
            .iter()
            .map(|z| {
                let mut p = pool("h@b", "p");
                p.availability_zone = z.to_string();
                p
            })
            .collect();
        let refs: Vec<&Pool> = pools.iter().collect();
        let mut r = request(1);
        r.availability_zones = vec!["az1".into()];
        let f = AvailabilityZoneFilter::new();
        let single: Vec<Verdict> = pools.iter().map(|p| f.passes(p, &r)).collect();
        assert_eq!(f.filter(&r, &refs), single);
        r.availability_zones.clear();
        assert_eq!(f.filter(&r, &refs), vec![Verdict::Pass; 4]);
    }

    #[test]
    fn zone_names_are_case_sensitive_like_cinder() {
        assert!(matches!(run("Nova", &["nova"]), Verdict::Reject(_)));
    }
}
