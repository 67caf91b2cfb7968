//! The typed query language of the `/query` operations, so that a filter, selection, grouping or sort naming a field of another view fails to compile instead of failing at the server.
//!
//! A [`Query`] is generic over its [`View`]: one of the marker types [`Conversations`], [`Events`],
//! [`Feedback`] and [`SemanticThreads`]. Every part of it ([`Filter`], [`Selection`], [`GroupBy`],
//! [`OrderBy`], [`Column`]) carries the same view, and the fields it accepts are that view's
//! generated field enum (such as [`types::ConversationsViewField`]), or a JSON path into its
//! `properties` or `userProperties` ([`Field::properties`], [`Field::user_properties`]).
//! A query converts into the generated body of its view, so it goes straight to
//! [`Client::query_conversations`](crate::Client::query_conversations) and its siblings, and to the
//! export operations.
//!
//! Result rows have keys that depend on the query, so [`types::QueryRow`] stays an open map; this
//! module gives it typed accessors ([`types::QueryRow::get_u64`] and its siblings), and
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

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::num::{NonZeroU64, ParseIntError};

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Map;

use crate::error::{Error, Result};
use crate::types;

mod sealed {
    /// Keeps the query traits closed: only the types of this module implement them, so new methods
    /// can be added to the traits without breaking anyone.
    pub trait Sealed {}
}

/// A view that queries read: a marker type that ties a query and all its parts to one view.
///
/// The marker types are [`Conversations`], [`Events`], [`Feedback`] and [`SemanticThreads`]; the
/// trait is sealed. A part built for one view does not fit a query of another:
///
/// ```compile_fail,E0277
/// use inkeep_analytics::query::{Conversations, Filter, Query};
/// use inkeep_analytics::types::EventsViewField;
///
/// // `eventType` is a field of the events view, not of the conversations view.
/// let query = Query::<Conversations>::new().filter(Filter::eq(EventsViewField::EventType, "x"));
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
/// use inkeep_analytics::query::{Conversations, Filter, Query};
/// use inkeep_analytics::types::ConversationsViewField;
///
/// let query = Query::<Conversations>::new().filter(Filter::eq(ConversationsViewField::Type, "x"));
/// ```
pub trait View: sealed::Sealed + Copy + fmt::Debug + Eq + Hash + Send + Sync + 'static {
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

    /// The view as property look-ups name it, such as [`types::View::ConversationsView`].
    fn view() -> types::View;
}

/// The conversations view, read by `POST /query/conversations`.
///
/// A marker type: it has no values and only names the view in `Query<Conversations>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Conversations {}

/// The events view, read by `POST /query/events`.
///
/// A marker type: it has no values and only names the view in `Query<Events>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Events {}

/// The feedback view, read by `POST /query/feedback`.
///
/// A marker type: it has no values and only names the view in `Query<Feedback>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feedback {}

/// The semantic threads view, read by `POST /query/semantic-threads`.
///
/// A marker type: it has no values and only names the view in `Query<SemanticThreads>`.
/// Its queries can also carry a semantic search, see [`Query::search`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SemanticThreads {}

/// A generated field enum, which knows its view.
///
/// Implemented by [`types::ConversationsViewField`], [`types::EventsViewField`],
/// [`types::FeedbackViewField`] and [`types::SemanticThreadsViewField`]; the trait is sealed.
/// Their `Other` variant names a field newer than the spec.
pub trait ViewField: sealed::Sealed + Clone + fmt::Debug {
    /// The view the field belongs to.
    type View: View;

    /// The field's name on the wire.
    fn wire_name(&self) -> &str;
}

/// What a condition, aggregation, field selection or grouping accepts as its field: a field of the
/// view ([`ViewField`]) or a [`Field`], which may hold a JSON path.
///
/// The view is an associated type rather than a parameter so that the compiler infers it from the
/// field alone. The trait is sealed.
pub trait IntoField: sealed::Sealed {
    /// The view the field belongs to.
    type View: View;

    /// The field, as a [`Field`].
    fn into_field(self) -> Field<Self::View>;
}

impl<F: ViewField> IntoField for F {
    type View = F::View;

    fn into_field(self) -> Field<F::View> {
        Field::named(self.wire_name())
    }
}

/// Implements the view traits for a marker type and its generated field enum, and the conversions
/// that let the enum stand wherever a field, selection, grouping or column is expected.
macro_rules! view {
    ($view:ident, $fields:ident, $body:ident, $notes:ident, $wire:ident) => {
        impl sealed::Sealed for $view {}

        impl View for $view {
            type Fields = types::$fields;
            type Body = types::$body;
            type Notes = types::$notes;

            fn view() -> types::View {
                types::View::$wire
            }
        }

        impl sealed::Sealed for types::$fields {}

        impl ViewField for types::$fields {
            type View = $view;

            fn wire_name(&self) -> &str {
                self.as_str()
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
    Conversations,
    ConversationsViewField,
    QueryConversationsBody,
    QueryConversationsBodyNotes,
    ConversationsView
);
view!(
    Events,
    EventsViewField,
    QueryEventsBody,
    QueryEventsBodyNotes,
    EventsView
);
view!(
    Feedback,
    FeedbackViewField,
    QueryFeedbackBody,
    QueryFeedbackBodyNotes,
    FeedbackView
);
view!(
    SemanticThreads,
    SemanticThreadsViewField,
    QuerySemanticThreadsBody,
    QuerySemanticThreadsBodyNotes,
    SemanticThreadsView
);

/// A field of view `V`, optionally with a JSON path into it (for `properties` and `userProperties`).
///
/// A path goes where the API expects it: in a condition's value as `{path, value}`, and in the
/// `path` of an aggregation, a field selection or a grouping.
///
/// ```
/// use inkeep_analytics::query::{Events, Field};
/// use inkeep_analytics::types::EventsViewField;
///
/// let plan = Field::<Events>::properties(["billing", "plan"]);
/// assert_eq!(plan.name(), "properties");
/// assert_eq!(plan.path(), ["billing", "plan"]);
/// let kind = Field::from(EventsViewField::EventType);
/// assert_eq!(kind.name(), "eventType");
/// assert!(kind.path().is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field<V: View> {
    name: String,
    path: Vec<String>,
    view: PhantomData<fn() -> V>,
}

impl<V: View> Field<V> {
    fn named(name: &str) -> Self {
        Field {
            name: name.to_string(),
            path: Vec::new(),
            view: PhantomData,
        }
    }

    /// A JSON path inside a field of the view, such as `["plan"]` inside `properties`.
    ///
    /// The path replaces any path `field` already has.
    pub fn json<I, S>(field: impl IntoField<View = V>, path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut field = field.into_field();
        field.path = path.into_iter().map(Into::into).collect();
        field
    }

    /// A JSON path inside `properties`, the free-form object every view has.
    pub fn properties<I, S>(path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut field = Field::named("properties");
        field.path = path.into_iter().map(Into::into).collect();
        field
    }

    /// A JSON path inside `userProperties`, the object about the user that every view has.
    pub fn user_properties<I, S>(path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut field = Field::named("userProperties");
        field.path = path.into_iter().map(Into::into).collect();
        field
    }

    /// The field's name on the wire.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The JSON path inside the field; empty for a plain field.
    pub fn path(&self) -> &[String] {
        &self.path
    }
}

impl<V: View> sealed::Sealed for Field<V> {}

impl<V: View> IntoField for Field<V> {
    type View = V;

    fn into_field(self) -> Field<V> {
        self
    }
}

/// A single value a condition compares with, or an item of a list of them.
///
/// Everything that converts into it (strings, integers, floats, booleans, `Option`s of them, and
/// `chrono` date-times) converts into [`Value`] as well.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// JSON `null`, such as a `None` in a list.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Integer(i64),
    /// An unsigned integer, for values above `i64::MAX`.
    Unsigned(u64),
    /// A float. JSON has no NaN or infinity: those are sent as `null`, as `serde_json` does.
    Float(f64),
    /// A string.
    String(String),
}

impl Scalar {
    fn into_json(self) -> serde_json::Value {
        match self {
            Scalar::Null => serde_json::Value::Null,
            Scalar::Bool(value) => serde_json::Value::Bool(value),
            Scalar::Integer(value) => serde_json::Value::from(value),
            Scalar::Unsigned(value) => serde_json::Value::from(value),
            // `Value::from(f64)` gives `null` for NaN and the infinities.
            Scalar::Float(value) => serde_json::Value::from(value),
            Scalar::String(value) => serde_json::Value::String(value),
        }
    }
}

/// What a condition compares its field with: a scalar, a list of scalars (nulls allowed), null, or
/// any JSON (an object for `jsonContains`, say).
///
/// A JSON path is not a value: it belongs to the [`Field`], and the condition sends both as
/// `{path, value}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// One scalar, or null ([`Value::NULL`]).
    Scalar(Scalar),
    /// A list of scalars, sent as a JSON array; [`Scalar::Null`] items are sent as `null`.
    List(Vec<Scalar>),
    /// JSON sent as it is.
    Json(serde_json::Value),
}

