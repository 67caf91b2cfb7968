//! Filters: one constructor per operator of the API, joined with `and` and `or`.

use std::marker::PhantomData;

use serde_json::Map;

use super::{Field, IntoField, Operand, Scalar, ViewKind};
use crate::types;

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
pub struct Filter<V: ViewKind> {
    pub(super) inner: types::Filter,
    view: PhantomData<fn() -> V>,
}

impl<V: ViewKind> Filter<V> {
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
        value: Option<Operand>,
    ) -> Self {
        let Field { name, path, .. } = field.into_field();
        let value = if path.is_empty() {
            value.map(Operand::into_json)
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
    pub fn eq(field: impl IntoField<View = V>, value: impl Into<Operand>) -> Self {
        Filter::condition(field, types::FilterOperator::Eq, Some(value.into()))
    }

    /// `neq`: the field differs from `value`.
    pub fn neq(field: impl IntoField<View = V>, value: impl Into<Operand>) -> Self {
        Filter::condition(field, types::FilterOperator::Neq, Some(value.into()))
    }

    /// `gt`: the field is greater than `value`.
    pub fn gt(field: impl IntoField<View = V>, value: impl Into<Operand>) -> Self {
        Filter::condition(field, types::FilterOperator::Gt, Some(value.into()))
    }

    /// `gte`: the field is greater than or equal to `value`.
    pub fn gte(field: impl IntoField<View = V>, value: impl Into<Operand>) -> Self {
        Filter::condition(field, types::FilterOperator::Gte, Some(value.into()))
    }

    /// `lt`: the field is less than `value`.
    pub fn lt(field: impl IntoField<View = V>, value: impl Into<Operand>) -> Self {
        Filter::condition(field, types::FilterOperator::Lt, Some(value.into()))
    }

    /// `lte`: the field is less than or equal to `value`.
    pub fn lte(field: impl IntoField<View = V>, value: impl Into<Operand>) -> Self {
        Filter::condition(field, types::FilterOperator::Lte, Some(value.into()))
    }

    /// `in`: the field is one of `values` (`None` items are sent as `null`).
    pub fn is_in<I>(field: impl IntoField<View = V>, values: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Scalar>,
    {
        Filter::condition(
            field,
            types::FilterOperator::In,
            Some(Operand::list(values)),
        )
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
            Some(Operand::list(values)),
        )
    }

    /// `arrayContains`: the field, an array, contains `value`.
    pub fn array_contains(field: impl IntoField<View = V>, value: impl Into<Operand>) -> Self {
        Filter::condition(
            field,
            types::FilterOperator::ArrayContains,
            Some(value.into()),
        )
    }

    /// `jsonContains`: the field, JSON, contains `value` (typically an object).
    pub fn json_contains(field: impl IntoField<View = V>, value: impl Into<Operand>) -> Self {
        Filter::condition(
            field,
            types::FilterOperator::JsonContains,
            Some(value.into()),
        )
    }

    /// `jsonContainedBy`: the field, JSON, is contained in `value`.
    pub fn json_contained_by(field: impl IntoField<View = V>, value: impl Into<Operand>) -> Self {
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
            Some(Operand::Scalar(Scalar::String(key.into()))),
        )
    }

    /// `jsonArrayContainsObject`: the field, a JSON array, contains the object `value`.
    pub fn json_array_contains_object(
        field: impl IntoField<View = V>,
        value: impl Into<Operand>,
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

fn keys_value<I>(keys: I) -> Operand
where
    I: IntoIterator,
    I::Item: Into<String>,
{
    Operand::List(
        keys.into_iter()
            .map(|key| Scalar::String(key.into()))
            .collect(),
    )
}

impl<V: ViewKind> From<Filter<V>> for types::Filter {
    fn from(filter: Filter<V>) -> Self {
        filter.inner
    }
}
