//! Typed reads of result rows, whose keys depend on the query, and of the counts the API sends as strings.

use std::num::ParseIntError;

use serde::de::DeserializeOwned;

use crate::types;

/// Typed reads of a result row, whose keys depend on the query.
///
/// Keys are strings or [`Column`](super::Column)s. The numeric accessors accept JSON numbers and numeric strings,
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
