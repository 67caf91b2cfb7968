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
//! journal and syncs made the first load about twice as slow. Its pages are 64 KiB
//! ([`NEW_PAGE_SIZE`]), and another thread writes them to the disk while the run goes on
//! ([`files::Writeback`]), so that the writer's thread spends less of its time in the kernel.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, ToSql};

use crate::columns::FEEDBACK_COLUMNS;
use crate::error::{Error, Result};
use crate::files;
use crate::known::{Known, Sighting};
use crate::record::{ConversationRow, FeedbackRow, Listed, MessageRow, Value};
use crate::report::{ApiTotals, Report};
use crate::schema::{APPLICATION_ID, INDEXES_SQL, MIGRATIONS, SCHEMA_VERSION, Table, schema_sql};

/// How long a run waits for another process that holds the mirror (another sync, a reader in
/// the middle of a write) before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite's page cache for a run. The run itself reads little (a re-run compares hashes held in
/// memory); 16 MiB took a first sync of 20,000 conversations past 64 MiB of peak memory, and
/// with 64 KiB pages 4 MiB cost no more CPU than 8 and peaked about 3 MiB lower (55 to 58 MiB).
const CACHE_KIB: i64 = 4 * 1024;

/// The page size of a new mirror, SQLite's largest. A first sync writes about 550 MB and its
/// index builds read the tables back: with 4 KiB pages, the kernel's paths of a write or read
/// per page took about 60% of the writer's thread; with 64 KiB pages the writer's thread took
/// about a quarter less CPU (1.1 s against 1.5 s for 20,000 conversations), for a file 4%
/// smaller. (An existing mirror keeps the page size it was created with.)
pub(crate) const NEW_PAGE_SIZE: u32 = 65536;

/// How often a new mirror's pages are written to the disk while the run goes on (see
/// [`files::Writeback`]): often enough that little is left for the end, seldom enough that
/// SQLite's pages rewritten in the meantime (the b-trees' inner pages) cost little twice.
pub(crate) const WRITEBACK_EVERY: Duration = Duration::from_millis(250);

/// What the file at a path is, read before anything is written to it.
enum Found {
    /// No file, an empty file or an empty database: the schema is created in the run.
    New,
    /// A mirror of this layout, or an older one that the run migrates.
    Mirror { version: i64 },
}

/// Opens the mirror at `path` for a run, refusing without a write anything that is not one.
pub(crate) fn open(path: &Path) -> Result<Writer> {
    let fresh = match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(Error::NotAMirror {
                path: path.to_path_buf(),
                reason: "it is a directory".into(),
            });
        }
        Ok(metadata) if metadata.len() > 0 => {
            check_header(path)?;
            false
        }
        Ok(_) => true,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => true,
        Err(error) => return Err(Error::io("read", path)(error)),
    };
    if fresh {
        let partial = files::Partial::create(path)?;
        let connection = Connection::open(partial.path()).map_err(Error::sqlite(path))?;
        return Writer::new(connection, path.to_path_buf(), Found::New, Some(partial));
    }
    let connection = Connection::open(path).map_err(Error::sqlite(path))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(Error::sqlite(path))?;
    let found = inspect(&connection, path)?;
    Writer::new(connection, path.to_path_buf(), found, None)
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
    /// Writes a new mirror's pages to the disk while the run goes on (stopped before `partial`
    /// is published or removed).
    writeback: Option<files::Writeback>,
    /// A new mirror's file until it is renamed into place.
    partial: Option<files::Partial>,
    found: Found,
    report: Report,
    in_transaction: bool,
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
    fn new(
        connection: Connection,
        path: PathBuf,
        found: Found,
        partial: Option<files::Partial>,
    ) -> Result<Self> {
        connection.set_prepared_statement_cache_capacity(64);
        // The writer keeps the references of messages and feedback itself (a conversation's
        // messages are written and deleted with it): SQLite's checks would cost a lookup a row.
        let mut pragmas = String::new();
        if partial.is_some() {
            // Before the cache's size: set after it, a new page size left the cache at the old
            // number of pages (a first sync then peaked at 180 MiB).
            pragmas.push_str(&format!("PRAGMA page_size = {NEW_PAGE_SIZE};"));
        }
        pragmas.push_str(&format!(
            "PRAGMA cache_size = -{CACHE_KIB}; PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = OFF;"
        ));
        if partial.is_some() {
            pragmas.push_str(
                "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;",
            );
        }
        connection
            .execute_batch(&pragmas)
            .map_err(Error::sqlite(&path))?;
        Ok(Self {
            connection,
            path,
            writeback: None,
            partial,
            found,
            report: Report {
                started_at: crate::report::now(),
                ..Report::default()
            },
            in_transaction: false,
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
        Error::sqlite(&self.path)
    }

    /// Starts the run's transaction (taking the write lock at once), creating or migrating the
    /// schema inside it, so that a killed run leaves no half schema; loads what the mirror holds.
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
                self.indexes_pending = true;
                if let Some(partial) = &self.partial {
                    self.writeback = Some(partial.write_back_every(WRITEBACK_EVERY)?);
                }
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
                    step(&self.connection).map_err(Error::sqlite(&self.path))?;
                }
                if version < SCHEMA_VERSION {
                    self.connection
                        .pragma_update(None, "user_version", SCHEMA_VERSION)
                        .map_err(Error::sqlite(&self.path))?;
                }
                self.conversations = known(&self.connection, Table::Conversations)
                    .map_err(Error::sqlite(&self.path))?;
                self.feedback =
                    known(&self.connection, Table::Feedback).map_err(Error::sqlite(&self.path))?;
            }
        }
        Ok(())
    }

    /// Creates the indexes of a mirror that started empty, once its conversations are in.
    fn create_deferred_indexes(&mut self) -> Result<()> {
        if self.indexes_pending {
            self.connection
                .execute_batch(INDEXES_SQL)
                .map_err(Error::sqlite(&self.path))?;
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

    /// The mirrored messages of a conversation in order, as their bytes.
    fn mirrored_messages(&self, conversation_id: &str) -> Result<Vec<String>> {
        self.connection
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
            None => {
                conversation_of_message(&self.connection, &row.values, text).map_err(self.sql())?
            }
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
        let mut statement = self.connection.prepare_cached(sql).map_err(self.sql())?;
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
        self.connection
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute([id]))
            .map(|removed| removed as u64)
            .map_err(self.sql())
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
        if let Some(mut writeback) = self.writeback.take() {
            writeback.stop();
        }
        if let Some(partial) = self.partial.take() {
            // The file is closed before it is renamed (Windows cannot rename an open file).
            let connection = std::mem::replace(
                &mut self.connection,
                Connection::open_in_memory().map_err(Error::sqlite(&self.path))?,
            );
            connection
                .close()
                .map_err(|(_, source)| Error::sqlite(&self.path)(source))?;
            partial.publish()?;
        }
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

impl Drop for Writer {
    /// A run that did not commit leaves the previous mirror: its transaction is rolled back (a
    /// new mirror's partial file, which has no journal to roll back, is removed instead).
    fn drop(&mut self) {
        if self.in_transaction && self.partial.is_none() {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}
