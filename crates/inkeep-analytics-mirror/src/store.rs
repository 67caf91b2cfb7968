//! The SQLite mirror: the checks before a file is touched, and the writer that applies one run in one transaction.
//!
//! At the start of a run the writer loads the id and the hash of every mirrored conversation and
//! feedback item ([`Known`], about 60 bytes a record), and compares each listed record's hash
//! with it in memory: a re-run with nothing changed reads no row and writes none but its
//! `sync_runs` row. What the run did not list is deleted at the end by id. Nothing is visible to
//! readers, and nothing survives a killed process, until the one `COMMIT`: SQLite's rollback
//! journal puts the previous mirror back.
//!
//! A new mirror is written as `FILE.partial` without journal or syncs, then synced once and
//! renamed into place ([`files::Partial`]): there is no previous mirror to protect, and the
//! journal and syncs made the first load about twice as slow. Its pages are 64 KiB, and another
//! thread writes them to the disk while the run goes on, so that the writer's thread spends
//! less of its time in the kernel ([`RunFile`], which the Parquet dataset's state shares).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, ToSql};

use crate::columns::FEEDBACK_COLUMNS;
use crate::database::{self, AtPath, RunFile};
use crate::error::{Error, Result};
use crate::known::{Known, Sighting};
use crate::record::{ConversationRow, FeedbackRow, Listed, MessageRow, Value};
use crate::report::{ApiTotals, Report};
use crate::schema::{APPLICATION_ID, INDEXES_SQL, MIGRATIONS, SCHEMA_VERSION, Table, schema_sql};

/// SQLite's page cache for a run. The run itself reads little (a re-run compares hashes held in
/// memory); 16 MiB took a first sync of 20,000 conversations past 64 MiB of peak memory, and
/// with 64 KiB pages 4 MiB cost no more CPU than 8 and peaked about 3 MiB lower (55 to 58 MiB).
const CACHE_KIB: i64 = 4 * 1024;

/// What the file at a path is, read before anything is written to it.
enum Found {
    /// No file, an empty file or an empty database: the schema is created in the run.
    New,
    /// A mirror of this layout, or an older one that the run migrates.
    Mirror { version: i64 },
}

/// Opens the mirror at `path` for a run, refusing without a write anything that is not one.
pub(crate) fn open(path: &Path) -> Result<Writer> {
    match database::look(path)? {
        AtPath::Nothing => Writer::new(RunFile::create(path, CACHE_KIB)?, Found::New),
        AtPath::Database(connection) => {
            let found = inspect(&connection, path)?;
            Writer::new(RunFile::existing(connection, path, CACHE_KIB)?, found)
        }
    }
}

/// Reads the database's marks (no write): whose it is and which layout it has.
fn inspect(connection: &Connection, path: &Path) -> Result<Found> {
    let marks = database::marks(connection, path)?;
    if marks.application_id == APPLICATION_ID {
        let version = marks.version_of_ours(path, "mirror schema", SCHEMA_VERSION)?;
        return Ok(Found::Mirror { version });
    }
    marks.refuse_unless_blank(path)?;
    Ok(Found::New)
}

/// A run's writer: owns the connection, applies records, and commits once.
pub(crate) struct Writer {
    file: RunFile,
    found: Found,
    report: Report,
    /// The mirror started the run empty: every record is new, and the indexes are created after
    /// the rows.
    empty: bool,
    /// The indexes are still to be created (a new mirror's, after its conversations).
    indexes_pending: bool,
    conversations: Known,
    feedback: Known,
    /// `INSERT` and `UPDATE` of each table, built once (`Table` order).
    insert_sql: [String; 3],
    update_sql: [String; 3],
}

impl Writer {
    fn new(file: RunFile, found: Found) -> Result<Self> {
        Ok(Self {
            file,
            found,
            report: Report {
                started_at: crate::report::now(),
                ..Report::default()
            },
            empty: false,
            indexes_pending: false,
            conversations: Known::default(),
            feedback: Known::default(),
            insert_sql: Table::ALL.map(Table::insert_sql),
            update_sql: Table::ALL.map(Table::update_sql),
        })
    }

    /// Whether the run creates the mirror: every record is then new, so the listing's side
    /// reads each one's rows for the writer (a re-run leaves that to the writer, for the few
    /// records that changed).
    pub(crate) fn is_new(&self) -> bool {
        matches!(self.found, Found::New)
    }

