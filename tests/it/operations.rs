//! Every one of the 22 operations of the spec, through the typed mocks of `inkeep-analytics-mock`: so that each
//! operation's success decoding, the parameters and body it sends, its key and each error status the spec
//! documents for it are exercised at least once, and a change to the spec that breaks one breaks a test here.

use futures::TryStreamExt;
use httpmock::{Mock, MockServer};
use inkeep_analytics::chrono::{DateTime, Utc};
use inkeep_analytics::types::{
    self, CreateOpenAiConversation, CreateOpenAiMessage, CreateSupportCopilotConversation,
    CreateSupportMessage, CreateSupportTicketConversation, FeedbackInput, InsertEvent,
};
use inkeep_analytics::{Client, Error, query::CsvExport};
use inkeep_analytics_mock::MockServerExt;
use serde_json::{Map, Value, json};

use crate::support::{TEST_KEY, client, feedback_item, openai_conversation, problem};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An id that must be percent-encoded in a path: a slash would otherwise start a new segment.
const AWKWARD_ID: &str = "a/b c";

/// How [`AWKWARD_ID`] is written in a path segment.
const AWKWARD_ID_ENCODED: &str = "a%2Fb%20c";

/// Requires the request to carry the test key as a bearer token.
fn with_key(when: httpmock::When) -> httpmock::When {
    when.header("authorization", format!("Bearer {TEST_KEY}"))
}

/// Matches a write the caller sent without an id: the body as given, plus the random UUID the
/// client sets so that a retry is an upsert.
fn with_generated_id(when: httpmock::When, body: &impl serde::Serialize) -> httpmock::When {
    let expected = serde_json::to_value(body).unwrap_or_default();
    when.is_true(move |request| {
        let Ok(Value::Object(mut sent)) = serde_json::from_slice::<Value>(request.body_ref())
        else {
            return false;
        };
        let id = sent.remove("id");
        let is_uuid = id
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|id| id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4);
        is_uuid && Value::Object(sent) == expected
    })
}

/// The JSON object `value`, or an empty one when it is not an object.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A support conversation of `kind` (`support_ticket` or `support_copilot`), as the API answers it.
fn support_conversation(id: &str, kind: &str) -> Value {
    json!({
        "id": id,
        "externalId": "zendesk-4711",
        "externalUrl": "https://support.example.com/tickets/4711",
        "type": kind,
        "supportTicketConversationId": "4711",
        "createdAt": "2025-02-01T09:00:00.000Z",
        "updatedAt": "2025-02-01T09:30:00.000Z",
        "projectId": "proj_1",
        "integrationId": "int_support",
        "properties": {"priority": "high"},
        "userProperties": {"userId": 42, "supportAgentName": "Ada"},
        "tags": ["billing"],
        "visibility": "public",
        "messages": [
            {
                "id": format!("{id}-m1"),
                "type": kind,
                "externalId": null,
                "externalUrl": null,
                "conversationId": id,
                "createdAt": "2025-02-01T09:00:00.000Z",
                "updatedAt": "2025-02-01T09:00:00.000Z",
                "role": "customer",
                "content": "My invoice is wrong"
            },
            {
                "id": format!("{id}-m2"),
                "type": kind,
                "externalId": null,
                "externalUrl": null,
                "conversationId": id,
                "createdAt": "2025-02-01T09:30:00.000Z",
                "updatedAt": "2025-02-01T09:30:00.000Z",
                "role": "agent",
                "content": null
            }
        ]
    })
}

/// A logged event as the API answers it: `entity_type` with its key field and value.
fn select_event(id: &str, entity_type: &str, key: &str, value: &str, event_type: &str) -> Value {
    let mut event = json!({
        "id": id,
        "entityType": entity_type,
        "type": event_type,
        "createdAt": "2025-03-01T12:00:00.000Z",
        "projectId": "proj_1",
        "integrationId": null,
        "properties": {"surface": "widget"},
    });
    event[key] = json!(value);
    event
}

/// The problem `support::problem` builds, as the SDK's own type.
fn typed_problem(
    status: u16,
    code: &str,
    title: &str,
    request_id: &str,
) -> Result<types::Problem, serde_json::Error> {
    serde_json::from_value(problem(status, code, title, request_id))
}

/// Reads a whole export, chunk by chunk.
async fn read_export(export: CsvExport) -> Result<Vec<u8>, Error> {
    export
        .try_fold(Vec::new(), |mut bytes, chunk| async move {
            bytes.extend_from_slice(&chunk);
            Ok(bytes)
        })
        .await
}

