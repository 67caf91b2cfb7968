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

    /// A length between `low` and `high`, most of them short, a few long: real messages range
    /// from "thanks" to pages of pasted logs.
    fn length(&mut self, low: u64, high: u64) -> usize {
        let spread = (high - low) as f64;
        let unit = (self.next() % 10_000) as f64 / 10_000.0;
        (low as f64 + spread * unit * unit) as usize
    }

    /// Prose of about `length` bytes in one language, with the newlines, quotes, code and emoji
    /// that people and assistants write, so that decoders meet escapes and multi-byte text as they
    /// do in real pages.
    fn prose(&mut self, language: Language, length: usize) -> String {
        let (words, separator): (&[&str], &str) = match language {
            Language::English => (ENGLISH, " "),
            Language::Spanish => (SPANISH, " "),
            Language::French => (FRENCH, " "),
            Language::German => (GERMAN, " "),
            Language::Japanese => (JAPANESE, ""),
            Language::Chinese => (CHINESE, ""),
            Language::Arabic => (ARABIC, " "),
        };
        let mut text = String::with_capacity(length + 16);
        while text.len() < length {
            if !text.is_empty() {
                if self.chance(3) {
                    text.push('\n');
                } else {
                    text.push_str(separator);
                }
            }
            match self.between(0, 99) {
                0..=1 => text.push_str(self.pick(EMOJI)),
                2 => text.push_str(self.pick(CODE)),
                _ => text.push_str(self.pick(words)),
            }
            if self.chance(7) {
                text.push_str(match language {
                    Language::Japanese | Language::Chinese => "。",
                    Language::Arabic => "،",
                    _ => ".",
                });
            }
        }
        text
    }
}

/// The languages of the benchmark's conversations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// With the odd accented loan word.
    English,
    /// Accents and `ñ`.
    Spanish,
    /// Accents and ligatures.
    French,
    /// Umlauts and `ß`.
    German,
    /// Kana and kanji, no spaces.
    Japanese,
    /// Hanzi, no spaces.
    Chinese,
    /// Right-to-left script.
    Arabic,
}

impl Language {
    /// Mostly English, as a product's users are, with a long tail of others.
    fn pick(rng: &mut Rng) -> Self {
        match rng.between(0, 99) {
            0..=54 => Language::English,
            55..=64 => Language::Spanish,
            65..=72 => Language::French,
            73..=78 => Language::German,
            79..=86 => Language::Japanese,
            87..=93 => Language::Chinese,
            _ => Language::Arabic,
        }
    }

    fn locale(self) -> &'static str {
        match self {
            Language::English => "en-US",
            Language::Spanish => "es-ES",
            Language::French => "fr-FR",
            Language::German => "de-DE",
            Language::Japanese => "ja-JP",
            Language::Chinese => "zh-CN",
            Language::Arabic => "ar-EG",
        }
    }
}

const ENGLISH: &[&str] = &[
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
    "it's",
    "doesn't",
    "https://example.com/docs?a=1&b=2",
];
const SPANISH: &[&str] = &[
    "la",
    "clave",
    "conversación",
    "exportar",
    "página",
    "petición",
    "configuración",
    "búsqueda",
    "año",
    "señal",
    "¿cómo",
    "puedo",
    "añadir",
    "integración?",
    "sí",
    "gracias",
    "también",
    "después",
    "de",
    "el",
    "que",
    "en",
    "para",
    "¡listo!",
];
const FRENCH: &[&str] = &[
    "la",
    "clé",
    "conversation",
    "exporter",
    "requête",
    "paramètres",
    "réponse",
    "déjà",
    "où",
    "être",
    "œuvre",
    "façon",
    "très",
    "intégration",
    "problème",
    "à",
    "de",
    "le",
    "et",
    "n'est",
    "pas",
    "l'API",
    "« guillemets »",
];
const GERMAN: &[&str] = &[
    "der",
    "Schlüssel",
    "Gespräch",
    "exportieren",
    "Größe",
    "Anfrage",
    "Einstellungen",
    "Antwort",
    "für",
    "über",
    "müssen",
    "Straße",
    "Übersicht",
    "und",
    "die",
    "ist",
    "nicht",
];
const JAPANESE: &[&str] = &[
    "APIキー",
    "を",
    "設定",
    "してください",
    "会話",
    "の",
    "エクスポート",
    "ページ",
    "検索",
    "ウィジェット",
    "ドキュメント",
    "が",
    "見つかりません",
    "ありがとうございます",
    "です",
    "どうすれば",
    "できますか",
    "統合",
    "トークン",
    "再試行",
];
const CHINESE: &[&str] = &[
    "如何", "配置", "密钥", "对话", "导出", "页面", "请求", "搜索", "文档", "的", "是", "我们",
    "集成", "谢谢", "问题", "已经", "解决", "重试", "延迟",
];
const ARABIC: &[&str] = &[
    "كيف",
    "يمكنني",
    "إعداد",
    "المفتاح",
    "المحادثة",
    "تصدير",
    "الصفحة",
    "البحث",
    "التوثيق",
    "شكرا",
    "في",
    "من",
    "على",
    "هذا",
    "الطلب",
    "الإعدادات",
];
const EMOJI: &[&str] = &["👍", "🙏", "🚀", "😅", "✅", "❤️", "👩‍💻", "🇯🇵", "🤔"];
const CODE: &[&str] = &[
    "`curl -H \"Authorization: Bearer $KEY\"`",
    "```json\n{\"limit\": 100, \"offset\": 0}\n```",
    "`C:\\Users\\dev\\config.json`",
    "\tindented\tline",
    "<script>alert(1)</script>",
];

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

