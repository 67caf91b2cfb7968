//! What the tests share: a sandbox with its client, the API's records as it serves them, scratch folders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::TryStreamExt;
use inkeep_analytics::Client;
use inkeep_analytics_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use serde_json::Value;
use serde_json::value::RawValue;

/// A sandbox small enough to be quick, large enough for several pages of 100 and several months.
pub const CONVERSATIONS: usize = 150;

pub async fn sandbox() -> (Sandbox, Client) {
    let sandbox = Sandbox::start_with(SandboxConfig {
        seed: 23,
        conversations: CONVERSATIONS,
        ..SandboxConfig::default()
    })
    .await
    .expect("the sandbox starts");
    let client = Client::builder()
        .api_key(sandbox.api_key())
        .base_url(sandbox.base_url())
        .build()
        .expect("a client");
    (sandbox, client)
}

/// A client without retries, and the sandbox answering 40% of requests with 502 from now on:
/// a run through it fails somewhere in the middle, at a point that varies from run to run.
pub fn failing_at_random(sandbox: &Sandbox) -> Client {
    sandbox
        .set_faults(FaultConfig {
            bad_gateway: 0.4,
            ..FaultConfig::default()
        })
        .expect("faults");
    Client::builder()
        .api_key(sandbox.api_key())
        .base_url(sandbox.base_url())
        .max_retries(0)
        .build()
        .expect("a client")
}

/// Every record the API lists, by id, as the bytes it sent.
#[derive(Debug, PartialEq)]
pub struct Served {
    pub conversations: BTreeMap<String, String>,
    pub feedback: BTreeMap<String, String>,
}

pub async fn served(client: &Client) -> Served {
    let mut conversations = BTreeMap::new();
    let mut pages = client.list_conversations().raw_pages();
    while let Some(page) = pages.try_next().await.expect("a page") {
        for record in page.conversations {
            let id = inkeep_analytics::listing::raw_record_id(&record).expect("an id");
            conversations.insert(id, record.get().to_string());
        }
    }
    let mut feedback = BTreeMap::new();
    let mut pages = client.list_feedback().raw_pages();
    while let Some(page) = pages.try_next().await.expect("a page") {
        for record in page
            .positive_feedback
            .into_iter()
            .chain(page.negative_feedback)
        {
            let id = inkeep_analytics::listing::raw_record_id(&record).expect("an id");
            feedback.insert(id, record.get().to_string());
        }
    }
    Served {
        conversations,
        feedback,
    }
}

/// The messages of a conversation as served, in order, each as its bytes.
pub fn messages_of(conversation: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Messages<'a> {
        #[serde(borrow)]
        messages: Vec<&'a RawValue>,
    }
    let parsed: Messages<'_> = serde_json::from_str(conversation).expect("a conversation");
    parsed
        .messages
        .iter()
        .map(|message| message.get().to_string())
        .collect()
}

pub fn field(record: &str, name: &str) -> Value {
    let value: Value = serde_json::from_str(record).expect("JSON");
    value[name].clone()
}

/// Inserted, updated, deleted, unchanged between two listings.
pub fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> [u64; 4] {
    let mut counts = [0u64; 4];
    for (id, raw) in after {
        match before.get(id) {
            None => counts[0] += 1,
            Some(old) if old != raw => counts[1] += 1,
            Some(_) => counts[3] += 1,
        }
    }
    counts[2] = before.keys().filter(|id| !after.contains_key(*id)).count() as u64;
    counts
}

/// A fresh folder under the system's temporary one, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "inkeep-mirror-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a scratch folder");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Changes the sandbox through the API: updates two OpenAI conversations (new messages), deletes
/// three conversations that have no feedback, logs two new conversations, logs feedback on a
/// message of one of the new ones and deletes one feedback item.
pub async fn change_the_api(client: &Client, before: &Served) {
    let with_feedback: Vec<String> = before
        .feedback
        .values()
        .filter_map(|raw| {
            field(raw, "conversation")["id"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    let openai: Vec<&String> = before
        .conversations
        .iter()
        .filter(|(id, raw)| field(raw, "type") == "openai" && !with_feedback.contains(id))
        .map(|(id, _)| id)
        .collect();
    for id in &openai[..2] {
        let conversation: inkeep_analytics::types::CreateConversation =
            serde_json::from_value(serde_json::json!({
                "id": id,
                "type": "openai",
                "messages": [
                    {"role": "user", "content": "Is the mirror incremental?"},
                    {"role": "assistant", "content": "Yes: it writes only what changed."},
                ],
            }))
            .expect("a conversation");
        client
            .log_conversation(conversation)
            .await
            .expect("an update");
    }
    for id in &openai[2..5] {
        client.delete_conversation(id).await.expect("a delete");
    }
    let mut new_message = String::new();
    for n in 0..2 {
        let conversation: inkeep_analytics::types::CreateConversation =
            serde_json::from_value(serde_json::json!({
                "id": format!("mirror-new-{n}"),
                "type": "support_ticket",
                "createdAt": "2025-07-04T10:00:00.000Z",
                "messages": [
                    {"id": format!("mirror-new-{n}-m0"), "role": "customer", "content": "Where is my export?"},
                    {"id": format!("mirror-new-{n}-m1"), "role": "agent", "content": null},
                ],
            }))
            .expect("a conversation");
        client
            .log_conversation(conversation)
            .await
            .expect("an insert");
        new_message = format!("mirror-new-{n}-m0");
    }
    let feedback = inkeep_analytics::types::FeedbackInput::negative(new_message)
        .with_id("mirror-new-feedback")
        .expect("an id");
    client.log_feedback(feedback).await.expect("feedback");
    let gone = before.feedback.keys().next().expect("some feedback");
    client.delete_feedback(gone).await.expect("a delete");
}

/// The partitions (`month=YYYY-MM`) of the conversations that differ between two listings.
pub fn diff_months(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut months = Vec::new();
    for (id, raw) in before.iter().chain(after.iter()) {
        if before.get(id) != after.get(id) {
            let created_at = field(raw, "createdAt");
            if let Some(created_at) = created_at.as_str() {
                months.push(format!("month={}", &created_at[..7]));
            }
        }
    }
    months
}
