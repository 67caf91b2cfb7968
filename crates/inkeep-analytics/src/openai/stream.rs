//! Streamed answers put back together: `chat.completion.chunk`s (text deltas, tool-call arguments
//! in fragments by index, usage in the last chunk) become the `chat.completion` OpenAI would
//! have sent whole, so that a stream is logged by the same mapping as a plain answer.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// One choice being accumulated.
#[derive(Debug, Default)]
struct ChoiceState {
    role: Option<Value>,
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: BTreeMap<u64, ToolCallState>,
    function_call: Option<(String, String)>,
    finish_reason: Option<Value>,
    logprobs: Option<Map<String, Value>>,
    /// Keys of the delta the accumulation does not know, last value wins (annotations, audio).
    other: Map<String, Value>,
}

#[derive(Debug, Default)]
struct ToolCallState {
    id: Option<String>,
    kind: Option<String>,
    name: String,
    arguments: String,
    /// A custom tool call's `custom` object: name, and the input in fragments.
    custom: Option<(String, String)>,
}

/// Accumulates the chunks of one streamed chat completion into its `chat.completion`.
///
/// ```
/// use inkeep_analytics::openai::ChunkAccumulator;
/// use serde_json::json;
///
/// let mut stream = ChunkAccumulator::new();
/// stream.push(&json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
///     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}))?;
/// stream.push(&json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
///     "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]}))?;
/// let completion = stream.finish()?;
/// assert_eq!(completion["choices"][0]["message"]["content"], "Hello");
/// # Ok::<(), inkeep_analytics::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ChunkAccumulator {
    top: Map<String, Value>,
    usage: Option<Value>,
    choices: BTreeMap<u64, ChoiceState>,
    chunks: usize,
    expect_usage: bool,
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::invalid_input(what.to_string())
}

impl ChunkAccumulator {
    /// An accumulator with no chunk yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also requires the usage chunk that `stream_options.include_usage` asks for, so that a
    /// stream cut off after its last text but before its usage counts as cut off.
    pub fn expect_usage(mut self, expect: bool) -> Self {
        self.expect_usage = expect;
        self
    }