impl Value {
    /// JSON `null`.
    pub const NULL: Value = Value::Scalar(Scalar::Null);

    /// A list of scalars; `None` items are sent as `null`.
    pub fn list<I>(items: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Scalar>,
    {
        Value::List(items.into_iter().map(Into::into).collect())
    }

    fn into_json(self) -> serde_json::Value {
        match self {
            Value::Scalar(scalar) => scalar.into_json(),
            Value::List(items) => {
                serde_json::Value::Array(items.into_iter().map(Scalar::into_json).collect())
            }
            Value::Json(json) => json,
        }
    }
}

/// Converts the Rust scalar types into [`Scalar`] and [`Value`].
macro_rules! scalar_from {
    ($($ty:ty => $variant:ident),* $(,)?) => {
        $(
            impl From<$ty> for Scalar {
                fn from(value: $ty) -> Self {
                    Scalar::$variant(value.into())
                }
            }

            impl From<$ty> for Value {
                fn from(value: $ty) -> Self {
                    Value::Scalar(value.into())
                }
            }
        )*
    };
}

scalar_from!(
    bool => Bool,
    i8 => Integer,
    i16 => Integer,
    i32 => Integer,
    i64 => Integer,
    u8 => Integer,
    u16 => Integer,
    u32 => Integer,
    u64 => Unsigned,
    f32 => Float,
    f64 => Float,
    &str => String,
    String => String,
    &String => String,
);

impl<T: Into<Scalar>> From<Option<T>> for Scalar {
    fn from(value: Option<T>) -> Self {
        value.map_or(Scalar::Null, Into::into)
    }
}

/// A date-time is sent as RFC 3339 in UTC with milliseconds, the form the API itself uses
/// (`2025-01-01T00:00:00.000Z`).
impl<Tz: TimeZone> From<DateTime<Tz>> for Scalar {
    fn from(value: DateTime<Tz>) -> Self {
        Scalar::String(
            value
                .with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        )
    }
}

impl<Tz: TimeZone> From<DateTime<Tz>> for Value {
    fn from(value: DateTime<Tz>) -> Self {
        Value::Scalar(value.into())
    }
}

impl From<Scalar> for Value {
    fn from(value: Scalar) -> Self {
        Value::Scalar(value)
    }
}

impl<T: Into<Scalar>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        Value::Scalar(value.into())
    }
}

impl<T: Into<Scalar>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Self {
        Value::list(items)
    }
}

impl<T: Into<Scalar>, const N: usize> From<[T; N]> for Value {
    fn from(items: [T; N]) -> Self {
        Value::list(items)
    }
}

impl From<serde_json::Value> for Value {
    fn from(value: serde_json::Value) -> Self {
        Value::Json(value)
    }
}

/// A filter over view `V`: a condition, or an `and`/`or` of filters nested to any depth.
///
/// There is one constructor per operator of [`types::FilterOperator`], and
/// [`Filter::condition`] for any operator, including one newer than the spec.
///
/// ```
/// use inkeep_analytics::query::{Field, Filter};
/// use inkeep_analytics::types::FeedbackViewField as F;
///
/// let negative_about_billing = Filter::eq(F::Type, "negative")
///     .and(Filter::any([
///         Filter::json_has_key(F::Properties, "invoiceId"),
///         Filter::eq(Field::properties(["topic"]), "billing"),
///     ]));
/// # let _ = negative_about_billing;
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Filter<V: View> {
    inner: types::Filter,
    view: PhantomData<fn() -> V>,
}

impl<V: View> Filter<V> {
    fn wrap(inner: types::Filter) -> Self {
        Filter {
            inner,
            view: PhantomData,
        }
    }

    /// A condition with any operator; `value` is `None` for operators that take none
    /// (`isNull`, `isNotNull`).
    ///
    /// When the field has a JSON path, the value is sent as `{path, value}` (and as `{path}` when
    /// there is no value).
    pub fn condition(
        field: impl IntoField<View = V>,
        operator: types::FilterOperator,
        value: Option<Value>,
    ) -> Self {
        let Field { name, path, .. } = field.into_field();
        let value = if path.is_empty() {
            value.map(Value::into_json)
        } else {
            let mut object = Map::new();
            object.insert("path".to_string(), serde_json::Value::from(path));
            if let Some(value) = value {
                object.insert("value".to_string(), value.into_json());
            }
            Some(serde_json::Value::Object(object))
        };
        Filter::wrap(types::Filter::Condition(types::FilterCondition {
            condition: types::Condition {
                field: name,
                operator,
                value,
                extra: Map::new(),
            },
            extra: Map::new(),
        }))
    }

    /// `eq`: the field equals `value`.
    pub fn eq(field: impl IntoField<View = V>, value: impl Into<Value>) -> Self {
        Filter::condition(field, types::FilterOperator::Eq, Some(value.into()))
    }

    /// `neq`: the field differs from `value`.
    pub fn neq(field: impl IntoField<View = V>, value: impl Into<Value>) -> Self {
        Filter::condition(field, types::FilterOperator::Neq, Some(value.into()))
    }

    /// `gt`: the field is greater than `value`.
    pub fn gt(field: impl IntoField<View = V>, value: impl Into<Value>) -> Self {
        Filter::condition(field, types::FilterOperator::Gt, Some(value.into()))
    }

    /// `gte`: the field is greater than or equal to `value`.
    pub fn gte(field: impl IntoField<View = V>, value: impl Into<Value>) -> Self {
        Filter::condition(field, types::FilterOperator::Gte, Some(value.into()))
    }

    /// `lt`: the field is less than `value`.
    pub fn lt(field: impl IntoField<View = V>, value: impl Into<Value>) -> Self {
        Filter::condition(field, types::FilterOperator::Lt, Some(value.into()))
    }

    /// `lte`: the field is less than or equal to `value`.
    pub fn lte(field: impl IntoField<View = V>, value: impl Into<Value>) -> Self {
        Filter::condition(field, types::FilterOperator::Lte, Some(value.into()))
    }

