//! What a new user reaches for first: counts as integers, timestamps as `DateTime<Utc>`, the
//! messages of an OpenAI conversation as OpenAI messages, and the prelude, on decoded responses.

use inkeep_analytics::prelude::*;
// The `serde_json` the SDK re-exports, so that users need not match its version.
use inkeep_analytics::serde_json as sdk_json;
use inkeep_analytics::types::{
    ConversationList, FeedbackList, FeedbackWithContext, QueryResponse, SearchQueryCount,
    TopSearchQueriesResponse, WeeklySearchUsersResponse,
};

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// A page with one conversation of each kind the spec lists and one it does not.
const CONVERSATIONS: &str = include_str!("fixtures/conversations.json");

fn conversation_page() -> std::result::Result<ConversationList, serde_json::Error> {
    serde_json::from_str(CONVERSATIONS)
}

fn conversation(page: &ConversationList, id: &str) -> Conversation {
    page.conversations
        .iter()
        .find(|conversation| conversation.id() == Some(id))
        .cloned()
        .unwrap_or_else(|| panic!("{id} is in the fixture"))
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .with_timezone(&Utc)
}

/// The fixture page with its three counts replaced by `value`.
fn page_with_counts(value: Value) -> std::result::Result<ConversationList, serde_json::Error> {
    let mut page: Value = serde_json::from_str(CONVERSATIONS)?;
    for key in ["total", "pageSize", "count"] {
        page[key] = value.clone();
    }
    serde_json::from_value(page)
}

#[test]
fn page_counts_read_as_integers_and_keep_the_number_as_sent() -> TestResult {
    let page = conversation_page()?;
    // `total` was sent as `20.0`: it is the count 20, and the field still holds the float.
    assert_eq!(page.total_u64(), Some(20));
    assert_eq!(page.page_size_u64(), Some(100));
    assert_eq!(page.count_u64(), Some(4));
    assert_eq!(serde_json::to_value(&page)?["total"], json!(20.0));
    Ok(())
}

#[test]
fn counts_that_are_not_non_negative_integers_read_as_none() -> TestResult {
    for sent in [
        json!(-1),
        json!(-20.0),
        json!(2.5),
        json!(1e30),
        // 2^64, one past `u64::MAX`: decoded as a float, and never clamped to `u64::MAX`.
        serde_json::from_str::<Value>("18446744073709551616")?,
    ] {
        let page = page_with_counts(sent.clone())?;
        assert_eq!(page.total_u64(), None, "total {sent}");
        assert_eq!(page.page_size_u64(), None, "pageSize {sent}");
        assert_eq!(page.count_u64(), None, "count {sent}");
        // The number is kept as sent, so the page serializes back unchanged.
        assert_eq!(serde_json::to_value(&page)?["total"], sent);
    }
    let largest = page_with_counts(serde_json::from_str("18446744073709551615")?)?;
    assert_eq!(largest.total_u64(), Some(u64::MAX));
    Ok(())
}

#[test]
fn a_count_sent_as_a_string_is_refused_when_decoding() {
    // The spec types these counts as numbers, so a string fails the page with a decoding error
    // naming the field, rather than reaching the accessors.
    let error = page_with_counts(json!("20"))
        .err()
        .map(|error| error.to_string());
    assert!(
        error
            .as_deref()
            .is_some_and(|error| error.contains("string")),
        "{error:?}"
    );
}

#[test]
fn the_counts_the_api_sends_as_strings_parse_or_fail_without_panicking() -> TestResult {
    let count = |text: &str| -> std::result::Result<SearchQueryCount, serde_json::Error> {
        serde_json::from_value(json!({"count": text, "search_query": "pricing"}))
    };
    assert_eq!(count("20")?.count_u64().ok(), Some(20));
    for text in ["-1", "2.5", "twenty", "18446744073709551616"] {
        assert!(count(text)?.count_u64().is_err(), "{text}");
    }
    Ok(())
}

#[test]
fn feedback_query_and_search_counts_read_as_integers() -> TestResult {
    let feedback: FeedbackList = serde_json::from_value(json!({
        "positiveFeedback": [],
        "negativeFeedback": [],
        "positiveFeedbackCount": 12,
        "negativeFeedbackCount": -3,
    }))?;
    assert_eq!(feedback.positive_feedback_count_u64(), Some(12));
    assert_eq!(feedback.negative_feedback_count_u64(), None);

    let answer: QueryResponse = serde_json::from_value(json!({
        "status": "ok",
        "data": {"result": [{"type": "openai"}], "total": 7, "pageSize": 1000.0, "count": 1},
    }))?;
    assert_eq!(answer.data.total_u64(), Some(7));
    assert_eq!(answer.data.page_size_u64(), Some(1000));
    assert_eq!(answer.data.count_u64(), Some(1));

    let top: TopSearchQueriesResponse = serde_json::from_value(json!({
        "data": {"result": [{"count": "4", "search_query": "pricing"}], "total": 1},
    }))?;
    assert_eq!(top.data.total_u64(), Some(1));
    let weekly: WeeklySearchUsersResponse = serde_json::from_value(json!({
        "data": {"result": [], "total": 0.5},
    }))?;
    assert_eq!(weekly.data.total_u64(), None);
    Ok(())
}

