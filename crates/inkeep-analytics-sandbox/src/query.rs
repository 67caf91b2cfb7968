//! The query language over the views: filters with every operator, field, time-bucket and
//! aggregate selections, grouping, ordering, and the CSV form of a result.
//!
//! A query is first compiled against its view, so that an unknown field, an unsupported operator
//! or a value of the wrong shape is refused with a `422` that names the part of the body at
//! fault, before any row is read.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use inkeep_analytics::types;
use serde_json::{Number, Value};

use crate::ingest::list;
use crate::problem::Problem;
use crate::records::timestamp;
use crate::views::{Row, View};

/// The most rows the JSON answer of a query carries; `total` counts them all, and the CSV export
/// has every one of them.
pub(crate) const QUERY_PAGE_SIZE: usize = 1_000;

/// The parts of a query body that every view shares.
pub(crate) struct QuerySpec {
    pub select: Vec<types::Selection>,
    pub group_by: Vec<types::GroupBy>,
    pub filter: Option<types::Filter>,
    pub order_by: Vec<types::OrderBy>,
    /// The semantic search of the semantic threads view.
    pub search: Option<String>,
}

macro_rules! spec_from {
    ($($body:ty),*) => {$(
        impl From<$body> for QuerySpec {
            fn from(body: $body) -> Self {
                QuerySpec {
                    select: body.select,
                    group_by: body.group_by,
                    filter: body.where_,
                    order_by: body.order_by,
                    search: None,
                }
            }
        }
    )*};
}

spec_from!(
    types::QueryConversationsBody,
    types::QueryEventsBody,
    types::QueryFeedbackBody
);

impl From<types::QuerySemanticThreadsBody> for QuerySpec {
    fn from(body: types::QuerySemanticThreadsBody) -> Self {
        QuerySpec {
            select: body.select,
            group_by: body.group_by,
            filter: body.where_,
            order_by: body.order_by,
            search: body.query,
        }
    }
}

/// The result of a query: rows, and the columns in order (for CSV).
pub(crate) struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

// Values: equality, ordering and containment as the operators need them.

/// A date-time in any of the forms a filter value may take: RFC 3339, without an offset (UTC),
/// with a space instead of `T`, or a bare date (midnight UTC).
pub(crate) fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    if bytes.len() < 10 || !bytes[..4].iter().all(u8::is_ascii_digit) || bytes[4] != b'-' {
        return None;
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(Utc.from_utc_datetime(&at));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|at| Utc.from_utc_datetime(&at))
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// Equality as a filter means it: numbers by value (`"42"` equals `42`), date-times by instant,
/// everything else exactly.
fn loose_eq(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Number(_), Value::String(_)) | (Value::String(_), Value::Number(_)) => {
            number_of(a).is_some() && number_of(a) == number_of(b)
        }
        (Value::Bool(x), Value::String(s)) | (Value::String(s), Value::Bool(x)) => {
            s == if *x { "true" } else { "false" }
        }
        (Value::String(x), Value::String(y)) => match (parse_instant(x), parse_instant(y)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        _ => false,
    }
}

/// Order as `gt`, `gte`, `lt` and `lte` mean it; `None` when the values do not compare.
fn loose_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => match (parse_instant(x), parse_instant(y)) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => Some(x.cmp(y)),
        },
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => number_of(a)?.partial_cmp(&number_of(b)?),
    }
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// JSON containment, as PostgreSQL's `@>`: objects contain objects key by key, arrays contain
/// every element of the other array, an array contains a scalar it has as an element.
fn contains(container: &Value, contained: &Value) -> bool {
    match (container, contained) {
        (Value::Object(a), Value::Object(b)) => b
            .iter()
            .all(|(key, vb)| a.get(key).is_some_and(|va| contains(va, vb))),
        (Value::Array(a), Value::Array(b)) => {
            b.iter().all(|vb| a.iter().any(|va| contains(va, vb)))
        }
        (Value::Array(a), b) if !b.is_object() => a.iter().any(|va| scalar_eq(va, b)),
        (Value::Object(_) | Value::Array(_), _) | (_, Value::Object(_) | Value::Array(_)) => false,
        (a, b) => scalar_eq(a, b),
    }
}

fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.contains_key(key),
        Value::Array(items) => items.iter().any(|item| item.as_str() == Some(key)),
        _ => false,
    }
}

/// A total order over JSON values, for sorting and for `min` and `max`: booleans, then numbers,
/// then date-times, then other strings, then arrays and objects (by their JSON text).
#[derive(Debug, PartialEq)]
enum SortValue {
    Bool(bool),
    Number(f64),
    Instant(DateTime<Utc>),
    Text(String),
    Json(String),
}

