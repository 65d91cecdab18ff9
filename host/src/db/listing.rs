//! Cinder-style listing shared by the resource tables: equality filters, metadata filters,
//! `sort=key:dir,...` over a per-table whitelist of sort keys, `limit`, `offset` and `marker`
//! pagination (the rows after the marker row in the sort order, with `id` as the final
//! tie-breaker so pages never overlap), and the metadata of a page fetched in one query.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Db, DbError};

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

/// A value a listing filter compares a column with.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Text(String),
    Bool(bool),
}

/// One sortable key of a table: the name clients use and the SQL expression behind it.
#[derive(Debug, Clone, Copy)]
pub struct SortKey {
    pub name: &'static str,
    pub column: &'static str,
}

/// How a resource table is listed.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    /// The `SELECT` list (may use the table name for correlated subqueries).
    pub columns: &'static str,
    /// `(metadata table, its foreign-key column)`, for metadata filters and [`Db::metadata_of`].
    pub metadata: (&'static str, &'static str),
    pub sort_keys: &'static [SortKey],
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// `None`: every project (admin `all_tenants`).
    pub project_id: Option<String>,
    /// `(column, value)`: equality filters; columns come from the caller's whitelist.
    pub filters: Vec<(&'static str, FilterValue)>,
    /// Rows whose metadata holds every one of these pairs.
    pub metadata: BTreeMap<String, String>,
    /// `(sort key name, direction)`; empty = newest first.
    pub sort: Vec<(String, SortDir)>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub marker: Option<String>,
}

/// A listing parameter the table cannot honour.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ListError {
    #[error("Invalid input received: sort key '{key}' is not one of: {allowed}")]
    SortKey { key: String, allowed: String },
    #[error("Invalid input received: sort direction '{0}' is not 'asc' or 'desc'")]
    SortDir(String),
    #[error("Marker {0} could not be found.")]
    Marker(String),
}

/// Parse Cinder's `sort=k1:asc,k2` (or the legacy `sort_key` / `sort_dir` pair).
pub fn parse_sort(
    sort: Option<&str>,
    sort_key: Option<&str>,
    sort_dir: Option<&str>,
) -> Result<Vec<(String, SortDir)>, ListError> {
    let dir = |d: Option<&str>| match d.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("desc") => Ok(SortDir::Desc),
        Some("asc") => Ok(SortDir::Asc),
        Some(other) => Err(ListError::SortDir(other.to_string())),
    };
    let mut out = Vec::new();
    if let Some(sort) = sort.filter(|s| !s.is_empty()) {
        for item in sort.split(',') {
            let (key, d) = match item.split_once(':') {
                Some((k, d)) => (k, Some(d)),
                None => (item, None),
            };
            out.push((key.trim().to_string(), dir(d.map(str::trim))?));
        }
    } else if let Some(key) = sort_key {
        out.push((key.to_string(), dir(sort_dir)?));
    }
    Ok(out)
}

