//! What responses decode into: the API reference's own examples, values and kinds newer than the spec (kept, never dropped and never failing a page), and re-serialization that gives the same JSON back.

use httpmock::Method::GET;
use httpmock::MockServer;
use inkeep_analytics::types::{
    ContentItemType, Conversation, ConversationList, FeedbackList, FeedbackSourceType,
    FeedbackType, ImageDetail, LinkType, Message, OpenAiMessageContent, OpenAiRole, StringOrNumber,
    ToolCallType, Visibility,
};
use inkeep_analytics::{Client, listing::Sentiment};
use serde_json::{Value, json};

use crate::support::{client, openai_conversation};

/// The example 200 body of the API's reference page for `GET /conversations`, verbatim.
const SEED_CONVERSATIONS: &str = r#"{
  "conversations": [
    {
      "id": "string",
      "externalId": "string",
      "externalUrl": "string",
      "type": "openai",
      "supportTicketConversationId": "string",
      "createdAt": "string",
      "updatedAt": "string",
      "projectId": "string",
      "integrationId": "string",
      "properties": {},
      "userProperties": {
        "id": "string",
        "identificationType": "COOKIED",
        "userId": "string",
        "supportAgentName": "string"
      },
      "tags": [
        "string"
      ],
      "visibility": "private",
      "messages": [
        {
          "id": "string",
          "type": "openai",
          "externalId": "string",
          "externalUrl": "string",
          "conversationId": "string",
          "createdAt": "string",
          "updatedAt": "string",
          "role": "system",
          "content": "string",
          "name": "string",
          "links": [
            {
              "label": "string",
              "url": "string",
              "title": "string",
              "description": "string",
              "type": "documentation",
              "breadcrumbs": [
                "string"
              ]
            }
          ],
          "properties": {},
          "userProperties": {
            "id": "string",
            "identificationType": "COOKIED",
            "userId": "string",
            "supportAgentName": "string"
          },
          "tool_calls": [
            {
              "id": "string",
              "type": "function",
              "function": {
                "name": "string",
                "arguments": "string"
              }
            }
          ]
        }
      ],
      "messagesOpenAIFormat": [
        {
          "role": "system",
          "name": "string",
          "content": "string",
          "tool_calls": [
            {
              "id": "string",
              "type": "function",
              "function": {
                "name": "string",
                "arguments": "string"
              }
            }
          ]
        }
      ]
    }
  ],
  "total": 0,
  "pageSize": 0,
  "count": 0
}"#;

/// The example 200 body of the API's reference page for `GET /feedback`, verbatim.
const SEED_FEEDBACK: &str = r#"{
  "positiveFeedbackCount": 0,
  "negativeFeedbackCount": 0,
  "positiveFeedback": [
    {
      "id": "string",
      "type": "positive",
      "messageId": "string",
      "createdAt": "string",
      "reasons": [
        {
          "label": "string",
          "details": "string"
        }
      ],
      "properties": {},
      "userProperties": {
        "id": "string",
        "identificationType": "COOKIED",
        "userId": "string",
        "supportAgentName": "string",
        "userType": "string"
      },
      "conversation": {
        "id": "string",
        "externalId": "string",
        "externalUrl": "string",
        "type": "openai",
        "supportTicketConversationId": "string",
        "createdAt": "string",
        "updatedAt": "string",
        "projectId": "string",
        "integrationId": "string",
        "properties": {},
        "userProperties": {
          "id": "string",
          "identificationType": "COOKIED",
          "userId": "string",
          "supportAgentName": "string",
          "userType": "string"
        },
        "tags": [
          "string"
        ],
        "visibility": "private",
        "messages": [
          {
            "id": "string",
            "type": "openai",
            "externalId": "string",
            "externalUrl": "string",
            "conversationId": "string",
            "createdAt": "string",
            "updatedAt": "string",
            "role": "system",
            "content": "string",
            "name": "string",
            "links": [
              {
                "label": "string",
                "url": "string",
                "title": "string",
                "description": "string",
                "type": "documentation",
                "breadcrumbs": [
                  "string"
                ]
              }
            ],
            "properties": {},
            "userProperties": {
              "id": "string",
              "identificationType": "COOKIED",
              "userId": "string",
              "supportAgentName": "string",
              "userType": "string"
            },
            "tool_calls": [
              {
                "id": "string",
                "type": "function",
                "function": {
                  "name": "string",
                  "arguments": "string"
                }
              }
            ]
          }
        ],
        "messagesOpenAIFormat": [
          {
            "role": "system",
            "name": "string",
            "content": "string",
            "tool_calls": [
              {
                "id": "string",
                "type": "function",
                "function": {
                  "name": "string",
                  "arguments": "string"
                }
              }
            ]
          }
        ]
      },
      "message": {
        "id": "string",
        "type": "openai",
        "externalId": "string",
        "externalUrl": "string",
        "conversationId": "string",
        "createdAt": "string",
        "updatedAt": "string",
        "role": "system",
        "content": "string",
        "name": "string",
        "links": [
          {
            "label": "string",
            "url": "string",
            "title": "string",
            "description": "string",
            "type": "documentation",
            "breadcrumbs": [
              "string"
            ]
          }
        ],
        "properties": {},
        "userProperties": {
          "id": "string",
          "identificationType": "COOKIED",
          "userId": "string",
          "supportAgentName": "string",
          "userType": "string"
        },
        "tool_calls": [
          {
            "id": "string",
            "type": "function",
            "function": {
              "name": "string",
              "arguments": "string"
            }
          }
        ]
      }
    }
  ],
  "negativeFeedback": [
    {
      "id": "string",
      "type": "positive",
      "messageId": "string",
      "createdAt": "string",
      "reasons": [
        {
          "label": "string",
          "details": "string"
        }
      ],
      "properties": {},
      "userProperties": {
        "id": "string",
        "identificationType": "COOKIED",
        "userId": "string",
        "supportAgentName": "string",
        "userType": "string"
      },
      "conversation": {
        "id": "string",
        "externalId": "string",
        "externalUrl": "string",
        "type": "openai",
        "supportTicketConversationId": "string",
        "createdAt": "string",
        "updatedAt": "string",
        "projectId": "string",
        "integrationId": "string",
        "properties": {},
        "userProperties": {
          "id": "string",
          "identificationType": "COOKIED",
          "userId": "string",
          "supportAgentName": "string",
          "userType": "string"
        },
        "tags": [
          "string"
        ],
        "visibility": "private",
        "messages": [
          {
            "id": "string",
            "type": "openai",
            "externalId": "string",
            "externalUrl": "string",
            "conversationId": "string",
            "createdAt": "string",
            "updatedAt": "string",
            "role": "system",
            "content": "string",
            "name": "string",
            "links": [
              {
                "label": "string",
                "url": "string",
                "title": "string",
                "description": "string",
                "type": "documentation",
                "breadcrumbs": [
                  "string"
                ]
              }
            ],
            "properties": {},
            "userProperties": {
              "id": "string",
              "identificationType": "COOKIED",
              "userId": "string",
              "supportAgentName": "string",
              "userType": "string"
            },
            "tool_calls": [
              {
                "id": "string",
                "type": "function",
                "function": {
                  "name": "string",
                  "arguments": "string"
                }
              }
            ]
          }
        ],
        "messagesOpenAIFormat": [
          {
            "role": "system",
            "name": "string",
            "content": "string",
            "tool_calls": [
              {
                "id": "string",
                "type": "function",
                "function": {
                  "name": "string",
                  "arguments": "string"
                }
              }
            ]
          }
        ]
      },
      "message": {
        "id": "string",
        "type": "openai",
        "externalId": "string",
        "externalUrl": "string",
        "conversationId": "string",
        "createdAt": "string",
        "updatedAt": "string",
        "role": "system",
        "content": "string",
        "name": "string",
        "links": [
          {
            "label": "string",
            "url": "string",
            "title": "string",
            "description": "string",
            "type": "documentation",
            "breadcrumbs": [
              "string"
            ]
          }
        ],
        "properties": {},
        "userProperties": {
          "id": "string",
          "identificationType": "COOKIED",
          "userId": "string",
          "supportAgentName": "string",
          "userType": "string"
        },
        "tool_calls": [
          {
            "id": "string",
            "type": "function",
            "function": {
              "name": "string",
              "arguments": "string"
            }
          }
        ]
      }
    }
  ]
}"#;

