//! The three kinds of seeded conversation: an OpenAI-format chat with the documentation
//! assistant, a support ticket between a customer and agents, and a support copilot session.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Generator;
use crate::content::{Topic, fill};
use crate::records::{Conversation, Kind, Message, timestamp};
use crate::rng::Rng;

impl Generator {
    pub(super) fn openai(
        &mut self,
        id: &str,
        at: DateTime<Utc>,
        topic: &Topic,
        question: &str,
        user_index: usize,
    ) -> Conversation {
        let user_properties = self.user_properties(user_index);
        let (integration, external_id, external_url) = match self.rng.index(5) {
            0 | 1 => ("int_docs_widget", None, None),
            2 => {
                let thread = format!("{}.{:06}", at.timestamp(), self.rng.below(1_000_000));
                (
                    "int_slack",
                    Some(format!("slack-C04QW7Z9J-{thread}")),
                    Some(format!(
                        "https://acme.slack.com/archives/C04QW7Z9J/p{}",
                        thread.replace('.', "")
                    )),
                )
            }
            3 => {
                let snowflake =
                    1_190_000_000_000_000_000u64 + self.rng.below(9_000_000_000_000_000);
                (
                    "int_discord",
                    Some(snowflake.to_string()),
                    Some(format!(
                        "https://discord.com/channels/884421/1023341/{snowflake}"
                    )),
                )
            }
            _ => ("int_mcp", None, None),
        };
        let content = self.content;
        let model = self.rng.pick(&content.phrases.models).as_str();
        let first_name = content.users[user_index % content.users.len()]
            .name
            .split(' ')
            .next()
            .map(str::to_string);
        let mut clock = at;
        let mut messages = Vec::new();
        let push = |messages: &mut Vec<Message>,
                    created_at: String,
                    role: &str,
                    content: Value,
                    name: Option<String>,
                    links: Option<Value>,
                    properties: Option<Value>,
                    tool_calls: Value,
                    rng: &mut Rng| {
            messages.push(Message {
                id: rng.id("msg", 20),
                kind: Kind::OpenAi,
                external_id: None,
                external_url: None,
                conversation_id: id.to_string(),
                created_at: created_at.clone(),
                updated_at: created_at,
                role: role.to_string(),
                content,
                name,
                links,
                properties,
                user_properties: None,
                tool_calls: Some(tool_calls),
            });
        };
        if self.rng.chance(0.3) {
            push(
                &mut messages,
                timestamp(clock),
                "system",
                json!(self.content.phrases.system_prompt),
                None,
                None,
                None,
                Value::Null,
                &mut self.rng,
            );
        }
        let question_content = if self.rng.chance(0.12) {
            json!([
                {"type": "text", "text": question},
                {"type": "image_url", "image_url": {
                    "url": format!("https://uploads.acme.dev/screenshots/{}.png", self.rng.id("img", 12)),
                    "detail": *self.rng.pick(&["auto", "low", "high"]),
                }},
            ])
        } else {
            json!(question)
        };
        let name = if self.rng.chance(0.3) {
            first_name.clone()
        } else {
            None
        };
        let input = if self.rng.chance(0.5) {
            Some(json!({"inputMethod": *self.rng.pick(&["keyboard", "voice", "paste"])}))
        } else {
            None
        };
        push(
            &mut messages,
            timestamp(clock),
            "user",
            question_content,
            name,
            None,
            input,
            Value::Null,
            &mut self.rng,
        );
        if self.rng.chance(0.35) {
            let created_at = self.later(&mut clock, 1, 3);
            let call_id = self.rng.id("call", 24);
            push(
                &mut messages,
                created_at,
                "assistant",
                json!(""),
                None,
                None,
                Some(json!({"model": model})),
                json!([{
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "search_docs", "arguments": topic.search},
                }]),
                &mut self.rng,
            );
        }
        let created_at = self.later(&mut clock, 2, 12);
        let links = self.links(topic);
        let latency = self.rng.range(600, 9_000);
        push(
            &mut messages,
            created_at,
            "assistant",
            json!(topic.answer),
            None,
            links,
            Some(json!({"model": model, "latencyMs": latency})),
            Value::Null,
            &mut self.rng,
        );
        if self.rng.chance(0.5) {
            let created_at = self.later(&mut clock, 30, 600);
            push(
                &mut messages,
                created_at,
                "user",
                json!(topic.follow_up),
                first_name,
                None,
                None,
                Value::Null,
                &mut self.rng,
            );
            let created_at = self.later(&mut clock, 2, 10);
            let latency = self.rng.range(400, 6_000);
            push(
                &mut messages,
                created_at,
                "assistant",
                json!(topic.follow_up_answer),
                None,
                None,
                Some(json!({"model": model, "latencyMs": latency})),
                Value::Null,
                &mut self.rng,
            );
        }
        let updated_at = self.updated_at(clock);
        let visibility = match self.rng.index(10) {
            0..=5 => Some("private".to_string()),
            6..=8 => Some("public".to_string()),
            _ => None,
        };
        Conversation {
            id: id.to_string(),
            external_id,
            external_url,
            kind: Kind::OpenAi,
            support_ticket_conversation_id: None,
            created_at: timestamp(at),
            updated_at,
            project_id: None,
            integration_id: Some(integration.to_string()),
            properties: None,
            user_properties,
            tags: None,
            visibility,
            messages,
            messages_openai_format: None,
            topic: None,
        }
    }

    pub(super) fn ticket(
        &mut self,
        id: &str,
        at: DateTime<Utc>,
        topic: &Topic,
        question: &str,
        user_index: usize,
    ) -> Conversation {
        self.ticket_number += self.rng.range(1, 40);
        let number = self.ticket_number;
        let user_properties = self.user_properties(user_index);
        let content = self.content;
        let customer = content.users[user_index % content.users.len()]
            .name
            .as_str();
        let agent = self.rng.pick(&content.agents).name.as_str();
        let mut clock = at;
        let mut comment = number * 10;
        let mut messages = Vec::new();
        let mut push = |messages: &mut Vec<Message>,
                        rng: &mut Rng,
                        created_at: String,
                        role: &str,
                        content: Value,
                        name: &str,
                        properties: Option<Value>| {
            comment += 1;
            messages.push(Message {
                id: rng.id("msg", 20),
                kind: Kind::SupportTicket,
                external_id: Some(format!("zd-comment-{comment}")),
                external_url: None,
                conversation_id: id.to_string(),
                created_at: created_at.clone(),
                updated_at: created_at,
                role: role.to_string(),
                content,
                name: Some(name.to_string()),
                links: None,
                properties,
                user_properties: None,
                tool_calls: None,
            });
        };
        push(
            &mut messages,
            &mut self.rng,
            timestamp(clock),
            "customer",
            json!(question),
            customer,
            None,
        );
        if self.rng.chance(0.3) {
            let created_at = self.later(&mut clock, 60, 900);
            let size = self.rng.range(2_000, 4_000_000);
            push(
                &mut messages,
                &mut self.rng,
                created_at,
                "customer",
                Value::Null,
                customer,
                Some(json!({"attachments": [{"filename": "trace.har", "size": size}]})),
            );
        }
        if self.rng.chance(0.4) {
            let created_at = self.later(&mut clock, 300, 3_600);
            let note = self.rng.pick(&content.phrases.internal_notes).as_str();
            push(
                &mut messages,
                &mut self.rng,
                created_at,
                "internal_note",
                json!(note),
                agent,
                Some(json!({"public": false})),
            );
        }
        let created_at = self.later(&mut clock, 600, 14_400);
        let opening = self.rng.pick(&content.phrases.agent_openings).as_str();
        push(
            &mut messages,
            &mut self.rng,
            created_at,
            "agent",
            json!(format!("{opening}\n\n{}", topic.answer)),
            agent,
            Some(json!({"public": true})),
        );
        if self.rng.chance(0.5) {
            let created_at = self.later(&mut clock, 600, 86_400);
            push(
                &mut messages,
                &mut self.rng,
                created_at,
                "customer",
                json!(topic.follow_up),
                customer,
                None,
            );
            let created_at = self.later(&mut clock, 600, 14_400);
            push(
                &mut messages,
                &mut self.rng,
                created_at,
                "agent",
                json!(topic.follow_up_answer),
                agent,
                Some(json!({"public": true})),
            );
        }
        let updated_at = self.updated_at(clock);
        Conversation {
            id: id.to_string(),
            external_id: Some(format!("zd-{number}")),
            external_url: Some(format!("https://acme.zendesk.com/agent/tickets/{number}")),
            kind: Kind::SupportTicket,
            support_ticket_conversation_id: None,
            created_at: timestamp(at),
            updated_at,
            project_id: None,
            integration_id: Some("int_zendesk".to_string()),
            properties: None,
            user_properties,
            tags: None,
            visibility: self.rng.chance(0.7).then(|| "private".to_string()),
            messages,
            messages_openai_format: None,
            topic: None,
        }
    }

    pub(super) fn copilot(
        &mut self,
        id: &str,
        at: DateTime<Utc>,
        topic: &Topic,
        question: &str,
        user_index: usize,
    ) -> Conversation {
        let content = self.content;
        let chosen_agent = self.rng.pick(&content.agents);
        let (agent, agent_email) = (chosen_agent.name.as_str(), chosen_agent.email.as_str());
        let customer = content.users[user_index % content.users.len()]
            .name
            .as_str();
        let ticket = if self.tickets.is_empty() || self.rng.chance(0.2) {
            None
        } else {
            let index = self.rng.index(self.tickets.len());
            self.tickets.get(index).cloned()
        };
        let mut clock = at;
        let mut messages = Vec::new();
        let links = self.links(topic);
        let turns = [
            (
                "user",
                json!(fill(
                    &content.phrases.copilot_request,
                    &[("customer", customer), ("question", question)]
                )),
                None,
                None,
            ),
            (
                "assistant",
                json!(fill(
                    &content.phrases.copilot_draft,
                    &[("customer", customer), ("answer", &topic.answer)]
                )),
                links,
                Some(json!({"confidence": *self.rng.pick(&["high", "medium", "low"])})),
            ),
        ];
        for (index, (role, content, links, properties)) in turns.into_iter().enumerate() {
            let created_at = if index == 0 {
                timestamp(clock)
            } else {
                self.later(&mut clock, 3, 20)
            };
            messages.push(Message {
                id: self.rng.id("msg", 20),
                kind: Kind::SupportCopilot,
                external_id: None,
                external_url: None,
                conversation_id: id.to_string(),
                created_at: created_at.clone(),
                updated_at: created_at,
                role: role.to_string(),
                content,
                name: (role == "user").then(|| agent.to_string()),
                links,
                properties,
                user_properties: None,
                tool_calls: None,
            });
        }
        if self.rng.chance(0.4) {
            let created_at = self.later(&mut clock, 20, 300);
            messages.push(Message {
                id: self.rng.id("msg", 20),
                kind: Kind::SupportCopilot,
                external_id: None,
                external_url: None,
                conversation_id: id.to_string(),
                created_at: created_at.clone(),
                updated_at: created_at,
                role: "user".into(),
                content: json!(content.phrases.copilot_revision),
                name: Some(agent.to_string()),
                links: None,
                properties: None,
                user_properties: None,
                tool_calls: None,
            });
            let created_at = self.later(&mut clock, 3, 15);
            let short: String = topic.answer.chars().take(220).collect();
            messages.push(Message {
                id: self.rng.id("msg", 20),
                kind: Kind::SupportCopilot,
                external_id: None,
                external_url: None,
                conversation_id: id.to_string(),
                created_at: created_at.clone(),
                updated_at: created_at,
                role: "assistant".into(),
                content: json!(fill(
                    &content.phrases.copilot_short_reply,
                    &[("customer", customer), ("short", &short)]
                )),
                name: None,
                links: None,
                properties: None,
                user_properties: None,
                tool_calls: None,
            });
        }
        let updated_at = self.updated_at(clock);
        let agent_id = format!(
            "agent_{:02}",
            content
                .agents
                .iter()
                .position(|a| a.name == agent)
                .unwrap_or(0)
        );
        Conversation {
            id: id.to_string(),
            external_id: None,
            external_url: None,
            kind: Kind::SupportCopilot,
            support_ticket_conversation_id: ticket,
            created_at: timestamp(at),
            updated_at,
            project_id: None,
            integration_id: Some("int_support_copilot".to_string()),
            properties: None,
            user_properties: Some(json!({
                "id": agent_id,
                "userType": "support_agent",
                "supportAgentName": agent,
                "supportAgentEmail": agent_email,
            })),
            tags: None,
            visibility: Some("private".to_string()),
            messages,
            messages_openai_format: None,
            topic: None,
        }
    }
}
