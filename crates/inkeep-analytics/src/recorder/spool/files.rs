//! The spool's files: an owner-only directory, the lock that keeps a second process out, and
//! the setting aside of a damaged database with what can still be read of it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, params};

use super::{Text, from_sql_u64};
use crate::error::{Error, Result};

/// The lock file's name in the spool's directory.
pub(crate) const LOCK: &str = "lock";

/// How long opening a spool waits for its lock: `spool status` holds it for an instant to see
/// whether a process does, and a recorder starting at that instant must not fail for it.
const LOCK_WAIT: Duration = Duration::from_millis(250);

fn io_error(what: &str, path: &Path, error: io::Error) -> Error {
    Error::configuration_with_source(format!("spool: {what} {}", path.display()), error)
}

fn owner_only() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The spool holds users' conversations: readable by its owner only.
        options.mode(0o600);
    }
    options
}

/// Creates `path` readable by its owner only, unless it exists; a new file's directory entry is
/// forced to the disk, so that a power loss does not take the file away from its log (SQLite
/// syncs the directory for the log it creates, not for a database created here).
pub(crate) fn create_owner_only(path: &Path) -> io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    owner_only()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    sync_dir(path)
}

/// Forces the directory entries of the directory holding `path` to the disk.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates the directory (`0700`), or warns when an existing one may be read by others.
pub(crate) fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o077 != 0 {
                tracing::warn!(
                    spool = %dir.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "spool: the directory may be read by other users, and its records hold users' conversations; make it readable by its owner only (chmod 700)"
                );
            }
        }
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| io_error("cannot create", dir, e))
}

/// Warns when the directory holds a journal of an earlier version of this library, which this
/// one does not read: its records are delivered by running the earlier version on it.
pub(crate) fn warn_of_an_old_journal(dir: &Path) {
    let old = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with("journal-") && name.ends_with(".log"))
        });
    if old {
        tracing::warn!(spool = %dir.display(), "spool: the directory holds a journal of an earlier version (journal-*.log), which this version does not read; deliver it with that version first");
    }
}

/// Narrows the database's files to their owner when an earlier version or a user widened them.
pub(crate) fn restrict_existing(database: &Path) {
    #[cfg(unix)]
    for path in [
        database.to_path_buf(),
        sidecar(database, "-wal"),
        sidecar(database, "-shm"),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let Ok(metadata) = fs::metadata(&path) else {
            continue;
        };
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "spool: a file others could read is made readable by its owner only");
            if let Err(error) = fs::set_permissions(&path, fs::Permissions::from_mode(0o600)) {
                tracing::warn!(path = %path.display(), error = %error, "spool: cannot change the file's mode");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = database;
}

/// `database` with `suffix` appended: SQLite's `-wal` and `-shm` files.
pub(crate) fn sidecar(database: &Path, suffix: &str) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Takes the spool's lock, waiting briefly for a `spool status` that probes it.
pub(crate) fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK);
    let file = owner_only()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_error("cannot open", &path, e))?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::configuration(format!(
                    "spool: {} is in use by another recorder (its lock is held)",
                    dir.display()
                )));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_error("cannot lock", &path, e)),
        }
    }
}

/// Whether a process holds the spool's lock now. It takes the lock for an instant when it is
/// free; a recorder that starts at that instant waits for it (see [`LOCK_WAIT`]).
pub(crate) fn is_locked(dir: &Path) -> bool {
    match File::open(dir.join(LOCK)) {
        Ok(file) => match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(_) => true,
        },
        Err(_) => false,
    }
}

/// Publishes the size of the database and its log.
pub(crate) fn publish_size(database: &Path, bytes: &AtomicU64) {
    let size = |path: &Path| fs::metadata(path).map_or(0, |m| m.len());
    bytes.store(
        size(database) + size(&sidecar(database, "-wal")),
        Ordering::Relaxed,
    );
}

/// A read-only connection: it never takes the lock a writer needs, nor changes the database.
pub(crate) fn open_read_only(database: &Path) -> rusqlite::Result<Connection> {
    let db = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db.busy_timeout(Duration::from_secs(1))?;
    Ok(db)
}

/// The files of damaged spools set aside in `dir`.
pub(crate) fn set_aside_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| {
                    name.starts_with("spool.damaged-") && name.ends_with(".sqlite3")
                })
        })
        .collect();
    found.sort();
    found
}

/// A damaged database, renamed aside and kept for inspection.
#[derive(Debug)]
pub(crate) struct SetAside {
    /// Where it is now.
    pub path: PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

/// What was copied out of a damaged database.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    pub rows: u64,
    pub next_seq: u64,
}

/// A free name for a damaged database beside `database`.
fn aside_path(database: &Path) -> PathBuf {
    let dir = database.parent().unwrap_or(Path::new("."));
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut path = dir.join(format!("spool.damaged-{stamp}.sqlite3"));
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("spool.damaged-{stamp}-{n}.sqlite3"));
        n += 1;
    }
    path
}