/// A page with kinds, values and keys that this version of the spec does not list, as a newer API could send.
///
/// It has no explicit `null` on an optional field, so that re-serializing it must give back exactly the same JSON.
const FUTURE_CONVERSATIONS: &str = r#"{
  "conversations": [
    {
      "id": "conv-future",
      "externalId": null,
      "externalUrl": "https://support.example.com/t/1",
      "type": "openai",
      "supportTicketConversationId": null,
      "createdAt": "2025-03-01T10:00:00.000Z",
      "updatedAt": "2025-03-01T10:05:00.000Z",
      "projectId": "proj_1",
      "integrationId": "int_1",
      "properties": {"score": 0.75, "attempts": 3, "nested": {"big": 18446744073709551615, "negative": -7, "flag": true}},
      "userProperties": {"id": 12345, "userId": 9007199254740993, "identificationType": "SSO", "plan": "enterprise"},
      "tags": ["beta", "vision"],
      "visibility": "unlisted",
      "sentiment": {"label": "happy", "confidence": 0.9},
      "messages": [
        {
          "id": "msg-dev",
          "type": "openai",
          "externalId": null,
          "externalUrl": null,
          "conversationId": "conv-future",
          "createdAt": "2025-03-01T10:00:00.000Z",
          "updatedAt": "2025-03-01T10:00:00.000Z",
          "role": "developer",
          "content": "Answer in French.",
          "latencyMs": 1234
        },
        {
          "id": "msg-user",
          "type": "openai",
          "externalId": "ext-user-1",
          "externalUrl": null,
          "conversationId": "conv-future",
          "createdAt": "2025-03-01T10:01:00.000Z",
          "updatedAt": "2025-03-01T10:01:00.000Z",
          "role": "user",
          "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/dog.png", "detail": "ultra", "width": 640}}
          ]
        },
        {
          "id": "msg-assistant",
          "type": "openai",
          "externalId": null,
          "externalUrl": null,
          "conversationId": "conv-future",
          "createdAt": "2025-03-01T10:02:00.000Z",
          "updatedAt": "2025-03-01T10:02:00.000Z",
          "role": "assistant",
          "content": "Voici un chat.",
          "name": "docs-bot",
          "links": [
            {"url": "https://docs.example.com/a", "type": "documentation", "title": "A", "breadcrumbs": ["Docs", "A"]},
            {"url": "https://youtube.com/watch?v=1", "type": "youtube_video", "label": "Video", "favicon": "https://youtube.com/favicon.ico"}
          ],
          "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "search_docs", "arguments": "{\"q\":\"cats\"}"}},
            {"id": "call_2", "type": "mcp", "function": {"name": "lookup", "arguments": "{}"}, "server": "docs-mcp"}
          ]
        },
        {
          "id": "msg-voice",
          "type": "voice_transcript",
          "conversationId": "conv-future",
          "transcript": "hello there",
          "durationMs": 5120,
          "confidence": 0.98
        }
      ],
      "messagesOpenAIFormat": [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "text", "text": "What is in this image?"}, {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]},
        {"role": "assistant", "name": "docs-bot", "content": "Voici un chat.", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "search_docs", "arguments": "{\"q\":\"cats\"}"}}], "refusal": false}
      ]
    },
    {
      "id": "conv-voice",
      "type": "voice_call",
      "createdAt": "2025-03-02T08:00:00.000Z",
      "callerNumber": "+15550100",
      "durationSeconds": 42.5,
      "externalId": null,
      "segments": [{"speaker": "caller", "text": "hi"}, {"speaker": "agent", "text": "hello", "offsetMs": 1200}]
    },
    {
      "id": "conv-ticket",
      "externalId": "T-9",
      "externalUrl": null,
      "type": "support_ticket",
      "supportTicketConversationId": "st_1",
      "createdAt": "2025-03-03T09:00:00.000Z",
      "updatedAt": "2025-03-03T09:30:00.000Z",
      "projectId": null,
      "integrationId": null,
      "visibility": "public",
      "messages": [
        {
          "id": "t-m1",
          "type": "support_ticket",
          "externalId": null,
          "externalUrl": null,
          "conversationId": "conv-ticket",
          "createdAt": "2025-03-03T09:00:00.000Z",
          "updatedAt": "2025-03-03T09:00:00.000Z",
          "role": "agent",
          "content": null,
          "userProperties": {"userId": "agent-7", "supportAgentName": "Ana", "supportAgentEmail": "ana@example.com"}
        }
      ]
    }
  ],
  "total": 20,
  "pageSize": 3,
  "count": 3,
  "nextCursor": "opaque-cursor"
}"#;

