//! Listing with KFP's semantics, for every API collection: a page size, an opaque page token
//! (keyset: the sort value and id of the last row, never an offset), a sort key with
//! direction, and filter predicates. One SQL query per page.
//!
//! The server parses KFP's JSON `filter` and `sort_by` into these types; each collection
//! names which keys may be filtered and sorted on ([`Column`]). An unknown key, a value of the
//! wrong kind or a malformed token is [`crate::Error::InvalidArgument`].
//!
//! # How a collection uses it
//!
//! 1. Describe the collection once, as a `static` [`Table`]: the FROM clause, the select list
//!    its row type (`#[derive(sqlx::FromRow)]`) reads, the id expression (the tie-breaker of
//!    every order, unique), the API keys as [`Column`]s (key → SQL expression, [`Kind`],
//!    sortable / filterable / nullable) and the default order (`("created_at", true)`: newest
//!    first).
//! 2. In a `Store` method, call [`fetch_page`] with the read pool, the table, any fixed
//!    conditions ([`Scope`]: `Scope::equals("r.experiment_id", id)`, `Scope::Sql("r.driver =
//!    'server'")`) and the caller's [`ListRequest`]; convert the rows with [`Page::try_map`].
//!
//! ```ignore
//! static EXPERIMENTS: Table = Table {
//!     name: "experiments",
//!     from: "experiments",
//!     select: "experiment_id, display_name, description, namespace, storage_state, created_at, last_run_created_at",
//!     id: "experiment_id",
//!     columns: &[
//!         Column::text("experiment_id", "experiment_id"),
//!         Column::text("display_name", "display_name"),
//!         Column::timestamp("created_at", "created_at"),
//!     ],
//!     default_sort: ("created_at", true),
//!     named_sort: None,
//! };
//! let page: Page<ExperimentRow> =
//!     listing::fetch_page(&self.reader, &EXPERIMENTS, &[Scope::equals("namespace", ns)], request).await?;
//! page.try_map(ExperimentRecord::try_from)
//! ```
//!
//! The statement is `SELECT <select>, <sort>, <id>, (SELECT count(*) FROM <from> WHERE
//! <scope and filter>) FROM <from> WHERE <scope and filter> AND (<sort>, <id>) < (?, ?) ORDER BY
//! <sort> DESC, <id> DESC LIMIT page_size + 1`: with an index on `(<sort column>, <id>)` (and
//! one that serves the count under the usual filters) a page reads `page_size + 1` index
//! entries plus the count. Predicates become `=`, `!=`, `<`, `<=`, `>`, `>=`, `IN (…)` and
//! `LIKE '%…%'` (wildcards escaped; ASCII case-insensitive) with bound parameters.
//!
//! Indexes are the collection's business: for a filter on `a` sorted by `b`, SQLite walks
//! either an index on `a` (then sorts the matches) or one on `b` (then skips non-matches);
//! only `(a, b, <id>)` makes the first page of a large table cheap. A nullable sort key orders
//! NULLs first ascending and last descending; the page that crosses from one to the other
//! reads a second index range (a second statement), every other page is one statement.
//!
//! A page token holds the sort, the filter and where the page ended; with a token the request's
//! own sort and filter are ignored, as KFP does. Tokens are URL-safe base64 of JSON.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{FromRow, QueryBuilder, Row, Sqlite};

use crate::Error;
use crate::rows::encode_time;

/// One page request.
#[derive(Clone, Debug, PartialEq)]
pub struct ListRequest {
    /// 1..=200 (the server maps 0 to 20 and refuses more than 200).
    pub page_size: u32,
    /// The `next_page_token` of the previous page; `None` for the first.
    pub page_token: Option<String>,
    /// `None`: the collection's default order (newest first).
    pub sort: Option<Sort>,
    /// All must hold.
    pub filter: Vec<Predicate>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sort {
    /// An API field name (`created_at`, `display_name`, `name`, …).
    pub key: String,
    pub descending: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Predicate {
    /// An API field name.
    pub key: String,
    pub op: Op,
    pub value: FilterValue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Equals,
    NotEquals,
    GreaterThan,
    GreaterThanEquals,
    LessThan,
    LessThanEquals,
    In,
    IsSubstring,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FilterValue {
    String(String),
    Int(i64),
    Bool(bool),
    Timestamp(DateTime<Utc>),
    Strings(Vec<String>),
    Ints(Vec<i64>),
}

/// One page of results.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many rows match the filter, over all pages.
    pub total_size: i64,
    /// Empty on the last page.
    pub next_page_token: String,
}

// ---- how a collection describes itself ------------------------------------------------------

/// How a column's values are stored and compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// TEXT, compared as text.
    Text,
    /// INTEGER.
    Int,
    /// TEXT in the store's fixed-width RFC 3339 form (so text order is time order). Filters
    /// take a `timestamp_value`, Unix seconds (`int_value`/`long_value`) or RFC 3339 text.
    Timestamp,
    /// INTEGER 0 or 1.
    Bool,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Text => "string",
            Kind::Int => "integer",
            Kind::Timestamp => "timestamp",
            Kind::Bool => "boolean",
        }
    }
}

/// One API field of a collection and the SQL expression that holds it.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// The API field name (`display_name`, `created_at`, …).
    pub key: &'static str,
    /// A SQL expression over [`Table::from`] (`r.display_name`).
    pub sql: &'static str,
    pub kind: Kind,
    pub sortable: bool,
    pub filterable: bool,
    /// Whether the expression may be NULL (pagination then orders NULLs first ascending, last
    /// descending, as SQLite does).
    pub nullable: bool,
}

impl Column {
    /// A sortable and filterable, non-null column.
    pub const fn new(key: &'static str, sql: &'static str, kind: Kind) -> Column {
        Column {
            key,
            sql,
            kind,
            sortable: true,
            filterable: true,
            nullable: false,
        }
    }
    pub const fn text(key: &'static str, sql: &'static str) -> Column {
        Column::new(key, sql, Kind::Text)
    }
    pub const fn int(key: &'static str, sql: &'static str) -> Column {
        Column::new(key, sql, Kind::Int)
    }
    pub const fn timestamp(key: &'static str, sql: &'static str) -> Column {
        Column::new(key, sql, Kind::Timestamp)
    }
    pub const fn bool(key: &'static str, sql: &'static str) -> Column {
        Column::new(key, sql, Kind::Bool)
    }
    pub const fn nullable(mut self) -> Column {
        self.nullable = true;
        self
    }
    pub const fn filter_only(mut self) -> Column {
        self.sortable = false;
        self
    }
    pub const fn sort_only(mut self) -> Column {
        self.filterable = false;
        self
    }
}