    /// How many chunks were pushed.
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// Adds one chunk, as OpenAI's API sends it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming what is wrong, when the chunk is not a
    /// `chat.completion.chunk` (or is the error object a stream can end with).
    pub fn push(&mut self, chunk: &Value) -> Result<()> {
        let at = self.chunks;
        let Some(object) = chunk.as_object() else {
            return Err(bad(format!("chunks[{at}]: not a JSON object")));
        };
        if let Some(error) = object.get("error") {
            return Err(bad(format!(
                "chunks[{at}]: the stream sent an error: {error}"
            )));
        }
        if let Some(kind) = object.get("object")
            && kind.as_str() != Some("chat.completion.chunk")
        {
            return Err(bad(format!(
                "chunks[{at}].object: is {kind}, expected \"chat.completion.chunk\""
            )));
        }
        let Some(choices) = object.get("choices").and_then(Value::as_array) else {
            return Err(bad(format!("chunks[{at}]: has no `choices` array")));
        };
        for (key, value) in object {
            match key.as_str() {
                "choices" | "object" | "obfuscation" => {}
                "usage" => {
                    if !value.is_null() {
                        self.usage = Some(value.clone());
                    }
                }
                _ => {
                    if !value.is_null() || !self.top.contains_key(key) {
                        self.top.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        for (choice_at, choice) in choices.iter().enumerate() {
            let path = format!("chunks[{at}].choices[{choice_at}]");
            let index = choice
                .get("index")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(format!("{path}: has no numeric `index`")))?;
            let state = self.choices.entry(index).or_default();
            if let Some(reason) = choice.get("finish_reason").filter(|v| !v.is_null()) {
                state.finish_reason = Some(reason.clone());
            }
            if let Some(logprobs) = choice.get("logprobs").and_then(Value::as_object) {
                let kept = state.logprobs.get_or_insert_with(Map::new);
                for (key, value) in logprobs {
                    match (kept.get_mut(key), value) {
                        (Some(Value::Array(so_far)), Value::Array(more)) => {
                            so_far.extend(more.iter().cloned())
                        }
                        _ => {
                            kept.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
            let Some(delta) = choice.get("delta") else {
                continue;
            };
            let Some(delta) = delta.as_object() else {
                return Err(bad(format!("{path}.delta: not a JSON object")));
            };
            for (key, value) in delta {
                if value.is_null() {
                    continue;
                }
                match key.as_str() {
                    "role" => state.role = Some(value.clone()),
                    "content" => {
                        append(&mut state.content, value, &format!("{path}.delta.content"))?
                    }
                    "refusal" => {
                        append(&mut state.refusal, value, &format!("{path}.delta.refusal"))?
                    }
                    "tool_calls" => {
                        let Some(calls) = value.as_array() else {
                            return Err(bad(format!("{path}.delta.tool_calls: not an array")));
                        };
                        for (call_at, call) in calls.iter().enumerate() {
                            tool_call(state, call, &format!("{path}.delta.tool_calls[{call_at}]"))?;
                        }
                    }
                    "function_call" => {
                        let (name, arguments) =
                            state.function_call.get_or_insert_with(Default::default);
                        if let Some(part) = value.get("name").and_then(Value::as_str) {
                            name.push_str(part);
                        }
                        if let Some(part) = value.get("arguments").and_then(Value::as_str) {
                            arguments.push_str(part);
                        }
                    }
                    _ => {
                        state.other.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        self.chunks += 1;
        Ok(())
    }

    /// The `chat.completion` the chunks make up.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] saying the stream was cut off, when a choice has no
    /// `finish_reason`, no chunk came, or the expected usage chunk did not.
    pub fn finish(self) -> Result<Value> {
        self.check()?;
        Ok(self.completion())
    }

    /// Whether the chunks so far make a whole answer, as [`Self::finish`] checks it.
    ///
    /// # Errors
    ///
    /// As [`Self::finish`].
    pub fn check(&self) -> Result<()> {
        if self.chunks == 0 || self.choices.is_empty() {
            return Err(bad(
                "the stream was cut off: it holds no chunk with a choice",
            ));
        }
        if let Some((index, _)) = self
            .choices
            .iter()
            .find(|(_, state)| state.finish_reason.is_none())
        {
            return Err(bad(format!(
                "the stream was cut off: choice {index} never got a `finish_reason` (after {} chunks)",
                self.chunks
            )));
        }
        if self.expect_usage && self.usage.is_none() {
            return Err(bad(
                "the stream was cut off: `stream_options.include_usage` was asked for, but no usage chunk came",
            ));
        }
        Ok(())
    }

    /// What the chunks so far make up, finished or not: for a stream that failed or was dropped.
    pub fn partial(self) -> Value {
        self.completion()
    }

    fn completion(self) -> Value {
        let mut completion = self.top;
        completion.insert("object".into(), Value::String("chat.completion".into()));
        let choices: Vec<Value> = self
            .choices
            .into_iter()
            .map(|(index, state)| {
                let mut message = Map::new();
                message.insert(
                    "role".into(),
                    state
                        .role
                        .unwrap_or_else(|| Value::String("assistant".into())),
                );
                message.insert(
                    "content".into(),
                    state.content.map_or(Value::Null, Value::String),
                );
                if let Some(refusal) = state.refusal {
                    message.insert("refusal".into(), Value::String(refusal));
                }
                if !state.tool_calls.is_empty() {
                    let calls: Vec<Value> = state
                        .tool_calls
                        .into_values()
                        .map(ToolCallState::into_json)
                        .collect();
                    message.insert("tool_calls".into(), Value::Array(calls));
                }
                if let Some((name, arguments)) = state.function_call {
                    message.insert(
                        "function_call".into(),
                        json!({"name": name, "arguments": arguments}),
                    );
                }
                for (key, value) in state.other {
                    message.insert(key, value);
                }
                let mut choice = Map::new();
                choice.insert("index".into(), json!(index));
                choice.insert("message".into(), Value::Object(message));
                choice.insert(
                    "finish_reason".into(),
                    state.finish_reason.unwrap_or(Value::Null),
                );
                choice.insert(
                    "logprobs".into(),
                    state.logprobs.map_or(Value::Null, Value::Object),
                );
                Value::Object(choice)
            })
            .collect();
        completion.insert("choices".into(), Value::Array(choices));
        completion.insert("usage".into(), self.usage.unwrap_or(Value::Null));
        Value::Object(completion)
    }
}

fn append(to: &mut Option<String>, value: &Value, path: &str) -> Result<()> {
    let Some(text) = value.as_str() else {
        return Err(bad(format!("{path}: not a string")));
    };
    to.get_or_insert_with(String::new).push_str(text);
    Ok(())
}

fn tool_call(state: &mut ChoiceState, call: &Value, path: &str) -> Result<()> {
    let Some(index) = call.get("index").and_then(Value::as_u64) else {
        return Err(bad(format!("{path}: has no numeric `index`")));
    };
    let entry = state.tool_calls.entry(index).or_default();
    if let Some(id) = call.get("id").and_then(Value::as_str) {
        entry.id = Some(id.to_string());
    }
    if let Some(kind) = call.get("type").and_then(Value::as_str) {
        entry.kind = Some(kind.to_string());
    }
    if let Some(function) = call.get("function") {
        if let Some(part) = function.get("name").and_then(Value::as_str) {
            entry.name.push_str(part);
        }
        if let Some(part) = function.get("arguments").and_then(Value::as_str) {
            entry.arguments.push_str(part);
        }
    }
    if let Some(custom) = call.get("custom") {
        let (name, input) = entry.custom.get_or_insert_with(Default::default);
        if let Some(part) = custom.get("name").and_then(Value::as_str) {
            name.push_str(part);
        }
        if let Some(part) = custom.get("input").and_then(Value::as_str) {
            input.push_str(part);
        }
    }
    Ok(())
}

impl ToolCallState {
    fn into_json(self) -> Value {
        let id = self.id.map_or(Value::Null, Value::String);
        match (self.kind.as_deref(), self.custom) {
            (Some("custom"), custom) | (None, custom @ Some(_)) => {
                let (name, input) = custom.unwrap_or_default();
                json!({"id": id, "type": "custom", "custom": {"name": name, "input": input}})
            }
            (kind, _) => json!({
                "id": id,
                "type": kind.unwrap_or("function"),
                "function": {"name": self.name, "arguments": self.arguments},
            }),
        }
    }
}
