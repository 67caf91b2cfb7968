//! The recorder's crash-safe spool: a SQLite database in a directory, committed to before a
//! recording call returns, so that a process killed at any point loses nothing it recorded.
//! Torn writes, power loss and a full disk are SQLite's to handle, the most tested storage engine
//! there is, instead of a journal format of our own.
//!
//! # The database
//!
//! `DIR/spool.sqlite3`, in write-ahead-log mode (so `spool.sqlite3-wal` and `spool.sqlite3-shm`
//! sit beside it while it is open), holds one table; a user can read it with `sqlite3`:
//!
//! ```sql
//! CREATE TABLE records (
//!     position INTEGER PRIMARY KEY, -- the order in which records are sent
//!     seq INTEGER NOT NULL,         -- the recording's sequence number (a conversation's newest version)
//!     kind TEXT NOT NULL,           -- 'conversation', 'feedback' or 'event'
//!     id TEXT NOT NULL,             -- the record's id
//!     body TEXT NOT NULL,           -- the JSON body, as it is sent
//!     spilled INTEGER NOT NULL,     -- 1 while the record is held by the spool only, not in memory
//!     recorded_at INTEGER NOT NULL  -- when this version was recorded, in milliseconds since 1970
//! ) STRICT;
//! ```
//!
//! - A row is a record not yet delivered. A delivery (or a refusal for good) deletes it.
//! - A conversation has one row (a unique index on `id` for that kind): a newer version replaces
//!   the body and `seq` of the pending one and keeps its `position`, so the spool coalesces as
//!   the queue does and needs no compaction. Feedback and events each have a row of their own.
//! - `position` is the sequence number of the first pending version of a conversation, or that of
//!   the feedback item or event. Feedback and events recorded after a conversation version have
//!   a greater position than that conversation's row, so reading rows in `position` order sends
//!   what depends on a conversation after it, in this run and across restarts.
//! - `spilled` rows are read back into the queue, in `position` order, when it has room (a
//!   partial index keeps them in that order). A recorder started on the directory reads back
//!   every row.
//!
//! # Durability and the request path
//!
//! A recording call runs one prepared statement and commits: with `synchronous=NORMAL` (the
//! default [`FsyncPolicy::Interval`]) the commit is in the operating system when the call
//! returns, which survives the process being killed; with `FULL` ([`FsyncPolicy::EveryRecord`])
//! it is on the disk. Automatic checkpoints are off on that connection: a checkpoint copies the
//! log into the database and syncs it, which took a recording call's p99 from 18 µs to 2 ms when
//! it was measured (Python's `sqlite3`, the same engine, 5 KB bodies, 200 conversations). A
//! thread of the spool's own runs a passive checkpoint from another connection instead, at least
//! every 200 ms; it never blocks a writer.
//!
//! What is left on the recording call is kept small: pages of 8 KiB, so that a 10-turn
//! conversation's commit writes one page to the log instead of a page, its overflow pages and
//! the free-list pages that recycle them; and statements prepared once. One cost stays: SQLite
//! syncs the log's header when a writer restarts the log after a complete checkpoint (at most
//! once per checkpoint, every 200 ms), which keeps a power loss from mixing two generations of
//! the log. Under a sustained stream of commits, the log's bytes (about 8 KiB a commit) also
//! reach the disk at each checkpoint; on a machine whose disk others keep busy, the tail of the
//! recording call's latency was measured to follow that load (see BENCHMARKS.md).
//!
//! Measured on the recording call's benchmark (200 conversations re-recorded, 10 turns, about
//! 5 KB each): a commit writes one frame to the log (one 8 KiB page and its 24-byte header; the
//! indexes and `auto_vacuum`'s pointer maps are not touched when a conversation's version is
//! replaced) in 8 system calls, two `pwrite`s and six `fcntl` locks of the log's index, where
//! about 60 % of SQLite's time on the call goes (`perf`). Pages of 4 KiB, no `auto_vacuum`,
//! compressed bodies (zstd) and a log written over in place rather than appended to were each
//! measured, and none moved the recording call's p50 or p99 beyond the noise between runs, so
//! none was kept.
//! A sustained stream of commits (tens of thousands a second) keeps a passive checkpoint from
//! ever catching up with the log, which then grows until the stream pauses and is cut back to
//! 16 MiB at its next restart.
//!
//! # Failures
//!
//! - A database that cannot be opened, is not a database, fails `PRAGMA quick_check`, or reports
//!   corruption while running is renamed aside (`spool.damaged-<ms>.sqlite3`, kept for
//!   inspection), the rows that can still be read are copied into a new one, and what was
//!   recovered and lost is logged; recording goes on meanwhile, in memory.
//! - A full spool (`max_spool_bytes`, through `PRAGMA max_page_count`) or disk (`SQLITE_FULL`,
//!   I/O errors) refuses the write and leaves the file intact: the record stays in memory within
//!   the queue's bounds, one warning says why, and drops are counted by reason.
//! - A lock file (`DIR/lock`, `flock`) keeps a second process out. `spool status` and
//!   [`SpoolStatus::read`] read the tables through a read-only connection, without that lock.
//! - The directory is created `0700`, the files `0600` (SQLite gives its `-wal` and `-shm` files
//!   the database's mode), and an existing directory that others may read is warned about.