/// A listable collection: where its rows are, what a row selects, and its keys.
#[derive(Debug)]
pub struct Table {
    /// Plural noun for messages and page tokens ("runs", "pipelines").
    pub name: &'static str,
    /// The FROM clause (`runs r`); it must not depend on request values.
    pub from: &'static str,
    /// The select list that the row type reads (`r.run_id, r.display_name, …`).
    pub select: &'static str,
    /// The unique id expression: the tie-breaker of every order (`r.run_id`).
    pub id: &'static str,
    pub columns: &'static [Column],
    /// The key of the default order, and whether it is descending.
    pub default_sort: (&'static str, bool),
    /// Sort keys named by the caller (`metric:accuracy`), if the collection has any.
    pub named_sort: Option<&'static NamedSort>,
}

/// Sort keys whose second half the caller chooses: `<prefix><name>` (`metric:accuracy`) orders
/// the rows that have a value under `name` by that value (REAL; ties by id), then the rows that
/// have none by [`NamedSort::missing_sort`] (ties by id), each in the requested direction: rows
/// without a value come last both ascending and descending. The name is always a bound
/// parameter.
///
/// The values live in a table of their own with an index on `(name, value, id)`; a page reads
/// one range of it (joined to the collection's rows) and, once it is used up, the rows without
/// a value through the index that serves the default order under the request's filter.
#[derive(Debug)]
pub struct NamedSort {
    /// The key prefix (`metric:`).
    pub prefix: &'static str,
    /// What the keys mean, for messages (`a run metric`).
    pub what: &'static str,
    /// The FROM clause of the rows that have values: the values' table first (SQLite reads
    /// the tables of a `CROSS JOIN` in the order written), joined to the collection's table
    /// under the alias [`Table::from`] gives it (`run_metrics m CROSS JOIN runs r ON r.run_id =
    /// m.run_id`).
    pub from: &'static str,
    /// A condition with one `?` for the name (`m.name = ?`).
    pub name_sql: &'static str,
    /// The value expression (`m.value`).
    pub value_sql: &'static str,
    /// The id expression on the values' side, equal to [`Table::id`] (`m.run_id`), so that the
    /// index also gives the tie-break order.
    pub id_sql: &'static str,
    /// A condition over [`Table::from`] with one `?` for the name, true for the rows that have
    /// no value under it (`NOT EXISTS (SELECT 1 FROM run_metrics m WHERE m.run_id = r.run_id
    /// AND m.name = ?)`).
    pub missing_sql: &'static str,
    /// The order of the rows without a value, before the id: a non-null column of the
    /// collection that its filtered indexes end with (`r.created_at`), so that no page sorts.
    pub missing_sort: &'static Column,
}

impl Table {
    fn column(&self, key: &str) -> Option<&'static Column> {
        self.columns.iter().find(|column| column.key == key)
    }

    fn keys(&self, pick: impl Fn(&Column) -> bool) -> String {
        let keys: Vec<&str> = self
            .columns
            .iter()
            .filter(|column| pick(column))
            .map(|column| column.key)
            .collect();
        keys.join(", ")
    }
}

/// A condition the collection's code adds to every page and to the count, whatever the
/// request says (a run list scoped to an experiment, versions of one pipeline).
#[derive(Clone, Debug)]
pub enum Scope {
    /// A fixed SQL condition with no parameters (`r.driver = 'server'`).
    Sql(&'static str),
    /// `sql <op> value`, with the value bound as a parameter.
    Compare {
        sql: &'static str,
        kind: Kind,
        op: Op,
        value: FilterValue,
    },
}

impl Scope {
    /// `sql = value` for a text expression.
    pub fn equals(sql: &'static str, value: impl Into<String>) -> Scope {
        Scope::Compare {
            sql,
            kind: Kind::Text,
            op: Op::Equals,
            value: FilterValue::String(value.into()),
        }
    }
}

// ---- running a page query -------------------------------------------------------------------

/// Largest page; larger requests get this many.
pub const MAX_PAGE_SIZE: u32 = 200;
/// A page size of 0 means this many.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// A value bound to a statement.
#[derive(Clone, Debug, PartialEq)]
enum Bind {
    Text(String),
    Int(i64),
    /// A named sort's value (page tokens keep its bits, so that it comes back exactly).
    Real(f64),
}

/// A checked condition: `sql` with `?` for each bind, in order.
#[derive(Debug)]
struct Condition {
    sql: String,
    binds: Vec<Bind>,
}

/// Where the previous page ended, and the sort and filter it was made with.
#[derive(Clone, Debug, PartialEq)]
struct Token {
    table: String,
    sort_key: String,
    descending: bool,
    filter: Vec<Predicate>,
    /// The sort value of the last row (`None`: SQL NULL).
    last_value: Option<Bind>,
    last_id: String,
}

/// One page of `table`: the rows matching `scope` and the request's filter, in the request's
/// order, after the page token's row. One statement: the page, with the count over the filter
/// as a scalar subquery (a second, count-only statement runs only when the page is empty).
///
/// With a page token, the sort and filter come from the token (as when it was issued); the
/// request's are ignored.
pub async fn fetch_page<R>(
    pool: &SqlitePool,
    table: &'static Table,
    scope: &[Scope],
    request: &ListRequest,
) -> Result<Page<R>, Error>
where
    R: for<'r> FromRow<'r, SqliteRow> + Send + Unpin,
{
    let token = request
        .page_token
        .as_deref()
        .filter(|token| !token.is_empty())
        .map(|token| Token::decode(token, table))
        .transpose()?;
    let (sort, filter) = match &token {
        Some(token) => (
            Sort {
                key: token.sort_key.clone(),
                descending: token.descending,
            },
            token.filter.as_slice(),
        ),
        None => (
            request.sort.clone().unwrap_or_else(|| Sort {
                key: table.default_sort.0.to_owned(),
                descending: table.default_sort.1,
            }),
            request.filter.as_slice(),
        ),
    };
    let order = Order::of(table, &sort.key)?;
    let mut conditions = scope
        .iter()
        .map(scope_condition)
        .collect::<Result<Vec<_>, _>>()?;
    for predicate in filter {
        conditions.push(predicate_condition(table, predicate)?);
    }
    let page_size = match request.page_size {
        0 => DEFAULT_PAGE_SIZE,
        size => size.min(MAX_PAGE_SIZE),
    };

    // The rows after the token, as index ranges in order (one, or two around the rows without
    // a sort value); the next range is read only when the page is not full.
    let segments = segments(table, &order, sort.descending, token.as_ref());
    let limit = page_size as usize + 1;
    let mut rows: Vec<SqliteRow> = Vec::new();
    // Where each segment's rows end in `rows`.
    let mut ends: Vec<usize> = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        if rows.len() >= limit {
            break;
        }
        let mut query = page_query(
            "SELECT ",
            table,
            segment,
            sort.descending,
            &conditions,
            index == 0,
        );
        query.push_bind((limit - rows.len()) as i64);
        let more = query
            .build()
            .fetch_all(pool)
            .await
            .map_err(|source| query_error(source, table))?;
        rows.extend(more);
        ends.push(rows.len());
    }

