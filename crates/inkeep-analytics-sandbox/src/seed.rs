//! Deterministic, realistic seed data: conversations of all three kinds with their feedback and
//! events, drawn from a seed so that the same seed always gives the same data.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::content::{Content, LinkSeed, Topic, User, fill, locale_of};
use crate::records::{Conversation, Event, Feedback, Kind, Message, timestamp};
use crate::rng::Rng;

/// The project every seeded record belongs to (a few have none, as records logged without one do).
pub(crate) const PROJECT_ID: &str = "proj_sandbox";

/// The stream of the seed that the seeded data is drawn from.
const DATA_STREAM: u64 = 1;

/// A conversation with the feedback and events about it.
pub(crate) struct Seeded {
    pub conversation: Conversation,
    pub feedback: Vec<Feedback>,
    pub events: Vec<Event>,
}

/// The first moment of the seeded history: seeded data never depends on the clock.
pub(crate) fn history_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 6, 8, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// How long the seeded history lasts.
const HISTORY_DAYS: i64 = 182;

/// Makes seeded conversations one after the other.
pub(crate) struct Generator {
    rng: Rng,
    /// The text it draws from.
    content: &'static Content,
    /// The most recent support tickets, which support copilot sessions refer to.
    tickets: Vec<String>,
    ticket_number: u64,
}

impl Generator {
    pub(crate) fn new(seed: u64, content: &'static Content) -> Self {
        Self {
            rng: Rng::stream(seed, DATA_STREAM),
            content,
            tickets: Vec::new(),
            ticket_number: 40_000,
        }
    }

    /// `count` conversations spread over the seeded history, oldest first.
    pub(crate) fn history(&mut self, count: usize) -> Vec<Seeded> {
        let span = Duration::days(HISTORY_DAYS).num_seconds();
        let step = span / i64::try_from(count.max(1)).unwrap_or(i64::MAX);
        (0..count)
            .map(|index| {
                let slot = i64::try_from(index)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(step);
                let jitter = i64::try_from(self.rng.below(step.max(1) as u64)).unwrap_or(0);
                let at = history_start() + Duration::seconds(slot + jitter);
                self.conversation(at)
            })
            .collect()
    }

    /// One conversation that starts at `at`.
    pub(crate) fn conversation(&mut self, at: DateTime<Utc>) -> Seeded {
        let roll = self.rng.unit();
        let kind = if roll < 0.6 {
            Kind::OpenAi
        } else if roll < 0.85 {
            Kind::SupportTicket
        } else {
            Kind::SupportCopilot
        };
        let content = self.content;
        let topic_index = self.rng.index(content.topics.len());
        let topic = &content.topics[topic_index];
        let chosen = self.rng.pick(&topic.questions);
        let (language, question) = (chosen.language.as_str(), chosen.text.as_str());
        let user = self.rng.pick_skewed(&content.users);
        let user_index = content.users.iter().position(|u| u == user).unwrap_or(0);
        let id = self.rng.id("conv", 20);
        let mut conversation = match kind {
            Kind::OpenAi => self.openai(&id, at, topic, question, user_index),
            Kind::SupportTicket => self.ticket(&id, at, topic, question, user_index),
            Kind::SupportCopilot => self.copilot(&id, at, topic, question, user_index),
        };
        conversation.topic = Some(topic_index);
        conversation.properties = self.conversation_properties(kind, topic, language);
        conversation.tags = match self.rng.unit() {
            u if u < 0.35 => None,
            u if u < 0.45 => Some(Vec::new()),
            _ => {
                let mut tags: Vec<String> = topic.tags.clone();
                if self.rng.chance(0.2) {
                    tags.push("needs-review".into());
                }
                Some(tags)
            }
        };
        conversation.project_id = (!self.rng.chance(0.04)).then(|| PROJECT_ID.to_string());
        conversation.refresh_openai_format();
        if kind == Kind::SupportTicket {
            self.tickets.push(id.clone());
            if self.tickets.len() > 8 {
                self.tickets.remove(0);
            }
        }
        let feedback = self.feedback(&conversation);
        let events = self.events(&conversation, topic, user_index);
        Seeded {
            conversation,
            feedback,
            events,
        }
    }

    /// The user properties of end user `index`, or `None` for an anonymous visitor.
    fn user_properties(&mut self, index: usize) -> Option<Value> {
        if self.rng.chance(0.1) {
            return None;
        }
        let users = &self.content.users;
        let User {
            name,
            email,
            company,
        } = &users[index % users.len()];
        let mut map = Map::new();
        // Some integrations send numeric ids, others strings: the API accepts both.
        let id = if index.is_multiple_of(4) {
            json!(58_000 + index * 37)
        } else {
            json!(format!("usr_{index:04}"))
        };
        map.insert("id".into(), id.clone());
        map.insert("userId".into(), id);
        map.insert(
            "identificationType".into(),
            match index % 3 {
                0 => json!("COOKIED"),
                1 => json!("IDENTIFIED"),
                _ => Value::Null,
            },
        );
        map.insert(
            "userType".into(),
            json!(if index.is_multiple_of(7) {
                "internal"
            } else {
                "customer"
            }),
        );
        map.insert("name".into(), json!(name));
        map.insert("email".into(), json!(email));
        if let Some(company) = company {
            map.insert("company".into(), json!(company));
        }
        Some(Value::Object(map))
    }

