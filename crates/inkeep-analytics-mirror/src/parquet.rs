//! The Parquet dataset: the mirror's tables as Hive partitions by month, each partition rewritten only when a record in it changed.
//!
//! Layout of a dataset directory `DIR`:
//!
//! ```text
//! DIR/_inkeep_mirror.sqlite                       the state: ids, months, hashes, raws (see state)
//! DIR/conversations/month=2025-01/data.parquet    one file per partition
//! DIR/messages/month=2025-01/data.parquet         (the month of each message's createdAt)
//! DIR/feedback/month=2025-01/data.parquet
//! DIR/<table>/month=__HIVE_DEFAULT_PARTITION__/   records whose createdAt does not start with YYYY-MM
//! ```
//!
//! Knowing which partitions a run must rewrite needs the previous records, so the dataset keeps
//! a state in SQLite ([`state`]), in a file whose leading `_` makes DuckDB, pyarrow, Polars and
//! Spark skip it: each conversation's and feedback item's id, month, hash and `raw`, each
//! message's place, id, month and hash; no typed column, no message `raw`. A run applies the
//! listings to the state in its transaction, then rewrites each partition whose rows changed by
//! encoding the state's raws of the records with rows in it again (written aside as
//! `.data.parquet.tmp`, synced, then renamed over `data.parquet`), removes the partitions left
//! empty, and commits the state last. A run killed before its commit leaves every partition whole
//! (old or new), and the state as it was, so the next run rewrites the partitions again.
//!
//! The files are written with the `parquet` crate's column writers (no arrow), Snappy compressed
//! (ZSTD's level 1 was a fifth of a first sync's CPU samples; the files are about 1.5 times as large);
//! `raw` and the JSON columns are `STRING`s, the times `TIMESTAMP(MICROS, UTC)`.
//!
//! Encoding is the job of two threads of [`stream`] (the messages; the conversations and
//! feedback), fed a page of records at a time by the run's writer thread: a first sync (the state
//! started empty) writes every partition whole, from the records as they are listed, while the
//! state fills, rows in listing order; a later run sends, after the listing, the state's records
//! that have rows in a changed partition, and the encoders keep only those partitions' rows.

mod state;
mod stream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use inkeep_analytics::Client;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::{ColumnPath, Type as SchemaType};

use crate::columns::ColumnKind;
use crate::error::{Error, Result};
use crate::files;
use crate::record::{ConversationRow, FeedbackRow, Listed};
use crate::report::{Partitions, Report};
use crate::schema::Table;
use crate::sync::{self, Sink, SyncOptions};
use serde_json::value::RawValue;
use state::State;
use stream::{Records, Stream};

/// The dataset's state file, inside its directory.
pub const STATE_FILE: &str = "_inkeep_mirror.sqlite";

/// The name of each partition's file.
const DATA_FILE: &str = "data.parquet";

/// Where a partition's next file is written before it replaces the current one; the leading dot
/// hides it from readers.
const DATA_FILE_ASIDE: &str = ".data.parquet.tmp";

/// Hive's name for the partition of a null key.
const NO_MONTH: &str = "__HIVE_DEFAULT_PARTITION__";

/// A row group is closed once its values reach this size, so that a partition of any size is
/// written in bounded memory.
const ROW_GROUP_BYTES: usize = 4 << 20;

/// A mirror as a Hive-partitioned Parquet dataset in a directory.
#[derive(Clone, Debug)]
pub struct ParquetMirror {
    dir: PathBuf,
}

impl ParquetMirror {
    /// The dataset in `dir`; nothing is read or written until [`ParquetMirror::sync`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Brings the dataset up to date with the API: creates the directory (0700) when missing,
    /// refuses a directory that holds other files and no state, and rewrites only the
    /// partitions whose records changed. Needs a tokio runtime.
    pub async fn sync(&self, client: &Client, options: &SyncOptions) -> Result<Report> {
        options.check()?;
        let dir = self.dir.clone();
        let writer = tokio::task::spawn_blocking(move || open(&dir))
            .await
            .map_err(|_| Error::WriterStopped)??;
        let dataset = Dataset {
            dir: self.dir.clone(),
            stream: None,
        };
        sync::run(client, options, writer, dataset).await
    }
}

/// The dataset's side of a run: a first sync (the state started empty, so every record is new
/// and every partition is written) encodes the records into their partitions on a thread of its
/// own while the listing goes on; a later run rewrites its changed partitions from the state
/// before the commit.
struct Dataset {
    dir: PathBuf,
    stream: Option<Stream>,
}

