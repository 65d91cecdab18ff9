//! `JsonFilter`: Cinder's `json_filter.py`.
//!
//! The scheduler hint `query` holds a JSON query (see [`crate::json_query`] for the grammar
//! and the variables). No hint, or an empty one, passes every pool. The query is parsed once
//! per request ([`Filter::filter`]).
//!
//! Deviation: a malformed query (bad JSON, unknown operator, a non-list query) or an
//! evaluation error (ordering a string against a number) raises in Cinder and fails the
//! whole request; here every affected pool is rejected with the error as its reason, which
//! the host reports to the user.

use kiln_plugin_sdk::{Filter, Pool, Request, Verdict};

use crate::json_query::{self, Query};

/// Keeps the pools that satisfy the `query` scheduler hint.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonFilter;

fn compile(request: &Request) -> Result<Query, String> {
    match request.scheduler_hints.get("query") {
        None => Ok(Query::Always),
        Some(text) => json_query::compile(text),
    }
}

fn check(pool: &Pool, query: &Result<Query, String>) -> Verdict {
    let query = match query {
        Ok(q) => q,
        Err(e) => return Verdict::Reject(format!("query hint: {e}")),
    };
    match query.passes(pool) {
        Ok(true) => Verdict::Pass,
        Ok(false) => Verdict::Reject("does not satisfy the query hint".into()),
        Err(e) => Verdict::Reject(format!("query hint: {e}")),
    }
}

impl Filter for JsonFilter {
    const NAME: &'static str = "JsonFilter";

    fn new() -> Self {
        JsonFilter
    }

    fn passes(&self, pool: &Pool, request: &Request) -> Verdict {
        check(pool, &compile(request))
    }

    fn filter(&self, request: &Request, pools: &[&Pool]) -> Vec<Verdict> {
        let query = compile(request);
        pools.iter().map(|p| check(p, &query)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{capacity_pool, gb, request, Cap};

    fn req(query: Option<&str>) -> Request {
        let mut r = request(1);
        if let Some(q) = query {
            r.scheduler_hints.insert("query".into(), q.into());
        }
        r
    }

    #[test]
    fn no_query_hint_passes() {
        let p = capacity_pool("h", Cap::default());
        assert_eq!(JsonFilter::new().passes(&p, &req(None)), Verdict::Pass);
        assert_eq!(JsonFilter::new().passes(&p, &req(Some(""))), Verdict::Pass);
    }

    #[test]
    fn pools_are_kept_or_rejected_by_the_query() {
        let big = capacity_pool(
            "big",
            Cap {
                free: gb(2048.0),
                total: gb(10240.0),
                ..Cap::default()
            },
        );
        let small = capacity_pool(
            "small",
            Cap {
                free: gb(100.0),
                total: gb(10240.0),
                ..Cap::default()
            },
        );
        let q =
            r#"["and", [">=", "$free_capacity_gb", 1024], [">=", "$total_capacity_gb", 10240]]"#;
        let v = JsonFilter::new().filter(&req(Some(q)), &[&big, &small]);
        assert_eq!(
            v,
            vec![
                Verdict::Pass,
                Verdict::Reject("does not satisfy the query hint".into())
            ]
        );
    }

    #[test]
    fn malformed_query_rejects_with_the_parse_error() {
        let p = capacity_pool("h", Cap::default());
        let v = JsonFilter::new().filter(&req(Some("[\">=\", ")), &[&p, &p]);
        assert_eq!(v.len(), 2);
        for verdict in v {
            let Verdict::Reject(reason) = verdict else {
                panic!("expected reject")
            };
            assert!(reason.starts_with("query hint: invalid JSON"), "{reason}");
        }
    }

    #[test]
    fn evaluation_errors_reject_the_pool() {
        let mut p = capacity_pool("h", Cap::default());
        p.free_capacity_gb = kiln_plugin_sdk::Capacity::Unknown;
        let v = JsonFilter::new().passes(&p, &req(Some(r#"[">", "$free_capacity_gb", 1]"#)));
        assert_eq!(
            v,
            Verdict::Reject("query hint: cannot order a string against a number".into())
        );
    }
}
