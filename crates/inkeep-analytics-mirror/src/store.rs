//! The SQLite mirror: its schema and version, the checks before a file is touched, and the writer that applies one run in one transaction.
//!
//! A run compares each listed record with the mirrored one in one indexed lookup (its bytes), and
//! writes only what differs: a re-run with nothing changed reads and writes no record. The ids
//! seen in the run go to temporary tables, so that what the API no longer lists is deleted at the
//! end with two statements. Nothing is visible to readers, and nothing survives a killed process,
//! until the one `COMMIT`: SQLite's rollback journal puts the previous mirror back.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params_from_iter};
use serde_json::value::RawValue;

use crate::columns::{
    CONVERSATION_COLUMNS, Column, FEEDBACK_COLUMNS, Fields, MESSAGE_COLUMNS, MONTH_SQL, month_of,
};
use crate::error::{Error, Result};
use crate::files;
use crate::report::{ApiTotals, Report};

/// Marks a database as a mirror (`PRAGMA application_id`): "IKAM".
const APPLICATION_ID: i32 = 0x494B_414D;

/// The layout of the mirrors this version writes and reads (`PRAGMA user_version`); an older
/// layout is migrated in the run, a newer one refused. (Raise it with every change of the
/// tables, with the statements that bring the previous layout to it in `MIGRATIONS`.)
pub const SCHEMA_VERSION: i64 = 1;

/// `MIGRATIONS[n]` brings a mirror of schema `n + 1` to schema `n + 2`, inside the run's transaction.
const MIGRATIONS: &[&str] = &[];

/// How long a run waits for another process that holds the mirror (another sync, a reader in
/// the middle of a write) before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite's page cache for a run: the indexes of 20,000 conversations and their messages fit.
const CACHE_KIB: i64 = 16 * 1024;

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

    /// Every column name, `raw` last.
    pub(crate) fn column_names(self) -> Vec<&'static str> {
        let mut names: Vec<&str> = self.leading().to_vec();
        names.extend(self.columns().iter().map(|column| column.name));
        names.extend(self.trailing());
        names.push("raw");
        names
    }
}

/// The statements that create the tables, their indexes and the views of the common analyses.
fn schema_sql() -> String {
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
        sql.push_str(&format!(
            "CREATE TABLE {} (\n  {}\n);\n",
            table.name(),
            definitions.join(",\n  ")
        ));
    }
    // The key messages refer to is indexed from the start: SQLite checks foreign keys
    // (libsqlite3-sys builds it with them on), and a reference needs a unique parent key.
    sql.push_str(
        "CREATE UNIQUE INDEX conversations_id ON conversations (id);
CREATE TABLE sync_runs (
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

/// The other indexes: on the keys, the foreign keys and the times. A new mirror creates them once its
/// rows are in, which is faster than keeping them up to date row by row.
const INDEXES_SQL: &str = "CREATE INDEX conversations_created_at ON conversations (created_at);
CREATE INDEX conversations_updated_at ON conversations (updated_at);
CREATE UNIQUE INDEX messages_conversation_position ON messages (conversation_id, position);
CREATE INDEX messages_id ON messages (id);
CREATE INDEX messages_created_at ON messages (created_at);
CREATE UNIQUE INDEX feedback_id ON feedback (id);
CREATE INDEX feedback_message_id ON feedback (message_id);
CREATE INDEX feedback_conversation_id ON feedback (conversation_id);
CREATE INDEX feedback_created_at ON feedback (created_at);
";

/// What the file at a path is, read before anything is written to it.
enum Found {
    /// No file, an empty file or an empty database: the schema is created in the run.
    New,
    /// A mirror of this layout, or an older one that the run migrates.
    Mirror { version: i64 },
}

/// Opens the mirror at `path` for a run, refusing without a write anything that is not one.
pub(crate) fn open(path: &Path) -> Result<Writer> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(Error::NotAMirror {
                path: path.to_path_buf(),
                reason: "it is a directory".into(),
            });
        }
        Ok(metadata) if metadata.len() > 0 => check_header(path)?,
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                files::create_dir_all(parent)?;
            }
            files::create_if_missing(path)?;
        }
        Err(error) => return Err(Error::io("read", path)(error)),
    }
    let connection = Connection::open(path).map_err(Error::sqlite(path))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(Error::sqlite(path))?;
    let found = inspect(&connection, path)?;
    Writer::new(connection, path.to_path_buf(), found)
}

