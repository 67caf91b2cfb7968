//! What a query returns and how it is arranged: selections, groupings, the columns they produce and the sort keys that name those columns.

use std::fmt;
use std::marker::PhantomData;

use serde_json::Map;

use super::{Field, IntoField, ViewField, ViewKind};
use crate::types;

/// What a query returns per row over view `V`: an aggregation, a time bucket or a field.
///
/// A field of the view converts into a field selection, so `query.select(F::Type)` works.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection<V: ViewKind> {
    pub(super) inner: types::Selection,
    view: PhantomData<fn() -> V>,
}

impl<V: ViewKind> Selection<V> {
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

    /// The column this selection adds to each result row, named as the API names it; `None` for
    /// a kind of selection newer than the spec.
    ///
    /// A time bucket without a field is the bucket of the view's default time field.
    ///
    /// ```
    /// use inkeep_analytics::query::{Column, Field, Selection};
    /// use inkeep_analytics::types::{AggregationFunction, ConversationsViewField as F, TimeUnit};
    ///
    /// let selections = [
    ///     Selection::aggregate(AggregationFunction::Count, Field::properties(["plan"])),
    ///     Selection::field(F::Type),
    ///     Selection::time(TimeUnit::Month),
    /// ];
    /// let columns: Vec<String> = selections
    ///     .iter()
    ///     .filter_map(|selection| selection.column().map(|column| column.to_string()))
    ///     .collect();
    /// assert_eq!(columns, ["count_properties.plan", "type", "firstMessageTime_month"]);
    /// ```
    pub fn column(&self) -> Option<Column<V>> {
        let name = match &self.inner {
            types::Selection::Aggregation(aggregation) => {
                let function = aggregation.aggregation.as_str();
                match &aggregation.field {
                    Some(field) => {
                        let field = Field::<V>::named(field);
                        format!(
                            "{function}_{}",
                            dotted(&Field::json(field, aggregation.path.iter().cloned()))
                        )
                    }
                    None => function.to_string(),
                }
            }
            types::Selection::Time(time) => {
                let field = time
                    .field
                    .clone()
                    .unwrap_or_else(|| V::DEFAULT_TIME_FIELD.wire_name().to_string());
                format!("{field}_{}", time.time_unit.as_str())
            }
            types::Selection::Field(field) => dotted(&Field::<V>::json(
                Field::named(&field.field),
                field.path.iter().cloned(),
            )),
            _ => return None,
        };
        Some(Column::named(name))
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

impl<V: ViewKind> From<Field<V>> for Selection<V> {
    fn from(field: Field<V>) -> Self {
        Selection::field(field)
    }
}

impl<V: ViewKind> From<Selection<V>> for types::Selection {
    fn from(selection: Selection<V>) -> Self {
        selection.inner
    }
}

/// A field of view `V` to group rows by, or a JSON path inside one.
///
/// A field of the view converts into one, so `query.group_by(F::Type)` works.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupBy<V: ViewKind> {
    pub(super) inner: types::GroupBy,
    view: PhantomData<fn() -> V>,
}

impl<V: ViewKind> GroupBy<V> {
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

impl<V: ViewKind> From<Field<V>> for GroupBy<V> {
    fn from(field: Field<V>) -> Self {
        GroupBy::new(field)
    }
}

impl<V: ViewKind> From<GroupBy<V>> for types::GroupBy {
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
/// use inkeep_analytics::query::{Column, EventsView, Field};
/// use inkeep_analytics::types::{AggregationFunction, EventsViewField as F, TimeUnit};
///
/// assert_eq!(Column::time_bucket(F::CreatedAt, TimeUnit::Day).as_str(), "createdAt_day");
/// assert_eq!(Column::aggregate(AggregationFunction::Count, F::Id).as_str(), "count_id");
/// assert_eq!(
///     Column::aggregate(AggregationFunction::Sum, Field::<EventsView>::properties(["userId"])).as_str(),
///     "sum_properties.userId"
/// );
/// assert_eq!(Column::<EventsView>::aggregate_rows(AggregationFunction::Count).as_str(), "count");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Column<V: ViewKind> {
    name: String,
    view: PhantomData<fn() -> V>,
}

impl<V: ViewKind> Column<V> {
    fn named(name: String) -> Self {
        Column {
            name,
            view: PhantomData,
        }
    }

    /// A field of the view, under its own name; a JSON path is appended with dots
    /// (`properties.plan`), as [`Selection::field`] selects it.
    pub fn field(field: impl IntoField<View = V>) -> Self {
        Column::named(dotted(&field.into_field()))
    }

    /// The time bucket of the view's default time field ([`ViewKind::DEFAULT_TIME_FIELD`]), as
    /// [`Selection::time`] selects it: `firstMessageTime_month` for conversations, say.
    pub fn time(unit: types::TimeUnit) -> Self {
        Column::time_bucket(V::DEFAULT_TIME_FIELD, unit)
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
        Column::named(format!(
            "{}_{}",
            function.as_str(),
            dotted(&field.into_field())
        ))
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

/// A field's name with its JSON path appended with dots, as result rows name it.
fn dotted<V: ViewKind>(field: &Field<V>) -> String {
    let mut name = field.name.clone();
    for segment in &field.path {
        name.push('.');
        name.push_str(segment);
    }
    name
}

impl<V: ViewKind> AsRef<str> for Column<V> {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl<V: ViewKind> fmt::Display for Column<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A sort key of a query over view `V`: a [`Column`] and a direction.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderBy<V: ViewKind> {
    pub(super) inner: types::OrderBy,
    view: PhantomData<fn() -> V>,
}

impl<V: ViewKind> OrderBy<V> {
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

impl<V: ViewKind> From<OrderBy<V>> for types::OrderBy {
    fn from(order_by: OrderBy<V>) -> Self {
        order_by.inner
    }
}
