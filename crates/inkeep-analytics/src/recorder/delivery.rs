//! The delivery check: reads the recorded conversations back and compares their message ids with
//! what was recorded, re-recording what is missing or stale. Only an SDK with both halves of the
//! API can confirm a write this way.

use super::{Recorder, record::Record};
use crate::error::{Error, Result};
use crate::types;

/// What [`Recorder::check_delivery`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryCheck {
    /// Conversations stored with the message ids recorded.
    pub delivered: Vec<String>,
    /// Conversations the API does not have (404): recorded again.
    pub missing: Vec<String>,
    /// Conversations stored with other message ids than recorded (an older version, or a newer
    /// one recorded elsewhere): recorded again.
    pub stale: Vec<String>,
}

impl DeliveryCheck {
    /// Whether every conversation checked was stored as recorded.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.stale.is_empty()
    }
}

impl Recorder {
    /// Reads each conversation back (`GET /conversations/{id}`) and compares its message ids with
    /// those of the version given, which should be the last one recorded; a conversation that is
    /// missing or stale is recorded again, so that the recorder sends it. Messages without ids
    /// are compared by their number.
    ///
    /// Call [`Recorder::flush`] first: a version still in the queue reads back as stale.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a conversation without an id (it cannot be read back), and
    /// the error of a read that failed otherwise than with 404.
    pub async fn check_delivery(
        &self,
        conversations: impl IntoIterator<Item = types::CreateConversation>,
    ) -> Result<DeliveryCheck> {
        let client = &self.shared().client;
        let mut check = DeliveryCheck::default();
        for conversation in conversations {
            let (id, expected, count) = recorded_ids(&conversation)?;
            let stored = match client.get_conversation(&id).await {
                Ok(stored) => Some(stored),
                Err(error) if error.status().is_some_and(|s| s.as_u16() == 404) => None,
                Err(error) => return Err(error),
            };
            let fresh = stored.as_ref().is_some_and(|stored| {
                let messages = stored.messages();
                let ids: Vec<&str> = messages.iter().filter_map(|m| m.id()).collect();
                if expected.is_empty() {
                    messages.len() == count
                } else {
                    ids == expected.iter().map(String::as_str).collect::<Vec<_>>()
                }
            });
            if fresh {
                check.delivered.push(id);
                continue;
            }
            self.record_conversation(conversation)?;
            if stored.is_some() {
                check.stale.push(id);
            } else {
                check.missing.push(id);
            }
        }
        Ok(check)
    }
}

/// A conversation's id, its message ids (of the messages that have one) and its message count.
fn recorded_ids(conversation: &types::CreateConversation) -> Result<(String, Vec<String>, usize)> {
    let prepared = Record::Conversation(conversation.clone()).prepare()?;
    let has_id = match conversation {
        types::CreateConversation::OpenAi(c) => c.id.is_some(),
        types::CreateConversation::SupportTicket(c) => c.id.is_some(),
        types::CreateConversation::SupportCopilot(c) => c.id.is_some(),
        types::CreateConversation::Unknown(value) => {
            value.get("id").is_some_and(|id| id.is_string())
        }
    };
    if !has_id {
        return Err(Error::invalid_input(
            "a conversation without an id cannot be read back; record it with an id",
        ));
    }
    let count = conversation.message_count();
    let messages = prepared.messages.iter().map(str::to_owned).collect();
    Ok((prepared.id, messages, count))
}