impl Sink<State> for Dataset {
    fn begin(&mut self, state: &State) -> Result<()> {
        if state.starts_empty() {
            self.stream = Some(Stream::start(&self.dir, None)?);
        }
        Ok(())
    }

    fn conversations(&mut self, records: Vec<Listed<ConversationRow>>) -> Result<()> {
        match &mut self.stream {
            Some(stream) => stream.send(Records::Conversations(records)),
            None => Ok(()),
        }
    }

    fn feedback(&mut self, records: Vec<(Listed<FeedbackRow>, Option<String>)>) -> Result<()> {
        match &mut self.stream {
            Some(stream) => stream.send(Records::Feedback(records)),
            None => Ok(()),
        }
    }

    fn finish(mut self, state: &mut State) -> Result<()> {
        let partitions = match self.stream.take() {
            Some(stream) => stream.finish()?,
            None => rebuild(state, &self.dir)?,
        };
        state.report_mut().partitions = Some(partitions);
        Ok(())
    }
}

/// Opens the dataset's state, refusing a path that is not a dataset without touching it.
fn open(dir: &Path) -> Result<State> {
    match std::fs::metadata(dir) {
        Ok(metadata) if !metadata.is_dir() => {
            return Err(Error::NotAMirror {
                path: dir.to_path_buf(),
                reason: "it is a file; a Parquet dataset is a directory".into(),
            });
        }
        Ok(_) => {
            let state = dir.join(STATE_FILE);
            if !state.exists() && !only_a_killed_first_sync(dir)? {
                return Err(Error::NotAMirror {
                    path: dir.to_path_buf(),
                    reason: format!("the directory holds other files and no {STATE_FILE}"),
                });
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            files::create_dir_all(dir)?;
        }
        Err(error) => return Err(Error::io("read", dir)(error)),
    }
    state::open(&dir.join(STATE_FILE))
}

/// Whether a directory without a state holds nothing, or only what a first sync that was killed
/// left: its state's `.partial` file, and tables whose partitions hold only files written aside.
/// (Such a run published nothing: its partitions are renamed into place only at its end.)
fn only_a_killed_first_sync(dir: &Path) -> Result<bool> {
    let partial_state = format!("{STATE_FILE}.partial");
    for entry in std::fs::read_dir(dir).map_err(Error::io("read", dir))? {
        let entry = entry.map_err(Error::io("read", dir))?;
        let name = entry.file_name();
        if name.to_str() == Some(partial_state.as_str()) {
            continue;
        }
        let is_table = Table::ALL
            .iter()
            .any(|table| name.to_str() == Some(table.name()));
        if !is_table || !only_files_aside(&entry.path())? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a table's directory holds only partitions that hold only a file written aside.
fn only_files_aside(table: &Path) -> Result<bool> {
    let Ok(partitions) = std::fs::read_dir(table) else {
        return Ok(false);
    };
    for partition in partitions {
        let partition = partition.map_err(Error::io("read", table))?;
        let named_as_ours = partition
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with("month="));
        if !named_as_ours {
            return Ok(false);
        }
        let Ok(files) = std::fs::read_dir(partition.path()) else {
            return Ok(false);
        };
        for file in files {
            let file = file.map_err(Error::io("read", table))?;
            if file.file_name().to_str() != Some(DATA_FILE_ASIDE) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Conversations or feedback items a page when a later run sends the state's records to the encoder.
const REBUILD_PAGE: usize = 64;

/// Rewrites every partition the run changed: the state's records that have rows in them (still
/// uncommitted) go to an encoder as a first sync's do, and the encoder keeps only the rows of
/// those partitions, and removes those left empty.
fn rebuild(state: &State, dir: &Path) -> Result<Partitions> {
    let dirty = state.dirty().clone();
    if dirty.is_empty() {
        return Ok(Partitions::default());
    }
    let path = state.path();
    let connection = state.connection();
    // Each conversation once, however many of its partitions changed: its rows are written once.
    let mut conversations = std::collections::BTreeSet::new();
    for (table, month) in &dirty {
        let sql = match table {
            Table::Conversations => "SELECT rowid FROM conversations WHERE month IS ?1",
            Table::Messages => {
                "SELECT c.rowid FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id
                 WHERE m.month IS ?1"
            }
            Table::Feedback => continue,
        };
        let mut statement = connection.prepare(sql).map_err(Error::sqlite(path))?;
        let rowids = statement
            .query_map([month], |row| row.get::<_, i64>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<i64>>>())
            .map_err(Error::sqlite(path))?;
        conversations.extend(rowids);
    }
    let mut stream = Stream::start(dir, Some(dirty.clone()))?;
    let mut page = Vec::new();
    let mut read = connection
        .prepare("SELECT raw FROM conversations WHERE rowid = ?1")
        .map_err(Error::sqlite(path))?;
    for rowid in conversations {
        let raw: String = read
            .query_row([rowid], |row| row.get(0))
            .map_err(Error::sqlite(path))?;
        page.push(Listed::read(stored_record(path, raw)?, false)?);
        if page.len() == REBUILD_PAGE {
            stream.send(Records::Conversations(std::mem::take(&mut page)))?;
        }
    }
    if !page.is_empty() {
        stream.send(Records::Conversations(page))?;
    }
    let mut read = connection
        .prepare("SELECT raw, conversation_id FROM feedback WHERE month IS ?1")
        .map_err(Error::sqlite(path))?;
    for (_, month) in dirty.iter().filter(|(table, _)| *table == Table::Feedback) {
        let mut page = Vec::new();
        let mut rows = read.query([month]).map_err(Error::sqlite(path))?;
        while let Some(row) = rows.next().map_err(Error::sqlite(path))? {
            let raw: String = row.get(0).map_err(Error::sqlite(path))?;
            let conversation_id: Option<String> = row.get(1).map_err(Error::sqlite(path))?;
            page.push((
                Listed::read(stored_record(path, raw)?, false)?,
                conversation_id,
            ));
            if page.len() == REBUILD_PAGE {
                stream.send(Records::Feedback(std::mem::take(&mut page)))?;
            }
        }
        if !page.is_empty() {
            stream.send(Records::Feedback(page))?;
        }
    }
    stream.finish()
}

/// A record as the state kept it (the bytes the server sent, which were JSON then).
fn stored_record(state: &Path, raw: String) -> Result<Box<RawValue>> {
    RawValue::from_string(raw).map_err(|error| Error::NotAMirror {
        path: state.to_path_buf(),
        reason: format!("a record in it is not JSON: {error}"),
    })
}

fn create(
    aside: &Path,
    partition: &Path,
    schema: &Arc<SchemaType>,
) -> Result<SerializedFileWriter<std::fs::File>> {
    files::create_dir_all(partition)?;
    let file = files::create_file(aside)?;
    SerializedFileWriter::new(file, schema.clone(), Arc::new(properties())).map_err(|source| {
        Error::Parquet {
            path: aside.to_path_buf(),
            source,
        }
    })
}

/// Closes a partition's file written aside, syncs it and renames it over `data.parquet`.
fn publish(file: SerializedFileWriter<std::fs::File>, partition: &Path) -> Result<()> {
    let aside = partition.join(DATA_FILE_ASIDE);
    let inner = file.into_inner().map_err(|source| Error::Parquet {
        path: aside.clone(),
        source,
    })?;
    inner.sync_all().map_err(Error::io("write", &aside))?;
    let target = partition.join(DATA_FILE);
    std::fs::rename(&aside, &target).map_err(Error::io("replace", &target))?;
    files::sync_dir(partition);
    Ok(())
}

fn remove_partition(partition: &Path) -> Result<()> {
    for name in [DATA_FILE, DATA_FILE_ASIDE] {
        match std::fs::remove_file(partition.join(name)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::io("remove", partition)(error)),
        }
    }
    // A directory someone put other files in is left with them.
    let _ = std::fs::remove_dir(partition);
    Ok(())
}

/// How a column of the dataset is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    Timestamp,
}

fn column_kinds(table: Table) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = table
        .leading()
        .iter()
        .map(|name| {
            if *name == "position" {
                Kind::Integer
            } else {
                Kind::Text
            }
        })
        .collect();
    kinds.extend(table.columns().iter().map(|column| match column.kind {
        ColumnKind::Timestamp => Kind::Timestamp,
        ColumnKind::Text | ColumnKind::Json => Kind::Text,
    }));
    kinds.extend(table.trailing().iter().map(|_| Kind::Text));
    kinds.push(Kind::Text);
    kinds
}

/// The Parquet schema of a table: the same columns as in SQLite, typed.
fn schema(table: Table) -> parquet::errors::Result<SchemaType> {
    let names = table.column_names();
    let kinds = column_kinds(table);
    let mut message = format!("message {} {{\n", table.name());
    for (name, kind) in names.iter().zip(&kinds) {
        let required = *name == "raw" || table.leading().contains(name);
        let repetition = if required { "REQUIRED" } else { "OPTIONAL" };
        let physical = match kind {
            Kind::Text => "BYTE_ARRAY",
            Kind::Integer | Kind::Timestamp => "INT64",
        };
        let logical = match kind {
            Kind::Text => " (STRING)",
            Kind::Integer => "",
            Kind::Timestamp => " (TIMESTAMP(MICROS,true))",
        };
        message.push_str(&format!("  {repetition} {physical} {name}{logical};\n"));
    }
    message.push('}');
    parse_message_type(&message)
}

fn properties() -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!(
            "inkeep-analytics-mirror {}",
            env!("CARGO_PKG_VERSION")
        ));
    // Whole records and message lists never repeat: a dictionary or min/max statistics of them
    // cost time and space for nothing.
    for column in ["raw", "messages_openai_format", "content", "properties"] {
        builder = builder
            .set_column_dictionary_enabled(ColumnPath::from(column), false)
            .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    builder.build()
}

/// A time as microseconds since the epoch, when it reads as RFC 3339.
fn micros(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.timestamp_micros())
}

