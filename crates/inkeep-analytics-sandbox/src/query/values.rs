//! The values a query compares: equality, order and containment as the operators mean them, and
//! the total order that sorting and `min`/`max` use.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

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

pub(super) fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// Equality as a filter means it: numbers by value (`"42"` equals `42`), date-times by instant,
/// everything else exactly.
pub(super) fn loose_eq(a: &Value, b: &Value) -> bool {
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
pub(super) fn loose_cmp(a: &Value, b: &Value) -> Option<Ordering> {
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
pub(super) fn contains(container: &Value, contained: &Value) -> bool {
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

pub(super) fn has_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map.contains_key(key),
        Value::Array(items) => items.iter().any(|item| item.as_str() == Some(key)),
        _ => false,
    }
}

/// A total order over JSON values, for sorting and for `min` and `max`: booleans, then numbers,
/// then date-times, then other strings, then arrays and objects (by their JSON text).
#[derive(Debug, PartialEq)]
pub(super) enum SortValue {
    Bool(bool),
    Number(f64),
    Instant(DateTime<Utc>),
    Text(String),
    Json(String),
}

impl SortValue {
    pub(super) fn of(value: &Value) -> Option<SortValue> {
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

    pub(super) fn total_cmp(&self, other: &SortValue) -> Ordering {
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
}