    let total_size = match rows
        .first()
        .filter(|row| row.try_get_raw("listing_total").is_ok())
    {
        Some(row) => row
            .try_get::<i64, _>("listing_total")
            .map_err(|source| query_error(source, table))?,
        None => count(pool, table, &conditions).await?,
    };
    let next_page_token = match rows.get(page_size as usize - 1) {
        Some(last) if rows.len() > page_size as usize => {
            let segment = ends
                .iter()
                .position(|end| *end >= page_size as usize)
                .map_or(&segments[0], |index| &segments[index]);
            let last_value = match segment.kind {
                None => last
                    .try_get::<Option<f64>, _>("listing_sort_value")
                    .map(|value| value.map(Bind::Real)),
                Some(Kind::Text | Kind::Timestamp) => last
                    .try_get::<Option<String>, _>("listing_sort_value")
                    .map(|value| value.map(Bind::Text)),
                Some(Kind::Int | Kind::Bool) => last
                    .try_get::<Option<i64>, _>("listing_sort_value")
                    .map(|value| value.map(Bind::Int)),
            }
            .map_err(|source| query_error(source, table))?;
            let last_id: String = last
                .try_get("listing_id")
                .map_err(|source| query_error(source, table))?;
            Token {
                table: table.name.to_owned(),
                sort_key: sort.key.clone(),
                descending: sort.descending,
                filter: filter.to_vec(),
                last_value,
                last_id,
            }
            .encode()
        }
        _ => String::new(),
    };
    let items = rows
        .iter()
        .take(page_size as usize)
        .map(R::from_row)
        .collect::<Result<Vec<R>, sqlx::Error>>()
        .map_err(|source| query_error(source, table))?;
    Ok(Page {
        items,
        total_size,
        next_page_token,
    })
}

impl<T> Page<T> {
    /// Converts every item (row types to records), keeping the total and the token.
    pub fn try_map<U, E>(self, convert: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self
                .items
                .into_iter()
                .map(convert)
                .collect::<Result<_, E>>()?,
            total_size: self.total_size,
            next_page_token: self.next_page_token,
        })
    }
}

async fn count(pool: &SqlitePool, table: &Table, conditions: &[Condition]) -> Result<i64, Error> {
    let mut query = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM ");
    query.push(table.from);
    push_where(&mut query, conditions, &[]);
    query
        .build_query_scalar::<i64>()
        .fetch_one(pool)
        .await
        .map_err(|source| query_error(source, table))
}

