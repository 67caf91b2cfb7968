//! The Parquet dataset's state: what a later run needs to know which partitions changed and to rebuild them, and nothing more.
//!
//! The state used to be a whole SQLite mirror (every typed column, each message's
//! row and `raw` again, the secondary indexes: 541 MB for 20,000 conversations), and filling it
//! was half of a first Parquet sync's CPU. The state now keeps, in SQLite (so that it survives a
//! crash with SQLite's guarantees, not ours):
//!
//! - each conversation's id, month, hash and `raw` as sent (a changed partition is rebuilt by
//!   encoding the raws again: the typed columns come from them);
//! - each message's conversation, position, id, month and hash (to find the conversations of a
//!   changed messages partition, a feedback item's conversation, and to count as `--db` does);
//! - each feedback item's id, month, hash, conversation id and `raw`.
//!
//! The file is marked as this state ([`APPLICATION_ID`], [`STATE_VERSION`]); a dataset written by
//! an older version, whose state is a whole mirror (the SQLite mirror's application id), is
//! rebuilt from the API on the next run, which says so; anything else is refused untouched.
//!
//! As in the SQLite mirror, the run is one transaction committed last, a new state is written as
//! `FILE.partial` without journal then renamed into place ([`RunFile`]), and the writer compares
//! each listed record's hash with the ids and hashes loaded at the start ([`Known`]).

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::Connection;

use crate::columns::month_of;
use crate::columns::{CONVERSATION_COLUMNS, FEEDBACK_COLUMNS, MESSAGE_COLUMNS};
use crate::database::{self, AtPath, RunFile};
use crate::error::{Error, Result};
use crate::known::{Known, Sighting};
use crate::record::{ConversationRow, FeedbackRow, Listed, MessageRow, Value};
use crate::report::{ApiTotals, Report};
use crate::schema::{self, Table, raw_hash};
use crate::store;
use crate::sync::Target;

/// Marks a database as a Parquet dataset's state (`PRAGMA application_id`): "IKAP".
pub(crate) const APPLICATION_ID: i32 = 0x494B_4150;

/// The layout of the state this version writes (`PRAGMA user_version`); a newer one is refused.
pub(crate) const STATE_VERSION: i64 = 1;

/// SQLite's page cache for a run (the run reads little: hashes are compared in memory).
const CACHE_KIB: i64 = 8 * 1024;

const SCHEMA_SQL: &str = "CREATE TABLE conversations (
  id TEXT NOT NULL,
  month TEXT,
  hash BLOB NOT NULL,
  raw TEXT NOT NULL
);
CREATE TABLE messages (
  conversation_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  id TEXT,
  month TEXT,
  hash BLOB NOT NULL
);
CREATE TABLE feedback (
  id TEXT NOT NULL,
  month TEXT,
  hash BLOB NOT NULL,
  conversation_id TEXT,
  raw TEXT NOT NULL
);
CREATE TABLE sync_runs (
  id INTEGER PRIMARY KEY,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  changes TEXT NOT NULL
);
";

/// Created after a new state's conversations are in (faster than keeping them row by row), and
/// before its feedback, which looks messages up by id.
const INDEXES_SQL: &str = "CREATE UNIQUE INDEX conversations_id ON conversations (id);
CREATE INDEX conversations_month ON conversations (month);
CREATE UNIQUE INDEX messages_place ON messages (conversation_id, position);
CREATE INDEX messages_id ON messages (id);
CREATE INDEX messages_month ON messages (month);
CREATE UNIQUE INDEX feedback_id ON feedback (id);
CREATE INDEX feedback_month ON feedback (month);
";

/// What the state file was when the run began.
enum Found {
    /// No state: every record of the run is new.
    New,
    /// A state of this layout.
    State,
}

/// Opens the state at `path`, refusing without a write anything that is not one; a whole
/// mirror written by an older version as the state is replaced by a new state in this run.
pub(super) fn open(path: &Path) -> Result<State> {
    if let AtPath::Database(connection) = database::look(path)? {
        match inspect(&connection, path)? {
            Found::State => {
                return State::new(
                    RunFile::existing(connection, path, CACHE_KIB)?,
                    Found::State,
                );
            }
            Found::New => drop(connection),
        }
    }
    State::new(RunFile::create(path, CACHE_KIB)?, Found::New)
}