/// Copies a database and its damaged log aside, for inspection, before SQLite's recovery cuts
/// the log; returns where the copy is.
pub(crate) fn copy_aside(database: &Path) -> io::Result<PathBuf> {
    let path = aside_path(database);
    copy_owner_only(&sidecar(database, "-wal"), &sidecar(&path, "-wal"))?;
    copy_owner_only(database, &path)?;
    sync_dir(database)?;
    Ok(path)
}

/// Copies a file into a new one readable by its owner only: the spool holds users' conversations.
fn copy_owner_only(from: &Path, to: &Path) -> io::Result<()> {
    let mut source = File::open(from)?;
    let mut copy = owner_only().create_new(true).write(true).open(to)?;
    io::copy(&mut source, &mut copy)?;
    copy.sync_all()
}

/// Renames a damaged database (and its log, which belongs to it) aside, so that a new one can
/// take its place; the shared-memory index is rebuilt from them when the copy is opened.
pub(crate) fn set_aside(database: &Path, error: &rusqlite::Error) -> io::Result<SetAside> {
    let path = aside_path(database);
    // The log first: killed in between, the database is found damaged again at the next start,
    // rather than a new database meeting the old one's log.
    let wal = sidecar(database, "-wal");
    if wal.exists() {
        fs::rename(&wal, sidecar(&path, "-wal"))?;
    }
    fs::rename(database, &path)?;
    let _ = fs::remove_file(sidecar(database, "-shm"));
    sync_dir(database)?;
    Ok(SetAside {
        path,
        reason: error.to_string(),
    })
}

type Row = (i64, i64, String, String, Vec<u8>, i64);

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get_ref(4)?.as_bytes()?.to_vec(),
        row.get(5)?,
    ))
}

/// Copies salvaged rows into a new database, held by the spool only.
fn copy_rows(db: &Connection, rows: &[Row], recovered: &mut Recovered) -> rusqlite::Result<()> {
    let transaction = db.unchecked_transaction()?;
    {
        let mut insert = transaction.prepare(
            "INSERT OR IGNORE INTO records (position, seq, kind, id, body, spilled, recorded_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
        )?;
        for (position, seq, kind, id, body, recorded_at) in rows {
            if insert.execute(params![position, seq, kind, id, Text(body), recorded_at])? > 0 {
                recovered.rows += 1;
                recovered.next_seq = recovered.next_seq.max(from_sql_u64(*seq) + 1);
            }
        }
    }
    transaction.commit()
}

/// The rows of a damaged database that can still be read: from the start up to the first
/// damaged page, then from the end back down to it. `spilled_only`: only those not in memory.
fn salvage(path: &Path, spilled_only: bool) -> (Vec<Row>, Option<u64>) {
    let Ok(db) = open_read_only(path) else {
        return (vec![], None);
    };
    let filter = if spilled_only {
        "WHERE spilled = 1"
    } else {
        ""
    };
    let total = db
        .query_row(
            &format!("SELECT count(*) FROM records {filter}"),
            [],
            |row| row.get::<_, i64>(0),
        )
        .ok()
        .map(from_sql_u64);
    let mut rows: Vec<Row> = vec![];
    for order in ["ASC", "DESC"] {
        let sql = format!(
            "SELECT position, seq, kind, id, body, recorded_at FROM records {filter} ORDER BY position {order}"
        );
        let Ok(mut statement) = db.prepare(&sql) else {
            continue;
        };
        let Ok(mut query) = statement.query([]) else {
            continue;
        };
        let seen_up_to = rows.last().map(|row| row.0);
        while let Ok(Some(row)) = query.next() {
            let Ok(read) = read_row(row) else {
                break;
            };
            if order == "DESC" && seen_up_to.is_some_and(|last| read.0 <= last) {
                break;
            }
            rows.push(read);
        }
    }
    (rows, total)
}

impl SetAside {
    /// Copies what can be read of the damaged database into `db` (new and empty), held by the
    /// spool only, and reports what was recovered and lost.
    pub(crate) fn restore_into(&self, db: &Connection, spilled_only: bool) -> Recovered {
        let (rows, total) = salvage(&self.path, spilled_only);
        let mut recovered = Recovered::default();
        let copied = copy_rows(db, &rows, &mut recovered);
        if let Err(error) = copied {
            tracing::error!(error = %error, "spool: cannot copy what was recovered from the damaged database");
            recovered = Recovered::default();
        }
        match total {
            Some(total) => tracing::error!(
                reason = %self.reason,
                kept_at = %self.path.display(),
                recovered = recovered.rows,
                lost = total.saturating_sub(recovered.rows),
                "spool: the database was damaged; it is set aside and replaced by a new one with the records that could be read"
            ),
            None => tracing::error!(
                reason = %self.reason,
                kept_at = %self.path.display(),
                recovered = recovered.rows,
                "spool: the database was damaged; it is set aside and replaced by a new one with the records that could be read (how many were lost cannot be known)"
            ),
        }
        recovered
    }
}
