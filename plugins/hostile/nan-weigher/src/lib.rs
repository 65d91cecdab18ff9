//! Hostile: a weigher that returns NaN for a request whose volume id is "nan", else the
//! pool's free capacity.
use kiln_plugin_sdk::{Pool, Request, Weigher};

struct NanWeigher;

impl Weigher for NanWeigher {
    const NAME: &'static str = "NanWeigher";
    fn new() -> Self {
        NanWeigher
    }
    fn weight(&self, pool: &Pool, request: &Request) -> f64 {
        if request.volume_id == "nan" {
            f64::NAN
        } else {
            pool.free_capacity_gb.gb().unwrap_or(0.0)
        }
    }
}

kiln_plugin_sdk::export_weigher!(NanWeigher);