mod checkpoint;
mod files;
mod glue;
mod status;
mod wal;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, params};

pub use status::SpoolStatus;

use super::queue::Kind;
use crate::error::{Error, Result};

/// How many bytes a spool's database may hold by default.
pub const DEFAULT_MAX_SPOOL_BYTES: u64 = 1024 * 1024 * 1024;

/// When the spool's commits are forced to the disk.
///
/// Every record is committed to the spool before the recording call returns, and a commit is in
/// the operating system's page cache, which survives the process being killed; forcing it to the
/// disk is what survives a power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// Never forced (SQLite's `synchronous=OFF`); the operating system writes the pages back in
    /// its own time. A power loss may lose recent records or damage the spool, which is then set
    /// aside at the next start.
    Never,
    /// Forced by a checkpoint on the spool's own thread at least this often (SQLite's
    /// `synchronous=NORMAL`; one second by default, and every 200 ms in fact): a power loss loses
    /// at most the records of the last interval, and never the spool.
    Interval(Duration),
    /// Forced before every recording call returns (SQLite's `synchronous=FULL`): the safest and
    /// slowest.
    EveryRecord,
}

/// The database's file name in the spool's directory.
pub(crate) const DATABASE: &str = "spool.sqlite3";

/// How often the spool's thread checkpoints at most.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// The page size of a new database: a 10-turn conversation's body (about 5 KB) fits in one page,
/// so that its commit writes one page to the log rather than a page and its overflow pages (and
/// the free-list pages that recycle them). It was measured with the recording call's benchmark;
/// see the module's documentation. An existing database keeps the page size it was created with.
const PAGE_SIZE: u64 = 8192;

/// The schema's version, in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    position INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('conversation', 'feedback', 'event')),
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    spilled INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS records_conversation ON records (id) WHERE kind = 'conversation';
CREATE INDEX IF NOT EXISTS records_spilled ON records (position) WHERE spilled = 1;
";

/// A record written by a recording call: a conversation replaces its pending version.
const UPSERT: &str = "INSERT INTO records (position, seq, kind, id, body, spilled, recorded_at) \
    VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6) \
    ON CONFLICT (id) WHERE kind = 'conversation' DO UPDATE SET \
    seq = excluded.seq, body = excluded.body, spilled = excluded.spilled, recorded_at = excluded.recorded_at";

/// A newer version of a conversation already held by the spool only: it keeps its place.
const RESPILL: &str = "UPDATE records SET seq = ?1, body = ?2, recorded_at = ?3 \
    WHERE kind = 'conversation' AND id = ?4 AND spilled = 1 RETURNING position";

/// A spilled record: as [`UPSERT`], and where it went.
const UPSERT_SPILLED: &str = "INSERT INTO records (position, seq, kind, id, body, spilled, recorded_at) \
    VALUES (?1, ?1, ?2, ?3, ?4, 1, ?5) \
    ON CONFLICT (id) WHERE kind = 'conversation' DO UPDATE SET \
    seq = excluded.seq, body = excluded.body, spilled = 1, recorded_at = excluded.recorded_at \
    RETURNING position";

/// A delivered conversation version, with every older one.
const DELETE_CONVERSATION: &str =
    "DELETE FROM records WHERE kind = 'conversation' AND id = ?1 AND seq <= ?2";