    /// `in`: the field is one of `values` (`None` items are sent as `null`).
    pub fn is_in<I>(field: impl IntoField<View = V>, values: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Scalar>,
    {
        Filter::condition(field, types::FilterOperator::In, Some(Value::list(values)))
    }

    /// `notIn`: the field is none of `values` (`None` items are sent as `null`).
    pub fn not_in<I>(field: impl IntoField<View = V>, values: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Scalar>,
    {
        Filter::condition(
            field,
            types::FilterOperator::NotIn,
            Some(Value::list(values)),
        )
    }

    /// `arrayContains`: the field, an array, contains `value`.
    pub fn array_contains(field: impl IntoField<View = V>, value: impl Into<Value>) -> Self {
        Filter::condition(
            field,
            types::FilterOperator::ArrayContains,
            Some(value.into()),
        )
    }

    /// `jsonContains`: the field, JSON, contains `value` (typically an object).
    pub fn json_contains(field: impl IntoField<View = V>, value: impl Into<Value>) -> Self {
        Filter::condition(
            field,
            types::FilterOperator::JsonContains,
            Some(value.into()),
        )
    }

    /// `jsonContainedBy`: the field, JSON, is contained in `value`.
    pub fn json_contained_by(field: impl IntoField<View = V>, value: impl Into<Value>) -> Self {
        Filter::condition(
            field,
            types::FilterOperator::JsonContainedBy,
            Some(value.into()),
        )
    }

    /// `jsonHasKey`: the field, a JSON object, has the key `key`.
    pub fn json_has_key(field: impl IntoField<View = V>, key: impl Into<String>) -> Self {
        Filter::condition(
            field,
            types::FilterOperator::JsonHasKey,
            Some(Value::Scalar(Scalar::String(key.into()))),
        )
    }

    /// `jsonArrayContainsObject`: the field, a JSON array, contains the object `value`.
    pub fn json_array_contains_object(
        field: impl IntoField<View = V>,
        value: impl Into<Value>,
    ) -> Self {
        Filter::condition(
            field,
            types::FilterOperator::JsonArrayContainsObject,
            Some(value.into()),
        )
    }

    /// `jsonHasAnyKey`: the field, a JSON object, has at least one of `keys`.
    pub fn json_has_any_key<I>(field: impl IntoField<View = V>, keys: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Filter::condition(
            field,
            types::FilterOperator::JsonHasAnyKey,
            Some(keys_value(keys)),
        )
    }

    /// `jsonHasAllKeys`: the field, a JSON object, has every one of `keys`.
    pub fn json_has_all_keys<I>(field: impl IntoField<View = V>, keys: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Filter::condition(
            field,
            types::FilterOperator::JsonHasAllKeys,
            Some(keys_value(keys)),
        )
    }

    /// `isNull`: the field is null. No value is sent.
    pub fn is_null(field: impl IntoField<View = V>) -> Self {
        Filter::condition(field, types::FilterOperator::IsNull, None)
    }

    /// `isNotNull`: the field is not null. No value is sent.
    pub fn is_not_null(field: impl IntoField<View = V>) -> Self {
        Filter::condition(field, types::FilterOperator::IsNotNull, None)
    }

    /// `{and: [...]}`: every one of `filters` matches.
    pub fn all(filters: impl IntoIterator<Item = Filter<V>>) -> Self {
        Filter::wrap(types::Filter::And(types::FilterAnd {
            and: filters.into_iter().map(|filter| filter.inner).collect(),
            extra: Map::new(),
        }))
    }

    /// `{or: [...]}`: at least one of `filters` matches.
    pub fn any(filters: impl IntoIterator<Item = Filter<V>>) -> Self {
        Filter::wrap(types::Filter::Or(types::FilterOr {
            or: filters.into_iter().map(|filter| filter.inner).collect(),
            extra: Map::new(),
        }))
    }

    /// This filter and `other`. A chain `a.and(b).and(c)` makes one `{and: [a, b, c]}`.
    pub fn and(self, other: Filter<V>) -> Self {
        match self.inner {
            // Appending to an `and` keeps a chain flat; it means the same as nesting it.
            types::Filter::And(mut all) if all.extra.is_empty() => {
                all.and.push(other.inner);
                Filter::wrap(types::Filter::And(all))
            }
            inner => Filter::all([Filter::wrap(inner), other]),
        }
    }

    /// This filter or `other`. A chain `a.or(b).or(c)` makes one `{or: [a, b, c]}`.
    pub fn or(self, other: Filter<V>) -> Self {
        match self.inner {
            types::Filter::Or(mut any) if any.extra.is_empty() => {
                any.or.push(other.inner);
                Filter::wrap(types::Filter::Or(any))
            }
            inner => Filter::any([Filter::wrap(inner), other]),
        }
    }

    /// A filter written with the generated types, for what this module cannot spell.
    ///
    /// Nothing checks that its fields belong to view `V`.
    pub fn from_generated(filter: types::Filter) -> Self {
        Filter::wrap(filter)
    }

    /// The generated filter, as it is sent.
    pub fn as_generated(&self) -> &types::Filter {
        &self.inner
    }

    /// The generated filter, as it is sent.
    pub fn into_generated(self) -> types::Filter {
        self.inner
    }
}

fn keys_value<I>(keys: I) -> Value
where
    I: IntoIterator,
    I::Item: Into<String>,
{
    Value::List(
        keys.into_iter()
            .map(|key| Scalar::String(key.into()))
            .collect(),
    )
}

impl<V: View> From<Filter<V>> for types::Filter {
    fn from(filter: Filter<V>) -> Self {
        filter.inner
    }
}

/// What a query returns per row over view `V`: an aggregation, a time bucket or a field.
///
/// A field of the view converts into a field selection, so `query.select(F::Type)` works.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection<V: View> {
    inner: types::Selection,
    view: PhantomData<fn() -> V>,
}

impl<V: View> Selection<V> {
    fn wrap(inner: types::Selection) -> Self {
        Selection {
            inner,
            view: PhantomData,
        }
    }

    fn aggregation(function: types::AggregationFunction, field: Option<Field<V>>) -> Self {
        let (field, path) = match field {
            Some(Field { name, path, .. }) => (Some(name), path),
            None => (None, Vec::new()),
        };
        Selection::wrap(types::Selection::Aggregation(types::AggregationSelection {
            aggregation: function,
            field,
            path,
            type_: types::AggregationSelectionType::Aggregation,
            extra: Map::new(),
        }))
    }

    /// `{type: "aggregation", aggregation, field, path?}`: `function` over a field, or over a
    /// JSON path inside one. Its row key is [`Column::aggregate`].
    pub fn aggregate(
        function: types::AggregationFunction,
        field: impl IntoField<View = V>,
    ) -> Self {
        Selection::aggregation(function, Some(field.into_field()))
    }

    /// `{type: "aggregation", aggregation}`: `function` over the rows themselves, without a field.
    /// Its row key is [`Column::aggregate_rows`].
    pub fn aggregate_rows(function: types::AggregationFunction) -> Self {
        Selection::aggregation(function, None)
    }

    /// `{type: "aggregation", aggregation: "count"}`: the number of rows, keyed `count`.
    pub fn count() -> Self {
        Selection::aggregate_rows(types::AggregationFunction::Count)
    }

    /// `{type: "time", timeUnit}`: a time bucket of the view's default time field.
    pub fn time(unit: types::TimeUnit) -> Self {
        Selection::time_bucket(None, unit)
    }

    /// `{type: "time", timeUnit, field}`: a time bucket of `field`. Its row key is
    /// [`Column::time_bucket`].
    pub fn time_of(field: impl ViewField<View = V>, unit: types::TimeUnit) -> Self {
        Selection::time_bucket(Some(field.wire_name().to_string()), unit)
    }

    fn time_bucket(field: Option<String>, unit: types::TimeUnit) -> Self {
        Selection::wrap(types::Selection::Time(types::TimeSelection {
            field,
            time_unit: unit,
            type_: types::TimeSelectionType::Time,
            extra: Map::new(),
        }))
    }

    /// `{type: "field", field, path?}`: a field, or a JSON path inside one.
    pub fn field(field: impl IntoField<View = V>) -> Self {
        Selection::field_selection(field.into_field(), None)
    }

    /// `{type: "field", field, path?, mode}`: a JSON field, unpacked into columns or kept as JSON.
    pub fn field_as(field: impl IntoField<View = V>, mode: types::FieldMode) -> Self {
        Selection::field_selection(field.into_field(), Some(mode))
    }

    fn field_selection(field: Field<V>, mode: Option<types::FieldMode>) -> Self {
        Selection::wrap(types::Selection::Field(types::FieldSelection {
            field: field.name,
            mode,
            path: field.path,
            type_: types::FieldSelectionType::Field,
            extra: Map::new(),
        }))
    }

    /// A selection written with the generated types, such as a kind newer than the spec.
    ///
    /// Nothing checks that its field belongs to view `V`.
    pub fn from_generated(selection: types::Selection) -> Self {
        Selection::wrap(selection)
    }

    /// The generated selection, as it is sent.
    pub fn as_generated(&self) -> &types::Selection {
        &self.inner
    }

    /// The generated selection, as it is sent.
    pub fn into_generated(self) -> types::Selection {
        self.inner
    }
}

impl<V: View> From<Field<V>> for Selection<V> {
    fn from(field: Field<V>) -> Self {
        Selection::field(field)
    }
}

impl<V: View> From<Selection<V>> for types::Selection {
    fn from(selection: Selection<V>) -> Self {
        selection.inner
    }
}

/// A field of view `V` to group rows by, or a JSON path inside one.
///
/// A field of the view converts into one, so `query.group_by(F::Type)` works.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupBy<V: View> {
    inner: types::GroupBy,
    view: PhantomData<fn() -> V>,
}

impl<V: View> GroupBy<V> {
    /// `{field, path?}`: group by `field`.
    pub fn new(field: impl IntoField<View = V>) -> Self {
        let Field { name, path, .. } = field.into_field();
        GroupBy {
            inner: types::GroupBy {
                field: name,
                include_in_select: None,
                path,
                extra: Map::new(),
            },
            view: PhantomData,
        }
    }

    /// Sets `includeInSelect`: whether the grouped field also comes back in each row.
    pub fn include_in_select(mut self, include: bool) -> Self {
        self.inner.include_in_select = Some(include);
        self
    }

    /// The generated grouping, as it is sent.
    pub fn as_generated(&self) -> &types::GroupBy {
        &self.inner
    }

    /// The generated grouping, as it is sent.
    pub fn into_generated(self) -> types::GroupBy {
        self.inner
    }
}

impl<V: View> From<Field<V>> for GroupBy<V> {
    fn from(field: Field<V>) -> Self {
        GroupBy::new(field)
    }
}

impl<V: View> From<GroupBy<V>> for types::GroupBy {
    fn from(group_by: GroupBy<V>) -> Self {
        group_by.inner
    }
}

