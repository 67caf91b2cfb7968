//! The crate's one error type: what went wrong, on which path, and that the existing mirror was left as it was.

use std::path::PathBuf;

/// What a sync can fail with. Whatever it is, the mirror is left as the last complete sync wrote
/// it: every change of a run is in one transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Listing a record kind failed; the SDK's error keeps the status, problem details, request
    /// id and raw body.
    #[error("listing {what} failed: {source}")]
    Api {
        /// `conversations` or `feedback`.
        what: &'static str,
        /// The SDK's error.
        #[source]
        source: inkeep_analytics::Error,
    },
    /// The path holds something that is not a mirror; it was not modified.
    #[error("{} is not a mirror written by inkeep-analytics ({reason}); it was left untouched", path.display())]
    NotAMirror {
        /// The file or directory.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// The mirror was written by a newer version of this crate, whose layout this one cannot read.
    #[error(
        "{} was written by a newer version of inkeep-analytics (mirror schema {found}; this version reads up to {supported}); upgrade the program, or sync into a new file",
        path.display()
    )]
    NewerSchema {
        /// The mirror.
        path: PathBuf,
        /// The schema version the file has.
        found: i64,
        /// The newest this crate knows.
        supported: i64,
    },
    /// The disk (or the file system's quota) is full; the run was rolled back.
    #[error("the disk holding {} is full; the mirror was left as the last complete sync wrote it", path.display())]
    DiskFull {
        /// The mirror.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, as a verb phrase ("create", "write", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused an operation (a locked, damaged or read-only file, ...).
    #[error("the mirror {}: {source}", path.display())]
    Sqlite {
        /// The mirror, or the dataset's state file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Writing a Parquet file failed.
    #[cfg(feature = "parquet")]
    #[error("cannot write the Parquet file {}: {source}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The parquet crate's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// The server sent a record the mirror cannot store (not an object, or without an id); nothing was changed.
    #[error("the server sent {what} that cannot be mirrored: {reason}")]
    Record {
        /// `a conversation`, `a feedback item`.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// An option was out of range.
    #[error("{0}")]
    InvalidInput(String),
    /// The writer thread stopped without an answer (it panicked, or the runtime shut down).
    #[error("the mirror's writer stopped unexpectedly")]
    WriterStopped,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An SQLite error on `path`, told apart when it is a full disk.
    pub(crate) fn sqlite(path: &std::path::Path) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        move |source| {
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
                Error::DiskFull {
                    path: path.to_path_buf(),
                }
            } else {
                Error::Sqlite {
                    path: path.to_path_buf(),
                    source,
                }
            }
        }
    }

    /// A file error on `path`, told apart when it is a full disk.
    pub(crate) fn io<'p>(
        action: &'static str,
        path: &'p std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Error + 'p {
        move |source| {
            if source.kind() == std::io::ErrorKind::StorageFull
                || source.kind() == std::io::ErrorKind::QuotaExceeded
            {
                Error::DiskFull {
                    path: path.to_path_buf(),
                }
            } else {
                Error::Io {
                    action,
                    path: path.to_path_buf(),
                    source,
                }
            }
        }
    }
}
