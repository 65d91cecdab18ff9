//! Pools and requests as JSON, in the shape of the WIT records (`pool`, `request` of
//! `wit/kiln-plugin.wit`): the same field names (kebab-case), a `capacity` as a number of GiB
//! or `"infinite"` / `"unknown"`, capabilities as a JSON object whose strings, numbers and
//! booleans are the `cap-value` cases, and `list<tuple<string, string>>` as objects.
//!
//! `GET /v3/{project}/kiln-scheduler/pools` answers a [`PoolFile`]; `kiln plugin record`
//! saves it; `kiln plugin test` reads it and a request file.

use std::collections::BTreeMap;
use std::path::Path;

use kiln_plugin_sdk::{self as sdk, CapValue, Capacity, Operation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AuthorError;

/// A recorded set of pools.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PoolFile {
    /// The scheduler that answered (its host name), when recorded from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    /// When it was recorded (RFC 3339), when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    pub pools: Vec<PoolJson>,
}

fn zero() -> f64 {
    0.0
}
fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

/// The WIT `pool` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PoolJson {
    pub id: u32,
    pub backend: String,
    pub pool: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub availability_zone: String,
    pub total_capacity_gb: CapacityJson,
    pub free_capacity_gb: CapacityJson,
    #[serde(default = "zero")]
    pub allocated_capacity_gb: f64,
    #[serde(default = "zero")]
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
    #[serde(default)]
    pub multiattach: bool,
    #[serde(default)]
    pub filter_function: Option<String>,
    #[serde(default)]
    pub goodness_function: Option<String>,
    #[serde(default)]
    pub capabilities: BTreeMap<String, Value>,
}

/// The WIT `capacity` variant: a number of GiB, `"infinite"` or `"unknown"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityJson(pub Capacity);

impl Serialize for CapacityJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Capacity::Gb(v) => s.serialize_f64(v),
            Capacity::Infinite => s.serialize_str("infinite"),
            Capacity::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for CapacityJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_f64()
                .map(|v| CapacityJson(Capacity::Gb(v)))
                .ok_or_else(|| serde::de::Error::custom("capacity out of range")),
            Value::String(s) if s == "infinite" => Ok(CapacityJson(Capacity::Infinite)),
            Value::String(s) if s == "unknown" => Ok(CapacityJson(Capacity::Unknown)),
            other => Err(serde::de::Error::custom(format!(
                "a capacity is a number of GiB, \"infinite\" or \"unknown\", not {other}"
            ))),
        }
    }
}

impl PoolJson {
    pub fn from_pool(p: &sdk::Pool) -> PoolJson {
        PoolJson {
            id: p.id,
            backend: p.backend.clone(),
            pool: p.pool.clone(),
            host: p.host.clone(),
            availability_zone: p.availability_zone.clone(),
            total_capacity_gb: CapacityJson(p.total_capacity_gb),
            free_capacity_gb: CapacityJson(p.free_capacity_gb),
            allocated_capacity_gb: p.allocated_capacity_gb,
            provisioned_capacity_gb: p.provisioned_capacity_gb,
            reserved_percentage: p.reserved_percentage,
            max_over_subscription_ratio: p.max_over_subscription_ratio,
            thin_provisioning_support: p.thin_provisioning_support,
            thick_provisioning_support: p.thick_provisioning_support,
            total_volumes: p.total_volumes,
            multiattach: p.multiattach,
            filter_function: p.filter_function.clone(),
            goodness_function: p.goodness_function.clone(),
            capabilities: p
                .capabilities
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        CapValue::Text(s) => Value::String(s.clone()),
                        CapValue::Number(n) => {
                            serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
                        }
                        CapValue::Boolean(b) => Value::Bool(*b),
                    };
                    (k.clone(), v)
                })
                .collect(),
        }
    }

    pub fn to_pool(&self) -> Result<sdk::Pool, String> {
        let mut capabilities = BTreeMap::new();
        for (k, v) in &self.capabilities {
            let v = match v {
                Value::String(s) => CapValue::Text(s.clone()),
                Value::Bool(b) => CapValue::Boolean(*b),
                Value::Number(n) => CapValue::Number(n.as_f64().unwrap_or(f64::NAN)),
                other => {
                    return Err(format!(
                        "pool {}: capability {k} must be a string, number or boolean, not {other}",
                        self.id
                    ))
                }
            };
            capabilities.insert(k.clone(), v);
        }
        Ok(sdk::Pool {
            id: self.id,
            backend: self.backend.clone(),
            pool: self.pool.clone(),
            host: self.host.clone(),
            availability_zone: self.availability_zone.clone(),
            total_capacity_gb: self.total_capacity_gb.0,
            free_capacity_gb: self.free_capacity_gb.0,
            allocated_capacity_gb: self.allocated_capacity_gb,
            provisioned_capacity_gb: self.provisioned_capacity_gb,
            reserved_percentage: self.reserved_percentage,
            max_over_subscription_ratio: self.max_over_subscription_ratio,
            thin_provisioning_support: self.thin_provisioning_support,
            thick_provisioning_support: self.thick_provisioning_support,
            total_volumes: self.total_volumes,
            multiattach: self.multiattach,
            filter_function: self.filter_function.clone(),
            goodness_function: self.goodness_function.clone(),
            capabilities,
        })
    }
}

