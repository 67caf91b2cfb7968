//! Every body is compared with JSON written by hand from the API reference, then decoded back,
//! so that what is sent is what the reference shows and what the generated types read.

use std::fmt::Debug;
use std::num::NonZeroU64;

use chrono::DateTime;
use serde::Serialize;
use serde::de::DeserializeOwned;

use serde_json::json;

use super::*;
use crate::error::Error;
use crate::types;
use crate::types::{
    AggregationFunction, ConversationsViewField as C, EventsViewField as E, FeedbackViewField,
    FieldMode, FilterOperator, PropertyField, SemanticThreadsViewField as S, SortDirection,
    TimeUnit,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Asserts that `body` serializes to `expected`, and that `expected` decodes into `body`.
fn round_trip<B>(body: &B, expected: serde_json::Value) -> TestResult
where
    B: Serialize + DeserializeOwned + PartialEq + Debug,
{
    assert_eq!(serde_json::to_value(body)?, expected);
    let decoded: B = serde_json::from_value(expected)?;
    assert_eq!(&decoded, body);
    Ok(())
}

/// A conversations query with only `filter`, and the body it must make.
fn where_body(filter: Filter<ConversationsView>) -> types::QueryConversationsBody {
    conversations().filter(filter).build()
}

#[test]
fn an_empty_query_is_an_empty_object() -> TestResult {
    round_trip(&conversations().build(), json!({}))?;
    round_trip(&events().build(), json!({}))?;
    round_trip(&feedback().build(), json!({}))?;
    round_trip(&semantic_threads().build(), json!({}))
}

#[test]
fn every_operator_sends_its_wire_name_and_value() -> TestResult {
    let cases: Vec<(Filter<ConversationsView>, serde_json::Value)> = vec![
        (
            Filter::eq(C::Type, "openai"),
            json!({"field": "type", "operator": "eq", "value": "openai"}),
        ),
        (
            Filter::neq(C::Type, "support_ticket"),
            json!({"field": "type", "operator": "neq", "value": "support_ticket"}),
        ),
        (
            Filter::gt(C::UserMessageCount, 3),
            json!({"field": "userMessageCount", "operator": "gt", "value": 3}),
        ),
        (
            Filter::gte(C::UserMessageCount, 4),
            json!({"field": "userMessageCount", "operator": "gte", "value": 4}),
        ),
        (
            Filter::lt(C::FirstMessageTime, "2025-02-01T00:00:00.000Z"),
            json!({"field": "firstMessageTime", "operator": "lt", "value": "2025-02-01T00:00:00.000Z"}),
        ),
        (
            Filter::lte(C::UserMessageCount, 10),
            json!({"field": "userMessageCount", "operator": "lte", "value": 10}),
        ),
        (
            Filter::is_in(C::ProjectId, ["proj_1", "proj_2"]),
            json!({"field": "projectId", "operator": "in", "value": ["proj_1", "proj_2"]}),
        ),
        (
            Filter::not_in(C::IntegrationId, ["int_1"]),
            json!({"field": "integrationId", "operator": "notIn", "value": ["int_1"]}),
        ),
        (
            Filter::array_contains(Field::properties(["tags"]), "billing"),
            json!({"field": "properties", "operator": "arrayContains", "value": {"path": ["tags"], "value": "billing"}}),
        ),
        (
            Filter::json_contains(C::Properties, json!({"source": "docs"})),
            json!({"field": "properties", "operator": "jsonContains", "value": {"source": "docs"}}),
        ),
        (
            Filter::json_contained_by(
                C::UserProperties,
                json!({"userType": "admin", "plan": "pro"}),
            ),
            json!({"field": "userProperties", "operator": "jsonContainedBy", "value": {"userType": "admin", "plan": "pro"}}),
        ),
        (
            Filter::json_has_key(C::UserProperties, "userId"),
            json!({"field": "userProperties", "operator": "jsonHasKey", "value": "userId"}),
        ),
        (
            Filter::json_array_contains_object(Field::properties(["items"]), json!({"sku": "A-1"})),
            json!({"field": "properties", "operator": "jsonArrayContainsObject", "value": {"path": ["items"], "value": {"sku": "A-1"}}}),
        ),
        (
            Filter::json_has_any_key(C::Properties, ["plan", "tier"]),
            json!({"field": "properties", "operator": "jsonHasAnyKey", "value": ["plan", "tier"]}),
        ),
        (
            Filter::json_has_all_keys(C::Properties, vec!["plan".to_string(), "seats".to_string()]),
            json!({"field": "properties", "operator": "jsonHasAllKeys", "value": ["plan", "seats"]}),
        ),
        (
            Filter::is_null(C::IntegrationId),
            json!({"field": "integrationId", "operator": "isNull"}),
        ),
        (
            Filter::is_not_null(C::ProjectId),
            json!({"field": "projectId", "operator": "isNotNull"}),
        ),
    ];
    let mut operators = Vec::new();
    for (filter, condition) in cases {
        let types::Filter::Condition(built) = filter.as_generated() else {
            panic!("expected a condition, got {filter:?}");
        };
        operators.push(built.condition.operator.as_str().to_string());
        round_trip(
            &where_body(filter),
            json!({"where": {"condition": condition}}),
        )?;
    }
    // The cases above cover the spec's operators, each once.
    assert_eq!(operators, FilterOperator::KNOWN);
    Ok(())
}

#[test]
fn an_operator_newer_than_the_spec_is_sent_as_given() -> TestResult {
    let filter = Filter::condition(
        C::Type,
        FilterOperator::Other("startsWith".to_string()),
        Some("open".into()),
    );
    round_trip(
        &where_body(filter),
        json!({"where": {"condition": {"field": "type", "operator": "startsWith", "value": "open"}}}),
    )
}

#[test]
fn scalar_values_of_every_kind() -> TestResult {
    let cases: Vec<(Operand, serde_json::Value)> = vec![
        ("text".into(), json!("text")),
        (String::from("owned").into(), json!("owned")),
        (42_i32.into(), json!(42)),
        ((-7_i64).into(), json!(-7)),
        (u64::MAX.into(), json!(18_446_744_073_709_551_615_u64)),
        (2.5_f64.into(), json!(2.5)),
        (0.5_f32.into(), json!(0.5)),
        (true.into(), json!(true)),
        (false.into(), json!(false)),
    ];
    for (value, expected) in cases {
        round_trip(
            &where_body(Filter::eq(C::UserMessageCount, value)),
            json!({"where": {"condition": {"field": "userMessageCount", "operator": "eq", "value": expected}}}),
        )?;
    }
    Ok(())
}

#[test]
fn a_date_time_is_sent_as_rfc3339_utc_with_milliseconds() -> TestResult {
    let at = DateTime::parse_from_rfc3339("2025-01-01T02:00:00+02:00")?;
    round_trip(
        &where_body(Filter::gte(C::FirstMessageTime, at)),
        json!({"where": {"condition": {"field": "firstMessageTime", "operator": "gte", "value": "2025-01-01T00:00:00.000Z"}}}),
    )
}

#[test]
fn a_list_may_hold_nulls() -> TestResult {
    round_trip(
        &where_body(Filter::is_in(C::IntegrationId, [Some("int_1"), None])),
        json!({"where": {"condition": {"field": "integrationId", "operator": "in", "value": ["int_1", null]}}}),
    )?;
    round_trip(
        &where_body(Filter::eq(
            C::Properties,
            Operand::List(vec![
                Scalar::from(1),
                Scalar::Null,
                Scalar::from("x"),
                Scalar::from(true),
            ]),
        )),
        json!({"where": {"condition": {"field": "properties", "operator": "eq", "value": [1, null, "x", true]}}}),
    )?;
    round_trip(
        &where_body(Filter::not_in(C::UserMessageCount, vec![1, 2])),
        json!({"where": {"condition": {"field": "userMessageCount", "operator": "notIn", "value": [1, 2]}}}),
    )
}

#[test]
fn a_null_value_is_sent_as_null() -> TestResult {
    let body = where_body(Filter::eq(C::ProjectId, Operand::NULL));
    let expected =
        json!({"where": {"condition": {"field": "projectId", "operator": "eq", "value": null}}});
    assert_eq!(serde_json::to_value(&body)?, expected);
    // `None::<&str>` is null too.
    let body = where_body(Filter::neq(C::ProjectId, None::<&str>));
    assert_eq!(
        serde_json::to_value(&body)?,
        json!({"where": {"condition": {"field": "projectId", "operator": "neq", "value": null}}})
    );
    // No decode check: the generated `value: Option<serde_json::Value>` reads `null` as absent.
    Ok(())
}

#[test]
fn a_float_json_cannot_hold_is_sent_as_null() -> TestResult {
    let body = where_body(Filter::gt(C::UserMessageCount, f64::NAN));
    assert_eq!(
        serde_json::to_value(&body)?,
        json!({"where": {"condition": {"field": "userMessageCount", "operator": "gt", "value": null}}})
    );
    Ok(())
}

#[test]
fn a_json_path_is_sent_with_its_value() -> TestResult {
    round_trip(
        &where_body(Filter::eq(Field::user_properties(["userId"]), "u1")),
        json!({"where": {"condition": {"field": "userProperties", "operator": "eq", "value": {"path": ["userId"], "value": "u1"}}}}),
    )?;
    round_trip(
        &where_body(Filter::gte(Field::properties(["billing", "seats"]), 5)),
        json!({"where": {"condition": {"field": "properties", "operator": "gte", "value": {"path": ["billing", "seats"], "value": 5}}}}),
    )?;
    round_trip(
        &where_body(Filter::is_in(
            Field::json(C::Properties, ["plan"]),
            ["pro", "team"],
        )),
        json!({"where": {"condition": {"field": "properties", "operator": "in", "value": {"path": ["plan"], "value": ["pro", "team"]}}}}),
    )?;
    round_trip(
        &where_body(Filter::eq(Field::properties(["trial"]), Operand::NULL)),
        json!({"where": {"condition": {"field": "properties", "operator": "eq", "value": {"path": ["trial"], "value": null}}}}),
    )?;
    // Operators without a value send the path alone.
    round_trip(
        &where_body(Filter::is_null(Field::user_properties(["email"]))),
        json!({"where": {"condition": {"field": "userProperties", "operator": "isNull", "value": {"path": ["email"]}}}}),
    )
}

#[test]
fn and_and_or_nest_to_any_depth() -> TestResult {
    let filter = Filter::all([
        Filter::eq(C::Type, "openai"),
        Filter::any([
            Filter::gt(C::UserMessageCount, 5),
            Filter::all([
                Filter::is_not_null(C::IntegrationId),
                Filter::any([
                    Filter::eq(Field::properties(["plan"]), "pro"),
                    Filter::json_has_key(C::Properties, "trial"),
                ]),
            ]),
        ]),
    ]);
    round_trip(
        &where_body(filter),
        json!({"where": {"and": [
            {"condition": {"field": "type", "operator": "eq", "value": "openai"}},
            {"or": [
                {"condition": {"field": "userMessageCount", "operator": "gt", "value": 5}},
                {"and": [
                    {"condition": {"field": "integrationId", "operator": "isNotNull"}},
                    {"or": [
                        {"condition": {"field": "properties", "operator": "eq", "value": {"path": ["plan"], "value": "pro"}}},
                        {"condition": {"field": "properties", "operator": "jsonHasKey", "value": "trial"}}
                    ]}
                ]}
            ]}
        ]}}),
    )
}

#[test]
fn chained_and_and_or_stay_flat() -> TestResult {
    let a = || Filter::<ConversationsView>::eq(C::Type, "a");
    let b = || Filter::<ConversationsView>::eq(C::Type, "b");
    let c = || Filter::<ConversationsView>::eq(C::Type, "c");
    let condition =
        |value: &str| json!({"condition": {"field": "type", "operator": "eq", "value": value}});
    round_trip(
        &where_body(a().and(b()).and(c())),
        json!({"where": {"and": [condition("a"), condition("b"), condition("c")]}}),
    )?;
    round_trip(
        &where_body(a().or(b()).or(c())),
        json!({"where": {"or": [condition("a"), condition("b"), condition("c")]}}),
    )?;
    round_trip(
        &where_body(a().and(b()).or(c())),
        json!({"where": {"or": [{"and": [condition("a"), condition("b")]}, condition("c")]}}),
    )?;
    // The right-hand side is never flattened into the left.
    round_trip(
        &where_body(a().and(Filter::all([b(), c()]))),
        json!({"where": {"and": [condition("a"), {"and": [condition("b"), condition("c")]}]}}),
    )?;
    // Filtering twice narrows.
    round_trip(
        &conversations().filter(a()).filter(b()).build(),
        json!({"where": {"and": [condition("a"), condition("b")]}}),
    )
}

#[test]
fn an_empty_and_or_or_is_sent_as_is() -> TestResult {
    round_trip(&where_body(Filter::all([])), json!({"where": {"and": []}}))?;
    round_trip(&where_body(Filter::any([])), json!({"where": {"or": []}}))
}

#[test]
fn aggregation_selections_with_every_function() -> TestResult {
    let functions = [
        (AggregationFunction::Sum, "sum"),
        (AggregationFunction::Count, "count"),
        (AggregationFunction::CountDistinct, "countDistinct"),
        (AggregationFunction::Avg, "avg"),
        (AggregationFunction::Min, "min"),
        (AggregationFunction::Max, "max"),
    ];
    let names: Vec<&str> = functions.iter().map(|(_, name)| *name).collect();
    assert_eq!(names, AggregationFunction::KNOWN);
    for (function, name) in functions {
        let body = conversations()
            .select(Selection::aggregate(function.clone(), C::UserMessageCount))
            .select(Selection::aggregate(
                function.clone(),
                Field::properties(["seats"]),
            ))
            .select(Selection::aggregate_rows(function))
            .build();
        round_trip(
            &body,
            json!({"select": [
                {"type": "aggregation", "aggregation": name, "field": "userMessageCount"},
                {"type": "aggregation", "aggregation": name, "field": "properties", "path": ["seats"]},
                {"type": "aggregation", "aggregation": name}
            ]}),
        )?;
    }
    round_trip(
        &events().select(Selection::count()).build(),
        json!({"select": [{"type": "aggregation", "aggregation": "count"}]}),
    )
}

#[test]
fn time_selections_with_every_unit() -> TestResult {
    let units = [
        (TimeUnit::Hour, "hour"),
        (TimeUnit::Day, "day"),
        (TimeUnit::Week, "week"),
        (TimeUnit::Month, "month"),
    ];
    let names: Vec<&str> = units.iter().map(|(_, name)| *name).collect();
    assert_eq!(names, TimeUnit::KNOWN);
    for (unit, name) in units {
        let body = events()
            .select(Selection::time_of(E::CreatedAt, unit.clone()))
            .select(Selection::time(unit))
            .build();
        round_trip(
            &body,
            json!({"select": [
                {"type": "time", "timeUnit": name, "field": "createdAt"},
                {"type": "time", "timeUnit": name}
            ]}),
        )?;
    }
    Ok(())
}

#[test]
fn field_selections_with_path_and_mode() -> TestResult {
    assert_eq!(FieldMode::KNOWN, ["unpack", "json"]);
    let body = feedback()
        .select(FeedbackViewField::Type)
        .select(Selection::field(FeedbackViewField::Reasons))
        .select(Selection::field(Field::user_properties(["userId"])))
        .select(Selection::field_as(
            FeedbackViewField::Properties,
            FieldMode::Unpack,
        ))
        .select(Selection::field_as(
            Field::properties(["context", "page"]),
            FieldMode::Json,
        ))
        .select(Field::properties(["source"]))
        .build();
    round_trip(
        &body,
        json!({"select": [
            {"type": "field", "field": "type"},
            {"type": "field", "field": "reasons"},
            {"type": "field", "field": "userProperties", "path": ["userId"]},
            {"type": "field", "field": "properties", "mode": "unpack"},
            {"type": "field", "field": "properties", "path": ["context", "page"], "mode": "json"},
            {"type": "field", "field": "properties", "path": ["source"]}
        ]}),
    )
}

#[test]
fn group_by_with_path_and_include_in_select() -> TestResult {
    let body = conversations()
        .select(Selection::count())
        .group_by(C::Type)
        .group_by(GroupBy::new(Field::properties(["plan"])).include_in_select(true))
        .group_by(GroupBy::new(C::ProjectId).include_in_select(false))
        .group_by(Field::user_properties(["userType"]))
        .build();
    round_trip(
        &body,
        json!({
            "select": [{"type": "aggregation", "aggregation": "count"}],
            "groupBy": [
                {"field": "type"},
                {"field": "properties", "path": ["plan"], "includeInSelect": true},
                {"field": "projectId", "includeInSelect": false},
                {"field": "userProperties", "path": ["userType"]}
            ]
        }),
    )
}

#[test]
fn order_by_fields_time_buckets_and_aggregates() -> TestResult {
    let body = events()
        .order_by(OrderBy::asc(E::CreatedAt))
        .order_by(OrderBy::desc(E::EventType))
        .order_by(Column::time_bucket(E::CreatedAt, TimeUnit::Day).desc())
        .order_by(Column::time_bucket(E::CreatedAt, TimeUnit::Month).asc())
        .order_by(Column::aggregate(AggregationFunction::Count, E::Id).desc())
        .order_by(OrderBy::new(
            Column::aggregate(AggregationFunction::Sum, Field::properties(["userId"])),
            SortDirection::Asc,
        ))
        .order_by(Column::aggregate_rows(AggregationFunction::Count).desc())
        .order_by(Column::raw("avg_latency").asc())
        .build();
    round_trip(
        &body,
        json!({"orderBy": [
            {"field": "createdAt", "direction": "asc"},
            {"field": "eventType", "direction": "desc"},
            {"field": "createdAt_day", "direction": "desc"},
            {"field": "createdAt_month", "direction": "asc"},
            {"field": "count_id", "direction": "desc"},
            {"field": "sum_properties.userId", "direction": "asc"},
            {"field": "count", "direction": "desc"},
            {"field": "avg_latency", "direction": "asc"}
        ]}),
    )
}

#[test]
fn notes_up_to_the_limit_are_sent() -> TestResult {
    // The limit counts characters, not bytes.
    let notes = "é".repeat(80);
    let body = conversations().notes(notes.as_str())?.build();
    round_trip(&body, json!({"notes": notes}))?;
    let body = semantic_threads().notes("weekly report")?.build();
    round_trip(&body, json!({"notes": "weekly report"}))
}

#[test]
fn notes_over_the_limit_are_refused_before_any_request() {
    let refused = events().notes("x".repeat(81));
    match refused {
        Err(Error::InvalidInput { reason }) => {
            assert!(reason.contains("81 characters"), "{reason}");
            assert!(reason.contains("longer than 80 characters"), "{reason}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert!(matches!(
        feedback().notes("é".repeat(81)),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        conversations().notes("n".repeat(500)),
        Err(Error::InvalidInput { .. })
    ));
}

#[test]
fn a_semantic_threads_query_carries_its_search() -> TestResult {
    let body = semantic_threads()
        .search("how do I rotate an API key")
        .select(S::Subject)
        .select(Selection::aggregate(AggregationFunction::Count, S::Id))
        .group_by(S::Subject)
        .filter(
            Filter::eq(S::IsDocumented, false).and(Filter::array_contains(S::Languages, "rust")),
        )
        .order_by(Column::aggregate(AggregationFunction::Count, S::Id).desc())
        .notes("docs gaps")?
        .build();
    round_trip(
        &body,
        json!({
            "query": "how do I rotate an API key",
            "select": [
                {"type": "field", "field": "subject"},
                {"type": "aggregation", "aggregation": "count", "field": "id"}
            ],
            "groupBy": [{"field": "subject"}],
            "where": {"and": [
                {"condition": {"field": "isDocumented", "operator": "eq", "value": false}},
                {"condition": {"field": "languages", "operator": "arrayContains", "value": "rust"}}
            ]},
            "orderBy": [{"field": "count_id", "direction": "desc"}],
            "notes": "docs gaps"
        }),
    )
}

#[test]
fn a_full_query_converts_into_its_view_body() -> TestResult {
    let query = conversations()
        .select(Selection::time_of(C::FirstMessageTime, TimeUnit::Week))
        .select(Selection::aggregate(
            AggregationFunction::Avg,
            C::UserMessageCount,
        ))
        .filter(Filter::eq(C::Type, "openai"))
        .order_by(Column::time_bucket(C::FirstMessageTime, TimeUnit::Week).asc());
    let expected = json!({
        "select": [
            {"type": "time", "timeUnit": "week", "field": "firstMessageTime"},
            {"type": "aggregation", "aggregation": "avg", "field": "userMessageCount"}
        ],
        "where": {"condition": {"field": "type", "operator": "eq", "value": "openai"}},
        "orderBy": [{"field": "firstMessageTime_week", "direction": "asc"}]
    });
    let via_from = types::QueryConversationsBody::from(query.clone());
    let via_into: types::QueryConversationsBody = query.clone().into();
    assert_eq!(via_from, via_into);
    assert_eq!(
        query.filter_ref().map(Filter::as_generated),
        via_from.where_.as_ref()
    );
    round_trip(&query.build(), expected)
}

#[test]
fn generated_parts_pass_through_unchanged() -> TestResult {
    let raw_selection: types::Selection = serde_json::from_value(
        json!({"type": "percentile", "field": "userMessageCount", "p": 0.9}),
    )?;
    let raw_filter: types::Filter = serde_json::from_value(
        json!({"condition": {"field": "type", "operator": "eq", "value": "openai"}}),
    )?;
    let body = conversations()
        .select(Selection::from_generated(raw_selection))
        .filter(Filter::from_generated(raw_filter))
        .build();
    round_trip(
        &body,
        json!({
            "select": [{"type": "percentile", "field": "userMessageCount", "p": 0.9}],
            "where": {"condition": {"field": "type", "operator": "eq", "value": "openai"}}
        }),
    )
}

#[test]
fn a_field_newer_than_the_spec_is_sent_as_given() -> TestResult {
    round_trip(
        &where_body(Filter::eq(C::Other("sentimentScore".to_string()), 0.5)),
        json!({"where": {"condition": {"field": "sentimentScore", "operator": "eq", "value": 0.5}}}),
    )
}

#[test]
fn property_requests() -> TestResult {
    round_trip(
        &property_keys(PropertyField::Properties),
        json!({"field": "properties"}),
    )?;
    round_trip(
        &property_keys_in(
            PropertyField::UserProperties,
            Some(Filter::eq(E::EventType, "search")),
        ),
        json!({
            "field": "userProperties",
            "views": ["events_view"],
            "where": {"condition": {"field": "eventType", "operator": "eq", "value": "search"}}
        }),
    )?;
    round_trip(
        &property_keys_in::<SemanticThreadsView>(PropertyField::Properties, None),
        json!({"field": "properties", "views": ["semantic_threads_view"]}),
    )?;
    round_trip(
        &property_values(PropertyField::Properties, "plan"),
        json!({"field": "properties", "key": "plan", "limit": 100}),
    )?;
    let mut request = property_values_in(
        PropertyField::UserProperties,
        "userType",
        Some(Filter::eq(FeedbackViewField::Type, "negative")),
    );
    request.limit = NonZeroU64::MIN;
    round_trip(
        &request,
        json!({
            "field": "userProperties",
            "key": "userType",
            "limit": 1,
            "views": ["feedback_view"],
            "where": {"condition": {"field": "type", "operator": "eq", "value": "negative"}}
        }),
    )?;
    assert_eq!(
        property_keys_in::<ConversationsView>(PropertyField::Properties, None).views,
        [types::View::ConversationsView]
    );
    Ok(())
}

#[test]
fn column_names() {
    assert_eq!(
        Column::field(C::UserMessageCount).as_str(),
        "userMessageCount"
    );
    assert_eq!(
        Column::time_bucket(S::FirstMessageTime, TimeUnit::Hour).to_string(),
        "firstMessageTime_hour"
    );
    assert_eq!(
        Column::aggregate(
            AggregationFunction::CountDistinct,
            FeedbackViewField::MessageId
        )
        .as_ref(),
        "countDistinct_messageId"
    );
    assert_eq!(
        Column::aggregate(
            AggregationFunction::Max,
            Field::<EventsView>::properties(["a", "b"])
        )
        .as_str(),
        "max_properties.a.b"
    );
    assert_eq!(
        Column::<EventsView>::from(E::SearchQuery).as_str(),
        "searchQuery"
    );
}

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

#[test]
fn each_view_names_itself_for_property_look_ups() {
    assert_eq!(ConversationsView::view(), types::View::ConversationsView);
    assert_eq!(EventsView::view(), types::View::EventsView);
    assert_eq!(FeedbackView::view(), types::View::FeedbackView);
    assert_eq!(
        SemanticThreadsView::view(),
        types::View::SemanticThreadsView
    );
}

#[test]
fn each_view_has_its_default_time_field() {
    assert_eq!(ConversationsView::DEFAULT_TIME_FIELD, C::FirstMessageTime);
    assert_eq!(EventsView::DEFAULT_TIME_FIELD, E::CreatedAt);
    assert_eq!(
        FeedbackView::DEFAULT_TIME_FIELD,
        FeedbackViewField::CreatedAt
    );
    assert_eq!(SemanticThreadsView::DEFAULT_TIME_FIELD, S::FirstMessageTime);
    assert_eq!(
        Column::<FeedbackView>::time(TimeUnit::Week).as_str(),
        "createdAt_week"
    );
    assert_eq!(
        Column::<SemanticThreadsView>::time(TimeUnit::Hour).as_str(),
        "firstMessageTime_hour"
    );
}

#[test]
fn fields_parse_from_text_with_their_json_path() -> TestResult {
    assert_eq!(
        Field::<ConversationsView>::parse("type")?,
        Field::from(C::Type)
    );
    assert_eq!(
        Field::<EventsView>::parse("userProperties.billing.plan")?,
        Field::user_properties(["billing", "plan"])
    );
    assert_eq!(
        "properties.plan".parse::<Field<FeedbackView>>()?,
        Field::properties(["plan"])
    );
    assert_eq!(E::parse_known("eventType")?, E::EventType);
    for (text, expected) in [
        (
            "eventType",
            "\"eventType\" is not a field of this view (conversations_view)",
        ),
        ("", "\"\" is not a field of this view"),
        ("Type", "its fields are id, userMessageCount,"),
        (
            "properties.",
            "a part of the JSON path after \"properties\" is empty",
        ),
        ("properties..plan", "is empty"),
    ] {
        match Field::<ConversationsView>::parse(text) {
            Err(Error::InvalidInput { reason }) => {
                assert!(reason.contains(expected), "{text:?} gave {reason:?}")
            }
            other => panic!("{text:?}: expected InvalidInput, got {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn each_selection_names_the_column_it_adds() -> TestResult {
    let cases: Vec<(Selection<ConversationsView>, &str)> = vec![
        (Selection::field(C::Type), "type"),
        (
            Selection::field(Field::properties(["plan", "tier"])),
            "properties.plan.tier",
        ),
        (
            Selection::field_as(C::UserProperties, FieldMode::Json),
            "userProperties",
        ),
        (
            Selection::aggregate(AggregationFunction::Count, C::Id),
            "count_id",
        ),
        (
            Selection::aggregate(AggregationFunction::Count, Field::properties(["plan"])),
            "count_properties.plan",
        ),
        (Selection::count(), "count"),
        (Selection::aggregate_rows(AggregationFunction::Max), "max"),
        (Selection::time(TimeUnit::Month), "firstMessageTime_month"),
        (
            Selection::time_of(C::FirstMessageTime, TimeUnit::Day),
            "firstMessageTime_day",
        ),
    ];
    for (selection, expected) in cases {
        assert_eq!(
            selection
                .column()
                .map(|column| column.to_string())
                .as_deref(),
            Some(expected),
            "{selection:?}"
        );
    }
    assert_eq!(
        Selection::<EventsView>::time(TimeUnit::Day).column(),
        Some(Column::time_bucket(E::CreatedAt, TimeUnit::Day))
    );
    // The column a selection names is the one its aggregate or time bucket spells.
    assert_eq!(
        Selection::<EventsView>::aggregate(AggregationFunction::Sum, Field::properties(["userId"]))
            .column(),
        Some(Column::aggregate(
            AggregationFunction::Sum,
            Field::properties(["userId"])
        ))
    );
    let newer: types::Selection = serde_json::from_value(
        json!({"type": "percentile", "field": "userMessageCount", "p": 0.9}),
    )?;
    assert_eq!(
        Selection::<ConversationsView>::from_generated(newer).column(),
        None
    );
    Ok(())
}
