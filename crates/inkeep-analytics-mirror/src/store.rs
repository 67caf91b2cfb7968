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

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, ToSql};

use crate::columns::{FEEDBACK_COLUMNS, month_of};
use crate::error::{Error, Result};
use crate::files;
use crate::record::{ConversationRow, FeedbackRow, Listed, MessageRow, Value};
use crate::report::{ApiTotals, Changes, Report};
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

/// The records of one table as the mirror held them when the run began, by id, and those the run
/// has listed since.
#[derive(Default)]
struct Known {
    records: HashMap<String, Entry>,
}

struct Entry {
    hash: [u8; 16],
    /// Listed in this run: a later sighting is a repeat (offsets shifted between pages).
    listed: bool,
}

/// What a listed record is to the mirror.
enum Sighting {
    /// Listed earlier in this run: ignored.
    Repeat,
    New,
    Unchanged,
    Changed,
}

impl Known {
    fn load(connection: &Connection, table: Table) -> rusqlite::Result<Self> {
        let mut statement =
            connection.prepare(&format!("SELECT id, raw_hash FROM {}", table.name()))?;
        let mut rows = statement.query([])?;
        let mut records = HashMap::new();
        while let Some(row) = rows.next()? {
            // A hash that is missing or malformed compares unequal: the record is rewritten.
            let hash = match row.get_ref(1)? {
                rusqlite::types::ValueRef::Blob(bytes) => bytes.try_into().unwrap_or([0; 16]),
                _ => [0; 16],
            };
            records.insert(
                row.get(0)?,
                Entry {
                    hash,
                    listed: false,
                },
            );
        }
        Ok(Self { records })
    }

    fn sight(&mut self, id: &str, hash: [u8; 16]) -> Sighting {
        match self.records.get_mut(id) {
            Some(entry) if entry.listed => Sighting::Repeat,
            Some(entry) => {
                entry.listed = true;
                if entry.hash == hash {
                    Sighting::Unchanged
                } else {
                    entry.hash = hash;
                    Sighting::Changed
                }
            }
            None => {
                self.records
                    .insert(id.to_string(), Entry { hash, listed: true });
                Sighting::New
            }
        }
    }

    /// Sights a listed record and counts it in `changes`: `None` when the mirror has nothing to
    /// write for it (listed before in this run, or unchanged), else whether it replaces a row.
    fn sight_counted(&mut self, id: &str, hash: [u8; 16], changes: &mut Changes) -> Option<bool> {
        match self.sight(id, hash) {
            Sighting::Repeat => None,
            Sighting::Unchanged => {
                changes.unchanged += 1;
                None
            }
            Sighting::Changed => {
                changes.updated += 1;
                Some(true)
            }
            Sighting::New => {
                changes.inserted += 1;
                Some(false)
            }
        }
    }

