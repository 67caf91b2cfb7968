//! What happens around a seeded conversation: the feedback on its answers and the events it
//! gives rise to (message, conversation and search events).

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::{Generator, history_start};
use crate::content::Topic;
use crate::records::{Conversation, Event, Feedback, Kind, Message, timestamp};
use crate::rng::Rng;

impl Generator {
    pub(super) fn feedback(&mut self, conversation: &Conversation) -> Vec<Feedback> {
        let chance = match conversation.kind {
            Kind::OpenAi => 0.4,
            Kind::SupportCopilot => 0.3,
            Kind::SupportTicket => 0.0,
        };
        if !self.rng.chance(chance) {
            return Vec::new();
        }
        let answers: Vec<&Message> = conversation
            .messages
            .iter()
            .filter(|m| m.role == "assistant" && m.text().is_some_and(|t| !t.is_empty()))
            .collect();
        let Some(message) = answers.get(self.rng.index(answers.len())) else {
            return Vec::new();
        };
        let positive = self.rng.chance(0.65);
        let created = DateTime::parse_from_rfc3339(&message.created_at)
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or_else(|_| history_start());
        let created_at =
            created + Duration::seconds(i64::try_from(self.rng.range(5, 900)).unwrap_or(60));
        let reasons = if positive {
            match self.rng.index(3) {
                0 => Some(json!([self.content.phrases.positive_reason])),
                1 => Some(json!([])),
                _ => None,
            }
        } else {
            let reason = self.rng.pick(&self.content.phrases.negative_reasons);
            Some(json!([reason]))
        };
        let details = if positive {
            let details = &self.content.phrases.positive_details;
            self.rng.chance(0.3).then(|| details.clone())
        } else {
            let details = &self.content.phrases.negative_details;
            self.rng.chance(0.6).then(|| details.clone())
        };
        let sources = if !positive && self.rng.chance(0.5) {
            let url = message
                .links
                .as_ref()
                .and_then(|links| links.get(0))
                .and_then(|link| link.get("url"))
                .cloned()
                .unwrap_or(Value::Null);
            Some(json!([
                {"type": "negative", "title": "Cited page", "url": url},
                {"type": "new", "title": null, "url": "https://docs.acme.dev/changelog"},
            ]))
        } else {
            None
        };
        let properties = if self.rng.chance(0.6) {
            Some(json!({"widget": *self.rng.pick(&["chat", "search", "slack"]), "surface": "docs"}))
        } else {
            None
        };
        vec![Feedback {
            id: self.rng.id("fb", 20),
            kind: if positive { "positive" } else { "negative" }.to_string(),
            message_id: message.id.clone(),
            created_at: timestamp(created_at),
            updated_at: timestamp(created_at),
            reasons,
            details,
            properties,
            user_properties: conversation.user_properties.clone(),
            sources,
            conversation_id: conversation.id.clone(),
        }]
    }

    pub(super) fn events(
        &mut self,
        conversation: &Conversation,
        topic: &Topic,
        user_index: usize,
    ) -> Vec<Event> {
        let created = DateTime::parse_from_rfc3339(&conversation.created_at)
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or_else(|_| history_start());
        let user = conversation
            .user_properties
            .as_ref()
            .filter(|_| conversation.kind != Kind::SupportCopilot)
            .and_then(|p| p.get("userId"))
            .map(|id| json!({"userId": id}));
        let mut events = Vec::new();
        let mut event = |rng: &mut Rng,
                         entity: &str,
                         kind: &str,
                         target: Option<String>,
                         at: DateTime<Utc>,
                         properties: Option<Value>,
                         user_properties: Option<Value>| {
            let mut event = Event {
                id: rng.id("evt", 20),
                entity_type: entity.to_string(),
                kind: kind.to_string(),
                message_id: None,
                conversation_id: None,
                search_query: None,
                created_at: timestamp(at),
                project_id: conversation.project_id.clone(),
                integration_id: conversation.integration_id.clone(),
                properties,
                user_properties,
            };
            match entity {
                "message" => event.message_id = target,
                "conversation" => event.conversation_id = target,
                _ => event.search_query = target,
            }
            events.push(event);
        };
        // Searches before the conversation: what top-search-queries and weekly-search-users count.
        if conversation.kind == Kind::OpenAi {
            for _ in 0..self.rng.range(0, 3) {
                let query = if self.rng.chance(0.2) {
                    topic.subject.to_lowercase()
                } else {
                    self.rng
                        .pick_skewed(&self.content.phrases.search_queries)
                        .clone()
                };
                let before = i64::try_from(self.rng.range(10, 1_800)).unwrap_or(60);
                let results = self.rng.range(0, 12);
                let user = user.clone().or_else(|| {
                    // Anonymous visitors still have a cookie id.
                    Some(json!({"userId": format!("anon_{}", user_index % 9)}))
                });
                event(
                    &mut self.rng,
                    "search",
                    "search_performed",
                    Some(query),
                    created - Duration::seconds(before),
                    Some(json!({"resultCount": results})),
                    user,
                );
            }
        }
        let answer = conversation
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "assistant" && m.text().is_some_and(|t| !t.is_empty()));
        if let Some(answer) = answer
            && self.rng.chance(0.45)
        {
            let kind = *self
                .rng
                .pick(&["message_copied", "link_clicked", "code_block_copied"]);
            let properties = match kind {
                "link_clicked" => answer
                    .links
                    .as_ref()
                    .and_then(|links| links.get(0))
                    .and_then(|link| link.get("url"))
                    .map(|url| json!({"url": url})),
                "code_block_copied" => Some(json!({"codeBlockIndex": 0, "language": "sh"})),
                _ => None,
            };
            let after = i64::try_from(self.rng.range(5, 600)).unwrap_or(60);
            let at = DateTime::parse_from_rfc3339(&answer.created_at)
                .map(|at| at.with_timezone(&Utc))
                .unwrap_or(created);
            event(
                &mut self.rng,
                "message",
                kind,
                Some(answer.id.clone()),
                at + Duration::seconds(after),
                properties,
                user.clone(),
            );
        }
        if self.rng.chance(0.2) {
            let kind = *self.rng.pick(&[
                "conversation_shared",
                "chat_escalated_to_support",
                "conversation_cleared",
            ]);
            let after = i64::try_from(self.rng.range(60, 3_600)).unwrap_or(60);
            let channel = *self.rng.pick(&["link", "email", "slack"]);
            event(
                &mut self.rng,
                "conversation",
                kind,
                Some(conversation.id.clone()),
                created + Duration::seconds(after),
                Some(json!({"channel": channel})),
                user,
            );
        }
        events
    }
}
