//! Listing with KFP's semantics, for every API collection: a page size, an opaque page token
//! (keyset: the sort value and id of the last row, never an offset), a sort key with
//! direction, and filter predicates. One SQL query per page.
//!
//! The server parses KFP's JSON `filter` and `sort_by` into these types; each collection
//! names which keys may be filtered and sorted on ([`Column`]). An unknown key, a value of the
//! wrong kind or a malformed token is [`crate::Error::InvalidArgument`].

use chrono::{DateTime, Utc};

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
