//! `SqliteMirror`: the first sync equals what the API served; a later one applies exactly what changed.

use std::collections::BTreeMap;
use std::path::Path;

use inkeep_analytics_mirror::{SqliteMirror, SyncOptions};
use rusqlite::Connection;

use crate::support::{self, Scratch, Served};

/// Asserts that the mirror holds exactly what was served: every record's `raw` byte for byte,
/// every message in its place, every feedback item with its conversation.
pub fn assert_mirrors(path: &Path, served: &Served) {
    let db = Connection::open(path).expect("the mirror opens");
    let conversations: BTreeMap<String, String> = rows(&db, "SELECT id, raw FROM conversations");
    assert_eq!(conversations, served.conversations);
    let feedback: BTreeMap<String, String> = rows(&db, "SELECT id, raw FROM feedback");
    assert_eq!(feedback, served.feedback);
    let mut statement = db
        .prepare("SELECT raw FROM messages WHERE conversation_id = ?1 ORDER BY position")
        .expect("a statement");
    let mut messages = 0;
    for (id, raw) in &served.conversations {
        let mirrored: Vec<String> = statement
            .query_map([id], |row| row.get(0))
            .expect("a query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let served_messages = support::messages_of(raw);
        messages += served_messages.len();
        assert_eq!(mirrored, served_messages, "the messages of {id}");
    }
    let total: i64 = db
        .query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
        .expect("a count");
    assert_eq!(
        total as usize, messages,
        "no message of a deleted conversation is left"
    );
    // Typed columns are read from the record.
    let (id, created_at, kind): (String, String, String) = db
        .query_row(
            "SELECT id, created_at, type FROM conversations ORDER BY id LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .expect("a row");
    let raw = &served.conversations[&id];
    assert_eq!(support::field(raw, "createdAt"), created_at.as_str());
    assert_eq!(support::field(raw, "type"), kind.as_str());
    // Every message's typed columns are its record's fields: a string's text decoded, an array
    // or object as the JSON sent (a first sync reads them on the listing's side, a later one
    // on the writer's).
    let mut statement = db
        .prepare("SELECT raw, id, role, created_at, content, links FROM messages")
        .expect("a statement");
    let mut rows = statement.query([]).expect("a query");
    while let Some(row) = rows.next().expect("a row") {
        let raw: String = row.get(0).expect("raw");
        let record: serde_json::Value = serde_json::from_str(&raw).expect("JSON");
        for (index, field) in [(1, "id"), (2, "role"), (3, "createdAt"), (4, "content")] {
            let column: Option<String> = row.get(index).expect("a column");
            let expected = match &record[field] {
                serde_json::Value::Null => None,
                serde_json::Value::String(text) => Some(text.clone()),
                other => Some(other.to_string()),
            };
            assert_eq!(column, expected, "{field} of {raw}");
        }
        let links: Option<String> = row.get(5).expect("links");
        let links =
            links.map(|links| serde_json::from_str::<serde_json::Value>(&links).expect("JSON"));
        assert_eq!(
            links,
            record
                .get("links")
                .filter(|links| !links.is_null())
                .cloned()
        );
    }
    let orphans: i64 = db
        .query_row(
            "SELECT count(*) FROM feedback WHERE conversation_id IS NULL OR conversation_id NOT IN (SELECT id FROM conversations)",
            [],
            |row| row.get(0),
        )
        .expect("a count");
    assert_eq!(
        orphans, 0,
        "every feedback item names a mirrored conversation"
    );
}

fn rows(db: &Connection, sql: &str) -> BTreeMap<String, String> {
    let mut statement = db.prepare(sql).expect("a statement");
    statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("a query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn counts(changes: &inkeep_analytics_mirror::Changes) -> [u64; 4] {
    [
        changes.inserted,
        changes.updated,
        changes.deleted,
        changes.unchanged,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_applies_exactly_what_the_api_changed() {
    let (_sandbox, client) = support::sandbox().await;
    let scratch = Scratch::new("sqlite");
    let path = scratch.path().join("nested").join("mirror.db");
    let mirror = SqliteMirror::new(&path);

    let before = support::served(&client).await;
    let first = mirror
        .sync(&client, &SyncOptions::default().page_size(40))
        .await
        .expect("the first sync");
    assert_eq!(
        counts(&first.conversations),
        [before.conversations.len() as u64, 0, 0, 0]
    );
    assert_eq!(
        counts(&first.feedback),
        [before.feedback.len() as u64, 0, 0, 0]
    );
    assert_eq!(
        first.api_totals.conversations,
        before.conversations.len() as u64
    );
    assert!(first.complete);
    assert_mirrors(&path, &before);
    let page_size: i64 = Connection::open(&path)
        .and_then(|db| db.pragma_query_value(None, "page_size", |row| row.get(0)))
        .expect("the page size");
    assert_eq!(page_size, 65536, "a new mirror has SQLite's largest pages");

    support::change_the_api(&client, &before).await;
    let after = support::served(&client).await;
    let second = mirror
        .sync(&client, &SyncOptions::default())
        .await
        .expect("the second sync");
    let expected = support::diff(&before.conversations, &after.conversations);
    assert_eq!(expected[..3], [2, 2, 3], "the changes made through the API");
    assert_eq!(counts(&second.conversations), expected);
    assert_eq!(
        counts(&second.feedback),
        support::diff(&before.feedback, &after.feedback)
    );
    assert!(second.feedback.inserted >= 1 && second.feedback.deleted >= 1);
    assert!(second.messages.inserted > 0 && second.messages.deleted > 0);
    assert_mirrors(&path, &after);

    let third = mirror
        .sync(&client, &SyncOptions::default())
        .await
        .expect("a sync with nothing changed");
    assert!(!third.changed(), "{third:?}");
    assert_eq!(
        third.conversations.unchanged,
        after.conversations.len() as u64
    );
    assert_eq!(third.feedback.unchanged, after.feedback.len() as u64);
    assert_mirrors(&path, &after);

    let db = Connection::open(&path).expect("the mirror opens");
    let runs: Vec<(i64, String)> = db
        .prepare("SELECT api_conversations, changes FROM sync_runs ORDER BY id")
        .expect("a statement")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("a query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(runs.len(), 3, "every run is recorded");
    assert_eq!(runs[1].0 as usize, after.conversations.len());
    let recorded: serde_json::Value = serde_json::from_str(&runs[1].1).expect("JSON");
    assert_eq!(recorded["conversations"]["deleted"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_views_answer_the_common_questions() {
    let (_sandbox, client) = support::sandbox().await;
    let scratch = Scratch::new("views");
    let path = scratch.path().join("mirror.db");
    SqliteMirror::new(&path)
        .sync(&client, &SyncOptions::default())
        .await
        .expect("a sync");
    let db = Connection::open(&path).expect("the mirror opens");
    let negative: i64 = db
        .query_row(
            "SELECT sum(negative) FROM negative_feedback_by_week",
            [],
            |row| row.get(0),
        )
        .expect("a sum");
    let expected: i64 = db
        .query_row(
            "SELECT count(*) FROM feedback WHERE type = 'negative'",
            [],
            |row| row.get(0),
        )
        .expect("a count");
    assert_eq!(negative, expected);
    assert!(negative > 0);
    let (url, citations): (String, i64) = db
        .query_row(
            "SELECT url, citations FROM cited_links LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("a cited link");
    assert!(url.starts_with("http"), "{url}");
    assert!(citations >= 1);
    let unanswered: i64 = db
        .query_row(
            "SELECT count(*) FROM conversations_without_answer",
            [],
            |row| row.get(0),
        )
        .expect("a count");
    let all: i64 = db
        .query_row("SELECT count(*) FROM conversations", [], |row| row.get(0))
        .expect("a count");
    assert!(unanswered < all);
}