/// A delivered feedback item or event (its position is its sequence number).
const DELETE_OTHER: &str = "DELETE FROM records WHERE position = ?1 AND kind = ?2";

/// A record read back into memory (unless a newer version was spilled meanwhile).
const TAKEN: &str = "UPDATE records SET spilled = 0 WHERE position = ?1 AND seq = ?2";

/// A record read back that nothing can send.
const DELETE_ROW: &str = "DELETE FROM records WHERE position = ?1 AND seq = ?2";

const FIRST_SPILLED: &str =
    "SELECT position FROM records WHERE spilled = 1 ORDER BY position LIMIT 1";

const READ_SPILLED: &str = "SELECT position, seq, kind, id, body FROM records \
    WHERE spilled = 1 ORDER BY position LIMIT ?1";

fn kind_name(kind: Kind) -> &'static str {
    kind.as_str()
}

fn kind_of(name: &str) -> Option<Kind> {
    match name {
        "conversation" => Some(Kind::Conversation),
        "feedback" => Some(Kind::Feedback),
        "event" => Some(Kind::Event),
        _ => None,
    }
}

/// JSON bodies as SQLite text, without checking their UTF-8 again: the recorder wrote them.
struct Text<'a>(&'a [u8]);

impl rusqlite::ToSql for Text<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0)))
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn sql_u64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_sql_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Why the spool did not take a write, in words for a warning.
#[derive(Debug)]
pub(crate) enum Unwritable {
    /// The database is at `max_spool_bytes`.
    Full,
    /// The disk refused the write (no space left, an I/O error), or the database is being replaced.
    Failed(String),
    /// The database reported damage: it is replaced off the recording call.
    Damaged,
}

impl Unwritable {
    pub(crate) fn reason(&self) -> String {
        match self {
            Unwritable::Full => "the spool is at its size limit, max_spool_bytes".into(),
            Unwritable::Failed(reason) => reason.clone(),
            Unwritable::Damaged => "the spool's database is damaged; it is being replaced".into(),
        }
    }
}