fn query_error(source: sqlx::Error, table: &Table) -> Error {
    Error::Query {
        action: format!("list {}", table.name),
        source,
    }
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

fn push_where(query: &mut QueryBuilder<Sqlite>, conditions: &[Condition], more: &[Condition]) {
    let mut first = true;
    for condition in conditions.iter().chain(more) {
        query.push(if first { " WHERE (" } else { " AND (" });
        first = false;
        if condition.binds.is_empty() {
            query.push(&condition.sql);
            query.push(")");
            continue;
        }
        let mut parts = condition.sql.split('?');
        if let Some(head) = parts.next() {
            query.push(head);
        }
        for (bind, part) in condition.binds.iter().zip(parts) {
            match bind {
                Bind::Text(text) => query.push_bind(text.clone()),
                Bind::Int(int) => query.push_bind(*int),
                Bind::Real(real) => query.push_bind(*real),
            };
            query.push(part);
        }
        query.push(")");
    }
}

/// What a page is sorted by: a column of the table, or a named sort and the name.
#[derive(Debug)]
enum Order {
    Column(&'static Column),
    Named(&'static NamedSort, String),
}

impl Order {
    fn of(table: &Table, key: &str) -> Result<Order, Error> {
        if let Some(column) = table.column(key).filter(|column| column.sortable) {
            return Ok(Order::Column(column));
        }
        if let Some(named) = table.named_sort
            && let Some(name) = key.strip_prefix(named.prefix)
        {
            if name.is_empty() {
                return Err(invalid(format!(
                    "cannot sort {} by {key:?}: {}<name> needs the name of {}",
                    table.name, named.prefix, named.what
                )));
            }
            return Ok(Order::Named(named, name.to_owned()));
        }
        let mut keys = table.keys(|column| column.sortable);
        if let Some(named) = table.named_sort {
            keys.push_str(&format!(", {}<name>", named.prefix));
        }
        Err(invalid(format!(
            "cannot sort {} by {key:?}: sortable keys are {keys}",
            table.name
        )))
    }
}

/// One index range of a page: rows of `from` under the request's conditions and `more`,
/// ordered by `sort` then `id`.
#[derive(Debug)]
struct Segment {
    from: &'static str,
    sort: &'static str,
    /// The kind of the sort values (`None`: REAL, a named sort's values).
    kind: Option<Kind>,
    id: &'static str,
    more: Vec<Condition>,
}

/// `SELECT <select>, <sort>, <id>[, (count over the filter)] FROM <from> WHERE <conditions>
/// AND <segment's conditions> ORDER BY <sort>, <id> LIMIT ` (the caller binds the limit).
fn page_query(
    select: &'static str,
    table: &Table,
    segment: &Segment,
    descending: bool,
    conditions: &[Condition],
    with_total: bool,
) -> QueryBuilder<Sqlite> {
    let direction = if descending { "DESC" } else { "ASC" };
    let mut query = QueryBuilder::<Sqlite>::new(select);
    query.push(table.select);
    query.push(format_args!(
        ", {} AS listing_sort_value, {} AS listing_id",
        segment.sort, segment.id
    ));
    if with_total {
        query.push(format_args!(", (SELECT count(*) FROM {}", table.from));
        push_where(&mut query, conditions, &[]);
        query.push(") AS listing_total");
    }
    query.push(" FROM ");
    query.push(segment.from);
    push_where(&mut query, conditions, &segment.more);
    query.push(format_args!(
        " ORDER BY {} {direction}, {} {direction} LIMIT ",
        segment.sort, segment.id
    ));
    query
}

/// The rows after the token's row (all rows without a token) in the order, as segments that
/// each select one index range, in order.
fn segments(table: &Table, order: &Order, descending: bool, token: Option<&Token>) -> Vec<Segment> {
    match order {
        Order::Column(column) => {
            let keysets = match token {
                Some(token) => keyset_segments(table, column, descending, token),
                None => vec![None],
            };
            keysets
                .into_iter()
                .map(|keyset| Segment {
                    from: table.from,
                    sort: column.sql,
                    kind: Some(column.kind),
                    id: table.id,
                    more: keyset.into_iter().collect(),
                })
                .collect()
        }
        Order::Named(named, name) => {
            let after = if descending { "<" } else { ">" };
            let name_bind = || Bind::Text(name.clone());
            let with_values = |keyset: Option<Condition>| Segment {
                from: named.from,
                sort: named.value_sql,
                kind: None,
                id: named.id_sql,
                more: std::iter::once(Condition {
                    sql: named.name_sql.to_owned(),
                    binds: vec![name_bind()],
                })
                .chain(keyset)
                .collect(),
            };
            let without_values = |keyset: Option<Condition>| Segment {
                from: table.from,
                sort: named.missing_sort.sql,
                kind: Some(named.missing_sort.kind),
                id: table.id,
                more: std::iter::once(Condition {
                    sql: named.missing_sql.to_owned(),
                    binds: vec![name_bind()],
                })
                .chain(keyset)
                .collect(),
            };
            // The token's value says which range its row was in: a REAL one of the values,
            // another kind one of the rows without a value.
            let Some(token) = token else {
                return vec![with_values(None), without_values(None)];
            };
            let (sql, id) = match token.last_value {
                Some(Bind::Real(_)) => (named.value_sql, named.id_sql),
                _ => (named.missing_sort.sql, table.id),
            };
            let keyset = token.last_value.clone().map(|value| Condition {
                sql: format!("({sql}, {id}) {after} (?, ?)"),
                binds: vec![value, Bind::Text(token.last_id.clone())],
            });
            match token.last_value {
                Some(Bind::Real(_)) => vec![with_values(keyset), without_values(None)],
                _ => vec![without_values(keyset)],
            }
        }
    }
}

/// The rows strictly after the token's row in the order (`sort`, id), as conditions that each
/// select one index range, in order. NULLs order as SQLite orders them (first ascending, last
/// descending), so a nullable key has a NULL range and a non-NULL range; keeping them apart
/// (rather than one condition with OR) keeps every page an index range scan.
fn keyset_segments(
    table: &Table,
    column: &Column,
    descending: bool,
    token: &Token,
) -> Vec<Option<Condition>> {
    let (sql, id) = (column.sql, table.id);
    let after = if descending { "<" } else { ">" };
    let id_bind = Bind::Text(token.last_id.clone());
    let null_rows = || Condition {
        sql: format!("{sql} IS NULL"),
        binds: vec![],
    };
    let non_null_rows = || Condition {
        sql: format!("{sql} IS NOT NULL"),
        binds: vec![],
    };
    match &token.last_value {
        Some(value) => {
            let rest = Condition {
                sql: format!("({sql}, {id}) {after} (?, ?)"),
                binds: vec![value.clone(), id_bind],
            };
            if descending && column.nullable {
                vec![Some(rest), Some(null_rows())]
            } else {
                vec![Some(rest)]
            }
        }
        None => {
            let rest_of_nulls = Condition {
                sql: format!("{sql} IS NULL AND {id} {after} ?"),
                binds: vec![id_bind],
            };
            if descending {
                vec![Some(rest_of_nulls)]
            } else {
                vec![Some(rest_of_nulls), Some(non_null_rows())]
            }
        }
    }
}

/// The query plans (`EXPLAIN QUERY PLAN`, one detail line per step) of the statements that a
/// page of a request sorted by a named sort runs, one per segment, for tests that check which
/// indexes a collection's pages use. `after`: the page token's row, `(Some(value), id)` for a
/// row with a value, `(None, id)` for one without.
#[cfg(test)]
pub(crate) async fn named_sort_plans(
    pool: &SqlitePool,
    table: &'static Table,
    scope: &[Scope],
    request: &ListRequest,
    after: Option<(Option<f64>, &str)>,
) -> Vec<String> {
    let sort = request.sort.clone().unwrap_or_else(|| Sort {
        key: table.default_sort.0.to_owned(),
        descending: table.default_sort.1,
    });
    let order = Order::of(table, &sort.key).unwrap();
    let mut conditions: Vec<Condition> =
        scope.iter().map(|s| scope_condition(s).unwrap()).collect();
    for predicate in &request.filter {
        conditions.push(predicate_condition(table, predicate).unwrap());
    }
    let token = after.map(|(value, id)| Token {
        table: table.name.to_owned(),
        sort_key: sort.key.clone(),
        descending: sort.descending,
        filter: request.filter.clone(),
        // After a row without a value: one made in 2030.
        last_value: Some(value.map_or_else(
            || Bind::Text("2030-01-01T00:00:00.000000000Z".to_owned()),
            Bind::Real,
        )),
        last_id: id.to_owned(),
    });
    let mut plans = Vec::new();
    for (index, segment) in segments(table, &order, sort.descending, token.as_ref())
        .iter()
        .enumerate()
    {
        let mut query = page_query(
            "EXPLAIN QUERY PLAN SELECT ",
            table,
            segment,
            sort.descending,
            &conditions,
            index == 0,
        );
        query.push_bind(10_i64);
        let detail: Vec<String> = query
            .build()
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect();
        plans.push(detail.join("\n"));
    }
    plans
}

fn scope_condition(scope: &Scope) -> Result<Condition, Error> {
    match scope {
        Scope::Sql(sql) => Ok(Condition {
            sql: (*sql).to_owned(),
            binds: Vec::new(),
        }),
        Scope::Compare {
            sql,
            kind,
            op,
            value,
        } => compare(sql, *kind, *op, value).map_err(|reason| invalid(format!("{sql}: {reason}"))),
    }
}

fn predicate_condition(table: &Table, predicate: &Predicate) -> Result<Condition, Error> {
    let column = table
        .column(&predicate.key)
        .filter(|column| column.filterable)
        .ok_or_else(|| {
            invalid(format!(
                "cannot filter {} by {:?}: filterable keys are {}",
                table.name,
                predicate.key,
                table.keys(|column| column.filterable)
            ))
        })?;
    compare(column.sql, column.kind, predicate.op, &predicate.value).map_err(|reason| {
        invalid(format!(
            "filter on {:?} ({} {}): {reason}",
            predicate.key,
            predicate.op.name(),
            column.kind.name()
        ))
    })
}

/// `sql <op> value` after checking that the operation and value suit the column kind.
fn compare(sql: &str, kind: Kind, op: Op, value: &FilterValue) -> Result<Condition, String> {
    let list = matches!(value, FilterValue::Strings(_) | FilterValue::Ints(_));
    if (op == Op::In) != list {
        return Err(if list {
            format!("{} takes a single value, not a list", op.name())
        } else {
            "IN takes a list of values (string_values, int_values or long_values)".to_owned()
        });
    }
    if op == Op::IsSubstring && kind != Kind::Text {
        return Err("IS_SUBSTRING applies to string keys only".to_owned());
    }
    if kind == Kind::Bool && !matches!(op, Op::Equals | Op::NotEquals | Op::In) {
        return Err(format!("{} does not apply to a boolean key", op.name()));
    }
    let binds = match value {
        FilterValue::Strings(values) => values
            .iter()
            .map(|value| bind_value(kind, &FilterValue::String(value.clone())))
            .collect::<Result<Vec<_>, _>>()?,
        FilterValue::Ints(values) => values
            .iter()
            .map(|value| bind_value(kind, &FilterValue::Int(*value)))
            .collect::<Result<Vec<_>, _>>()?,
        scalar => vec![bind_value(kind, scalar)?],
    };
    let sql = match op {
        Op::Equals => format!("{sql} = ?"),
        Op::NotEquals => format!("{sql} != ?"),
        Op::GreaterThan => format!("{sql} > ?"),
        Op::GreaterThanEquals => format!("{sql} >= ?"),
        Op::LessThan => format!("{sql} < ?"),
        Op::LessThanEquals => format!("{sql} <= ?"),
        Op::In => format!("{sql} IN ({})", vec!["?"; binds.len()].join(", ")),
        // LIKE with the value's wildcards escaped: a plain substring test, ASCII
        // case-insensitive.
        Op::IsSubstring => format!("{sql} LIKE ? ESCAPE '\\'"),
    };
    let binds = if op == Op::IsSubstring {
        binds
            .into_iter()
            .map(|bind| match bind {
                Bind::Text(text) => Bind::Text(format!("%{}%", escape_like(&text))),
                other => other,
            })
            .collect()
    } else {
        binds
    };
    Ok(Condition { sql, binds })
}

fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A filter value as the column stores it.
fn bind_value(kind: Kind, value: &FilterValue) -> Result<Bind, String> {
    let wrong = || {
        format!(
            "a {} key cannot be compared with {}",
            kind.name(),
            value.describe()
        )
    };
    match (kind, value) {
        (Kind::Text, FilterValue::String(text)) => Ok(Bind::Text(text.clone())),
        (Kind::Int, FilterValue::Int(int)) => Ok(Bind::Int(*int)),
        (Kind::Int, FilterValue::String(text)) => text
            .trim()
            .parse()
            .map(Bind::Int)
            .map_err(|_| format!("{text:?} is not an integer")),
        (Kind::Timestamp, FilterValue::Timestamp(time)) => Ok(Bind::Text(encode_time(time))),
        (Kind::Timestamp, FilterValue::Int(seconds)) => DateTime::from_timestamp(*seconds, 0)
            .map(|time| Bind::Text(encode_time(&time)))
            .ok_or_else(|| format!("{seconds} is out of range for Unix seconds")),
        (Kind::Timestamp, FilterValue::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|time| Bind::Text(encode_time(&time.with_timezone(&Utc))))
            .map_err(|error| format!("{text:?} is not an RFC 3339 timestamp: {error}")),
        (Kind::Bool, FilterValue::Bool(value)) => Ok(Bind::Int(i64::from(*value))),
        (Kind::Bool, FilterValue::Int(value @ (0 | 1))) => Ok(Bind::Int(*value)),
        (Kind::Bool, FilterValue::String(text)) => match text.to_ascii_lowercase().as_str() {
            "true" => Ok(Bind::Int(1)),
            "false" => Ok(Bind::Int(0)),
            _ => Err(format!("{text:?} is not true or false")),
        },
        _ => Err(wrong()),
    }
}

impl Op {
    /// The KFP name (`EQUALS`, …).
    pub fn name(self) -> &'static str {
        match self {
            Op::Equals => "EQUALS",
            Op::NotEquals => "NOT_EQUALS",
            Op::GreaterThan => "GREATER_THAN",
            Op::GreaterThanEquals => "GREATER_THAN_EQUALS",
            Op::LessThan => "LESS_THAN",
            Op::LessThanEquals => "LESS_THAN_EQUALS",
            Op::In => "IN",
            Op::IsSubstring => "IS_SUBSTRING",
        }
    }

    /// From a KFP name.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// From KFP's enum number (1, 2, 3, 5, 6, 7, 8, 9; 4 is unused).
    pub fn from_number(number: i64) -> Option<Op> {
        Some(match number {
            1 => Op::Equals,
            2 => Op::NotEquals,
            3 => Op::GreaterThan,
            5 => Op::GreaterThanEquals,
            6 => Op::LessThan,
            7 => Op::LessThanEquals,
            8 => Op::In,
            9 => Op::IsSubstring,
            _ => return None,
        })
    }

    pub const ALL: &'static [Op] = &[
        Op::Equals,
        Op::NotEquals,
        Op::GreaterThan,
        Op::GreaterThanEquals,
        Op::LessThan,
        Op::LessThanEquals,
        Op::In,
        Op::IsSubstring,
    ];
}

impl FilterValue {
    fn describe(&self) -> &'static str {
        match self {
            FilterValue::String(_) => "a string_value",
            FilterValue::Int(_) => "an int_value",
            FilterValue::Bool(_) => "a bool_value",
            FilterValue::Timestamp(_) => "a timestamp_value",
            FilterValue::Strings(_) => "string_values",
            FilterValue::Ints(_) => "int_values",
        }
    }
}

