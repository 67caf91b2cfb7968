//! The query itself: a builder over one view that converts into that view's generated body.

use serde_json::Map;

use super::{
    ConversationsView, EventsView, FeedbackView, Filter, GroupBy, OrderBy, Selection,
    SemanticThreadsView, ViewKind,
};
use crate::error::{Error, Result};
use crate::types;

/// A query over view `V`, which converts into the view's generated body ([`ViewKind::Body`]).
///
/// Every query is valid once built: the one check the spec makes on a body, the length of its
/// notes, is made by [`Query::notes`]. So a query goes to the client as it is:
/// `client.query_events(query)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Query<V: ViewKind> {
    select: Vec<types::Selection>,
    group_by: Vec<types::GroupBy>,
    filter: Option<Filter<V>>,
    order_by: Vec<types::OrderBy>,
    notes: Option<V::Notes>,
    /// The semantic search; only [`Query<SemanticThreadsView>::search`] sets it.
    search: Option<String>,
}

/// A query over the conversations view, for [`Client::query_conversations`](crate::Client::query_conversations).
pub fn conversations() -> Query<ConversationsView> {
    Query::new()
}

/// A query over the events view, for [`Client::query_events`](crate::Client::query_events).
pub fn events() -> Query<EventsView> {
    Query::new()
}

/// A query over the feedback view, for [`Client::query_feedback`](crate::Client::query_feedback).
pub fn feedback() -> Query<FeedbackView> {
    Query::new()
}

/// A query over the semantic threads view, for
/// [`Client::query_semantic_threads`](crate::Client::query_semantic_threads).
pub fn semantic_threads() -> Query<SemanticThreadsView> {
    Query::new()
}

impl<V: ViewKind> Default for Query<V> {
    fn default() -> Self {
        Query {
            select: Vec::new(),
            group_by: Vec::new(),
            filter: None,
            order_by: Vec::new(),
            notes: None,
            search: None,
        }
    }
}

impl<V: ViewKind> Query<V> {
    /// An empty query: every row, every field.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a selection (in order).
    pub fn select(mut self, selection: impl Into<Selection<V>>) -> Self {
        self.select.push(selection.into().inner);
        self
    }

    /// Adds a grouping (in order).
    pub fn group_by(mut self, group_by: impl Into<GroupBy<V>>) -> Self {
        self.group_by.push(group_by.into().inner);
        self
    }

    /// Sets the `where` filter; called again, it narrows: the filters are joined with `and`.
    pub fn filter(mut self, filter: Filter<V>) -> Self {
        self.filter = Some(match self.filter.take() {
            Some(current) => current.and(filter),
            None => filter,
        });
        self
    }

    /// Adds a sort key (in order: the first one sorts first).
    pub fn order_by(mut self, order_by: OrderBy<V>) -> Self {
        self.order_by.push(order_by.inner);
        self
    }

    /// Sets `notes`, a note for the caller's own use that the API does not store.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the notes are longer than the spec allows (80 characters), so
    /// that the mistake shows here rather than as a 4XX answer.
    pub fn notes(mut self, notes: impl Into<String>) -> Result<Self> {
        let notes = notes.into();
        let length = notes.chars().count();
        match V::Notes::try_from(notes) {
            Ok(notes) => {
                self.notes = Some(notes);
                Ok(self)
            }
            Err(error) => Err(Error::invalid_input(format!(
                "query notes of {length} characters refused: {error}"
            ))),
        }
    }

    /// The `where` filter, if any.
    pub fn filter_ref(&self) -> Option<&Filter<V>> {
        self.filter.as_ref()
    }

    /// The generated body of the view, ready to send.
    pub fn build(self) -> V::Body {
        V::Body::from(self)
    }
}

impl Query<SemanticThreadsView> {
    /// Sets `query`, a semantic search that narrows the threads.
    pub fn search(mut self, text: impl Into<String>) -> Self {
        self.search = Some(text.into());
        self
    }
}

/// Converts a query into a generated body that has no semantic search.
macro_rules! body_from_query {
    ($view:ident, $body:ident) => {
        impl From<Query<$view>> for types::$body {
            fn from(query: Query<$view>) -> Self {
                types::$body {
                    group_by: query.group_by,
                    notes: query.notes,
                    order_by: query.order_by,
                    select: query.select,
                    where_: query.filter.map(Filter::into_generated),
                    extra: Map::new(),
                }
            }
        }
    };
}

body_from_query!(ConversationsView, QueryConversationsBody);
body_from_query!(EventsView, QueryEventsBody);
body_from_query!(FeedbackView, QueryFeedbackBody);

impl From<Query<SemanticThreadsView>> for types::QuerySemanticThreadsBody {
    fn from(query: Query<SemanticThreadsView>) -> Self {
        types::QuerySemanticThreadsBody {
            group_by: query.group_by,
            notes: query.notes,
            order_by: query.order_by,
            query: query.search,
            select: query.select,
            where_: query.filter.map(Filter::into_generated),
            extra: Map::new(),
        }
    }
}
