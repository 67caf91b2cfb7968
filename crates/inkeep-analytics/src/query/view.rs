//! The views a query reads, as marker types, and the generated field enums that name their fields, so that a part of a query for one view cannot go into a query of another.

use std::fmt;
use std::hash::Hash;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Column, Field, GroupBy, IntoField, Query, Selection, sealed};
use crate::error::{Error, Result};
use crate::types;

/// A view that queries read: a marker type that ties a query and all its parts to one view.
///
/// The marker types are [`ConversationsView`], [`EventsView`], [`FeedbackView`] and [`SemanticThreadsView`]; the
/// trait is sealed. A part built for one view does not fit a query of another:
///
/// ```compile_fail,E0277
/// use inkeep_analytics::query::{ConversationsView, Filter, Query};
/// use inkeep_analytics::types::EventsViewField;
///
/// // `eventType` is a field of the events view, not of the conversations view.
/// let query = Query::<ConversationsView>::new().filter(Filter::eq(EventsViewField::EventType, "x"));
/// ```
///
/// ```compile_fail,E0308
/// use inkeep_analytics::query::{self, Filter};
/// use inkeep_analytics::types::EventsViewField;
///
/// let events_filter = Filter::eq(EventsViewField::EventType, "x");
/// let query = query::conversations().filter(events_filter);
/// ```
///
/// The same query with a field of the right view compiles:
///
/// ```
/// use inkeep_analytics::query::{ConversationsView, Filter, Query};
/// use inkeep_analytics::types::ConversationsViewField;
///
/// let query = Query::<ConversationsView>::new().filter(Filter::eq(ConversationsViewField::Type, "x"));
/// ```
pub trait ViewKind: sealed::Sealed + Copy + fmt::Debug + Eq + Hash + Send + Sync + 'static {
    /// The generated enum of the view's fields, such as [`types::ConversationsViewField`].
    type Fields: ViewField<View = Self>;
    /// The generated body of the view's query and export operations, such as
    /// [`types::QueryConversationsBody`].
    type Body: From<Query<Self>> + Serialize + DeserializeOwned + Clone + fmt::Debug + PartialEq;
    /// The generated type of the body's `notes`, which refuses notes longer than the API allows.
    type Notes: TryFrom<String, Error = types::error::ConversionError>
        + Clone
        + fmt::Debug
        + PartialEq;

    /// The field a time selection without a field buckets ([`Selection::time`]), and the key of
    /// its column ([`Column::time`]): `firstMessageTime` for conversations and semantic threads,
    /// `createdAt` for events and feedback.
    ///
    /// ```
    /// use inkeep_analytics::query::{ConversationsView, EventsView, ViewKind};
    /// use inkeep_analytics::types::{ConversationsViewField, EventsViewField};
    ///
    /// assert_eq!(ConversationsView::DEFAULT_TIME_FIELD, ConversationsViewField::FirstMessageTime);
    /// assert_eq!(EventsView::DEFAULT_TIME_FIELD, EventsViewField::CreatedAt);
    /// ```
    const DEFAULT_TIME_FIELD: Self::Fields;

    /// The view as property look-ups name it, such as [`types::View::ConversationsView`].
    fn view() -> types::View;
}

/// The conversations view, read by `POST /query/conversations`.
///
/// A marker type: it has no values and only names the view in `Query<ConversationsView>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConversationsView {}

/// The events view, read by `POST /query/events`.
///
/// A marker type: it has no values and only names the view in `Query<EventsView>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventsView {}

/// The feedback view, read by `POST /query/feedback`.
///
/// A marker type: it has no values and only names the view in `Query<FeedbackView>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeedbackView {}

/// The semantic threads view, read by `POST /query/semantic-threads`.
///
/// A marker type: it has no values and only names the view in `Query<SemanticThreadsView>`.
/// Its queries can also carry a semantic search, see [`Query::search`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SemanticThreadsView {}

