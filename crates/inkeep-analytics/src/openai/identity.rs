//! Which conversation a request belongs to when the caller names none, from the request's own
//! markers, so that the turns of one chat are logged as one conversation.
//!
//! In order:
//! 1. a `metadata` key naming the conversation or session ([`CONVERSATION_METADATA_KEYS`]): its
//!    value is the conversation's id;
//! 2. the end user (`user`, or `safety_identifier`) together with the chat's opening (its system
//!    and developer messages before the first user message, and that first user message): the id
//!    is `openai-{hash}`, the first 16 hex digits of a SHA-256 of both.
//!
//! Never the opening alone: two people who both open with "Hi" have two conversations.
//! A request without either marker names no conversation, and each call is one of its own.
//! The opening must be in the request: a chat that sends a window without its first user message
//! has to name its conversation (an id, or a `metadata` key).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::merge::canonical;

/// The `metadata` keys that name a conversation, in the order they are looked up.
pub const CONVERSATION_METADATA_KEYS: &[&str] = &[
    "conversation_id",
    "conversationId",
    "session_id",
    "sessionId",
    "thread_id",
    "threadId",
    "chat_id",
    "chatId",
];

/// The conversation a chat-completions request belongs to, from its markers, or `None` when it
/// carries none (then each call is a conversation of its own).
///
/// In order: a `metadata` key naming the conversation or session
/// ([`CONVERSATION_METADATA_KEYS`]), whose value is the id; else the end user (`user`, or
/// `safety_identifier`) together with the chat's opening (its system and developer messages
/// before the first user message, and that message), as `openai-{hash}`.
/// Never the opening alone: two people who both open with "Hi" have two conversations.
/// The opening must be in the request: a chat that sends a window without its first user
/// message has to name its conversation.
///
/// ```
/// use inkeep_analytics::openai::conversation_id_from_request;
/// use serde_json::json;
///
/// let turn = |user: &str| json!({"model": "m", "user": user, "messages": [
///     {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]});
/// assert_eq!(conversation_id_from_request(&turn("ana")), conversation_id_from_request(&turn("ana")));
/// assert_ne!(conversation_id_from_request(&turn("ana")), conversation_id_from_request(&turn("bo")));
/// let anonymous = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]});
/// assert_eq!(conversation_id_from_request(&anonymous), None);
/// let named = json!({"model": "m", "metadata": {"session_id": "s-1"}, "messages": []});
/// assert_eq!(conversation_id_from_request(&named).as_deref(), Some("s-1"));
/// ```
pub fn conversation_id_from_request(request: &Value) -> Option<String> {
    if let Some(metadata) = request.get("metadata").and_then(Value::as_object) {
        for key in CONVERSATION_METADATA_KEYS {
            if let Some(id) = metadata
                .get(*key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|id| !id.is_empty())
            {
                return Some(id.to_string());
            }
        }
    }
    let user = ["user", "safety_identifier"].iter().find_map(|key| {
        request
            .get(*key)
            .and_then(Value::as_str)
            .filter(|user| !user.trim().is_empty())
    })?;
    let messages = request.get("messages").and_then(Value::as_array)?;
    let first_user = messages
        .iter()
        .position(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    let opening: Vec<Value> = messages[..=first_user]
        .iter()
        .filter(|m| {
            matches!(
                m.get("role").and_then(Value::as_str),
                Some("system" | "developer" | "user")
            )
        })
        .map(|m| json!([m.get("role"), m.get("content"), m.get("name")]))
        .collect();
    let mut marker = String::new();
    canonical(&json!({"user": user, "opening": opening}), &mut marker);
    let digest = Sha256::digest(marker.as_bytes());
    let hex: String = digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Some(format!("openai-{hex}"))
}
