//! A page of the volume listing, fetched without handing rows over one at a time.
//!
//! Listing 1000 volumes row by row through sqlx costs more in the hand-over than in the
//! query: sqlx's SQLite worker sends each row to the async side on its own (a thread wake-up
//! per row), and every field is then looked up by name in an `AnyRow`. So:
//! - on **SQLite** the page is read on the connection's own handle
//!   ([`super::sqlite_direct`]): the listing's SQL stepped in place, each row decoded by
//!   position, then the page's metadata in a second statement of the same read transaction;
//! - on **PostgreSQL** (rows arrive in batches over the wire) the database folds the page —
//!   each volume with its metadata — into one JSON array (`json_agg`, beside an array of each
//!   row's number in the listing's order), decoded by serde in one pass, then put in order.
//!
//! The page's SQL is the listing's (`db::listing`) either way, so filters, sort keys and
//! markers behave exactly as for every other table.

use std::collections::{BTreeMap, HashMap};

use serde::Deserializer;

use super::listing::{bind_all, json_list, ListQuery};
use super::sqlite_direct::{bind_listing, Direct};
use super::volumes::{VolumeRow, TABLE};
use super::{Db, DbError};

/// The columns of [`VolumeRow`] in the order the listing selects them (`metadata` is added
/// separately); on PostgreSQL each becomes the JSON key of the same name.
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

/// The PostgreSQL SQL that turns the numbered page `page` into two JSON arrays built in one
/// pass over the same rows: the volumes, and each one's `page_rn`. The arrays' order is not
/// relied on (an aggregate `ORDER BY` would sort the built objects, ~1 KB each); the rows are
/// put in order after decoding.
fn page_json_sql(page: &str) -> String {
    let pairs: Vec<String> = FIELDS.iter().map(|f| format!("'{f}', p.{f}")).collect();
    let pairs = pairs.join(", ");
    format!(
        "SELECT COALESCE(json_agg(p.page_rn), '[]'::json)::text, \
         COALESCE(json_agg(json_build_object({pairs}, 'metadata', \
         (SELECT COALESCE(json_object_agg(m.key, m.value), '{{}}'::json) \
         FROM volume_metadata m WHERE m.volume_id = p.id))), '[]'::json)::text FROM ({page}) p"
    )
}

/// The metadata of a page's volumes, in the same read transaction as the page.
/// The id list drives the lookups (see `listing::among_ids`).
const PAGE_METADATA_SQL: &str = "SELECT m.volume_id, m.key, m.value \
     FROM json_each($1) ids JOIN volume_metadata m ON m.volume_id = ids.value";

/// Read the page `sql` on a SQLite handle: rows decoded by position (the statement's columns
/// are checked against [`FIELDS`] first), then their metadata.
fn read_page(
    c: &rusqlite::Connection,
    sql: &str,
    binds: &[super::listing::FilterValue],
) -> rusqlite::Result<Vec<VolumeRow>> {
    let mut stmt = c.prepare(sql)?;
    if stmt.column_names() != FIELDS {
        // A bug (COLUMNS and FIELDS disagree), reported as a query error rather than
        // decoding fields into the wrong places.
        return Err(rusqlite::Error::InvalidColumnName(format!(
            "the volume listing selects {:?}, expected {FIELDS:?}",
            stmt.column_names()
        )));
    }
    bind_listing(&mut stmt, binds)?;
    let mut out = Vec::new();
    let mut rows = stmt.raw_query();
    while let Some(r) = rows.next()? {
        out.push(VolumeRow {
            id: r.get(0)?,
            project_id: r.get(1)?,
            user_id: r.get(2)?,
            display_name: r.get(3)?,
            display_description: r.get(4)?,
            size: r.get(5)?,
            status: r.get(6)?,
            attach_status: r.get(7)?,
            migration_status: r.get(8)?,
            previous_status: r.get(9)?,
            name_id: r.get(10)?,
            availability_zone: r.get(11)?,
            host: r.get(12)?,
            volume_type_id: r.get(13)?,
            volume_type_name: r.get(14)?,
            snapshot_id: r.get(15)?,
            source_volid: r.get(16)?,
            group_id: r.get(17)?,
            bootable: r.get(18)?,
            multiattach: r.get(19)?,
            encrypted: r.get(20)?,
            provider_location: r.get(21)?,
            provider_auth: r.get(22)?,
            use_quota: r.get(23)?,
            created_at: r.get(24)?,
            updated_at: r.get(25)?,
            launched_at: r.get(26)?,
            metadata: BTreeMap::new(),
        });
    }
    if out.is_empty() {
        return Ok(out);
    }
    let ids: Vec<String> = out.iter().map(|v| v.id.clone()).collect();
    let at: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut stmt = c.prepare(PAGE_METADATA_SQL)?;
    stmt.raw_bind_parameter(1, json_list(&ids))?;
    let mut rows = stmt.raw_query();
    while let Some(r) = rows.next()? {
        let owner = r.get_ref(0)?.as_str()?;
        if let Some(&i) = at.get(owner) {
            out[i].metadata.insert(r.get(1)?, r.get(2)?);
        }
    }
    Ok(out)
}

impl Db {
    /// Volumes matching `q` (newest first unless `q` sorts), with their metadata.
    pub async fn volume_list(&self, q: &ListQuery) -> Result<Vec<VolumeRow>, DbError> {
        self.check_marker(&TABLE, q).await?;
        match self.direct() {
            Some(direct) => Self::volume_page_direct(direct, q).await,
            None => self.volume_page_json(q).await,
        }
    }

    async fn volume_page_direct(direct: &Direct, q: &ListQuery) -> Result<Vec<VolumeRow>, DbError> {
        let (sql, binds) = TABLE.sql(q, false)?;
        Ok(direct.run(|c| read_page(c, &sql, &binds)).await?)
    }

    async fn volume_page_json(&self, q: &ListQuery) -> Result<Vec<VolumeRow>, DbError> {
        let (page, binds) = TABLE.sql(q, true)?;
        let sql = page_json_sql(&self.dialect_page(page));
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
        let sql = page_json_sql("SELECT 1");
        assert!(sql.contains("'use_quota', p.use_quota"), "{sql}");
        assert!(sql.contains("json_agg(p.page_rn)"), "{sql}");
    }
}
