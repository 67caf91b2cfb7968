//! The Parquet dataset: the mirror's tables as Hive partitions by month, each partition rewritten only when a record in it changed.
//!
//! Layout of a dataset directory `DIR`:
//!
//! ```text
//! DIR/_inkeep_mirror.sqlite                       the state: an SQLite mirror (see SqliteMirror)
//! DIR/conversations/month=2025-01/data.parquet    one file per partition
//! DIR/messages/month=2025-01/data.parquet         (the month of each message's createdAt)
//! DIR/feedback/month=2025-01/data.parquet
//! DIR/<table>/month=__HIVE_DEFAULT_PARTITION__/   records whose createdAt does not start with YYYY-MM
//! ```
//!
//! Knowing which partitions a run must rewrite needs the previous records, so the dataset keeps
//! an SQLite mirror as its state, in a file whose leading `_` makes DuckDB, pyarrow, Polars and
//! Spark skip it. A run applies the listings to the state in its transaction, as
//! [`crate::SqliteMirror`] does, then rewrites each partition whose rows changed from the state's
//! rows (written aside as `.data.parquet.tmp`, synced, then renamed over `data.parquet`), removes
//! the partitions left empty, and commits the state last. A run killed before its commit leaves
//! every partition whole (old or new), and the state as it was, so the next run rewrites the
//! partitions again; nothing is missed.
//!
//! The files are written with the `parquet` crate's column writers (no arrow), Snappy compressed
//! (ZSTD's level 1 was a fifth of a first sync's CPU samples; the files are about 1.5 times as large);
//! `raw` and the JSON columns are `STRING`s, the times `TIMESTAMP(MICROS, UTC)`.
//!
//! A first sync (the state started empty) writes every partition whole, from the records as they
//! are listed, on a thread of its own while the state fills ([`stream`]), rows in listing order.
//! A later run rewrites its changed partitions after the listing, with two threads: the run's
//! writer thread reads the state's rows in `created_at` order (the index's, so that no sort is
//! needed) into row groups of about [`ROW_GROUP_BYTES`], and an encoder thread encodes,
//! compresses and writes them, with at most [`GROUPS_IN_FLIGHT`] groups between the two, so that
//! memory stays bounded. The encoder owns the files; a partition's end (`Job::End`) renames its
//! file into place.

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

use crate::columns::{ColumnKind, MONTH_SQL};
use crate::error::{Error, Result};
use crate::files;
use crate::report::{Partitions, Report};
use crate::schema::Table;
use crate::store::{self, Writer};
use crate::sync::{self, Sink, SyncOptions};
use serde_json::value::RawValue;
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

impl Sink for Dataset {
    fn begin(&mut self, writer: &Writer) -> Result<()> {
        if writer.starts_empty() {
            self.stream = Some(Stream::start(&self.dir)?);
        }
        Ok(())
    }

    fn conversations(&mut self, records: Vec<Box<RawValue>>) -> Result<()> {
        match &mut self.stream {
            Some(stream) => stream.send(Records::Conversations(records)),
            None => Ok(()),
        }
    }

    fn feedback(&mut self, records: Vec<(Box<RawValue>, Option<String>)>) -> Result<()> {
        match &mut self.stream {
            Some(stream) => stream.send(Records::Feedback(records)),
            None => Ok(()),
        }
    }

    fn finish(mut self, writer: &mut Writer) -> Result<()> {
        let partitions = match self.stream.take() {
            Some(stream) => stream.finish()?,
            None => rewrite_partitions(writer, &self.dir)?,
        };
        writer.report_mut().partitions = Some(partitions);
        Ok(())
    }
}