#[test]
fn timestamps_read_as_utc_whatever_the_offset() -> TestResult {
    let page = conversation_page()?;
    let openai = conversation(&page, "conv_openai");
    // With `Z` and milliseconds.
    assert_eq!(openai.created_at_utc(), Some(utc("2025-01-01T00:00:00Z")));
    // With a `+02:00` offset and one fractional digit, converted to UTC.
    assert_eq!(
        openai.updated_at_utc(),
        Some(utc("2025-01-01T00:00:01.500Z"))
    );
    let messages: Vec<_> = openai.messages().to_vec();
    // Nanoseconds are kept.
    assert_eq!(
        messages[0].updated_at_utc(),
        Some(utc("2025-01-01T00:00:00.123456789Z"))
    );
    // With `Z` and no fraction.
    assert_eq!(
        messages[0].created_at_utc(),
        Some(utc("2025-01-01T00:00:00Z"))
    );

    let copilot = conversation(&page, "conv_copilot");
    // A negative offset.
    assert_eq!(copilot.created_at_utc(), Some(utc("2025-02-01T14:05:00Z")));
    // RFC 3339 allows a space between date and time.
    let ticket = conversation(&page, "conv_ticket");
    assert_eq!(ticket.created_at_utc(), Some(utc("2025-02-01T09:00:00Z")));
    Ok(())
}

#[test]
fn timestamps_in_other_formats_read_as_none_and_the_string_is_kept() -> TestResult {
    let page = conversation_page()?;
    let Some(openai) = conversation(&page, "conv_openai").as_openai().cloned() else {
        panic!("conv_openai is an OpenAI conversation");
    };
    // Garbage: the page still decodes, and the text is kept as sent.
    let second = openai.openai_messages().nth(1);
    assert_eq!(second.map(|m| m.updated_at.as_str()), Some("last tuesday"));
    assert_eq!(second.and_then(|m| m.updated_at_utc()), None);

    // No offset, so no zone: not guessed.
    let Some(ticket) = conversation(&page, "conv_ticket")
        .as_support_ticket()
        .cloned()
    else {
        panic!("conv_ticket is a support ticket");
    };
    assert_eq!(ticket.updated_at, "2025-02-01T09:30:00");
    assert_eq!(ticket.updated_at_utc(), None);
    // A bare date.
    let copilot = conversation(&page, "conv_copilot");
    assert_eq!(copilot.updated_at_utc(), None);
    // An unknown kind is read from its JSON: a string that parses, and a number that does not.
    let voice = conversation(&page, "conv_voice");
    assert_eq!(voice.created_at_utc(), Some(utc("2025-03-01T08:00:00Z")));
    assert_eq!(voice.updated_at_utc(), None);

    // Serialized again, every timestamp is the string the server sent.
    let again = serde_json::to_value(&page)?;
    let sent: Value = serde_json::from_str(CONVERSATIONS)?;
    for (index, conversation) in sent["conversations"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        for key in ["createdAt", "updatedAt"] {
            assert_eq!(
                again["conversations"][index][key], conversation[key],
                "{key}"
            );
        }
    }

    for text in [
        "",
        "2025-13-01T00:00:00Z",
        "2025-01-01T24:00:00Z",
        "1735689600",
        "2025-01-01T00:00:00+2",
    ] {
        assert_eq!(parse_timestamp(text), None, "{text:?}");
    }
    Ok(())
}

#[test]
fn feedback_timestamps_allow_an_absent_updated_at() -> TestResult {
    let page = conversation_page()?;
    let conversation = serde_json::to_value(conversation(&page, "conv_openai"))?;
    let mut feedback = json!({
        "id": "fb_1",
        "type": "positive",
        "messageId": "conv_openai-m1",
        "createdAt": "2025-01-02T00:00:00.000Z",
        "conversation": conversation,
        "message": conversation["messages"][0],
    });
    let without: FeedbackWithContext = serde_json::from_value(feedback.clone())?;
    assert_eq!(without.created_at_utc(), Some(utc("2025-01-02T00:00:00Z")));
    assert_eq!(without.updated_at_utc(), None);
    feedback["updatedAt"] = json!("2025-01-02T01:00:00+01:00");
    let with: FeedbackWithContext = serde_json::from_value(feedback)?;
    assert_eq!(with.updated_at_utc(), Some(utc("2025-01-02T00:00:00Z")));
    Ok(())
}

