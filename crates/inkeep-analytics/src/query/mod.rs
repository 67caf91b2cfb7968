//! The typed query language of the `/query` operations, so that a filter, selection, grouping or sort naming a field of another view fails to compile instead of failing at the server.
//!
//! A [`Query`] is generic over its [`ViewKind`]: one of the marker types [`ConversationsView`], [`EventsView`],
//! [`FeedbackView`] and [`SemanticThreadsView`]. Every part of it ([`Filter`], [`Selection`], [`GroupBy`],
//! [`OrderBy`], [`Column`]) carries the same view, and the fields it accepts are that view's
//! generated field enum (such as [`types::ConversationsViewField`](crate::types::ConversationsViewField)), or a JSON path into its
//! `properties` or `userProperties` ([`Field::properties`], [`Field::user_properties`]).
//! A query converts into the generated body of its view, so it goes straight to
//! [`Client::query_conversations`](crate::Client::query_conversations) and its siblings, and to the
//! export operations.
//!
//! Result rows have keys that depend on the query, so [`types::QueryRow`](crate::types::QueryRow) stays an open map; this
//! module gives it typed accessors ([`types::QueryRow::get_u64`](crate::types::QueryRow::get_u64) and its siblings), and
//! [`Column`] spells the keys of time buckets (`firstMessageTime_day`) and aggregates (`count_id`).
//!
//! ```no_run
//! use inkeep_analytics::query::{self, Column, Field, Filter, Selection};
//! use inkeep_analytics::types::{AggregationFunction, ConversationsViewField as F, TimeUnit};
//!
//! # async fn demo() -> inkeep_analytics::Result<()> {
//! let client = inkeep_analytics::Client::from_env()?;
//! let day = Column::time_bucket(F::FirstMessageTime, TimeUnit::Day);
//! let conversations = Column::aggregate(AggregationFunction::Count, F::Id);
//! let query = query::conversations()
//!     .select(Selection::time_of(F::FirstMessageTime, TimeUnit::Day))
//!     .select(Selection::aggregate(AggregationFunction::Count, F::Id))
//!     .filter(
//!         Filter::eq(F::Type, "openai")
//!             .and(Filter::is_not_null(Field::user_properties(["userId"]))),
//!     )
//!     .order_by(day.clone().desc())
//!     // Notes longer than the API allows are refused here, before any request.
//!     .notes("conversations per day")?;
//! let response = client.query_conversations(query).await?;
//! for row in response.rows() {
//!     println!("{:?}: {:?}", row.get_str(&day), row.get_u64(&conversations));
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The module is split by concern: [`ViewKind`] and the view markers, [`Field`], the [`Operand`]s
//! a condition compares with, [`Filter`], the selections, groupings, columns and sort keys,
//! [`Query`] itself, the property requests, and the typed reads of result rows.

mod builder;
mod field;
mod filter;
mod operand;
mod properties;
mod row;
mod select;
mod view;

#[cfg(test)]
mod tests;

/// The body of a CSV export of a query's rows.
pub use crate::export::CsvExport;
pub use builder::{Query, conversations, events, feedback, semantic_threads};
pub use field::{Field, IntoField};
pub use filter::Filter;
pub use operand::{Operand, Scalar};
pub use properties::{
    DEFAULT_PROPERTY_VALUES_LIMIT, MAX_PROPERTY_VALUES_LIMIT, property_keys, property_keys_in,
    property_values, property_values_in,
};
pub use select::{Column, GroupBy, OrderBy, Selection};
pub use view::{
    ConversationsView, EventsView, FeedbackView, SemanticThreadsView, ViewField, ViewKind,
};

mod sealed {
    /// Keeps the query traits closed: only the types of this module implement them, so new methods
    /// can be added to the traits without breaking anyone.
    pub trait Sealed {}
}
