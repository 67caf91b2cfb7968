//! How one turn of a chat joins what its conversation already holds, as pure functions shared by
//! the wrapper, the JSON path and the CLI's `log-openai`: the id a message keeps for life, and
//! the merge of a request's messages (often a window of the chat) into the stored ones.
//!
//! # Message ids
//!
//! A message's id is `{conversation}:{role}:{hash}`, where *role* is its OpenAI role (`system`,
//! `developer`, `user`, `assistant`, or `tool` for a result that answers no stored call) and
//! *hash* the first 12 hex digits of the SHA-256 of what the message is: its content (and the
//! parts the API cannot hold; a lone text part counts as its text), name, refusal, legacy
//! function call, the ids of its tool calls, and the `tool_call_id` it answers.
//! What a later turn adds to a message (its tool results, a reply's model and usage, citations)
//! is not part of it.
//! The *n*-th message of a conversation with the same role and hash (a second "Thanks!") is
//! `{conversation}:{role}:{hash}:{n}`, *n* counted from 2, after the copies already stored.
//! Nothing of the id depends on where the message sits in a request, so a message keeps its id
//! however the window around it moves, and feedback on it stays on it.
//!
//! # The merge
//!
//! The request's messages are matched, in order, against the stored ones: each request message
//! takes the first stored message after the previous match that is the same message (same role
//! and hash).
//! A matched message keeps what is stored (its id, and what was logged with it, such as a reply's
//! model and usage) and gains what the request adds to it: tool results not stored yet, and
//! `properties.openai` keys it did not have.
//! A request message that matches nothing is new: it gets the next id for what it is, and goes
//! just before the stored message the next matched request message holds, or at the end.
//! Stored messages the request no longer carries stay where they are.
//! A `tool` result whose call the request no longer carries joins the stored message that made
//! the call.
//!
//! What that does in the cases chat applications produce:
//!
//! | The request | What the conversation holds after it |
//! | --- | --- |
//! | a sliding window: the system message, the last exchanges, the new question | everything stored, then the new question and the reply |
//! | old tool calls and their results dropped | the stored calls keep their results; the new messages are added at the end |
//! | early turns replaced by a summary | everything stored; the summary just before the first stored message the request still carries after it, then the new messages |
//! | a changed system prompt | both prompts: the new one before the first stored message the request still carries after it |
//! | an earlier message edited | both versions: the edited one before the next message the request still carries, or at the end when nothing stored follows it (a branch) |
//! | the same request sent again (a retry), or `n` > 1 | the stored answer stays; a different new answer is added after it (`n` > 1: the first choice; the others are in its `properties.openai.other_choices`), and an identical one is the same message |
//! | the full history | what was stored, plus the new messages: nothing moves |
//!
//! Messages logged before ids were derived this way (`{conversation}:{position}:{role}`) are
//! recognised by what they hold, keep their ids and are not duplicated.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::convert::PROPERTIES_KEY;

/// How many hex digits of the SHA-256 a message id keeps: 48 bits, so that two different messages
/// of one role in one conversation share a hash with a chance of about one in 10^11 even at a
/// thousand messages (and then they are still told apart by their occurrence number).
const HASH_HEX_DIGITS: usize = 12;

/// What a message is, for matching and ids: its OpenAI role and the hash of its content.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Identity {
    pub role: String,
    pub hash: String,
}

impl Identity {
    /// The id of the `occurrence`-th message (counted from 1) with this identity.
    pub(crate) fn id(&self, conversation_id: &str, occurrence: usize) -> String {
        if occurrence <= 1 {
            format!("{conversation_id}:{}:{}", self.role, self.hash)
        } else {
            format!("{conversation_id}:{}:{}:{occurrence}", self.role, self.hash)
        }
    }
}

fn openai_of(message: &Value) -> Option<&Map<String, Value>> {
    message
        .get("properties")
        .and_then(|p| p.get(PROPERTIES_KEY))
        .and_then(Value::as_object)
}

