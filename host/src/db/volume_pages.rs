//! A page of the volume listing fetched as one JSON document built by the database.
//!
//! Listing 1000 volumes row by row costs more in the hand-over than in the query: sqlx's
//! SQLite worker sends each row to the async side on its own (a thread wake-up per row), and
//! every field is then looked up by name in an `AnyRow`. Here the database folds the page —
//! each volume with its metadata — into one JSON array (`json_group_array` / `json_agg`,
//! ordered by the listing's own row numbers), which crosses over as one value and is decoded
//! by serde in one pass. The page's SQL is the listing's (`db::listing`), so filters, sort
//! keys and markers behave exactly as for every other table.

use serde::{Deserialize, Deserializer};

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

/// The SQL that turns the numbered page `page` into one JSON array text.
fn page_json_sql(engine: Engine, page: &str) -> String {
    let pairs: Vec<String> = FIELDS.iter().map(|f| format!("'{f}', p.{f}")).collect();
    let pairs = pairs.join(", ");
    match engine {
        // `json(...)` keeps the subquery's text a JSON object inside json_object.
        Engine::Sqlite => format!(
            "SELECT json_group_array(json_object({pairs}, 'metadata', \
             json((SELECT json_group_object(m.key, m.value) FROM volume_metadata m \
             WHERE m.volume_id = p.id))) ORDER BY p.page_rn) FROM ({page}) p"
        ),
        Engine::Postgres => format!(
            "SELECT COALESCE(json_agg(json_build_object({pairs}, 'metadata', \
             (SELECT COALESCE(json_object_agg(m.key, m.value), '{{}}'::json) \
             FROM volume_metadata m WHERE m.volume_id = p.id)) ORDER BY p.page_rn), \
             '[]'::json)::text FROM ({page}) p"
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
        let text: String = sqlx::Row::try_get(&row, 0)?;
        // A decode failure means FIELDS and VolumeRow disagree: a bug, reported as a query error.
        serde_json::from_str(&text).map_err(|e| DbError::Query(sqlx::Error::Decode(Box::new(e))))
    }
}

/// A flag column: SQLite gives 0/1, PostgreSQL true/false.
pub(super) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
    }
    Ok(match Flag::deserialize(d)? {
        Flag::Bool(b) => b,
        Flag::Int(i) => i != 0,
    })
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
        assert!(sql.contains("ORDER BY p.page_rn"), "{sql}");
    }
}
