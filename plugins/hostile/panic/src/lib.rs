//! Hostile: a filter that panics for a request whose volume id is "panic".
use kiln_plugin_sdk::{Filter, Pool, Request, Verdict};

struct Panics;

impl Filter for Panics {
    const NAME: &'static str = "PanicFilter";
    fn new() -> Self {
        Panics
    }
    fn passes(&self, _pool: &Pool, request: &Request) -> Verdict {
        if request.volume_id == "panic" {
            panic!("hostile plugin panics on purpose");
        }
        Verdict::Pass
    }
}

kiln_plugin_sdk::export_filter!(Panics);