fn openai_of_mut(message: &mut Value) -> Option<&mut Map<String, Value>> {
    let object = message.as_object_mut()?;
    let properties = object
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if !properties.is_object() {
        *properties = Value::Object(Map::new());
    }
    properties
        .as_object_mut()?
        .entry(PROPERTIES_KEY)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
}

/// The OpenAI role of a message in the API's shape: `properties.openai.role` when the API's role
/// stands in for another (`developer`, `tool`), else its role.
fn openai_role(message: &Value) -> String {
    openai_of(message)
        .and_then(|openai| openai.get("role"))
        .or_else(|| message.get("role"))
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string()
}

/// The ids of a message's tool calls, held or kept in `properties.openai.custom_tool_calls`.
fn tool_call_ids(message: &Value) -> Vec<Value> {
    let held = message.get("tool_calls").and_then(Value::as_array);
    let custom = openai_of(message)
        .and_then(|openai| openai.get("custom_tool_calls"))
        .and_then(Value::as_array);
    held.into_iter()
        .flatten()
        .map(|call| call.get("id").cloned().unwrap_or(Value::Null))
        .chain(custom.into_iter().flatten().map(|entry| {
            entry
                .get("call")
                .and_then(|call| call.get("id"))
                .cloned()
                .unwrap_or(Value::Null)
        }))
        .collect()
}