/// The values of one row group, column by column, with definition levels for the nullable ones.
struct RowGroup {
    columns: Vec<Values>,
    rows: usize,
    bytes: usize,
}

enum Values {
    /// Strings, one after the other in one buffer, each ending where its offset says: one
    /// allocation a column instead of one a value (malloc and free were 8% of a first sync's
    /// encoding thread).
    Text {
        bytes: Vec<u8>,
        ends: Vec<usize>,
        levels: Vec<i16>,
    },
    Integer(Vec<i64>, Vec<i16>),
}

impl RowGroup {
    fn new(kinds: &[Kind]) -> Self {
        Self {
            columns: kinds
                .iter()
                .map(|kind| match kind {
                    Kind::Text => Values::Text {
                        bytes: Vec::new(),
                        ends: Vec::new(),
                        levels: Vec::new(),
                    },
                    Kind::Integer | Kind::Timestamp => Values::Integer(Vec::new(), Vec::new()),
                })
                .collect(),
            rows: 0,
            bytes: 0,
        }
    }

    fn push_text(&mut self, index: usize, text: Option<&[u8]>) {
        if index == 0 {
            self.rows += 1;
        }
        if let Some(Values::Text {
            bytes,
            ends,
            levels,
        }) = self.columns.get_mut(index)
        {
            levels.push(i16::from(text.is_some()));
            if let Some(text) = text {
                self.bytes += text.len();
                bytes.extend_from_slice(text);
                ends.push(bytes.len());
            }
        }
    }

