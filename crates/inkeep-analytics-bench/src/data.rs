//! Realistic, deterministic records and pages, so that every contender decodes the same bytes.
//!
//! Records follow the spec's documented shapes only (known kinds, roles and link types), because
//! the official TypeScript SDK rejects a whole page with a value it does not know, and a peer that
//! fails measures nothing. A conversation is about 8 KB, as the issue describes real ones.

use bytes::Bytes;
use serde_json::Value;

/// The page size every contender asks for: the API's maximum.
pub const PAGE_SIZE: usize = 100;

/// A small, fast, seeded generator (SplitMix64): the same seed gives the same records on every run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for one seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    /// `true` with the given chance in percent.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    /// A UUID-shaped id, as the API's ids are.
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    fn timestamp(&mut self) -> String {
        format!(
            "2026-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.between(1, 11),
            self.between(1, 28),
            self.between(0, 23),
            self.between(0, 59),
            self.between(0, 59),
            self.between(0, 999)
        )
    }

    /// Prose of about `length` characters, with the newlines, quotes, code and non-ASCII letters
    /// that assistants write, so that decoders meet escapes as they do in real pages.
    fn prose(&mut self, length: usize) -> String {
        const WORDS: &[&str] = &[
            "the",
            "API",
            "key",
            "conversation",
            "export",
            "page",
            "token",
            "request",
            "retry",
            "configure",
            "integration",
            "search",
            "widget",
            "assistant",
            "documentation",
            "answer",
            "response",
            "latency",
            "deploy",
            "webhook",
            "project",
            "settings",
            "café",
            "naïve",
            "résumé",
            "—",
            "👍",
            "`limit`",
            "\"quoted\"",
            "and",
            "to",
            "of",
            "you",
            "can",
            "with",
            "for",
            "in",
            "your",
            "is",
            "a",
            "this",
            "that",
            "when",
        ];
        let mut text = String::with_capacity(length + 16);
        while text.len() < length {
            if !text.is_empty() {
                text.push(if self.chance(4) { '\n' } else { ' ' });
            }
            text.push_str(self.pick(WORDS));
            if self.chance(6) {
                text.push('.');
            }
        }
        text
    }
}