/// User properties as integrations send them: some fields missing or null, ids as strings or
/// numbers, and keys of their own.
fn user_properties(rng: &mut Rng) -> Node {
    if rng.chance(10) {
        return null();
    }
    let mut entries = Vec::new();
    match rng.between(0, 2) {
        0 => entries.push(("id", Node::from(rng.uuid()))),
        1 => entries.push(("id", Node::from(rng.between(1, 9_000_000)))),
        _ => entries.push(("id", null())),
    }
    entries.push((
        "identificationType",
        Node::from(rng.pick(&["COOKIED", "ID_PROVIDED", "ANONYMOUS"])),
    ));
    if rng.chance(50) {
        entries.push(("userId", Node::from(rng.between(1, 50_000))));
    } else {
        entries.push((
            "userId",
            Node::from(format!("user_{}", rng.between(1, 50_000))),
        ));
    }
    let agent = rng.chance(20).then(|| {
        rng.pick(&["Dana Agent", "José Núñez", "佐藤 花子", "ليلى"])
            .to_string()
    });
    entries.push(("supportAgentName", optional(agent)));
    if rng.chance(30) {
        entries.push((
            "userType",
            Node::from(rng.pick(&["customer", "trial", "admin"])),
        ));
    }
    if rng.chance(25) {
        entries.push(("plan", Node::from(rng.pick(&["free", "pro", "enterprise"]))));
        entries.push(("seats", Node::from(rng.between(1, 500))));
    }
    Node::Object(entries)
}

/// Free-form properties: flat strings and numbers, sometimes nested, sometimes null or empty.
fn properties(rng: &mut Rng, language: Language) -> Node {
    match rng.between(0, 9) {
        0 => null(),
        1 => Node::Object(Vec::new()),
        _ => {
            let mut entries = vec![
                (
                    "source",
                    Node::from(rng.pick(&["web", "slack", "discord", "api", "zendesk"])),
                ),
                ("locale", Node::from(language.locale())),
            ];
            if rng.chance(40) {
                entries.push((
                    "pageUrl",
                    Node::from(format!("https://app.example.com/p/{}", rng.between(1, 999))),
                ));
            }
            if rng.chance(25) {
                entries.push((
                    "experiment",
                    object! {"name" => "new-ranker", "bucket" => rng.between(0, 9), "enabled" => rng.chance(50)},
                ));
            }
            if rng.chance(20) {
                entries.push(("score", Node::from(rng.between(0, 1000) as f64 / 1000.0)));
            }
            Node::Object(entries)
        }
    }
}

fn links(rng: &mut Rng, language: Language) -> Node {
    const TYPES: &[&str] = &[
        "documentation",
        "site",
        "discourse_post",
        "github_issue",
        "github_discussion",
        "stackoverflow_question",
        "discord_forum_post",
        "discord_message",
        "custom_question_answer",
    ];
    let count = rng.between(0, 6);
    Node::List(
        (0..count)
            .map(|index| {
                let slug = rng
                    .prose(Language::English, 24)
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
                let title = rng.prose(language, 40);
                let description = rng.chance(80).then(|| {
                    let length = rng.length(40, 300);
                    rng.prose(language, length)
                });
                let kind = rng.pick(TYPES);
                let section = rng.pick(&["Export", "Setup", "Keys", "Sécurité", "認証"]);
                let breadcrumbs = if rng.chance(15) {
                    null()
                } else {
                    Node::List(vec!["Guides".into(), "Analytics".into(), section.into()])
                };
                object! {
                    "label" => format!("{}", index + 1),
                    "url" => format!("https://docs.example.com/guides/{slug}"),
                    "title" => title,
                    "description" => optional(description),
                    "type" => kind,
                    "breadcrumbs" => breadcrumbs,
                }
            })
            .collect(),
    )
}