/// A CSV file with quoting, an embedded newline and non-ASCII text, so that any re-encoding shows.
fn csv_file(view: &str) -> Vec<u8> {
    format!(
        "id,view,question\r\n\
         row_1,{view},\"How do I log, then export?\"\r\n\
         row_2,{view},\"Line one\nline two: café, naïve, 日本語\"\r\n"
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Request bodies shared by the success and error tests. They are built from the wire JSON, so
// that they do not depend on the typed query language.
// ---------------------------------------------------------------------------------------------

fn conversations_query_json() -> Value {
    json!({
        "select": [
            {"type": "field", "field": "type"},
            {"type": "aggregation", "aggregation": "count"},
            {"type": "time", "timeUnit": "day", "field": "firstMessageTime"}
        ],
        "groupBy": [{"field": "type"}],
        "where": {"and": [
            {"condition": {"field": "projectId", "operator": "eq", "value": "proj_1"}},
            {"condition": {"field": "userMessageCount", "operator": "gte", "value": 2}}
        ]},
        "orderBy": [{"field": "firstMessageTime_day", "direction": "asc"}],
        "notes": "daily conversations by type"
    })
}

fn events_query_json() -> Value {
    json!({
        "select": [
            {"type": "field", "field": "eventType"},
            {"type": "aggregation", "aggregation": "countDistinct", "field": "conversationId"}
        ],
        "groupBy": [{"field": "eventType", "includeInSelect": true}],
        "where": {"or": [
            {"condition": {"field": "eventType", "operator": "in", "value": ["message_copied", "conversation_shared", null]}},
            {"condition": {"field": "searchQuery", "operator": "isNotNull"}}
        ]},
        "orderBy": [{"field": "count_conversationId", "direction": "desc"}]
    })
}

fn feedback_query_json() -> Value {
    json!({
        "select": [
            {"type": "field", "field": "type"},
            {"type": "field", "field": "properties", "path": ["source"], "mode": "unpack"},
            {"type": "aggregation", "aggregation": "count"}
        ],
        "groupBy": [{"field": "type"}, {"field": "properties", "path": ["source"]}],
        "where": {"condition": {
            "field": "properties",
            "operator": "jsonContains",
            "value": {"path": ["source"], "value": "docs"}
        }}
    })
}

fn semantic_threads_query_json() -> Value {
    json!({
        "query": "how to log a conversation",
        "select": [
            {"type": "field", "field": "subject"},
            {"type": "aggregation", "aggregation": "avg", "field": "questionLength"}
        ],
        "groupBy": [{"field": "subject"}],
        "where": {"condition": {"field": "isDocumented", "operator": "eq", "value": false}},
        "orderBy": [{"field": "avg_questionLength", "direction": "desc"}],
        "notes": "undocumented topics"
    })
}

fn property_keys_json() -> Value {
    json!({
        "field": "userProperties",
        "views": ["conversations_view", "feedback_view"],
        "where": {"condition": {"field": "projectId", "operator": "eq", "value": "proj_1"}}
    })
}

fn property_values_json() -> Value {
    json!({
        "field": "properties",
        "key": "source",
        "views": ["events_view"],
        "limit": 25
    })
}

/// Every typed body an operation takes, built once per test.
struct Inputs {
    conversations_query: types::QueryConversationsBody,
    events_query: types::QueryEventsBody,
    feedback_query: types::QueryFeedbackBody,
    semantic_threads_query: types::QuerySemanticThreadsBody,
    property_keys: types::PropertyKeysRequest,
    property_values: types::PropertyValuesRequest,
}

impl Inputs {
    fn new() -> Result<Self, serde_json::Error> {
        Ok(Self {
            conversations_query: serde_json::from_value(conversations_query_json())?,
            events_query: serde_json::from_value(events_query_json())?,
            feedback_query: serde_json::from_value(feedback_query_json())?,
            semantic_threads_query: serde_json::from_value(semantic_threads_query_json())?,
            property_keys: serde_json::from_value(property_keys_json())?,
            property_values: serde_json::from_value(property_values_json())?,
        })
    }
}

#[test]
fn the_typed_bodies_keep_every_field_of_their_wire_json() -> TestResult {
    // The typed `body` matchers compare the JSON of these values: if decoding dropped a field, the
    // mocks below would match a smaller body than the one written here.
    let inputs = Inputs::new()?;
    assert_eq!(
        serde_json::to_value(&inputs.conversations_query)?,
        conversations_query_json()
    );
    assert_eq!(
        serde_json::to_value(&inputs.events_query)?,
        events_query_json()
    );
    assert_eq!(
        serde_json::to_value(&inputs.feedback_query)?,
        feedback_query_json()
    );
    assert_eq!(
        serde_json::to_value(&inputs.semantic_threads_query)?,
        semantic_threads_query_json()
    );
    assert_eq!(
        serde_json::to_value(&inputs.property_keys)?,
        property_keys_json()
    );
    assert_eq!(
        serde_json::to_value(&inputs.property_values)?,
        property_values_json()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GET /conversations (getAllConversation) and GET /feedback (getAllFeedback)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_all_conversation_sends_limit_and_offset_and_decodes_the_page() -> TestResult {
    let server = MockServer::start_async().await;
    let page: types::ConversationList = serde_json::from_value(json!({
        "conversations": [openai_conversation("conv_41"), support_conversation("conv_42", "support_ticket")],
        "total": 57,
        "pageSize": 2,
        "count": 2,
    }))?;
    let mock = server.list_conversations(|when, then| {
        with_key(when.limit(2).offset(40).into_inner());
        then.ok(&page);
    });

    let answer = client(&server)
        .list_conversations()
        .limit(2)
        .offset(40)
        .send()
        .await?;
    mock.assert_async().await;
    assert_eq!(answer, page);
    assert_eq!(answer.total.as_u64(), Some(57));
    assert_eq!(answer.page_size.as_u64(), Some(2));
    assert_eq!(answer.count.as_u64(), Some(2));
    let ids: Vec<Option<&str>> = answer.conversations.iter().map(|c| c.id()).collect();
    assert_eq!(ids, [Some("conv_41"), Some("conv_42")]);
    let kinds: Vec<Option<&str>> = answer.conversations.iter().map(|c| c.kind()).collect();
    assert_eq!(kinds, [Some("openai"), Some("support_ticket")]);
    assert_eq!(answer.conversations[1].messages().len(), 2);
    Ok(())
}

#[tokio::test]
async fn get_all_conversation_sends_no_paging_parameter_that_was_not_set() -> TestResult {
    let server = MockServer::start_async().await;
    let page: types::ConversationList = serde_json::from_value(json!({
        "conversations": [], "total": 0, "pageSize": 20, "count": 0,
    }))?;
    let mock = server.list_conversations(|when, then| {
        when.limit(None).offset(None);
        then.ok(&page);
    });
    let answer = client(&server).list_conversations().send().await?;
    mock.assert_async().await;
    assert!(answer.conversations.is_empty());
    assert_eq!(answer.page_size.as_u64(), Some(20));
    Ok(())
}

#[tokio::test]
async fn get_all_feedback_sends_limit_and_offset_and_decodes_both_lists() -> TestResult {
    let server = MockServer::start_async().await;
    let page: types::FeedbackList = serde_json::from_value(json!({
        "positiveFeedbackCount": 12,
        "negativeFeedbackCount": 3,
        "positiveFeedback": [feedback_item("fb_p1", "positive"), feedback_item("fb_p2", "positive")],
        "negativeFeedback": [feedback_item("fb_n1", "negative")],
    }))?;
    let mock = server.list_feedback(|when, then| {
        with_key(when.limit(5).offset(10).into_inner());
        then.ok(&page);
    });

    let answer = client(&server)
        .list_feedback()
        .limit(5)
        .offset(10)
        .send()
        .await?;
    mock.assert_async().await;
    assert_eq!(answer, page);
    assert_eq!(answer.positive_feedback_count.as_u64(), Some(12));
    assert_eq!(answer.negative_feedback_count.as_u64(), Some(3));
    let positive: Vec<&str> = answer
        .positive_feedback
        .iter()
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(positive, ["fb_p1", "fb_p2"]);
    let [negative] = answer.negative_feedback.as_slice() else {
        panic!(
            "expected one negative item, got {:?}",
            answer.negative_feedback
        );
    };
    assert_eq!(negative.type_, types::FeedbackType::Negative);
    assert_eq!(negative.message_id, "conv-of-fb_n1-m1");
    assert_eq!(negative.conversation.id(), Some("conv-of-fb_n1"));
    Ok(())
}

#[tokio::test]
async fn get_all_feedback_sends_no_paging_parameter_that_was_not_set() -> TestResult {
    let server = MockServer::start_async().await;
    let page: types::FeedbackList = serde_json::from_value(json!({
        "positiveFeedbackCount": 0,
        "negativeFeedbackCount": 0,
        "positiveFeedback": [],
        "negativeFeedback": [],
    }))?;
    let mock = server.list_feedback(|when, then| {
        when.limit(None).offset(None);
        then.ok(&page);
    });
    let answer = client(&server).list_feedback().send().await?;
    mock.assert_async().await;
    assert!(answer.positive_feedback.is_empty() && answer.negative_feedback.is_empty());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// POST /conversations (logConversation), with each kind of conversation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn log_conversation_sends_an_openai_conversation_and_decodes_the_answer() -> TestResult {
    let server = MockServer::start_async().await;
    let mut conversation = CreateOpenAiConversation::new(vec![
        CreateOpenAiMessage::system("You answer questions about the docs."),
        CreateOpenAiMessage::user("How do I log a conversation?").with_id("conv_1-m1")?,
        CreateOpenAiMessage::assistant("Send every message to POST /conversations."),
    ])
    .with_id("conv_1")?;
    conversation.properties = Some(object(json!({"source": "docs"})));
    conversation.user_properties = Some(serde_json::from_value(
        json!({"id": "u1", "identificationType": "COOKIED"}),
    )?);
    conversation.tags = Some(vec!["onboarding".into()]);
    conversation.visibility = Some(types::Visibility::Private);
    let body: types::CreateConversation = conversation.into();
    // The wire format, written out, so that the typed matcher below is not only compared with itself.
    assert_eq!(
        serde_json::to_value(&body)?,
        json!({
            "type": "openai",
            "id": "conv_1",
            "properties": {"source": "docs"},
            "userProperties": {"id": "u1", "identificationType": "COOKIED"},
            "tags": ["onboarding"],
            "visibility": "private",
            "messages": [
                {"role": "system", "content": "You answer questions about the docs."},
                {"id": "conv_1-m1", "role": "user", "content": "How do I log a conversation?"},
                {"role": "assistant", "content": "Send every message to POST /conversations."}
            ]
        })
    );
    let logged: types::Conversation = serde_json::from_value(openai_conversation("conv_1"))?;
    let mock = server.log_conversation(|when, then| {
        with_key(when.body(&body).into_inner());
        then.ok(&logged);
    });

    let answer = client(&server).log_conversation(body.clone()).await?;
    mock.assert_async().await;
    assert_eq!(answer, logged);
    let types::Conversation::OpenAi(answer) = answer else {
        panic!("expected an openai conversation, got {answer:?}");
    };
    assert_eq!(answer.id, "conv_1");
    assert_eq!(answer.project_id.as_deref(), Some("proj_1"));
    assert_eq!(answer.visibility, Some(types::Visibility::Private));
    assert_eq!(answer.messages_open_ai_format.len(), 1);
    assert_eq!(
        answer.messages_open_ai_format[0].role,
        types::OpenAiRole::User
    );
    let [types::Message::OpenAi(message)] = answer.messages.as_slice() else {
        panic!("expected one openai message, got {:?}", answer.messages);
    };
    assert_eq!(message.id, "conv_1-m1");
    assert_eq!(
        message.content,
        Some(types::OpenAiMessageContent::String(
            "How do I log a conversation?".into()
        ))
    );
    Ok(())
}

#[tokio::test]
async fn log_conversation_sends_a_support_ticket() -> TestResult {
    let server = MockServer::start_async().await;
    let mut ticket = CreateSupportTicketConversation::new(vec![
        CreateSupportMessage::new("customer", Some("My invoice is wrong".into())),
        CreateSupportMessage::new("agent", None),
    ])
    .with_id("ticket_1")?;
    ticket.external_id = Some("zendesk-4711".into());
    ticket.external_url = Some("https://support.example.com/tickets/4711".into());
    let body: types::CreateConversation = ticket.into();
    assert_eq!(
        serde_json::to_value(&body)?,
        json!({
            "type": "support_ticket",
            "id": "ticket_1",
            "externalId": "zendesk-4711",
            "externalUrl": "https://support.example.com/tickets/4711",
            "messages": [
                {"role": "customer", "content": "My invoice is wrong"},
                // Content is optional in a request: `None` leaves it out.
                {"role": "agent"}
            ]
        })
    );
    let logged: types::Conversation =
        serde_json::from_value(support_conversation("ticket_1", "support_ticket"))?;
    let mock = server.log_conversation(|when, then| {
        with_key(when.body(&body).into_inner());
        then.ok(&logged);
    });

    let answer = client(&server).log_conversation(body.clone()).await?;
    mock.assert_async().await;
    assert_eq!(answer, logged);
    let types::Conversation::SupportTicket(answer) = answer else {
        panic!("expected a support ticket, got {answer:?}");
    };
    assert_eq!(answer.id, "ticket_1");
    assert_eq!(answer.external_id.as_deref(), Some("zendesk-4711"));
    assert_eq!(answer.visibility, Some(types::Visibility::Public));
    let [
        types::Message::SupportTicket(first),
        types::Message::SupportTicket(second),
    ] = answer.messages.as_slice()
    else {
        panic!(
            "expected two support ticket messages, got {:?}",
            answer.messages
        );
    };
    assert_eq!(
        (first.role.as_str(), first.content.as_deref()),
        ("customer", Some("My invoice is wrong"))
    );
    assert_eq!(
        (second.role.as_str(), second.content.as_deref()),
        ("agent", None)
    );
    Ok(())
}

#[tokio::test]
async fn log_conversation_sends_a_support_copilot_conversation() -> TestResult {
    let server = MockServer::start_async().await;
    let copilot = CreateSupportCopilotConversation::new(vec![
        CreateSupportMessage::new("customer", Some("My invoice is wrong".into()))
            .with_id("copilot_1-m1")?,
    ]);
    let body: types::CreateConversation = copilot.into();
    assert_eq!(
        serde_json::to_value(&body)?,
        json!({
            "type": "support_copilot",
            "messages": [{"id": "copilot_1-m1", "role": "customer", "content": "My invoice is wrong"}]
        })
    );
    let logged: types::Conversation =
        serde_json::from_value(support_conversation("copilot_1", "support_copilot"))?;
    let mock = server.log_conversation(|when, then| {
        with_generated_id(with_key(when.into_inner()), &body);
        then.ok(&logged);
    });

    let answer = client(&server).log_conversation(body.clone()).await?;
    mock.assert_async().await;
    let types::Conversation::SupportCopilot(answer) = answer else {
        panic!("expected a support copilot conversation, got {answer:?}");
    };
    assert_eq!(answer.id, "copilot_1");
    assert_eq!(answer.integration_id.as_deref(), Some("int_support"));
    assert_eq!(answer.tags.as_deref(), Some(&["billing".to_string()][..]));
    assert!(matches!(
        answer.messages.first(),
        Some(types::Message::SupportCopilot(m)) if m.id == "copilot_1-m1"
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GET and DELETE /conversations/{id}, GET /conversations/external/{externalId}
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_conversation_percent_encodes_the_id_and_decodes_the_conversation() -> TestResult {
    let server = MockServer::start_async().await;
    let conversation: types::Conversation =
        serde_json::from_value(openai_conversation(AWKWARD_ID))?;
    let mock = server.get_conversation(|when, then| {
        // Both the typed matcher and the literal path: the encoding is checked, not only shared.
        with_key(when.id(AWKWARD_ID).into_inner())
            .path(format!("/conversations/{AWKWARD_ID_ENCODED}"));
        then.ok(&conversation);
    });

    let answer = client(&server).get_conversation(AWKWARD_ID).await?;
    mock.assert_async().await;
    assert_eq!(answer, conversation);
    assert_eq!(answer.id(), Some(AWKWARD_ID));
    assert_eq!(answer.kind(), Some("openai"));
    assert_eq!(
        answer.messages().first().and_then(|m| m.id()),
        Some("a/b c-m1")
    );
    Ok(())
}

#[tokio::test]
async fn get_conversation_by_external_id_percent_encodes_it() -> TestResult {
    let server = MockServer::start_async().await;
    let mut json = support_conversation("conv_9", "support_ticket");
    json["externalId"] = json!(AWKWARD_ID);
    let conversation: types::Conversation = serde_json::from_value(json)?;
    let mock = server.get_conversation_by_external_id(|when, then| {
        with_key(when.external_id(AWKWARD_ID).into_inner())
            .path(format!("/conversations/external/{AWKWARD_ID_ENCODED}"));
        then.ok(&conversation);
    });

    let answer = client(&server)
        .get_conversation_by_external_id(AWKWARD_ID)
        .await?;
    mock.assert_async().await;
    assert_eq!(answer, conversation);
    let types::Conversation::SupportTicket(answer) = answer else {
        panic!("expected a support ticket, got {answer:?}");
    };
    assert_eq!(answer.id, "conv_9");
    assert_eq!(answer.external_id.as_deref(), Some(AWKWARD_ID));
    Ok(())
}

#[tokio::test]
async fn delete_conversation_percent_encodes_the_id_and_decodes_the_result() -> TestResult {
    let server = MockServer::start_async().await;
    let result: types::DeleteResult = serde_json::from_value(json!({
        "success": true,
        "message": "Conversation deleted",
    }))?;
    let mock = server.delete_conversation(|when, then| {
        with_key(when.id(AWKWARD_ID).into_inner())
            .path(format!("/conversations/{AWKWARD_ID_ENCODED}"));
        then.ok(&result);
    });

    let answer = client(&server).delete_conversation(AWKWARD_ID).await?;
    mock.assert_async().await;
    assert!(answer.success);
    assert_eq!(answer.message, "Conversation deleted");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// POST /events (logEvent), with each entity type
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn log_event_sends_a_message_event() -> TestResult {
    let server = MockServer::start_async().await;
    let mut event =
        types::InsertMessageEvent::new("conv_1-m1", "message_copied").with_id("evt_1")?;
    event.properties = Some(object(json!({"surface": "widget"})));
    event.project_id = Some("proj_1".into());
    let body: InsertEvent = event.into();
    assert_eq!(
        serde_json::to_value(&body)?,
        json!({
            "id": "evt_1",
            "entityType": "message",
            "messageId": "conv_1-m1",
            "type": "message_copied",
            "projectId": "proj_1",
            "properties": {"surface": "widget"}
        })
    );
    let logged: types::SelectEvent = serde_json::from_value(select_event(
        "evt_1",
        "message",
        "messageId",
        "conv_1-m1",
        "message_copied",
    ))?;
    let mock = server.log_event(|when, then| {
        with_key(when.body(&body).into_inner());
        then.ok(&logged);
    });

    let answer = client(&server).log_event(body.clone()).await?;
    mock.assert_async().await;
    let types::SelectEvent::Message(answer) = answer else {
        panic!("expected a message event, got {answer:?}");
    };
    assert_eq!(answer.id, "evt_1");
    assert_eq!(answer.message_id, "conv_1-m1");
    assert_eq!(answer.type_, "message_copied");
    assert_eq!(answer.created_at, "2025-03-01T12:00:00.000Z");
    assert_eq!(answer.project_id.as_deref(), Some("proj_1"));
    assert_eq!(answer.integration_id, None);
    Ok(())
}

#[tokio::test]
async fn log_event_sends_a_conversation_event() -> TestResult {
    let server = MockServer::start_async().await;
    let body = InsertEvent::conversation("conv_1", "conversation_shared");
    assert_eq!(
        serde_json::to_value(&body)?,
        json!({"entityType": "conversation", "conversationId": "conv_1", "type": "conversation_shared"})
    );
    let logged: types::SelectEvent = serde_json::from_value(select_event(
        "evt_2",
        "conversation",
        "conversationId",
        "conv_1",
        "conversation_shared",
    ))?;
    let mock = server.log_event(|when, then| {
        with_generated_id(with_key(when.into_inner()), &body);
        then.ok(&logged);
    });

    let answer = client(&server).log_event(body.clone()).await?;
    mock.assert_async().await;
    assert_eq!(answer, logged);
    let types::SelectEvent::Conversation(answer) = answer else {
        panic!("expected a conversation event, got {answer:?}");
    };
    assert_eq!(answer.id, "evt_2");
    assert_eq!(answer.conversation_id, "conv_1");
    assert_eq!(answer.type_, "conversation_shared");
    Ok(())
}

#[tokio::test]
async fn log_event_sends_a_search_event() -> TestResult {
    let server = MockServer::start_async().await;
    let body = InsertEvent::search("how to export csv?", "search_performed");
    assert_eq!(
        serde_json::to_value(&body)?,
        json!({"entityType": "search", "searchQuery": "how to export csv?", "type": "search_performed"})
    );
    let logged: types::SelectEvent = serde_json::from_value(select_event(
        "evt_3",
        "search",
        "searchQuery",
        "how to export csv?",
        "search_performed",
    ))?;
    let mock = server.log_event(|when, then| {
        with_generated_id(with_key(when.into_inner()), &body);
        then.ok(&logged);
    });

    let answer = client(&server).log_event(body.clone()).await?;
    mock.assert_async().await;
    assert_eq!(answer.kind(), Some("search"));
    let types::SelectEvent::Search(answer) = answer else {
        panic!("expected a search event, got {answer:?}");
    };
    assert_eq!(answer.id, "evt_3");
    assert_eq!(answer.search_query, "how to export csv?");
    assert_eq!(
        answer.properties,
        Some(object(json!({"surface": "widget"})))
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// POST /feedback (logFeedback), GET and DELETE /feedback/{id}
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn log_feedback_sends_the_feedback_and_decodes_the_record() -> TestResult {
    let server = MockServer::start_async().await;
    let mut feedback = FeedbackInput::negative("conv_1-m1").with_id("fb_1")?;
    feedback.details = Some("The link in the answer is dead".into());
    feedback.reasons = Some(vec![serde_json::from_value(
        json!({"label": "inaccurate", "details": "dead link"}),
    )?]);
    feedback.created_at =
        Some(DateTime::parse_from_rfc3339("2025-01-02T03:04:05+02:00")?.with_timezone(&Utc));
    assert_eq!(
        serde_json::to_value(&feedback)?,
        json!({
            "id": "fb_1",
            "type": "negative",
            "messageId": "conv_1-m1",
            "details": "The link in the answer is dead",
            "reasons": [{"label": "inaccurate", "details": "dead link"}],
            "createdAt": "2025-01-02T01:04:05Z"
        })
    );
    let recorded: types::Feedback = serde_json::from_value(json!({
        "id": "fb_1",
        "type": "negative",
        "messageId": "conv_1-m1",
        "createdAt": "2025-01-02T01:04:05.000Z",
        "updatedAt": "2025-01-02T01:04:05.000Z",
        "details": "The link in the answer is dead",
        "reasons": [{"label": "inaccurate", "details": "dead link"}],
    }))?;
    let mock = server.log_feedback(|when, then| {
        with_key(when.body(&feedback).into_inner());
        then.ok(&recorded);
    });

    let answer = client(&server).log_feedback(feedback.clone()).await?;
    mock.assert_async().await;
    assert_eq!(answer, recorded);
    assert_eq!(answer.id, "fb_1");
    assert_eq!(answer.type_, types::FeedbackType::Negative);
    assert_eq!(answer.message_id, "conv_1-m1");
    assert_eq!(
        answer.updated_at.as_deref(),
        Some("2025-01-02T01:04:05.000Z")
    );
    let reasons = answer.reasons.unwrap_or_default();
    assert_eq!(reasons.len(), 1);
    assert_eq!(
        (reasons[0].label.as_str(), reasons[0].details.as_str()),
        ("inaccurate", "dead link")
    );
    Ok(())
}

#[tokio::test]
async fn log_feedback_sends_positive_feedback() -> TestResult {
    let server = MockServer::start_async().await;
    let feedback = FeedbackInput::positive("conv_2-m3");
    assert_eq!(
        serde_json::to_value(&feedback)?,
        json!({"type": "positive", "messageId": "conv_2-m3"})
    );
    let recorded: types::Feedback = serde_json::from_value(json!({
        "id": "fb_generated",
        "type": "positive",
        "messageId": "conv_2-m3",
        "createdAt": "2025-01-03T00:00:00.000Z",
    }))?;
    let mock = server.log_feedback(|when, then| {
        with_generated_id(with_key(when.into_inner()), &feedback);
        then.ok(&recorded);
    });
    let answer = client(&server).log_feedback(feedback.clone()).await?;
    mock.assert_async().await;
    assert_eq!(answer.id, "fb_generated");
    assert_eq!(answer.type_, types::FeedbackType::Positive);
    assert_eq!(answer.updated_at, None);
    Ok(())
}

#[tokio::test]
async fn get_feedback_by_id_percent_encodes_the_id_and_decodes_the_context() -> TestResult {
    let server = MockServer::start_async().await;
    let item: types::FeedbackWithContext =
        serde_json::from_value(feedback_item(AWKWARD_ID, "positive"))?;
    let mock = server.get_feedback(|when, then| {
        with_key(when.id(AWKWARD_ID).into_inner()).path(format!("/feedback/{AWKWARD_ID_ENCODED}"));
        then.ok(&item);
    });

    let answer = client(&server).get_feedback(AWKWARD_ID).await?;
    mock.assert_async().await;
    assert_eq!(answer, item);
    assert_eq!(answer.id, AWKWARD_ID);
    assert_eq!(answer.type_, types::FeedbackType::Positive);
    assert_eq!(answer.conversation.id(), Some("conv-of-a/b c"));
    assert_eq!(answer.message.id(), Some("conv-of-a/b c-m1"));
    assert_eq!(answer.message_id, "conv-of-a/b c-m1");
    let reasons = answer.reasons.unwrap_or_default();
    assert_eq!(reasons.first().map(|r| r.label.as_str()), Some("accurate"));
    Ok(())
}

#[tokio::test]
async fn delete_feedback_by_id_percent_encodes_the_id_and_decodes_the_result() -> TestResult {
    let server = MockServer::start_async().await;
    let result: types::DeleteResult = serde_json::from_value(json!({
        "success": true,
        "message": "Feedback deleted",
    }))?;
    let mock = server.delete_feedback(|when, then| {
        with_key(when.id(AWKWARD_ID).into_inner()).path(format!("/feedback/{AWKWARD_ID_ENCODED}"));
        then.ok(&result);
    });

    let answer = client(&server).delete_feedback(AWKWARD_ID).await?;
    mock.assert_async().await;
    assert!(answer.success);
    assert_eq!(answer.message, "Feedback deleted");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// POST /query/{view} (queryConversations, queryEvents, queryFeedback, querySemanticThreads)
// ---------------------------------------------------------------------------------------------

/// A query answer holding `rows`, as the API sends it.
fn query_response(rows: Value, total: u64) -> Result<types::QueryResponse, serde_json::Error> {
    let count = rows.as_array().map_or(0, Vec::len);
    serde_json::from_value(json!({
        "status": "ok",
        "data": {"result": rows, "total": total, "pageSize": 100, "count": count},
    }))
}

#[tokio::test]
async fn query_conversations_sends_the_query_and_decodes_the_rows() -> TestResult {
    let server = MockServer::start_async().await;
    let inputs = Inputs::new()?;
    let response = query_response(
        json!([
            {"type": "openai", "count": "42", "firstMessageTime_day": "2025-01-01"},
            {"type": "support_ticket", "count": "7", "firstMessageTime_day": "2025-01-01"}
        ]),
        2,
    )?;
    let mock = server.query_conversations(|when, then| {
        with_key(when.body(&inputs.conversations_query).into_inner());
        then.ok(&response);
    });

    let answer = client(&server)
        .query_conversations(inputs.conversations_query.clone())
        .await?;
    mock.assert_async().await;
    assert_eq!(answer, response);
    assert_eq!(answer.status, "ok");
    assert_eq!(answer.data.total.as_u64(), Some(2));
    assert_eq!(answer.data.count.as_u64(), Some(2));
    assert_eq!(answer.data.page_size.as_u64(), Some(100));
    assert_eq!(answer.data.result.len(), 2);
    assert_eq!(answer.data.result[0].get("type"), Some(&json!("openai")));
    assert_eq!(answer.data.result[0].get("count"), Some(&json!("42")));
    assert_eq!(
        answer.data.result[1].get("firstMessageTime_day"),
        Some(&json!("2025-01-01"))
    );
    Ok(())
}

#[tokio::test]
async fn query_events_sends_the_query_and_decodes_the_rows() -> TestResult {
    let server = MockServer::start_async().await;
    let inputs = Inputs::new()?;
    let response = query_response(
        json!([
            {"eventType": "message_copied", "countDistinct_conversationId": 31},
            {"eventType": "conversation_shared", "countDistinct_conversationId": 5}
        ]),
        2,
    )?;
    let mock = server.query_events(|when, then| {
        with_key(when.body(&inputs.events_query).into_inner());
        then.ok(&response);
    });

    let answer = client(&server)
        .query_events(inputs.events_query.clone())
        .await?;
    mock.assert_async().await;
    assert_eq!(answer, response);
    let event_types: Vec<Option<&Value>> = answer
        .data
        .result
        .iter()
        .map(|row| row.get("eventType"))
        .collect();
    assert_eq!(
        event_types,
        [
            Some(&json!("message_copied")),
            Some(&json!("conversation_shared"))
        ]
    );
    assert_eq!(
        answer.data.result[0].get("countDistinct_conversationId"),
        Some(&json!(31))
    );
    Ok(())
}

#[tokio::test]
async fn query_feedback_sends_the_query_and_decodes_the_rows() -> TestResult {
    let server = MockServer::start_async().await;
    let inputs = Inputs::new()?;
    let response = query_response(
        json!([{"type": "negative", "properties.source": "docs", "count": "3"}]),
        1,
    )?;
    let mock = server.query_feedback(|when, then| {
        with_key(when.body(&inputs.feedback_query).into_inner());
        then.ok(&response);
    });

    let answer = client(&server)
        .query_feedback(inputs.feedback_query.clone())
        .await?;
    mock.assert_async().await;
    assert_eq!(answer, response);
    let [row] = answer.data.result.as_slice() else {
        panic!("expected one row, got {:?}", answer.data.result);
    };
    assert_eq!(row.get("type"), Some(&json!("negative")));
    assert_eq!(row.get("properties.source"), Some(&json!("docs")));
    assert_eq!(row.get("count"), Some(&json!("3")));
    Ok(())
}

#[tokio::test]
async fn query_semantic_threads_sends_the_query_and_decodes_the_rows() -> TestResult {
    let server = MockServer::start_async().await;
    let inputs = Inputs::new()?;
    let response = query_response(
        json!([
            {"subject": "Exports", "avg_questionLength": 88.5},
            {"subject": "Webhooks", "avg_questionLength": 61.25}
        ]),
        17,
    )?;
    let mock = server.query_semantic_threads(|when, then| {
        with_key(when.body(&inputs.semantic_threads_query).into_inner());
        then.ok(&response);
    });

    let answer = client(&server)
        .query_semantic_threads(inputs.semantic_threads_query.clone())
        .await?;
    mock.assert_async().await;
    assert_eq!(answer, response);
    assert_eq!(answer.data.total.as_u64(), Some(17));
    assert_eq!(answer.data.count.as_u64(), Some(2));
    assert_eq!(
        answer.data.result[0].get("subject"),
        Some(&json!("Exports"))
    );
    assert_eq!(
        answer.data.result[1]
            .get("avg_questionLength")
            .and_then(Value::as_f64),
        Some(61.25)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// POST /query/{view}/export (export...QueryResults): CSV byte streams
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn export_conversations_query_results_asks_for_csv_and_streams_the_exact_bytes() -> TestResult
{
    let server = MockServer::start_async().await;
    let inputs = Inputs::new()?;
    let csv = csv_file("conversations");
    let mock = server.export_conversations_query_results(|when, then| {
        with_key(when.body(&inputs.conversations_query).into_inner()).header("accept", "text/csv");
        then.ok(&csv);
    });

    let export = client(&server)
        .export_conversations_query_results(inputs.conversations_query.clone())
        .await?;
    let bytes = read_export(export).await?;
    mock.assert_async().await;
    assert_eq!(bytes, csv);
    Ok(())
}

#[tokio::test]
async fn export_events_query_results_asks_for_csv_and_streams_a_large_file_exactly() -> TestResult {
    let server = MockServer::start_async().await;
    let inputs = Inputs::new()?;
    // Large enough to arrive in many chunks, so that the stream's reassembly is checked too.
    let mut csv = b"id,eventType,createdAt\r\n".to_vec();
    for n in 0..20_000 {
        csv.extend_from_slice(
            format!("evt_{n:05},message_copied,2025-03-01T12:00:00.000Z\r\n").as_bytes(),
        );
    }
    let mock = server.export_events_query_results(|when, then| {
        with_key(when.body(&inputs.events_query).into_inner()).header("accept", "text/csv");
        then.ok(&csv);
    });

    let export = client(&server)
        .export_events_query_results(inputs.events_query.clone())
        .await?;
    let bytes = read_export(export).await?;
    mock.assert_async().await;
    assert_eq!(bytes.len(), csv.len());
    assert!(bytes == csv, "the exported bytes differ from those sent");
    Ok(())
}

#[tokio::test]
async fn export_feedback_query_results_asks_for_csv_and_streams_the_exact_bytes() -> TestResult {
    let server = MockServer::start_async().await;
    let inputs = Inputs::new()?;
    let csv = csv_file("feedback");
    let mock = server.export_feedback_query_results(|when, then| {
        with_key(when.body(&inputs.feedback_query).into_inner()).header("accept", "text/csv");
        then.ok(&csv);
    });

    let export = client(&server)
        .export_feedback_query_results(inputs.feedback_query.clone())
        .await?;
    let bytes = read_export(export).await?;
    mock.assert_async().await;
    assert_eq!(bytes, csv);
    Ok(())
}

#[tokio::test]
async fn export_semantic_threads_query_results_asks_for_csv_and_streams_the_exact_bytes()
-> TestResult {
    let server = MockServer::start_async().await;
    let inputs = Inputs::new()?;
    let csv = csv_file("semantic_threads");
    let mock = server.export_semantic_threads_query_results(|when, then| {
        with_key(when.body(&inputs.semantic_threads_query).into_inner())
            .header("accept", "text/csv");
        then.ok(&csv);
    });

    let export = client(&server)
        .export_semantic_threads_query_results(inputs.semantic_threads_query.clone())
        .await?;
    let bytes = read_export(export).await?;
    mock.assert_async().await;
    assert_eq!(bytes, csv);
    Ok(())
}

#[tokio::test]
async fn an_empty_export_is_an_empty_stream() -> TestResult {
    let server = MockServer::start_async().await;
    let inputs = Inputs::new()?;
    let mock = server.export_conversations_query_results(|when, then| {
        with_key(when.into_inner()).header("accept", "text/csv");
        then.ok(b"");
    });
    let export = client(&server)
        .export_conversations_query_results(inputs.conversations_query.clone())
        .await?;
    let bytes = read_export(export).await?;
    mock.assert_async().await;
    assert!(bytes.is_empty(), "expected no bytes, got {bytes:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// POST /query/property-keys (queryPropertyKeys) and /query/property-values (queryPropertyValues)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn query_property_keys_sends_the_request_and_decodes_the_keys() -> TestResult {
    let server = MockServer::start_async().await;
    let inputs = Inputs::new()?;
    let response: types::PropertyListResponse = serde_json::from_value(json!({
        "results": ["userId", "identificationType", "plan"],
    }))?;
    let mock = server.query_property_keys(|when, then| {
        with_key(when.body(&inputs.property_keys).into_inner());
        then.ok(&response);
    });

    let answer = client(&server)
        .query_property_keys(inputs.property_keys.clone())
        .await?;
    mock.assert_async().await;
    assert_eq!(answer.results, ["userId", "identificationType", "plan"]);
    Ok(())
}

#[tokio::test]
async fn query_property_keys_sends_only_the_field_when_nothing_else_is_set() -> TestResult {
    let server = MockServer::start_async().await;
    let request: types::PropertyKeysRequest =
        serde_json::from_value(json!({"field": "properties"}))?;
    assert_eq!(
        serde_json::to_value(&request)?,
        json!({"field": "properties"})
    );
    let response: types::PropertyListResponse = serde_json::from_value(json!({"results": []}))?;
    let mock = server.query_property_keys(|when, then| {
        when.body(&request);
        then.ok(&response);
    });
    let answer = client(&server).query_property_keys(request.clone()).await?;
    mock.assert_async().await;
    assert!(answer.results.is_empty());
    Ok(())
}

#[tokio::test]
async fn query_property_values_sends_the_request_and_decodes_the_values() -> TestResult {
    let server = MockServer::start_async().await;
    let inputs = Inputs::new()?;
    let response: types::PropertyListResponse = serde_json::from_value(json!({
        "results": ["docs", "slack", "discord"],
    }))?;
    let mock = server.query_property_values(|when, then| {
        with_key(when.body(&inputs.property_values).into_inner());
        then.ok(&response);
    });

    let answer = client(&server)
        .query_property_values(inputs.property_values.clone())
        .await?;
    mock.assert_async().await;
    assert_eq!(answer.results, ["docs", "slack", "discord"]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GET /query/top-search-queries (topSearchQueries) and /query/weekly-search-users (weeklySearchUsers)
// ---------------------------------------------------------------------------------------------

/// An `after` value with a `+` and a `:`, which must survive query-string encoding unchanged.
const AFTER: &str = "2025-01-01T00:00:00+01:00";

#[tokio::test]
async fn top_search_queries_sends_both_filters_and_decodes_the_counts() -> TestResult {
    let server = MockServer::start_async().await;
    let response: types::TopSearchQueriesResponse = serde_json::from_value(json!({
        "data": {
            "result": [
                {"search_query": "log conversation", "count": "17"},
                {"search_query": "export csv", "count": "4"}
            ],
            "total": 2
        }
    }))?;
    let mock = server.top_search_queries(|when, then| {
        with_key(when.after(AFTER).project_id("proj_1").into_inner());
        then.ok(&response);
    });

    let answer = client(&server)
        .top_search_queries(Some(AFTER), Some("proj_1"))
        .await?;
    mock.assert_async().await;
    assert_eq!(answer, response);
    assert_eq!(answer.data.total.as_u64(), Some(2));
    let pairs: Vec<(&str, &str)> = answer
        .data
        .result
        .iter()
        .map(|r| (r.search_query.as_str(), r.count.as_str()))
        .collect();
    assert_eq!(pairs, [("log conversation", "17"), ("export csv", "4")]);
    Ok(())
}

#[tokio::test]
async fn top_search_queries_sends_no_filter_that_is_none() -> TestResult {
    let server = MockServer::start_async().await;
    let response: types::TopSearchQueriesResponse =
        serde_json::from_value(json!({"data": {"result": [], "total": 0}}))?;
    let neither = server.top_search_queries(|when, then| {
        when.after(None).project_id(None);
        then.ok(&response);
    });
    let client = client(&server);
    let answer = client.top_search_queries(None, None).await?;
    neither.assert_async().await;
    assert!(answer.data.result.is_empty());
    neither.delete_async().await;

    let only_project = server.top_search_queries(|when, then| {
        when.after(None).project_id("proj_2");
        then.ok(&response);
    });
    client.top_search_queries(None, Some("proj_2")).await?;
    only_project.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn weekly_search_users_sends_both_filters_and_decodes_the_weeks() -> TestResult {
    let server = MockServer::start_async().await;
    let response: types::WeeklySearchUsersResponse = serde_json::from_value(json!({
        "data": {
            "result": [
                {"week": "2025-01-06", "unique_users": "31"},
                {"week": "2025-01-13", "unique_users": "27"}
            ],
            "total": 2
        }
    }))?;
    let mock = server.weekly_search_users(|when, then| {
        with_key(when.after(AFTER).project_id("proj_1").into_inner());
        then.ok(&response);
    });

    let answer = client(&server)
        .weekly_search_users(Some(AFTER), Some("proj_1"))
        .await?;
    mock.assert_async().await;
    assert_eq!(answer, response);
    let weeks: Vec<(&str, &str)> = answer
        .data
        .result
        .iter()
        .map(|w| (w.week.as_str(), w.unique_users.as_str()))
        .collect();
    assert_eq!(weeks, [("2025-01-06", "31"), ("2025-01-13", "27")]);
    Ok(())
}

#[tokio::test]
async fn weekly_search_users_sends_no_filter_that_is_none() -> TestResult {
    let server = MockServer::start_async().await;
    let response: types::WeeklySearchUsersResponse =
        serde_json::from_value(json!({"data": {"result": [], "total": 0}}))?;
    let neither = server.weekly_search_users(|when, then| {
        when.after(None).project_id(None);
        then.ok(&response);
    });
    let client = client(&server);
    let answer = client.weekly_search_users(None, None).await?;
    neither.assert_async().await;
    assert_eq!(answer.data.total.as_u64(), Some(0));
    neither.delete_async().await;

    let only_after = server.weekly_search_users(|when, then| {
        when.after(AFTER).project_id(None);
        then.ok(&response);
    });
    client.weekly_search_users(Some(AFTER), None).await?;
    only_after.assert_async().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Every documented error status of every operation, and the key on every operation
// ---------------------------------------------------------------------------------------------

/// The 22 operations, by `operationId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    GetAllConversation,
    LogConversation,
    GetConversation,
    DeleteConversation,
    GetConversationByExternalId,
    LogEvent,
    GetAllFeedback,
    LogFeedback,
    GetFeedbackById,
    DeleteFeedbackById,
    QueryConversations,
    QueryEvents,
    QueryFeedback,
    QuerySemanticThreads,
    ExportConversationsQueryResults,
    ExportEventsQueryResults,
    ExportFeedbackQueryResults,
    ExportSemanticThreadsQueryResults,
    QueryPropertyKeys,
    QueryPropertyValues,
    TopSearchQueries,
    WeeklySearchUsers,
}

/// The statuses every operation documents, with the `code` and `title` the API sends.
const ALWAYS: [(u16, &str, &str); 5] = [
    (400, "bad_request", "Bad Request"),
    (401, "unauthorized", "Unauthorized"),
    (403, "forbidden", "Forbidden"),
    (422, "unprocessable_entity", "Unprocessable Entity"),
    (500, "internal_server_error", "Internal Server Error"),
];

/// The same, with the 404 that lookups, listings and deletions also document.
const WITH_NOT_FOUND: [(u16, &str, &str); 6] = [
    (400, "bad_request", "Bad Request"),
    (401, "unauthorized", "Unauthorized"),
    (403, "forbidden", "Forbidden"),
    (404, "not_found", "Not Found"),
    (422, "unprocessable_entity", "Unprocessable Entity"),
    (500, "internal_server_error", "Internal Server Error"),
];

/// Registers the operation's typed mock, requiring the key and answering `status` with `problem`
/// through the typed `Then` method of that status. A status the operation does not document does
/// not compile, so the lists below are checked against the spec by the compiler.
macro_rules! mock_error {
    ($server:expr, $mock:ident, $status:expr, $problem:expr, [$($code:literal => $answer:ident),+ $(,)?]) => {
        $server.$mock(|when, then| {
            with_key(when.into_inner());
            match $status {
                $($code => {
                    then.$answer($problem);
                })+
                other => panic!("{} does not document status {other}", stringify!($mock)),
            }
        })
    };
    ($server:expr, $mock:ident, $status:expr, $problem:expr, with_not_found) => {
        mock_error!($server, $mock, $status, $problem, [
            400 => bad_request,
            401 => unauthorized,
            403 => forbidden,
            404 => not_found,
            422 => unprocessable_entity,
            500 => internal_server_error,
        ])
    };
    ($server:expr, $mock:ident, $status:expr, $problem:expr, without_not_found) => {
        mock_error!($server, $mock, $status, $problem, [
            400 => bad_request,
            401 => unauthorized,
            403 => forbidden,
            422 => unprocessable_entity,
            500 => internal_server_error,
        ])
    };
}

impl Operation {
    const ALL: [Operation; 22] = [
        Operation::GetAllConversation,
        Operation::LogConversation,
        Operation::GetConversation,
        Operation::DeleteConversation,
        Operation::GetConversationByExternalId,
        Operation::LogEvent,
        Operation::GetAllFeedback,
        Operation::LogFeedback,
        Operation::GetFeedbackById,
        Operation::DeleteFeedbackById,
        Operation::QueryConversations,
        Operation::QueryEvents,
        Operation::QueryFeedback,
        Operation::QuerySemanticThreads,
        Operation::ExportConversationsQueryResults,
        Operation::ExportEventsQueryResults,
        Operation::ExportFeedbackQueryResults,
        Operation::ExportSemanticThreadsQueryResults,
        Operation::QueryPropertyKeys,
        Operation::QueryPropertyValues,
        Operation::TopSearchQueries,
        Operation::WeeklySearchUsers,
    ];

    /// The `operationId`, as `ApiError::operation` names it.
    fn operation_id(self) -> &'static str {
        match self {
            Operation::GetAllConversation => "getAllConversation",
            Operation::LogConversation => "logConversation",
            Operation::GetConversation => "getConversation",
            Operation::DeleteConversation => "deleteConversation",
            Operation::GetConversationByExternalId => "getConversationByExternalId",
            Operation::LogEvent => "logEvent",
            Operation::GetAllFeedback => "getAllFeedback",
            Operation::LogFeedback => "logFeedback",
            Operation::GetFeedbackById => "getFeedbackById",
            Operation::DeleteFeedbackById => "deleteFeedbackById",
            Operation::QueryConversations => "queryConversations",
            Operation::QueryEvents => "queryEvents",
            Operation::QueryFeedback => "queryFeedback",
            Operation::QuerySemanticThreads => "querySemanticThreads",
            Operation::ExportConversationsQueryResults => "exportConversationsQueryResults",
            Operation::ExportEventsQueryResults => "exportEventsQueryResults",
            Operation::ExportFeedbackQueryResults => "exportFeedbackQueryResults",
            Operation::ExportSemanticThreadsQueryResults => "exportSemanticThreadsQueryResults",
            Operation::QueryPropertyKeys => "queryPropertyKeys",
            Operation::QueryPropertyValues => "queryPropertyValues",
            Operation::TopSearchQueries => "topSearchQueries",
            Operation::WeeklySearchUsers => "weeklySearchUsers",
        }
    }

    /// The error statuses the spec documents for this operation: 404 only where something is looked up.
    fn documented_errors(self) -> &'static [(u16, &'static str, &'static str)] {
        match self {
            Operation::GetAllConversation
            | Operation::GetConversation
            | Operation::DeleteConversation
            | Operation::GetConversationByExternalId
            | Operation::GetAllFeedback
            | Operation::GetFeedbackById
            | Operation::DeleteFeedbackById => &WITH_NOT_FOUND,
            _ => &ALWAYS,
        }
    }

    /// The operation's typed mock, requiring the key and answering `status` with `problem`.
    fn mock_error<'a>(
        self,
        server: &'a MockServer,
        status: u16,
        problem: &types::Problem,
    ) -> Mock<'a> {
        match self {
            Operation::GetAllConversation => {
                mock_error!(server, list_conversations, status, problem, with_not_found)
            }
            Operation::LogConversation => {
                mock_error!(server, log_conversation, status, problem, without_not_found)
            }
            Operation::GetConversation => {
                mock_error!(server, get_conversation, status, problem, with_not_found)
            }
            Operation::DeleteConversation => {
                mock_error!(server, delete_conversation, status, problem, with_not_found)
            }
            Operation::GetConversationByExternalId => mock_error!(
                server,
                get_conversation_by_external_id,
                status,
                problem,
                with_not_found
            ),
            Operation::LogEvent => {
                mock_error!(server, log_event, status, problem, without_not_found)
            }
            Operation::GetAllFeedback => {
                mock_error!(server, list_feedback, status, problem, with_not_found)
            }
            Operation::LogFeedback => {
                mock_error!(server, log_feedback, status, problem, without_not_found)
            }
            Operation::GetFeedbackById => {
                mock_error!(server, get_feedback, status, problem, with_not_found)
            }
            Operation::DeleteFeedbackById => {
                mock_error!(server, delete_feedback, status, problem, with_not_found)
            }
            Operation::QueryConversations => {
                mock_error!(
                    server,
                    query_conversations,
                    status,
                    problem,
                    without_not_found
                )
            }
            Operation::QueryEvents => {
                mock_error!(server, query_events, status, problem, without_not_found)
            }
            Operation::QueryFeedback => {
                mock_error!(server, query_feedback, status, problem, without_not_found)
            }
            Operation::QuerySemanticThreads => mock_error!(
                server,
                query_semantic_threads,
                status,
                problem,
                without_not_found
            ),
            Operation::ExportConversationsQueryResults => mock_error!(
                server,
                export_conversations_query_results,
                status,
                problem,
                without_not_found
            ),
            Operation::ExportEventsQueryResults => mock_error!(
                server,
                export_events_query_results,
                status,
                problem,
                without_not_found
            ),
            Operation::ExportFeedbackQueryResults => mock_error!(
                server,
                export_feedback_query_results,
                status,
                problem,
                without_not_found
            ),
            Operation::ExportSemanticThreadsQueryResults => mock_error!(
                server,
                export_semantic_threads_query_results,
                status,
                problem,
                without_not_found
            ),
            Operation::QueryPropertyKeys => {
                mock_error!(
                    server,
                    query_property_keys,
                    status,
                    problem,
                    without_not_found
                )
            }
            Operation::QueryPropertyValues => mock_error!(
                server,
                query_property_values,
                status,
                problem,
                without_not_found
            ),
            Operation::TopSearchQueries => {
                mock_error!(
                    server,
                    top_search_queries,
                    status,
                    problem,
                    without_not_found
                )
            }
            Operation::WeeklySearchUsers => {
                mock_error!(
                    server,
                    weekly_search_users,
                    status,
                    problem,
                    without_not_found
                )
            }
        }
    }

    /// Calls the operation through the public client with a valid input, keeping only the error.
    async fn call(self, client: &Client, inputs: &Inputs) -> Result<(), Error> {
        match self {
            Operation::GetAllConversation => client.list_conversations().send().await.map(drop),
            Operation::LogConversation => client
                .log_conversation(CreateOpenAiConversation::new(vec![
                    CreateOpenAiMessage::user("Hi"),
                ]))
                .await
                .map(drop),
            Operation::GetConversation => client.get_conversation("conv_1").await.map(drop),
            Operation::DeleteConversation => client.delete_conversation("conv_1").await.map(drop),
            Operation::GetConversationByExternalId => client
                .get_conversation_by_external_id("ext_1")
                .await
                .map(drop),
            Operation::LogEvent => client
                .log_event(InsertEvent::conversation("conv_1", "conversation_shared"))
                .await
                .map(drop),
            Operation::GetAllFeedback => client.list_feedback().send().await.map(drop),
            Operation::LogFeedback => client
                .log_feedback(FeedbackInput::positive("conv_1-m1"))
                .await
                .map(drop),
            Operation::GetFeedbackById => client.get_feedback("fb_1").await.map(drop),
            Operation::DeleteFeedbackById => client.delete_feedback("fb_1").await.map(drop),
            Operation::QueryConversations => client
                .query_conversations(inputs.conversations_query.clone())
                .await
                .map(drop),
            Operation::QueryEvents => client
                .query_events(inputs.events_query.clone())
                .await
                .map(drop),
            Operation::QueryFeedback => client
                .query_feedback(inputs.feedback_query.clone())
                .await
                .map(drop),
            Operation::QuerySemanticThreads => client
                .query_semantic_threads(inputs.semantic_threads_query.clone())
                .await
                .map(drop),
            Operation::ExportConversationsQueryResults => client
                .export_conversations_query_results(inputs.conversations_query.clone())
                .await
                .map(drop),
            Operation::ExportEventsQueryResults => client
                .export_events_query_results(inputs.events_query.clone())
                .await
                .map(drop),
            Operation::ExportFeedbackQueryResults => client
                .export_feedback_query_results(inputs.feedback_query.clone())
                .await
                .map(drop),
            Operation::ExportSemanticThreadsQueryResults => client
                .export_semantic_threads_query_results(inputs.semantic_threads_query.clone())
                .await
                .map(drop),
            Operation::QueryPropertyKeys => client
                .query_property_keys(inputs.property_keys.clone())
                .await
                .map(drop),
            Operation::QueryPropertyValues => client
                .query_property_values(inputs.property_values.clone())
                .await
                .map(drop),
            Operation::TopSearchQueries => client
                .top_search_queries(None, Some("proj_1"))
                .await
                .map(drop),
            Operation::WeeklySearchUsers => client
                .weekly_search_users(Some(AFTER), None)
                .await
                .map(drop),
        }
    }
}

/// Answers each documented error status of `operation` in turn, with a problem whose fields are
/// unique to the operation and status, and checks that the call fails with exactly that API error.
async fn check_documented_errors(operation: Operation) -> TestResult {
    let inputs = Inputs::new()?;
    let server = MockServer::start_async().await;
    // Without retries, so that each status reaches the caller from exactly one answer; how 5XX
    // answers are retried is the subject of `retries.rs`.
    let client = Client::builder()
        .api_key(TEST_KEY)
        .base_url(server.base_url())
        .max_retries(0)
        .build()?;
    for &(status, code, title) in operation.documented_errors() {
        let context = format!("{} {status}", operation.operation_id());
        let request_id = format!("req_{}_{status}", operation.operation_id());
        let problem = typed_problem(status, code, title, &request_id)?;
        let mock = operation.mock_error(&server, status, &problem);

        let result = operation.call(&client, &inputs).await;
        mock.assert_async().await;
        let Err(Error::Api(api)) = &result else {
            panic!("{context}: expected Error::Api, got {result:?}");
        };
        assert_eq!(api.operation, operation.operation_id(), "{context}");
        assert_eq!(api.status.as_u16(), status, "{context}");
        assert_eq!(api.code.as_deref(), Some(code), "{context}");
        assert_eq!(api.title.as_deref(), Some(title), "{context}");
        let detail = format!("{title} (detail)");
        assert_eq!(api.detail.as_deref(), Some(detail.as_str()), "{context}");
        assert_eq!(
            api.request_id.as_deref(),
            Some(request_id.as_str()),
            "{context}"
        );
        assert_eq!(api.problem.as_ref(), Some(&problem), "{context}");
        mock.delete_async().await;
    }
    Ok(())
}

/// One test per operation, each looping over the error statuses that operation documents.
macro_rules! documented_error_tests {
    ($($test:ident => $operation:ident,)+) => {
        $(
            #[tokio::test]
            async fn $test() -> TestResult {
                check_documented_errors(Operation::$operation).await
            }
        )+

        #[test]
        fn every_operation_has_an_error_test() {
            let tested = [$(Operation::$operation),+];
            for operation in Operation::ALL {
                assert!(
                    tested.contains(&operation),
                    "{} has no documented-error test",
                    operation.operation_id()
                );
            }
            assert_eq!(tested.len(), Operation::ALL.len());
        }
    };
}

documented_error_tests! {
    get_all_conversation_answers_each_documented_error => GetAllConversation,
    log_conversation_answers_each_documented_error => LogConversation,
    get_conversation_answers_each_documented_error => GetConversation,
    delete_conversation_answers_each_documented_error => DeleteConversation,
    get_conversation_by_external_id_answers_each_documented_error => GetConversationByExternalId,
    log_event_answers_each_documented_error => LogEvent,
    get_all_feedback_answers_each_documented_error => GetAllFeedback,
    log_feedback_answers_each_documented_error => LogFeedback,
    get_feedback_by_id_answers_each_documented_error => GetFeedbackById,
    delete_feedback_by_id_answers_each_documented_error => DeleteFeedbackById,
    query_conversations_answers_each_documented_error => QueryConversations,
    query_events_answers_each_documented_error => QueryEvents,
    query_feedback_answers_each_documented_error => QueryFeedback,
    query_semantic_threads_answers_each_documented_error => QuerySemanticThreads,
    export_conversations_query_results_answers_each_documented_error => ExportConversationsQueryResults,
    export_events_query_results_answers_each_documented_error => ExportEventsQueryResults,
    export_feedback_query_results_answers_each_documented_error => ExportFeedbackQueryResults,
    export_semantic_threads_query_results_answers_each_documented_error => ExportSemanticThreadsQueryResults,
    query_property_keys_answers_each_documented_error => QueryPropertyKeys,
    query_property_values_answers_each_documented_error => QueryPropertyValues,
    top_search_queries_answers_each_documented_error => TopSearchQueries,
    weekly_search_users_answers_each_documented_error => WeeklySearchUsers,
}

#[tokio::test]
async fn every_operation_sends_the_key_as_a_bearer_token() -> TestResult {
    // Each mock answers only a request with `Authorization: Bearer <TEST_KEY>`: a client with
    // another key reaches no mock, and the test client reaches it exactly once.
    let inputs = Inputs::new()?;
    for operation in Operation::ALL {
        let server = MockServer::start_async().await;
        let problem = typed_problem(
            422,
            "unprocessable_entity",
            "Unprocessable Entity",
            "req_key",
        )?;
        let mock = operation.mock_error(&server, 422, &problem);
        let context = operation.operation_id();

        let other = Client::builder()
            .api_key("sk-some-other-key")
            .base_url(server.base_url())
            .build()?;
        let unmatched = operation.call(&other, &inputs).await;
        assert_eq!(
            mock.calls_async().await,
            0,
            "{context}: another key matched"
        );
        let Err(unmatched) = unmatched else {
            panic!("{context}: a request with another key was answered with a success");
        };
        assert_ne!(
            unmatched.status().map(|s| s.as_u16()),
            Some(422),
            "{context}"
        );

        let result = operation.call(&client(&server), &inputs).await;
        mock.assert_async().await;
        assert_eq!(
            result.err().and_then(|e| e.status()).map(|s| s.as_u16()),
            Some(422),
            "{context}: the test key did not reach the mock"
        );
    }
    Ok(())
}
