//! Hostile: a filter that allocates without bound for a request whose volume id is "bomb".
use kiln_plugin_sdk::{Filter, Pool, Request, Verdict};

struct MemoryBomb;

impl Filter for MemoryBomb {
    const NAME: &'static str = "MemoryBombFilter";
    fn new() -> Self {
        MemoryBomb
    }
    fn passes(&self, _pool: &Pool, request: &Request) -> Verdict {
        if request.volume_id == "bomb" {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        Verdict::Pass
    }
}

kiln_plugin_sdk::export_filter!(MemoryBomb);