/// Whether an error of SQLite says the database is damaged.
fn is_damage(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Whether opening a spool failed because its disk is full: SQLite's `SQLITE_FULL`, or the
/// operating system's `ENOSPC` while a file or directory was created.
pub(crate) fn is_no_space(error: &Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(sqlite) = cause.downcast_ref::<rusqlite::Error>()
            && sqlite.sqlite_error_code() == Some(ErrorCode::DiskFull)
        {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::StorageFull
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Whether a database that failed to open should be set aside: it is damaged, or SQLite cannot
/// open the file that is there (a file the directory's owner can rename).
fn is_unusable(error: &rusqlite::Error) -> bool {
    is_damage(error) || error.sqlite_error_code() == Some(ErrorCode::CannotOpen)
}

/// A record read back from the spool.
#[derive(Debug)]
pub(crate) struct Spilled {
    pub position: u64,
    pub seq: u64,
    /// `None` for a kind this library does not know (a damaged row), which nothing can send.
    pub kind: Option<Kind>,
    pub id: String,
    pub body: Vec<u8>,
}

/// What opening a spool found.
#[derive(Debug, Default)]
pub(crate) struct Opened {
    /// Records left by an earlier run, to be read back.
    pub records: u64,
    /// A damaged database that was set aside, if there was one.
    pub set_aside: Option<files::SetAside>,
    /// Whether its log was damaged, which SQLite's recovery cuts (a copy is kept aside).
    pub damaged_log: bool,
}

/// Reports a damaged log before SQLite opens the database, which cuts the log at its damage
/// without a word: the commits after the damage are lost. A copy of the database and its log is
/// kept aside for inspection, as a damaged database is.
fn report_a_damaged_log(database: &Path, opened: &mut Opened) {
    let log = files::sidecar(database, "-wal");
    let Some(damage) = wal::damage(&log) else {
        return;
    };
    opened.damaged_log = true;
    let kept = files::copy_aside(database);
    let kept_at = match &kept {
        Ok(path) => path.display().to_string(),
        Err(error) => format!("nowhere: it could not be copied ({error})"),
    };
    tracing::error!(
        log = %log.display(),
        damaged_frame = damage.frame,
        lost = damage.lost_commits,
        kept_at = %kept_at,
        "spool: the database's log was damaged; the {} records (commits) written after the damage are lost, and the rest is kept; a copy of the damaged files is set aside",
        damage.lost_commits
    );
}

/// An open spool, held by one recorder.
pub(crate) struct Spool {
    /// The connection recording calls commit on; `None` while a damaged database is replaced.
    /// Dropped first, then the checkpoints, then the lock (fields drop in this order).
    db: Option<Connection>,
    /// Stops the checkpoints when the spool is dropped.
    _checkpointer: Option<checkpoint::Checkpointer>,
    dir: PathBuf,
    database: PathBuf,
    /// Rows held by the spool only.
    spilled: u64,
    /// The smallest position of a row held by the spool only.
    first_spilled: Option<u64>,
    next_seq: u64,
    max_bytes: u64,
    fsync: FsyncPolicy,
    /// Bumped when the database is replaced, so that the checkpoints open the new one.
    generation: Arc<AtomicU64>,
    /// When a failed replacement of a damaged database is tried again.
    replace_after: Option<std::time::Instant>,
    /// Deletions of delivered records that the disk refused (it was full): tried again by the
    /// worker, so that a later start does not send a delivered version again, which for a
    /// conversation would put an older version back in place of a newer one.
    undeleted: Vec<(Kind, u64, String)>,
    /// Held (locked) for as long as the spool is open: one process per spool.
    _lock: File,
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.retry_deletions() {
            tracing::warn!(
                records = self.undeleted.len(),
                spool = %self.dir.display(),
                "spool: delivered records could not be deleted from the spool (the disk refused the writes); a later start sends them again, and a conversation among them may go back to an older version until it is recorded again"
            );
        }
    }
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("database", &self.database)
            .field("spilled", &self.spilled)
            .finish_non_exhaustive()
    }
}

fn sqlite_error(what: &str, path: &Path, error: rusqlite::Error) -> Error {
    Error::configuration_with_source(format!("spool: {what} {}", path.display()), error)
}

/// SQLite's `synchronous` level for a policy.
fn synchronous(fsync: FsyncPolicy) -> &'static str {
    match fsync {
        FsyncPolicy::Never => "OFF",
        FsyncPolicy::Interval(_) => "NORMAL",
        FsyncPolicy::EveryRecord => "FULL",
    }
}

/// The `max_page_count` for `max_bytes` in pages of `page_size`: a handful at least, for the schema.
fn max_pages(max_bytes: u64, page_size: u64) -> u64 {
    (max_bytes / page_size.max(512)).max(16)
}

/// Creates the database file, readable by its owner only, unless it exists: SQLite gives its
/// `-wal` and `-shm` files the database's mode.
fn create_database(path: &Path) -> Result<()> {
    files::create_owner_only(path).map_err(|e| {
        Error::configuration_with_source(format!("spool: cannot create {}", path.display()), e)
    })
}