    /// The ids the run has not listed.
    fn unlisted(&self) -> Vec<String> {
        self.records
            .iter()
            .filter(|(_, entry)| !entry.listed)
            .map(|(id, _)| id.clone())
            .collect()
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
    /// The partitions (table, month) whose rows changed in this run; `None` is the partition of
    /// records whose `createdAt` is not a date.
    dirty: BTreeSet<(Table, Option<String>)>,
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
            dirty: BTreeSet::new(),
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
                self.conversations = Known::load(&self.connection, Table::Conversations)
                    .map_err(Error::sqlite(&self.path))?;
                self.feedback = Known::load(&self.connection, Table::Feedback)
                    .map_err(Error::sqlite(&self.path))?;
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

    /// The `created_at` of a mirrored record, to know which partition it leaves when it changes.
    fn created_at_of(&self, table: Table, id: &str) -> Result<Option<String>> {
        self.connection
            .prepare_cached(&format!(
                "SELECT created_at FROM {} WHERE id = ?1",
                table.name()
            ))
            .and_then(|mut statement| statement.query_row([id], |row| row.get(0)).optional())
            .map(Option::flatten)
            .map_err(self.sql())
    }

    fn mark(&mut self, table: Table, created_at: Option<&str>) {
        let month = month_of(created_at).map(str::to_string);
        self.dirty.insert((table, month));
    }

    /// Applies one conversation as listed; whether it was written (new or changed).
    pub(crate) fn conversation(&mut self, record: &Listed<ConversationRow>) -> Result<bool> {
        // The id and the hash tell an unchanged record, the usual case of a re-run: the rest
        // of it is then not read.
        let Some(changed) = self.conversations.sight_counted(
            &record.id,
            record.hash,
            &mut self.report.conversations,
        ) else {
            return Ok(false);
        };
        let mut read = None;
        let row = record.row(&mut read)?;
        let text = record.raw.get();
        if changed {
            let old_created_at = self.created_at_of(Table::Conversations, &record.id)?;
            self.mark(Table::Conversations, old_created_at.as_deref());
        }
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
        self.mark(
            Table::Conversations,
            created_at(Table::Conversations, &row.values, text),
        );
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
        let mirrored: Vec<(String, Option<String>)> = if changed {
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
            let created_at = created_at(Table::Messages, &message.values, conversation);
            match mirrored.get(position) {
                Some((mirrored_raw, _)) if mirrored_raw == raw => {}
                Some((_, old_created_at)) => {
                    self.mark(Table::Messages, old_created_at.as_deref());
                    self.write_row(Table::Messages, true, row)?;
                    self.report.messages.updated += 1;
                    self.mark(Table::Messages, created_at);
                }
                None => {
                    self.write_row(Table::Messages, false, row)?;
                    self.report.messages.inserted += 1;
                    self.mark(Table::Messages, created_at);
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

    /// Applies one feedback item as listed; when it was written (new or changed), the id of its
    /// conversation when known.
    pub(crate) fn feedback(
        &mut self,
        record: &Listed<FeedbackRow>,
    ) -> Result<Option<Option<String>>> {
        let Some(update) =
            self.feedback
                .sight_counted(&record.id, record.hash, &mut self.report.feedback)
        else {
            return Ok(None);
        };
        let mut read = None;
        let row = record.row(&mut read)?;
        let text = record.raw.get();
        let conversation_id = match &row.conversation_id {
            Some(id) => Some(id.clone()),
            None => self.conversation_of_message(&row.values, text)?,
        };
        if update {
            let old_created_at = self.created_at_of(Table::Feedback, &record.id)?;
            self.mark(Table::Feedback, old_created_at.as_deref());
        }
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
        self.mark(
            Table::Feedback,
            created_at(Table::Feedback, &row.values, text),
        );
        Ok(Some(conversation_id))
    }

    /// The conversation that the mirror holds a feedback item's message in, for an item that
    /// embeds neither its conversation nor its message.
    fn conversation_of_message(&self, feedback: &[Value], record: &str) -> Result<Option<String>> {
        let message_id = FEEDBACK_COLUMNS
            .iter()
            .position(|column| column.field == "messageId")
            .and_then(|index| feedback.get(index))
            .and_then(|value| value.get(record));
        let Some(message_id) = message_id else {
            return Ok(None);
        };
        self.connection
            .prepare_cached("SELECT conversation_id FROM messages WHERE id = ?1 LIMIT 1")
            .and_then(|mut statement| {
                statement
                    .query_row([message_id], |row| row.get(0))
                    .optional()
            })
            .map_err(self.sql())
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
        for id in self.conversations.unlisted() {
            self.report.messages.deleted += self.delete_and_mark(
                Table::Messages,
                "DELETE FROM messages WHERE conversation_id = ?1 RETURNING created_at",
                &id,
            )?;
            self.report.conversations.deleted += self.delete_and_mark(
                Table::Conversations,
                "DELETE FROM conversations WHERE id = ?1 RETURNING created_at",
                &id,
            )?;
        }
        Ok(())
    }

    /// Ends the feedback: when the listing was complete, deletes the items it no longer has.
    pub(crate) fn end_feedback(&mut self, complete: bool) -> Result<()> {
        self.create_deferred_indexes()?;
        if !complete {
            return Ok(());
        }
        for id in self.feedback.unlisted() {
            self.report.feedback.deleted += self.delete_and_mark(
                Table::Feedback,
                "DELETE FROM feedback WHERE id = ?1 RETURNING created_at",
                &id,
            )?;
        }
        Ok(())
    }

    /// Runs a `DELETE ... RETURNING created_at` for one id on `table`, marks the partitions of the
    /// rows it removed as changed, and returns how many it removed.
    fn delete_and_mark(&mut self, table: Table, sql: &str, id: &str) -> Result<u64> {
        let created_at: Vec<Option<String>> = self
            .connection
            .prepare_cached(sql)
            .and_then(|mut statement| statement.query_map([id], |row| row.get(0))?.collect())
            .map_err(self.sql())?;
        for time in &created_at {
            self.mark(table, time.as_deref());
        }
        Ok(created_at.len() as u64)
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

/// The `created_at` among a row's values.
fn created_at<'a>(table: Table, values: &'a [Value], record: &'a str) -> Option<&'a str> {
    table
        .columns()
        .iter()
        .position(|column| column.name == "created_at")
        .and_then(|index| values.get(index))
        .and_then(|value| value.get(record))
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
