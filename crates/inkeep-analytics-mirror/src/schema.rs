//! The SQLite mirror's layout: its tables and their columns, indexes, views, version, and the migrations from older layouts.

use rusqlite::Connection;

use crate::columns::{CONVERSATION_COLUMNS, Column, FEEDBACK_COLUMNS, MESSAGE_COLUMNS};

/// Marks a database as a mirror (`PRAGMA application_id`): "IKAM".
pub(crate) const APPLICATION_ID: i32 = 0x494B_414D;

/// The layout of the mirrors this version writes and reads (`PRAGMA user_version`); an older
/// layout is migrated in the run, a newer one refused. (Raise it with every change of the
/// tables, with the step that brings the previous layout to it in `MIGRATIONS`.)
///
/// 2 added `raw_hash` to `conversations` and `feedback`.
pub const SCHEMA_VERSION: i64 = 2;

/// `MIGRATIONS[n]` brings a mirror of schema `n + 1` to schema `n + 2`, inside the run's transaction.
pub(crate) const MIGRATIONS: &[fn(&Connection) -> rusqlite::Result<()>] = &[add_raw_hashes];

/// A record kind's table, as the writer and the Parquet dataset see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Table {
    Conversations,
    Messages,
    Feedback,
}

impl Table {
    pub(crate) const ALL: [Table; 3] = [Table::Conversations, Table::Messages, Table::Feedback];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Conversations => "conversations",
            Table::Messages => "messages",
            Table::Feedback => "feedback",
        }
    }

    /// The columns that come before the documented fields (they place a row).
    pub(crate) fn leading(self) -> &'static [&'static str] {
        match self {
            Table::Messages => &["conversation_id", "position"],
            _ => &[],
        }
    }

    /// The documented fields.
    pub(crate) fn columns(self) -> &'static [Column] {
        match self {
            Table::Conversations => CONVERSATION_COLUMNS,
            Table::Messages => MESSAGE_COLUMNS,
            Table::Feedback => FEEDBACK_COLUMNS,
        }
    }

    /// The columns derived from the record that come after the documented fields.
    pub(crate) fn trailing(self) -> &'static [&'static str] {
        match self {
            Table::Feedback => &["conversation_id"],
            _ => &[],
        }
    }

    /// Whether the table keeps the hash of each row's `raw`: the tables of listed records,
    /// whose rows a run compares with what it lists. (A message is compared only when its
    /// conversation changed, with the bytes themselves.)
    pub(crate) fn hashed(self) -> bool {
        self != Table::Messages
    }

    /// Every column name of the data, `raw` last: the Parquet dataset's columns.
    pub(crate) fn column_names(self) -> Vec<&'static str> {
        let mut names: Vec<&str> = self.leading().to_vec();
        names.extend(self.columns().iter().map(|column| column.name));
        names.extend(self.trailing());
        names.push("raw");
        names
    }

    /// The SQLite table's columns: the data's, then `raw_hash` where the table keeps it.
    pub(crate) fn sqlite_column_names(self) -> Vec<&'static str> {
        let mut names = self.column_names();
        if self.hashed() {
            names.push("raw_hash");
        }
        names
    }

    /// The statement that inserts a row, its values bound in [`Table::sqlite_column_names`]' order.
    pub(crate) fn insert_sql(self) -> String {
        let names = self.sqlite_column_names();
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.name(),
            names.join(", "),
            placeholders.join(", ")
        )
    }

    /// The statement that rewrites the row with the same key (`id`; for messages, the
    /// conversation and position), its values bound as [`Table::insert_sql`]'s.
    pub(crate) fn update_sql(self) -> String {
        let assignments: Vec<String> = self
            .sqlite_column_names()
            .iter()
            .enumerate()
            .map(|(index, name)| format!("{name} = ?{}", index + 1))
            .collect();
        let key = match self {
            Table::Messages => "conversation_id = ?1 AND position = ?2",
            _ => "id = ?1",
        };
        format!(
            "UPDATE {} SET {} WHERE {key}",
            self.name(),
            assignments.join(", ")
        )
    }
}

/// The hash a run compares a listed record with: XXH3-128 of its bytes as sent, so that a
/// re-run tells a changed record without reading the mirrored one.
pub(crate) fn raw_hash(raw: &[u8]) -> [u8; 16] {
    twox_hash::XxHash3_128::oneshot(raw).to_le_bytes()
}