impl Table {
    fn sort_column(&self, key: &str) -> Result<&'static str, ListError> {
        // Cinder accepts `name` and `display_name` alike.
        let key = if key == "display_name" { "name" } else { key };
        self.sort_keys
            .iter()
            .find(|k| k.name == key)
            .map(|k| k.column)
            .ok_or_else(|| ListError::SortKey {
                key: key.to_string(),
                allowed: self
                    .sort_keys
                    .iter()
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The SQL and binds listing `q` (rows not deleted). With `numbered`, each row also
    /// carries its position in the listing's order as `page_rn` (1, 2, ...), so an outer
    /// query can aggregate the page without losing that order.
    pub(super) fn sql(
        &self,
        q: &ListQuery,
        numbered: bool,
    ) -> Result<(String, Vec<FilterValue>), ListError> {
        let t = self.name;
        let mut sql = format!(" FROM {t} WHERE NOT {t}.deleted");
        let mut binds: Vec<FilterValue> = Vec::new();
        let mut bind = |v: FilterValue| {
            binds.push(v);
            format!("${}", binds.len())
        };
        if let Some(p) = &q.project_id {
            sql.push_str(&format!(
                " AND {t}.project_id = {}",
                bind(FilterValue::Text(p.clone()))
            ));
        }
        for (column, value) in &q.filters {
            sql.push_str(&format!(" AND {t}.{column} = {}", bind(value.clone())));
        }
        let (meta, fk) = self.metadata;
        for (k, v) in &q.metadata {
            let (k, v) = (
                bind(FilterValue::Text(k.clone())),
                bind(FilterValue::Text(v.clone())),
            );
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM {meta} m WHERE m.{fk} = {t}.id AND m.key = {k} AND m.value = {v})"
            ));
        }
        let mut keys: Vec<(&'static str, SortDir)> = Vec::new();
        for (key, dir) in &q.sort {
            keys.push((self.sort_column(key)?, *dir));
        }
        if keys.is_empty() {
            keys.push(("created_at", SortDir::Desc));
        }
        if !keys.iter().any(|(c, _)| *c == "id") {
            let last = keys.last().map_or(SortDir::Desc, |(_, d)| *d);
            keys.push(("id", last));
        }
        if let Some(marker) = &q.marker {
            // Rows strictly after the marker: (k1 beyond) OR (k1 equal AND k2 beyond) ...
            let m = bind(FilterValue::Text(marker.clone()));
            let of_marker = |c: &str| format!("(SELECT {c} FROM {t} mk WHERE mk.id = {m})");
            let mut any = Vec::new();
            for (i, (col, dir)) in keys.iter().enumerate() {
                let mut all: Vec<String> = keys[..i]
                    .iter()
                    .map(|(c, _)| {
                        format!("{} = {}", qualified(t, c), of_marker(&qualified("mk", c)))
                    })
                    .collect();
                let op = if *dir == SortDir::Asc { ">" } else { "<" };
                all.push(format!(
                    "{} {op} {}",
                    qualified(t, col),
                    of_marker(&qualified("mk", col))
                ));
                any.push(format!("({})", all.join(" AND ")));
            }
            sql.push_str(&format!(" AND ({})", any.join(" OR ")));
        }
        let order: Vec<String> = keys
            .iter()
            .map(|(c, d)| {
                let d = if *d == SortDir::Asc { "ASC" } else { "DESC" };
                format!("{} {d}", qualified(t, c))
            })
            .collect();
        let order = order.join(", ");
        let numbering = if numbered {
            format!(", ROW_NUMBER() OVER (ORDER BY {order}) AS page_rn")
        } else {
            String::new()
        };
        let mut sql = format!("SELECT {}{numbering}{sql} ORDER BY {order}", self.columns);
        if let Some(limit) = q.limit {
            sql.push_str(&format!(" LIMIT {}", limit.max(0)));
        }
        if let Some(offset) = q.offset {
            if q.limit.is_none() {
                // Both engines need a LIMIT before OFFSET; -1 / ALL mean none.
                sql.push_str(" LIMIT -1");
            }
            sql.push_str(&format!(" OFFSET {}", offset.max(0)));
        }
        Ok((sql, binds))
    }
}

/// `col` qualified by `table` unless it is an expression (then columns inside are bare
/// names of `table`, rewritten by the caller's choice of expression).
fn qualified(table: &str, col: &str) -> String {
    if col.contains('(') {
        col.replace("{t}", table)
    } else {
        format!("{table}.{col}")
    }
}

