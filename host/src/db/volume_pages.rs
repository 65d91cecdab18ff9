//! A page of the volume listing fetched as one JSON document built by the database.
//!
//! Listing 1000 volumes row by row costs more in the hand-over than in the query: sqlx's
//! SQLite worker sends each row to the async side on its own (a thread wake-up per row), and
//! every field is then looked up by name in an `AnyRow`. Here the database folds the page —
//! each volume with its metadata — into one JSON array (`json_group_array` / `json_agg`,
//! beside an array of each row's number in the listing's order), which crosses over as one
//! value and is decoded by serde in one pass, then put in that order. The page's SQL is the
//! listing's (`db::listing`), so filters, sort keys and markers behave exactly as for every
//! other table.

use serde::Deserializer;

use super::listing::{bind_all, ListQuery};
use super::volumes::{VolumeRow, TABLE};
use super::{Db, DbError, Engine};

/// The columns of [`VolumeRow`] as the page query selects them (`metadata` is added
/// separately); each becomes the JSON key of the same name.
const FIELDS: &[&str] = &[
    "id",
    "project_id",
    "user_id",
    "display_name",
    "display_description",
    "size",
    "status",
    "attach_status",
    "migration_status",
    "previous_status",
    "name_id",
    "availability_zone",
    "host",
    "volume_type_id",
    "volume_type_name",
    "snapshot_id",
    "source_volid",
    "group_id",
    "bootable",
    "multiattach",
    "encrypted",
    "provider_location",
    "provider_auth",
    "use_quota",
    "created_at",
    "updated_at",
    "launched_at",
];

/// The SQL that turns the numbered page `page` into two JSON arrays built in one pass over the
/// same rows: the volumes, and each one's `page_rn`. The arrays' order is not relied on (an
/// aggregate `ORDER BY` would sort the built objects, ~1 KB each); the rows are put in order
/// after decoding.
fn page_json_sql(engine: Engine, page: &str) -> String {
    let pairs: Vec<String> = FIELDS.iter().map(|f| format!("'{f}', p.{f}")).collect();
    let pairs = pairs.join(", ");
    match engine {
        // `json(...)` keeps the subquery's text a JSON object inside json_object.
        Engine::Sqlite => format!(
            "SELECT json_group_array(p.page_rn), json_group_array(json_object({pairs}, \
             'metadata', json((SELECT json_group_object(m.key, m.value) FROM volume_metadata m \
             WHERE m.volume_id = p.id)))) FROM ({page}) p"
        ),
        Engine::Postgres => format!(
            "SELECT COALESCE(json_agg(p.page_rn), '[]'::json)::text, \
             COALESCE(json_agg(json_build_object({pairs}, 'metadata', \
             (SELECT COALESCE(json_object_agg(m.key, m.value), '{{}}'::json) \
             FROM volume_metadata m WHERE m.volume_id = p.id))), '[]'::json)::text FROM ({page}) p"
        ),
    }
}

impl Db {
    /// Volumes matching `q` (newest first unless `q` sorts), with their metadata.
    pub async fn volume_list(&self, q: &ListQuery) -> Result<Vec<VolumeRow>, DbError> {
        self.check_marker(&TABLE, q).await?;
        let (page, binds) = TABLE.sql(q, true)?;
        let sql = page_json_sql(self.engine(), &self.dialect_page(page));
        let row = bind_all(sqlx::query(&sql), binds)
            .fetch_one(self.reader())
            .await?;
        let decode = |e: serde_json::Error| DbError::Query(sqlx::Error::Decode(Box::new(e)));
        let order: Vec<i64> =
            serde_json::from_str(&sqlx::Row::try_get::<String, _>(&row, 0)?).map_err(decode)?;
        // A decode failure means FIELDS and VolumeRow disagree: a bug, reported as a query error.
        let rows: Vec<VolumeRow> =
            serde_json::from_str(&sqlx::Row::try_get::<String, _>(&row, 1)?).map_err(decode)?;
        let mut rows: Vec<(i64, VolumeRow)> = order.into_iter().zip(rows).collect();
        rows.sort_unstable_by_key(|(rn, _)| *rn);
        Ok(rows.into_iter().map(|(_, row)| row).collect())
    }
}

/// A flag column: SQLite gives 0/1, PostgreSQL true/false. (An untagged enum would build
/// and drop a serde error for every SQLite flag: 4000 per 1000-volume page.)
pub(super) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Flag;
    impl serde::de::Visitor<'_> for Flag {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a boolean or 0/1")
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<bool, E> {
            Ok(v != 0)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<bool, E> {
            Ok(v != 0)
        }
    }
    d.deserialize_any(Flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_field_is_selected_once() {
        let mut seen = std::collections::HashSet::new();
        for f in FIELDS {
            assert!(seen.insert(f), "{f} twice");
            assert!(
                TABLE.columns.contains(f),
                "{f} is not one of the listing's columns"
            );
        }
        // The row's fields are FIELDS plus metadata: a field added to VolumeRow without a
        // column here would fail to decode (serde requires it), and the page tests catch it.
        let sql = page_json_sql(Engine::Sqlite, "SELECT 1");
        assert!(sql.contains("'use_quota', p.use_quota"), "{sql}");
        assert!(sql.contains("json_group_array(p.page_rn)"), "{sql}");
    }
}