/// A named column of the result of a query over view `V`: a field, a time bucket
/// (`<field>_<unit>`) or an aggregate (`<function>_<field>`).
///
/// It is both what [`OrderBy`] sorts by and a key of the result rows, so the same value serves to
/// sort and to read:
///
/// ```
/// use inkeep_analytics::query::{Column, Events, Field};
/// use inkeep_analytics::types::{AggregationFunction, EventsViewField as F, TimeUnit};
///
/// assert_eq!(Column::time_bucket(F::CreatedAt, TimeUnit::Day).as_str(), "createdAt_day");
/// assert_eq!(Column::aggregate(AggregationFunction::Count, F::Id).as_str(), "count_id");
/// assert_eq!(
///     Column::aggregate(AggregationFunction::Sum, Field::<Events>::properties(["userId"])).as_str(),
///     "sum_properties.userId"
/// );
/// assert_eq!(Column::<Events>::aggregate_rows(AggregationFunction::Count).as_str(), "count");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Column<V: View> {
    name: String,
    view: PhantomData<fn() -> V>,
}

impl<V: View> Column<V> {
    fn named(name: String) -> Self {
        Column {
            name,
            view: PhantomData,
        }
    }

    /// A field of the view, under its own name.
    pub fn field(field: impl ViewField<View = V>) -> Self {
        Column::named(field.wire_name().to_string())
    }

    /// The time bucket of `field`, `<field>_<unit>` (such as `createdAt_day`), as
    /// [`Selection::time_of`] selects it.
    pub fn time_bucket(field: impl ViewField<View = V>, unit: types::TimeUnit) -> Self {
        Column::named(format!("{}_{}", field.wire_name(), unit.as_str()))
    }

    /// The aggregate of `field`, `<function>_<field>` (such as `count_id`), as
    /// [`Selection::aggregate`] selects it; a JSON path is appended with dots
    /// (`sum_properties.userId`).
    pub fn aggregate(
        function: types::AggregationFunction,
        field: impl IntoField<View = V>,
    ) -> Self {
        let field = field.into_field();
        let mut name = format!("{}_{}", function.as_str(), field.name);
        for segment in &field.path {
            name.push('.');
            name.push_str(segment);
        }
        Column::named(name)
    }

    /// The aggregate over the rows themselves, named after the function (such as `count`), as
    /// [`Selection::aggregate_rows`] selects it.
    pub fn aggregate_rows(function: types::AggregationFunction) -> Self {
        Column::named(function.as_str().to_string())
    }

    /// A column by its name as sent, for names this module does not spell.
    pub fn raw(name: impl Into<String>) -> Self {
        Column::named(name.into())
    }

    /// The name, as sent in an order-by and as keyed in result rows.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Sorts by this column, smallest first.
    pub fn asc(self) -> OrderBy<V> {
        OrderBy::new(self, types::SortDirection::Asc)
    }

    /// Sorts by this column, largest first.
    pub fn desc(self) -> OrderBy<V> {
        OrderBy::new(self, types::SortDirection::Desc)
    }
}

impl<V: View> AsRef<str> for Column<V> {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl<V: View> fmt::Display for Column<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A sort key of a query over view `V`: a [`Column`] and a direction.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderBy<V: View> {
    inner: types::OrderBy,
    view: PhantomData<fn() -> V>,
}

impl<V: View> OrderBy<V> {
    /// `{field, direction}`.
    pub fn new(column: impl Into<Column<V>>, direction: types::SortDirection) -> Self {
        OrderBy {
            inner: types::OrderBy {
                direction,
                field: column.into().name,
                extra: Map::new(),
            },
            view: PhantomData,
        }
    }

    /// Smallest first.
    pub fn asc(column: impl Into<Column<V>>) -> Self {
        OrderBy::new(column, types::SortDirection::Asc)
    }

    /// Largest first.
    pub fn desc(column: impl Into<Column<V>>) -> Self {
        OrderBy::new(column, types::SortDirection::Desc)
    }

    /// The generated sort key, as it is sent.
    pub fn as_generated(&self) -> &types::OrderBy {
        &self.inner
    }

    /// The generated sort key, as it is sent.
    pub fn into_generated(self) -> types::OrderBy {
        self.inner
    }
}

impl<V: View> From<OrderBy<V>> for types::OrderBy {
    fn from(order_by: OrderBy<V>) -> Self {
        order_by.inner
    }
}

/// A query over view `V`, which converts into the view's generated body ([`View::Body`]).
///
/// Every query is valid once built: the one check the spec makes on a body, the length of its
/// notes, is made by [`Query::notes`]. So a query goes to the client as it is:
/// `client.query_events(query)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Query<V: View> {
    select: Vec<types::Selection>,
    group_by: Vec<types::GroupBy>,
    filter: Option<Filter<V>>,
    order_by: Vec<types::OrderBy>,
    notes: Option<V::Notes>,
    /// The semantic search; only [`Query<SemanticThreads>::search`] sets it.
    search: Option<String>,
}

/// A query over the conversations view, for [`Client::query_conversations`](crate::Client::query_conversations).
pub fn conversations() -> Query<Conversations> {
    Query::new()
}

/// A query over the events view, for [`Client::query_events`](crate::Client::query_events).
pub fn events() -> Query<Events> {
    Query::new()
}

/// A query over the feedback view, for [`Client::query_feedback`](crate::Client::query_feedback).
pub fn feedback() -> Query<Feedback> {
    Query::new()
}

/// A query over the semantic threads view, for
/// [`Client::query_semantic_threads`](crate::Client::query_semantic_threads).
pub fn semantic_threads() -> Query<SemanticThreads> {
    Query::new()
}

