//! Prometheus metrics of this process: scheduling decisions and their latency, and per-plugin
//! call latency and failures (traps, timeouts, memory cap, malformed results). One registry
//! per process, rendered in the text exposition format by the API's `/metrics` (and by a
//! standalone scheduler's `scheduler.metrics_listen`).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

struct Metrics {
    registry: Registry,
    decisions: IntCounterVec,
    decision_seconds: HistogramVec,
    plugin_call_seconds: HistogramVec,
    plugin_failures: IntCounterVec,
}

/// Buckets from 10 µs to ~2.6 s: plugin calls are microseconds, deadlines are milliseconds.
fn buckets() -> Vec<f64> {
    prometheus::exponential_buckets(1e-5, 4.0, 10).expect("valid buckets")
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let decisions = IntCounterVec::new(
        Opts::new(
            "kiln_scheduler_decisions_total",
            "Placement decisions by outcome (placed, no_valid_backend, db_refused).",
        ),
        &["outcome"],
    )
    .expect("valid metric");
    let decision_seconds = HistogramVec::new(
        HistogramOpts::new(
            "kiln_scheduler_decision_seconds",
            "Time of one decision through the chain (filters and weighers).",
        )
        .buckets(buckets()),
        &["chain"],
    )
    .expect("valid metric");
    let plugin_call_seconds = HistogramVec::new(
        HistogramOpts::new(
            "kiln_plugin_call_seconds",
            "Time of one call into a plugin instance (sync, accept, filter, weigh).",
        )
        .buckets(buckets()),
        &["plugin"],
    )
    .expect("valid metric");
    let plugin_failures = IntCounterVec::new(
        Opts::new(
            "kiln_plugin_failures_total",
            "Plugin failures by kind (trap, timeout, memory, bad_result); each replaced the instance.",
        ),
        &["plugin", "kind"],
    )
    .expect("valid metric");
    for c in [
        Box::new(decisions.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(decision_seconds.clone()),
        Box::new(plugin_call_seconds.clone()),
        Box::new(plugin_failures.clone()),
    ] {
        registry.register(c).expect("metric registered once");
    }
    Metrics {
        registry,
        decisions,
        decision_seconds,
        plugin_call_seconds,
        plugin_failures,
    }
});

/// A placement decision ended with `outcome`.
pub fn decision(outcome: &str, chain: &str, took: Duration) {
    METRICS.decisions.with_label_values(&[outcome]).inc();
    METRICS
        .decision_seconds
        .with_label_values(&[chain])
        .observe(took.as_secs_f64());
}

/// The database capacity check refused a placement (another scheduler filled the pool).
pub fn db_refused() {
    METRICS.decisions.with_label_values(&["db_refused"]).inc();
}

/// The call-latency histogram of `plugin`: a plugin keeps it and observes every call, so the
/// hot path pays no label lookup.
pub fn plugin_call_histogram(plugin: &str) -> prometheus::Histogram {
    METRICS.plugin_call_seconds.with_label_values(&[plugin])
}

/// `plugin` failed with `kind` (trap, timeout, memory, bad_result).
pub fn plugin_failure(plugin: &str, kind: &str) {
    METRICS
        .plugin_failures
        .with_label_values(&[plugin, kind])
        .inc();
}

/// Every metric in Prometheus' text format.
pub fn render() -> String {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&METRICS.registry.gather(), &mut out)
        .expect("text encoding cannot fail");
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_are_rendered() {
        decision("placed", "preset default", Duration::from_micros(120));
        plugin_call_histogram("capacity_filter").observe(30e-6);
        plugin_failure("loop", "timeout");
        let text = render();
        assert!(
            text.contains("kiln_scheduler_decisions_total{outcome=\"placed\"}"),
            "{text}"
        );
        assert!(
            text.contains("kiln_plugin_call_seconds_bucket{plugin=\"capacity_filter\""),
            "{text}"
        );
        assert!(
            text.contains("kiln_plugin_failures_total{kind=\"timeout\",plugin=\"loop\"} 1"),
            "{text}"
        );
    }
}