impl Db {
    /// The rows of `table` matching `q`, each decoded by `decode`.
    pub async fn list_rows<T>(
        &self,
        table: &Table,
        q: &ListQuery,
        decode: impl Fn(&sqlx::any::AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, DbError> {
        self.check_marker(table, q).await?;
        let (sql, binds) = table.sql(q, false)?;
        let sql = self.dialect_page(sql);
        let rows = bind_all(sqlx::query(&sql), binds)
            .fetch_all(self.reader())
            .await?;
        Ok(rows.iter().map(decode).collect::<Result<Vec<T>, _>>()?)
    }

    /// A marker must name a live row of `table`.
    pub(super) async fn check_marker(&self, table: &Table, q: &ListQuery) -> Result<(), DbError> {
        if let Some(marker) = &q.marker {
            let found = sqlx::query(&format!(
                "SELECT id FROM {} WHERE id = $1 AND NOT deleted",
                table.name
            ))
            .bind(marker)
            .fetch_optional(self.reader())
            .await?;
            if found.is_none() {
                return Err(ListError::Marker(marker.clone()).into());
            }
        }
        Ok(())
    }

    /// `sql` in this engine's spelling of "no limit".
    pub(super) fn dialect_page(&self, sql: String) -> String {
        if self.engine() == super::Engine::Postgres {
            sql.replace("LIMIT -1", "LIMIT ALL")
        } else {
            sql
        }
    }

    /// The metadata of each of `ids` (one query), for a page of rows.
    pub async fn metadata_of(
        &self,
        table: &Table,
        ids: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, DbError> {
        let (meta, fk) = table.metadata;
        let (from, cond) = among_ids(self.engine(), meta, "m", fk, 1);
        let sql = format!("SELECT m.{fk} AS owner, m.key, m.value FROM {from} WHERE {cond}");
        let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for r in sqlx::query(&sql)
            .bind(json_list(ids))
            .fetch_all(self.reader())
            .await?
        {
            out.entry(r.try_get("owner")?)
                .or_default()
                .insert(r.try_get("key")?, r.try_get("value")?);
        }
        Ok(out)
    }
}

/// SQL `FROM` items and a `WHERE` condition restricting `table` (as `alias`) to the rows whose
/// `column` is one of the strings of the JSON array bound as `$n` (see [`json_list`]).
/// One parameter however many ids: binding `$1 … $1000` one by one costs sqlx's SQLite
/// driver a parameter-name lookup per bind over every parameter (quadratic; 5 % of a 1000-
/// volume listing's time was in `sqlite3_bind_parameter_name`). On SQLite the id list drives
/// a join (an index lookup per id); `IN (SELECT value FROM json_each(..))` would first copy the
/// list into a temporary b-tree, which cost 0.8 ms of a 1000-volume page's attachments.
pub(super) fn among_ids(
    engine: super::Engine,
    table: &str,
    alias: &str,
    column: &str,
    n: usize,
) -> (String, String) {
    match engine {
        super::Engine::Sqlite => (
            format!("json_each(${n}) ids JOIN {table} {alias} ON {alias}.{column} = ids.value"),
            "TRUE".to_string(),
        ),
        super::Engine::Postgres => (
            format!("{table} {alias}"),
            format!("{alias}.{column} IN (SELECT json_array_elements_text(${n}::json))"),
        ),
    }
}

/// `ids` as the JSON array text [`among_ids`] binds.
pub(super) fn json_list(ids: &[String]) -> String {
    serde_json::to_string(ids).expect("strings serialise")
}

/// `query` with `binds` bound in order.
pub(super) fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: Vec<FilterValue>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        query = match b {
            FilterValue::Text(s) => query.bind(s),
            FilterValue::Bool(v) => query.bind(v),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Table = Table {
        name: "things",
        columns: "id",
        metadata: ("thing_metadata", "thing_id"),
        sort_keys: &[
            SortKey {
                name: "id",
                column: "id",
            },
            SortKey {
                name: "name",
                column: "COALESCE({t}.display_name, '')",
            },
            SortKey {
                name: "size",
                column: "size",
            },
            SortKey {
                name: "created_at",
                column: "created_at",
            },
        ],
    };

    #[test]
    fn sort_parameters_parse_like_cinder() {
        assert_eq!(
            parse_sort(Some("size:asc,name"), None, None).unwrap(),
            vec![
                ("size".into(), SortDir::Asc),
                ("name".into(), SortDir::Desc)
            ]
        );
        assert_eq!(
            parse_sort(None, Some("size"), Some("asc")).unwrap(),
            vec![("size".into(), SortDir::Asc)]
        );
        assert_eq!(
            parse_sort(Some("size:up"), None, None).unwrap_err(),
            ListError::SortDir("up".into())
        );
        assert!(parse_sort(None, None, None).unwrap().is_empty());
    }

    #[test]
    fn unknown_sort_keys_are_refused_naming_the_allowed_ones() {
        let q = ListQuery {
            sort: vec![("password".into(), SortDir::Asc)],
            ..Default::default()
        };
        let err = T.sql(&q, false).unwrap_err().to_string();
        assert!(
            err.contains("'password'") && err.contains("id, name, size"),
            "{err}"
        );
    }

    #[test]
    fn marker_pages_by_every_sort_key_with_id_last() {
        let q = ListQuery {
            sort: vec![("size".into(), SortDir::Asc)],
            marker: Some("m".into()),
            limit: Some(2),
            ..Default::default()
        };
        let (sql, binds) = T.sql(&q, false).unwrap();
        assert!(
            sql.contains("ORDER BY things.size ASC, things.id ASC LIMIT 2"),
            "{sql}"
        );
        assert!(
            sql.contains("(things.size > (SELECT mk.size FROM things mk WHERE mk.id = $1))"),
            "{sql}"
        );
        assert!(sql.contains("things.size = (SELECT mk.size"), "{sql}");
        assert_eq!(binds, vec![FilterValue::Text("m".into())]);
    }

    #[test]
    fn expressions_are_qualified_and_offset_needs_a_limit() {
        let q = ListQuery {
            sort: vec![("name".into(), SortDir::Desc)],
            offset: Some(3),
            ..Default::default()
        };
        let (sql, _) = T.sql(&q, false).unwrap();
        assert!(
            sql.contains("ORDER BY COALESCE(things.display_name, '') DESC, things.id DESC"),
            "{sql}"
        );
        assert!(sql.ends_with("LIMIT -1 OFFSET 3"), "{sql}");
    }

    #[test]
    fn numbered_rows_carry_their_position_in_the_listing_order() {
        let q = ListQuery {
            sort: vec![("size".into(), SortDir::Asc)],
            limit: Some(5),
            ..Default::default()
        };
        let (sql, _) = T.sql(&q, true).unwrap();
        assert!(
            sql.starts_with(
                "SELECT id, ROW_NUMBER() OVER (ORDER BY things.size ASC, things.id ASC) AS page_rn FROM things"
            ),
            "{sql}"
        );
        assert!(
            sql.ends_with("ORDER BY things.size ASC, things.id ASC LIMIT 5"),
            "{sql}"
        );
    }
}
