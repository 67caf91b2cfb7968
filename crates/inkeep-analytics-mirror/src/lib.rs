#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod columns;
mod database;
mod error;
mod files;
mod known;
#[cfg(feature = "parquet")]
mod parquet;
mod record;
mod report;
mod schema;
mod store;
mod sync;

use std::path::{Path, PathBuf};

use inkeep_analytics::Client;

pub use columns::{
    CONVERSATION_COLUMNS, CONVERSATION_FIELDS_ELSEWHERE, Column, ColumnKind, FEEDBACK_COLUMNS,
    FEEDBACK_FIELDS_ELSEWHERE, MESSAGE_COLUMNS, MESSAGE_FIELDS_ELSEWHERE,
};
pub use error::{Error, Result};
#[cfg(feature = "parquet")]
pub use parquet::{ParquetMirror, STATE_FILE};
pub use report::{ApiTotals, Changes, Partitions, Report};
pub use schema::SCHEMA_VERSION;
pub use sync::{Progress, SyncOptions};

/// A mirror in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteMirror {
    path: PathBuf,
}

impl SqliteMirror {
    /// The mirror at `path`; nothing is read or written until [`SqliteMirror::sync`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Brings the mirror up to date with the API in one transaction, creating it (0600, its
    /// missing directories 0700) when the file does not exist.
    ///
    /// A file that is not a mirror, or a mirror of a newer layout, is refused untouched; an
    /// older layout is migrated within the run. On any error the file is left as the last
    /// complete sync wrote it. Needs a tokio runtime (the writer runs on its blocking pool).
    pub async fn sync(&self, client: &Client, options: &SyncOptions) -> Result<Report> {
        options.check()?;
        let path = self.path.clone();
        let writer = tokio::task::spawn_blocking(move || store::open(&path))
            .await
            .map_err(|_| Error::WriterStopped)??;
        sync::run(client, options, writer, ()).await
    }
}
