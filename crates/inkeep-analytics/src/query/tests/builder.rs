//! Queries as a whole: empty, with notes, with a search, and converted into their view's body.

use super::*;

#[test]
fn an_empty_query_is_an_empty_object() -> TestResult {
    round_trip(&conversations().build(), json!({}))?;
    round_trip(&events().build(), json!({}))?;
    round_trip(&feedback().build(), json!({}))?;
    round_trip(&semantic_threads().build(), json!({}))
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