#[test]
fn an_openai_conversation_reads_its_messages_as_openai_messages() -> TestResult {
    let page = conversation_page()?;
    let openai = conversation(&page, "conv_openai");
    let Some(messages) = openai.openai_messages() else {
        panic!("an OpenAI conversation has OpenAI messages");
    };
    let read: Vec<(&str, OpenAiRole)> = messages
        .map(|message| (message.id.as_str(), message.role.clone()))
        .collect();
    assert_eq!(
        read,
        [
            ("conv_openai-m1", OpenAiRole::User),
            ("conv_openai-m2", OpenAiRole::Assistant)
        ]
    );
    // In order, from both ends, and the same messages as the union holds.
    assert_eq!(
        openai
            .openai_messages()
            .map(|m| m.rev().map(|m| m.id.clone()).collect::<Vec<_>>()),
        Some(vec![
            "conv_openai-m2".to_string(),
            "conv_openai-m1".to_string()
        ])
    );
    assert_eq!(
        openai.openai_messages().map(Iterator::count),
        Some(openai.messages().len())
    );
    assert!(
        openai
            .messages()
            .iter()
            .all(|message| message.as_openai().is_some()
                && message.as_support_ticket().is_none()
                && message.as_support_copilot().is_none())
    );
    Ok(())
}

#[test]
fn other_kinds_have_no_openai_messages_but_their_own_accessors() -> TestResult {
    let page = conversation_page()?;

    let ticket = conversation(&page, "conv_ticket");
    assert!(ticket.openai_messages().is_none());
    assert!(ticket.as_openai().is_none());
    assert_eq!(
        ticket.as_support_ticket().map(|c| c.id.as_str()),
        Some("conv_ticket")
    );
    assert_eq!(
        ticket
            .messages()
            .first()
            .and_then(Message::as_support_ticket)
            .map(|m| m.role.as_str()),
        Some("customer")
    );

    let copilot = conversation(&page, "conv_copilot");
    assert!(copilot.openai_messages().is_none());
    assert_eq!(
        copilot.as_support_copilot().map(|c| c.id.as_str()),
        Some("conv_copilot")
    );
    assert_eq!(
        copilot
            .messages()
            .first()
            .and_then(Message::as_support_copilot)
            .map(|m| m.role.as_str()),
        Some("agent")
    );
    assert!(
        copilot
            .messages()
            .first()
            .and_then(Message::as_openai)
            .is_none()
    );

    let voice = conversation(&page, "conv_voice");
    assert!(voice.is_unknown());
    assert!(voice.openai_messages().is_none());
    assert!(voice.as_openai().is_none() && voice.as_support_ticket().is_none());
    assert!(voice.as_support_copilot().is_none());
    Ok(())
}

#[test]
fn an_openai_message_of_another_kind_is_skipped_not_misread() -> TestResult {
    // The API does not send one, but a message of another kind in an OpenAI conversation must
    // neither fail nor pass for an OpenAI message.
    let mut page: Value = serde_json::from_str(CONVERSATIONS)?;
    let ticket_message = page["conversations"][1]["messages"][0].clone();
    if let Some(messages) = page["conversations"][0]["messages"].as_array_mut() {
        messages.insert(1, ticket_message);
    }
    let page: ConversationList = serde_json::from_value(page)?;
    let openai = conversation(&page, "conv_openai");
    assert_eq!(openai.messages().len(), 3);
    let ids: Option<Vec<&str>> = openai
        .openai_messages()
        .map(|messages| messages.map(|m| m.id.as_str()).collect());
    assert_eq!(ids, Some(vec!["conv_openai-m1", "conv_openai-m2"]));
    Ok(())
}

#[test]
fn the_prelude_names_what_driving_the_sdk_takes() -> TestResult {
    // `Map`, `Value` and `json!` fill `properties` and `extra`.
    let mut conversation = CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("Hi")]);
    let mut properties = Map::new();
    properties.insert("plan".into(), Value::from("pro"));
    conversation.properties = Some(properties);
    conversation.extra.insert("channel".into(), json!("web"));
    let body = serde_json::to_value(&conversation)?;
    assert_eq!(body["properties"]["plan"], "pro");
    assert_eq!(body["channel"], "web");
    // The serde_json the SDK is built with is the one re-exported at its root.
    assert_eq!(sdk_json::to_value(&conversation)?, body);

    // The stream extension traits are in scope: `try_collect` and `map` are their methods.
    let items = futures::stream::iter([Ok::<_, Error>(1), Ok(2)]);
    let collected: Vec<i32> = futures::executor::block_on(items.map_ok(|n| n * 10).try_collect())?;
    assert_eq!(collected, [10, 20]);

    // The query builders and view fields.
    let query = query::conversations()
        .select(Selection::field(ConversationsViewField::Type))
        .group_by(ConversationsViewField::Type)
        .filter(Filter::eq(ConversationsViewField::Type, "openai"))
        .order_by(Column::field(ConversationsViewField::Type).asc());
    let body = serde_json::to_value(query.build())?;
    assert_eq!(
        body["where"],
        json!({"condition": {"field": "type", "operator": "eq", "value": "openai"}})
    );
    assert_eq!(
        body["orderBy"][0],
        json!({"field": "type", "direction": "asc"})
    );
    assert_eq!(StatusCode::NOT_FOUND.as_u16(), 404);
    Ok(())
}
