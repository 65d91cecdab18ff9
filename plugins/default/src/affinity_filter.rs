//! `SameBackendFilter` and `DifferentBackendFilter`: Cinder's `affinity_filter.py`.
//!
//! The scheduler hints `same_host` / `different_host` name existing volumes (one id or a
//! list). Every id must look like a UUID (oslo's `is_uuid_like`), otherwise every pool is
//! rejected ("better to fail the request than serve it wrong"). The host resolves the ids
//! to where the volumes live (`Request::hint_volume_pools`, `host@backend#pool`); ids of
//! volumes that do not exist are absent. Same: a pool passes when one of the listed volumes
//! is on it (no hint, or an empty list, passes; a hint whose volumes all vanished fails).
//! Different: a pool passes when none is.
//!
//! Granularity (the one deliberate choice here): by default a pool matches a volume when
//! they share the backend (`host@backend`), as the Kiln brief specifies and as the filters'
//! names say. Upstream Cinder, whose candidates are pools, actually compares the full
//! `host@backend#pool` (its DB host filter matches a `#`-qualified name exactly), so two
//! pools of one backend count as different there. Set the plugin setting
//! `match_level = "pool"` for Cinder's exact behaviour.

use kiln_plugin_sdk::{config, Filter, Pool, Request, Verdict};

/// What "on the same backend" compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchLevel {
    /// `host@backend` (the default).
    Backend,
    /// `host@backend#pool` (upstream Cinder's effective behaviour).
    Pool,
}

fn configured_level() -> MatchLevel {
    match config::get("match_level").as_deref().map(str::trim) {
        Some("pool") => MatchLevel::Pool,
        _ => MatchLevel::Backend,
    }
}

/// Places the volume on the backend of the volumes named by the `same_host` hint.
#[derive(Debug, Clone, Copy)]
pub struct SameBackendFilter {
    level: MatchLevel,
}

/// Places the volume on a backend other than those of the volumes named by the
/// `different_host` hint.
#[derive(Debug, Clone, Copy)]
pub struct DifferentBackendFilter {
    level: MatchLevel,
}

/// A hint, validated and resolved once per request.
enum Hint<'r> {
    /// No hint, or an empty list: every pool passes.
    Absent,
    /// Every pool is rejected with this reason.
    Invalid(String),
    /// `(volume id, location)` of each listed volume that exists.
    Volumes(Vec<(&'r str, &'r str)>),
}

fn read_hint<'r>(request: &'r Request, key: &str) -> Hint<'r> {
    if !request.scheduler_hints.contains_key(key) {
        return Hint::Absent;
    }
    let ids = request.hint_list(key);
    if ids.is_empty() {
        return Hint::Absent;
    }
    if let Some(bad) = ids.iter().find(|id| !is_uuid_like(id)) {
        return Hint::Invalid(format!("{key} hint '{bad}' is not a volume UUID"));
    }
    Hint::Volumes(
        ids.iter()
            .filter_map(|id| request.hint_volume_pools.get_key_value(id.as_str()))
            .map(|(id, loc)| (id.as_str(), loc.as_str()))
            .collect(),
    )
}

/// oslo.utils `uuidutils.is_uuid_like`: after dropping `urn:` / `uuid:`, surrounding braces
/// and hyphens, 32 hex digits.
fn is_uuid_like(s: &str) -> bool {
    let t = s.replace("urn:", "").replace("uuid:", "");
    let t = t.trim_matches(|c| c == '{' || c == '}');
    let mut digits = 0usize;
    for c in t.chars().filter(|&c| c != '-') {
        if !c.is_ascii_hexdigit() {
            return false;
        }
        digits += 1;
    }
    digits == 32
}

/// Is a volume at `location` (`host@backend#pool`) on `pool`?
fn is_on(pool: &Pool, location: &str, level: MatchLevel) -> bool {
    match level {
        MatchLevel::Backend => location.split('#').next() == Some(pool.backend.as_str()),
        MatchLevel::Pool => {
            location
                .strip_prefix(pool.backend.as_str())
                .and_then(|r| r.strip_prefix('#'))
                == Some(pool.pool.as_str())
        }
    }
}

fn what(level: MatchLevel) -> &'static str {
    match level {
        MatchLevel::Backend => "backend",
        MatchLevel::Pool => "pool",
    }
}

fn same(pool: &Pool, hint: &Hint<'_>, level: MatchLevel) -> Verdict {
    match hint {
        Hint::Absent => Verdict::Pass,
        Hint::Invalid(reason) => Verdict::Reject(reason.clone()),
        Hint::Volumes(vols) if vols.iter().any(|(_, loc)| is_on(pool, loc, level)) => Verdict::Pass,
        Hint::Volumes(vols) if vols.is_empty() => {
            Verdict::Reject("none of the same_host volumes exists".into())
        }
        Hint::Volumes(_) => {
            Verdict::Reject(format!("no same_host volume is on this {}", what(level)))
        }
    }
}

