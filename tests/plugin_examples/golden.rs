//! The golden case file `plugins/examples/golden/capacity.json`: its format (serde types) and
//! the conversion of its pools, deltas and requests into the SDK's plain types.

use std::collections::BTreeMap;

use kiln_plugin_sdk::{
    Capacity, Consumption, Operation, Pool, PoolDelta, Request, Verdict, VolumeType,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct GoldenFile {
    pub suites: Vec<Suite>,
}

/// Pools given by a full sync, then steps run in order.
#[derive(Debug, Deserialize)]
pub struct Suite {
    pub name: String,
    /// The plugins' settings (`capacity_weight_multiplier`).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    pub pools: Vec<PoolSpec>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Pool deltas sent to every plugin.
    Apply(Vec<DeltaSpec>),
    /// A request and what the filter and weigher must answer.
    Case(Case),
}

#[derive(Debug, Deserialize)]
pub struct Case {
    pub name: String,
    pub request: RequestSpec,
    pub candidates: Vec<u32>,
    pub verdicts: Vec<VerdictSpec>,
    pub weights: Vec<WeightSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CapSpec {
    Gb(f64),
    Special(String),
}

#[derive(Debug, Deserialize)]
pub struct PoolSpec {
    pub id: u32,
    pub total_capacity_gb: CapSpec,
    pub free_capacity_gb: CapSpec,
    #[serde(default)]
    pub allocated_capacity_gb: f64,
    #[serde(default)]
    pub provisioned_capacity_gb: f64,
    #[serde(default)]
    pub reserved_percentage: u8,
    #[serde(default = "one")]
    pub max_over_subscription_ratio: f64,
    #[serde(default)]
    pub thin_provisioning_support: bool,
    #[serde(default = "yes")]
    pub thick_provisioning_support: bool,
    #[serde(default)]
    pub total_volumes: u64,
}

fn one() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub struct ConsumeSpec {
    pub id: u32,
    pub free_capacity_gb: CapSpec,
    pub allocated_capacity_gb: f64,
    pub provisioned_capacity_gb: f64,
    pub total_volumes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeltaSpec {
    Upsert(PoolSpec),
    Consume(ConsumeSpec),
    Remove(u32),
    Clear,
}

#[derive(Debug, Deserialize)]
pub struct RequestSpec {
    #[serde(default)]
    pub operation: Option<String>,
    pub size_gb: u64,
    #[serde(default)]
    pub new_size_gb: Option<u64>,
    /// Extra specs of the volume type; no type when absent.
    #[serde(default)]
    pub extra_specs: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum VerdictSpec {
    Pass,
    Reject(String),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum WeightSpec {
    Number(f64),
    /// "inf" or "-inf" (JSON has no infinities).
    Text(String),
}

impl CapSpec {
    fn capacity(&self) -> Capacity {
        match self {
            CapSpec::Gb(v) => Capacity::Gb(*v),
            CapSpec::Special(s) if s == "infinite" => Capacity::Infinite,
            CapSpec::Special(s) if s == "unknown" => Capacity::Unknown,
            CapSpec::Special(s) => {
                panic!("golden file: capacity `{s}` is not a number, infinite or unknown")
            }
        }
    }
}

impl PoolSpec {
    pub fn pool(&self) -> Pool {
        let id = self.id;
        Pool {
            id,
            backend: format!("node{id}@lvm"),
            pool: format!("pool{id}"),
            host: format!("node{id}"),
            availability_zone: "nova".into(),
            total_capacity_gb: self.total_capacity_gb.capacity(),
            free_capacity_gb: self.free_capacity_gb.capacity(),
            allocated_capacity_gb: self.allocated_capacity_gb,
            provisioned_capacity_gb: self.provisioned_capacity_gb,
            reserved_percentage: self.reserved_percentage,
            max_over_subscription_ratio: self.max_over_subscription_ratio,
            thin_provisioning_support: self.thin_provisioning_support,
            thick_provisioning_support: self.thick_provisioning_support,
            total_volumes: self.total_volumes,
            multiattach: false,
            filter_function: None,
            goodness_function: None,
            capabilities: BTreeMap::new(),
        }
    }
}

impl DeltaSpec {
    pub fn delta(&self) -> PoolDelta {
        match self {
            DeltaSpec::Upsert(p) => PoolDelta::Upsert(p.pool()),
            DeltaSpec::Consume(c) => PoolDelta::Consume(Consumption {
                id: c.id,
                free_capacity_gb: c.free_capacity_gb.capacity(),
                allocated_capacity_gb: c.allocated_capacity_gb,
                provisioned_capacity_gb: c.provisioned_capacity_gb,
                total_volumes: c.total_volumes,
            }),
            DeltaSpec::Remove(id) => PoolDelta::Remove(*id),
            DeltaSpec::Clear => PoolDelta::Clear,
        }
    }
}

impl RequestSpec {
    pub fn request(&self) -> Request {
        let operation = match self.operation.as_deref().unwrap_or("create") {
            "create" => Operation::Create,
            "extend" => Operation::Extend,
            "retype" => Operation::Retype,
            "migrate" => Operation::Migrate,
            other => panic!("golden file: unknown operation `{other}`"),
        };
        Request {
            operation,
            volume_id: "99999999-9999-4999-8999-999999999999".into(),
            project_id: "golden".into(),
            size_gb: self.size_gb,
            new_size_gb: self.new_size_gb,
            volume_type: self.extra_specs.as_ref().map(|specs| VolumeType {
                id: "type-golden".into(),
                name: "golden".into(),
                extra_specs: specs.clone(),
            }),
            ..Default::default()
        }
    }
}

impl VerdictSpec {
    pub fn matches(&self, got: &Verdict) -> bool {
        match (self, got) {
            (VerdictSpec::Pass, Verdict::Pass) => true,
            (VerdictSpec::Reject(want), Verdict::Reject(reason)) => want == reason,
            _ => false,
        }
    }
}

impl WeightSpec {
    pub fn value(&self) -> f64 {
        match self {
            WeightSpec::Number(v) => *v,
            WeightSpec::Text(s) if s == "inf" => f64::INFINITY,
            WeightSpec::Text(s) if s == "-inf" => f64::NEG_INFINITY,
            WeightSpec::Text(s) => panic!("golden file: weight `{s}` is not a number, inf or -inf"),
        }
    }
}

/// Read the golden file of the repository.
pub fn load() -> GoldenFile {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/examples/golden/capacity.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is malformed: {e}"))
}
