//! Generated types built through their builders from a crate that depends on the SDK, as a user builds them.
//!
//! The SDK's own generated test (`types::builders_build`) builds every struct from its required
//! fields; this one checks the same works from outside the crate, with nested builders, optional
//! fields and the `extra` map.

use inkeep_analytics::types;
use serde_json::json;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn a_tool_call_builds_without_extra() -> TestResult {
    let call: types::ToolCall = types::ToolCall::builder()
        .id("call_1")
        .type_("function")
        .function(
            types::ToolCallFunction::builder()
                .name("lookup_order")
                .arguments(r#"{"order":42}"#),
        )
        .try_into()?;
    assert!(call.extra.is_empty());
    assert_eq!(
        serde_json::to_value(&call)?,
        json!({
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": "{\"order\":42}"},
        })
    );
    Ok(())
}

#[test]
fn optional_fields_default_to_none_and_can_be_set() -> TestResult {
    let call: types::ToolCall = types::ToolCall::builder()
        .id("call_1")
        .type_("function")
        .function(types::ToolCallFunction::builder().name("f").arguments("{}"))
        .try_into()?;
    let plain: types::OpenAiFormatMessage = types::OpenAiFormatMessage::builder()
        .role("user")
        .content(types::OpenAiMessageContent::String(
            "Where is my order?".into(),
        ))
        .try_into()?;
    assert_eq!(plain.name, None);
    assert_eq!(plain.tool_calls, None);
    assert_eq!(
        serde_json::to_value(&plain)?,
        json!({"role": "user", "content": "Where is my order?"})
    );

    let with_tools: types::OpenAiFormatMessage = types::OpenAiFormatMessage::builder()
        .role("assistant")
        .content(types::OpenAiMessageContent::String(String::new()))
        .tool_calls(vec![call])
        .try_into()?;
    assert_eq!(
        serde_json::to_value(&with_tools)?,
        json!({
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        })
    );
    Ok(())
}

#[test]
fn a_request_body_builds_and_keeps_extra_keys_given() -> TestResult {
    let mut extra = serde_json::Map::new();
    extra.insert("channel".into(), json!("web"));
    let reason: types::FeedbackReason = types::FeedbackReason::builder()
        .label("inaccurate")
        .details("the link is dead")
        .try_into()?;
    let feedback: types::FeedbackInput = types::FeedbackInput::builder()
        .type_("negative")
        .message_id("msg_1")
        .reasons(vec![reason])
        .extra(extra)
        .try_into()?;
    assert_eq!(
        serde_json::to_value(&feedback)?,
        json!({
            "type": "negative",
            "messageId": "msg_1",
            "reasons": [{"label": "inaccurate", "details": "the link is dead"}],
            "channel": "web",
        })
    );
    Ok(())
}

#[test]
fn a_missing_required_field_is_still_an_error_that_names_it() {
    let result: Result<types::ToolCall, _> = types::ToolCall::builder().id("call_1").try_into();
    let message = result.err().map(|error| error.to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|message| message.contains("function")),
        "{message:?}"
    );
}