/// Reads the database's marks (no write): whose it is and which layout it has.
fn inspect(connection: &Connection, path: &Path) -> Result<Found> {
    let marks = database::marks(connection, path)?;
    if marks.application_id == APPLICATION_ID {
        marks.version_of_ours(path, "state", STATE_VERSION)?;
        return Ok(Found::State);
    }
    if marks.application_id == schema::APPLICATION_ID {
        // Every partition is written again from the API, and partitions the API no longer has
        // are removed: the dataset ends as a first sync would write it.
        tracing::warn!(
            state = %path.display(),
            "the dataset was written by an older version (its state is a whole mirror); \
             this run rebuilds the state and every partition from the API"
        );
        return Ok(Found::New);
    }
    marks.refuse_unless_blank(path)?;
    Ok(Found::New)
}

/// A run's writer of the state: owns the connection, applies records, and commits once.
pub(crate) struct State {
    file: RunFile,
    found: Found,
    report: Report,
    /// The partitions (table, month) whose rows changed in this run.
    dirty: BTreeSet<(Table, Option<String>)>,
    /// The state started the run empty: every record is new (nothing is marked dirty: every
    /// partition is written), and the indexes are created after the conversations.
    empty: bool,
    conversations: Known<Option<String>>,
    feedback: Known<Option<String>>,
}

impl State {
    fn new(file: RunFile, found: Found) -> Result<Self> {
        Ok(Self {
            file,
            found,
            report: Report {
                started_at: crate::report::now(),
                ..Report::default()
            },
            dirty: BTreeSet::new(),
            empty: false,
            conversations: Known::default(),
            feedback: Known::default(),
        })
    }

    pub(super) fn connection(&self) -> &Connection {
        &self.file.connection
    }

    pub(super) fn path(&self) -> &Path {
        &self.file.path
    }

    pub(super) fn report_mut(&mut self) -> &mut Report {
        &mut self.report
    }

    /// Whether the state held nothing when the run began (known once the run began).
    pub(super) fn starts_empty(&self) -> bool {
        self.empty
    }

    /// The partitions whose rows changed, in order.
    pub(super) fn dirty(&self) -> &BTreeSet<(Table, Option<String>)> {
        &self.dirty
    }