// ---- page tokens ----------------------------------------------------------------------------

impl Token {
    fn encode(&self) -> String {
        let value = match &self.last_value {
            None => Value::Null,
            Some(Bind::Text(text)) => Value::from(text.clone()),
            Some(Bind::Int(int)) => Value::from(*int),
            Some(Bind::Real(real)) => json!({"f": real.to_bits()}),
        };
        let filter: Vec<Value> = self.filter.iter().map(predicate_to_json).collect();
        let json = json!({
            "t": self.table,
            "s": self.sort_key,
            "d": self.descending,
            "f": filter,
            "v": value,
            "i": self.last_id,
        });
        URL_SAFE_NO_PAD.encode(json.to_string())
    }

    fn decode(token: &str, table: &Table) -> Result<Token, Error> {
        let bad = || {
            invalid(format!(
                "invalid page_token {token:?}: not a token of this list"
            ))
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|_| bad())?;
        let json: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let text = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_owned);
        let token = Token {
            table: text("t").ok_or_else(bad)?,
            sort_key: text("s").ok_or_else(bad)?,
            descending: json.get("d").and_then(Value::as_bool).ok_or_else(bad)?,
            filter: json
                .get("f")
                .and_then(Value::as_array)
                .ok_or_else(bad)?
                .iter()
                .map(predicate_from_json)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad)?,
            last_value: match json.get("v") {
                Some(Value::Null) => None,
                Some(Value::String(text)) => Some(Bind::Text(text.clone())),
                Some(Value::Object(real)) => Some(Bind::Real(f64::from_bits(
                    real.get("f").and_then(Value::as_u64).ok_or_else(bad)?,
                ))),
                Some(value) => Some(Bind::Int(value.as_i64().ok_or_else(bad)?)),
                None => return Err(bad()),
            },
            last_id: text("i").ok_or_else(bad)?,
        };
        if token.table != table.name {
            return Err(invalid(format!(
                "invalid page_token {token:?}: it is a token of the {} list, not of {}",
                token.table, table.name
            )));
        }
        Ok(token)
    }
}