/// JSON with its object keys sorted, so that a hash does not depend on the order a client wrote
/// them in.
pub(crate) fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&object[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// What a message in the API's shape (as the conversion makes it, or as the API returns it) is.
pub(crate) fn identity(message: &Value) -> Identity {
    let openai = openai_of(message);
    let kept = |key: &str| {
        openai
            .and_then(|openai| openai.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let role = openai_role(message);
    // One text part says what the same text as a string says; clients send either.
    let content = match message.get("content") {
        Some(Value::Array(parts))
            if parts.len() == 1
                && parts[0].get("type").and_then(Value::as_str) == Some("text")
                && parts[0].get("text").is_some_and(Value::is_string) =>
        {
            parts[0]["text"].clone()
        }
        other => other.cloned().unwrap_or(Value::Null),
    };
    let what = json!({
        "role": role,
        "content": content,
        "parts": kept("parts"),
        "name": message.get("name").cloned().unwrap_or(Value::Null),
        "refusal": kept("refusal"),
        "function_call": kept("function_call"),
        "tool_call_ids": tool_call_ids(message),
        "tool_call_id": kept("tool_call_id"),
    });
    let mut text = String::new();
    canonical(&what, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    let mut hash = String::with_capacity(HASH_HEX_DIGITS);
    for byte in digest.iter().take(HASH_HEX_DIGITS / 2) {
        hash.push_str(&format!("{byte:02x}"));
    }
    Identity { role, hash }
}

/// The identity and occurrence an id of this scheme names, or `None` for any other id (one
/// logged by position before, or by another tool).
pub(crate) fn parse_id(conversation_id: &str, id: &str) -> Option<(Identity, usize)> {
    let rest = id.strip_prefix(conversation_id)?.strip_prefix(':')?;
    let mut parts = rest.split(':');
    let role = parts.next().filter(|role| !role.is_empty())?;
    let hash = parts.next()?;
    let occurrence = match parts.next() {
        None => 1,
        Some(n) => n.parse::<usize>().ok().filter(|n| *n >= 2)?,
    };
    let is_hash = hash.len() == HASH_HEX_DIGITS
        && hash
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if parts.next().is_some() || !is_hash || role.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    Some((
        Identity {
            role: role.to_string(),
            hash: hash.to_string(),
        },
        occurrence,
    ))
}

/// What a stored message is: read from its id when the id is of this scheme (so that a server
/// that rewrites content, say by filling in a default, does not change it), else from its content.
fn stored_identity(conversation_id: &str, message: &Value) -> (Identity, usize) {
    message
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| parse_id(conversation_id, id))
        .unwrap_or_else(|| (identity(message), 1))
}

/// The result of merging one turn.
#[derive(Debug)]
pub(crate) struct Merged {
    /// The conversation's messages, in order, each with its id.
    pub messages: Vec<Value>,
    /// The id of the turn's reply, when it had one.
    pub reply_id: Option<String>,
}

/// Whether `message` made the tool call `id` (a held or a custom one).
fn made_call(message: &Value, id: &str) -> bool {
    tool_call_ids(message)
        .iter()
        .any(|call| call.as_str() == Some(id))
}

/// The tool results of a message, from `properties.openai.tool_results`.
fn tool_results(message: &Value) -> Vec<Value> {
    openai_of(message)
        .and_then(|openai| openai.get("tool_results"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn result_call_id(result: &Value) -> Option<&str> {
    result.get("tool_call_id").and_then(Value::as_str)
}

/// Adds to `stored` the tool results of `incoming` it does not hold yet (by `tool_call_id`), and
/// the `properties.openai` keys it lacks; what is stored wins.
fn enrich(stored: &mut Value, incoming: &Value) {
    let have: Vec<Value> = tool_results(stored);
    let mut added: Vec<Value> = tool_results(incoming)
        .into_iter()
        .filter(|result| {
            !have.iter().any(|kept| {
                kept == result
                    || result_call_id(kept).is_some_and(|id| Some(id) == result_call_id(result))
            })
        })
        .collect();
    let Some(incoming_openai) = openai_of(incoming).cloned() else {
        return;
    };
    let Some(openai) = openai_of_mut(stored) else {
        return;
    };
    if !added.is_empty() {
        let mut results = have;
        results.append(&mut added);
        openai.insert("tool_results".into(), Value::Array(results));
    }
    for (key, value) in incoming_openai {
        if key != "tool_results" && !openai.contains_key(&key) {
            openai.insert(key, value);
        }
    }
    if stored.get("links").is_none_or(Value::is_null)
        && let Some(links) = incoming.get("links")
        && let Some(object) = stored.as_object_mut()
    {
        object.insert("links".into(), links.clone());
    }
}

/// A `tool` (or legacy `function`) result the conversion could not join to a call in the request,
/// as the OpenAI message it was.
fn orphan_result(message: &Value) -> Option<(String, Value)> {
    let openai = openai_of(message)?;
    let role = openai.get("role").and_then(Value::as_str)?;
    if !matches!(role, "tool" | "function") {
        return None;
    }
    let call_id = openai.get("tool_call_id").and_then(Value::as_str)?;
    // Only a plain text result is put back exactly; anything else stays a message of its own.
    let content = message.get("content").and_then(Value::as_str)?;
    if openai.contains_key("parts") || openai.contains_key("extra") {
        return None;
    }
    let mut result = json!({"role": role, "tool_call_id": call_id, "content": content});
    if let Some(name) = message.get("name") {
        result["name"] = name.clone();
    }
    if let Some(position) = openai.get("position") {
        result["position"] = position.clone();
    }
    Some((call_id.to_string(), result))
}

/// Merges one turn into a conversation: `stored` is what the conversation holds (messages in the
/// API's shape, with their ids), `incoming` the turn's messages as the conversion made them
/// (without ids), its reply last when `has_reply`. See the [module](self) for the rule.
pub(crate) fn merge(
    conversation_id: &str,
    stored: Vec<Value>,
    incoming: Vec<Value>,
    has_reply: bool,
) -> Merged {
    let mut stored = stored;
    let reply_at = has_reply.then(|| incoming.len().saturating_sub(1));
    let mut used: HashSet<String> = stored
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let mut identities = Vec::with_capacity(stored.len());
    let mut occurrences: HashMap<Identity, usize> = HashMap::new();
    for message in &stored {
        let (identity, occurrence) = stored_identity(conversation_id, message);
        let seen = occurrences.entry(identity.clone()).or_default();
        *seen = (*seen).max(occurrence);
        identities.push(identity);
    }
    let mut matched = vec![false; stored.len()];
    // New messages waiting for the next matched one, and where each batch goes.
    let mut before: HashMap<usize, Vec<Value>> = HashMap::new();
    let mut waiting: Vec<Value> = Vec::new();
    let mut cursor = 0;
    let mut reply_id = None;
    for (index, mut message) in incoming.into_iter().enumerate() {
        let is_reply = reply_at == Some(index);
        if let Some((call_id, result)) = orphan_result(&message)
            && let Some(caller) = stored.iter_mut().rev().find(|m| made_call(m, &call_id))
        {
            let have = tool_results(caller);
            if !have
                .iter()
                .any(|r| result_call_id(r) == Some(call_id.as_str()))
                && let Some(openai) = openai_of_mut(caller)
            {
                let mut results = have;
                results.push(result);
                openai.insert("tool_results".into(), Value::Array(results));
            }
            continue;
        }
        let identity = identity(&message);
        let found = (cursor..stored.len()).find(|&j| !matched[j] && identities[j] == identity);
        if let Some(j) = found {
            matched[j] = true;
            enrich(&mut stored[j], &message);
            if is_reply {
                reply_id = stored[j]
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            if !waiting.is_empty() {
                before.entry(j).or_default().append(&mut waiting);
            }
            cursor = j + 1;
            continue;
        }
        let seen = occurrences.entry(identity.clone()).or_default();
        let mut occurrence = *seen + 1;
        let mut id = identity.id(conversation_id, occurrence);
        while used.contains(&id) {
            occurrence += 1;
            id = identity.id(conversation_id, occurrence);
        }
        *seen = occurrence;
        used.insert(id.clone());
        if let Some(object) = message.as_object_mut() {
            // The id goes first, as the API shows it.
            let mut with_id = Map::new();
            with_id.insert("id".into(), Value::String(id.clone()));
            with_id.extend(std::mem::take(object));
            *object = with_id;
        }
        if is_reply {
            reply_id = Some(id);
        }
        waiting.push(message);
    }
    let mut messages = Vec::with_capacity(stored.len() + waiting.len());
    for (index, message) in stored.into_iter().enumerate() {
        if let Some(mut new) = before.remove(&index) {
            messages.append(&mut new);
        }
        messages.push(message);
    }
    messages.append(&mut waiting);
    Merged { messages, reply_id }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: &str, content: &str) -> Value {
        json!({"role": role, "content": content, "properties": {"openai": {}}})
    }

    fn contents(merged: &Merged) -> Vec<String> {
        merged
            .messages
            .iter()
            .map(|m| m["content"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    fn ids(merged: &Merged) -> Vec<String> {
        merged
            .messages
            .iter()
            .map(|m| m["id"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    /// Logs turns one after the other, each onto what the previous one stored.
    fn turns(requests: &[Vec<Value>]) -> Vec<Merged> {
        let mut stored = Vec::new();
        let mut out = Vec::new();
        for request in requests {
            let merged = merge("c", stored, request.clone(), true);
            stored = merged.messages.clone();
            out.push(merged);
        }
        out
    }

    #[test]
    fn an_id_names_the_role_and_a_short_hash_and_counts_identical_messages() {
        let merged = merge(
            "chat-42",
            Vec::new(),
            vec![
                message("user", "ok"),
                message("assistant", "A"),
                message("user", "ok"),
            ],
            false,
        );
        let ids = ids(&merged);
        let hash = identity(&message("user", "ok")).hash;
        assert_eq!(hash.len(), 12);
        assert_eq!(ids[0], format!("chat-42:user:{hash}"));
        assert_eq!(ids[2], format!("chat-42:user:{hash}:2"));
        assert!(ids[1].starts_with("chat-42:assistant:"));
        assert_eq!(parse_id("chat-42", &ids[2]).map(|(_, n)| n), Some(2));
        assert_eq!(parse_id("chat-42", "chat-42:3:user"), None);
        assert_eq!(parse_id("other", &ids[0]), None);
    }

    #[test]
    fn the_hash_covers_content_name_and_tool_call_ids_but_not_key_order() {
        let base = identity(&message("user", "Hi"));
        assert_ne!(base, identity(&message("user", "Hi!")));
        assert_ne!(base, identity(&message("assistant", "Hi")));
        let mut named = message("user", "Hi");
        named["name"] = json!("ana");
        assert_ne!(base, identity(&named));
        let call = |id: &str| json!({"role": "assistant", "content": "", "tool_calls": [{"id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
        assert_ne!(identity(&call("a")), identity(&call("b")));
        let parts = json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u", "detail": "low"}}]});
        let reordered = json!({"content": [{"image_url": {"detail": "low", "url": "u"}, "type": "image_url"}], "role": "user"});
        assert_eq!(identity(&parts), identity(&reordered));
        let one_text_part = json!({"role": "user", "content": [{"type": "text", "text": "Hi"}]});
        assert_eq!(base, identity(&one_text_part));
        // What a turn adds to a message (its tool results, a reply's metadata) is not what it is.
        let mut with_results = call("a");
        with_results["properties"] =
            json!({"openai": {"tool_results": [{"tool_call_id": "a"}], "model": "m"}});
        assert_eq!(identity(&call("a")), identity(&with_results));
        let mut developer = message("system", "Be brief.");
        developer["properties"]["openai"]["role"] = json!("developer");
        assert_eq!(identity(&developer).role, "developer");
    }

    #[test]
    fn a_sliding_window_keeps_everything_and_every_id() {
        let system = message("system", "S");
        let logged = turns(&[
            vec![
                system.clone(),
                message("user", "Q1"),
                message("assistant", "A1"),
            ],
            vec![
                system.clone(),
                message("user", "Q1"),
                message("assistant", "A1"),
                message("user", "Q2"),
                message("assistant", "A2"),
            ],
            vec![
                system.clone(),
                message("user", "Q2"),
                message("assistant", "A2"),
                message("user", "Q3"),
                message("assistant", "A3"),
            ],
        ]);
        assert_eq!(
            contents(&logged[2]),
            ["S", "Q1", "A1", "Q2", "A2", "Q3", "A3"]
        );
        assert_eq!(ids(&logged[2])[..5], ids(&logged[1])[..]);
        assert_eq!(ids(&logged[1])[..3], ids(&logged[0])[..]);
        assert_eq!(
            logged[0].reply_id.as_deref(),
            Some(ids(&logged[0])[2].as_str())
        );
        assert_eq!(
            logged[2].reply_id.as_deref(),
            Some(ids(&logged[2])[6].as_str())
        );
    }

    #[test]
    fn a_repeated_message_after_the_window_dropped_its_copy_gets_the_next_number() {
        let logged = turns(&[
            vec![message("user", "ok"), message("assistant", "A1")],
            vec![
                message("user", "ok"),
                message("assistant", "A1"),
                message("user", "ok"),
                message("assistant", "A2"),
            ],
            // The window dropped both earlier copies of "ok"; this one is the third.
            vec![
                message("assistant", "A2"),
                message("user", "ok"),
                message("assistant", "A3"),
            ],
        ]);
        let all = ids(&logged[2]);
        assert_eq!(contents(&logged[2]), ["ok", "A1", "ok", "A2", "ok", "A3"]);
        assert!(all[4].ends_with(":3"), "{all:?}");
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
    }

    #[test]
    fn a_summary_or_a_new_system_prompt_is_added_before_what_follows_it() {
        let logged = turns(&[
            vec![
                message("system", "S"),
                message("user", "Q1"),
                message("assistant", "A1"),
            ],
            vec![
                message("system", "S"),
                message("user", "Q1"),
                message("assistant", "A1"),
                message("user", "Q2"),
                message("assistant", "A2"),
            ],
            vec![
                message("system", "S2"),
                message("system", "Summary: Q1, A1"),
                message("user", "Q2"),
                message("assistant", "A2"),
                message("user", "Q3"),
                message("assistant", "A3"),
            ],
        ]);
        assert_eq!(
            contents(&logged[2]),
            [
                "S",
                "Q1",
                "A1",
                "S2",
                "Summary: Q1, A1",
                "Q2",
                "A2",
                "Q3",
                "A3"
            ]
        );
    }

    #[test]
    fn an_edited_message_is_added_and_the_original_stays() {
        let logged = turns(&[
            vec![message("user", "Q1"), message("assistant", "A1")],
            vec![message("user", "Q1 (edited)"), message("assistant", "A1b")],
        ]);
        assert_eq!(contents(&logged[1]), ["Q1", "A1", "Q1 (edited)", "A1b"]);
    }

    #[test]
    fn a_retry_adds_a_different_answer_and_an_identical_one_is_the_same_message() {
        let logged = turns(&[
            vec![message("user", "Q1"), message("assistant", "A1")],
            vec![message("user", "Q1"), message("assistant", "A1 again")],
            vec![message("user", "Q1"), message("assistant", "A1")],
        ]);
        assert_eq!(contents(&logged[2]), ["Q1", "A1", "A1 again"]);
        assert_eq!(logged[2].reply_id, logged[0].reply_id);
    }

    #[test]
    fn tool_results_join_their_stored_call_and_are_not_duplicated() {
        let call = json!({"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}], "properties": {"openai": {"content_null": true, "model": "m"}}});
        let stored = merge(
            "c",
            Vec::new(),
            vec![message("user", "Q"), call.clone()],
            true,
        )
        .messages;
        // The next request carries the result, joined to its call by the conversion.
        let mut with_result = call.clone();
        with_result["properties"]["openai"] = json!({"content_null": true, "tool_results": [{"role": "tool", "tool_call_id": "call_1", "content": "42"}]});
        let second = merge(
            "c",
            stored,
            vec![
                message("user", "Q"),
                with_result,
                message("assistant", "It is 42."),
            ],
            true,
        );
        assert_eq!(second.messages.len(), 3);
        assert_eq!(
            second.messages[1]["properties"]["openai"]["tool_results"][0]["content"],
            "42"
        );
        assert_eq!(second.messages[1]["properties"]["openai"]["model"], "m");
        // A window that starts at the result: it joins the stored call, once.
        let orphan = json!({"role": "assistant", "content": "42", "properties": {"openai": {"role": "tool", "tool_call_id": "call_1"}}});
        let third = merge(
            "c",
            second.messages.clone(),
            vec![orphan.clone(), message("assistant", "It is 42.")],
            true,
        );
        assert_eq!(third.messages.len(), 3);
        assert_eq!(
            third.messages[1]["properties"]["openai"]["tool_results"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        // A result whose call is stored without it is added to it.
        let bare = merge("c", Vec::new(), vec![call], true).messages;
        let joined = merge("c", bare, vec![orphan], false);
        assert_eq!(joined.messages.len(), 1);
        assert_eq!(
            joined.messages[0]["properties"]["openai"]["tool_results"][0]["content"],
            "42"
        );
    }

    #[test]
    fn messages_logged_by_position_are_recognised_and_keep_their_ids() {
        let mut q1 = message("user", "Q1");
        q1["id"] = json!("c:0:user");
        let mut a1 = message("assistant", "A1");
        a1["id"] = json!("c:1:assistant");
        let merged = merge(
            "c",
            vec![q1, a1],
            vec![
                message("user", "Q1"),
                message("assistant", "A1"),
                message("user", "Q2"),
            ],
            false,
        );
        let all = ids(&merged);
        assert_eq!(all[..2], ["c:0:user", "c:1:assistant"]);
        assert_eq!(all.len(), 3);
    }
}