/// Tool calls of an assistant message: a function and its JSON arguments, as a string.
fn tool_calls(rng: &mut Rng) -> Node {
    let count = rng.between(1, 3);
    Node::List(
        (0..count)
            .map(|_| {
                let id = format!("call_{}", rng.uuid().replace('-', ""));
                let (name, arguments) = match rng.between(0, 2) {
                    0 => (
                        "search_docs",
                        format!(
                            "{{\"query\":\"{}\",\"limit\":{}}}",
                            rng.prose(Language::English, 30)
                                .replace(['"', '\\', '\n'], " "),
                            rng.between(1, 10)
                        ),
                    ),
                    1 => (
                        "get_ticket",
                        format!("{{\"ticketId\":\"T-{}\"}}", rng.between(10_000, 99_999)),
                    ),
                    _ => (
                        "create_issue",
                        format!(
                            "{{\"title\":\"Export fails\",\"labels\":[\"bug\",\"p{}\"]}}",
                            rng.between(0, 3)
                        ),
                    ),
                };
                object! {
                    "id" => id,
                    "type" => "function",
                    "function" => object! {"name" => name, "arguments" => arguments},
                }
            })
            .collect(),
    )
}

/// What an `openai` user says: mostly text, sometimes text and an image as content parts.
fn openai_content(rng: &mut Rng, language: Language, length: usize, from_user: bool) -> Node {
    if from_user && rng.chance(8) {
        let text = rng.prose(language, length);
        let detail = rng.pick(&["auto", "low", "high"]);
        let image = format!("https://cdn.example.com/uploads/{}.png", rng.uuid());
        return Node::List(vec![
            object! {"type" => "text", "text" => text},
            object! {"type" => "image_url", "image_url" => object! {"url" => image, "detail" => detail}},
        ]);
    }
    Node::from(rng.prose(language, length))
}

/// One message of a conversation, of the conversation's kind, in the seed's key order.
fn message(
    rng: &mut Rng,
    kind: &str,
    language: Language,
    conversation_id: &str,
    role: &'static str,
) -> Node {
    let length = match role {
        "user" | "system" => rng.length(8, 400),
        _ => rng.length(40, 1_100),
    };
    let id = rng.uuid();
    let created = rng.timestamp();
    let external =
        (kind != "openai" && rng.chance(60)).then(|| format!("msg-{}", rng.between(1, 999_999)));
    let content = if kind == "openai" {
        openai_content(rng, language, length, role == "user")
    } else if rng.chance(5) {
        // Support messages may have no content (an attachment only).
        null()
    } else {
        Node::from(rng.prose(language, length))
    };
    let name = rng
        .chance(10)
        .then(|| rng.pick(&["Ana", "Bob", "Chen Wei", "Zoë"]).to_string());
    let mut entries = vec![
        ("id", Node::from(id)),
        ("type", kind.into()),
        ("externalId", optional(external)),
        ("externalUrl", null()),
        ("conversationId", conversation_id.into()),
        ("createdAt", created.clone().into()),
        ("updatedAt", created.into()),
        ("role", role.into()),
        ("content", content),
        ("name", optional(name)),
    ];
    let answering = role == "assistant" || role == "agent";
    let links = if answering && rng.chance(70) {
        links(rng, language)
    } else {
        null()
    };
    entries.push(("links", links));
    entries.push(("properties", properties(rng, language)));
    entries.push(("userProperties", null()));
    if kind == "openai" {
        let calls = if role == "assistant" && rng.chance(15) {
            tool_calls(rng)
        } else {
            null()
        };
        entries.push(("tool_calls", calls));
    }
    Node::Object(entries)
}

