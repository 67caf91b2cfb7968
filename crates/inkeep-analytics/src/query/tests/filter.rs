//! Filters: every operator, every kind of operand, JSON paths, and `and`/`or` trees.

use super::*;

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
fn a_field_newer_than_the_spec_is_sent_as_given() -> TestResult {
    round_trip(
        &where_body(Filter::eq(C::Other("sentimentScore".to_string()), 0.5)),
        json!({"where": {"condition": {"field": "sentimentScore", "operator": "eq", "value": 0.5}}}),
    )
}
