//! The async-openai wrapper end to end: a scripted stand-in for OpenAI's `/v1/chat/completions`
//! on 127.0.0.1 (JSON answers and server-sent-event streams), the recorder, and the sandbox,
//! whose stored conversation after a multi-turn session must be what was said, once each.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use inkeep_analytics::openai::async_openai::config::OpenAIConfig;
use inkeep_analytics::openai::async_openai::types::chat::{
    CreateChatCompletionRequest, CreateChatCompletionResponse, CreateChatCompletionStreamResponse,
};
use inkeep_analytics::openai::{self, async_openai};
use inkeep_analytics::query::{self, Filter, Selection};
use inkeep_analytics::types::{Conversation, EventsViewField, FeedbackType};
use inkeep_analytics::{Client, recorder::Recorder};
use inkeep_analytics_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One scripted answer of the stand-in.
enum Answer {
    Json(Value),
    Stream(Vec<Value>),
    Error(u16, Value),
}

/// The stand-in's script and what it was sent.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    received: Arc<Mutex<Vec<Value>>>,
}

async fn chat_completions(State(script): State<Script>, body: String) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    script
        .received
        .lock()
        .map(|mut received| received.push(request))
        .unwrap_or_default();
    let answer = script.answers.lock().ok().and_then(|mut a| a.pop_front());
    match answer {
        Some(Answer::Json(body)) => (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response(),
        Some(Answer::Stream(chunks)) => {
            let mut text = String::new();
            for chunk in chunks {
                text.push_str(&format!("data: {chunk}\n\n"));
            }
            text.push_str("data: [DONE]\n\n");
            ([(header::CONTENT_TYPE, "text/event-stream")], text).into_response()
        }
        Some(Answer::Error(status, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response(),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "the script is over").into_response(),
    }
}

/// Starts the stand-in on 127.0.0.1; it stops when the test's runtime does.
async fn stand_in(answers: Vec<Answer>) -> Result<(String, Script), Box<dyn std::error::Error>> {
    let script = Script {
        answers: Arc::new(Mutex::new(answers.into())),
        received: Arc::default(),
    };
    let app = axum::Router::new()
        .route(
            "/v1/chat/completions",
            axum::routing::post(chat_completions),
        )
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/v1", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((base, script))
}

fn openai_client(base: &str) -> async_openai::Client<OpenAIConfig> {
    async_openai::Client::with_config(
        OpenAIConfig::new()
            .with_api_base(base)
            .with_api_key("sk-test-not-a-key"),
    )
}

fn request(
    messages: Value,
    extra: Value,
) -> Result<CreateChatCompletionRequest, serde_json::Error> {
    let mut body = json!({"model": "gpt-4o-mini", "messages": messages});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    serde_json::from_value(body)
}

fn completion(id: &str, message: Value, finish: &str, tokens: u32) -> Value {
    json!({
        "id": id, "object": "chat.completion", "created": 1_733_011_200, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": tokens, "completion_tokens": 10, "total_tokens": tokens + 10}
    })
}

fn chunk(choices: Value, usage: Value) -> Value {
    json!({"id": "chatcmpl-turn2", "object": "chat.completion.chunk", "created": 1_733_011_260,
        "model": "gpt-4o-mini-2024-07-18", "choices": choices, "usage": usage})
}

async fn services() -> Result<(Sandbox, Client, Recorder), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start_with(SandboxConfig {
        conversations: 1,
        ..SandboxConfig::default()
    })
    .await?;
    let client = Client::builder()
        .api_key(sandbox.api_key())
        .base_url(sandbox.base_url())
        .timeout(Duration::from_secs(5))
        .build()?;
    let recorder = Recorder::builder(client.clone()).build()?;
    Ok((sandbox, client, recorder))
}