/// Opens the database at `path` (created by [`create_database`]) for writing, with the spool's
/// settings, checked and ready.
/// Returns the connection, the next sequence number and the number of rows.
fn open_database(
    path: &Path,
    fsync: FsyncPolicy,
    max_bytes: u64,
) -> rusqlite::Result<(Connection, u64, u64)> {
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The only writer is this connection (the lock file sees to that): a wait would be a bug.
    db.busy_timeout(Duration::from_millis(100))?;
    db.set_prepared_statement_cache_capacity(16);
    // Closing it must not checkpoint either: it happens when a recorder stops, within its
    // deadline, and what is left in the log is read at the next start.
    db.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    // Checked first: a file that is not a database fails here, before anything is written.
    let check: String = db.query_row("PRAGMA quick_check(1)", [], |row| row.get(0))?;
    if check != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!("quick_check: {check}")),
        ));
    }
    let version: i64 = db.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "the spool was written by a newer version of this library (schema {version})"
            )),
        ));
    }
    let synchronous = synchronous(fsync);
    // `page_size` and `auto_vacuum` only take on a new database, before its first write (which
    // switching to write-ahead logging is); `auto_vacuum` lets a start give back what a backlog took.
    db.execute_batch(&format!(
        "PRAGMA page_size = {PAGE_SIZE};
         PRAGMA auto_vacuum = INCREMENTAL;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {synchronous};
         PRAGMA wal_autocheckpoint = 0;
         PRAGMA journal_size_limit = {};",
        16 * 1024 * 1024
    ))?;
    let page_size: i64 = db.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    let max_pages = max_pages(max_bytes, from_sql_u64(page_size));
    db.execute_batch(&format!("PRAGMA max_page_count = {max_pages}"))?;
    let mode: String = db.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("write-ahead logging is not available ({mode})")),
        ));
    }
    db.execute_batch(SCHEMA)?;
    db.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    // What an earlier run held in memory is held by the spool only now.
    db.execute("UPDATE records SET spilled = 1 WHERE spilled = 0", [])?;
    let (rows, max_seq): (i64, i64) = db.query_row(
        "SELECT count(*), coalesce(max(seq), 0) FROM records",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let (pages, free): (i64, i64) = db.query_row(
        "SELECT page_count, freelist_count FROM pragma_page_count, pragma_freelist_count",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if free > 1024 && free * 2 > pages {
        // A backlog was delivered: give its pages back to the file system, at start only.
        db.execute_batch("PRAGMA incremental_vacuum")?;
    }
    Ok((db, from_sql_u64(max_seq) + 1, from_sql_u64(rows)))
}

impl Spool {
    /// Opens (or creates) the spool in `dir` and takes its lock. A damaged database is set aside
    /// and replaced by a new one holding what could be read of it.
    pub(crate) fn open(
        dir: &Path,
        max_bytes: u64,
        fsync: FsyncPolicy,
        bytes: Arc<AtomicU64>,
    ) -> Result<(Self, Opened)> {
        let every = match fsync {
            FsyncPolicy::Interval(every) => every.clamp(Duration::from_millis(1), CHECKPOINT_EVERY),
            FsyncPolicy::Never | FsyncPolicy::EveryRecord => CHECKPOINT_EVERY,
        };
        Self::open_checkpointing(dir, max_bytes, fsync, bytes, every)
    }

    /// [`Spool::open`], with checkpoints every `every`.
    fn open_checkpointing(
        dir: &Path,
        max_bytes: u64,
        fsync: FsyncPolicy,
        bytes: Arc<AtomicU64>,
        every: Duration,
    ) -> Result<(Self, Opened)> {
        files::prepare_dir(dir)?;
        let lock = files::lock(dir)?;
        files::warn_of_an_old_journal(dir);
        let database = dir.join(DATABASE);
        files::restrict_existing(&database);
        let mut opened = Opened::default();
        create_database(&database)?;
        report_a_damaged_log(&database, &mut opened);
        let (db, next_seq, rows) = match open_database(&database, fsync, max_bytes) {
            Ok(open) => open,
            Err(error) if is_unusable(&error) => {
                let set_aside = files::set_aside(&database, &error).map_err(|e| {
                    Error::configuration_with_source(
                        format!("spool: cannot set aside the damaged {}", database.display()),
                        e,
                    )
                })?;
                create_database(&database)?;
                let open = open_database(&database, fsync, max_bytes)
                    .map_err(|e| sqlite_error("cannot create", &database, e))?;
                let recovered = set_aside.restore_into(&open.0, false);
                let open = (open.0, open.1.max(recovered.next_seq), recovered.rows);
                opened.set_aside = Some(set_aside);
                open
            }
            Err(error) => return Err(sqlite_error("cannot open", &database, error)),
        };
        opened.records = rows;
        let generation = Arc::new(AtomicU64::new(0));
        files::publish_size(&database, &bytes);
        let checkpointer = checkpoint::spawn(
            database.clone(),
            every,
            synchronous(fsync),
            Arc::clone(&generation),
            bytes,
        )
        .map_err(|e| Error::configuration_with_source("spool: cannot start its checkpoints", e))?;
        let mut spool = Spool {
            db: Some(db),
            _checkpointer: Some(checkpointer),
            dir: dir.to_path_buf(),
            database,
            spilled: rows,
            first_spilled: None,
            next_seq,
            max_bytes,
            fsync,
            generation,
            replace_after: None,
            undeleted: Vec::new(),
            _lock: lock,
        };
        spool.refresh_first_spilled();
        if rows > 0 {
            tracing::info!(
                records = rows,
                spool = %dir.display(),
                "spool: replaying records left by an earlier run"
            );
        }
        Ok((spool, opened))
    }

    /// The sequence number the next record gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The database's path, for a reader of spilled records.
    pub(crate) fn database(&self) -> &Path {
        &self.database
    }

    /// Whether records are held by the spool only: a newer record is spilled behind them.
    pub(crate) fn has_spilled(&self) -> bool {
        self.spilled > 0
    }

    pub(crate) fn spilled(&self) -> u64 {
        self.spilled
    }

    /// The place of the first record held by the spool only.
    pub(crate) fn first_spilled(&self) -> Option<u64> {
        self.first_spilled
    }

    /// Whether the database reported damage and waits to be replaced.
    pub(crate) fn is_damaged(&self) -> bool {
        self.db.is_none()
    }

    /// Classifies a failed write; damage takes the database out of use until it is replaced.
    fn unwritable(&mut self, error: &rusqlite::Error) -> Unwritable {
        if is_damage(error) {
            tracing::error!(error = %error, spool = %self.database.display(), "spool: the database is damaged; it is set aside and replaced, and records stay in memory meanwhile");
            self.db = None;
            return Unwritable::Damaged;
        }
        if error.sqlite_error_code() == Some(ErrorCode::DiskFull) {
            let at_limit = self.db.as_ref().is_some_and(|db| {
                db.query_row(
                    "SELECT page_count, page_size FROM pragma_page_count, pragma_page_size",
                    [],
                    |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
                )
                .is_ok_and(|(pages, size)| {
                    from_sql_u64(pages) + 2 >= max_pages(self.max_bytes, from_sql_u64(size))
                })
            });
            if at_limit {
                return Unwritable::Full;
            }
            return Unwritable::Failed("no space left on device".into());
        }
        Unwritable::Failed(format!("the disk could not write it: {error}"))
    }

    /// Commits a record. `spill`: it is held by the spool only (the queue is full, or records
    /// wait in the spool before it). The record is in the operating system (or on the disk, with
    /// [`FsyncPolicy::EveryRecord`]) when this returns `Ok`.
    pub(crate) fn write(
        &mut self,
        kind: Kind,
        id: &str,
        seq: u64,
        body: &[u8],
        spill: bool,
    ) -> std::result::Result<(), Unwritable> {
        self.next_seq = self.next_seq.max(seq + 1);
        let Some(db) = self.db.as_ref() else {
            return Err(Unwritable::Failed(
                "the spool's damaged database is being replaced".into(),
            ));
        };
        let result = if spill {
            Self::write_spilled(db, kind, id, seq, body).map(Some)
        } else {
            db.prepare_cached(UPSERT)
                .and_then(|mut statement| {
                    statement.execute(params![
                        sql_u64(seq),
                        kind_name(kind),
                        id,
                        Text(body),
                        0,
                        now_ms()
                    ])
                })
                .map(|_| None)
        };
        match result {
            Ok(None) => Ok(()),
            Ok(Some((position, new))) => {
                if new {
                    self.spilled += 1;
                }
                self.first_spilled = Some(self.first_spilled.map_or(position, |p| p.min(position)));
                Ok(())
            }
            Err(error) => Err(self.unwritable(&error)),
        }
    }

    /// Writes a spilled record; returns its position and whether it is a new spilled row.
    fn write_spilled(
        db: &Connection,
        kind: Kind,
        id: &str,
        seq: u64,
        body: &[u8],
    ) -> rusqlite::Result<(u64, bool)> {
        let transaction = db.unchecked_transaction()?;
        let mut found = None;
        if kind == Kind::Conversation {
            let mut respill = transaction.prepare_cached(RESPILL)?;
            let mut rows = respill.query(params![sql_u64(seq), Text(body), now_ms(), id])?;
            if let Some(row) = rows.next()? {
                found = Some(from_sql_u64(row.get(0)?));
            }
        }
        let (position, new) = match found {
            Some(position) => (position, false),
            None => {
                let mut upsert = transaction.prepare_cached(UPSERT_SPILLED)?;
                let position: i64 = upsert.query_row(
                    params![sql_u64(seq), kind_name(kind), id, Text(body), now_ms()],
                    |row| row.get(0),
                )?;
                (from_sql_u64(position), true)
            }
        };
        transaction.commit()?;
        Ok((position, new))
    }

    /// Deletes a record that left the queue (delivered, or refused for good); for a conversation,
    /// every older version goes with it, and a newer one stays.
    pub(crate) fn acknowledge(
        &mut self,
        kind: Kind,
        seq: u64,
        id: &str,
    ) -> std::result::Result<(), Unwritable> {
        let Some(db) = self.db.as_ref() else {
            return Ok(());
        };
        match delete_delivered(db, kind, seq, id) {
            Ok(()) => Ok(()),
            Err(error) => {
                let why = self.unwritable(&error);
                if !matches!(why, Unwritable::Damaged) && self.undeleted.len() < MAX_UNDELETED {
                    self.undeleted.push((kind, seq, id.to_owned()));
                }
                Err(why)
            }
        }
    }

    /// Tries again the deletions the disk refused; true when none is left.
    pub(crate) fn retry_deletions(&mut self) -> bool {
        if self.undeleted.is_empty() {
            return true;
        }
        let Some(db) = self.db.as_ref() else {
            return false;
        };
        let retried = delete_all_delivered(db, &self.undeleted);
        if retried.is_ok() {
            self.undeleted.clear();
        }
        retried.is_ok()
    }

    /// After a read back: `taken` went into memory, `unsendable` can never be sent; both leave
    /// the spool's backlog.
    pub(crate) fn read_back_done(
        &mut self,
        taken: &[(u64, u64)],
        unsendable: &[(u64, u64)],
    ) -> std::result::Result<(), Unwritable> {
        let Some(db) = self.db.as_ref() else {
            return Ok(());
        };
        let result = mark_read_back(db, taken, unsendable);
        match result {
            Ok(left) => {
                self.spilled = self.spilled.saturating_sub(left);
                self.refresh_first_spilled();
                Ok(())
            }
            Err(error) => Err(self.unwritable(&error)),
        }
    }

    fn refresh_first_spilled(&mut self) {
        if self.spilled == 0 {
            self.first_spilled = None;
            return;
        }
        let Some(db) = self.db.as_ref() else {
            return;
        };
        match db
            .prepare_cached(FIRST_SPILLED)
            .and_then(|mut s| s.query_row([], |row| row.get::<_, i64>(0)))
        {
            Ok(position) => self.first_spilled = Some(from_sql_u64(position)),
            Err(rusqlite::Error::QueryReturnedNoRows) => {
                self.spilled = 0;
                self.first_spilled = None;
            }
            Err(error) => {
                let _ = self.unwritable(&error);
            }
        }
    }

    /// Takes the database out of use: a read through another connection found it damaged.
    pub(crate) fn mark_damaged(&mut self) {
        if self.db.take().is_some() {
            tracing::error!(spool = %self.database.display(), "spool: the database is damaged; it is set aside and replaced, and records stay in memory meanwhile");
        }
    }

    /// The replacement of a damaged database, to be run without the spool's lock
    /// ([`Replacement::run`]); `None` when the database is fine, or a failed replacement is not
    /// due to be tried again yet.
    pub(crate) fn start_replacement(&mut self) -> Option<Replacement> {
        if self.db.is_some()
            || self
                .replace_after
                .is_some_and(|after| std::time::Instant::now() < after)
        {
            return None;
        }
        Some(Replacement {
            database: self.database.clone(),
            fsync: self.fsync,
            max_bytes: self.max_bytes,
        })
    }

    /// Puts a replaced database in use: what it holds is held by the spool only.
    pub(crate) fn finish_replacement(&mut self, replaced: Result<Replaced>) {
        match replaced {
            Ok(replaced) => {
                self.replace_after = None;
                self.db = Some(replaced.db);
                self.spilled = replaced.rows;
                self.next_seq = self.next_seq.max(replaced.next_seq);
                self.generation
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                self.refresh_first_spilled();
            }
            Err(error) => {
                tracing::error!(error = %error, spool = %self.dir.display(), "spool: the damaged database cannot be replaced; records stay in memory, and it is tried again in 10 s");
                self.replace_after = Some(std::time::Instant::now() + Duration::from_secs(10));
            }
        }
    }
}

/// How many refused deletions a spool remembers to try again.
const MAX_UNDELETED: usize = 100_000;

/// Deletes a delivered record; for a conversation, every older version with it.
fn delete_delivered(db: &Connection, kind: Kind, seq: u64, id: &str) -> rusqlite::Result<()> {
    match kind {
        Kind::Conversation => db
            .prepare_cached(DELETE_CONVERSATION)?
            .execute(params![id, sql_u64(seq)]),
        Kind::Feedback | Kind::Event => db
            .prepare_cached(DELETE_OTHER)?
            .execute(params![sql_u64(seq), kind_name(kind)]),
    }
    .map(drop)
}

/// Deletes delivered records in one commit.
fn delete_all_delivered(
    db: &Connection,
    delivered: &[(Kind, u64, String)],
) -> rusqlite::Result<()> {
    let transaction = db.unchecked_transaction()?;
    for (kind, seq, id) in delivered {
        delete_delivered(&transaction, *kind, *seq, id)?;
    }
    transaction.commit()
}

/// Marks records read back into memory and deletes those that cannot be sent, in one commit;
/// returns how many left the spool's backlog.
fn mark_read_back(
    db: &Connection,
    taken: &[(u64, u64)],
    unsendable: &[(u64, u64)],
) -> rusqlite::Result<u64> {
    let transaction = db.unchecked_transaction()?;
    let mut left = 0;
    {
        let mut mark = transaction.prepare_cached(TAKEN)?;
        for (position, seq) in taken {
            left += mark.execute(params![sql_u64(*position), sql_u64(*seq)])? as u64;
        }
        let mut delete = transaction.prepare_cached(DELETE_ROW)?;
        for (position, seq) in unsendable {
            left += delete.execute(params![sql_u64(*position), sql_u64(*seq)])? as u64;
        }
    }
    transaction.commit()?;
    Ok(left)
}

/// The replacement of a damaged database, run without the spool's lock.
pub(crate) struct Replacement {
    database: PathBuf,
    fsync: FsyncPolicy,
    max_bytes: u64,
}

/// A new database in place of a damaged one.
pub(crate) struct Replaced {
    db: Connection,
    rows: u64,
    next_seq: u64,
}

impl Replacement {
    /// Sets the damaged database aside and creates a new one with the records held by the spool
    /// only that can still be read (those in memory are sent from there).
    pub(crate) fn run(self) -> Result<Replaced> {
        let database = &self.database;
        let damage = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some("reported while running".into()),
        );
        let set_aside = files::set_aside(database, &damage).map_err(|e| {
            Error::configuration_with_source(
                format!("spool: cannot set aside the damaged {}", database.display()),
                e,
            )
        })?;
        create_database(database)?;
        let (db, next_seq, _) = open_database(database, self.fsync, self.max_bytes)
            .map_err(|e| sqlite_error("cannot create", database, e))?;
        let recovered = set_aside.restore_into(&db, true);
        Ok(Replaced {
            db,
            rows: recovered.rows,
            next_seq: next_seq.max(recovered.next_seq),
        })
    }
}

/// Reads up to `n` records held by the spool only, in order, through a connection of its own:
/// recording calls, which take the spool's lock, do not wait for it.
pub(crate) fn read_spilled(database: &Path, n: usize) -> rusqlite::Result<Vec<Spilled>> {
    let db = files::open_read_only(database)?;
    let mut statement = db.prepare(READ_SPILLED)?;
    let rows = statement.query_map([i64::try_from(n).unwrap_or(i64::MAX)], |row| {
        let kind: String = row.get(2)?;
        Ok((
            from_sql_u64(row.get(0)?),
            from_sql_u64(row.get(1)?),
            kind,
            row.get::<_, String>(3)?,
            row.get_ref(4)?.as_bytes()?.to_vec(),
        ))
    })?;
    let mut read = Vec::with_capacity(n);
    for row in rows {
        let (position, seq, kind, id, body) = row?;
        read.push(Spilled {
            position,
            seq,
            kind: kind_of(&kind),
            id,
            body,
        });
    }
    Ok(read)
}

/// Whether a failed read says the database is damaged.
pub(crate) fn read_failed_from_damage(error: &rusqlite::Error) -> bool {
    is_damage(error)
}

#[cfg(test)]
mod tests;
