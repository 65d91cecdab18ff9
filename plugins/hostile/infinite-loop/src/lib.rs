//! Hostile: a filter that never returns once asked about a request whose volume id is
//! "loop"; other requests pass, so the test can check the replaced instance works.
use kiln_plugin_sdk::{Filter, Pool, Request, Verdict};

struct InfiniteLoop;

impl Filter for InfiniteLoop {
    const NAME: &'static str = "InfiniteLoopFilter";
    fn new() -> Self {
        InfiniteLoop
    }
    fn passes(&self, _pool: &Pool, request: &Request) -> Verdict {
        if request.volume_id == "loop" {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Verdict::Pass
    }
}

kiln_plugin_sdk::export_filter!(InfiniteLoop);
