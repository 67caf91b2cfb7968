//! Counts the API sends as JSON numbers, read as integers without matching on `serde_json::Number`.
//!
//! The spec types counts as `number`, so the generated fields keep the exact JSON number, and a
//! page re-serialized is the page received. These accessors read such a field as a `u64` when, and
//! only when, it holds a non-negative integer that fits: `20` and `20.0` are 20, while a fraction,
//! a negative number or a number past `u64::MAX` is `None`, never rounded, clamped or wrapped.

use serde_json::Number;

use crate::types::{
    ConversationList, FeedbackList, QueryData, TopSearchQueriesResponseData,
    WeeklySearchUsersResponseData,
};

/// `number` as a count, or `None` when it is not a non-negative integer that fits a `u64`.
pub(crate) fn exact_count(number: &Number) -> Option<u64> {
    if let Some(count) = number.as_u64() {
        return Some(count);
    }
    // A negative integer is not a count; only a float can still be one, such as `20.0`.
    if number.is_i64() {
        return None;
    }
    let value = number.as_f64()?;
    // `u64::MAX as f64` rounds up to 2^64, the first value out of range, so `<` keeps every float
    // that fits; the fraction check refuses NaN as well, whose fraction is NaN.
    let integral = value.fract() == 0.0 && value >= 0.0 && value < u64::MAX as f64;
    // The cast is exact: the value is an integer within range.
    integral.then_some(value as u64)
}

/// One accessor per count field, each documented with what it counts.
macro_rules! count_accessors {
    ($type:ty { $($method:ident => $field:ident: $what:literal),+ $(,)? }) => {
        impl $type {
            $(
                #[doc = concat!("`", stringify!($field), "` (", $what, ") as an integer.")]
                ///
                /// `None` when the server sent a number that is not a non-negative integer fitting
                /// a `u64`, such as `-1`, `2.5` or `1e30`; the field itself keeps the number as sent.
                pub fn $method(&self) -> Option<u64> {
                    exact_count(&self.$field)
                }
            )+
        }
    };
}

count_accessors!(ConversationList {
    total_u64 => total: "how many conversations the project has in all",
    count_u64 => count: "how many conversations this page holds",
    page_size_u64 => page_size: "the page size the server applied",
});

count_accessors!(FeedbackList {
    positive_feedback_count_u64 => positive_feedback_count: "positive feedback over the whole project",
    negative_feedback_count_u64 => negative_feedback_count: "negative feedback over the whole project",
});

count_accessors!(QueryData {
    total_u64 => total: "how many rows the query matches in all",
    count_u64 => count: "how many rows this answer holds",
    page_size_u64 => page_size: "the page size the server applied",
});

count_accessors!(TopSearchQueriesResponseData {
    total_u64 => total: "how many search queries there are in all",
});

count_accessors!(WeeklySearchUsersResponseData {
    total_u64 => total: "how many weeks there are in all",
});

#[cfg(test)]
mod tests {
    use super::exact_count;

    fn number(json: &str) -> serde_json::Number {
        serde_json::from_str(json).unwrap_or_else(|error| panic!("{json}: {error}"))
    }

    #[test]
    fn integers_and_integral_floats_are_counts() {
        assert_eq!(exact_count(&number("0")), Some(0));
        assert_eq!(exact_count(&number("20")), Some(20));
        assert_eq!(exact_count(&number("20.0")), Some(20));
        assert_eq!(exact_count(&number("2e3")), Some(2000));
        assert_eq!(exact_count(&number("-0.0")), Some(0));
        assert_eq!(exact_count(&number("18446744073709551615")), Some(u64::MAX));
        // The largest float below 2^64 still fits.
        assert_eq!(
            exact_count(&number("18446744073709549568.0")),
            Some(18_446_744_073_709_549_568)
        );
    }

    #[test]
    fn anything_else_is_none_rather_than_a_wrong_count() {
        for json in [
            "-1",
            "-20.0",
            "2.5",
            "0.1",
            "18446744073709551616",
            "18446744073709551616.0",
            "1e30",
            "-9223372036854775808",
        ] {
            assert_eq!(exact_count(&number(json)), None, "{json}");
        }
    }
}