/// A feedback page with values, kinds and keys that this version of the spec does not list.
///
/// Like [`FUTURE_CONVERSATIONS`], it has no explicit `null` on an optional field.
const FUTURE_FEEDBACK: &str = r#"{
  "positiveFeedbackCount": 1,
  "negativeFeedbackCount": 1,
  "positiveFeedback": [
    {
      "id": "fb-1",
      "type": "positive",
      "messageId": "msg-voice-1",
      "createdAt": "2025-03-04T00:00:00.000Z",
      "updatedAt": "2025-03-04T00:00:01.000Z",
      "reasons": [{"label": "accurate", "details": "spot on", "weight": 2}],
      "details": "Great answer",
      "sources": [
        {"type": "positive", "title": "Doc", "url": "https://docs.example.com/a"},
        {"type": "irrelevant", "title": "Old page", "url": "https://docs.example.com/old"},
        {"type": null, "url": "https://docs.example.com/unrated"}
      ],
      "properties": {"widget": "v2"},
      "userProperties": {"id": 12345, "userId": 9007199254740993, "cohort": 7},
      "rating": 5,
      "conversation": {"id": "conv-voice-1", "type": "voice_call", "durationSeconds": 12},
      "message": {"id": "msg-voice-1", "type": "voice_transcript", "conversationId": "conv-voice-1", "transcript": "thanks"}
    }
  ],
  "negativeFeedback": [
    {
      "id": "fb-2",
      "type": "mixed",
      "messageId": "c-2-m1",
      "createdAt": "2025-03-05T00:00:00.000Z",
      "conversation": {
        "id": "c-2",
        "externalId": null,
        "externalUrl": null,
        "type": "openai",
        "supportTicketConversationId": null,
        "createdAt": "2025-03-05T00:00:00.000Z",
        "updatedAt": "2025-03-05T00:00:00.000Z",
        "projectId": "proj_1",
        "integrationId": "int_1",
        "visibility": "unlisted",
        "messages": [
          {
            "id": "c-2-m1",
            "type": "openai",
            "externalId": null,
            "externalUrl": null,
            "conversationId": "c-2",
            "createdAt": "2025-03-05T00:00:00.000Z",
            "updatedAt": "2025-03-05T00:00:00.000Z",
            "role": "developer",
            "content": "Be brief."
          }
        ],
        "messagesOpenAIFormat": [{"role": "developer", "content": "Be brief."}]
      },
      "message": {
        "id": "c-2-m1",
        "type": "openai",
        "externalId": null,
        "externalUrl": null,
        "conversationId": "c-2",
        "createdAt": "2025-03-05T00:00:00.000Z",
        "updatedAt": "2025-03-05T00:00:00.000Z",
        "role": "developer",
        "content": "Be brief."
      }
    }
  ],
  "trend": "up"
}"#;

/// Parses JSON that the test itself wrote.
fn parse(text: &str) -> Value {
    match serde_json::from_str(text) {
        Ok(value) => value,
        Err(error) => panic!("the test's own JSON does not parse: {error}"),
    }
}

/// Serializes a decoded value back to JSON (a macro, because `serde` itself is not a dependency of the tests).
macro_rules! to_json {
    ($value:expr) => {
        match serde_json::to_value($value) {
            Ok(json) => json,
            Err(error) => panic!("a decoded value does not serialize: {error}"),
        }
    };
}

/// The JSON without object entries whose value is `null`, since an optional `null` is read as absent.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| (key.clone(), without_nulls(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// A mock server answering `GET path` with `body` as a 200.
async fn serving(path: &str, body: &str) -> MockServer {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path(path);
            then.status(200)
                .header("content-type", "application/json")
                .body(body);
        })
        .await;
    server
}

/// `body` decoded as a page of conversations, through the client.
async fn conversations_from(body: &str) -> ConversationList {
    let server = serving("/conversations", body).await;
    match client(&server).list_conversations().send().await {
        Ok(page) => page,
        Err(error) => panic!("the page did not decode: {error}"),
    }
}

/// `body` decoded as a page of feedback, through the client.
async fn feedback_from(body: &str) -> FeedbackList {
    let server = serving("/feedback", body).await;
    match client(&server).list_feedback().send().await {
        Ok(page) => page,
        Err(error) => panic!("the page did not decode: {error}"),
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_string()).collect()
}