    fn sql(&self) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        self.file.sql()
    }

    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        self.file
            .connection
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(params))
            .map_err(self.sql())
    }

    fn mark(&mut self, table: Table, month: Option<&str>) {
        if !self.empty {
            self.dirty.insert((table, month.map(str::to_string)));
        }
    }

    /// Creates a new state's indexes once its conversations are in (called once, at their end),
    /// before the feedback looks its messages up by id.
    fn create_deferred_indexes(&mut self) -> Result<()> {
        if self.empty {
            self.file
                .connection
                .execute_batch(INDEXES_SQL)
                .map_err(Error::sqlite(&self.file.path))?;
        }
        Ok(())
    }

    /// Brings a conversation's message rows in line with the listed messages, position by
    /// position, counting as the SQLite mirror does.
    fn messages(
        &mut self,
        conversation_id: &str,
        conversation: &str,
        messages: &[MessageRow],
        changed: bool,
    ) -> Result<()> {
        let stored: Vec<([u8; 16], Option<String>)> = if changed {
            self.file
                .connection
                .prepare_cached(
                    "SELECT hash, month FROM messages WHERE conversation_id = ?1 ORDER BY position",
                )
                .and_then(|mut statement| {
                    statement
                        .query_map([conversation_id], |row| {
                            let hash = match row.get_ref(0)? {
                                rusqlite::types::ValueRef::Blob(bytes) => {
                                    bytes.try_into().unwrap_or([0; 16])
                                }
                                _ => [0; 16],
                            };
                            Ok((hash, row.get(1)?))
                        })?
                        .collect()
                })
                .map_err(self.sql())?
        } else {
            Vec::new()
        };
        for (position, message) in messages.iter().enumerate() {
            let raw = conversation.get(message.raw.clone()).unwrap_or_default();
            let hash = raw_hash(raw.as_bytes());
            let field =
                |name| Value::of_field(MESSAGE_COLUMNS, &message.values, name, conversation);
            let month = month_of(field("createdAt"));
            let id = field("id");
            let position = position as i64;
            match stored.get(position as usize) {
                Some((old_hash, _)) if *old_hash == hash => continue,
                Some((_, old_month)) => {
                    let old_month = old_month.clone();
                    self.mark(Table::Messages, old_month.as_deref());
                    self.execute(
                        "UPDATE messages SET id = ?3, month = ?4, hash = ?5 WHERE conversation_id = ?1 AND position = ?2",
                        rusqlite::params![conversation_id, position, id, month, &hash[..]],
                    )?;
                    self.report.messages.updated += 1;
                }
                None => {
                    self.execute(
                        "INSERT INTO messages (conversation_id, position, id, month, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
                        rusqlite::params![conversation_id, position, id, month, &hash[..]],
                    )?;
                    self.report.messages.inserted += 1;
                }
            }
            self.mark(Table::Messages, month);
        }
        if stored.len() > messages.len() {
            for (_, old_month) in &stored[messages.len()..] {
                self.mark(Table::Messages, old_month.as_deref());
            }
            self.report.messages.deleted += self.execute(
                "DELETE FROM messages WHERE conversation_id = ?1 AND position >= ?2",
                rusqlite::params![conversation_id, messages.len() as i64],
            )? as u64;
        }
        Ok(())
    }
}

impl Target for State {
    /// Starts the run's transaction, creating a new state's tables inside it, and loads what the
    /// state holds.
    fn begin(&mut self) -> Result<()> {
        self.file.begin()?;
        match self.found {
            Found::New => {
                self.file
                    .connection
                    .execute_batch(SCHEMA_SQL)
                    .map_err(Error::sqlite(&self.file.path))?;
                self.file
                    .connection
                    .pragma_update(None, "application_id", APPLICATION_ID)
                    .map_err(Error::sqlite(&self.file.path))?;
                self.file
                    .connection
                    .pragma_update(None, "user_version", STATE_VERSION)
                    .map_err(Error::sqlite(&self.file.path))?;
                self.empty = true;
            }
            Found::State => {
                self.conversations = known(&self.file.connection, Table::Conversations)
                    .map_err(Error::sqlite(&self.file.path))?;
                self.feedback = known(&self.file.connection, Table::Feedback)
                    .map_err(Error::sqlite(&self.file.path))?;
            }
        }
        Ok(())
    }

    /// A new state's records all go to the encoders, which read their rows: the listing's
    /// side reads them then, once, where it waits for the writer (a later run's encoders read
    /// the few they rewrite themselves).
    fn reads_rows(&self) -> bool {
        matches!(self.found, Found::New)
    }

    fn conversation(&mut self, listed: &Listed<ConversationRow>) -> Result<bool> {
        let (record, id, hash) = (&*listed.raw, &listed.id, listed.hash);
        // The month is read only for a record that is new or changed (below); the sighting
        // needs it then, so an unchanged record is told by its hash before any parse.
        if self.conversations.has_nothing_to_write(id, hash) {
            let _ = self
                .conversations
                .sight(id, hash, None, &mut self.report.conversations);
            return Ok(false);
        }
        let mut read = None;
        let row = listed.row(&mut read)?;
        let text = record.get();
        let month = month_of(Value::of_field(
            CONVERSATION_COLUMNS,
            &row.values,
            "createdAt",
            text,
        ));
        let sighting = self.conversations.sight(
            id,
            hash,
            month.map(str::to_string),
            &mut self.report.conversations,
        );
        let changed = match sighting {
            Sighting::Nothing => return Ok(false),
            Sighting::New => {
                self.execute(
                    "INSERT INTO conversations (id, month, hash, raw) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![id, month, &hash[..], record.get()],
                )?;
                false
            }
            Sighting::Changed { old_place } => {
                self.mark(Table::Conversations, old_place.as_deref());
                self.execute(
                    "UPDATE conversations SET month = ?2, hash = ?3, raw = ?4 WHERE id = ?1",
                    rusqlite::params![id, month, &hash[..], record.get()],
                )?;
                true
            }
        };
        self.mark(Table::Conversations, month);
        self.messages(id, text, &row.messages, changed)?;
        Ok(true)
    }

