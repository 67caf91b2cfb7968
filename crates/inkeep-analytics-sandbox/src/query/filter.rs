//! Filters: a `where` compiled against a view (fields, operators and the values they need), then
//! matched against rows.

use std::cmp::Ordering;

use inkeep_analytics::types;
use serde_json::Value;

use super::fields::{Target, target};
use super::values::{contains, has_key, loose_cmp, loose_eq, number_of, parse_instant};
use crate::ingest::list;
use crate::problem::Problem;
use crate::views::{FieldKind, Row, View};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operator {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    NotIn,
    ArrayContains,
    JsonContains,
    JsonContainedBy,
    JsonHasKey,
    JsonArrayContainsObject,
    JsonHasAnyKey,
    JsonHasAllKeys,
    IsNull,
    IsNotNull,
}

impl Operator {
    fn from_generated(operator: &types::FilterOperator, location: &str) -> Result<Self, Problem> {
        use types::FilterOperator as F;
        Ok(match operator {
            F::Eq => Operator::Eq,
            F::Neq => Operator::Neq,
            F::Gt => Operator::Gt,
            F::Gte => Operator::Gte,
            F::Lt => Operator::Lt,
            F::Lte => Operator::Lte,
            F::In => Operator::In,
            F::NotIn => Operator::NotIn,
            F::ArrayContains => Operator::ArrayContains,
            F::JsonContains => Operator::JsonContains,
            F::JsonContainedBy => Operator::JsonContainedBy,
            F::JsonHasKey => Operator::JsonHasKey,
            F::JsonArrayContainsObject => Operator::JsonArrayContainsObject,
            F::JsonHasAnyKey => Operator::JsonHasAnyKey,
            F::JsonHasAllKeys => Operator::JsonHasAllKeys,
            F::IsNull => Operator::IsNull,
            F::IsNotNull => Operator::IsNotNull,
            F::Other(name) => {
                return Err(Problem::unprocessable(format!(
                    "{location}.operator: `{name}` is not a supported operator; the operators are {}",
                    list(types::FilterOperator::KNOWN)
                )));
            }
        })
    }
}

/// A filter compiled against a view.
#[derive(Debug)]
pub(crate) enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Condition {
        target: Target,
        operator: Operator,
        value: Value,
    },
}

