//! Selections: the columns of a result (fields, time buckets and aggregates), compiled against a
//! view, and how each computes its value.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use inkeep_analytics::types;
use serde_json::{Number, Value};

use super::fields::{Target, target, unknown_field};
use super::values::{SortValue, number_of, parse_instant};
use crate::ingest::list;
use crate::problem::Problem;
use crate::records::timestamp;
use crate::views::{Row, View};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Function {
    Sum,
    Count,
    CountDistinct,
    Avg,
    Min,
    Max,
}

impl Function {
    pub(super) fn from_generated(
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

    pub(super) fn name(self) -> &'static str {
        match self {
            Function::Sum => "sum",
            Function::Count => "count",
            Function::CountDistinct => "countDistinct",
            Function::Avg => "avg",
            Function::Min => "min",
            Function::Max => "max",
        }
    }

    pub(super) const ALL: [Function; 6] = [
        Function::Sum,
        Function::Count,
        Function::CountDistinct,
        Function::Avg,
        Function::Min,
        Function::Max,
    ];

    pub(super) fn apply<'a>(self, values: impl Iterator<Item = Option<&'a Value>>) -> Value {
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
pub(super) enum Unit {
    Hour,
    Day,
    Week,
    Month,
}

impl Unit {
    pub(super) const ALL: [Unit; 4] = [Unit::Hour, Unit::Day, Unit::Week, Unit::Month];

    pub(super) fn from_generated(unit: &types::TimeUnit, location: &str) -> Result<Self, Problem> {
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

    pub(super) fn name(self) -> &'static str {
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

    pub(super) fn bucket_value(self, value: Option<&Value>) -> Value {
        value
            .and_then(Value::as_str)
            .and_then(parse_instant)
            .and_then(|at| self.bucket(at))
            .map_or(Value::Null, |at| Value::String(timestamp(at)))
    }
}

/// A selected column.
#[derive(Clone, Debug)]
pub(super) enum Output {
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
    pub(super) fn key(&self) -> &str {
        match self {
            Output::Field { key, .. }
            | Output::Time { key, .. }
            | Output::Aggregate { key, .. } => key,
        }
    }

    /// The value of a non-aggregate column for one row.
    pub(super) fn value(&self, row: &Row) -> Value {
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
        list(&view.time_fields())
    )))
}

pub(super) fn compile_selection(
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
            let field = t.field.clone().unwrap_or_else(|| view.default_time_field());
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
pub(super) fn time_column(view: View, name: &str) -> Option<(String, Unit)> {
    let (field, unit) = name.rsplit_once('_')?;
    let unit = Unit::ALL.into_iter().find(|u| u.name() == unit)?;
    view.time_fields()
        .contains(&field)
        .then(|| (field.to_string(), unit))
}

/// `<function>_<field>` or a bare `<function>`, such as `count_id` or `count`.
pub(super) fn is_aggregate_column(view: View, name: &str) -> bool {
    Function::ALL.iter().any(|function| {
        name == function.name()
            || name
                .strip_prefix(function.name())
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|field| target(view, field, &[], "").is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