#[tokio::test]
async fn the_api_reference_example_of_get_all_conversation_decodes() {
    let page = conversations_from(SEED_CONVERSATIONS).await;
    assert_eq!(page.total.as_u64(), Some(0));
    assert_eq!(page.page_size.as_u64(), Some(0));
    assert_eq!(page.count.as_u64(), Some(0));
    assert!(page.extra.is_empty(), "{:?}", page.extra);
    assert_eq!(page.conversations.len(), 1);

    let Conversation::OpenAi(conversation) = &page.conversations[0] else {
        panic!(
            "expected an openai conversation, got {:?}",
            page.conversations[0]
        );
    };
    assert_eq!(conversation.id, "string");
    assert_eq!(conversation.external_id.as_deref(), Some("string"));
    assert_eq!(conversation.external_url.as_deref(), Some("string"));
    assert_eq!(
        conversation.support_ticket_conversation_id.as_deref(),
        Some("string")
    );
    assert_eq!(conversation.project_id.as_deref(), Some("string"));
    assert_eq!(conversation.integration_id.as_deref(), Some("string"));
    assert_eq!(conversation.created_at, "string");
    assert_eq!(conversation.updated_at, "string");
    assert_eq!(conversation.visibility, Some(Visibility::Private));
    assert_eq!(conversation.tags, Some(strings(&["string"])));
    assert_eq!(conversation.properties.as_ref().map(|p| p.len()), Some(0));
    let Some(user) = &conversation.user_properties else {
        panic!("userProperties was dropped");
    };
    assert_eq!(user.id, Some(StringOrNumber::String("string".to_string())));
    assert_eq!(user.identification_type.as_deref(), Some("COOKIED"));
    assert_eq!(
        user.user_id,
        Some(StringOrNumber::String("string".to_string()))
    );
    assert_eq!(user.support_agent_name.as_deref(), Some("string"));
    assert!(user.extra.is_empty(), "{:?}", user.extra);
    // Every field of the example is modelled: none of them falls into the catch-all map.
    assert!(conversation.extra.is_empty(), "{:?}", conversation.extra);

    assert_eq!(conversation.messages.len(), 1);
    let Message::OpenAi(message) = &conversation.messages[0] else {
        panic!(
            "expected an openai message, got {:?}",
            conversation.messages[0]
        );
    };
    assert_eq!(message.role, OpenAiRole::System);
    assert_eq!(
        message.content,
        Some(OpenAiMessageContent::String("string".to_string()))
    );
    assert_eq!(message.name.as_deref(), Some("string"));
    assert_eq!(message.conversation_id, "string");
    assert!(message.extra.is_empty(), "{:?}", message.extra);
    let Some(links) = &message.links else {
        panic!("links were dropped");
    };
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].type_, Some(LinkType::Documentation));
    assert_eq!(links[0].url, "string");
    assert_eq!(links[0].label.as_deref(), Some("string"));
    assert_eq!(links[0].title.as_deref(), Some("string"));
    assert_eq!(links[0].description.as_deref(), Some("string"));
    assert_eq!(links[0].breadcrumbs, Some(strings(&["string"])));
    assert!(links[0].extra.is_empty(), "{:?}", links[0].extra);
    let Some(tool_calls) = &message.tool_calls else {
        panic!("tool_calls were dropped");
    };
    assert_eq!(tool_calls.len(), 1);
    assert_eq!(tool_calls[0].id, "string");
    assert_eq!(tool_calls[0].type_, ToolCallType::Function);
    assert_eq!(tool_calls[0].function.name, "string");
    assert_eq!(tool_calls[0].function.arguments, "string");

    assert_eq!(conversation.messages_open_ai_format.len(), 1);
    let openai = &conversation.messages_open_ai_format[0];
    assert_eq!(openai.role, OpenAiRole::System);
    assert_eq!(openai.name.as_deref(), Some("string"));
    assert_eq!(
        openai.content,
        Some(OpenAiMessageContent::String("string".to_string()))
    );
    assert_eq!(
        openai
            .tool_calls
            .as_ref()
            .map(|calls| calls[0].function.name.as_str()),
        Some("string")
    );
    assert!(openai.extra.is_empty(), "{:?}", openai.extra);

    // The example has no null, so re-serializing must give back exactly the same JSON.
    assert_eq!(to_json!(&page), parse(SEED_CONVERSATIONS));
}

#[tokio::test]
async fn the_api_reference_example_of_get_all_feedback_decodes() {
    let page = feedback_from(SEED_FEEDBACK).await;
    assert_eq!(page.positive_feedback_count.as_u64(), Some(0));
    assert_eq!(page.negative_feedback_count.as_u64(), Some(0));
    assert!(page.extra.is_empty(), "{:?}", page.extra);
    assert_eq!(page.positive_feedback.len(), 1);
    assert_eq!(page.negative_feedback.len(), 1);

    for feedback in page.positive_feedback.iter().chain(&page.negative_feedback) {
        assert_eq!(feedback.id, "string");
        // The example's negative list holds an item typed positive; it is kept as sent.
        assert_eq!(feedback.type_, FeedbackType::Positive);
        assert_eq!(feedback.message_id, "string");
        assert_eq!(feedback.created_at, "string");
        assert_eq!(feedback.updated_at, None, "the example has no updatedAt");
        let Some(reasons) = &feedback.reasons else {
            panic!("reasons were dropped");
        };
        assert_eq!(reasons.len(), 1);
        assert_eq!(reasons[0].label, "string");
        assert_eq!(reasons[0].details, "string");
        assert_eq!(feedback.properties.as_ref().map(|p| p.len()), Some(0));
        let Some(user) = &feedback.user_properties else {
            panic!("userProperties was dropped");
        };
        assert_eq!(user.user_type.as_deref(), Some("string"));
        assert_eq!(user.identification_type.as_deref(), Some("COOKIED"));
        assert!(feedback.extra.is_empty(), "{:?}", feedback.extra);

        let Conversation::OpenAi(conversation) = &feedback.conversation else {
            panic!(
                "expected an openai conversation, got {:?}",
                feedback.conversation
            );
        };
        assert_eq!(conversation.visibility, Some(Visibility::Private));
        assert!(conversation.extra.is_empty(), "{:?}", conversation.extra);
        let Some(Message::OpenAi(first)) = conversation.messages.first() else {
            panic!(
                "expected an openai message, got {:?}",
                conversation.messages
            );
        };
        assert_eq!(first.role, OpenAiRole::System);
        assert_eq!(
            first
                .links
                .as_ref()
                .and_then(|links| links[0].type_.clone()),
            Some(LinkType::Documentation)
        );
        assert_eq!(
            conversation.messages_open_ai_format[0].role,
            OpenAiRole::System
        );

        let Message::OpenAi(message) = &feedback.message else {
            panic!("expected an openai message, got {:?}", feedback.message);
        };
        assert_eq!(message.role, OpenAiRole::System);
        assert_eq!(
            message
                .tool_calls
                .as_ref()
                .map(|calls| calls[0].function.name.as_str()),
            Some("string")
        );
        assert_eq!(
            message
                .user_properties
                .as_ref()
                .and_then(|user| user.user_type.as_deref()),
            Some("string")
        );
        assert!(message.extra.is_empty(), "{:?}", message.extra);
    }

    assert_eq!(to_json!(&page), parse(SEED_FEEDBACK));
}

