//! Cinder's per-volume-type quotas: `volumes_<type>`, `snapshots_<type>` and
//! `gigabytes_<type>` (its `add_volume_type_opts`). Every live type has the three, unlimited
//! (-1) unless a quota class or the project sets them; a volume, its snapshots and its growth
//! are charged to its type's resources beside the project-wide ones, in the same check.
//! The resources follow the type: a rename renames its limits, usage and reservations; a
//! retype moves the volume's count and size from the old type to the new one.

use std::collections::BTreeMap;

use sqlx::{Any, Row, Transaction};

use super::{builtin, consume, ensure_usage_rows};
use crate::db::now;

/// The resources that have a per-type twin.
pub const PER_TYPE: [&str; 3] = ["volumes", "snapshots", "gigabytes"];

/// The per-type twin of `resource` for type `type_name`: `gigabytes` → `gigabytes_<name>`.
pub fn type_resource(resource: &str, type_name: &str) -> String {
    format!("{resource}_{type_name}")
}

/// The project-wide resource a per-type resource counts (`gigabytes` for `gigabytes_gold`),
/// or `None` when `resource` is not per-type.
pub fn per_type_base(resource: &str) -> Option<&'static str> {
    PER_TYPE.into_iter().find(|base| {
        resource
            .strip_prefix(base)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|name| !name.is_empty())
    })
}

/// `deltas` plus, for each of `volumes`, `snapshots` and `gigabytes` in them, the same delta on
/// the type's own resource — what a volume of type `type_name` is charged (Cinder's
/// `add_volume_type_opts`). No type: `deltas` alone.
pub fn with_type(deltas: &[(&str, i64)], type_name: Option<&str>) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = deltas.iter().map(|(r, d)| (r.to_string(), *d)).collect();
    if let Some(name) = type_name {
        for (resource, delta) in deltas {
            if PER_TYPE.contains(resource) {
                out.push((type_resource(resource, name), *delta));
            }
        }
    }
    out
}

/// The built-in defaults plus the per-type resources of every live volume type.
pub(super) async fn builtin_with_types<'e, E>(ex: E) -> Result<BTreeMap<String, i64>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let mut limits = builtin();
    let names = sqlx::query("SELECT name FROM volume_types WHERE NOT deleted")
        .fetch_all(ex)
        .await?;
    for r in &names {
        let name: String = r.try_get(0)?;
        for resource in PER_TYPE {
            limits.insert(type_resource(resource, &name), -1);
        }
    }
    Ok(limits)
}

/// A type is renamed from `old` to `new`: its per-type limits (project and class), usage and
/// open reservations are renamed with it, in the rename's transaction (Cinder renames the
/// usage the same way, `quota_usage_update_resource`). Two statements per table and resource;
/// renames are rare.
pub(crate) async fn rename_type_resources(
    tx: &mut Transaction<'_, Any>,
    old: &str,
    new: &str,
) -> Result<(), sqlx::Error> {
    if old == new {
        return Ok(());
    }
    for table in ["quotas", "quota_classes", "quota_usages", "reservations"] {
        for resource in PER_TYPE {
            if table != "reservations" {
                // Rows left by a deleted type of the new name would collide with the renamed
                // ones (one row per project or class and resource); they are that type's.
                sqlx::query(&format!("DELETE FROM {table} WHERE resource = $1"))
                    .bind(type_resource(resource, new))
                    .execute(&mut **tx)
                    .await?;
            }
            sqlx::query(&format!(
                "UPDATE {table} SET resource = $1 WHERE resource = $2"
            ))
            .bind(type_resource(resource, new))
            .bind(type_resource(resource, old))
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// A volume of `size` GB of `project` changes type from `from` to `to` (type ids): its count
/// and size move between the types' resources. Not checked against the new type's limits —
/// the API checked them when it accepted the retype, and the work is done by now (as Cinder's
/// commit of the retype's reservations).
pub(crate) async fn move_type_usage(
    tx: &mut Transaction<'_, Any>,
    project: &str,
    size: i64,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(), sqlx::Error> {
    if from == to {
        return Ok(());
    }
    let mut deltas: Vec<(String, i64)> = Vec::new();
    for (id, sign) in [(from, -1), (to, 1)] {
        let found = match id {
            None => None,
            Some(id) => sqlx::query("SELECT name FROM volume_types WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.try_get::<String, _>(0))
                .transpose()?,
        };
        if let Some(type_name) = found {
            deltas.push((type_resource("volumes", &type_name), sign));
            deltas.push((type_resource("gigabytes", &type_name), sign * size));
        }
    }
    if deltas.is_empty() {
        return Ok(());
    }
    let ts = now();
    let resources: Vec<&str> = deltas.iter().map(|(r, _)| r.as_str()).collect();
    ensure_usage_rows(tx, project, &resources, &ts).await?;
    let deltas: Vec<(&str, i64)> = deltas.iter().map(|(r, d)| (r.as_str(), *d)).collect();
    consume(tx, project, &deltas, &ts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_type_resources_are_recognised_by_their_prefix() {
        assert_eq!(per_type_base("gigabytes_gold"), Some("gigabytes"));
        assert_eq!(per_type_base("volumes___DEFAULT__"), Some("volumes"));
        assert_eq!(per_type_base("snapshots_a_b"), Some("snapshots"));
        assert_eq!(per_type_base("volumes_"), None, "a type name is not empty");
        assert_eq!(per_type_base("volumes"), None);
        assert_eq!(per_type_base("backup_gigabytes"), None);
        assert_eq!(per_type_base("per_volume_gigabytes"), None);
    }

    #[test]
    fn with_type_adds_the_types_twin_of_each_counted_resource() {
        let deltas = [
            ("volumes", 1),
            ("gigabytes", 5),
            ("per_volume_gigabytes", 5),
        ];
        assert_eq!(
            with_type(&deltas, Some("gold")),
            vec![
                ("volumes".to_string(), 1),
                ("gigabytes".to_string(), 5),
                ("per_volume_gigabytes".to_string(), 5),
                ("volumes_gold".to_string(), 1),
                ("gigabytes_gold".to_string(), 5),
            ]
        );
        assert_eq!(with_type(&deltas, None).len(), 3);
    }
}
