//! The SQLite file of a run, as the mirror and the Parquet dataset's state both write it: a new one aside, synced as it goes and renamed into place at the commit; an existing one in one transaction, which a run that fails rolls back.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::files;

/// How long a run waits for another process that holds the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The page size of a new file, SQLite's largest. A first sync writes about 550 MB and its
/// index builds read the tables back: with 4 KiB pages, the kernel's paths of a write or read
/// per page took about 60% of the writer's thread; with 64 KiB pages the writer's thread took
/// about a quarter less CPU (1.1 s against 1.5 s for 20,000 conversations), for a file 4%
/// smaller. (An existing file keeps the page size it was created with.)
const NEW_PAGE_SIZE: u32 = 65536;

/// How often a new file's pages are written to the disk while the run goes on (see
/// [`files::Writeback`]): often enough that little is left for the end, seldom enough that
/// SQLite's pages rewritten in the meantime (the b-trees' inner pages) cost little twice.
const WRITEBACK_EVERY: Duration = Duration::from_millis(250);

/// What is at a path before a run, read without a write.
pub(crate) enum AtPath {
    /// Nothing, or an empty file: the run writes a new one.
    Nothing,
    /// An SQLite database, open for the store to inspect its marks.
    Database(Connection),
}

/// Looks at `path`: a directory, or a file that does not start as an SQLite database does, is
/// refused (reading only its header).
pub(crate) fn look(path: &Path) -> Result<AtPath> {
    let not_sqlite = || Error::NotAMirror {
        path: path.to_path_buf(),
        reason: "it is not an SQLite database".into(),
    };
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(Error::NotAMirror {
                path: path.to_path_buf(),
                reason: "it is a directory".into(),
            });
        }
        Ok(metadata) if metadata.len() > 0 => {}
        Ok(_) => return Ok(AtPath::Nothing),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(AtPath::Nothing),
        Err(error) => return Err(Error::io("read", path)(error)),
    }
    let mut header = [0u8; 16];
    match std::fs::File::open(path).and_then(|mut file| file.read_exact(&mut header)) {
        Ok(()) if header == *b"SQLite format 3\0" => {}
        Ok(()) => return Err(not_sqlite()),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(not_sqlite());
        }
        Err(error) => return Err(Error::io("read", path)(error)),
    }
    let connection = Connection::open(path).map_err(Error::sqlite(path))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(Error::sqlite(path))?;
    Ok(AtPath::Database(connection))
}

/// A database's marks, read without a write: whose it is and which layout it has.
pub(crate) struct Marks {
    /// `PRAGMA application_id`: 0 for a database no program marked.
    pub(crate) application_id: i32,
    /// `PRAGMA user_version`: the layout, for a database of ours.
    pub(crate) version: i64,
    /// Whether it holds no table, index or view.
    pub(crate) empty: bool,
}

/// Reads the marks of the database `connection` opened at `path`.
pub(crate) fn marks(connection: &Connection, path: &Path) -> Result<Marks> {
    let read = || -> rusqlite::Result<Marks> {
        Ok(Marks {
            application_id: connection
                .pragma_query_value(None, "application_id", |row| row.get(0))?,
            version: connection.pragma_query_value(None, "user_version", |row| row.get(0))?,
            empty: connection.query_row("SELECT count(*) FROM sqlite_schema", [], |row| {
                row.get::<_, i64>(0)
            })? == 0,
        })
    };
    read().map_err(Error::sqlite(path))
}

