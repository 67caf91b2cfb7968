//! Typed reads of result rows and of the counts the API sends as strings.

use super::*;

fn row(value: serde_json::Value) -> Result<types::QueryRow, serde_json::Error> {
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
        row.get_u64(Column::<ConversationsView>::aggregate_rows(
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
