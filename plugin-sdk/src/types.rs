//! Plain Rust versions of the WIT types (`wit/kiln-plugin.wit`), which plugin logic works on.

use std::collections::BTreeMap;

/// A capacity in GiB, or Cinder's `infinite` / `unknown`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Capacity {
    Gb(f64),
    Infinite,
    Unknown,
}

impl Capacity {
    /// The number of GiB, if it is one.
    pub fn gb(&self) -> Option<f64> {
        match self {
            Capacity::Gb(v) => Some(*v),
            _ => None,
        }
    }
}

/// A capability value reported by a driver.
#[derive(Debug, Clone, PartialEq)]
pub enum CapValue {
    Text(String),
    Number(f64),
    Boolean(bool),
}

impl CapValue {
    /// The value as Cinder's filters compare it: its string form (`True` / `False` for
    /// booleans, as Python prints them).
    pub fn to_text(&self) -> String {
        match self {
            CapValue::Text(s) => s.clone(),
            CapValue::Number(n) => format_number(*n),
            CapValue::Boolean(true) => "True".into(),
            CapValue::Boolean(false) => "False".into(),
        }
    }

    /// The value as a number, if it is one or parses as one.
    pub fn to_number(&self) -> Option<f64> {
        match self {
            CapValue::Number(n) => Some(*n),
            CapValue::Text(s) => s.trim().parse().ok(),
            CapValue::Boolean(b) => Some(if *b { 1.0 } else { 0.0 }),
        }
    }
}

/// `2.0` → "2", `2.5` → "2.5" (how a Python int or float prints).
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A backend pool (see the WIT `pool` record for each field).
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub id: u32,
    pub backend: String,
    pub pool: String,
    pub host: String,
    pub availability_zone: String,
    pub total_capacity_gb: Capacity,
    pub free_capacity_gb: Capacity,
    pub allocated_capacity_gb: f64,
    pub provisioned_capacity_gb: f64,
    pub reserved_percentage: u8,
    pub max_over_subscription_ratio: f64,
    pub thin_provisioning_support: bool,
    pub thick_provisioning_support: bool,
    pub total_volumes: u64,
    pub multiattach: bool,
    pub filter_function: Option<String>,
    pub goodness_function: Option<String>,
    pub capabilities: BTreeMap<String, CapValue>,
}

impl Pool {
    /// `host@backend#pool`.
    pub fn name(&self) -> String {
        format!("{}#{}", self.backend, self.pool)
    }

    /// A capability by name: the standard fields under their Cinder names, then the driver's
    /// own capabilities.
    pub fn capability(&self, key: &str) -> Option<CapValue> {
        let cap = |c: Capacity| match c {
            Capacity::Gb(v) => CapValue::Number(v),
            Capacity::Infinite => CapValue::Text("infinite".into()),
            Capacity::Unknown => CapValue::Text("unknown".into()),
        };
        Some(match key {
            "total_capacity_gb" => cap(self.total_capacity_gb),
            "free_capacity_gb" => cap(self.free_capacity_gb),
            "allocated_capacity_gb" => CapValue::Number(self.allocated_capacity_gb),
            "provisioned_capacity_gb" => CapValue::Number(self.provisioned_capacity_gb),
            "reserved_percentage" => CapValue::Number(self.reserved_percentage as f64),
            "max_over_subscription_ratio" => CapValue::Number(self.max_over_subscription_ratio),
            "thin_provisioning_support" => CapValue::Boolean(self.thin_provisioning_support),
            "thick_provisioning_support" => CapValue::Boolean(self.thick_provisioning_support),
            "total_volumes" => CapValue::Number(self.total_volumes as f64),
            "multiattach" => CapValue::Boolean(self.multiattach),
            "pool_name" => CapValue::Text(self.pool.clone()),
            "availability_zone" => CapValue::Text(self.availability_zone.clone()),
            _ => return self.capabilities.get(key).cloned(),
        })
    }
}

/// The capacity fields a placement changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumption {
    pub id: u32,
    pub free_capacity_gb: Capacity,
    pub allocated_capacity_gb: f64,
    pub provisioned_capacity_gb: f64,
    pub total_volumes: u64,
}

/// One change of the pool table.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolDelta {
    Upsert(Pool),
    Consume(Consumption),
    Remove(u32),
    Clear,
}

/// What a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Extend,
    Retype,
    Migrate,
}

/// A volume type with its extra specs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VolumeType {
    pub id: String,
    pub name: String,
    pub extra_specs: BTreeMap<String, String>,
}

/// A placement request (see the WIT `request` record).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub operation: Operation,
    pub volume_id: String,
    pub project_id: String,
    pub size_gb: u64,
    pub new_size_gb: Option<u64>,
    pub volume_type: Option<VolumeType>,
    pub availability_zones: Vec<String>,
    pub scheduler_hints: BTreeMap<String, String>,
    pub hint_volume_pools: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub multiattach: bool,
    pub backends_tried: Vec<String>,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            operation: Operation::Create,
            volume_id: String::new(),
            project_id: String::new(),
            size_gb: 1,
            new_size_gb: None,
            volume_type: None,
            availability_zones: Vec::new(),
            scheduler_hints: BTreeMap::new(),
            hint_volume_pools: BTreeMap::new(),
            metadata: BTreeMap::new(),
            multiattach: false,
            backends_tried: Vec::new(),
        }
    }
}

impl Request {
    /// The GiB this request needs on the pool: the size, or for extend the growth.
    pub fn requested_gb(&self) -> u64 {
        match (self.operation, self.new_size_gb) {
            (Operation::Extend, Some(new)) => new.saturating_sub(self.size_gb),
            _ => self.size_gb,
        }
    }

    /// A scheduler hint whose value may be one string or a JSON list of strings.
    pub fn hint_list(&self, key: &str) -> Vec<String> {
        match self.scheduler_hints.get(key) {
            None => Vec::new(),
            Some(v) => parse_string_list(v),
        }
    }
}

/// `["a","b"]` → [a, b]; `a` → [a]. (A tiny JSON string-list reader: no escapes beyond `\"`.)
fn parse_string_list(v: &str) -> Vec<String> {
    let t = v.trim();
    if !(t.starts_with('[') && t.ends_with(']')) {
        return vec![t.to_string()];
    }
    let inner = &t[1..t.len() - 1];
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_str = false;
    let mut escaped = false;
    for c in inner.chars() {
        if in_str {
            if escaped {
                cur.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
                out.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
        } else if c == '"' {
            in_str = true;
        }
    }
    out
}

/// A filter's answer for one pool.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    Reject(String),
}

impl Verdict {
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_lists_accept_one_string_or_a_json_list() {
        let mut r = Request::default();
        r.scheduler_hints
            .insert("same_host".into(), "[\"a\", \"b\"]".into());
        r.scheduler_hints
            .insert("different_host".into(), "c".into());
        assert_eq!(r.hint_list("same_host"), vec!["a", "b"]);
        assert_eq!(r.hint_list("different_host"), vec!["c"]);
        assert!(r.hint_list("none").is_empty());
    }

    #[test]
    fn extend_requests_the_growth_only() {
        let r = Request {
            operation: Operation::Extend,
            size_gb: 10,
            new_size_gb: Some(15),
            ..Default::default()
        };
        assert_eq!(r.requested_gb(), 5);
    }

    #[test]
    fn values_print_like_python() {
        assert_eq!(CapValue::Number(2.0).to_text(), "2");
        assert_eq!(CapValue::Number(2.5).to_text(), "2.5");
        assert_eq!(CapValue::Boolean(true).to_text(), "True");
    }
}