fn different(pool: &Pool, hint: &Hint<'_>, level: MatchLevel) -> Verdict {
    match hint {
        Hint::Absent => Verdict::Pass,
        Hint::Invalid(reason) => Verdict::Reject(reason.clone()),
        Hint::Volumes(vols) => match vols.iter().find(|(_, loc)| is_on(pool, loc, level)) {
            None => Verdict::Pass,
            Some((id, _)) => Verdict::Reject(format!(
                "different_host volume {id} is on this {}",
                what(level)
            )),
        },
    }
}

impl Filter for SameBackendFilter {
    const NAME: &'static str = "SameBackendFilter";

    fn new() -> Self {
        SameBackendFilter {
            level: configured_level(),
        }
    }

    fn passes(&self, pool: &Pool, request: &Request) -> Verdict {
        same(pool, &read_hint(request, "same_host"), self.level)
    }

    fn filter(&self, request: &Request, pools: &[&Pool]) -> Vec<Verdict> {
        let hint = read_hint(request, "same_host");
        pools.iter().map(|p| same(p, &hint, self.level)).collect()
    }
}

impl Filter for DifferentBackendFilter {
    const NAME: &'static str = "DifferentBackendFilter";

    fn new() -> Self {
        DifferentBackendFilter {
            level: configured_level(),
        }
    }

    fn passes(&self, pool: &Pool, request: &Request) -> Verdict {
        different(pool, &read_hint(request, "different_host"), self.level)
    }

