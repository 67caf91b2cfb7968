//! The spool's checkpoints, on a thread of their own: the recording connection never runs one,
//! so the fsync a checkpoint ends with never lands on a recording call.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::files;

/// Stops the checkpoints when dropped; the thread ends at once, or after the checkpoint under way.
pub(crate) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

/// Starts a thread that runs a passive checkpoint of `database` every `every` (it neither waits
/// for nor blocks the writer) and publishes the size of the spool's files into `bytes`.
/// `synchronous` is the recording connection's level, which decides whether a checkpoint syncs.
pub(crate) fn spawn(
    database: PathBuf,
    every: Duration,
    synchronous: &'static str,
    generation: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
) -> std::io::Result<Checkpointer> {
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("inkeep-analytics-spool".into())
        .spawn(move || {
            let mut db: Option<(u64, Connection)> = None;
            // Any message or a dropped sender ends the loop.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let current = generation.load(Ordering::SeqCst);
                if db.as_ref().is_none_or(|(opened, _)| *opened != current) {
                    db = open(&database, synchronous).ok().map(|db| (current, db));
                }
                if let Some((_, connection)) = &db
                    && let Err(error) =
                        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::debug!(error = %error, "spool: a checkpoint failed; it is tried again");
                    db = None;
                }
                files::publish_size(&database, &bytes);
            }
        })?;
    Ok(Checkpointer { _stop: stop })
}

fn open(database: &std::path::Path, synchronous: &str) -> rusqlite::Result<Connection> {
    // Never created here: a database set aside is not brought back empty.
    let db = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db.busy_timeout(Duration::from_secs(1))?;
    db.execute_batch(&format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA wal_autocheckpoint = 0;"
    ))?;
    Ok(db)
}