    fn push_int(&mut self, index: usize, value: Option<i64>) {
        if index == 0 {
            self.rows += 1;
        }
        if let Some(Values::Integer(values, levels)) = self.columns.get_mut(index) {
            levels.push(i16::from(value.is_some()));
            self.bytes += 8;
            values.extend(value);
        }
    }

    /// Writes the buffered rows as one row group and empties the buffers.
    fn write(
        &mut self,
        file: &mut SerializedFileWriter<std::fs::File>,
    ) -> parquet::errors::Result<()> {
        let mut group = file.next_row_group()?;
        let mut index = 0;
        while let Some(mut column) = group.next_column()? {
            // A required column's definition levels are all 1; the writer counts rows from them.
            match self.columns.get_mut(index) {
                Some(Values::Text {
                    bytes,
                    ends,
                    levels,
                }) => {
                    // Each value is a slice of the one buffer (no copy).
                    let buffer = bytes::Bytes::from(std::mem::take(bytes));
                    let mut start = 0;
                    let values: Vec<ByteArray> = ends
                        .iter()
                        .map(|&end| {
                            let value = ByteArray::from(buffer.slice(start..end));
                            start = end;
                            value
                        })
                        .collect();
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&values, Some(levels), None)?;
                }
                Some(Values::Integer(values, levels)) => {
                    column
                        .typed::<Int64Type>()
                        .write_batch(values, Some(levels), None)?;
                }
                None => {}
            }
            column.close()?;
            index += 1;
        }
        group.close()?;
        for values in &mut self.columns {
            match values {
                Values::Text {
                    bytes,
                    ends,
                    levels,
                } => {
                    bytes.clear();
                    ends.clear();
                    levels.clear();
                }
                Values::Integer(values, levels) => {
                    values.clear();
                    levels.clear();
                }
            }
        }
        self.rows = 0;
        self.bytes = 0;
        Ok(())
    }
}