/// Opens the dataset's state, refusing a path that is not a dataset without touching it.
fn open(dir: &Path) -> Result<Writer> {
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
    store::open(&dir.join(STATE_FILE))
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

/// Row groups between the thread that reads the state and the one that encodes them.
const GROUPS_IN_FLIGHT: usize = 2;

/// What the reading side hands the encoding thread.
enum Job {
    /// The next rows of a partition.
    Group {
        partition: PathBuf,
        schema: Arc<SchemaType>,
        group: RowGroup,
    },
    /// Every row of the partition was sent (none: the partition is now empty).
    End { partition: PathBuf, rows: u64 },
}

/// Rewrites every partition the run changed, from the state's rows (still uncommitted).
///
/// This thread reads the rows into row groups while another encodes, compresses and writes them:
/// the two halves take about as long, and the listing, which used the other core, is over.
fn rewrite_partitions(writer: &Writer, dir: &Path) -> Result<Partitions> {
    let dirty: Vec<(Table, Option<String>)> = writer.dirty().iter().cloned().collect();
    std::thread::scope(|scope| {
        let (sender, receiver) = std::sync::mpsc::sync_channel(GROUPS_IN_FLIGHT);
        let encoder = scope.spawn(move || encode(receiver));
        let read = read_partitions(writer, dir, &dirty, &sender);
        drop(sender);
        let encoded = encoder.join().map_err(|_| Error::WriterStopped);
        match read {
            // The encoder's own error says more than the closed channel the reader met.
            Ok(()) | Err(Error::WriterStopped) => encoded?,
            Err(error) => Err(error),
        }
    })
}

/// Reads the rows of each dirty partition into row groups for the encoder.
fn read_partitions(
    writer: &Writer,
    dir: &Path,
    dirty: &[(Table, Option<String>)],
    sender: &std::sync::mpsc::SyncSender<Job>,
) -> Result<()> {
    for table in Table::ALL {
        let table_dir = dir.join(table.name());
        let schema = Arc::new(schema(table).map_err(|source| Error::Parquet {
            path: table_dir.clone(),
            source,
        })?);
        for (_, month) in dirty.iter().filter(|(t, _)| *t == table) {
            let partition =
                table_dir.join(format!("month={}", month.as_deref().unwrap_or(NO_MONTH)));
            read_partition(writer, table, month.as_deref(), &partition, &schema, sender)?;
        }
    }
    Ok(())
}

/// Sends a partition's rows, a row group at a time, then its end.
fn read_partition(
    writer: &Writer,
    table: Table,
    month: Option<&str>,
    partition: &Path,
    schema: &Arc<SchemaType>,
    sender: &std::sync::mpsc::SyncSender<Job>,
) -> Result<()> {
    let names = table.column_names();
    let condition = match month {
        // The range reads the `created_at` index; the prefix test keeps it exact.
        Some(_) => "created_at >= ?1 AND created_at < ?1 || '~' AND substr(created_at, 1, 7) = ?1"
            .to_string(),
        None => format!("({MONTH_SQL}) IS NULL"),
    };
    // The order of the `created_at` index, so that rows stream out without a sort.
    let sql = format!(
        "SELECT {} FROM {} WHERE {condition} ORDER BY created_at",
        names.join(", "),
        table.name()
    );
    let kinds = column_kinds(table);
    let state = writer.path();
    let mut statement = writer
        .connection()
        .prepare(&sql)
        .map_err(Error::sqlite(state))?;
    let mut rows = match month {
        Some(month) => statement.query([month]),
        None => statement.query([]),
    }
    .map_err(Error::sqlite(state))?;
    let send = |job: Job| sender.send(job).map_err(|_| Error::WriterStopped);
    let mut group = RowGroup::new(&kinds);
    let mut count = 0u64;
    while let Some(row) = rows.next().map_err(Error::sqlite(state))? {
        for (index, kind) in kinds.iter().enumerate() {
            let value = row.get_ref(index).map_err(Error::sqlite(state))?;
            // The state's text is UTF-8 (the run wrote it from `str`s): strings are copied as
            // bytes without checking them again (the check was 5% of a first sync's CPU samples).
            let bytes = match value {
                rusqlite::types::ValueRef::Null => None,
                rusqlite::types::ValueRef::Integer(n) => {
                    group.push_int(index, Some(n));
                    continue;
                }
                other => other.as_bytes().ok(),
            };
            let text = || bytes.and_then(|bytes| std::str::from_utf8(bytes).ok());
            match kind {
                Kind::Text => group.push_text(index, bytes),
                Kind::Integer => group.push_int(index, text().and_then(|t| t.parse().ok())),
                Kind::Timestamp => group.push_int(index, text().and_then(micros)),
            }
        }
        count += 1;
        if group.bytes >= ROW_GROUP_BYTES {
            let full = std::mem::replace(&mut group, RowGroup::new(&kinds));
            send(Job::Group {
                partition: partition.to_path_buf(),
                schema: schema.clone(),
                group: full,
            })?;
        }
    }
    if group.rows > 0 {
        send(Job::Group {
            partition: partition.to_path_buf(),
            schema: schema.clone(),
            group,
        })?;
    }
    send(Job::End {
        partition: partition.to_path_buf(),
        rows: count,
    })
}

/// The encoding thread: writes each partition's row groups aside, then renames the file into
/// place, or removes a partition left empty; returns what it did.
fn encode(jobs: std::sync::mpsc::Receiver<Job>) -> Result<Partitions> {
    let mut partitions = Partitions::default();
    let mut open: Option<(PathBuf, SerializedFileWriter<std::fs::File>)> = None;
    // The tables' directories, synced last so that new and removed partitions are durable.
    let mut tables = std::collections::BTreeSet::new();
    for job in jobs {
        match job {
            Job::Group {
                partition,
                schema,
                mut group,
            } => {
                let aside = partition.join(DATA_FILE_ASIDE);
                if open
                    .as_ref()
                    .is_none_or(|(current, _)| *current != partition)
                {
                    open = Some((partition.clone(), create(&aside, &partition, &schema)?));
                }
                if let Some((_, file)) = &mut open {
                    group.write(file).map_err(|source| Error::Parquet {
                        path: aside,
                        source,
                    })?;
                }
            }
            Job::End { partition, rows } if rows > 0 => {
                let Some((_, file)) = open.take().filter(|(current, _)| *current == partition)
                else {
                    return Err(Error::WriterStopped);
                };
                publish(file, &partition)?;
                tables.extend(partition.parent().map(Path::to_path_buf));
                partitions.written += 1;
            }
            Job::End { partition, .. } => {
                if partition.exists() {
                    remove_partition(&partition)?;
                    tables.extend(partition.parent().map(Path::to_path_buf));
                    partitions.removed += 1;
                }
            }
        }
    }
    for table in &tables {
        files::sync_dir(table);
    }
    Ok(partitions)
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