fn predicate_to_json(predicate: &Predicate) -> Value {
    let value = match &predicate.value {
        FilterValue::String(text) => json!({"s": text}),
        FilterValue::Int(int) => json!({"i": int}),
        FilterValue::Bool(value) => json!({"b": value}),
        FilterValue::Timestamp(time) => json!({"t": encode_time(time)}),
        FilterValue::Strings(values) => json!({"ss": values}),
        FilterValue::Ints(values) => json!({"is": values}),
    };
    json!({"k": predicate.key, "o": predicate.op.name(), "v": value})
}

fn predicate_from_json(json: &Value) -> Option<Predicate> {
    let value = json.get("v")?.as_object()?;
    let (kind, value) = value.iter().next()?;
    let value = match kind.as_str() {
        "s" => FilterValue::String(value.as_str()?.to_owned()),
        "i" => FilterValue::Int(value.as_i64()?),
        "b" => FilterValue::Bool(value.as_bool()?),
        "t" => FilterValue::Timestamp(
            DateTime::parse_from_rfc3339(value.as_str()?)
                .ok()?
                .with_timezone(&Utc),
        ),
        "ss" => FilterValue::Strings(
            value
                .as_array()?
                .iter()
                .map(|value| value.as_str().map(str::to_owned))
                .collect::<Option<_>>()?,
        ),
        "is" => FilterValue::Ints(
            value
                .as_array()?
                .iter()
                .map(Value::as_i64)
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    };
    Some(Predicate {
        key: json.get("k")?.as_str()?.to_owned(),
        op: Op::from_name(json.get("o")?.as_str()?)?,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    /// A scratch collection: `n` rows with a nullable integer, a text with duplicates and a
    /// timestamp.
    static ITEMS: Table = Table {
        name: "items",
        from: "items",
        select: "id",
        id: "id",
        columns: &[
            Column::text("id", "id"),
            Column::text("name", "name"),
            Column::int("size", "size").nullable(),
            Column::timestamp("created_at", "created_at"),
            Column::bool("flag", "flag"),
            Column::text("hidden", "hidden").filter_only(),
        ],
        default_sort: ("created_at", true),
        named_sort: None,
    };

    #[derive(sqlx::FromRow, Debug, PartialEq)]
    struct Item {
        id: String,
    }

    async fn store_with_items(n: usize) -> Store {
        let store = Store::open_in_memory().await.unwrap();
        sqlx::query(
            "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, size INTEGER, \
             created_at TEXT NOT NULL, flag INTEGER NOT NULL, hidden TEXT NOT NULL DEFAULT '')",
        )
        .execute(&store.writer)
        .await
        .unwrap();
        sqlx::query("CREATE INDEX items_by_created_at ON items (created_at, id)")
            .execute(&store.writer)
            .await
            .unwrap();
        for i in 0..n {
            let time = DateTime::from_timestamp(1_700_000_000 + (i as i64 / 2), 0).unwrap();
            sqlx::query("INSERT INTO items VALUES (?1, ?2, ?3, ?4, ?5, '')")
                .bind(format!("id-{i:03}"))
                .bind(format!("name {}", i % 3))
                .bind(if i % 4 == 0 { None } else { Some(i as i64 % 5) })
                .bind(encode_time(&time))
                .bind(i64::from(i % 2 == 0))
                .execute(&store.writer)
                .await
                .unwrap();
        }
        store
    }

    fn request(page_size: u32, sort: Option<(&str, bool)>, filter: Vec<Predicate>) -> ListRequest {
        ListRequest {
            page_size,
            page_token: None,
            sort: sort.map(|(key, descending)| Sort {
                key: key.to_owned(),
                descending,
            }),
            filter,
        }
    }

    /// Every page of the request, as ids; checks each page's total.
    async fn all_pages(store: &Store, mut request: ListRequest) -> (Vec<String>, usize) {
        let mut ids = Vec::new();
        let mut pages = 0;
        let mut total = None;
        loop {
            let page: Page<Item> = fetch_page(&store.reader, &ITEMS, &[], &request)
                .await
                .unwrap();
            pages += 1;
            assert!(page.items.len() <= request.page_size as usize);
            if let Some(total) = total {
                assert_eq!(total, page.total_size);
            }
            total = Some(page.total_size);
            ids.extend(page.items.into_iter().map(|item| item.id));
            if page.next_page_token.is_empty() {
                break;
            }
            request.page_token = Some(page.next_page_token);
            assert!(pages < 1000);
        }
        assert_eq!(total.unwrap() as usize, ids.len());
        (ids, pages)
    }

    /// What SQLite's own ORDER BY gives, for comparison.
    async fn expected(store: &Store, order: &str, condition: &str) -> Vec<String> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM items WHERE {condition} ORDER BY {order}"
        )))
        .fetch_all(&store.writer)
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn pages_walk_every_order_exactly_once() {
        let store = store_with_items(53).await;
        for (key, sql) in [
            ("created_at", "created_at"),
            ("size", "size"),
            ("name", "name"),
        ] {
            for descending in [false, true] {
                let direction = if descending { "DESC" } else { "ASC" };
                let want =
                    expected(&store, &format!("{sql} {direction}, id {direction}"), "1").await;
                for page_size in [1, 7, 53, 200] {
                    let (ids, pages) =
                        all_pages(&store, request(page_size, Some((key, descending)), vec![]))
                            .await;
                    assert_eq!(ids, want, "{key} desc={descending} page_size={page_size}");
                    assert_eq!(pages, 53usize.div_ceil(page_size as usize).max(1));
                }
            }
        }
        // The default order: newest first.
        let (ids, _) = all_pages(&store, request(10, None, vec![])).await;
        assert_eq!(ids, expected(&store, "created_at DESC, id DESC", "1").await);
    }

    #[tokio::test]
    async fn filters_map_to_sql_and_count_over_the_filter() {
        let store = store_with_items(40).await;
        let predicate = |key: &str, op, value| Predicate {
            key: key.to_owned(),
            op,
            value,
        };
        let cases = [
            (
                predicate("name", Op::Equals, FilterValue::String("name 1".into())),
                "name = 'name 1'",
            ),
            (
                predicate("name", Op::NotEquals, FilterValue::String("name 1".into())),
                "name != 'name 1'",
            ),
            (
                predicate("size", Op::GreaterThan, FilterValue::Int(2)),
                "size > 2",
            ),
            (
                predicate("size", Op::GreaterThanEquals, FilterValue::Int(2)),
                "size >= 2",
            ),
            (
                predicate("size", Op::LessThan, FilterValue::Int(2)),
                "size < 2",
            ),
            (
                predicate("size", Op::LessThanEquals, FilterValue::Int(2)),
                "size <= 2",
            ),
            (
                predicate("size", Op::In, FilterValue::Ints(vec![1, 3])),
                "size IN (1, 3)",
            ),
            (predicate("name", Op::In, FilterValue::Strings(vec![])), "0"),
            (
                predicate("name", Op::IsSubstring, FilterValue::String("E 2".into())),
                "name = 'name 2'",
            ),
            (
                predicate("name", Op::IsSubstring, FilterValue::String("%".into())),
                "0",
            ),
            (
                predicate("flag", Op::Equals, FilterValue::Bool(true)),
                "flag = 1",
            ),
            (
                predicate(
                    "created_at",
                    Op::GreaterThanEquals,
                    FilterValue::Timestamp(DateTime::from_timestamp(1_700_000_010, 0).unwrap()),
                ),
                "created_at >= '2023-11-14T22:13:30.000000000Z'",
            ),
            (
                predicate("created_at", Op::LessThan, FilterValue::Int(1_700_000_010)),
                "created_at < '2023-11-14T22:13:30.000000000Z'",
            ),
            (
                predicate("hidden", Op::Equals, FilterValue::String(String::new())),
                "1",
            ),
        ];
        for (predicate, condition) in cases {
            let want = expected(&store, "created_at DESC, id DESC", condition).await;
            let (ids, _) = all_pages(&store, request(3, None, vec![predicate.clone()])).await;
            assert_eq!(ids, want, "{predicate:?}");
        }
        // Several predicates: all must hold.
        let (ids, _) = all_pages(
            &store,
            request(
                4,
                Some(("size", false)),
                vec![
                    predicate("size", Op::GreaterThan, FilterValue::Int(0)),
                    predicate("flag", Op::Equals, FilterValue::Bool(false)),
                ],
            ),
        )
        .await;
        assert_eq!(
            ids,
            expected(&store, "size, id", "size > 0 AND flag = 0").await
        );
    }

    #[tokio::test]
    async fn a_page_token_keeps_its_sort_and_filter() {
        let store = store_with_items(10).await;
        let first = request(
            3,
            Some(("name", false)),
            vec![Predicate {
                key: "flag".into(),
                op: Op::Equals,
                value: FilterValue::Bool(true),
            }],
        );
        let page: Page<Item> = fetch_page(&store.reader, &ITEMS, &[], &first)
            .await
            .unwrap();
        assert_eq!(page.total_size, 5);
        // The second request names no sort or filter: the token's apply.
        let mut second = request(3, None, vec![]);
        second.page_token = Some(page.next_page_token);
        let page: Page<Item> = fetch_page(&store.reader, &ITEMS, &[], &second)
            .await
            .unwrap();
        assert_eq!(page.total_size, 5);
        let want = expected(&store, "name, id", "flag = 1").await;
        let got: Vec<String> = page.items.into_iter().map(|item| item.id).collect();
        assert_eq!(got, want[3..]);
    }

    #[tokio::test]
    async fn scope_applies_to_the_page_and_the_count() {
        let store = store_with_items(12).await;
        let scope = [Scope::equals("name", "name 0"), Scope::Sql("flag = 1")];
        let page: Page<Item> =
            fetch_page(&store.reader, &ITEMS, &scope, &request(100, None, vec![]))
                .await
                .unwrap();
        let want = expected(
            &store,
            "created_at DESC, id DESC",
            "name = 'name 0' AND flag = 1",
        )
        .await;
        assert_eq!(page.total_size as usize, want.len());
        let got: Vec<String> = page.items.into_iter().map(|item| item.id).collect();
        assert_eq!(got, want);
        assert!(page.next_page_token.is_empty());
    }

    #[tokio::test]
    async fn an_empty_page_still_counts() {
        let store = store_with_items(5).await;
        let page: Page<Item> = fetch_page(&store.reader, &ITEMS, &[], &request(5, None, vec![]))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 5);
        assert_eq!(page.next_page_token, "");
        // A token made by hand that points past the end.
        let token = Token {
            table: "items".into(),
            sort_key: "created_at".into(),
            descending: true,
            filter: vec![],
            last_value: Some(Bind::Text("0000".into())),
            last_id: "".into(),
        }
        .encode();
        let mut past = request(5, None, vec![]);
        past.page_token = Some(token);
        let page: Page<Item> = fetch_page(&store.reader, &ITEMS, &[], &past).await.unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.total_size, 5);
    }

    #[tokio::test]
    async fn bad_arguments_are_invalid_argument_errors() {
        let store = store_with_items(3).await;
        let check = |request: ListRequest, expected: &'static str| {
            let store = store.clone();
            async move {
                let error = fetch_page::<Item>(&store.reader, &ITEMS, &[], &request)
                    .await
                    .unwrap_err();
                match error {
                    Error::InvalidArgument(message) => {
                        assert!(message.contains(expected), "{message:?} lacks {expected:?}")
                    }
                    other => panic!("{other:?}"),
                }
            }
        };
        let predicate = |key: &str, op, value| {
            request(
                5,
                None,
                vec![Predicate {
                    key: key.to_owned(),
                    op,
                    value,
                }],
            )
        };
        check(
            request(5, Some(("color", false)), vec![]),
            "cannot sort items by \"color\": sortable keys are id, name, size, created_at, flag",
        )
        .await;
        check(
            request(5, Some(("hidden", false)), vec![]),
            "cannot sort items by \"hidden\"",
        )
        .await;
        check(
            predicate("color", Op::Equals, FilterValue::String("x".into())),
            "cannot filter items by \"color\": filterable keys are id, name, size, created_at, flag, hidden",
        )
        .await;
        check(
            predicate("name", Op::Equals, FilterValue::Int(3)),
            "filter on \"name\" (EQUALS string): a string key cannot be compared with an int_value",
        )
        .await;
        check(
            predicate("name", Op::In, FilterValue::String("x".into())),
            "IN takes a list of values",
        )
        .await;
        check(
            predicate("name", Op::Equals, FilterValue::Strings(vec![])),
            "EQUALS takes a single value, not a list",
        )
        .await;
        check(
            predicate("size", Op::IsSubstring, FilterValue::Int(1)),
            "IS_SUBSTRING applies to string keys only",
        )
        .await;
        check(
            predicate("size", Op::Equals, FilterValue::String("ten".into())),
            "\"ten\" is not an integer",
        )
        .await;
        check(
            predicate(
                "created_at",
                Op::Equals,
                FilterValue::String("yesterday".into()),
            ),
            "\"yesterday\" is not an RFC 3339 timestamp",
        )
        .await;
        check(
            predicate("flag", Op::LessThan, FilterValue::Bool(true)),
            "LESS_THAN does not apply to a boolean key",
        )
        .await;
        for token in ["garbage!", "e30", "", "eyJ0IjoicnVucyJ9"] {
            let mut bad = request(5, None, vec![]);
            bad.page_token = Some(token.to_owned());
            if token.is_empty() {
                // An empty token is the first page.
                fetch_page::<Item>(&store.reader, &ITEMS, &[], &bad)
                    .await
                    .unwrap();
            } else {
                check(bad, "invalid page_token").await;
            }
        }
        let mut other_table = Token {
            table: "runs".into(),
            sort_key: "created_at".into(),
            descending: true,
            filter: vec![],
            last_value: None,
            last_id: "x".into(),
        };
        let mut bad = request(5, None, vec![]);
        bad.page_token = Some(other_table.encode());
        check(bad.clone(), "it is a token of the runs list, not of items").await;
        other_table.table = "items".into();
        other_table.sort_key = "hidden".into();
        bad.page_token = Some(other_table.encode());
        check(bad, "cannot sort items by \"hidden\"").await;
    }

    #[test]
    fn tokens_round_trip() {
        let token = Token {
            table: "runs".into(),
            sort_key: "created_at".into(),
            descending: false,
            filter: vec![
                Predicate {
                    key: "a".into(),
                    op: Op::In,
                    value: FilterValue::Strings(vec!["x".into(), "y".into()]),
                },
                Predicate {
                    key: "b".into(),
                    op: Op::LessThan,
                    value: FilterValue::Timestamp(DateTime::from_timestamp(5, 7).unwrap()),
                },
                Predicate {
                    key: "c".into(),
                    op: Op::NotEquals,
                    value: FilterValue::Bool(true),
                },
                Predicate {
                    key: "d".into(),
                    op: Op::In,
                    value: FilterValue::Ints(vec![-1, 2]),
                },
                Predicate {
                    key: "e".into(),
                    op: Op::GreaterThan,
                    value: FilterValue::Int(9),
                },
            ],
            last_value: Some(Bind::Int(4)),
            last_id: "r-1".into(),
        };
        let encoded = token.encode();
        assert!(
            encoded
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(Token::decode(&encoded, &RUNS_LIKE).unwrap(), token);
    }

    static RUNS_LIKE: Table = Table {
        name: "runs",
        from: "runs",
        select: "run_id",
        id: "run_id",
        columns: &[],
        default_sort: ("created_at", true),
        named_sort: None,
    };

    /// The query plans of every page segment, sorted by `column`, after a row whose sort value
    /// is `last_value`.
    async fn plans(
        store: &Store,
        column: &'static Column,
        descending: bool,
        last_value: Option<Bind>,
    ) -> Vec<String> {
        let token = Token {
            table: "items".into(),
            sort_key: column.key.into(),
            descending,
            filter: vec![],
            last_value,
            last_id: "x".into(),
        };
        let mut plans = Vec::new();
        for segment in segments(&ITEMS, &Order::Column(column), descending, Some(&token)) {
            let mut query = page_query(
                "EXPLAIN QUERY PLAN SELECT ",
                &ITEMS,
                &segment,
                descending,
                &[],
                true,
            );
            query.push_bind(10_i64);
            let detail: Vec<String> = query
                .build()
                .fetch_all(&store.reader)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>("detail"))
                .collect();
            plans.push(detail.join("\n"));
        }
        plans
    }

    #[tokio::test]
    async fn every_page_is_an_index_range() {
        let store = store_with_items(20).await;
        sqlx::query("CREATE INDEX items_by_size ON items (size, id)")
            .execute(&store.writer)
            .await
            .unwrap();
        let created_at = &ITEMS.columns[3];
        let size = &ITEMS.columns[2];
        let cases = [
            (created_at, true, Some(Bind::Text("2030".into())), 1),
            (created_at, false, Some(Bind::Text("2030".into())), 1),
            (size, true, Some(Bind::Int(3)), 2),
            (size, false, Some(Bind::Int(3)), 1),
            (size, true, None, 1),
            (size, false, None, 2),
        ];
        for (column, descending, last_value, n_segments) in cases {
            let plans = plans(&store, column, descending, last_value.clone()).await;
            assert_eq!(plans.len(), n_segments, "{plans:?}");
            for plan in plans {
                let what = format!("{} desc={descending} after {last_value:?}", column.key);
                assert!(
                    plan.contains("USING COVERING INDEX items_by_"),
                    "{what}: {plan}"
                );
                assert!(
                    plan.contains("SEARCH items"),
                    "{what}: a scan, not a range: {plan}"
                );
                assert!(!plan.contains("TEMP B-TREE"), "{what}: {plan}");
            }
        }
    }
}