/// `{path, value}`: a condition on a path inside a JSON field.
fn split_path_value(value: Option<&Value>) -> Option<(Vec<String>, Option<Value>)> {
    let map = value?.as_object()?;
    let path = map.get("path")?.as_array()?;
    if map.keys().any(|key| key != "path" && key != "value") {
        return None;
    }
    let path = path
        .iter()
        .map(|segment| segment.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()?;
    Some((path, map.get("value").cloned()))
}

fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Whether `value` can be ordered against a whole field of `kind`.
fn fits_in_order(kind: Option<FieldKind>, value: &Value) -> bool {
    match kind {
        Some(FieldKind::Number) => number_of(value).is_some(),
        Some(FieldKind::DateTime) => value.as_str().and_then(parse_instant).is_some(),
        Some(FieldKind::Boolean) => value.is_boolean(),
        Some(FieldKind::Text | FieldKind::Json) | None => true,
    }
}

fn compile_condition(
    view: View,
    condition: &types::Condition,
    location: &str,
) -> Result<Filter, Problem> {
    let operator = Operator::from_generated(&condition.operator, location)?;
    let (path, value) = match split_path_value(condition.value.as_ref()) {
        Some((path, value)) => (path, value),
        None => (Vec::new(), condition.value.clone()),
    };
    let target = target(view, &condition.field, &path, &format!("{location}.field"))?;
    let value = value.unwrap_or(Value::Null);
    let kind = target.whole_field().and_then(|field| view.kind(field));
    let name = condition.operator.as_str();
    let refuse = |what: &str| {
        Err(Problem::unprocessable(format!(
            "{location}.value: `{name}` needs {what}"
        )))
    };
    let value = match operator {
        Operator::IsNull | Operator::IsNotNull | Operator::Eq | Operator::Neq => value,
        Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte if !is_scalar(&value) => {
            return refuse("a number, a string or a date-time");
        }
        // An order with a whole field needs a value of its kind: any other never compares.
        Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte
            if !fits_in_order(kind, &value) =>
        {
            let field = &condition.field;
            return refuse(&match kind {
                Some(FieldKind::Number) => format!("a number to compare with `{field}`"),
                Some(FieldKind::DateTime) => {
                    format!(
                        "a date-time (2025-01-31 or 2025-01-31T00:00:00Z) to compare with `{field}`"
                    )
                }
                _ => format!("`true` or `false` to compare with `{field}`"),
            });
        }
        Operator::In | Operator::NotIn if !value.is_array() => {
            return refuse("an array of values");
        }
        Operator::JsonHasKey if !value.is_string() => return refuse("a key (a string)"),
        Operator::JsonHasAnyKey | Operator::JsonHasAllKeys => match value {
            Value::String(key) => Value::Array(vec![Value::String(key)]),
            Value::Array(keys) if keys.iter().all(Value::is_string) => Value::Array(keys),
            _ => return refuse("an array of keys (strings)"),
        },
        Operator::JsonArrayContainsObject if !value.is_object() => {
            return refuse("an object");
        }
        Operator::ArrayContains | Operator::JsonContains | Operator::JsonContainedBy
            if value.is_null() =>
        {
            return refuse("a value");
        }
        _ => value,
    };
    Ok(Filter::Condition {
        target,
        operator,
        value,
    })
}

pub(crate) fn compile(
    view: View,
    filter: &types::Filter,
    location: &str,
) -> Result<Filter, Problem> {
    Ok(match filter {
        types::Filter::And(and) => Filter::All(
            and.and
                .iter()
                .enumerate()
                .map(|(i, f)| compile(view, f, &format!("{location}.and[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        types::Filter::Or(or) => Filter::Any(
            or.or
                .iter()
                .enumerate()
                .map(|(i, f)| compile(view, f, &format!("{location}.or[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        types::Filter::Condition(condition) => {
            compile_condition(view, &condition.condition, &format!("{location}.condition"))?
        }
    })
}

impl Filter {
    pub(crate) fn matches(&self, row: &Row) -> bool {
        match self {
            Filter::All(filters) => filters.iter().all(|f| f.matches(row)),
            Filter::Any(filters) => filters.iter().any(|f| f.matches(row)),
            Filter::Condition {
                target,
                operator,
                value,
            } => evaluate(*operator, target.get(row), value),
        }
    }
}

/// Null (or a missing key) equals null and nothing else, and is never greater or smaller than
/// anything: `neq` and `notIn` match a null field, `gt` and its siblings do not.
fn equal(left: Option<&Value>, right: &Value) -> bool {
    match left {
        None => right.is_null(),
        Some(left) => !right.is_null() && loose_eq(left, right),
    }
}

fn evaluate(operator: Operator, left: Option<&Value>, right: &Value) -> bool {
    let ordered = |accept: fn(Ordering) -> bool| {
        left.and_then(|left| loose_cmp(left, right))
            .is_some_and(accept)
    };
    let is_in = || {
        right
            .as_array()
            .is_some_and(|items| items.iter().any(|item| equal(left, item)))
    };
    let keys = || {
        right
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    };
    match operator {
        Operator::IsNull => left.is_none(),
        Operator::IsNotNull => left.is_some(),
        Operator::Eq => equal(left, right),
        Operator::Neq => !equal(left, right),
        Operator::Gt => ordered(Ordering::is_gt),
        Operator::Gte => ordered(Ordering::is_ge),
        Operator::Lt => ordered(Ordering::is_lt),
        Operator::Lte => ordered(Ordering::is_le),
        Operator::In => is_in(),
        Operator::NotIn => !is_in(),
        Operator::ArrayContains => match (left, right) {
            (Some(Value::Array(items)), Value::Array(wanted)) => wanted
                .iter()
                .all(|w| items.iter().any(|item| loose_eq(item, w))),
            (Some(Value::Array(items)), wanted) => items.iter().any(|item| loose_eq(item, wanted)),
            _ => false,
        },
        Operator::JsonContains => left.is_some_and(|left| contains(left, right)),
        Operator::JsonContainedBy => left.is_some_and(|left| contains(right, left)),
        Operator::JsonHasKey => {
            left.is_some_and(|left| right.as_str().is_some_and(|key| has_key(left, key)))
        }
        Operator::JsonHasAnyKey => left.is_some_and(|left| keys().any(|key| has_key(left, key))),
        Operator::JsonHasAllKeys => left.is_some_and(|left| keys().all(|key| has_key(left, key))),
        Operator::JsonArrayContainsObject => match left {
            Some(Value::Array(items)) => items
                .iter()
                .any(|item| item.is_object() && contains(item, right)),
            _ => false,
        },
    }
}
