//! The values a condition compares its field with: scalars, lists of scalars and raw JSON.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// A single value a condition compares with, or an item of a list of them.
///
/// Everything that converts into it (strings, integers, floats, booleans, `Option`s of them, and
/// `chrono` date-times) converts into [`Operand`] as well.
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
    pub(super) fn into_json(self) -> serde_json::Value {
        match self {
            Scalar::Null => serde_json::Value::Null,
            Scalar::Bool(value) => serde_json::Value::Bool(value),
            Scalar::Integer(value) => serde_json::Value::from(value),
            Scalar::Unsigned(value) => serde_json::Value::from(value),
            // `Operand::from(f64)` gives `null` for NaN and the infinities.
            Scalar::Float(value) => serde_json::Value::from(value),
            Scalar::String(value) => serde_json::Value::String(value),
        }
    }
}

/// What a condition compares its field with: a scalar, a list of scalars (nulls allowed), null, or
/// any JSON (an object for `jsonContains`, say).
///
/// A JSON path is not a value: it belongs to the [`Field`](super::Field), and the condition sends both as
/// `{path, value}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// One scalar, or null ([`Operand::NULL`]).
    Scalar(Scalar),
    /// A list of scalars, sent as a JSON array; [`Scalar::Null`] items are sent as `null`.
    List(Vec<Scalar>),
    /// JSON sent as it is.
    Json(serde_json::Value),
}

impl Operand {
    /// JSON `null`.
    pub const NULL: Operand = Operand::Scalar(Scalar::Null);

    /// A list of scalars; `None` items are sent as `null`.
    pub fn list<I>(items: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Scalar>,
    {
        Operand::List(items.into_iter().map(Into::into).collect())
    }

    pub(super) fn into_json(self) -> serde_json::Value {
        match self {
            Operand::Scalar(scalar) => scalar.into_json(),
            Operand::List(items) => {
                serde_json::Value::Array(items.into_iter().map(Scalar::into_json).collect())
            }
            Operand::Json(json) => json,
        }
    }
}

/// Converts the Rust scalar types into [`Scalar`] and [`Operand`].
macro_rules! scalar_from {
    ($($ty:ty => $variant:ident),* $(,)?) => {
        $(
            impl From<$ty> for Scalar {
                fn from(value: $ty) -> Self {
                    Scalar::$variant(value.into())
                }
            }

            impl From<$ty> for Operand {
                fn from(value: $ty) -> Self {
                    Operand::Scalar(value.into())
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

impl<Tz: TimeZone> From<DateTime<Tz>> for Operand {
    fn from(value: DateTime<Tz>) -> Self {
        Operand::Scalar(value.into())
    }
}

impl From<Scalar> for Operand {
    fn from(value: Scalar) -> Self {
        Operand::Scalar(value)
    }
}

impl<T: Into<Scalar>> From<Option<T>> for Operand {
    fn from(value: Option<T>) -> Self {
        Operand::Scalar(value.into())
    }
}

impl<T: Into<Scalar>> From<Vec<T>> for Operand {
    fn from(items: Vec<T>) -> Self {
        Operand::list(items)
    }
}

impl<T: Into<Scalar>, const N: usize> From<[T; N]> for Operand {
    fn from(items: [T; N]) -> Self {
        Operand::list(items)
    }
}

impl From<serde_json::Value> for Operand {
    fn from(value: serde_json::Value) -> Self {
        Operand::Json(value)
    }
}