    fn sql(&self) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        self.file.sql()
    }

    /// Starts the run's transaction (taking the write lock at once), creating or migrating the
    /// schema inside it, so that a killed run leaves no half schema; loads what the mirror holds.
    pub(crate) fn begin(&mut self) -> Result<()> {
        self.file.begin()?;
        match self.found {
            Found::New => {
                self.file
                    .connection
                    .execute_batch(&schema_sql())
                    .map_err(Error::sqlite(&self.file.path))?;
                self.empty = true;
                self.indexes_pending = true;
                self.file
                    .connection
                    .pragma_update(None, "application_id", APPLICATION_ID)
                    .map_err(Error::sqlite(&self.file.path))?;
                self.file
                    .connection
                    .pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(Error::sqlite(&self.file.path))?;
            }
            Found::Mirror { version } => {
                for from in version..SCHEMA_VERSION {
                    let step = usize::try_from(from - 1)
                        .ok()
                        .and_then(|index| MIGRATIONS.get(index));
                    let Some(step) = step else {
                        return Err(Error::NotAMirror {
                            path: self.file.path.clone(),
                            reason: format!("no migration from mirror schema {from}"),
                        });
                    };
                    step(&self.file.connection).map_err(Error::sqlite(&self.file.path))?;
                }
                if version < SCHEMA_VERSION {
                    self.file
                        .connection
                        .pragma_update(None, "user_version", SCHEMA_VERSION)
                        .map_err(Error::sqlite(&self.file.path))?;
                }
                self.conversations = known(&self.file.connection, Table::Conversations)
                    .map_err(Error::sqlite(&self.file.path))?;
                self.feedback = known(&self.file.connection, Table::Feedback)
                    .map_err(Error::sqlite(&self.file.path))?;
            }
        }
        Ok(())
    }

    /// Creates the indexes of a mirror that started empty, once its conversations are in.
    fn create_deferred_indexes(&mut self) -> Result<()> {
        if self.indexes_pending {
            self.file
                .connection
                .execute_batch(INDEXES_SQL)
                .map_err(Error::sqlite(&self.file.path))?;
            self.indexes_pending = false;
        }
        Ok(())
    }

    /// Applies one conversation as listed; whether it was written (new or changed).
    pub(crate) fn conversation(&mut self, record: &Listed<ConversationRow>) -> Result<bool> {
        // The id and the hash tell an unchanged record, the usual case of a re-run: the rest
        // of it is then not read.
        let changed = match self.conversations.sight(
            &record.id,
            record.hash,
            (),
            &mut self.report.conversations,
        ) {
            Sighting::Nothing => return Ok(false),
            Sighting::New => false,
            Sighting::Changed { .. } => true,
        };
        let mut read = None;
        let row = record.row(&mut read)?;
        let text = record.raw.get();
        self.write_row(
            Table::Conversations,
            changed,
            Row {
                place: None,
                record: text,
                values: &row.values,
                conversation_id: None,
                raw: text,
                hash: Some(&record.hash),
            },
        )?;
        self.messages(&record.id, text, &row.messages, changed)?;
        Ok(true)
    }

    /// Brings the messages of a new or changed conversation in line with the listed ones,
    /// position by position, writing only the rows that differ.
    fn messages(
        &mut self,
        conversation_id: &str,
        conversation: &str,
        listed: &[MessageRow],
        changed: bool,
    ) -> Result<()> {
        let mirrored: Vec<String> = if changed {
            self.mirrored_messages(conversation_id)?
        } else {
            Vec::new()
        };
        for (position, message) in listed.iter().enumerate() {
            let raw = conversation.get(message.raw.clone()).unwrap_or_default();
            let row = Row {
                place: Some((conversation_id, position as i64)),
                record: conversation,
                values: &message.values,
                conversation_id: None,
                raw,
                hash: None,
            };
            match mirrored.get(position) {
                Some(mirrored_raw) if mirrored_raw == raw => {}
                Some(_) => {
                    self.write_row(Table::Messages, true, row)?;
                    self.report.messages.updated += 1;
                }
                None => {
                    self.write_row(Table::Messages, false, row)?;
                    self.report.messages.inserted += 1;
                }
            }
        }
        if mirrored.len() > listed.len() {
            let removed = self
                .file
                .connection
                .prepare_cached(
                    "DELETE FROM messages WHERE conversation_id = ?1 AND position >= ?2",
                )
                .and_then(|mut statement| {
                    statement.execute(rusqlite::params![conversation_id, listed.len() as i64])
                })
                .map_err(Error::sqlite(&self.file.path))?;
            self.report.messages.deleted += removed as u64;
        }
        Ok(())
    }

    /// The mirrored messages of a conversation in order, as their bytes.
    fn mirrored_messages(&self, conversation_id: &str) -> Result<Vec<String>> {
        self.file
            .connection
            .prepare_cached("SELECT raw FROM messages WHERE conversation_id = ?1 ORDER BY position")
            .and_then(|mut statement| {
                statement
                    .query_map([conversation_id], |row| row.get(0))?
                    .collect()
            })
            .map_err(self.sql())
    }

    /// Applies one feedback item as listed; when it was written (new or changed), the id of its
    /// conversation when known.
    pub(crate) fn feedback(
        &mut self,
        record: &Listed<FeedbackRow>,
    ) -> Result<Option<Option<String>>> {
        let update =
            match self
                .feedback
                .sight(&record.id, record.hash, (), &mut self.report.feedback)
            {
                Sighting::Nothing => return Ok(None),
                Sighting::New => false,
                Sighting::Changed { .. } => true,
            };
        let mut read = None;
        let row = record.row(&mut read)?;
        let text = record.raw.get();
        let conversation_id = match &row.conversation_id {
            Some(id) => Some(id.clone()),
            None => conversation_of_message(&self.file.connection, &row.values, text)
                .map_err(self.sql())?,
        };
        self.write_row(
            Table::Feedback,
            update,
            Row {
                place: None,
                record: text,
                values: &row.values,
                conversation_id: Some(conversation_id.as_deref()),
                raw: text,
                hash: Some(&record.hash),
            },
        )?;
        Ok(Some(conversation_id))
    }

    /// Inserts a row, or updates the one with the same key (`id`; for messages, the
    /// conversation and position), binding each value where it is: no row is built.
    fn write_row(&self, table: Table, update: bool, row: Row<'_>) -> Result<()> {
        let index = table as usize;
        let sql = if update {
            &self.update_sql[index]
        } else {
            &self.insert_sql[index]
        };
        let mut statement = self
            .file
            .connection
            .prepare_cached(sql)
            .map_err(self.sql())?;
        let mut next = 0usize;
        let mut bind = |value: &dyn ToSql| {
            next += 1;
            statement.raw_bind_parameter(next, value)
        };
        let bound = (|| {
            if let Some((conversation_id, position)) = row.place {
                bind(&conversation_id)?;
                bind(&position)?;
            }
            for value in row.values {
                bind(&value.get(row.record))?;
            }
            if let Some(conversation_id) = row.conversation_id {
                bind(&conversation_id)?;
            }
            bind(&row.raw)?;
            if let Some(hash) = row.hash {
                bind(&&hash[..])?;
            }
            Ok(())
        })();
        bound
            .and_then(|()| statement.raw_execute())
            .map_err(self.sql())?;
        Ok(())
    }

    /// Ends the conversations: creates a new mirror's indexes and, when the listing was
    /// complete, deletes the conversations (and their messages) that it no longer has.
    pub(crate) fn end_conversations(&mut self, complete: bool) -> Result<()> {
        self.create_deferred_indexes()?;
        if !complete {
            return Ok(());
        }
        for (id, ()) in self.conversations.unlisted() {
            self.report.messages.deleted +=
                self.delete("DELETE FROM messages WHERE conversation_id = ?1", &id)?;
            self.report.conversations.deleted +=
                self.delete("DELETE FROM conversations WHERE id = ?1", &id)?;
        }
        Ok(())
    }

    /// Ends the feedback: when the listing was complete, deletes the items it no longer has.
    pub(crate) fn end_feedback(&mut self, complete: bool) -> Result<()> {
        self.create_deferred_indexes()?;
        if !complete {
            return Ok(());
        }
        for (id, ()) in self.feedback.unlisted() {
            self.report.feedback.deleted +=
                self.delete("DELETE FROM feedback WHERE id = ?1", &id)?;
        }
        Ok(())
    }

    /// Runs a `DELETE` of the rows of one id, and returns how many it removed.
    fn delete(&self, sql: &str, id: &str) -> Result<u64> {
        self.file
            .connection
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute([id]))
            .map(|removed| removed as u64)
            .map_err(self.sql())
    }

    /// Records the run and commits it: the one moment the new mirror replaces the previous one.
    pub(crate) fn commit(mut self, totals: ApiTotals, complete: bool) -> Result<Report> {
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
        self.file.connection
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
        self.file.commit()?;
        Ok(std::mem::take(&mut self.report))
    }
}