/// A generated field enum, which knows its view.
///
/// Implemented by [`types::ConversationsViewField`], [`types::EventsViewField`],
/// [`types::FeedbackViewField`] and [`types::SemanticThreadsViewField`]; the trait is sealed.
/// Their `Other` variant names a field newer than the spec.
pub trait ViewField: sealed::Sealed + Clone + fmt::Debug {
    /// The view the field belongs to.
    type View: ViewKind;

    /// The wire names of the fields this version of the spec lists.
    const KNOWN: &'static [&'static str];

    /// The field's name on the wire.
    fn wire_name(&self) -> &str;

    /// The field with this wire name; a name the spec does not list becomes the `Other` variant.
    fn from_wire_name(name: &str) -> Self;

    /// The field with this wire name, which must be one the spec lists for the view.
    ///
    /// ```
    /// use inkeep_analytics::query::ViewField;
    /// use inkeep_analytics::types::EventsViewField;
    ///
    /// assert_eq!(EventsViewField::parse_known("createdAt")?, EventsViewField::CreatedAt);
    /// let refused = EventsViewField::parse_known("firstMessageTime").unwrap_err();
    /// assert!(refused.to_string().contains("its fields are id, "), "{refused}");
    /// # Ok::<(), inkeep_analytics::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the view and listing its fields, when the spec does not list
    /// `name` for it.
    fn parse_known(name: &str) -> Result<Self>
    where
        Self: Sized,
    {
        if Self::KNOWN.contains(&name) {
            Ok(Self::from_wire_name(name))
        } else {
            Err(Error::invalid_input(format!(
                "{name:?} is not a field of this view ({}); its fields are {}",
                Self::View::view().as_str(),
                Self::KNOWN.join(", ")
            )))
        }
    }
}

/// Implements the view traits for a marker type and its generated field enum, and the conversions
/// that let the enum stand wherever a field, selection, grouping or column is expected.
macro_rules! view {
    ($view:ident, $fields:ident, $body:ident, $notes:ident, $wire:ident, $time:ident) => {
        impl sealed::Sealed for $view {}

        impl ViewKind for $view {
            type Fields = types::$fields;
            type Body = types::$body;
            type Notes = types::$notes;

            const DEFAULT_TIME_FIELD: types::$fields = types::$fields::$time;

            fn view() -> types::View {
                types::View::$wire
            }
        }

        impl sealed::Sealed for types::$fields {}

        impl ViewField for types::$fields {
            type View = $view;

            const KNOWN: &'static [&'static str] = types::$fields::KNOWN;

            fn wire_name(&self) -> &str {
                self.as_str()
            }

            fn from_wire_name(name: &str) -> Self {
                types::$fields::from(name)
            }
        }

        impl From<types::$fields> for Field<$view> {
            fn from(field: types::$fields) -> Self {
                field.into_field()
            }
        }

        impl From<types::$fields> for Selection<$view> {
            fn from(field: types::$fields) -> Self {
                Selection::field(field)
            }
        }

        impl From<types::$fields> for GroupBy<$view> {
            fn from(field: types::$fields) -> Self {
                GroupBy::new(field)
            }
        }

        impl From<types::$fields> for Column<$view> {
            fn from(field: types::$fields) -> Self {
                Column::field(field)
            }
        }
    };
}

view!(
    ConversationsView,
    ConversationsViewField,
    QueryConversationsBody,
    QueryConversationsBodyNotes,
    ConversationsView,
    FirstMessageTime
);
view!(
    EventsView,
    EventsViewField,
    QueryEventsBody,
    QueryEventsBodyNotes,
    EventsView,
    CreatedAt
);
view!(
    FeedbackView,
    FeedbackViewField,
    QueryFeedbackBody,
    QueryFeedbackBodyNotes,
    FeedbackView,
    CreatedAt
);
view!(
    SemanticThreadsView,
    SemanticThreadsViewField,
    QuerySemanticThreadsBody,
    QuerySemanticThreadsBodyNotes,
    SemanticThreadsView,
    FirstMessageTime
);