#[tokio::test]
async fn the_api_reference_example_of_get_all_feedback_streams_by_list() {
    let server = serving("/feedback", SEED_FEEDBACK).await;
    let items =
        futures::TryStreamExt::try_collect::<Vec<_>>(client(&server).list_feedback().items()).await;
    let items = match items {
        Ok(items) => items,
        Err(error) => panic!("the example did not stream: {error}"),
    };
    let sentiments: Vec<Sentiment> = items.iter().map(|item| item.sentiment).collect();
    assert_eq!(sentiments, [Sentiment::Positive, Sentiment::Negative]);
    // The sentiment says which list an item came from, whatever its own `type` says.
    assert_eq!(items[1].feedback.type_, FeedbackType::Positive);
}

#[tokio::test]
async fn an_openai_developer_role_is_kept_and_does_not_fail_the_page() {
    let mut developer = openai_conversation("c2");
    developer["messages"][0]["role"] = json!("developer");
    developer["messagesOpenAIFormat"][0]["role"] = json!("developer");
    let body = json!({
        "conversations": [openai_conversation("c1"), developer, openai_conversation("c3")],
        "total": 3,
        "pageSize": 3,
        "count": 3,
    });
    let page = conversations_from(&body.to_string()).await;
    let ids: Vec<Option<&str>> = page.conversations.iter().map(Conversation::id).collect();
    assert_eq!(ids, [Some("c1"), Some("c2"), Some("c3")]);

    let Conversation::OpenAi(conversation) = &page.conversations[1] else {
        panic!(
            "expected an openai conversation, got {:?}",
            page.conversations[1]
        );
    };
    let Message::OpenAi(message) = &conversation.messages[0] else {
        panic!(
            "expected an openai message, got {:?}",
            conversation.messages[0]
        );
    };
    assert_eq!(message.role, OpenAiRole::Other("developer".to_string()));
    assert!(message.role.is_other());
    assert_eq!(message.role.as_str(), "developer");
    assert_eq!(
        conversation.messages_open_ai_format[0].role,
        OpenAiRole::Other("developer".to_string())
    );
    let json = to_json!(&page);
    assert_eq!(
        json["conversations"][1]["messages"][0]["role"],
        json!("developer")
    );
    assert_eq!(
        json["conversations"][1]["messagesOpenAIFormat"][0]["role"],
        json!("developer")
    );

    // The neighbours keep their known roles.
    let Conversation::OpenAi(first) = &page.conversations[0] else {
        panic!(
            "expected an openai conversation, got {:?}",
            page.conversations[0]
        );
    };
    let Message::OpenAi(first_message) = &first.messages[0] else {
        panic!("expected an openai message, got {:?}", first.messages[0]);
    };
    assert_eq!(first_message.role, OpenAiRole::User);
}

/// The openai conversation of [`FUTURE_CONVERSATIONS`], decoded.
fn future_openai(page: &ConversationList) -> &inkeep_analytics::types::OpenAiConversation {
    match page.conversations.first() {
        Some(Conversation::OpenAi(conversation)) => conversation,
        other => panic!("expected an openai conversation first, got {other:?}"),
    }
}

/// Message `index` of the openai conversation of [`FUTURE_CONVERSATIONS`], which must be an openai message.
fn future_openai_message(
    page: &ConversationList,
    index: usize,
) -> &inkeep_analytics::types::OpenAiMessage {
    match future_openai(page).messages.get(index) {
        Some(Message::OpenAi(message)) => message,
        other => panic!("expected an openai message at {index}, got {other:?}"),
    }
}

#[tokio::test]
async fn string_enum_values_newer_than_the_spec_are_kept() {
    let page = conversations_from(FUTURE_CONVERSATIONS).await;
    assert_eq!(
        page.conversations.len(),
        3,
        "a newer value failed or dropped part of the page"
    );
    let conversation = future_openai(&page);
    assert_eq!(
        conversation.visibility,
        Some(Visibility::Other("unlisted".to_string()))
    );
    assert_eq!(
        conversation.visibility.as_ref().map(Visibility::as_str),
        Some("unlisted")
    );

    assert_eq!(
        future_openai_message(&page, 0).role,
        OpenAiRole::Other("developer".to_string())
    );

    let assistant = future_openai_message(&page, 2);
    let Some(links) = &assistant.links else {
        panic!("links were dropped");
    };
    assert_eq!(links[0].type_, Some(LinkType::Documentation));
    assert_eq!(
        links[1].type_,
        Some(LinkType::Other("youtube_video".to_string()))
    );
    let Some(tool_calls) = &assistant.tool_calls else {
        panic!("tool_calls were dropped");
    };
    assert_eq!(tool_calls[0].type_, ToolCallType::Function);
    assert_eq!(tool_calls[1].type_, ToolCallType::Other("mcp".to_string()));
    assert_eq!(tool_calls[1].function.name, "lookup");

    let Some(OpenAiMessageContent::Array(items)) = &future_openai_message(&page, 1).content else {
        panic!("expected content items");
    };
    assert_eq!(
        items[2].type_,
        ContentItemType::Other("input_audio".to_string())
    );
    assert_eq!(
        items[3]
            .image_url
            .as_ref()
            .and_then(|image| image.detail.clone()),
        Some(ImageDetail::Other("ultra".to_string()))
    );

    let json = to_json!(&page);
    let conversation_json = &json["conversations"][0];
    assert_eq!(conversation_json["visibility"], json!("unlisted"));
    assert_eq!(
        conversation_json["messages"][2]["links"][1]["type"],
        json!("youtube_video")
    );
    assert_eq!(
        conversation_json["messages"][2]["tool_calls"][1]["type"],
        json!("mcp")
    );
    assert_eq!(
        conversation_json["messages"][1]["content"][2]["type"],
        json!("input_audio")
    );
    assert_eq!(
        conversation_json["messages"][1]["content"][3]["image_url"]["detail"],
        json!("ultra")
    );
}