    fn filter(&self, request: &Request, pools: &[&Pool]) -> Vec<Verdict> {
        let hint = read_hint(request, "different_host");
        pools
            .iter()
            .map(|p| different(p, &hint, self.level))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{pool, request};

    const V1: &str = "0d5c6a5e-8f6e-4d3c-9b1a-2e7f4c8d9a01";
    const V2: &str = "1e6d7b6f-907f-4e4d-8c2b-3f805d9eab12";

    /// A request whose `key` hint is `value`, with `vols` = (id, location) existing.
    fn req(key: &str, value: &str, vols: &[(&str, &str)]) -> Request {
        let mut r = request(1);
        r.scheduler_hints.insert(key.into(), value.into());
        for (id, loc) in vols {
            r.hint_volume_pools.insert(id.to_string(), loc.to_string());
        }
        r
    }

    fn list(ids: &[&str]) -> String {
        format!(
            "[{}]",
            ids.iter()
                .map(|i| format!("\"{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn same_at(level: MatchLevel, p: &Pool, r: &Request) -> bool {
        SameBackendFilter { level }.passes(p, r) == Verdict::Pass
    }

    fn diff_at(level: MatchLevel, p: &Pool, r: &Request) -> bool {
        DifferentBackendFilter { level }.passes(p, r) == Verdict::Pass
    }

    use MatchLevel::{Backend, Pool as PoolLevel};

    #[test]
    fn uuid_likeness_follows_oslo() {
        assert!(is_uuid_like(V1));
        assert!(is_uuid_like(&V1.to_uppercase()));
        assert!(is_uuid_like(&V1.replace('-', "")));
        assert!(is_uuid_like(&format!("{{{V1}}}")));
        assert!(is_uuid_like(&format!("urn:uuid:{V1}")));
        assert!(!is_uuid_like("NOT-a-valid-UUID"));
        assert!(!is_uuid_like(&V1[1..]));
        assert!(!is_uuid_like(""));
    }

    #[test]
    fn different_passes_for_another_pool_at_pool_level() {
        // test_different_filter_passes / _handles_multiple_uuids
        let p = pool("host1@lvm", "pool0");
        let r = req(
            "different_host",
            &list(&[V1, V2]),
            &[(V1, "host1@lvm#pool1"), (V2, "host1@lvm#pool3")],
        );
        assert!(diff_at(PoolLevel, &p, &r));
        assert!(!diff_at(Backend, &p, &r), "same backend, other pools");
    }

    #[test]
    fn different_passes_for_a_legacy_volume_without_pool_at_pool_level() {
        // test_different_filter_legacy_volume_hint_passes
        let p = pool("host1@lvm", "pool0");
        let r = req("different_host", &list(&[V1]), &[(V1, "host1@lvm")]);
        assert!(diff_at(PoolLevel, &p, &r));
        assert!(!diff_at(Backend, &p, &r));
    }

    #[test]
    fn different_fails_where_the_volume_lives() {
        // test_different_filter_fails / _non_list_fails
        let p = pool("host1@lvm", "pool0");
        for hint in [list(&[V1]), V1.to_string()] {
            let r = req("different_host", &hint, &[(V1, "host1@lvm#pool0")]);
            for level in [Backend, PoolLevel] {
                let v = DifferentBackendFilter { level }.passes(&p, &r);
                assert!(matches!(&v, Verdict::Reject(m) if m.contains(V1)), "{v:?}");
            }
        }
    }

    #[test]
    fn no_hint_passes() {
        // test_different_filter_handles_none / test_same_filter_handles_none
        let p = pool("host1@lvm", "pool0");
        for level in [Backend, PoolLevel] {
            assert!(diff_at(level, &p, &request(1)));
            assert!(same_at(level, &p, &request(1)));
            assert!(same_at(level, &p, &req("same_host", "[]", &[])));
        }
    }

    #[test]
    fn deleted_volumes_are_ignored_by_different_and_fail_same() {
        // test_different_filter_handles_deleted_instance / test_same_filter_handles_deleted_instance
        let p = pool("host1@lvm", "pool0");
        assert!(diff_at(
            Backend,
            &p,
            &req("different_host", &list(&[V1]), &[])
        ));
        let v =
            SameBackendFilter { level: Backend }.passes(&p, &req("same_host", &list(&[V1]), &[]));
        assert_eq!(
            v,
            Verdict::Reject("none of the same_host volumes exists".into())
        );
    }

    #[test]
    fn ids_that_are_not_uuids_fail_every_pool() {
        // test_different_filter_fail_nonuuid_hint / _handles_invalid_uuids / test_same_filter_fail_nonuuid_hint
        let p = pool("host1@lvm", "pool0");
        let bad = "NOT-a-valid-UUID";
        let r = req("different_host", &list(&[V1, bad]), &[(V1, "host2@lvm#p")]);
        assert_eq!(
            DifferentBackendFilter { level: Backend }.passes(&p, &r),
            Verdict::Reject("different_host hint 'NOT-a-valid-UUID' is not a volume UUID".into())
        );
        assert!(!diff_at(Backend, &p, &req("different_host", bad, &[])));
        assert!(!same_at(Backend, &p, &req("same_host", bad, &[])));
        assert!(!same_at(Backend, &p, &req("same_host", "", &[])));
    }

    #[test]
    fn same_passes_where_the_volume_lives() {
        // test_same_filter_no_list_passes / test_same_filter_passes
        let p = pool("host1@lvm", "pool0");
        for hint in [V1.to_string(), list(&[V1])] {
            let r = req("same_host", &hint, &[(V1, "host1@lvm#pool0")]);
            assert!(same_at(Backend, &p, &r));
            assert!(same_at(PoolLevel, &p, &r));
        }
    }

    #[test]
    fn same_at_pool_level_fails_another_pool_or_a_legacy_volume() {
        // test_same_filter_fails / test_same_filter_legacy_vol_fails
        let p = pool("host1@lvm", "pool0");
        for loc in ["host1@lvm#pool1", "host1@lvm"] {
            let r = req("same_host", &list(&[V1]), &[(V1, loc)]);
            assert!(!same_at(PoolLevel, &p, &r), "{loc}");
            assert!(same_at(Backend, &p, &r), "{loc}");
        }
        let r = req("same_host", &list(&[V1]), &[(V1, "host2@lvm#pool0")]);
        assert_eq!(
            SameBackendFilter { level: Backend }.passes(&p, &r),
            Verdict::Reject("no same_host volume is on this backend".into())
        );
    }

    #[test]
    fn same_passes_when_any_listed_volume_is_here() {
        // test_same_filter_vol_list_pass
        let p = pool("host1@lvm", "pool0");
        let r = req(
            "same_host",
            &list(&[V1, V2]),
            &[(V1, "host1@lvm#pool0"), (V2, "host2@lvm#pool0")],
        );
        assert!(same_at(Backend, &p, &r));
        assert!(!same_at(Backend, &pool("host3@lvm", "pool0"), &r));
    }

    #[test]
    fn backend_names_must_match_whole() {
        let p = pool("host1@lvm", "pool0");
        let r = req("same_host", &list(&[V1]), &[(V1, "host1@lvm2#pool0")]);
        assert!(!same_at(Backend, &p, &r));
        assert!(!same_at(PoolLevel, &p, &r));
    }

    #[test]
    fn batch_matches_single_and_default_level_is_backend() {
        assert_eq!(SameBackendFilter::new().level, Backend);
        assert_eq!(DifferentBackendFilter::new().level, Backend);
        let pools = [pool("host1@lvm", "a"), pool("host2@lvm", "a")];
        let refs: Vec<&Pool> = pools.iter().collect();
        let r = req("different_host", V1, &[(V1, "host1@lvm#b")]);
        let f = DifferentBackendFilter::new();
        let batch = f.filter(&r, &refs);
        assert_eq!(
            batch,
            vec![f.passes(&pools[0], &r), f.passes(&pools[1], &r)]
        );
        assert_eq!(batch[1], Verdict::Pass);
    }
}