/// The statements that create the tables, the key conversations are looked up by, and the views
/// of the common analyses.
pub(crate) fn schema_sql() -> String {
    let mut sql = String::new();
    for table in Table::ALL {
        let mut definitions = Vec::new();
        for name in table.leading() {
            definitions.push(match *name {
                "conversation_id" => {
                    "conversation_id TEXT NOT NULL REFERENCES conversations (id)".to_string()
                }
                "position" => "position INTEGER NOT NULL".to_string(),
                other => format!("{other} TEXT"),
            });
        }
        for column in table.columns() {
            let not_null = if column.name == "id" && table != Table::Messages {
                " NOT NULL"
            } else {
                ""
            };
            definitions.push(format!("{} TEXT{not_null}", column.name));
        }
        for name in table.trailing() {
            definitions.push(format!("{name} TEXT"));
        }
        definitions.push("raw TEXT NOT NULL".to_string());
        if table.hashed() {
            definitions.push("raw_hash BLOB".to_string());
        }
        sql.push_str(&format!(
            "CREATE TABLE {} (\n  {}\n);\n",
            table.name(),
            definitions.join(",\n  ")
        ));
    }
    sql.push_str(
        "CREATE TABLE sync_runs (
  id INTEGER PRIMARY KEY,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  api_conversations INTEGER NOT NULL,
  api_feedback INTEGER NOT NULL,
  complete INTEGER NOT NULL,
  changes TEXT NOT NULL
);
-- Negative feedback per week (weeks start on Monday).
CREATE VIEW negative_feedback_by_week AS
  SELECT date(created_at, '-6 days', 'weekday 1') AS week, count(*) AS negative
  FROM feedback WHERE type = 'negative' GROUP BY week ORDER BY week;
-- Conversations without an answer: no message with content from the assistant or an agent.
CREATE VIEW conversations_without_answer AS
  SELECT c.* FROM conversations AS c
  WHERE NOT EXISTS (
    SELECT 1 FROM messages AS m
    WHERE m.conversation_id = c.id AND m.role IN ('assistant', 'agent')
      AND coalesce(m.content, '') NOT IN ('', '[]')
  );
-- The links the assistants cite most, with how many messages and conversations cite each.
CREATE VIEW cited_links AS
  SELECT json_extract(link.value, '$.url') AS url,
         count(*) AS citations,
         count(DISTINCT m.conversation_id) AS conversations
  FROM messages AS m, json_each(m.links) AS link
  WHERE m.links IS NOT NULL AND json_valid(m.links)
  GROUP BY url ORDER BY citations DESC, url;
",
    );
    sql
}

/// The indexes: on the keys, the foreign keys and the times. A new mirror creates them once the
/// conversations and their messages are in, which is faster than keeping them up to date row by
/// row, and before the feedback, which looks its messages up by id.
pub(crate) const INDEXES_SQL: &str = "CREATE UNIQUE INDEX conversations_id ON conversations (id);
CREATE INDEX conversations_created_at ON conversations (created_at);
CREATE INDEX conversations_updated_at ON conversations (updated_at);
CREATE UNIQUE INDEX messages_conversation_position ON messages (conversation_id, position);
CREATE INDEX messages_id ON messages (id);
CREATE INDEX messages_created_at ON messages (created_at);
CREATE UNIQUE INDEX feedback_id ON feedback (id);
CREATE INDEX feedback_message_id ON feedback (message_id);
CREATE INDEX feedback_conversation_id ON feedback (conversation_id);
CREATE INDEX feedback_created_at ON feedback (created_at);
";

/// Schema 1 to 2: adds `raw_hash` to the tables of listed records and fills it from `raw`.
fn add_raw_hashes(connection: &Connection) -> rusqlite::Result<()> {
    for table in Table::ALL.into_iter().filter(|table| table.hashed()) {
        let name = table.name();
        connection.execute_batch(&format!("ALTER TABLE {name} ADD COLUMN raw_hash BLOB"))?;
        let mut read = connection.prepare(&format!("SELECT rowid, raw FROM {name}"))?;
        let mut update =
            connection.prepare(&format!("UPDATE {name} SET raw_hash = ?2 WHERE rowid = ?1"))?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            let hash = raw_hash(row.get_ref(1)?.as_bytes()?);
            update.execute(rusqlite::params![rowid, &hash[..]])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_creates_and_its_views_run() {
        let connection = Connection::open_in_memory().expect("in memory");
        connection.execute_batch(&schema_sql()).expect("schema");
        connection.execute_batch(INDEXES_SQL).expect("indexes");
        for view in [
            "negative_feedback_by_week",
            "conversations_without_answer",
            "cited_links",
        ] {
            connection
                .prepare(&format!("SELECT * FROM {view}"))
                .and_then(|mut statement| statement.query([])?.next().map(|_| ()))
                .expect(view);
        }
    }

    #[test]
    fn schema_1_is_migrated_with_the_hashes_of_its_records() {
        let connection = Connection::open_in_memory().expect("in memory");
        // Schema 1: the same tables without `raw_hash`.
        let schema_1 = schema_sql().replace(",\n  raw_hash BLOB", "");
        connection.execute_batch(&schema_1).expect("schema 1");
        connection
            .execute_batch(
                r#"INSERT INTO conversations (id, raw) VALUES ('c1', '{"id":"c1"}');
                   INSERT INTO feedback (id, raw) VALUES ('f1', '{"id":"f1"}');"#,
            )
            .expect("rows");
        for step in MIGRATIONS {
            step(&connection).expect("a migration");
        }
        for (table, raw) in [
            ("conversations", r#"{"id":"c1"}"#),
            ("feedback", r#"{"id":"f1"}"#),
        ] {
            let hash: Vec<u8> = connection
                .query_row(&format!("SELECT raw_hash FROM {table}"), [], |row| {
                    row.get(0)
                })
                .expect("a hash");
            assert_eq!(hash, raw_hash(raw.as_bytes()), "{table}");
        }
    }
}