/// The WIT `request` record; every field but the size may be left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RequestJson {
    #[serde(default = "create")]
    pub operation: String,
    #[serde(default)]
    pub volume_id: String,
    #[serde(default)]
    pub project_id: String,
    pub size_gb: u64,
    #[serde(default)]
    pub new_size_gb: Option<u64>,
    #[serde(default)]
    pub volume_type: Option<VolumeTypeJson>,
    #[serde(default)]
    pub availability_zones: Vec<String>,
    #[serde(default)]
    pub scheduler_hints: BTreeMap<String, String>,
    #[serde(default)]
    pub hint_volume_pools: BTreeMap<String, String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub multiattach: bool,
    #[serde(default)]
    pub backends_tried: Vec<String>,
}

fn create() -> String {
    "create".into()
}

/// The WIT `volume-type` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct VolumeTypeJson {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
}

impl RequestJson {
    pub fn to_request(&self) -> Result<sdk::Request, String> {
        let operation = match self.operation.as_str() {
            "create" => Operation::Create,
            "extend" => Operation::Extend,
            "retype" => Operation::Retype,
            "migrate" => Operation::Migrate,
            other => {
                return Err(format!(
                    "operation must be create, extend, retype or migrate, not `{other}`"
                ))
            }
        };
        Ok(sdk::Request {
            operation,
            volume_id: self.volume_id.clone(),
            project_id: self.project_id.clone(),
            size_gb: self.size_gb,
            new_size_gb: self.new_size_gb,
            volume_type: self.volume_type.as_ref().map(|t| sdk::VolumeType {
                id: t.id.clone(),
                name: t.name.clone(),
                extra_specs: t.extra_specs.clone(),
            }),
            availability_zones: self.availability_zones.clone(),
            scheduler_hints: self.scheduler_hints.clone(),
            hint_volume_pools: self.hint_volume_pools.clone(),
            metadata: self.metadata.clone(),
            multiattach: self.multiattach,
            backends_tried: self.backends_tried.clone(),
        })
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, AuthorError> {
    let text = std::fs::read_to_string(path).map_err(AuthorError::io("read", path))?;
    serde_json::from_str(&text).map_err(|e| AuthorError::BadFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The pools of a pool file, checked (ids unique).
pub fn read_pools(path: &Path) -> Result<Vec<sdk::Pool>, AuthorError> {
    let file: PoolFile = read_json(path)?;
    let bad = |reason: String| AuthorError::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut seen = std::collections::HashSet::new();
    let mut pools = Vec::with_capacity(file.pools.len());
    for p in &file.pools {
        if !seen.insert(p.id) {
            return Err(bad(format!("pool id {} appears twice", p.id)));
        }
        pools.push(p.to_pool().map_err(bad)?);
    }
    Ok(pools)
}

/// The request of a request file.
pub fn read_request(path: &Path) -> Result<sdk::Request, AuthorError> {
    let r: RequestJson = read_json(path)?;
    r.to_request().map_err(|reason| AuthorError::BadFile {
        path: path.to_path_buf(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_round_trips_through_json() {
        let mut caps = BTreeMap::new();
        caps.insert("storage_protocol".into(), CapValue::Text("iSCSI".into()));
        caps.insert("QoS_support".into(), CapValue::Boolean(false));
        caps.insert("disks".into(), CapValue::Number(12.0));
        let pool = sdk::Pool {
            id: 3,
            backend: "node1@a".into(),
            pool: "a".into(),
            host: "node1".into(),
            availability_zone: "nova".into(),
            total_capacity_gb: Capacity::Infinite,
            free_capacity_gb: Capacity::Gb(12.5),
            allocated_capacity_gb: 1.0,
            provisioned_capacity_gb: 2.0,
            reserved_percentage: 5,
            max_over_subscription_ratio: 20.0,
            thin_provisioning_support: true,
            thick_provisioning_support: false,
            total_volumes: 7,
            multiattach: true,
            filter_function: Some("capabilities.disks > 1".into()),
            goodness_function: None,
            capabilities: caps,
        };
        let json = serde_json::to_value(PoolJson::from_pool(&pool)).unwrap();
        assert_eq!(json["total-capacity-gb"], "infinite");
        assert_eq!(json["free-capacity-gb"], 12.5);
        assert_eq!(json["capabilities"]["storage_protocol"], "iSCSI");
        let back: PoolJson = serde_json::from_value(json).unwrap();
        assert_eq!(back.to_pool().unwrap(), pool);
    }

    #[test]
    fn requests_default_everything_but_the_size_and_refuse_typos() {
        let r: RequestJson = serde_json::from_str(r#"{"size-gb": 10}"#).unwrap();
        let r = r.to_request().unwrap();
        assert_eq!((r.size_gb, r.operation), (10, Operation::Create));
        let r: RequestJson = serde_json::from_str(
            r#"{"size-gb": 1, "operation": "extend", "new-size-gb": 5,
                "volume-type": {"name": "gold", "extra-specs": {"storage_protocol": "iSCSI"}}}"#,
        )
        .unwrap();
        let r = r.to_request().unwrap();
        assert_eq!(r.requested_gb(), 4);
        assert_eq!(
            r.volume_type.unwrap().extra_specs["storage_protocol"],
            "iSCSI"
        );
        assert!(serde_json::from_str::<RequestJson>(r#"{"size_gb": 1}"#).is_err());
        let bad: RequestJson =
            serde_json::from_str(r#"{"size-gb": 1, "operation": "grow"}"#).unwrap();
        assert!(bad.to_request().unwrap_err().contains("grow"));
    }

    #[test]
    fn pool_files_refuse_duplicate_ids_and_bad_capacities() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pools.json");
        let pool = r#"{"id": 0, "backend": "h@b", "pool": "p", "total-capacity-gb": 10, "free-capacity-gb": 5}"#;
        std::fs::write(&path, format!(r#"{{"pools": [{pool}, {pool}]}}"#)).unwrap();
        let e = read_pools(&path).unwrap_err().to_string();
        assert!(e.contains("appears twice"), "{e}");
        std::fs::write(&path, format!(r#"{{"pools": [{pool}]}}"#)).unwrap();
        assert_eq!(
            read_pools(&path).unwrap()[0].free_capacity_gb,
            Capacity::Gb(5.0)
        );
        std::fs::write(
            &path,
            r#"{"pools": [{"id": 0, "backend": "h@b", "pool": "p", "total-capacity-gb": "lots", "free-capacity-gb": 5}]}"#,
        )
        .unwrap();
        let e = read_pools(&path).unwrap_err().to_string();
        assert!(e.contains("\"infinite\""), "{e}");
    }
}
