//! What a spool holds, read through a read-only connection: without the lock a running recorder
//! holds, and without changing anything.

use std::path::{Path, PathBuf};

use super::files;
use super::{DATABASE, from_sql_u64};
use crate::error::{Error, Result};

/// What a spool directory holds, read without sending or changing anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolStatus {
    /// Conversations not yet delivered (only the newest version of each is kept).
    pub conversations: u64,
    /// Feedback items not yet delivered.
    pub feedback: u64,
    /// Events not yet delivered.
    pub events: u64,
    /// The size of the database and its write-ahead log.
    pub bytes: u64,
    /// The sequence number of the newest record held (0 when it holds none): records are
    /// numbered in the order they were recorded, from 1 in a new spool.
    pub last_sequence: u64,
    /// Damaged databases that were set aside in the directory, kept for inspection.
    pub set_aside: Vec<PathBuf>,
    /// Whether a process holds the spool's lock now.
    pub locked: bool,
}

impl SpoolStatus {
    /// Reads what the spool in `dir` holds, through a read-only connection: a recorder running on
    /// it is neither stopped nor slowed, and its lock is not taken while the tables are read.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when the database cannot be read (for example, it is damaged).
    pub fn read(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let database = dir.join(DATABASE);
        let mut status = SpoolStatus {
            set_aside: files::set_aside_in(dir),
            locked: files::is_locked(dir),
            ..SpoolStatus::default()
        };
        if !database.exists() {
            return Ok(status);
        }
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        status.bytes = size(&database) + size(&files::sidecar(&database, "-wal"));
        let failed = |e: rusqlite::Error| {
            Error::configuration_with_source(
                format!("spool: cannot read {}", database.display()),
                e,
            )
        };
        let db = files::open_read_only(&database).map_err(failed)?;
        let mut statement =
            match db.prepare("SELECT kind, count(*), max(seq) FROM records GROUP BY kind") {
                Ok(statement) => statement,
                // Created by a recorder killed before it made its table: it holds nothing.
                Err(error) if error.to_string().contains("no such table") => return Ok(status),
                Err(error) => return Err(failed(error)),
            };
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .map_err(failed)?;
        for row in rows {
            let (kind, count, last) = row.map_err(failed)?;
            let count = from_sql_u64(count);
            match kind.as_str() {
                "conversation" => status.conversations = count,
                "feedback" => status.feedback = count,
                _ => status.events += count,
            }
            status.last_sequence = status.last_sequence.max(from_sql_u64(last));
        }
        Ok(status)
    }

    /// Records not yet delivered.
    pub fn pending(&self) -> u64 {
        self.conversations + self.feedback + self.events
    }
}
