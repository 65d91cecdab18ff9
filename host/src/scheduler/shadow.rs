//! Shadow mode: a candidate chain runs beside the live one on every placement this scheduler
//! makes — over the same candidates and the same pool table (every delta reaches both) — and
//! the scheduler counts and keeps examples of the requests where the two would choose
//! differently. The shadow never places anything; starting, stopping and reading it goes
//! through the admin API (`/kiln-chains/{version}/shadow`).

use std::collections::VecDeque;

use kiln_plugin_sdk::PoolDelta;
use serde::{Deserialize, Serialize};

use crate::plugins::{Chain, Decision, PluginError};

/// Examples of differing decisions kept per scheduler.
const EXAMPLES: usize = 20;

/// A candidate chain and what it would have done.
pub struct Shadow {
    pub label: String,
    pub chain: Chain,
    pub report: ShadowReport,
}

/// One request the chains decided differently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub volume_id: String,
    /// `host@backend#pool` the live chain chose (`None`: no valid backend).
    pub live: Option<String>,
    pub shadow: Option<String>,
}

/// What a shadow found so far, on one scheduler.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowReport {
    /// The scheduler process reporting (`host` of its service).
    pub scheduler: String,
    /// The shadow chain; `None` when no shadow runs.
    pub chain: Option<String>,
    pub compared: u64,
    pub differing: u64,
    /// The latest differences, newest last.
    pub examples: VecDeque<Difference>,
}

impl Shadow {
    pub fn new(label: String, chain: Chain) -> Self {
        Shadow {
            report: ShadowReport {
                chain: Some(label.clone()),
                ..Default::default()
            },
            label,
            chain,
        }
    }

    /// Keep the shadow's table in step with the live one.
    pub fn apply(&mut self, deltas: &[PoolDelta]) -> Vec<PluginError> {
        self.chain.apply(deltas)
    }

    /// Record the shadow's decision beside the live one's.
    pub fn compare(&mut self, volume_id: &str, live: Option<String>, shadow: Option<String>) {
        self.report.compared += 1;
        if live != shadow {
            self.report.differing += 1;
            self.report.examples.push_back(Difference {
                volume_id: volume_id.to_string(),
                live,
                shadow,
            });
            if self.report.examples.len() > EXAMPLES {
                self.report.examples.pop_front();
            }
        }
    }
}

/// The pool a decision chose, by name.
pub fn chosen(d: &Decision, name: impl Fn(u32) -> Option<String>) -> Option<String> {
    d.best().and_then(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_counted_and_the_latest_kept() {
        let mut s = Shadow::new("v2 x".into(), Chain::default());
        s.compare("v0", Some("a".into()), Some("a".into()));
        for i in 0..25 {
            s.compare(&format!("v{i}"), Some("a".into()), Some("b".into()));
        }
        assert_eq!(s.report.compared, 26);
        assert_eq!(s.report.differing, 25);
        assert_eq!(s.report.examples.len(), EXAMPLES);
        assert_eq!(s.report.examples.back().unwrap().volume_id, "v24");
    }
}