    fn conversation_properties(
        &mut self,
        kind: Kind,
        topic: &Topic,
        language: &str,
    ) -> Option<Value> {
        let roll = self.rng.unit();
        if roll < 0.12 {
            return None;
        }
        if roll < 0.17 {
            return Some(json!({}));
        }
        let mut map = Map::new();
        let source = match kind {
            Kind::OpenAi => {
                *self
                    .rng
                    .pick(&["docs_widget", "docs_widget", "slack", "discord", "api"])
            }
            Kind::SupportTicket => "zendesk",
            Kind::SupportCopilot => "support_copilot",
        };
        map.insert("source".into(), json!(source));
        if source == "docs_widget" {
            map.insert("page".into(), json!(topic.page));
            map.insert(
                "referrer".into(),
                if self.rng.chance(0.5) {
                    json!("https://www.google.com/")
                } else {
                    Value::Null
                },
            );
        }
        map.insert("locale".into(), json!(locale_of(language)));
        map.insert(
            "plan".into(),
            json!(*self.rng.pick(&["free", "pro", "pro", "enterprise"])),
        );
        if self.rng.chance(0.85) {
            map.insert("pageViews".into(), json!(self.rng.range(1, 40)));
        }
        if self.rng.chance(0.5) {
            map.insert(
                "abTest".into(),
                json!({
                    "experiment": "answer-length",
                    "variant": *self.rng.pick(&["A", "B"]),
                }),
            );
        }
        Some(Value::Object(map))
    }

    fn links(&mut self, topic: &Topic) -> Option<Value> {
        let roll = self.rng.unit();
        if roll < 0.1 {
            return None;
        }
        if roll < 0.15 {
            return Some(json!([]));
        }
        let count = self.rng.range(1, topic.links.len() as u64) as usize;
        Some(Value::Array(
            topic.links[..count].iter().map(link_json).collect(),
        ))
    }

    /// Offsets the next message a realistic while after the previous one.
    fn later(&mut self, at: &mut DateTime<Utc>, low: u64, high: u64) -> String {
        *at += Duration::seconds(i64::try_from(self.rng.range(low, high)).unwrap_or(60));
        timestamp(*at)
    }

    fn openai(
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

    fn ticket(
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

    fn copilot(
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

    /// Most conversations were last updated with their last message; some were edited later.
    fn updated_at(&mut self, last_message: DateTime<Utc>) -> String {
        if self.rng.chance(0.1) {
            let hours = i64::try_from(self.rng.range(1, 72)).unwrap_or(1);
            timestamp(last_message + Duration::hours(hours))
        } else {
            timestamp(last_message)
        }
    }

    fn feedback(&mut self, conversation: &Conversation) -> Vec<Feedback> {
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

    fn events(
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

fn link_json(link: &LinkSeed) -> Value {
    let mut map = Map::new();
    map.insert("url".into(), json!(link.url));
    map.insert("title".into(), json!(link.title));
    map.insert(
        "label".into(),
        link.label
            .as_ref()
            .map_or(Value::Null, |label| json!(label)),
    );
    map.insert(
        "type".into(),
        link.kind.as_ref().map_or(Value::Null, |kind| json!(kind)),
    );
    map.insert(
        "breadcrumbs".into(),
        if link.breadcrumbs.is_empty() {
            Value::Null
        } else {
            json!(link.breadcrumbs)
        },
    );
    Value::Object(map)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The built-in content, which its own test shows parses.
    pub(crate) fn content() -> &'static Content {
        Content::load().unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn the_same_seed_gives_the_same_history() {
        let render = |seed| {
            Generator::new(seed, content())
                .history(30)
                .iter()
                .map(|s| serde_json::to_string(&s.conversation).unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert_eq!(render(42), render(42));
        assert_ne!(render(42), render(43));
    }

    #[test]
    fn a_history_has_every_kind_and_realistic_sizes() {
        let history = Generator::new(42, content()).history(250);
        for kind in [Kind::OpenAi, Kind::SupportTicket, Kind::SupportCopilot] {
            assert!(
                history.iter().any(|s| s.conversation.kind == kind),
                "{kind:?}"
            );
        }
        let sizes: Vec<usize> = history
            .iter()
            .map(|s| serde_json::to_vec(&s.conversation).map_or(0, |v| v.len()))
            .collect();
        let max = sizes.iter().copied().max().unwrap_or(0);
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!(max <= 12_000, "largest conversation is {max} bytes");
        assert!(
            (1_500..=8_000).contains(&mean),
            "mean conversation is {mean} bytes"
        );
        // Oldest first, so that the store serves them newest first.
        assert!(
            history
                .windows(2)
                .all(|w| w[0].conversation.created_at <= w[1].conversation.created_at)
        );
        assert!(history.iter().any(|s| !s.feedback.is_empty()));
        assert!(
            history
                .iter()
                .any(|s| s.events.iter().any(|e| e.entity_type == "search"))
        );
    }
}