#[tokio::test]
async fn a_multi_turn_session_is_stored_as_it_was_said_once() -> TestResult {
    let tool_calls = json!([
        {"id": "call_paris", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
        {"id": "call_lyon", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Lyon\"}"}}
    ]);
    let turn1 = completion(
        "chatcmpl-turn1",
        json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": tool_calls}),
        "tool_calls",
        50,
    );
    let turn2 = vec![
        chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {"content": "It is 18 °C in Paris"}, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {"content": " and 21 °C in Lyon."}, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            Value::Null,
        ),
        chunk(
            json!([]),
            json!({"prompt_tokens": 90, "completion_tokens": 14, "total_tokens": 104}),
        ),
    ];
    let turn3 = completion(
        "chatcmpl-turn3",
        json!({"role": "assistant", "content": "That is the Pont Neuf; see its page.", "refusal": null,
            "annotations": [{"type": "url_citation", "url_citation": {"start_index": 12, "end_index": 21, "title": "Pont Neuf", "url": "https://example.com/pont-neuf"}}]}),
        "stop",
        700,
    );
    let failure = json!({"error": {"message": "This model's maximum context length was exceeded.", "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}});
    let (base, script) = stand_in(vec![
        Answer::Json(turn1.clone()),
        Answer::Stream(turn2.clone()),
        Answer::Json(turn3.clone()),
        Answer::Error(400, failure),
    ])
    .await?;
    let (sandbox, client, recorder) = services().await?;

    // The one line.
    let chat = openai::wrap(openai_client(&base), &recorder).conversation("session-1");

    // Turn 1: parallel tool calls, answered as JSON.
    let mut messages = json!([
        {"role": "system", "content": "You answer questions about the weather."},
        {"role": "developer", "content": "Call tools in parallel."},
        {"role": "user", "content": "Weather in Paris and Lyon?"}
    ]);
    let first = chat.create(request(messages.clone(), json!({"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}], "temperature": 0.3}))?).await?;
    let expected: CreateChatCompletionResponse = serde_json::from_value(turn1)?;
    assert_eq!(
        first, expected,
        "the caller gets exactly what async-openai returned"
    );

    // Turn 2: the tool results, answered as a stream with usage in its last chunk.
    if let Some(list) = messages.as_array_mut() {
        list.push(json!({"role": "assistant", "tool_calls": tool_calls}));
        list.push(json!({"role": "tool", "tool_call_id": "call_paris", "content": "18"}));
        list.push(json!({"role": "tool", "tool_call_id": "call_lyon", "content": "21"}));
    }
    let mut stream = chat
        .create_stream(request(
            messages.clone(),
            json!({"stream_options": {"include_usage": true}}),
        )?)
        .await?;
    let mut received = Vec::new();
    while let Some(chunk) = stream.next().await {
        received.push(chunk?);
    }
    drop(stream);
    let sent: Vec<CreateChatCompletionStreamResponse> = turn2
        .iter()
        .map(|chunk| serde_json::from_value(chunk.clone()))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        received, sent,
        "the stream is async-openai's, chunk for chunk"
    );

    // Turn 3: an image, answered with a citation.
    if let Some(list) = messages.as_array_mut() {
        list.push(
            json!({"role": "assistant", "content": "It is 18 °C in Paris and 21 °C in Lyon."}),
        );
        list.push(json!({"role": "user", "content": [
            {"type": "text", "text": "And what is this bridge?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/bridge.png", "detail": "low"}}
        ]}));
    }
    let third = chat.create(request(messages.clone(), json!({}))?).await?;
    chat.feedback(&third, FeedbackType::Positive)?;

    // Turn 4: the model call fails; the caller gets OpenAI's error, and it is logged.
    if let Some(list) = messages.as_array_mut() {
        list.push(json!({"role": "assistant", "content": "That is the Pont Neuf; see its page."}));
        list.push(json!({"role": "user", "content": "Thanks!"}));
    }
    let failed = chat.create(request(messages.clone(), json!({}))?).await;
    assert!(
        matches!(&failed, Err(async_openai::error::OpenAIError::ApiError(e)) if e.status_code.as_u16() == 400),
        "{failed:?}"
    );

    let report = chat.flush(Duration::from_secs(10)).await;
    assert!(report.complete, "{} records not delivered", report.pending);
    assert_eq!(recorder.stats().dead_lettered, 0);

    let stored = client.get_conversation("session-1").await?;
    let Conversation::OpenAi(stored) = stored else {
        panic!("expected an openai conversation, got {stored:?}");
    };
    let stored = serde_json::to_value(&stored)?;
    let ids: Vec<&str> = stored["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str())
        .collect();
    // Every message once, tool results inside their caller, each id naming its OpenAI role.
    let id_roles: Vec<&str> = ids
        .iter()
        .filter_map(|id| id.strip_prefix("session-1:"))
        .filter_map(|rest| rest.split(':').next())
        .collect();
    assert_eq!(
        id_roles,
        [
            "system",
            "developer",
            "user",
            "assistant",
            "assistant",
            "user",
            "assistant",
            "user"
        ],
        "{ids:?}"
    );
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        ids.len()
    );
    let message = |index: usize| stored["messages"][index].clone();
    let openai_of = |index: usize| stored["messages"][index]["properties"]["openai"].clone();
    let roles: Vec<&str> = stored["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(
        roles,
        [
            "system",
            "system",
            "user",
            "assistant",
            "assistant",
            "user",
            "assistant",
            "user"
        ]
    );
    assert_eq!(openai_of(1)["role"], "developer");
    // Turn 1's reply, sent again without its metadata, keeps what was logged of it.
    assert_eq!(message(3)["tool_calls"], tool_calls);
    assert_eq!(message(3)["content"], "");
    assert_eq!(openai_of(3)["content_null"], true);
    assert_eq!(openai_of(3)["completion_id"], "chatcmpl-turn1");
    assert_eq!(openai_of(3)["usage"]["total_tokens"], 60);
    assert_eq!(openai_of(3)["request"]["temperature"], 0.3);
    assert_eq!(
        openai_of(3)["tool_results"][0]["tool_call_id"],
        "call_paris"
    );
    assert_eq!(openai_of(3)["tool_results"][1]["tool_call_id"], "call_lyon");
    assert_eq!(openai_of(3)["tool_results"][1]["content"], "21");
    // Turn 2's streamed reply, put together.
    assert_eq!(
        message(4)["content"],
        "It is 18 °C in Paris and 21 °C in Lyon."
    );
    assert_eq!(openai_of(4)["streamed"], true);
    assert_eq!(openai_of(4)["usage"]["total_tokens"], 104);
    assert!(openai_of(4)["first_chunk_ms"].is_u64());
    assert!(openai_of(4)["latency_ms"].is_u64());
    assert_eq!(
        message(5)["content"][1]["image_url"]["url"],
        "https://example.com/bridge.png"
    );
    assert_eq!(
        message(6)["links"][0]["url"],
        "https://example.com/pont-neuf"
    );
    assert_eq!(openai_of(6)["model"], "gpt-4o-mini-2024-07-18");
    // The failed call: the question is kept, the error is on the conversation.
    assert_eq!(message(7)["content"], "Thanks!");
    assert_eq!(stored["properties"]["openai"]["error"]["status"], 400);
    assert_eq!(
        stored["properties"]["openai"]["error"]["code"],
        "context_length_exceeded"
    );

    // And the failure is an event on the conversation.
    let events = client
        .query_events(
            query::events()
                .select(Selection::field(EventsViewField::ConversationId))
                .filter(Filter::eq(EventsViewField::Type, openai::FAILED_EVENT_TYPE)),
        )
        .await?;
    let failed: Vec<&str> = events
        .rows()
        .iter()
        .filter_map(|row| row.get_str("conversationId"))
        .collect();
    assert_eq!(failed, ["session-1"]);

    let feedback = client
        .get_feedback("session-1:chatcmpl-turn3:feedback")
        .await?;
    assert_eq!(Some(feedback.message_id.as_str()), ids.get(6).copied());
    assert_eq!(feedback.type_, FeedbackType::Positive);

    // OpenAI was sent what the caller asked, nothing of ours.
    let sent = script
        .received
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[3]["messages"], messages);

    recorder.shutdown(Duration::from_secs(5)).await;
    sandbox.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_stream_dropped_before_its_end_is_logged_as_incomplete() -> TestResult {
    let chunks = vec![
        chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": "Half"}, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {"content": " an answer"}, "finish_reason": null}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            Value::Null,
        ),
    ];
    let (base, _script) = stand_in(vec![Answer::Stream(chunks)]).await?;
    let (sandbox, client, recorder) = services().await?;
    let chat = openai::wrap(openai_client(&base), &recorder);

    let mut stream = chat
        .create_stream_in(
            "dropped",
            request(json!([{"role": "user", "content": "Hi"}]), json!({}))?,
        )
        .await?;
    let first = stream.next().await;
    assert!(matches!(first, Some(Ok(_))));
    drop(stream);

    let report = chat.flush(Duration::from_secs(10)).await;
    assert!(report.complete);
    let stored = serde_json::to_value(client.get_conversation("dropped").await?)?;
    let reply = &stored["messages"][1];
    assert!(
        reply["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("dropped:assistant:")),
        "{reply}"
    );
    assert_eq!(reply["content"], "Half");
    assert_eq!(
        reply["properties"]["openai"]["incomplete"],
        "the caller dropped the stream before its end"
    );
    recorder.shutdown(Duration::from_secs(5)).await;
    sandbox.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_stream_cut_off_before_its_finish_is_logged_as_incomplete() -> TestResult {
    // The stream ends (`[DONE]`) without a `finish_reason`: cut off by a proxy, say.
    let chunks = vec![chunk(
        json!([{"index": 0, "delta": {"role": "assistant", "content": "Cut"}, "finish_reason": null}]),
        Value::Null,
    )];
    let (base, _script) = stand_in(vec![Answer::Stream(chunks)]).await?;
    let (sandbox, client, recorder) = services().await?;
    let chat = openai::wrap(openai_client(&base), &recorder).conversation("cut");

    let stream = chat
        .create_stream(request(
            json!([{"role": "user", "content": "Hi"}]),
            json!({}),
        )?)
        .await?;
    let received: Vec<_> = stream.collect().await;
    assert_eq!(received.len(), 1);

    assert!(chat.flush(Duration::from_secs(10)).await.complete);
    let stored = serde_json::to_value(client.get_conversation("cut").await?)?;
    let reply = &stored["messages"][1];
    assert_eq!(reply["content"], "Cut");
    let incomplete = reply["properties"]["openai"]["incomplete"]
        .as_str()
        .unwrap_or_default();
    assert!(incomplete.contains("cut off"), "{incomplete}");
    recorder.shutdown(Duration::from_secs(5)).await;
    sandbox.shutdown().await?;
    Ok(())
}

/// An analytics API that accepts connections and never answers, on 127.0.0.1; the listener
/// and the connections it holds go when the test's runtime stops.
async fn silent_api() -> Result<String, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Ok(url)
}

#[tokio::test]
async fn the_model_call_waits_on_nothing_of_ours_with_the_api_silent() -> TestResult {
    let answer = completion(
        "chatcmpl-down",
        json!({"role": "assistant", "content": "Still here."}),
        "stop",
        5,
    );
    let (base, _script) = stand_in(vec![Answer::Json(answer.clone())]).await?;
    let client = Client::builder()
        .api_key("test-key")
        .base_url(silent_api().await?)
        .timeout(Duration::from_secs(600))
        .build()?;
    let recorder = Recorder::builder(client).build()?;
    // A named conversation the wrapper does not remember: it must be read back first, from an
    // API that never answers.
    let chat = openai::wrap(openai_client(&base), &recorder)
        .conversation("down")
        .read_back_timeout(Duration::from_secs(600));

    let response = chat
        .create(request(
            json!([{"role": "user", "content": "Hi"}]),
            json!({}),
        )?)
        .await?;
    let expected: CreateChatCompletionResponse = serde_json::from_value(answer)?;
    assert_eq!(response, expected);
    // The answer came back while the read-back still waits: nothing is recorded yet.
    assert_eq!(recorder.stats().recorded, 0);
    recorder.shutdown(Duration::from_millis(100)).await;
    Ok(())
}

#[tokio::test]
async fn turns_that_cannot_be_merged_are_logged_on_their_own_not_over_the_history() -> TestResult {
    let answer = completion(
        "chatcmpl-unread",
        json!({"role": "assistant", "content": "Still here."}),
        "stop",
        5,
    );
    let (base, _script) = stand_in(vec![Answer::Json(answer)]).await?;
    let client = Client::builder()
        .api_key("test-key")
        .base_url(silent_api().await?)
        .timeout(Duration::from_secs(600))
        .build()?;
    let recorder = Recorder::builder(client).build()?;
    let chat = openai::wrap(openai_client(&base), &recorder)
        .conversation("unread")
        .read_back_timeout(Duration::from_millis(50));
    let response = chat
        .create(request(
            json!([{"role": "user", "content": "Hi"}]),
            json!({}),
        )?)
        .await?;
    // The read-back gives up: the turn is recorded, into a conversation of its own.
    chat.flush(Duration::from_millis(200)).await;
    let mut waited = 0;
    while recorder.stats().recorded == 0 && waited < 6_000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(recorder.stats().recorded, 1);
    // Its feedback goes with it.
    let feedback = chat.feedback(&response, FeedbackType::Negative)?;
    assert!(feedback.id.starts_with("unread:unmerged:"), "{feedback:?}");
    recorder.shutdown(Duration::from_millis(100)).await;
    Ok(())
}

/// The SDK's windowed and trimmed chats, each a list of exchanges, and the stored conversation
/// after each turn that the CLI's `log-openai` test checks too.
fn turns_golden(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/inkeep-analytics/tests/golden/openai/turns")
        .join(name)
}

#[path = "../../crates/inkeep-analytics/tests/golden/openai/render.rs"]
mod golden_render;
use golden_render::render;

#[tokio::test]
async fn the_wrapper_stores_what_log_openai_stores_for_trimmed_chats() -> TestResult {
    let (sandbox, client, recorder) = services().await?;
    for case in [
        "sliding_window",
        "dropped_tool_results",
        "summary",
        "edited_message",
        "regenerated",
        "repeated_after_window",
    ] {
        let transcript: Value = serde_json::from_str(&std::fs::read_to_string(turns_golden(
            &format!("{case}.turns.json"),
        ))?)?;
        let turns = transcript["turns"].as_array().cloned().unwrap_or_default();
        let answers = turns
            .iter()
            .map(|turn| Answer::Json(turn["response"].clone()))
            .collect();
        let (base, _script) = stand_in(answers).await?;
        let mut text = format!("# {}\n", transcript["about"].as_str().unwrap_or_default());
        let mut first = None;
        for (index, turn) in turns.iter().enumerate() {
            // Halfway, the service restarts: a new wrapper, with nothing in memory, reads the
            // conversation back.
            let chat = openai::wrap(openai_client(&base), &recorder).conversation(case);
            let chat = if index * 2 < turns.len() {
                first.get_or_insert(chat).clone()
            } else {
                chat
            };
            let request: CreateChatCompletionRequest =
                serde_json::from_value(turn["request"].clone())?;
            let response = chat.create(request).await?;
            if index == 0 {
                chat.feedback(&response, FeedbackType::Positive)?;
            }
            assert!(chat.flush(Duration::from_secs(10)).await.complete);
            let stored = serde_json::to_value(client.get_conversation(case).await?)?;
            text.push_str(&format!("\nafter turn {}:\n", index + 1));
            text.push_str(&render(&stored));
        }
        let expected = std::fs::read_to_string(turns_golden(&format!("{case}.stored.txt")))?;
        assert!(
            expected.replace("\r\n", "\n") == text,
            "{case}: the wrapper stored other conversations than the CLI's golden:\n{text}"
        );
        // Feedback given on the first answer is still on it, however the window moved.
        let feedback = client
            .get_feedback(&format!("{case}:chatcmpl-{case}-1:feedback"))
            .await?;
        let stored = serde_json::to_value(client.get_conversation(case).await?)?;
        let target = stored["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["id"].as_str() == Some(feedback.message_id.as_str()));
        let first_answer = &turns[0]["response"]["choices"][0]["message"];
        assert_eq!(
            target.map(|m| (m["content"].clone(), m["tool_calls"].clone())),
            Some((
                first_answer["content"]
                    .as_str()
                    .map_or(json!(""), |text| json!(text)),
                first_answer["tool_calls"].clone()
            )),
            "{case}"
        );
    }
    recorder.shutdown(Duration::from_secs(5)).await;
    sandbox.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn turns_without_an_id_are_one_conversation_per_user_and_opening() -> TestResult {
    let (sandbox, client, recorder) = services().await?;
    let mut conversations = Vec::new();
    for user in ["ana", "bo"] {
        let answers = ["Hello!", "Use conversations export.", "Yes, as csv."];
        let (base, _script) = stand_in(
            answers
                .iter()
                .enumerate()
                .map(|(index, text)| {
                    Answer::Json(completion(
                        &format!("chatcmpl-{user}-{index}"),
                        json!({"role": "assistant", "content": text}),
                        "stop",
                        5,
                    ))
                })
                .collect(),
        )
        .await?;
        let chat = openai::wrap(openai_client(&base), &recorder);
        let mut messages = vec![
            json!({"role": "system", "content": "You are a helpful assistant."}),
            json!({"role": "user", "content": "Hi"}),
        ];
        for (index, answer) in answers.iter().enumerate() {
            chat.create(request(json!(messages), json!({"user": user}))?)
                .await?;
            messages.push(json!({"role": "assistant", "content": answer}));
            messages.push(json!({"role": "user", "content": format!("question {}", index + 2)}));
        }
        assert!(chat.flush(Duration::from_secs(10)).await.complete);
        let id = openai::conversation_id_from_request(&json!({"user": user, "messages": messages}))
            .unwrap_or_default();
        let stored = serde_json::to_value(client.get_conversation(&id).await?)?;
        assert_eq!(
            stored["messages"].as_array().map(Vec::len),
            Some(7),
            "{stored}"
        );
        conversations.push(id);
    }
    assert_ne!(conversations[0], conversations[1]);
    // One conversation per chat, besides the sandbox's own.
    let listed = client.list_conversations().limit(100).send().await?;
    assert_eq!(listed.total.as_u64(), Some(3));
    recorder.shutdown(Duration::from_secs(5)).await;
    sandbox.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_wrapper_with_a_tiny_memory_reads_back_what_it_forgot() -> TestResult {
    let transcript: Value = serde_json::from_str(&std::fs::read_to_string(turns_golden(
        "sliding_window.turns.json",
    ))?)?;
    let turns = transcript["turns"].as_array().cloned().unwrap_or_default();
    // Two chats taking turns, answered in that order.
    let answers = turns
        .iter()
        .flat_map(|turn| {
            [
                Answer::Json(turn["response"].clone()),
                Answer::Json(turn["response"].clone()),
            ]
        })
        .collect();
    let (base, _script) = stand_in(answers).await?;
    let (sandbox, client, recorder) = services().await?;
    // Room for one conversation: each turn of one chat forgets the other.
    let chat = openai::wrap(openai_client(&base), &recorder).memory_limits(1, 1 << 20);
    for turn in &turns {
        for id in ["tiny-a", "tiny-b"] {
            let request: CreateChatCompletionRequest =
                serde_json::from_value(turn["request"].clone())?;
            chat.create_in(id, request).await?;
        }
    }
    assert!(chat.flush(Duration::from_secs(10)).await.complete);
    for id in ["tiny-a", "tiny-b"] {
        let stored = serde_json::to_value(client.get_conversation(id).await?)?;
        let contents: Vec<&str> = stored["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["content"].as_str())
            .collect();
        assert_eq!(
            contents,
            [
                "You are a helpful assistant for Inkeep Analytics.",
                "Q1: how do I export conversations?",
                "A1: conversations export.",
                "Q2: and feedback?",
                "A2: feedback export.",
                "Q3: as csv?",
                "A3: use --format csv.",
                "Q4: with a date filter?",
                "A4: add --where.",
            ],
            "{id}"
        );
    }
    recorder.shutdown(Duration::from_secs(5)).await;
    sandbox.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_new_chat_handle_carries_a_fresh_id_of_its_own() -> TestResult {
    let answers = (0..2)
        .map(|index| {
            Answer::Json(completion(
                &format!("chatcmpl-new-{index}"),
                json!({"role": "assistant", "content": "Hello!"}),
                "stop",
                5,
            ))
        })
        .collect();
    let (base, _script) = stand_in(answers).await?;
    let (sandbox, client, recorder) = services().await?;
    let wrapper = openai::wrap(openai_client(&base), &recorder);
    let (first, second) = (wrapper.new_chat(), wrapper.new_chat());
    let ids: Vec<String> = [&first, &second]
        .iter()
        .filter_map(|chat| chat.conversation_id().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    for chat in [&first, &second] {
        chat.create(request(
            json!([{"role": "user", "content": "Hi"}]),
            json!({}),
        )?)
        .await?;
    }
    assert!(wrapper.flush(Duration::from_secs(10)).await.complete);
    for id in &ids {
        let stored = serde_json::to_value(client.get_conversation(id).await?)?;
        assert_eq!(
            stored["messages"].as_array().map(Vec::len),
            Some(2),
            "{stored}"
        );
    }
    recorder.shutdown(Duration::from_secs(5)).await;
    sandbox.shutdown().await?;
    Ok(())
}
