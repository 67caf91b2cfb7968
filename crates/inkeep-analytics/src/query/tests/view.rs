//! The view markers, their default time fields, and fields parsed from text.

use super::*;

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
