//! Deterministic, realistic seed data: conversations of all three kinds with their feedback and
//! events, drawn from a seed so that the same seed always gives the same data.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::content::{Content, LinkSeed, Topic, User, locale_of};
use crate::records::{Conversation, Event, Feedback, Kind, timestamp};
use crate::rng::Rng;

mod activity;
mod conversations;

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

    /// Most conversations were last updated with their last message; some were edited later.
    fn updated_at(&mut self, last_message: DateTime<Utc>) -> String {
        if self.rng.chance(0.1) {
            let hours = i64::try_from(self.rng.range(1, 72)).unwrap_or(1);
            timestamp(last_message + Duration::hours(hours))
        } else {
            timestamp(last_message)
        }
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