#[tokio::test]
async fn content_can_be_an_array_of_content_items() {
    let page = conversations_from(FUTURE_CONVERSATIONS).await;
    let Some(OpenAiMessageContent::Array(items)) = &future_openai_message(&page, 1).content else {
        panic!("expected content items");
    };
    assert_eq!(items.len(), 4);
    assert_eq!(items[0].type_, ContentItemType::Text);
    assert_eq!(items[0].text.as_deref(), Some("What is in this image?"));
    assert!(items[0].image_url.is_none());
    assert_eq!(items[1].type_, ContentItemType::ImageUrl);
    let Some(image) = &items[1].image_url else {
        panic!("image_url was dropped");
    };
    assert_eq!(image.url, "https://example.com/cat.png");
    assert_eq!(image.detail, Some(ImageDetail::High));
    // A content item of an unknown type keeps its payload.
    assert_eq!(
        items[2].extra.get("input_audio"),
        Some(&json!({"data": "UklGRg==", "format": "wav"}))
    );
    assert_eq!(
        items[3]
            .image_url
            .as_ref()
            .and_then(|image| image.extra.get("width")),
        Some(&json!(640))
    );

    let Some(OpenAiMessageContent::Array(openai_items)) =
        &future_openai(&page).messages_open_ai_format[1].content
    else {
        panic!("expected content items in the OpenAI format too");
    };
    assert_eq!(openai_items.len(), 2);
    assert_eq!(openai_items[1].type_.as_str(), "input_audio");
    // A plain string stays a string.
    assert_eq!(
        future_openai_message(&page, 0).content,
        Some(OpenAiMessageContent::String(
            "Answer in French.".to_string()
        ))
    );
}

#[tokio::test]
async fn a_conversation_kind_the_spec_does_not_list_is_kept_as_its_json() {
    let page = conversations_from(FUTURE_CONVERSATIONS).await;
    let sent = parse(FUTURE_CONVERSATIONS);
    let Conversation::Unknown(kept) = &page.conversations[1] else {
        panic!(
            "expected an unknown conversation, got {:?}",
            page.conversations[1]
        );
    };
    assert_eq!(kept, &sent["conversations"][1]);
    assert!(page.conversations[1].is_unknown());
    assert_eq!(page.conversations[1].kind(), Some("voice_call"));
    assert_eq!(page.conversations[1].id(), Some("conv-voice"));
    // The kinds around it still decode as themselves.
    assert!(matches!(page.conversations[0], Conversation::OpenAi(_)));
    assert!(matches!(
        page.conversations[2],
        Conversation::SupportTicket(_)
    ));
    assert_eq!(to_json!(&page.conversations[1]), sent["conversations"][1]);
}

#[tokio::test]
async fn a_message_kind_the_spec_does_not_list_is_kept_inside_a_known_conversation() {
    let page = conversations_from(FUTURE_CONVERSATIONS).await;
    let sent = parse(FUTURE_CONVERSATIONS);
    let conversation = future_openai(&page);
    assert_eq!(conversation.messages.len(), 4);
    let Message::Unknown(kept) = &conversation.messages[3] else {
        panic!(
            "expected an unknown message, got {:?}",
            conversation.messages[3]
        );
    };
    assert_eq!(kept, &sent["conversations"][0]["messages"][3]);
    assert_eq!(conversation.messages[3].kind(), Some("voice_transcript"));
    assert_eq!(conversation.messages[3].id(), Some("msg-voice"));
    let known: Vec<Option<&str>> = conversation.messages[..3]
        .iter()
        .map(Message::kind)
        .collect();
    assert_eq!(known, [Some("openai"), Some("openai"), Some("openai")]);
}

#[tokio::test]
async fn unknown_keys_are_kept_in_the_extra_maps() {
    let page = conversations_from(FUTURE_CONVERSATIONS).await;
    assert_eq!(page.extra.get("nextCursor"), Some(&json!("opaque-cursor")));
    let conversation = future_openai(&page);
    assert_eq!(
        conversation.extra.get("sentiment"),
        Some(&json!({"label": "happy", "confidence": 0.9}))
    );
    assert_eq!(conversation.extra.len(), 1, "{:?}", conversation.extra);
    let developer = future_openai_message(&page, 0);
    assert_eq!(developer.extra.get("latencyMs"), Some(&json!(1234)));
    assert_eq!(developer.extra.len(), 1, "{:?}", developer.extra);
    let assistant = future_openai_message(&page, 2);
    let Some(links) = &assistant.links else {
        panic!("links were dropped");
    };
    assert_eq!(
        links[1].extra.get("favicon"),
        Some(&json!("https://youtube.com/favicon.ico"))
    );
    assert!(links[0].extra.is_empty(), "{:?}", links[0].extra);
    let Some(tool_calls) = &assistant.tool_calls else {
        panic!("tool_calls were dropped");
    };
    assert_eq!(tool_calls[1].extra.get("server"), Some(&json!("docs-mcp")));
    assert_eq!(
        conversation.messages_open_ai_format[2].extra.get("refusal"),
        Some(&json!(false))
    );
    let Some(user) = &conversation.user_properties else {
        panic!("userProperties was dropped");
    };
    assert_eq!(user.extra.get("plan"), Some(&json!("enterprise")));
    assert_eq!(user.identification_type.as_deref(), Some("SSO"));
}