/// A JSON value whose object keys render in the order they were given, as the API sends them
/// (the seeds' order: `id`, `externalId`, `externalUrl`, `type`, ...), where `json!` would sort them.
#[derive(Clone, Debug)]
pub enum Node {
    /// A plain JSON value.
    Value(Value),
    /// An object, keys in order.
    Object(Vec<(&'static str, Node)>),
    /// A list.
    List(Vec<Node>),
}

impl serde::Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Node::Value(value) => value.serialize(serializer),
            Node::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Node::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

impl<T: Into<Value>> From<T> for Node {
    fn from(value: T) -> Self {
        Node::Value(value.into())
    }
}

impl Node {
    fn field(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Object(entries) => entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// An object with keys in the order written.
macro_rules! object {
    ($($key:literal => $value:expr),* $(,)?) => {
        Node::Object(vec![$(($key, Node::from($value))),*])
    };
}

fn null() -> Node {
    Node::Value(Value::Null)
}

fn optional(value: Option<String>) -> Node {
    value.map_or_else(null, Node::from)
}

/// The three kinds of conversation, in the proportions the benchmark uses (80/15/5).
fn conversation_kind(rng: &mut Rng) -> &'static str {
    match rng.between(0, 99) {
        0..=79 => "openai",
        80..=94 => "support_ticket",
        _ => "support_copilot",
    }
}

fn user_properties(rng: &mut Rng) -> Node {
    let id = rng.uuid();
    let user_id = format!("user_{}", rng.between(1, 50_000));
    let agent = rng.chance(20).then(|| "Dana Agent".to_string());
    object! {
        "id" => id,
        "identificationType" => "COOKIED",
        "userId" => user_id,
        "supportAgentName" => optional(agent),
    }
}

fn links(rng: &mut Rng) -> Node {
    const TYPES: &[&str] = &["documentation", "site", "github_issue", "discourse_post"];
    let count = rng.between(1, 4);
    Node::List(
        (0..count)
            .map(|index| {
                let slug = rng
                    .prose(24)
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
                let title = rng.prose(40);
                let description = rng.prose(110);
                let kind = rng.pick(TYPES);
                let section = rng.pick(&["Export", "Setup", "Keys"]);
                object! {
                    "label" => format!("{}", index + 1),
                    "url" => format!("https://docs.example.com/guides/{slug}"),
                    "title" => title,
                    "description" => description,
                    "type" => kind,
                    "breadcrumbs" => Node::List(vec!["Guides".into(), "Analytics".into(), section.into()]),
                }
            })
            .collect(),
    )
}

/// One message of a conversation, of the conversation's kind, in the seed's key order.
fn message(rng: &mut Rng, kind: &str, conversation_id: &str, index: usize) -> Node {
    let from_user = index.is_multiple_of(2);
    let length = if from_user {
        rng.between(100, 400)
    } else {
        rng.between(700, 1_400)
    };
    let id = rng.uuid();
    let content = rng.prose(length as usize);
    let created = rng.timestamp();
    let role = match (kind, from_user) {
        ("openai", true) => "user",
        ("openai", false) => "assistant",
        (_, true) => "user",
        (_, false) => "agent",
    };
    let mut entries = vec![
        ("id", Node::from(id)),
        ("type", kind.into()),
        ("externalId", null()),
        ("externalUrl", null()),
        ("conversationId", conversation_id.into()),
        ("createdAt", created.clone().into()),
        ("updatedAt", created.into()),
        ("role", role.into()),
        ("content", content.into()),
        ("name", null()),
    ];
    if kind == "openai" {
        let links = if from_user { null() } else { links(rng) };
        entries.extend([
            ("links", links),
            ("properties", Node::Object(Vec::new())),
            ("userProperties", null()),
            ("tool_calls", null()),
        ]);
    }
    Node::Object(entries)
}

/// One conversation, about 8 KB once rendered, in the seed's key order.
pub fn conversation(rng: &mut Rng) -> Node {
    let kind = conversation_kind(rng);
    let id = rng.uuid();
    let external_id = (kind != "openai").then(|| format!("T-{}", rng.between(10_000, 99_999)));
    let created = rng.timestamp();
    let updated = rng.timestamp();
    let integration = format!("int_{}", rng.between(1, 5));
    let source = rng.pick(&["web", "slack", "discord"]);
    let user = user_properties(rng);
    let tag = rng.pick(&["billing", "api", "setup", "bug"]);
    let visibility = rng.pick(&["private", "public"]);
    let message_count = 2 * rng.between(1, 3) as usize;
    let messages: Vec<Node> = (0..message_count)
        .map(|index| message(rng, kind, &id, index))
        .collect();
    let mut entries = vec![
        ("id", Node::from(id)),
        ("externalId", optional(external_id)),
        ("externalUrl", null()),
        ("type", kind.into()),
        ("supportTicketConversationId", null()),
        ("createdAt", created.into()),
        ("updatedAt", updated.into()),
        ("projectId", "proj_benchmark".into()),
        ("integrationId", integration.into()),
        (
            "properties",
            object! {"source" => source, "locale" => "en-US"},
        ),
        ("userProperties", user),
        ("tags", Node::List(vec![tag.into()])),
        ("visibility", visibility.into()),
    ];
    if kind == "openai" {
        let openai_format: Vec<Node> = messages
            .iter()
            .map(|message| {
                Node::Object(vec![
                    ("role", message.field("role").cloned().unwrap_or_else(null)),
                    (
                        "content",
                        message.field("content").cloned().unwrap_or_else(null),
                    ),
                ])
            })
            .collect();
        entries.push(("messages", Node::List(messages)));
        entries.push(("messagesOpenAIFormat", Node::List(openai_format)));
    } else {
        entries.push(("messages", Node::List(messages)));
    }
    Node::Object(entries)
}

/// One feedback item, with its conversation and message as the API embeds them, in the seed's key order.
pub fn feedback(rng: &mut Rng, positive: bool) -> Node {
    let conversation = conversation(rng);
    let message = match conversation.field("messages") {
        Some(Node::List(messages)) => messages.get(1).cloned().unwrap_or_else(null),
        _ => null(),
    };
    let message_id = message.field("id").cloned().unwrap_or_else(null);
    let id = rng.uuid();
    let created = rng.timestamp();
    let updated = rng.timestamp();
    let reasons = if positive {
        Node::List(Vec::new())
    } else {
        Node::List(vec![
            object! {"label" => "inaccurate", "details" => rng.prose(60)},
        ])
    };
    let details = rng.chance(30).then(|| rng.prose(80));
    object! {
        "id" => id,
        "type" => if positive { "positive" } else { "negative" },
        "messageId" => message_id,
        "createdAt" => created,
        "updatedAt" => updated,
        "reasons" => reasons,
        "details" => optional(details),
        "properties" => Node::Object(Vec::new()),
        "userProperties" => user_properties(rng),
        "sources" => null(),
        "conversation" => conversation,
        "message" => message,
    }
}

/// Records rendered once, each as the exact bytes a server sends.
pub fn render(records: impl Iterator<Item = Node>) -> Vec<Vec<u8>> {
    records
        .map(|record| serde_json::to_vec(&record).expect("a JSON value renders"))
        .collect()
}

/// `count` conversations from one seed.
pub fn conversations(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    render((0..count).map(|_| conversation(&mut rng)))
}

/// `count` feedback items from one seed, three positive for every two negative, as `(positive, negative)`.
pub fn feedback_items(seed: u64, count: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut rng = Rng::new(seed);
    let positive_count = count * 3 / 5;
    let positive = render((0..positive_count).map(|_| feedback(&mut rng, true)));
    let negative = render((positive_count..count).map(|_| feedback(&mut rng, false)));
    (positive, negative)
}

fn join(records: &[Vec<u8>], into: &mut Vec<u8>) {
    into.push(b'[');
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            into.push(b',');
        }
        into.extend_from_slice(record);
    }
    into.push(b']');
}

/// The pages of `GET /conversations?limit=100&offset=100·i`, in order.
pub fn conversation_pages(records: &[Vec<u8>]) -> Vec<Bytes> {
    let total = records.len();
    let mut pages: Vec<Bytes> = records
        .chunks(PAGE_SIZE)
        .map(|chunk| {
            let mut page = Vec::with_capacity(chunk.iter().map(Vec::len).sum::<usize>() + 96);
            page.extend_from_slice(b"{\"conversations\":");
            join(chunk, &mut page);
            page.extend_from_slice(
                format!(
                    ",\"total\":{total},\"pageSize\":{PAGE_SIZE},\"count\":{}}}",
                    chunk.len()
                )
                .as_bytes(),
            );
            Bytes::from(page)
        })
        .collect();
    pages.push(Bytes::from(format!(
        "{{\"conversations\":[],\"total\":{total},\"pageSize\":{PAGE_SIZE},\"count\":0}}"
    )));
    pages
}

/// The pages of `GET /feedback?limit=100&offset=100·i`: both lists cut at the same offset, in order.
pub fn feedback_pages(positive: &[Vec<u8>], negative: &[Vec<u8>]) -> Vec<Bytes> {
    let longest = positive.len().max(negative.len());
    let page_count = longest.div_ceil(PAGE_SIZE) + 1;
    (0..page_count)
        .map(|page_index| {
            let slice = |records: &'_ [Vec<u8>]| {
                let start = (page_index * PAGE_SIZE).min(records.len());
                let end = (start + PAGE_SIZE).min(records.len());
                records[start..end].to_vec()
            };
            let mut page = Vec::new();
            page.extend_from_slice(
                format!(
                    "{{\"positiveFeedbackCount\":{},\"negativeFeedbackCount\":{},\"positiveFeedback\":",
                    positive.len(),
                    negative.len()
                )
                .as_bytes(),
            );
            join(&slice(positive), &mut page);
            page.extend_from_slice(b",\"negativeFeedback\":");
            join(&slice(negative), &mut page);
            page.push(b'}');
            Bytes::from(page)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversations_are_about_eight_kilobytes() {
        let records = conversations(1, 500);
        let average = records.iter().map(Vec::len).sum::<usize>() / records.len();
        assert!(
            (7_000..=9_000).contains(&average),
            "average conversation is {average} bytes"
        );
    }

    #[test]
    fn the_same_seed_renders_the_same_bytes() {
        assert_eq!(conversations(7, 20), conversations(7, 20));
        assert_ne!(conversations(7, 20), conversations(8, 20));
    }

    #[test]
    fn pages_hold_every_record_once_and_end_with_an_empty_page() {
        let records = conversations(3, 250);
        let pages = conversation_pages(&records);
        assert_eq!(pages.len(), 4);
        let mut seen = Vec::new();
        for page in &pages {
            #[derive(serde::Deserialize)]
            struct Page<'a> {
                #[serde(borrow)]
                conversations: Vec<&'a serde_json::value::RawValue>,
                total: u64,
            }
            let page: Page<'_> = serde_json::from_slice(page).expect("a page is JSON");
            assert_eq!(page.total, 250);
            seen.extend(
                page.conversations
                    .iter()
                    .map(|record| record.get().as_bytes().to_vec()),
            );
        }
        assert!(
            seen.iter().all(|record| record.starts_with(b"{\"id\":")),
            "keys keep the API's order"
        );
        assert_eq!(seen, records);
    }

    #[test]
    fn feedback_pages_cut_both_lists_at_the_same_offset() {
        let (positive, negative) = feedback_items(5, 250);
        assert_eq!((positive.len(), negative.len()), (150, 100));
        let pages = feedback_pages(&positive, &negative);
        assert_eq!(pages.len(), 3);
        let second: Value = serde_json::from_slice(&pages[1]).expect("JSON");
        assert_eq!(
            second["positiveFeedback"].as_array().map(Vec::len),
            Some(50)
        );
        assert_eq!(second["negativeFeedback"].as_array().map(Vec::len), Some(0));
        assert_eq!(second["positiveFeedbackCount"], 150);
    }
}