impl SortValue {
    fn of(value: &Value) -> Option<SortValue> {
        Some(match value {
            Value::Null => return None,
            Value::Bool(b) => SortValue::Bool(*b),
            Value::Number(n) => SortValue::Number(n.as_f64().unwrap_or(0.0)),
            Value::String(s) => {
                parse_instant(s).map_or_else(|| SortValue::Text(s.clone()), SortValue::Instant)
            }
            other => SortValue::Json(other.to_string()),
        })
    }

    fn rank(&self) -> u8 {
        match self {
            SortValue::Bool(_) => 0,
            SortValue::Number(_) => 1,
            SortValue::Instant(_) => 2,
            SortValue::Text(_) => 3,
            SortValue::Json(_) => 4,
        }
    }

    fn total_cmp(&self, other: &SortValue) -> Ordering {
        match (self, other) {
            (SortValue::Bool(a), SortValue::Bool(b)) => a.cmp(b),
            (SortValue::Number(a), SortValue::Number(b)) => a.total_cmp(b),
            (SortValue::Instant(a), SortValue::Instant(b)) => a.cmp(b),
            (SortValue::Text(a), SortValue::Text(b)) | (SortValue::Json(a), SortValue::Json(b)) => {
                a.cmp(b)
            }
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

// Fields and paths.

/// A value of a row: a field of the view, and a path inside it for JSON fields.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    field: String,
    path: Vec<String>,
}

impl Target {
    fn get<'a>(&self, row: &'a Row) -> Option<&'a Value> {
        let mut value = row.get(&self.field)?;
        for segment in &self.path {
            value = match value {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        (!value.is_null()).then_some(value)
    }

    /// The column name: the field, then the path joined with dots (`properties.plan`).
    fn key(&self) -> String {
        let mut key = self.field.clone();
        for segment in &self.path {
            key.push('.');
            key.push_str(segment);
        }
        key
    }
}

fn unknown_field(view: View, field: &str, location: &str) -> Problem {
    Problem::unprocessable(format!(
        "{location}: `{field}` is not a field of {}; its fields are {}",
        view.wire_name(),
        list(view.fields())
    ))
}

/// Resolves a field and a path; a dotted name such as `properties.plan` is a path too.
fn target(view: View, field: &str, path: &[String], location: &str) -> Result<Target, Problem> {
    let (field, mut full_path) = if view.has_field(field) {
        (field.to_string(), Vec::new())
    } else if let Some((head, rest)) = field.split_once('.')
        && view.json_fields().contains(&head)
        && !rest.is_empty()
    {
        (
            head.to_string(),
            rest.split('.').map(str::to_string).collect(),
        )
    } else {
        return Err(unknown_field(view, field, location));
    };
    if !path.is_empty() && !view.json_fields().contains(&field.as_str()) {
        return Err(Problem::unprocessable(format!(
            "{location}: `{field}` is not a JSON field of {}, so a path cannot reach into it; the JSON fields are {}",
            view.wire_name(),
            list(view.json_fields())
        )));
    }
    full_path.extend(path.iter().cloned());
    Ok(Target {
        field,
        path: full_path,
    })
}

// Filters.

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
pub(crate) enum Compiled {
    All(Vec<Compiled>),
    Any(Vec<Compiled>),
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

fn compile_condition(
    view: View,
    condition: &types::Condition,
    location: &str,
) -> Result<Compiled, Problem> {
    let operator = Operator::from_generated(&condition.operator, location)?;
    let (path, value) = match split_path_value(condition.value.as_ref()) {
        Some((path, value)) => (path, value),
        None => (Vec::new(), condition.value.clone()),
    };
    let target = target(view, &condition.field, &path, &format!("{location}.field"))?;
    let value = value.unwrap_or(Value::Null);
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
    Ok(Compiled::Condition {
        target,
        operator,
        value,
    })
}

pub(crate) fn compile_filter(
    view: View,
    filter: &types::Filter,
    location: &str,
) -> Result<Compiled, Problem> {
    Ok(match filter {
        types::Filter::And(and) => Compiled::All(
            and.and
                .iter()
                .enumerate()
                .map(|(i, f)| compile_filter(view, f, &format!("{location}.and[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        types::Filter::Or(or) => Compiled::Any(
            or.or
                .iter()
                .enumerate()
                .map(|(i, f)| compile_filter(view, f, &format!("{location}.or[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        types::Filter::Condition(condition) => {
            compile_condition(view, &condition.condition, &format!("{location}.condition"))?
        }
    })
}

impl Compiled {
    pub(crate) fn matches(&self, row: &Row) -> bool {
        match self {
            Compiled::All(filters) => filters.iter().all(|f| f.matches(row)),
            Compiled::Any(filters) => filters.iter().any(|f| f.matches(row)),
            Compiled::Condition {
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

// Selections.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Function {
    Sum,
    Count,
    CountDistinct,
    Avg,
    Min,
    Max,
}

impl Function {
    fn from_generated(
        function: &types::AggregationFunction,
        location: &str,
    ) -> Result<Self, Problem> {
        use types::AggregationFunction as A;
        Ok(match function {
            A::Sum => Function::Sum,
            A::Count => Function::Count,
            A::CountDistinct => Function::CountDistinct,
            A::Avg => Function::Avg,
            A::Min => Function::Min,
            A::Max => Function::Max,
            A::Other(name) => {
                return Err(Problem::unprocessable(format!(
                    "{location}.aggregation: `{name}` is not an aggregation; they are {}",
                    list(types::AggregationFunction::KNOWN)
                )));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Function::Sum => "sum",
            Function::Count => "count",
            Function::CountDistinct => "countDistinct",
            Function::Avg => "avg",
            Function::Min => "min",
            Function::Max => "max",
        }
    }

    const ALL: [Function; 6] = [
        Function::Sum,
        Function::Count,
        Function::CountDistinct,
        Function::Avg,
        Function::Min,
        Function::Max,
    ];

    fn apply<'a>(self, values: impl Iterator<Item = Option<&'a Value>>) -> Value {
        match self {
            Function::Count => Value::from(values.filter(Option::is_some).count()),
            Function::CountDistinct => {
                let distinct: HashSet<String> = values.flatten().map(Value::to_string).collect();
                Value::from(distinct.len())
            }
            Function::Sum | Function::Avg => {
                let numbers: Vec<&Value> = values
                    .flatten()
                    .filter(|v| number_of(v).is_some())
                    .collect();
                if numbers.is_empty() {
                    return Value::Null;
                }
                let integers: Option<Vec<i64>> = numbers.iter().map(|v| v.as_i64()).collect();
                if self == Function::Sum
                    && let Some(sum) =
                        integers.and_then(|all| all.iter().try_fold(0i64, |s, n| s.checked_add(*n)))
                {
                    return Value::from(sum);
                }
                let sum: f64 = numbers.iter().filter_map(|v| number_of(v)).sum();
                let result = if self == Function::Avg {
                    sum / numbers.len() as f64
                } else {
                    sum
                };
                Number::from_f64(result).map_or(Value::Null, Value::Number)
            }
            Function::Min | Function::Max => {
                let mut best: Option<(SortValue, &Value)> = None;
                for value in values.flatten() {
                    let Some(key) = SortValue::of(value) else {
                        continue;
                    };
                    let better = match &best {
                        None => true,
                        Some((current, _)) => {
                            let order = key.total_cmp(current);
                            if self == Function::Min {
                                order.is_lt()
                            } else {
                                order.is_gt()
                            }
                        }
                    };
                    if better {
                        best = Some((key, value));
                    }
                }
                best.map_or(Value::Null, |(_, value)| value.clone())
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Hour,
    Day,
    Week,
    Month,
}

impl Unit {
    const ALL: [Unit; 4] = [Unit::Hour, Unit::Day, Unit::Week, Unit::Month];

    fn from_generated(unit: &types::TimeUnit, location: &str) -> Result<Self, Problem> {
        use types::TimeUnit as T;
        Ok(match unit {
            T::Hour => Unit::Hour,
            T::Day => Unit::Day,
            T::Week => Unit::Week,
            T::Month => Unit::Month,
            T::Other(name) => {
                return Err(Problem::unprocessable(format!(
                    "{location}.timeUnit: `{name}` is not a time unit; they are {}",
                    list(types::TimeUnit::KNOWN)
                )));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
        }
    }

    /// The start of the bucket that holds `at`: weeks start on Monday, all in UTC.
    pub(crate) fn bucket(self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let date = at.date_naive();
        let start = match self {
            Unit::Hour => date.and_hms_opt(at.hour(), 0, 0)?,
            Unit::Day => date.and_hms_opt(0, 0, 0)?,
            Unit::Week => {
                let monday =
                    date - chrono::Duration::days(i64::from(date.weekday().num_days_from_monday()));
                monday.and_hms_opt(0, 0, 0)?
            }
            Unit::Month => {
                NaiveDate::from_ymd_opt(date.year(), date.month(), 1)?.and_hms_opt(0, 0, 0)?
            }
        };
        Some(Utc.from_utc_datetime(&start))
    }

    fn bucket_value(self, value: Option<&Value>) -> Value {
        value
            .and_then(Value::as_str)
            .and_then(parse_instant)
            .and_then(|at| self.bucket(at))
            .map_or(Value::Null, |at| Value::String(timestamp(at)))
    }
}

/// A selected column.
#[derive(Clone, Debug)]
enum Output {
    Field {
        key: String,
        target: Target,
        unpack: bool,
    },
    Time {
        key: String,
        field: String,
        unit: Unit,
    },
    Aggregate {
        key: String,
        function: Function,
        target: Option<Target>,
    },
}

impl Output {
    fn key(&self) -> &str {
        match self {
            Output::Field { key, .. }
            | Output::Time { key, .. }
            | Output::Aggregate { key, .. } => key,
        }
    }

    /// The value of a non-aggregate column for one row.
    fn value(&self, row: &Row) -> Value {
        match self {
            Output::Field { target, .. } => target.get(row).cloned().unwrap_or(Value::Null),
            Output::Time { field, unit, .. } => unit.bucket_value(row.get(field)),
            Output::Aggregate { .. } => Value::Null,
        }
    }
}

fn time_field(view: View, field: &str, location: &str) -> Result<(), Problem> {
    if view.time_fields().contains(&field) {
        return Ok(());
    }
    if !view.has_field(field) {
        return Err(unknown_field(view, field, location));
    }
    Err(Problem::unprocessable(format!(
        "{location}: `{field}` is not a date-time field of {}; time buckets apply to {}",
        view.wire_name(),
        list(view.time_fields())
    )))
}

fn compile_selection(
    view: View,
    selection: &types::Selection,
    location: &str,
) -> Result<Output, Problem> {
    match selection {
        types::Selection::Aggregation(a) => {
            let function = Function::from_generated(&a.aggregation, location)?;
            let target = match &a.field {
                Some(field) => Some(target(view, field, &a.path, &format!("{location}.field"))?),
                None if !a.path.is_empty() => {
                    return Err(Problem::unprocessable(format!(
                        "{location}.path: a path needs a field"
                    )));
                }
                None => None,
            };
            if target.is_none() && function != Function::Count {
                return Err(Problem::unprocessable(format!(
                    "{location}.field: `{}` needs a field; only `count` counts rows without one",
                    function.name()
                )));
            }
            let key = match &target {
                Some(target) => format!("{}_{}", function.name(), target.key()),
                None => function.name().to_string(),
            };
            Ok(Output::Aggregate {
                key,
                function,
                target,
            })
        }
        types::Selection::Time(t) => {
            let unit = Unit::from_generated(&t.time_unit, location)?;
            let field = t
                .field
                .clone()
                .unwrap_or_else(|| view.default_time_field().to_string());
            time_field(view, &field, &format!("{location}.field"))?;
            Ok(Output::Time {
                key: format!("{field}_{}", unit.name()),
                field,
                unit,
            })
        }
        types::Selection::Field(f) => {
            let unpack = match &f.mode {
                None | Some(types::FieldMode::Json) => false,
                Some(types::FieldMode::Unpack) => true,
                Some(types::FieldMode::Other(name)) => {
                    return Err(Problem::unprocessable(format!(
                        "{location}.mode: `{name}` is not a field mode; they are {}",
                        list(types::FieldMode::KNOWN)
                    )));
                }
            };
            let target = target(view, &f.field, &f.path, &format!("{location}.field"))?;
            Ok(Output::Field {
                key: target.key(),
                target,
                unpack,
            })
        }
        types::Selection::Unknown(value) => Err(Problem::unprocessable(format!(
            "{location}.type: {} is not one of `aggregation`, `time`, `field`",
            value
                .get("type")
                .map_or_else(|| "a missing type".to_string(), Value::to_string)
        ))),
    }
}

/// `<field>_<unit>`, such as `createdAt_day`.
fn time_column(view: View, name: &str) -> Option<(String, Unit)> {
    let (field, unit) = name.rsplit_once('_')?;
    let unit = Unit::ALL.into_iter().find(|u| u.name() == unit)?;
    view.time_fields()
        .contains(&field)
        .then(|| (field.to_string(), unit))
}

/// `<function>_<field>` or a bare `<function>`, such as `count_id` or `count`.
fn is_aggregate_column(view: View, name: &str) -> bool {
    Function::ALL.iter().any(|function| {
        name == function.name()
            || name
                .strip_prefix(function.name())
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|field| target(view, field, &[], "").is_ok())
    })
}

// Running a query.

/// A column rows are grouped by.
struct GroupColumn {
    output: Output,
    include: bool,
}

enum SortKey {
    Column(String),
    Source(Target),
    SourceTime(String, Unit),
}

/// Runs a query over the rows of a view (newest first), giving the result rows in order.
pub(crate) fn run(view: View, spec: &QuerySpec, rows: Vec<Row>) -> Result<Table, Problem> {
    let filter = spec
        .filter
        .as_ref()
        .map(|f| compile_filter(view, f, "where"))
        .transpose()?;
    let outputs = spec
        .select
        .iter()
        .enumerate()
        .map(|(i, s)| compile_selection(view, s, &format!("select[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut groups: Vec<GroupColumn> = Vec::new();
    for (i, group) in spec.group_by.iter().enumerate() {
        let location = format!("groupBy[{i}].field");
        let output = match time_column(view, &group.field) {
            Some((field, unit)) if group.path.is_empty() => Output::Time {
                key: group.field.clone(),
                field,
                unit,
            },
            _ => {
                let target = target(view, &group.field, &group.path, &location)?;
                Output::Field {
                    key: target.key(),
                    target,
                    unpack: false,
                }
            }
        };
        groups.push(GroupColumn {
            output,
            include: group.include_in_select != Some(false),
        });
    }
    let directions = spec
        .order_by
        .iter()
        .enumerate()
        .map(|(i, order)| match &order.direction {
            types::SortDirection::Asc => Ok(false),
            types::SortDirection::Desc => Ok(true),
            types::SortDirection::Other(name) => Err(Problem::unprocessable(format!(
                "orderBy[{i}].direction: `{name}` is not `asc` or `desc`"
            ))),
        })
        .collect::<Result<Vec<bool>, _>>()?;
    let search_terms: Vec<String> = spec
        .search
        .as_deref()
        .unwrap_or_default()
        .to_lowercase()
        .split_whitespace()
        .map(str::to_string)
        .collect();

    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|row| filter.as_ref().is_none_or(|f| f.matches(row)))
        .filter(|row| search_terms.is_empty() || matches_search(row, &search_terms))
        .collect();

    let aggregated = outputs
        .iter()
        .any(|o| matches!(o, Output::Aggregate { .. }));
    let grouped = aggregated || !groups.is_empty();
    // Result rows, with the rows of the view each came from (for ordering by their fields).
    let (mut columns, mut result, sources): (Vec<String>, Vec<Row>, Vec<Vec<usize>>) = if grouped {
        for output in &outputs {
            if !matches!(output, Output::Aggregate { .. })
                && !groups.iter().any(|g| g.output.key() == output.key())
            {
                groups.push(GroupColumn {
                    output: output.clone(),
                    include: true,
                });
            }
        }
        let mut order: Vec<(Vec<Value>, Vec<usize>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            let values: Vec<Value> = groups.iter().map(|g| g.output.value(row)).collect();
            let key = Value::Array(values.clone()).to_string();
            let slot = *index.entry(key).or_insert_with(|| {
                order.push((values, Vec::new()));
                order.len() - 1
            });
            if let Some((_, members)) = order.get_mut(slot) {
                members.push(i);
            }
        }
        if order.is_empty() && groups.is_empty() {
            // An aggregate without grouping has one row, even over no rows (`count` is 0).
            order.push((Vec::new(), Vec::new()));
        }
        let mut columns: Vec<String> = Vec::new();
        for group in &groups {
            if group.include && !columns.contains(&group.output.key().to_string()) {
                columns.push(group.output.key().to_string());
            }
        }
        for output in &outputs {
            if !columns.contains(&output.key().to_string()) {
                columns.push(output.key().to_string());
            }
        }
        let mut result = Vec::with_capacity(order.len());
        let mut sources = Vec::with_capacity(order.len());
        for (values, members) in order {
            let mut out = Row::new();
            for (group, value) in groups.iter().zip(values) {
                out.insert(group.output.key().to_string(), value);
            }
            for output in &outputs {
                if let Output::Aggregate {
                    key,
                    function,
                    target,
                } = output
                {
                    let value =
                        function.apply(members.iter().filter_map(|i| rows.get(*i)).map(|row| {
                            match target {
                                Some(target) => target.get(row),
                                None => Some(&Value::Bool(true)),
                            }
                        }));
                    out.insert(key.clone(), value);
                }
            }
            result.push(out);
            sources.push(members);
        }
        (columns, result, sources)
    } else if outputs.is_empty() {
        let columns = view.fields().iter().map(|f| (*f).to_string()).collect();
        let sources = (0..rows.len()).map(|i| vec![i]).collect();
        (columns, rows.clone(), sources)
    } else {
        let mut columns: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut result = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut out = Row::new();
            for output in &outputs {
                let value = output.value(row);
                match (output, value) {
                    (
                        Output::Field {
                            key, unpack: true, ..
                        },
                        Value::Object(map),
                    ) => {
                        for (sub, value) in map {
                            let column = format!("{key}.{sub}");
                            if seen.insert(column.clone()) {
                                columns.push(column.clone());
                            }
                            out.insert(column, value);
                        }
                    }
                    // Unpacking null gives no columns: there is nothing to unpack.
                    (Output::Field { unpack: true, .. }, Value::Null) => {}
                    (output, value) => {
                        if seen.insert(output.key().to_string()) {
                            columns.push(output.key().to_string());
                        }
                        out.insert(output.key().to_string(), value);
                    }
                }
            }
            result.push(out);
        }
        let sources = (0..rows.len()).map(|i| vec![i]).collect();
        (columns, result, sources)
    };

    // Ordering: by result columns, or by the view's fields for rows that come from one view row.
    let mut keys = Vec::with_capacity(spec.order_by.len());
    for (i, order) in spec.order_by.iter().enumerate() {
        let name = order.field.as_str();
        let location = format!("orderBy[{i}].field");
        let in_result =
            result.iter().any(|row| row.contains_key(name)) || columns.iter().any(|c| c == name);
        let key = if in_result {
            SortKey::Column(name.to_string())
        } else if let Ok(target) = target(view, name, &[], &location) {
            if grouped {
                return Err(Problem::unprocessable(format!(
                    "{location}: `{name}` is not in the grouped result; group by it or select it to order by it"
                )));
            }
            SortKey::Source(target)
        } else if let Some((field, unit)) = time_column(view, name) {
            if grouped {
                return Err(Problem::unprocessable(format!(
                    "{location}: the time bucket `{name}` is not in the grouped result; select it to order by it"
                )));
            }
            SortKey::SourceTime(field, unit)
        } else if is_aggregate_column(view, name) {
            return Err(Problem::unprocessable(format!(
                "{location}: the aggregate `{name}` is not selected; select it to order by it"
            )));
        } else {
            return Err(Problem::unprocessable(format!(
                "{location}: `{name}` is not a field of {}, a time bucket `<field>_<hour|day|week|month>` or an aggregate `<sum|count|countDistinct|avg|min|max>_<field>` of the query",
                view.wire_name()
            )));
        };
        keys.push(key);
    }
    if !keys.is_empty() {
        let sort_values: Vec<Vec<Option<SortValue>>> = result
            .iter()
            .zip(&sources)
            .map(|(out, members)| {
                let source = members.first().and_then(|i| rows.get(*i));
                keys.iter()
                    .map(|key| match key {
                        SortKey::Column(name) => out.get(name).and_then(SortValue::of),
                        SortKey::Source(target) => source
                            .and_then(|row| target.get(row))
                            .and_then(SortValue::of),
                        SortKey::SourceTime(field, unit) => {
                            source.and_then(|row| SortValue::of(&unit.bucket_value(row.get(field))))
                        }
                    })
                    .collect()
            })
            .collect();
        let mut order: Vec<usize> = (0..result.len()).collect();
        order.sort_by(|a, b| {
            for (k, descending) in directions.iter().enumerate() {
                let x = sort_values
                    .get(*a)
                    .and_then(|v| v.get(k))
                    .and_then(Option::as_ref);
                let y = sort_values
                    .get(*b)
                    .and_then(|v| v.get(k))
                    .and_then(Option::as_ref);
                // Nulls last, whichever the direction.
                let ordering = match (x, y) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Greater,
                    (Some(_), None) => Ordering::Less,
                    (Some(x), Some(y)) if *descending => y.total_cmp(x),
                    (Some(x), Some(y)) => x.total_cmp(y),
                };
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            Ordering::Equal
        });
        let mut slots: Vec<Option<Row>> = result.into_iter().map(Some).collect();
        result = order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .collect();
    }
    // Group columns that are not to be selected were kept only for ordering.
    for group in groups.iter().filter(|g| !g.include) {
        let key = group.output.key();
        if !outputs.iter().any(|o| o.key() == key) {
            for row in &mut result {
                row.remove(key);
            }
            columns.retain(|c| c != key);
        }
    }
    Ok(Table {
        columns,
        rows: result,
    })
}

/// The semantic search of the semantic threads view: a thread matches when its question,
/// answer, subject or category contains any of the search's words.
fn matches_search(row: &Row, terms: &[String]) -> bool {
    let text: String = ["question", "answer", "subject", "category"]
        .iter()
        .filter_map(|field| row.get(*field).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    terms.iter().any(|term| text.contains(term.as_str()))
}

// CSV.

fn csv_field(text: &str, out: &mut String) {
    if text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') || text.ends_with(' ') {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn csv_cell(value: Option<&Value>, out: &mut String) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => csv_field(text, out),
        Some(Value::Number(n)) => {
            let _ = write!(out, "{n}");
        }
        Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(json) => csv_field(&json.to_string(), out),
    }
}

/// The table as RFC 4180 CSV: a header row, CRLF line ends, fields quoted when they hold a comma,
/// a quote, a line break or edge spaces; null as an empty field, JSON as its text.
pub(crate) fn to_csv(table: &Table) -> String {
    let mut out = String::new();
    for (i, column) in table.columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(column, &mut out);
    }
    out.push_str("\r\n");
    for row in &table.rows {
        for (i, column) in table.columns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_cell(row.get(column), &mut out);
        }
        out.push_str("\r\n");
    }
    out
}

// Property keys and values.

fn filtered_rows(
    snapshot: &crate::store::Snapshot,
    views: &[View],
    filter: Option<&types::Filter>,
) -> Result<Vec<Row>, Problem> {
    // A filter applies to the views that have its fields; a view that lacks one has no rows
    // that match. Only a filter that fits none of the views is refused.
    let mut all = Vec::new();
    let mut first_error = None;
    let mut fitted = false;
    for view in views {
        let compiled = match filter
            .map(|f| compile_filter(*view, f, "where"))
            .transpose()
        {
            Ok(compiled) => compiled,
            Err(problem) => {
                first_error.get_or_insert(problem);
                continue;
            }
        };
        fitted = true;
        all.extend(
            view.rows(snapshot)
                .into_iter()
                .filter(|row| compiled.as_ref().is_none_or(|f| f.matches(row))),
        );
    }
    match first_error {
        Some(problem) if !fitted => Err(problem),
        _ => Ok(all),
    }
}

/// `POST /query/property-keys`: the keys used in `field` (`properties` or `userProperties`), sorted.
pub(crate) fn property_keys(
    snapshot: &crate::store::Snapshot,
    field: &str,
    views: &[View],
    filter: Option<&types::Filter>,
) -> Result<Vec<String>, Problem> {
    let mut keys = BTreeSet::new();
    for row in filtered_rows(snapshot, views, filter)? {
        if let Some(Value::Object(map)) = row.get(field) {
            keys.extend(map.keys().cloned());
        }
    }
    Ok(keys.into_iter().collect())
}

/// `POST /query/property-values`: the values `field.key` takes, most frequent first, as strings.
pub(crate) fn property_values(
    snapshot: &crate::store::Snapshot,
    field: &str,
    key: &str,
    views: &[View],
    filter: Option<&types::Filter>,
    limit: usize,
) -> Result<Vec<String>, Problem> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for row in filtered_rows(snapshot, views, filter)? {
        let value = row.get(field).and_then(|object| object.get(key));
        let text = match value {
            None | Some(Value::Null) => continue,
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        };
        *counts.entry(text).or_default() += 1;
    }
    let mut values: Vec<(String, usize)> = counts.into_iter().collect();
    values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(values.into_iter().take(limit).map(|(v, _)| v).collect())
}

// Search statistics.

/// Reads `after`: a date or date-time, or a Unix time in seconds or milliseconds.
pub(crate) fn parse_after(after: &str) -> Result<DateTime<Utc>, Problem> {
    if let Some(at) = parse_instant(after) {
        return Ok(at);
    }
    if let Ok(number) = after.parse::<i64>() {
        let at = if after.len() >= 13 {
            DateTime::from_timestamp_millis(number)
        } else {
            DateTime::from_timestamp(number, 0)
        };
        if let Some(at) = at {
            return Ok(at);
        }
    }
    Err(Problem::bad_request(format!(
        "after: `{after}` is not a date (2025-01-31), a date-time (2025-01-31T00:00:00Z) or a Unix time"
    )))
}

fn search_events<'a>(
    snapshot: &'a crate::store::Snapshot,
    after: Option<DateTime<Utc>>,
    project_id: Option<&'a str>,
) -> impl Iterator<Item = &'a crate::records::Event> + 'a {
    snapshot.events.iter().map(AsRef::as_ref).filter(move |e| {
        e.entity_type == "search"
            && project_id.is_none_or(|p| e.project_id.as_deref() == Some(p))
            && after.is_none_or(|after| parse_instant(&e.created_at).is_some_and(|at| at > after))
    })
}

/// How many searches each query had, most frequent first, and how many distinct queries there are.
pub(crate) fn top_search_queries(
    snapshot: &crate::store::Snapshot,
    after: Option<DateTime<Utc>>,
    project_id: Option<&str>,
    limit: usize,
) -> (Vec<(String, usize)>, usize) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for event in search_events(snapshot, after, project_id) {
        if let Some(query) = event.search_query.as_deref() {
            *counts.entry(query).or_default() += 1;
        }
    }
    let total = counts.len();
    let mut counts: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(q, c)| (q.to_string(), c))
        .collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts.truncate(limit);
    (counts, total)
}

/// How many distinct users searched each week (weeks start on Monday), oldest week first.
pub(crate) fn weekly_search_users(
    snapshot: &crate::store::Snapshot,
    after: Option<DateTime<Utc>>,
    project_id: Option<&str>,
) -> Vec<(String, usize)> {
    let mut weeks: std::collections::BTreeMap<String, HashSet<String>> = Default::default();
    for event in search_events(snapshot, after, project_id) {
        let Some(week) = parse_instant(&event.created_at).and_then(|at| Unit::Week.bucket(at))
        else {
            continue;
        };
        let user = event
            .user_properties
            .as_ref()
            .and_then(|p| p.get("userId").or_else(|| p.get("id")))
            .filter(|id| !id.is_null());
        let users = weeks
            .entry(week.format("%Y-%m-%d").to_string())
            .or_default();
        if let Some(user) = user {
            users.insert(user.to_string());
        }
    }
    weeks
        .into_iter()
        .map(|(week, users)| (week, users.len()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containment_follows_postgres() {
        assert!(contains(
            &json!({"a": 1, "b": {"c": [1, 2]}}),
            &json!({"b": {"c": [2]}})
        ));
        assert!(!contains(&json!({"a": 1}), &json!({"a": 2})));
        assert!(contains(&json!(["x", "y"]), &json!("x")));
        assert!(contains(&json!([{"a": 1, "b": 2}]), &json!([{"a": 1}])));
        assert!(!contains(&json!("x"), &json!(["x"])));
    }

    #[test]
    fn equality_and_order_are_loose_across_types() {
        assert!(loose_eq(&json!(42), &json!("42")));
        assert!(loose_eq(
            &json!("2025-01-01T00:00:00Z"),
            &json!("2025-01-01T00:00:00.000Z")
        ));
        assert!(!loose_eq(&json!("a"), &json!(1)));
        assert_eq!(
            loose_cmp(&json!("2025-02-01"), &json!("2025-01-31T23:59:59.999Z")),
            Some(Ordering::Greater)
        );
        assert_eq!(loose_cmp(&json!(3), &json!("10")), Some(Ordering::Less));
    }

    #[test]
    fn buckets_start_on_the_hour_day_monday_and_first() {
        let at = parse_instant("2025-03-06T13:45:10.123Z");
        let bucket = |unit: Unit| at.and_then(|at| unit.bucket(at)).map(timestamp);
        assert_eq!(
            bucket(Unit::Hour).as_deref(),
            Some("2025-03-06T13:00:00.000Z")
        );
        assert_eq!(
            bucket(Unit::Day).as_deref(),
            Some("2025-03-06T00:00:00.000Z")
        );
        assert_eq!(
            bucket(Unit::Week).as_deref(),
            Some("2025-03-03T00:00:00.000Z")
        );
        assert_eq!(
            bucket(Unit::Month).as_deref(),
            Some("2025-03-01T00:00:00.000Z")
        );
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut row = Row::new();
        row.insert("a".into(), json!("plain"));
        row.insert("b".into(), json!("Smith, \"Jones\"\nand Co"));
        row.insert("c".into(), json!({"k": [1, null]}));
        let table = Table {
            columns: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            rows: vec![row],
        };
        assert_eq!(
            to_csv(&table),
            "a,b,c,d\r\nplain,\"Smith, \"\"Jones\"\"\nand Co\",\"{\"\"k\"\":[1,null]}\",\r\n"
        );
    }
}