impl<V: View> Default for Query<V> {
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

impl<V: View> Query<V> {
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

impl Query<SemanticThreads> {
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

body_from_query!(Conversations, QueryConversationsBody);
body_from_query!(Events, QueryEventsBody);
body_from_query!(Feedback, QueryFeedbackBody);

impl From<Query<SemanticThreads>> for types::QuerySemanticThreadsBody {
    fn from(query: Query<SemanticThreads>) -> Self {
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

/// The default of `PropertyValuesRequest.limit` in the spec.
const DEFAULT_PROPERTY_VALUES_LIMIT: NonZeroU64 = match NonZeroU64::new(100) {
    Some(limit) => limit,
    None => NonZeroU64::MIN,
};

/// A request for the keys used in `properties` or `userProperties`, across every view.
pub fn property_keys(field: types::PropertyField) -> types::PropertyKeysRequest {
    types::PropertyKeysRequest {
        field,
        views: Vec::new(),
        where_: None,
        extra: Map::new(),
    }
}

/// A request for the keys used in `properties` or `userProperties` of view `V`, among the rows that
/// match `filter`.
pub fn property_keys_in<V: View>(
    field: types::PropertyField,
    filter: Option<Filter<V>>,
) -> types::PropertyKeysRequest {
    types::PropertyKeysRequest {
        field,
        views: vec![V::view()],
        where_: filter.map(Filter::into_generated),
        extra: Map::new(),
    }
}

/// A request for the values key `key` of `properties` or `userProperties` takes, across every
/// view, with the spec's default limit (100).
pub fn property_values(
    field: types::PropertyField,
    key: impl Into<String>,
) -> types::PropertyValuesRequest {
    types::PropertyValuesRequest {
        field,
        key: key.into(),
        limit: DEFAULT_PROPERTY_VALUES_LIMIT,
        views: Vec::new(),
        where_: None,
        extra: Map::new(),
    }
}

/// A request for the values key `key` of `properties` or `userProperties` takes in view `V`, among
/// the rows that match `filter`, with the spec's default limit (100).
pub fn property_values_in<V: View>(
    field: types::PropertyField,
    key: impl Into<String>,
    filter: Option<Filter<V>>,
) -> types::PropertyValuesRequest {
    types::PropertyValuesRequest {
        views: vec![V::view()],
        where_: filter.map(Filter::into_generated),
        ..property_values(field, key)
    }
}

/// Typed reads of a result row, whose keys depend on the query.
///
/// Keys are strings or [`Column`]s. The numeric accessors accept JSON numbers and numeric strings,
/// because the API sends some counts as strings. `Map::get` (through `Deref`) still gives the raw
/// JSON.
impl types::QueryRow {
    /// The value of `key` when it is a string.
    pub fn get_str(&self, key: impl AsRef<str>) -> Option<&str> {
        self.0.get(key.as_ref()).and_then(serde_json::Value::as_str)
    }

    /// The value of `key` as an `i64`: a JSON integer, a float with no fraction, or a string of one.
    pub fn get_i64(&self, key: impl AsRef<str>) -> Option<i64> {
        match self.0.get(key.as_ref())? {
            serde_json::Value::Number(number) => number
                .as_i64()
                .or_else(|| number.as_f64().and_then(integral_i64)),
            serde_json::Value::String(text) => {
                let text = text.trim();
                text.parse()
                    .ok()
                    .or_else(|| text.parse().ok().and_then(integral_i64))
            }
            _ => None,
        }
    }

    /// The value of `key` as a `u64`: a JSON integer, a float with no fraction, or a string of one.
    pub fn get_u64(&self, key: impl AsRef<str>) -> Option<u64> {
        match self.0.get(key.as_ref())? {
            serde_json::Value::Number(number) => number
                .as_u64()
                .or_else(|| number.as_f64().and_then(integral_u64)),
            serde_json::Value::String(text) => {
                let text = text.trim();
                text.parse()
                    .ok()
                    .or_else(|| text.parse().ok().and_then(integral_u64))
            }
            _ => None,
        }
    }

    /// The value of `key` as an `f64`: a JSON number or a string of a finite one.
    pub fn get_f64(&self, key: impl AsRef<str>) -> Option<f64> {
        match self.0.get(key.as_ref())? {
            serde_json::Value::Number(number) => number.as_f64(),
            serde_json::Value::String(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite()),
            _ => None,
        }
    }

    /// The value of `key` as a `bool`: a JSON boolean, `0` or `1`, or one of the strings `true`,
    /// `false`, `1` and `0`.
    pub fn get_bool(&self, key: impl AsRef<str>) -> Option<bool> {
        match self.0.get(key.as_ref())? {
            serde_json::Value::Bool(value) => Some(*value),
            serde_json::Value::Number(number) => match number.as_u64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            serde_json::Value::String(text) => match text.trim() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// The value of `key` decoded as `T`; `Ok(None)` when the row has no such key or it is null.
    ///
    /// It is not called `get` so that `Map::get` stays reachable through `Deref`.
    ///
    /// # Errors
    ///
    /// The decoding error when the value is not a `T`.
    pub fn get_as<T: DeserializeOwned>(
        &self,
        key: impl AsRef<str>,
    ) -> Result<Option<T>, serde_json::Error> {
        match self.0.get(key.as_ref()) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => T::deserialize(value).map(Some),
        }
    }
}

/// A float as an `i64`, when it has no fraction and fits.
fn integral_i64(value: f64) -> Option<i64> {
    // `i64::MIN as f64` is exactly -2^63 and `i64::MAX as f64` rounds up to 2^63, which is out of range.
    let fits = value >= i64::MIN as f64 && value < i64::MAX as f64;
    (value.fract() == 0.0 && fits).then_some(value as i64)
}

/// A float as a `u64`, when it has no fraction and fits.
fn integral_u64(value: f64) -> Option<u64> {
    // `u64::MAX as f64` rounds up to 2^64, which is out of range.
    let fits = value >= 0.0 && value < u64::MAX as f64;
    (value.fract() == 0.0 && fits).then_some(value as u64)
}

impl types::QueryResponse {
    /// The result rows.
    pub fn rows(&self) -> &[types::QueryRow] {
        &self.data.result
    }

    /// The result rows, by value.
    pub fn into_rows(self) -> Vec<types::QueryRow> {
        self.data.result
    }
}

impl types::SearchQueryCount {
    /// `count`, which the API sends as a string of digits, as a number.
    ///
    /// # Errors
    ///
    /// The parse error when `count` is not a string of digits.
    pub fn count_u64(&self) -> Result<u64, ParseIntError> {
        self.count.trim().parse()
    }
}

impl types::WeeklySearchUsers {
    /// `unique_users`, which the API sends as a string of digits, as a number.
    ///
    /// # Errors
    ///
    /// The parse error when `unique_users` is not a string of digits.
    pub fn unique_users_u64(&self) -> Result<u64, ParseIntError> {
        self.unique_users.trim().parse()
    }
}

#[cfg(test)]
mod tests {
    //! Every body is compared with JSON written by hand from the API reference, then decoded back,
    //! so that what is sent is what the reference shows and what the generated types read.

    use std::fmt::Debug;

    use serde_json::json;

    use super::*;
    use crate::types::{
        AggregationFunction, ConversationsViewField as C, EventsViewField as E, FeedbackViewField,
        FieldMode, FilterOperator, PropertyField, SemanticThreadsViewField as S, SortDirection,
        TimeUnit,
    };

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    /// Asserts that `body` serializes to `expected`, and that `expected` decodes into `body`.
    fn round_trip<B>(body: &B, expected: serde_json::Value) -> TestResult
    where
        B: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        assert_eq!(serde_json::to_value(body)?, expected);
        let decoded: B = serde_json::from_value(expected)?;
        assert_eq!(&decoded, body);
        Ok(())
    }

    /// A conversations query with only `filter`, and the body it must make.
    fn where_body(filter: Filter<Conversations>) -> types::QueryConversationsBody {
        conversations().filter(filter).build()
    }

    #[test]
    fn an_empty_query_is_an_empty_object() -> TestResult {
        round_trip(&conversations().build(), json!({}))?;
        round_trip(&events().build(), json!({}))?;
        round_trip(&feedback().build(), json!({}))?;
        round_trip(&semantic_threads().build(), json!({}))
    }

    #[test]
    fn every_operator_sends_its_wire_name_and_value() -> TestResult {
        let cases: Vec<(Filter<Conversations>, serde_json::Value)> = vec![
            (
                Filter::eq(C::Type, "openai"),
                json!({"field": "type", "operator": "eq", "value": "openai"}),
            ),
            (
                Filter::neq(C::Type, "support_ticket"),
                json!({"field": "type", "operator": "neq", "value": "support_ticket"}),
            ),
            (
                Filter::gt(C::UserMessageCount, 3),
                json!({"field": "userMessageCount", "operator": "gt", "value": 3}),
            ),
            (
                Filter::gte(C::UserMessageCount, 4),
                json!({"field": "userMessageCount", "operator": "gte", "value": 4}),
            ),
            (
                Filter::lt(C::FirstMessageTime, "2025-02-01T00:00:00.000Z"),
                json!({"field": "firstMessageTime", "operator": "lt", "value": "2025-02-01T00:00:00.000Z"}),
            ),
            (
                Filter::lte(C::UserMessageCount, 10),
                json!({"field": "userMessageCount", "operator": "lte", "value": 10}),
            ),
            (
                Filter::is_in(C::ProjectId, ["proj_1", "proj_2"]),
                json!({"field": "projectId", "operator": "in", "value": ["proj_1", "proj_2"]}),
            ),
            (
                Filter::not_in(C::IntegrationId, ["int_1"]),
                json!({"field": "integrationId", "operator": "notIn", "value": ["int_1"]}),
            ),
            (
                Filter::array_contains(Field::properties(["tags"]), "billing"),
                json!({"field": "properties", "operator": "arrayContains", "value": {"path": ["tags"], "value": "billing"}}),
            ),
            (
                Filter::json_contains(C::Properties, json!({"source": "docs"})),
                json!({"field": "properties", "operator": "jsonContains", "value": {"source": "docs"}}),
            ),
            (
                Filter::json_contained_by(
                    C::UserProperties,
                    json!({"userType": "admin", "plan": "pro"}),
                ),
                json!({"field": "userProperties", "operator": "jsonContainedBy", "value": {"userType": "admin", "plan": "pro"}}),
            ),
            (
                Filter::json_has_key(C::UserProperties, "userId"),
                json!({"field": "userProperties", "operator": "jsonHasKey", "value": "userId"}),
            ),
            (
                Filter::json_array_contains_object(
                    Field::properties(["items"]),
                    json!({"sku": "A-1"}),
                ),
                json!({"field": "properties", "operator": "jsonArrayContainsObject", "value": {"path": ["items"], "value": {"sku": "A-1"}}}),
            ),
            (
                Filter::json_has_any_key(C::Properties, ["plan", "tier"]),
                json!({"field": "properties", "operator": "jsonHasAnyKey", "value": ["plan", "tier"]}),
            ),
            (
                Filter::json_has_all_keys(
                    C::Properties,
                    vec!["plan".to_string(), "seats".to_string()],
                ),
                json!({"field": "properties", "operator": "jsonHasAllKeys", "value": ["plan", "seats"]}),
            ),
            (
                Filter::is_null(C::IntegrationId),
                json!({"field": "integrationId", "operator": "isNull"}),
            ),
            (
                Filter::is_not_null(C::ProjectId),
                json!({"field": "projectId", "operator": "isNotNull"}),
            ),
        ];
        let mut operators = Vec::new();
        for (filter, condition) in cases {
            let types::Filter::Condition(built) = filter.as_generated() else {
                panic!("expected a condition, got {filter:?}");
            };
            operators.push(built.condition.operator.as_str().to_string());
            round_trip(
                &where_body(filter),
                json!({"where": {"condition": condition}}),
            )?;
        }
        // The cases above cover the spec's operators, each once.
        assert_eq!(operators, FilterOperator::KNOWN);
        Ok(())
    }

    #[test]
    fn an_operator_newer_than_the_spec_is_sent_as_given() -> TestResult {
        let filter = Filter::condition(
            C::Type,
            FilterOperator::Other("startsWith".to_string()),
            Some("open".into()),
        );
        round_trip(
            &where_body(filter),
            json!({"where": {"condition": {"field": "type", "operator": "startsWith", "value": "open"}}}),
        )
    }

    #[test]
    fn scalar_values_of_every_kind() -> TestResult {
        let cases: Vec<(Value, serde_json::Value)> = vec![
            ("text".into(), json!("text")),
            (String::from("owned").into(), json!("owned")),
            (42_i32.into(), json!(42)),
            ((-7_i64).into(), json!(-7)),
            (u64::MAX.into(), json!(18_446_744_073_709_551_615_u64)),
            (2.5_f64.into(), json!(2.5)),
            (0.5_f32.into(), json!(0.5)),
            (true.into(), json!(true)),
            (false.into(), json!(false)),
        ];
        for (value, expected) in cases {
            round_trip(
                &where_body(Filter::eq(C::UserMessageCount, value)),
                json!({"where": {"condition": {"field": "userMessageCount", "operator": "eq", "value": expected}}}),
            )?;
        }
        Ok(())
    }

    #[test]
    fn a_date_time_is_sent_as_rfc3339_utc_with_milliseconds() -> TestResult {
        let at = DateTime::parse_from_rfc3339("2025-01-01T02:00:00+02:00")?;
        round_trip(
            &where_body(Filter::gte(C::FirstMessageTime, at)),
            json!({"where": {"condition": {"field": "firstMessageTime", "operator": "gte", "value": "2025-01-01T00:00:00.000Z"}}}),
        )
    }

    #[test]
    fn a_list_may_hold_nulls() -> TestResult {
        round_trip(
            &where_body(Filter::is_in(C::IntegrationId, [Some("int_1"), None])),
            json!({"where": {"condition": {"field": "integrationId", "operator": "in", "value": ["int_1", null]}}}),
        )?;
        round_trip(
            &where_body(Filter::eq(
                C::Properties,
                Value::List(vec![
                    Scalar::from(1),
                    Scalar::Null,
                    Scalar::from("x"),
                    Scalar::from(true),
                ]),
            )),
            json!({"where": {"condition": {"field": "properties", "operator": "eq", "value": [1, null, "x", true]}}}),
        )?;
        round_trip(
            &where_body(Filter::not_in(C::UserMessageCount, vec![1, 2])),
            json!({"where": {"condition": {"field": "userMessageCount", "operator": "notIn", "value": [1, 2]}}}),
        )
    }

    #[test]
    fn a_null_value_is_sent_as_null() -> TestResult {
        let body = where_body(Filter::eq(C::ProjectId, Value::NULL));
        let expected = json!({"where": {"condition": {"field": "projectId", "operator": "eq", "value": null}}});
        assert_eq!(serde_json::to_value(&body)?, expected);
        // `None::<&str>` is null too.
        let body = where_body(Filter::neq(C::ProjectId, None::<&str>));
        assert_eq!(
            serde_json::to_value(&body)?,
            json!({"where": {"condition": {"field": "projectId", "operator": "neq", "value": null}}})
        );
        // No decode check: the generated `value: Option<serde_json::Value>` reads `null` as absent.
        Ok(())
    }

    #[test]
    fn a_float_json_cannot_hold_is_sent_as_null() -> TestResult {
        let body = where_body(Filter::gt(C::UserMessageCount, f64::NAN));
        assert_eq!(
            serde_json::to_value(&body)?,
            json!({"where": {"condition": {"field": "userMessageCount", "operator": "gt", "value": null}}})
        );
        Ok(())
    }

    #[test]
    fn a_json_path_is_sent_with_its_value() -> TestResult {
        round_trip(
            &where_body(Filter::eq(Field::user_properties(["userId"]), "u1")),
            json!({"where": {"condition": {"field": "userProperties", "operator": "eq", "value": {"path": ["userId"], "value": "u1"}}}}),
        )?;
        round_trip(
            &where_body(Filter::gte(Field::properties(["billing", "seats"]), 5)),
            json!({"where": {"condition": {"field": "properties", "operator": "gte", "value": {"path": ["billing", "seats"], "value": 5}}}}),
        )?;
        round_trip(
            &where_body(Filter::is_in(
                Field::json(C::Properties, ["plan"]),
                ["pro", "team"],
            )),
            json!({"where": {"condition": {"field": "properties", "operator": "in", "value": {"path": ["plan"], "value": ["pro", "team"]}}}}),
        )?;
        round_trip(
            &where_body(Filter::eq(Field::properties(["trial"]), Value::NULL)),
            json!({"where": {"condition": {"field": "properties", "operator": "eq", "value": {"path": ["trial"], "value": null}}}}),
        )?;
        // Operators without a value send the path alone.
        round_trip(
            &where_body(Filter::is_null(Field::user_properties(["email"]))),
            json!({"where": {"condition": {"field": "userProperties", "operator": "isNull", "value": {"path": ["email"]}}}}),
        )
    }

    #[test]
    fn and_and_or_nest_to_any_depth() -> TestResult {
        let filter = Filter::all([
            Filter::eq(C::Type, "openai"),
            Filter::any([
                Filter::gt(C::UserMessageCount, 5),
                Filter::all([
                    Filter::is_not_null(C::IntegrationId),
                    Filter::any([
                        Filter::eq(Field::properties(["plan"]), "pro"),
                        Filter::json_has_key(C::Properties, "trial"),
                    ]),
                ]),
            ]),
        ]);
        round_trip(
            &where_body(filter),
            json!({"where": {"and": [
                {"condition": {"field": "type", "operator": "eq", "value": "openai"}},
                {"or": [
                    {"condition": {"field": "userMessageCount", "operator": "gt", "value": 5}},
                    {"and": [
                        {"condition": {"field": "integrationId", "operator": "isNotNull"}},
                        {"or": [
                            {"condition": {"field": "properties", "operator": "eq", "value": {"path": ["plan"], "value": "pro"}}},
                            {"condition": {"field": "properties", "operator": "jsonHasKey", "value": "trial"}}
                        ]}
                    ]}
                ]}
            ]}}),
        )
    }

    #[test]
    fn chained_and_and_or_stay_flat() -> TestResult {
        let a = || Filter::<Conversations>::eq(C::Type, "a");
        let b = || Filter::<Conversations>::eq(C::Type, "b");
        let c = || Filter::<Conversations>::eq(C::Type, "c");
        let condition =
            |value: &str| json!({"condition": {"field": "type", "operator": "eq", "value": value}});
        round_trip(
            &where_body(a().and(b()).and(c())),
            json!({"where": {"and": [condition("a"), condition("b"), condition("c")]}}),
        )?;
        round_trip(
            &where_body(a().or(b()).or(c())),
            json!({"where": {"or": [condition("a"), condition("b"), condition("c")]}}),
        )?;
        round_trip(
            &where_body(a().and(b()).or(c())),
            json!({"where": {"or": [{"and": [condition("a"), condition("b")]}, condition("c")]}}),
        )?;
        // The right-hand side is never flattened into the left.
        round_trip(
            &where_body(a().and(Filter::all([b(), c()]))),
            json!({"where": {"and": [condition("a"), {"and": [condition("b"), condition("c")]}]}}),
        )?;
        // Filtering twice narrows.
        round_trip(
            &conversations().filter(a()).filter(b()).build(),
            json!({"where": {"and": [condition("a"), condition("b")]}}),
        )
    }

    #[test]
    fn an_empty_and_or_or_is_sent_as_is() -> TestResult {
        round_trip(&where_body(Filter::all([])), json!({"where": {"and": []}}))?;
        round_trip(&where_body(Filter::any([])), json!({"where": {"or": []}}))
    }

    #[test]
    fn aggregation_selections_with_every_function() -> TestResult {
        let functions = [
            (AggregationFunction::Sum, "sum"),
            (AggregationFunction::Count, "count"),
            (AggregationFunction::CountDistinct, "countDistinct"),
            (AggregationFunction::Avg, "avg"),
            (AggregationFunction::Min, "min"),
            (AggregationFunction::Max, "max"),
        ];
        let names: Vec<&str> = functions.iter().map(|(_, name)| *name).collect();
        assert_eq!(names, AggregationFunction::KNOWN);
        for (function, name) in functions {
            let body = conversations()
                .select(Selection::aggregate(function.clone(), C::UserMessageCount))
                .select(Selection::aggregate(
                    function.clone(),
                    Field::properties(["seats"]),
                ))
                .select(Selection::aggregate_rows(function))
                .build();
            round_trip(
                &body,
                json!({"select": [
                    {"type": "aggregation", "aggregation": name, "field": "userMessageCount"},
                    {"type": "aggregation", "aggregation": name, "field": "properties", "path": ["seats"]},
                    {"type": "aggregation", "aggregation": name}
                ]}),
            )?;
        }
        round_trip(
            &events().select(Selection::count()).build(),
            json!({"select": [{"type": "aggregation", "aggregation": "count"}]}),
        )
    }

    #[test]
    fn time_selections_with_every_unit() -> TestResult {
        let units = [
            (TimeUnit::Hour, "hour"),
            (TimeUnit::Day, "day"),
            (TimeUnit::Week, "week"),
            (TimeUnit::Month, "month"),
        ];
        let names: Vec<&str> = units.iter().map(|(_, name)| *name).collect();
        assert_eq!(names, TimeUnit::KNOWN);
        for (unit, name) in units {
            let body = events()
                .select(Selection::time_of(E::CreatedAt, unit.clone()))
                .select(Selection::time(unit))
                .build();
            round_trip(
                &body,
                json!({"select": [
                    {"type": "time", "timeUnit": name, "field": "createdAt"},
                    {"type": "time", "timeUnit": name}
                ]}),
            )?;
        }
        Ok(())
    }

    #[test]
    fn field_selections_with_path_and_mode() -> TestResult {
        assert_eq!(FieldMode::KNOWN, ["unpack", "json"]);
        let body = feedback()
            .select(FeedbackViewField::Type)
            .select(Selection::field(FeedbackViewField::Reasons))
            .select(Selection::field(Field::user_properties(["userId"])))
            .select(Selection::field_as(
                FeedbackViewField::Properties,
                FieldMode::Unpack,
            ))
            .select(Selection::field_as(
                Field::properties(["context", "page"]),
                FieldMode::Json,
            ))
            .select(Field::properties(["source"]))
            .build();
        round_trip(
            &body,
            json!({"select": [
                {"type": "field", "field": "type"},
                {"type": "field", "field": "reasons"},
                {"type": "field", "field": "userProperties", "path": ["userId"]},
                {"type": "field", "field": "properties", "mode": "unpack"},
                {"type": "field", "field": "properties", "path": ["context", "page"], "mode": "json"},
                {"type": "field", "field": "properties", "path": ["source"]}
            ]}),
        )
    }

    #[test]
    fn group_by_with_path_and_include_in_select() -> TestResult {
        let body = conversations()
            .select(Selection::count())
            .group_by(C::Type)
            .group_by(GroupBy::new(Field::properties(["plan"])).include_in_select(true))
            .group_by(GroupBy::new(C::ProjectId).include_in_select(false))
            .group_by(Field::user_properties(["userType"]))
            .build();
        round_trip(
            &body,
            json!({
                "select": [{"type": "aggregation", "aggregation": "count"}],
                "groupBy": [
                    {"field": "type"},
                    {"field": "properties", "path": ["plan"], "includeInSelect": true},
                    {"field": "projectId", "includeInSelect": false},
                    {"field": "userProperties", "path": ["userType"]}
                ]
            }),
        )
    }

    #[test]
    fn order_by_fields_time_buckets_and_aggregates() -> TestResult {
        let body = events()
            .order_by(OrderBy::asc(E::CreatedAt))
            .order_by(OrderBy::desc(E::EventType))
            .order_by(Column::time_bucket(E::CreatedAt, TimeUnit::Day).desc())
            .order_by(Column::time_bucket(E::CreatedAt, TimeUnit::Month).asc())
            .order_by(Column::aggregate(AggregationFunction::Count, E::Id).desc())
            .order_by(OrderBy::new(
                Column::aggregate(AggregationFunction::Sum, Field::properties(["userId"])),
                SortDirection::Asc,
            ))
            .order_by(Column::aggregate_rows(AggregationFunction::Count).desc())
            .order_by(Column::raw("avg_latency").asc())
            .build();
        round_trip(
            &body,
            json!({"orderBy": [
                {"field": "createdAt", "direction": "asc"},
                {"field": "eventType", "direction": "desc"},
                {"field": "createdAt_day", "direction": "desc"},
                {"field": "createdAt_month", "direction": "asc"},
                {"field": "count_id", "direction": "desc"},
                {"field": "sum_properties.userId", "direction": "asc"},
                {"field": "count", "direction": "desc"},
                {"field": "avg_latency", "direction": "asc"}
            ]}),
        )
    }

    #[test]
    fn notes_up_to_the_limit_are_sent() -> TestResult {
        // The limit counts characters, not bytes.
        let notes = "é".repeat(80);
        let body = conversations().notes(notes.as_str())?.build();
        round_trip(&body, json!({"notes": notes}))?;
        let body = semantic_threads().notes("weekly report")?.build();
        round_trip(&body, json!({"notes": "weekly report"}))
    }

    #[test]
    fn notes_over_the_limit_are_refused_before_any_request() {
        let refused = events().notes("x".repeat(81));
        match refused {
            Err(Error::InvalidInput { reason }) => {
                assert!(reason.contains("81 characters"), "{reason}");
                assert!(reason.contains("longer than 80 characters"), "{reason}");
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
        assert!(matches!(
            feedback().notes("é".repeat(81)),
            Err(Error::InvalidInput { .. })
        ));
        assert!(matches!(
            conversations().notes("n".repeat(500)),
            Err(Error::InvalidInput { .. })
        ));
    }

    #[test]
    fn a_semantic_threads_query_carries_its_search() -> TestResult {
        let body = semantic_threads()
            .search("how do I rotate an API key")
            .select(S::Subject)
            .select(Selection::aggregate(AggregationFunction::Count, S::Id))
            .group_by(S::Subject)
            .filter(
                Filter::eq(S::IsDocumented, false)
                    .and(Filter::array_contains(S::Languages, "rust")),
            )
            .order_by(Column::aggregate(AggregationFunction::Count, S::Id).desc())
            .notes("docs gaps")?
            .build();
        round_trip(
            &body,
            json!({
                "query": "how do I rotate an API key",
                "select": [
                    {"type": "field", "field": "subject"},
                    {"type": "aggregation", "aggregation": "count", "field": "id"}
                ],
                "groupBy": [{"field": "subject"}],
                "where": {"and": [
                    {"condition": {"field": "isDocumented", "operator": "eq", "value": false}},
                    {"condition": {"field": "languages", "operator": "arrayContains", "value": "rust"}}
                ]},
                "orderBy": [{"field": "count_id", "direction": "desc"}],
                "notes": "docs gaps"
            }),
        )
    }

    #[test]
    fn a_full_query_converts_into_its_view_body() -> TestResult {
        let query = conversations()
            .select(Selection::time_of(C::FirstMessageTime, TimeUnit::Week))
            .select(Selection::aggregate(
                AggregationFunction::Avg,
                C::UserMessageCount,
            ))
            .filter(Filter::eq(C::Type, "openai"))
            .order_by(Column::time_bucket(C::FirstMessageTime, TimeUnit::Week).asc());
        let expected = json!({
            "select": [
                {"type": "time", "timeUnit": "week", "field": "firstMessageTime"},
                {"type": "aggregation", "aggregation": "avg", "field": "userMessageCount"}
            ],
            "where": {"condition": {"field": "type", "operator": "eq", "value": "openai"}},
            "orderBy": [{"field": "firstMessageTime_week", "direction": "asc"}]
        });
        let via_from = types::QueryConversationsBody::from(query.clone());
        let via_into: types::QueryConversationsBody = query.clone().into();
        assert_eq!(via_from, via_into);
        assert_eq!(
            query.filter_ref().map(Filter::as_generated),
            via_from.where_.as_ref()
        );
        round_trip(&query.build(), expected)
    }

    #[test]
    fn generated_parts_pass_through_unchanged() -> TestResult {
        let raw_selection: types::Selection = serde_json::from_value(
            json!({"type": "percentile", "field": "userMessageCount", "p": 0.9}),
        )?;
        let raw_filter: types::Filter = serde_json::from_value(
            json!({"condition": {"field": "type", "operator": "eq", "value": "openai"}}),
        )?;
        let body = conversations()
            .select(Selection::from_generated(raw_selection))
            .filter(Filter::from_generated(raw_filter))
            .build();
        round_trip(
            &body,
            json!({
                "select": [{"type": "percentile", "field": "userMessageCount", "p": 0.9}],
                "where": {"condition": {"field": "type", "operator": "eq", "value": "openai"}}
            }),
        )
    }

    #[test]
    fn a_field_newer_than_the_spec_is_sent_as_given() -> TestResult {
        round_trip(
            &where_body(Filter::eq(C::Other("sentimentScore".to_string()), 0.5)),
            json!({"where": {"condition": {"field": "sentimentScore", "operator": "eq", "value": 0.5}}}),
        )
    }

    #[test]
    fn property_requests() -> TestResult {
        round_trip(
            &property_keys(PropertyField::Properties),
            json!({"field": "properties"}),
        )?;
        round_trip(
            &property_keys_in(
                PropertyField::UserProperties,
                Some(Filter::eq(E::EventType, "search")),
            ),
            json!({
                "field": "userProperties",
                "views": ["events_view"],
                "where": {"condition": {"field": "eventType", "operator": "eq", "value": "search"}}
            }),
        )?;
        round_trip(
            &property_keys_in::<SemanticThreads>(PropertyField::Properties, None),
            json!({"field": "properties", "views": ["semantic_threads_view"]}),
        )?;
        round_trip(
            &property_values(PropertyField::Properties, "plan"),
            json!({"field": "properties", "key": "plan", "limit": 100}),
        )?;
        let mut request = property_values_in(
            PropertyField::UserProperties,
            "userType",
            Some(Filter::eq(FeedbackViewField::Type, "negative")),
        );
        request.limit = NonZeroU64::MIN;
        round_trip(
            &request,
            json!({
                "field": "userProperties",
                "key": "userType",
                "limit": 1,
                "views": ["feedback_view"],
                "where": {"condition": {"field": "type", "operator": "eq", "value": "negative"}}
            }),
        )?;
        assert_eq!(
            property_keys_in::<Conversations>(PropertyField::Properties, None).views,
            [types::View::ConversationsView]
        );
        Ok(())
    }

    #[test]
    fn column_names() {
        assert_eq!(
            Column::field(C::UserMessageCount).as_str(),
            "userMessageCount"
        );
        assert_eq!(
            Column::time_bucket(S::FirstMessageTime, TimeUnit::Hour).to_string(),
            "firstMessageTime_hour"
        );
        assert_eq!(
            Column::aggregate(
                AggregationFunction::CountDistinct,
                FeedbackViewField::MessageId
            )
            .as_ref(),
            "countDistinct_messageId"
        );
        assert_eq!(
            Column::aggregate(
                AggregationFunction::Max,
                Field::<Events>::properties(["a", "b"])
            )
            .as_str(),
            "max_properties.a.b"
        );
        assert_eq!(
            Column::<Events>::from(E::SearchQuery).as_str(),
            "searchQuery"
        );
    }

    fn row(value: serde_json::Value) -> std::result::Result<types::QueryRow, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn row_accessors_read_numbers_and_numeric_strings() -> TestResult {
        let row = row(json!({
            "count_id": "42",
            "sum_userMessageCount": 17,
            "avg_userMessageCount": 2.5,
            "max_userMessageCount": 3.0,
            "negative": -4,
            "negative_text": " -4 ",
            "float_text": "1.25",
            "big": 18_446_744_073_709_551_615_u64,
            "createdAt_day": "2025-01-01T00:00:00.000Z",
            "flag": true,
            "flag_text": "false",
            "flag_number": 1,
            "nothing": null,
            "tags": ["a", "b"],
            "nan_text": "NaN"
        }))?;
        assert_eq!(row.get_u64("count_id"), Some(42));
        assert_eq!(row.get_i64("count_id"), Some(42));
        assert_eq!(row.get_f64("count_id"), Some(42.0));
        assert_eq!(row.get_u64("sum_userMessageCount"), Some(17));
        assert_eq!(row.get_f64("avg_userMessageCount"), Some(2.5));
        assert_eq!(
            row.get_u64("avg_userMessageCount"),
            None,
            "2.5 is not an integer"
        );
        assert_eq!(row.get_u64("max_userMessageCount"), Some(3));
        assert_eq!(row.get_i64("max_userMessageCount"), Some(3));
        assert_eq!(row.get_i64("negative"), Some(-4));
        assert_eq!(row.get_u64("negative"), None);
        assert_eq!(row.get_i64("negative_text"), Some(-4));
        assert_eq!(row.get_f64("float_text"), Some(1.25));
        assert_eq!(row.get_i64("float_text"), None);
        assert_eq!(row.get_u64("big"), Some(u64::MAX));
        assert_eq!(row.get_i64("big"), None);
        assert_eq!(row.get_f64("nan_text"), None);
        assert_eq!(
            row.get_str("createdAt_day"),
            Some("2025-01-01T00:00:00.000Z")
        );
        assert_eq!(row.get_str("count_id"), Some("42"));
        assert_eq!(row.get_str("sum_userMessageCount"), None);
        assert_eq!(row.get_u64("createdAt_day"), None);
        assert_eq!(row.get_bool("flag"), Some(true));
        assert_eq!(row.get_bool("flag_text"), Some(false));
        assert_eq!(row.get_bool("flag_number"), Some(true));
        assert_eq!(row.get_bool("count_id"), None);
        assert_eq!(row.get_u64("nothing"), None);
        assert_eq!(row.get_str("missing"), None);
        // `Map::get` still gives the raw JSON.
        assert_eq!(row.get("tags"), Some(&json!(["a", "b"])));
        Ok(())
    }

    #[test]
    fn row_keys_from_columns() -> TestResult {
        let row = row(json!({"firstMessageTime_day": "2025-01-01", "count_id": "9", "count": 3}))?;
        let day = Column::time_bucket(C::FirstMessageTime, TimeUnit::Day);
        assert_eq!(row.get_str(&day), Some("2025-01-01"));
        assert_eq!(
            row.get_u64(Column::aggregate(AggregationFunction::Count, C::Id)),
            Some(9)
        );
        assert_eq!(
            row.get_u64(Column::<Conversations>::aggregate_rows(
                AggregationFunction::Count
            )),
            Some(3)
        );
        Ok(())
    }

    #[test]
    fn row_values_decode_into_any_type() -> TestResult {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Reason {
            label: String,
        }
        let row = row(json!({
            "reasons": [{"label": "accurate"}],
            "tags": ["a", "b"],
            "nothing": null,
            "count": "x"
        }))?;
        assert_eq!(
            row.get_as::<Vec<Reason>>("reasons")?,
            Some(vec![Reason {
                label: "accurate".to_string()
            }])
        );
        assert_eq!(
            row.get_as::<Vec<String>>("tags")?,
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(row.get_as::<String>("nothing")?, None);
        assert_eq!(row.get_as::<String>("missing")?, None);
        assert!(row.get_as::<u64>("count").is_err());
        Ok(())
    }

    #[test]
    fn a_query_response_gives_its_rows() -> TestResult {
        let response: types::QueryResponse = serde_json::from_value(json!({
            "status": "ok",
            "data": {
                "result": [{"type": "openai", "count": "2"}, {"type": "support_ticket", "count": "1"}],
                "total": 2,
                "pageSize": 2,
                "count": 2
            }
        }))?;
        let counts: Vec<(Option<&str>, Option<u64>)> = response
            .rows()
            .iter()
            .map(|row| (row.get_str("type"), row.get_u64("count")))
            .collect();
        assert_eq!(
            counts,
            [(Some("openai"), Some(2)), (Some("support_ticket"), Some(1))]
        );
        assert_eq!(response.into_rows().len(), 2);
        Ok(())
    }

    #[test]
    fn search_statistics_parse_their_string_counts() -> TestResult {
        let count: types::SearchQueryCount =
            serde_json::from_value(json!({"search_query": "api key", "count": "12"}))?;
        assert_eq!(count.count_u64()?, 12);
        let users: types::WeeklySearchUsers =
            serde_json::from_value(json!({"week": "2025-01-06", "unique_users": "7"}))?;
        assert_eq!(users.unique_users_u64()?, 7);
        let bad: types::WeeklySearchUsers =
            serde_json::from_value(json!({"week": "2025-01-06", "unique_users": "seven"}))?;
        assert!(bad.unique_users_u64().is_err());
        Ok(())
    }

    #[test]
    fn each_view_names_itself_for_property_look_ups() {
        assert_eq!(Conversations::view(), types::View::ConversationsView);
        assert_eq!(Events::view(), types::View::EventsView);
        assert_eq!(Feedback::view(), types::View::FeedbackView);
        assert_eq!(SemanticThreads::view(), types::View::SemanticThreadsView);
    }
}
