//! Requests for property keys and values.

use super::*;

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