/// One conversation, about 8 KB on average once rendered (from a few hundred bytes to tens of
/// kilobytes), in the seed's key order.
pub fn conversation(rng: &mut Rng) -> Node {
    let kind = conversation_kind(rng);
    let language = Language::pick(rng);
    let id = rng.uuid();
    let external_id = (kind != "openai").then(|| format!("T-{}", rng.between(10_000, 99_999)));
    let external_url = external_id
        .as_ref()
        .filter(|_| rng.chance(50))
        .map(|ticket| format!("https://support.example.com/tickets/{ticket}"));
    let created = rng.timestamp();
    let updated = rng.timestamp();
    let integration = rng.chance(90).then(|| format!("int_{}", rng.between(1, 5)));
    let project = rng.chance(95).then(|| "proj_benchmark".to_string());
    let copilot_of = (kind == "support_copilot" && rng.chance(70)).then(|| rng.uuid());
    let user = user_properties(rng);
    let tags = match rng.between(0, 9) {
        0 => null(),
        1 => Node::List(Vec::new()),
        _ => Node::List(
            (0..rng.between(1, 3))
                .map(|_| {
                    Node::from(rng.pick(&["billing", "api", "setup", "bug", "割引", "facturación"]))
                })
                .collect(),
        ),
    };
    let visibility = match rng.between(0, 9) {
        0 => null(),
        1..=6 => Node::from("private"),
        _ => Node::from("public"),
    };
    // Most conversations are a question or two; a few run long.
    let turns = 1 + rng.length(0, 7);
    let mut roles: Vec<&'static str> = Vec::with_capacity(2 * turns + 1);
    if kind == "openai" && rng.chance(20) {
        roles.push("system");
    }
    for _ in 0..turns {
        roles.push("user");
        roles.push(if kind == "openai" {
            "assistant"
        } else {
            "agent"
        });
    }
    let messages: Vec<Node> = roles
        .into_iter()
        .map(|role| message(rng, kind, language, &id, role))
        .collect();
    let mut entries = vec![
        ("id", Node::from(id)),
        ("externalId", optional(external_id)),
        ("externalUrl", optional(external_url)),
        ("type", kind.into()),
        ("supportTicketConversationId", optional(copilot_of)),
        ("createdAt", created.into()),
        ("updatedAt", updated.into()),
        ("projectId", optional(project)),
        ("integrationId", optional(integration)),
        ("properties", properties(rng, language)),
        ("userProperties", user),
        ("tags", tags),
        ("visibility", visibility),
    ];
    if kind == "openai" {
        let openai_format: Vec<Node> = messages
            .iter()
            .map(|message| {
                Node::Object(vec![
                    ("role", message.field("role").cloned().unwrap_or_else(null)),
                    ("name", message.field("name").cloned().unwrap_or_else(null)),
                    (
                        "content",
                        message.field("content").cloned().unwrap_or_else(null),
                    ),
                    (
                        "tool_calls",
                        message.field("tool_calls").cloned().unwrap_or_else(null),
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
            object! {"label" => "inaccurate", "details" => rng.prose(Language::English, 60)},
        ])
    };
    let details = rng.chance(30).then(|| {
        let language = Language::pick(rng);
        rng.prose(language, 80)
    });
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

    #[test]
    fn the_data_varies_as_real_data_does_and_both_decoders_read_it() {
        let records = conversations(12, 600);
        let text: Vec<String> = records
            .iter()
            .map(|record| String::from_utf8_lossy(record).into_owned())
            .collect();
        let any = |needle: &str| text.iter().any(|record| record.contains(needle));
        for needle in [
            "\"type\":\"openai\"",
            "\"type\":\"support_ticket\"",
            "\"type\":\"support_copilot\"",
            "\"role\":\"system\"",
            "\"tool_calls\":[{",
            "\"image_url\":{",
            "\"content\":null",
            "\"visibility\":null",
            "\"userProperties\":null",
            "\"tags\":[]",
            "\"experiment\":{",
            "会話",
            "对话",
            "المحادثة",
            "conversación",
            "👍",
        ] {
            assert!(any(needle), "no record has {needle}");
        }
        let sizes: Vec<usize> = records.iter().map(Vec::len).collect();
        let (smallest, largest) = (
            sizes.iter().min().copied().unwrap_or(0),
            sizes.iter().max().copied().unwrap_or(0),
        );
        assert!(
            smallest < 2_500 && largest > 25_000,
            "{smallest}..{largest}"
        );
        for page in conversation_pages(&records) {
            serde_json::from_slice::<crate::floor::ConversationPage>(&page)
                .expect("the floor reads it");
            serde_json::from_slice::<inkeep_analytics::types::ConversationList>(&page)
                .expect("the SDK reads it");
        }
    }
}