#[tokio::test]
async fn user_ids_sent_as_numbers_are_kept_exactly() {
    let page = conversations_from(FUTURE_CONVERSATIONS).await;
    let Some(user) = &future_openai(&page).user_properties else {
        panic!("userProperties was dropped");
    };
    let Some(StringOrNumber::JsonNumber(id)) = &user.id else {
        panic!("expected a numeric id, got {:?}", user.id);
    };
    assert_eq!(id.as_u64(), Some(12345));
    let Some(StringOrNumber::JsonNumber(user_id)) = &user.user_id else {
        panic!("expected a numeric userId, got {:?}", user.user_id);
    };
    // 2^53 + 1: a value a float would round to 9007199254740992.
    assert_eq!(user_id.as_u64(), Some(9_007_199_254_740_993));
    assert_eq!(user_id.to_string(), "9007199254740993");

    let text = match serde_json::to_string(&page) {
        Ok(text) => text,
        Err(error) => panic!("the page does not serialize: {error}"),
    };
    assert!(text.contains(r#""userId":9007199254740993"#), "{text}");
    assert!(text.contains(r#""id":12345"#), "{text}");

    // A string id stays a string.
    let Conversation::SupportTicket(ticket) = &page.conversations[2] else {
        panic!("expected a support ticket, got {:?}", page.conversations[2]);
    };
    let Some(Message::SupportTicket(message)) = ticket.messages.first() else {
        panic!(
            "expected a support ticket message, got {:?}",
            ticket.messages
        );
    };
    let ticket_user = message
        .user_properties
        .as_ref()
        .and_then(|user| user.user_id.clone());
    assert_eq!(
        ticket_user,
        Some(StringOrNumber::String("agent-7".to_string()))
    );
}

#[tokio::test]
async fn a_support_ticket_has_free_roles_and_nullable_content() {
    let page = conversations_from(FUTURE_CONVERSATIONS).await;
    let Conversation::SupportTicket(ticket) = &page.conversations[2] else {
        panic!("expected a support ticket, got {:?}", page.conversations[2]);
    };
    assert_eq!(ticket.visibility, Some(Visibility::Public));
    assert_eq!(ticket.external_id.as_deref(), Some("T-9"));
    assert_eq!(ticket.project_id, None);
    let Some(Message::SupportTicket(message)) = ticket.messages.first() else {
        panic!(
            "expected a support ticket message, got {:?}",
            ticket.messages
        );
    };
    assert_eq!(message.role, "agent");
    assert_eq!(message.content, None);
    let Some(user) = &message.user_properties else {
        panic!("userProperties was dropped");
    };
    assert_eq!(user.support_agent_name.as_deref(), Some("Ana"));
    assert_eq!(user.support_agent_email.as_deref(), Some("ana@example.com"));
}

#[tokio::test]
async fn feedback_newer_than_the_spec_is_kept() {
    let page = feedback_from(FUTURE_FEEDBACK).await;
    assert_eq!(page.extra.get("trend"), Some(&json!("up")));
    let [positive] = page.positive_feedback.as_slice() else {
        panic!(
            "expected one positive item, got {:?}",
            page.positive_feedback
        );
    };
    assert_eq!(positive.type_, FeedbackType::Positive);
    let Some(sources) = &positive.sources else {
        panic!("sources were dropped");
    };
    let kinds: Vec<Option<FeedbackSourceType>> =
        sources.iter().map(|source| source.type_.clone()).collect();
    assert_eq!(
        kinds,
        [
            Some(FeedbackSourceType::Positive),
            Some(FeedbackSourceType::Other("irrelevant".to_string())),
            None,
        ]
    );
    assert_eq!(sources[1].title.as_deref(), Some("Old page"));
    let Some(reasons) = &positive.reasons else {
        panic!("reasons were dropped");
    };
    assert_eq!(reasons[0].extra.get("weight"), Some(&json!(2)));
    assert_eq!(positive.details.as_deref(), Some("Great answer"));
    assert_eq!(
        positive.updated_at.as_deref(),
        Some("2025-03-04T00:00:01.000Z")
    );
    assert_eq!(positive.extra.get("rating"), Some(&json!(5)));
    let user_id = positive
        .user_properties
        .as_ref()
        .and_then(|user| user.user_id.clone());
    let Some(StringOrNumber::JsonNumber(user_id)) = user_id else {
        panic!("expected a numeric userId");
    };
    assert_eq!(user_id.as_u64(), Some(9_007_199_254_740_993));

    let sent = parse(FUTURE_FEEDBACK);
    let Conversation::Unknown(conversation) = &positive.conversation else {
        panic!(
            "expected an unknown conversation, got {:?}",
            positive.conversation
        );
    };
    assert_eq!(conversation, &sent["positiveFeedback"][0]["conversation"]);
    let Message::Unknown(message) = &positive.message else {
        panic!("expected an unknown message, got {:?}", positive.message);
    };
    assert_eq!(message, &sent["positiveFeedback"][0]["message"]);

    let [negative] = page.negative_feedback.as_slice() else {
        panic!(
            "expected one negative item, got {:?}",
            page.negative_feedback
        );
    };
    assert_eq!(negative.type_, FeedbackType::Other("mixed".to_string()));
    let Conversation::OpenAi(conversation) = &negative.conversation else {
        panic!(
            "expected an openai conversation, got {:?}",
            negative.conversation
        );
    };
    assert_eq!(
        conversation.visibility,
        Some(Visibility::Other("unlisted".to_string()))
    );
    let Message::OpenAi(message) = &negative.message else {
        panic!("expected an openai message, got {:?}", negative.message);
    };
    assert_eq!(message.role, OpenAiRole::Other("developer".to_string()));
}

#[tokio::test]
async fn re_serializing_conversations_gives_back_the_same_json() {
    let page = conversations_from(FUTURE_CONVERSATIONS).await;
    let json = to_json!(&page);
    assert_eq!(json, parse(FUTURE_CONVERSATIONS));

    // Counts stay integers: `20`, never `20.0`.
    assert!(json["total"].is_u64(), "{}", json["total"]);
    let text = match serde_json::to_string(&page) {
        Ok(text) => text,
        Err(error) => panic!("the page does not serialize: {error}"),
    };
    for expected in [r#""total":20"#, r#""pageSize":3"#, r#""count":3"#] {
        assert!(text.contains(expected), "{expected} is not in {text}");
    }
    assert!(!text.contains("20.0"), "{text}");
    // Numbers in free-form properties keep their kind and value.
    let properties = &json["conversations"][0]["properties"];
    assert_eq!(properties["nested"]["big"].as_u64(), Some(u64::MAX));
    assert_eq!(properties["nested"]["negative"].as_i64(), Some(-7));
    assert_eq!(properties["attempts"], json!(3));
    assert_eq!(properties["score"], json!(0.75));
    // A required field sent as null is written back as null, not dropped.
    assert_eq!(
        json["conversations"][0].get("externalId"),
        Some(&Value::Null)
    );

    // Decoding what was written gives the same value again.
    match serde_json::from_value::<ConversationList>(json) {
        Ok(again) => assert_eq!(again, page),
        Err(error) => panic!("the re-serialized page does not decode: {error}"),
    }
}

#[tokio::test]
async fn re_serializing_feedback_gives_back_the_same_json() {
    let page = feedback_from(FUTURE_FEEDBACK).await;
    let json = to_json!(&page);
    assert_eq!(json, parse(FUTURE_FEEDBACK));
    assert!(json["positiveFeedbackCount"].is_u64());
    assert!(json["negativeFeedbackCount"].is_u64());
    match serde_json::from_value::<FeedbackList>(json) {
        Ok(again) => assert_eq!(again, page),
        Err(error) => panic!("the re-serialized page does not decode: {error}"),
    }
}

#[tokio::test]
async fn re_serializing_keeps_every_field_that_was_present_and_not_null() {
    // Every optional field the spec allows as null is sent as null here; those may come back absent.
    let mut conversation = openai_conversation("c-nulls");
    conversation["properties"] = Value::Null;
    conversation["userProperties"] =
        json!({"id": null, "userId": 42, "identificationType": null, "segment": null});
    conversation["tags"] = Value::Null;
    conversation["visibility"] = Value::Null;
    conversation["projectId"] = Value::Null;
    conversation["messages"][0]["name"] = Value::Null;
    conversation["messages"][0]["links"] = json!([{"url": "https://docs.example.com", "label": null, "type": null, "breadcrumbs": null}]);
    conversation["messages"][0]["tool_calls"] = Value::Null;
    conversation["messages"][0]["properties"] = Value::Null;
    conversation["messagesOpenAIFormat"][0]["name"] = Value::Null;
    conversation["messagesOpenAIFormat"][0]["tool_calls"] = Value::Null;
    let sent = json!({
        "conversations": [conversation],
        "total": 20,
        "pageSize": 1,
        "count": 1,
    });
    let page = conversations_from(&sent.to_string()).await;
    let json = to_json!(&page);
    assert_eq!(without_nulls(&json), without_nulls(&sent));
    assert_eq!(json["total"], json!(20));
    assert!(json["total"].is_u64(), "{}", json["total"]);
    // An unknown key whose value is null is still an unknown key that was sent: it is kept.
    assert_eq!(
        json["conversations"][0]["userProperties"].get("segment"),
        Some(&Value::Null)
    );
    // Required nullable fields are written back as null.
    for key in [
        "externalId",
        "externalUrl",
        "supportTicketConversationId",
        "projectId",
        "visibility",
    ] {
        assert_eq!(
            json["conversations"][0].get(key),
            Some(&Value::Null),
            "{key}"
        );
    }
}

#[tokio::test]
async fn decoding_through_the_client_matches_decoding_the_body_directly() {
    // The client adds nothing and drops nothing: its value is serde's value of the same bytes.
    let server = serving("/conversations", FUTURE_CONVERSATIONS).await;
    let client: Client = client(&server);
    let through_client = match client.list_conversations().send().await {
        Ok(page) => page,
        Err(error) => panic!("the page did not decode: {error}"),
    };
    match serde_json::from_str::<ConversationList>(FUTURE_CONVERSATIONS) {
        Ok(direct) => assert_eq!(through_client, direct),
        Err(error) => panic!("the page does not decode directly: {error}"),
    }
}

/// An openai conversation whose assistant message only calls a tool, with `content: null` in
/// `messages` and in `messagesOpenAIFormat`, as OpenAI's format has it.
fn conversation_with_a_null_content() -> Value {
    let mut conversation = openai_conversation("conv_null");
    let call = json!([{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]);
    conversation["messages"]
        .as_array_mut()
        .map(|messages| {
            messages.push(json!({
                "id": "conv_null-m2", "type": "openai", "externalId": null, "externalUrl": null,
                "conversationId": "conv_null", "createdAt": "2025-01-01T00:00:01.000Z",
                "updatedAt": "2025-01-01T00:00:01.000Z", "role": "assistant", "content": null,
                "tool_calls": call,
            }))
        })
        .unwrap_or_else(|| panic!("the fixture has messages"));
    conversation["messagesOpenAIFormat"]
        .as_array_mut()
        .map(|messages| {
            messages.push(json!({"role": "assistant", "content": null, "tool_calls": call}))
        })
        .unwrap_or_else(|| panic!("the fixture has messagesOpenAIFormat"));
    conversation
}

#[tokio::test]
async fn a_null_openai_content_decodes_in_typed_and_raw_reads() {
    let conversation = conversation_with_a_null_content();
    let body =
        json!({"conversations": [conversation.clone()], "total": 1, "pageSize": 1, "count": 1})
            .to_string();
    let server = MockServer::start_async().await;
    for (path, body) in [
        ("/conversations", body.clone()),
        ("/conversations/conv_null", conversation.to_string()),
    ] {
        server
            .mock_async(|when, then| {
                when.method(GET).path(path);
                then.status(200)
                    .header("content-type", "application/json")
                    .body(body);
            })
            .await;
    }
    let client = client(&server);

    // Typed, through the listing and the single read.
    let page = match client.list_conversations().send().await {
        Ok(page) => page,
        Err(error) => panic!("a page with a null content did not decode: {error}"),
    };
    let single = match client.get_conversation("conv_null").await {
        Ok(conversation) => conversation,
        Err(error) => panic!("a conversation with a null content did not decode: {error}"),
    };
    for decoded in [&page.conversations[0], &single] {
        let Some(openai) = decoded.as_openai() else {
            panic!("expected an openai conversation, got {decoded:?}");
        };
        let Some(Message::OpenAi(reply)) = openai.messages.get(1) else {
            panic!("the assistant message is missing: {:?}", openai.messages);
        };
        assert_eq!(reply.content, None);
        let calls = reply.tool_calls.as_deref().unwrap_or_default();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].function.name, "weather");
        assert_eq!(openai.messages_open_ai_format[1].content, None);
        assert_eq!(
            openai.messages_open_ai_format[0].content,
            Some(OpenAiMessageContent::String(
                "How do I log a conversation?".into()
            ))
        );
        // Written back, the null stays a null.
        assert_eq!(to_json!(decoded)["messages"][1]["content"], Value::Null);
    }

    // Raw, through the page stream: the record is the server's JSON, null included.
    let pages: Vec<inkeep_analytics::listing::RawConversationPage> =
        match futures::TryStreamExt::try_collect(client.list_conversations().raw_pages()).await {
            Ok(pages) => pages,
            Err(error) => panic!("the raw page did not decode: {error}"),
        };
    let raw = parse(pages[0].conversations[0].get());
    assert_eq!(raw, conversation);
}
