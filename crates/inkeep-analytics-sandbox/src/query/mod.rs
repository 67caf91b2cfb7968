//! The query language over the views: filters with every operator, field, time-bucket and
//! aggregate selections, grouping, ordering, the CSV form of a result, the property look-ups and
//! the search statistics.
//!
//! A query is compiled against its view first ([`CompiledQuery::compile`]), so that an unknown
//! field, an unsupported operator or a value of the wrong shape is refused with a `422` that names
//! the part of the body at fault, before any row is read; then it runs ([`CompiledQuery::run`]),
//! which cannot fail.

mod compile;
mod csv;
mod fields;
mod filter;
mod property;
mod run;
mod search_stats;
mod select;
mod values;

pub(crate) use compile::{CompiledQuery, QuerySpec};
pub(crate) use csv::to_csv;
pub(crate) use property::PropertyQuery;
pub(crate) use search_stats::{parse_after, top_search_queries, weekly_search_users};

use crate::views::Row;

/// The most rows the JSON answer of a query carries; `total` counts them all, and the CSV export
/// has every one of them.
/// How query results page is not documented (/work/shared/api-reference.md, "How query results
/// page is *unknown*"): this bound is the sandbox's choice, and the SDK does not expose one yet.
pub(crate) const QUERY_PAGE_SIZE: usize = 1_000;

/// The result of a query: rows, and the columns in order (for CSV).
pub(crate) struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}