    fn end_conversations(&mut self, complete: bool) -> Result<()> {
        self.create_deferred_indexes()?;
        if !complete {
            return Ok(());
        }
        for (id, month) in self.conversations.unlisted() {
            let months: Vec<Option<String>> = self
                .file
                .connection
                .prepare_cached("DELETE FROM messages WHERE conversation_id = ?1 RETURNING month")
                .and_then(|mut statement| statement.query_map([&id], |row| row.get(0))?.collect())
                .map_err(self.sql())?;
            for month in &months {
                self.mark(Table::Messages, month.as_deref());
            }
            self.report.messages.deleted += months.len() as u64;
            self.report.conversations.deleted +=
                self.execute("DELETE FROM conversations WHERE id = ?1", [&id])? as u64;
            self.mark(Table::Conversations, month.as_deref());
        }
        Ok(())
    }

    fn feedback(&mut self, listed: &Listed<FeedbackRow>) -> Result<Option<Option<String>>> {
        let (record, id, hash) = (&*listed.raw, &listed.id, listed.hash);
        if self.feedback.has_nothing_to_write(id, hash) {
            let _ = self
                .feedback
                .sight(id, hash, None, &mut self.report.feedback);
            return Ok(None);
        }
        let mut read = None;
        let row = listed.row(&mut read)?;
        let text = record.get();
        let month = month_of(Value::of_field(
            FEEDBACK_COLUMNS,
            &row.values,
            "createdAt",
            text,
        ));
        let conversation_id = match &row.conversation_id {
            Some(id) => Some(id.clone()),
            None => store::conversation_of_message(&self.file.connection, &row.values, text)
                .map_err(self.sql())?,
        };
        match self.feedback.sight(
            id,
            hash,
            month.map(str::to_string),
            &mut self.report.feedback,
        ) {
            Sighting::Nothing => return Ok(None),
            Sighting::New => {
                self.execute(
                    "INSERT INTO feedback (id, month, hash, conversation_id, raw) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![id, month, &hash[..], conversation_id, record.get()],
                )?;
            }
            Sighting::Changed { old_place } => {
                self.mark(Table::Feedback, old_place.as_deref());
                self.execute(
                    "UPDATE feedback SET month = ?2, hash = ?3, conversation_id = ?4, raw = ?5 WHERE id = ?1",
                    rusqlite::params![id, month, &hash[..], conversation_id, record.get()],
                )?;
            }
        }
        self.mark(Table::Feedback, month);
        Ok(Some(conversation_id))
    }

    fn end_feedback(&mut self, complete: bool) -> Result<()> {
        if !complete {
            return Ok(());
        }
        for (id, month) in self.feedback.unlisted() {
            self.report.feedback.deleted +=
                self.execute("DELETE FROM feedback WHERE id = ?1", [&id])? as u64;
            self.mark(Table::Feedback, month.as_deref());
        }
        Ok(())
    }

    fn commit(mut self, totals: ApiTotals, complete: bool) -> Result<Report> {
        let messages: i64 = self
            .file
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
        self.execute(
            "INSERT INTO sync_runs (started_at, finished_at, changes) VALUES (?1, ?2, ?3)",
            rusqlite::params![self.report.started_at, self.report.finished_at, changes],
        )?;
        self.file.commit()?;
        Ok(std::mem::take(&mut self.report))
    }
}

/// What the state holds of `table` when a run begins: each record's id, hash and month.
fn known(connection: &Connection, table: Table) -> rusqlite::Result<Known<Option<String>>> {
    Known::load(
        connection,
        &format!("SELECT id, hash, month FROM {}", table.name()),
        |row| row.get(2),
    )
}