/// Refuses a file that does not start as an SQLite database does, reading only its header.
fn check_header(path: &Path) -> Result<()> {
    let mut header = [0u8; 16];
    let read = std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut header))
        .map(|()| header == *b"SQLite format 3\0");
    match read {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::NotAMirror {
            path: path.to_path_buf(),
            reason: "it is not an SQLite database".into(),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Err(Error::NotAMirror {
            path: path.to_path_buf(),
            reason: "it is not an SQLite database".into(),
        }),
        Err(error) => Err(Error::io("read", path)(error)),
    }
}

/// Reads the database's marks (no write): whose it is and which layout it has.
fn inspect(connection: &Connection, path: &Path) -> Result<Found> {
    let application_id: i32 = connection
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(Error::sqlite(path))?;
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(Error::sqlite(path))?;
    if application_id == APPLICATION_ID {
        if version > SCHEMA_VERSION {
            return Err(Error::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version < 1 {
            return Err(Error::NotAMirror {
                path: path.to_path_buf(),
                reason: format!(
                    "its mirror schema version {version} is not one this program wrote"
                ),
            });
        }
        return Ok(Found::Mirror { version });
    }
    let objects: i64 = connection
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(Error::sqlite(path))?;
    if application_id == 0 && objects == 0 {
        Ok(Found::New)
    } else {
        Err(Error::NotAMirror {
            path: path.to_path_buf(),
            reason: "it is an SQLite database of another program".into(),
        })
    }
}

/// A run's writer: owns the connection, applies records, and commits once.
pub(crate) struct Writer {
    connection: Connection,
    path: PathBuf,
    found: Found,
    report: Report,
    /// The partitions (table, month) whose rows changed in this run; `None` is the partition of
    /// records whose `createdAt` is not a date.
    dirty: BTreeSet<(Table, Option<String>)>,
    in_transaction: bool,
    /// The mirror started the run empty: every record is new (no lookups), and the indexes are
    /// created after the rows.
    empty: bool,
}

impl Writer {
    fn new(connection: Connection, path: PathBuf, found: Found) -> Result<Self> {
        connection.set_prepared_statement_cache_capacity(64);
        connection
            .execute_batch(&format!(
                "PRAGMA cache_size = -{CACHE_KIB}; PRAGMA temp_store = MEMORY;"
            ))
            .map_err(Error::sqlite(&path))?;
        Ok(Self {
            connection,
            path,
            found,
            report: Report {
                started_at: crate::report::now(),
                ..Report::default()
            },
            dirty: BTreeSet::new(),
            in_transaction: false,
            empty: false,
        })
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.connection
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn report_mut(&mut self) -> &mut Report {
        &mut self.report
    }

    /// The partitions whose rows changed, in order.
    pub(crate) fn dirty(&self) -> &BTreeSet<(Table, Option<String>)> {
        &self.dirty
    }

    fn sql(&self) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        Error::sqlite(&self.path)
    }

    /// Starts the run's transaction (taking the write lock at once), creating or migrating the
    /// schema inside it, so that a killed first run leaves an empty file, not half a schema.
    pub(crate) fn begin(&mut self) -> Result<()> {
        self.connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(Error::sqlite(&self.path))?;
        self.in_transaction = true;
        match self.found {
            Found::New => {
                self.connection
                    .execute_batch(&schema_sql())
                    .map_err(Error::sqlite(&self.path))?;
                self.empty = true;
                self.connection
                    .pragma_update(None, "application_id", APPLICATION_ID)
                    .map_err(Error::sqlite(&self.path))?;
                self.connection
                    .pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(Error::sqlite(&self.path))?;
            }
            Found::Mirror { version } => {
                for from in version..SCHEMA_VERSION {
                    let step = usize::try_from(from - 1)
                        .ok()
                        .and_then(|index| MIGRATIONS.get(index));
                    let Some(step) = step else {
                        return Err(Error::NotAMirror {
                            path: self.path.clone(),
                            reason: format!("no migration from mirror schema {from}"),
                        });
                    };
                    self.connection
                        .execute_batch(step)
                        .map_err(Error::sqlite(&self.path))?;
                }
                if version < SCHEMA_VERSION {
                    self.connection
                        .pragma_update(None, "user_version", SCHEMA_VERSION)
                        .map_err(Error::sqlite(&self.path))?;
                }
            }
        }
        self.connection
            .execute_batch(
                "CREATE TEMP TABLE seen_conversations (id TEXT PRIMARY KEY) WITHOUT ROWID;
                 CREATE TEMP TABLE seen_feedback (id TEXT PRIMARY KEY) WITHOUT ROWID;",
            )
            .map_err(Error::sqlite(&self.path))?;
        Ok(())
    }

    /// Creates the indexes of a mirror that started empty, once its rows are in.
    pub(crate) fn create_deferred_indexes(&mut self) -> Result<()> {
        if self.empty {
            self.connection
                .execute_batch(INDEXES_SQL)
                .map_err(Error::sqlite(&self.path))?;
            self.empty = false;
        }
        Ok(())
    }

    /// Remembers that the run listed `id`; `false` when it already had (offsets shifted between pages).
    fn first_sighting(&self, seen: &str, id: &str) -> Result<bool> {
        let inserted = self
            .connection
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO temp.{seen} (id) VALUES (?1)"
            ))
            .and_then(|mut statement| statement.execute([id]))
            .map_err(self.sql())?;
        Ok(inserted == 1)
    }

    /// Whether the mirror holds a record with `id` and, if so, whether its bytes are `raw`, and
    /// its `created_at` (to know which partition it leaves when it changes).
    fn compare(&self, table: Table, id: &str, raw: &str) -> Result<Option<(bool, Option<String>)>> {
        if self.empty {
            return Ok(None);
        }
        self.connection
            .prepare_cached(&format!(
                "SELECT raw, created_at FROM {} WHERE id = ?1",
                table.name()
            ))
            .and_then(|mut statement| {
                statement
                    .query_row([id], |row| {
                        let same = row.get_ref(0)?.as_str()? == raw;
                        Ok((same, row.get::<_, Option<String>>(1)?))
                    })
                    .optional()
            })
            .map_err(self.sql())
    }

    fn mark(&mut self, table: Table, created_at: Option<&str>) {
        let month = month_of(created_at).map(str::to_string);
        self.dirty.insert((table, month));
    }

    /// Applies one conversation as listed.
    pub(crate) fn conversation(&mut self, record: &RawValue) -> Result<()> {
        let fields = Fields::of(record).ok_or_else(|| Error::Record {
            what: "a conversation",
            reason: "it is not a JSON object".into(),
        })?;
        let id = fields.text("id").ok_or_else(|| Error::Record {
            what: "a conversation",
            reason: "it has no id".into(),
        })?;
        if !self.first_sighting("seen_conversations", &id)? {
            return Ok(());
        }
        let created_at = fields.text("createdAt");
        match self.compare(Table::Conversations, &id, record.get())? {
            Some((true, _)) => {
                self.report.conversations.unchanged += 1;
                return Ok(());
            }
            Some((false, old_created_at)) => {
                self.mark(Table::Conversations, old_created_at.as_deref());
                self.write_row(Table::Conversations, true, &[], &fields, &[], record)?;
                self.report.conversations.updated += 1;
            }
            None => {
                self.write_row(Table::Conversations, false, &[], &fields, &[], record)?;
                self.report.conversations.inserted += 1;
            }
        }
        self.mark(Table::Conversations, created_at.as_deref());
        self.messages(&id, &fields)
    }

    /// Brings the messages of a new or changed conversation in line with the listed ones,
    /// position by position, writing only the rows that differ.
    fn messages(&mut self, conversation_id: &str, conversation: &Fields<'_>) -> Result<()> {
        let listed: Vec<&RawValue> = match conversation.raw("messages") {
            Some(messages) if messages.get() != "null" => serde_json::from_str(messages.get())
                .map_err(|error| Error::Record {
                    what: "a conversation",
                    reason: format!("its messages are not a list: {error}"),
                })?,
            _ => Vec::new(),
        };
        let mirrored: Vec<(String, Option<String>)> = if self.empty {
            Vec::new()
        } else {
            self.mirrored_messages(conversation_id)?
        };
        for (position, message) in listed.iter().enumerate() {
            let fields = Fields::of(message).ok_or_else(|| Error::Record {
                what: "a conversation",
                reason: "one of its messages is not a JSON object".into(),
            })?;
            let place = [
                Some(std::borrow::Cow::Borrowed(conversation_id)),
                Some(std::borrow::Cow::Owned(position.to_string())),
            ];
            match mirrored.get(position) {
                Some((raw, _)) if raw == message.get() => {}
                Some((_, old_created_at)) => {
                    self.mark(Table::Messages, old_created_at.as_deref());
                    self.write_row(Table::Messages, true, &place, &fields, &[], message)?;
                    self.report.messages.updated += 1;
                    self.mark(Table::Messages, fields.text("createdAt").as_deref());
                }
                None => {
                    self.write_row(Table::Messages, false, &place, &fields, &[], message)?;
                    self.report.messages.inserted += 1;
                    self.mark(Table::Messages, fields.text("createdAt").as_deref());
                }
            }
        }
        if mirrored.len() > listed.len() {
            for (_, old_created_at) in &mirrored[listed.len()..] {
                self.mark(Table::Messages, old_created_at.as_deref());
            }
            let removed = self
                .connection
                .prepare_cached(
                    "DELETE FROM messages WHERE conversation_id = ?1 AND position >= ?2",
                )
                .and_then(|mut statement| {
                    statement.execute(rusqlite::params![conversation_id, listed.len() as i64])
                })
                .map_err(Error::sqlite(&self.path))?;
            self.report.messages.deleted += removed as u64;
        }
        Ok(())
    }

    /// The mirrored messages of a conversation in order: their bytes and `created_at`.
    fn mirrored_messages(&self, conversation_id: &str) -> Result<Vec<(String, Option<String>)>> {
        self.connection
            .prepare_cached(
                "SELECT raw, created_at FROM messages WHERE conversation_id = ?1 ORDER BY position",
            )
            .and_then(|mut statement| {
                statement
                    .query_map([conversation_id], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            })
            .map_err(self.sql())
    }

    /// Applies one feedback item as listed.
    pub(crate) fn feedback(&mut self, record: &RawValue) -> Result<()> {
        let fields = Fields::of(record).ok_or_else(|| Error::Record {
            what: "a feedback item",
            reason: "it is not a JSON object".into(),
        })?;
        let id = fields.text("id").ok_or_else(|| Error::Record {
            what: "a feedback item",
            reason: "it has no id".into(),
        })?;
        if !self.first_sighting("seen_feedback", &id)? {
            return Ok(());
        }
        let created_at = fields.text("createdAt");
        let previous = self.compare(Table::Feedback, &id, record.get())?;
        if let Some((true, _)) = previous {
            self.report.feedback.unchanged += 1;
            return Ok(());
        }
        let conversation_id = self.conversation_of_feedback(&fields)?;
        let trailing = [conversation_id.map(std::borrow::Cow::Owned)];
        match previous {
            Some((_, old_created_at)) => {
                self.mark(Table::Feedback, old_created_at.as_deref());
                self.write_row(Table::Feedback, true, &[], &fields, &trailing, record)?;
                self.report.feedback.updated += 1;
            }
            None => {
                self.write_row(Table::Feedback, false, &[], &fields, &trailing, record)?;
                self.report.feedback.inserted += 1;
            }
        }
        self.mark(Table::Feedback, created_at.as_deref());
        Ok(())
    }

    /// The conversation a feedback item belongs to: the one it embeds, else its message's, else
    /// the one the mirror holds its message in.
    fn conversation_of_feedback(&self, feedback: &Fields<'_>) -> Result<Option<String>> {
        if let Some(id) = feedback
            .raw("conversation")
            .and_then(inkeep_analytics::listing::raw_record_id)
        {
            return Ok(Some(id));
        }
        if let Some(id) = feedback
            .raw("message")
            .and_then(Fields::of)
            .and_then(|message| message.text("conversationId").map(|id| id.into_owned()))
        {
            return Ok(Some(id));
        }
        let Some(message_id) = feedback.text("messageId") else {
            return Ok(None);
        };
        self.connection
            .prepare_cached("SELECT conversation_id FROM messages WHERE id = ?1 LIMIT 1")
            .and_then(|mut statement| {
                statement
                    .query_row([message_id.as_ref()], |row| row.get(0))
                    .optional()
            })
            .map_err(self.sql())
    }

    /// Inserts a row, or updates the one with the same key (`id`; for messages, the conversation and position).
    fn write_row(
        &self,
        table: Table,
        update: bool,
        leading: &[Option<std::borrow::Cow<'_, str>>],
        fields: &Fields<'_>,
        trailing: &[Option<std::borrow::Cow<'_, str>>],
        record: &RawValue,
    ) -> Result<()> {
        let mut values: Vec<Option<std::borrow::Cow<'_, str>>> = leading.to_vec();
        values.extend(table.columns().iter().map(|column| fields.value(column)));
        values.extend(trailing.iter().cloned());
        values.push(Some(std::borrow::Cow::Borrowed(record.get())));
        let names = table.column_names();
        let sql = if update {
            let assignments: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(index, name)| format!("{name} = ?{}", index + 1))
                .collect();
            let key = match table {
                Table::Messages => "conversation_id = ?1 AND position = ?2".to_string(),
                _ => "id = ?1".to_string(),
            };
            format!(
                "UPDATE {} SET {} WHERE {key}",
                table.name(),
                assignments.join(", ")
            )
        } else {
            let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
            format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.name(),
                names.join(", "),
                placeholders.join(", ")
            )
        };
        self.connection
            .prepare_cached(&sql)
            .and_then(|mut statement| statement.execute(params_from_iter(values.iter())))
            .map_err(self.sql())?;
        Ok(())
    }

    /// Ends the conversations: when the listing was complete, deletes the conversations (and
    /// their messages) that it no longer has.
    pub(crate) fn end_conversations(&mut self, complete: bool) -> Result<()> {
        if !complete {
            return Ok(());
        }
        let gone = "SELECT id FROM temp.seen_conversations";
        self.mark_months(Table::Conversations, &format!("id NOT IN ({gone})"))?;
        self.mark_months(Table::Messages, &format!("conversation_id NOT IN ({gone})"))?;
        let messages = self
            .connection
            .execute(
                &format!("DELETE FROM messages WHERE conversation_id NOT IN ({gone})"),
                [],
            )
            .map_err(self.sql())?;
        let conversations = self
            .connection
            .execute(
                &format!("DELETE FROM conversations WHERE id NOT IN ({gone})"),
                [],
            )
            .map_err(self.sql())?;
        self.report.messages.deleted += messages as u64;
        self.report.conversations.deleted += conversations as u64;
        Ok(())
    }

    /// Ends the feedback: when the listing was complete, deletes the items it no longer has.
    pub(crate) fn end_feedback(&mut self, complete: bool) -> Result<()> {
        if !complete {
            return Ok(());
        }
        let gone = "id NOT IN (SELECT id FROM temp.seen_feedback)";
        self.mark_months(Table::Feedback, gone)?;
        let feedback = self
            .connection
            .execute(&format!("DELETE FROM feedback WHERE {gone}"), [])
            .map_err(self.sql())?;
        self.report.feedback.deleted += feedback as u64;
        Ok(())
    }

    /// Marks the partitions of the rows `condition` selects.
    fn mark_months(&mut self, table: Table, condition: &str) -> Result<()> {
        let months: Vec<Option<String>> = self
            .connection
            .prepare(&format!(
                "SELECT DISTINCT {MONTH_SQL} FROM {} WHERE {condition}",
                table.name()
            ))
            .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
            .map_err(self.sql())?;
        for month in months {
            self.dirty.insert((table, month));
        }
        Ok(())
    }

    /// Records the run and commits it: the one moment the new mirror replaces the previous one.
    pub(crate) fn commit(mut self, totals: ApiTotals, complete: bool) -> Result<Report> {
        let messages: i64 = self
            .connection
            .query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
            .map_err(self.sql())?;
        let written = self.report.messages.inserted + self.report.messages.updated;
        self.report.messages.unchanged =
            u64::try_from(messages).unwrap_or(0).saturating_sub(written);
        self.report.api_totals = totals;
        self.report.complete = complete;
        self.report.finished_at = crate::report::now();
        let changes = serde_json::to_string(&self.report).unwrap_or_default();
        self.connection
            .execute(
                "INSERT INTO sync_runs (started_at, finished_at, api_conversations, api_feedback, complete, changes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    self.report.started_at,
                    self.report.finished_at,
                    i64::try_from(totals.conversations).unwrap_or(i64::MAX),
                    i64::try_from(totals.feedback).unwrap_or(i64::MAX),
                    complete,
                    changes
                ],
            )
            .map_err(self.sql())?;
        self.connection
            .execute_batch("COMMIT")
            .map_err(Error::sqlite(&self.path))?;
        self.in_transaction = false;
        Ok(std::mem::take(&mut self.report))
    }
}

impl Drop for Writer {
    /// A run that did not commit leaves the previous mirror: its transaction is rolled back.
    fn drop(&mut self) {
        if self.in_transaction {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
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
}