/// The values of one row, as [`Table::sqlite_column_names`] orders them.
struct Row<'r> {
    /// A message's conversation and position.
    place: Option<(&'r str, i64)>,
    /// The bytes of the record that `values` are read from.
    record: &'r str,
    /// The documented columns' values, in the table's order.
    values: &'r [Value],
    /// A feedback item's conversation, when known.
    conversation_id: Option<Option<&'r str>>,
    /// The row's record as sent.
    raw: &'r str,
    /// The hash of `raw`, in the tables that keep it.
    hash: Option<&'r [u8; 16]>,
}

/// The conversation that a store's `messages` table holds a feedback item's message in, for an
/// item that embeds neither its conversation nor its message; `feedback` are its values, read
/// from `record`. The SQLite mirror and the Parquet dataset's state both keep that table.
pub(crate) fn conversation_of_message(
    connection: &Connection,
    feedback: &[Value],
    record: &str,
) -> rusqlite::Result<Option<String>> {
    let Some(message_id) = Value::of_field(FEEDBACK_COLUMNS, feedback, "messageId", record) else {
        return Ok(None);
    };
    connection
        .prepare_cached("SELECT conversation_id FROM messages WHERE id = ?1 LIMIT 1")
        .and_then(|mut statement| {
            statement
                .query_row([message_id], |row| row.get(0))
                .optional()
        })
}

/// What the mirror holds of `table` when a run begins: each record's id and hash.
fn known(connection: &Connection, table: Table) -> rusqlite::Result<Known> {
    Known::load(
        connection,
        &format!("SELECT id, raw_hash FROM {}", table.name()),
        |_| Ok(()),
    )
}
