//! Hostile: a filter that answers one verdict too few for a request whose volume id is
//! "short" (bypassing the SDK's export to do so).
use kiln_plugin_sdk::{Filter, Pool, Request, Verdict};

struct WrongLength;

impl Filter for WrongLength {
    const NAME: &'static str = "WrongLengthFilter";
    fn new() -> Self {
        WrongLength
    }
    fn passes(&self, _pool: &Pool, _request: &Request) -> Verdict {
        Verdict::Pass
    }
    fn filter(&self, request: &Request, pools: &[&Pool]) -> Vec<Verdict> {
        let n = if request.volume_id == "short" {
            pools.len().saturating_sub(1)
        } else {
            pools.len()
        };
        vec![Verdict::Pass; n]
    }
}

kiln_plugin_sdk::export_filter!(WrongLength);