impl Marks {
    /// The layout of a database of ours (`what`: "mirror schema", "state"), refused when this
    /// program did not write it: newer than `supported`, or below 1.
    pub(crate) fn version_of_ours(&self, path: &Path, what: &str, supported: i64) -> Result<i64> {
        let version = self.version;
        if version > supported {
            return Err(Error::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                supported,
            });
        }
        if version < 1 {
            return Err(Error::NotAMirror {
                path: path.to_path_buf(),
                reason: format!("its {what} version {version} is not one this program wrote"),
            });
        }
        Ok(version)
    }

    /// Refuses a database that another program marked or filled: only a blank one (no
    /// mark, no table) may become a run's own.
    pub(crate) fn refuse_unless_blank(&self, path: &Path) -> Result<()> {
        if self.application_id == 0 && self.empty {
            Ok(())
        } else {
            Err(Error::NotAMirror {
                path: path.to_path_buf(),
                reason: "it is an SQLite database of another program".into(),
            })
        }
    }
}

/// A run's SQLite file: its connection, and for a new file the partial file and its writeback.
pub(crate) struct RunFile {
    pub(crate) connection: Connection,
    /// The file's place (a new file is written aside until the commit).
    pub(crate) path: PathBuf,
    /// Writes a new file's pages to the disk while the run goes on (stopped before `partial`
    /// is published or removed).
    writeback: Option<files::Writeback>,
    /// A new file until it is renamed into place.
    partial: Option<files::Partial>,
    in_transaction: bool,
}

impl RunFile {
    /// A new file at `path`, written aside without journal or syncs (nothing earlier needs
    /// protecting), with a page cache of `cache_kib`.
    pub(crate) fn create(path: &Path, cache_kib: i64) -> Result<Self> {
        let partial = files::Partial::create(path)?;
        let connection = Connection::open(partial.path()).map_err(Error::sqlite(path))?;
        Self::new(connection, path, Some(partial), cache_kib)
    }

    /// An existing database at `path`, as [`look`] opened it.
    pub(crate) fn existing(connection: Connection, path: &Path, cache_kib: i64) -> Result<Self> {
        Self::new(connection, path, None, cache_kib)
    }

    fn new(
        connection: Connection,
        path: &Path,
        partial: Option<files::Partial>,
        cache_kib: i64,
    ) -> Result<Self> {
        connection.set_prepared_statement_cache_capacity(64);
        // The stores keep their rows' references themselves (a conversation's messages are
        // written and deleted with it): SQLite's checks would cost a lookup a row.
        let mut pragmas = String::new();
        if partial.is_some() {
            // Before the cache's size: set after it, a new page size left the cache at the old
            // number of pages (a first sync then peaked at 180 MiB).
            pragmas.push_str(&format!("PRAGMA page_size = {NEW_PAGE_SIZE};"));
        }
        pragmas.push_str(&format!(
            "PRAGMA cache_size = -{cache_kib}; PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = OFF;"
        ));
        if partial.is_some() {
            pragmas.push_str(
                "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;",
            );
        }
        connection
            .execute_batch(&pragmas)
            .map_err(Error::sqlite(path))?;
        Ok(Self {
            connection,
            path: path.to_path_buf(),
            writeback: None,
            partial,
            in_transaction: false,
        })
    }

    /// The error of a failed statement on this file.
    pub(crate) fn sql(&self) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        Error::sqlite(&self.path)
    }

    /// Starts the run's transaction, taking the write lock at once; a new file's pages are
    /// written to the disk from then on.
    pub(crate) fn begin(&mut self) -> Result<()> {
        self.connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(Error::sqlite(&self.path))?;
        self.in_transaction = true;
        if let Some(partial) = &self.partial {
            self.writeback = Some(partial.write_back_every(WRITEBACK_EVERY)?);
        }
        Ok(())
    }

    /// Commits the run: the one moment the new content replaces the previous. A new file is
    /// closed, synced and renamed into place.
    pub(crate) fn commit(&mut self) -> Result<()> {
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
        Ok(())
    }
}

impl Drop for RunFile {
    /// A run that did not commit leaves the previous file: its transaction is rolled back (a
    /// new file, which has no journal to roll back, is removed instead).
    fn drop(&mut self) {
        if self.in_transaction && self.partial.is_none() {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}
