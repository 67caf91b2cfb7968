//! The encoders: the records the run's writer thread applied go, a page at a time, to two threads that encode them into their partitions while the writer goes on.
//!
//! A first sync (the state started empty) sends every listed record as it is applied, and every
//! partition is written whole. Before, a first sync wrote its state and then read every row back
//! to encode it, one phase after the other, and took 2.1 to 2.6 times as long as `sync --db`.
//! A later run sends, after the listing, the state's records that have rows in a changed
//! partition; the encoders keep only those partitions' rows (`only`) and remove those left empty.
//!
//! The work is split by table ([`ENCODER_TABLES`]): one thread writes the messages, the other
//! the conversations and feedback. With the state reduced to ids, months, hashes and raws,
//! encoding is the larger part of a first sync (2.5 s of the 4.3 s of CPU for 20,000
//! conversations, against 1.2 s for the state): on one thread it would be the longest of the
//! run, longer than a whole `sync --db`; on two (1.4 s and 1.1 s) both cores stay busy. Each
//! page is shared (`Arc`) by both threads. A first sync's records come with the rows the
//! listing's side read ([`crate::record`]), which the state and both encoders use: each record
//! was parsed three times before (by the state and by each encoder), and a first sync took 1.56
//! times as long as `sync --db` instead of 1.40 (one run, 20,000 conversations). A later run's
//! records come from the state without rows, and the encoders read the rows of those they keep.
//!
//! Each partition has an open file (written aside as `.data.parquet.tmp`) and a row group being
//! filled. A row group is written once it holds [`ROW_GROUP_BYTES`], and whenever the groups of
//! all of an encoder's partitions together hold more than its share of [`BUFFERED_BYTES`] the
//! largest is written, so that memory stays bounded however the records of the months
//! interleave in the listing. At the finish each file is closed, synced and renamed over its
//! partition's `data.parquet`; a run that fails or is dropped removes the files it wrote aside.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type as SchemaType;

use super::{
    DATA_FILE_ASIDE, Kind, NO_MONTH, ROW_GROUP_BYTES, RowGroup, column_kinds, create, micros,
    publish, remove_partition, schema,
};
use crate::columns::month_of;
use crate::error::{Error, Result};
use crate::files;
use crate::record::{ConversationRow, FeedbackRow, Listed, Value};
use crate::report::Partitions;
use crate::schema::Table;

/// The row groups of all partitions together hold at most about this much before the largest is
/// written: a first sync's months interleave, so every partition is open at once. (A first sync
/// of 20,000 conversations peaked at 128 MiB with 16 MiB here and 105 MiB with 8; 4 MiB saved
/// little more and makes smaller row groups.)
const BUFFERED_BYTES: usize = 8 << 20;

/// Pages of written records between the writer's thread and the encoder.
const PAGES_IN_FLIGHT: usize = 2;

/// The tables each encoder thread writes: the messages on one, the conversations and feedback on
/// the other, about the same bytes each (every conversation's `raw` holds its messages).
const ENCODER_TABLES: &[&[Table]] = &[&[Table::Messages], &[Table::Conversations, Table::Feedback]];

/// What the writer's thread hands the encoders.
pub(super) enum Records {
    /// Conversations, with their rows when the listing's side read them.
    Conversations(Vec<Listed<ConversationRow>>),
    /// Feedback items, each with its conversation's id when known.
    Feedback(Vec<(Listed<FeedbackRow>, Option<String>)>),
    /// The last record was sent: publish the partitions.
    Finish,
}

/// The encoder threads of a run, and the channels to them.
pub(super) struct Stream {
    senders: Vec<SyncSender<Arc<Records>>>,
    encoders: Vec<JoinHandle<Result<Partitions>>>,
}

impl Stream {
    /// Starts the encoders of the dataset in `dir`: of every partition (a first sync), or only of
    /// the partitions in `only` (a later run's changed ones).
    pub(super) fn start(dir: &Path, only: Option<BTreeSet<Partition>>) -> Result<Self> {
        let mut stream = Self {
            senders: Vec::new(),
            encoders: Vec::new(),
        };
        for &tables in ENCODER_TABLES {
            let (sender, receiver) = std::sync::mpsc::sync_channel(PAGES_IN_FLIGHT);
            let mut encoder = Encoder::new(dir, tables, only.clone())?;
            let handle = std::thread::Builder::new()
                .name("inkeep-mirror-parquet".into())
                .spawn(move || encoder.run(&receiver))
                .map_err(Error::io("start the Parquet encoder for", dir))?;
            stream.senders.push(sender);
            stream.encoders.push(handle);
        }
        Ok(stream)
    }

    /// Hands records to the encoders; waits while one is [`PAGES_IN_FLIGHT`] pages behind.
    pub(super) fn send(&mut self, records: Records) -> Result<()> {
        let records = Arc::new(records);
        let sent = !self.senders.is_empty()
            && self
                .senders
                .iter()
                .all(|sender| sender.send(records.clone()).is_ok());
        if sent {
            Ok(())
        } else {
            // An encoder stopped: its own error says why.
            self.join().and(Err(Error::WriterStopped))
        }
    }

    /// Publishes every partition and returns what was written.
    pub(super) fn finish(mut self) -> Result<Partitions> {
        self.send(Records::Finish)?;
        self.join()
    }

    /// Waits for every encoder; the first error, or what they wrote together.
    fn join(&mut self) -> Result<Partitions> {
        self.senders.clear();
        if self.encoders.is_empty() {
            return Err(Error::WriterStopped);
        }
        let mut total = Partitions::default();
        let mut first_error = None;
        for encoder in self.encoders.drain(..) {
            match encoder.join().map_err(|_| Error::WriterStopped) {
                Ok(Ok(partitions)) => {
                    total.written += partitions.written;
                    total.removed += partitions.removed;
                }
                Ok(Err(error)) | Err(error) => {
                    // A closed channel says less than the error of the encoder that closed it.
                    if first_error
                        .as_ref()
                        .is_none_or(|first| matches!(first, Error::WriterStopped))
                    {
                        first_error = Some(error);
                    }
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(total),
        }
    }
}

impl Drop for Stream {
    /// A run that stops before its finish waits for the encoders to remove what they wrote aside.
    fn drop(&mut self) {
        if !self.encoders.is_empty() {
            let _ = self.join();
        }
    }
}

/// A partition being written: its file aside and the row group being filled.
struct Open {
    dir: PathBuf,
    file: SerializedFileWriter<std::fs::File>,
    group: RowGroup,
}

/// A partition: its table and month (`None`: no month).
pub(super) type Partition = (Table, Option<String>);

/// The encoder thread's state: every open partition, by table and month.
struct Encoder {
    dir: PathBuf,
    schemas: [Arc<SchemaType>; 3],
    kinds: [Vec<Kind>; 3],
    /// The tables this encoder writes.
    tables: &'static [Table],
    /// The partitions to write, when not all: rows of the others are skipped, and those of them
    /// left without a row are removed.
    only: Option<BTreeSet<Partition>>,
    open: BTreeMap<Partition, Open>,
    /// The bytes held in all the open row groups.
    buffered: usize,
}

impl Encoder {
    fn new(
        dir: &Path,
        tables: &'static [Table],
        only: Option<BTreeSet<Partition>>,
    ) -> Result<Self> {
        let schema_of = |table: Table| {
            schema(table)
                .map(Arc::new)
                .map_err(|source| Error::Parquet {
                    path: dir.join(table.name()),
                    source,
                })
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            schemas: [
                schema_of(Table::Conversations)?,
                schema_of(Table::Messages)?,
                schema_of(Table::Feedback)?,
            ],
            kinds: Table::ALL.map(column_kinds),
            tables,
            only: only.map(|only| {
                only.into_iter()
                    .filter(|(table, _)| tables.contains(table))
                    .collect()
            }),
            open: BTreeMap::new(),
            buffered: 0,
        })
    }

    /// Encodes what arrives until the finish, then publishes; on an error, or a channel closed
    /// before the finish (the run failed), removes the files written aside.
    fn run(&mut self, receiver: &Receiver<Arc<Records>>) -> Result<Partitions> {
        let result = self.receive(receiver);
        if result.is_err() {
            self.discard();
        }
        result
    }

    fn receive(&mut self, receiver: &Receiver<Arc<Records>>) -> Result<Partitions> {
        for records in receiver {
            match &*records {
                Records::Conversations(records) => {
                    for record in records {
                        self.conversation(record)?;
                    }
                }
                Records::Feedback(records) if self.tables.contains(&Table::Feedback) => {
                    for (record, conversation_id) in records {
                        self.feedback(record, conversation_id.as_deref())?;
                    }
                }
                Records::Feedback(_) => {}
                Records::Finish => return self.publish(),
            }
        }
        Err(Error::WriterStopped)
    }

    /// A conversation's row and its messages', from the values the listing's side read (a first
    /// sync), else read here (a later run's rebuild, from the state's records).
    fn conversation(&mut self, listed: &Listed<ConversationRow>) -> Result<()> {
        let mut read = None;
        let row = listed.row(&mut read)?;
        let text = listed.raw.get();
        if self.tables.contains(&Table::Conversations) {
            self.row(Table::Conversations, None, text, &row.values, None, text)?;
        }
        if !self.tables.contains(&Table::Messages) {
            return Ok(());
        }
        for (position, message) in row.messages.iter().enumerate() {
            let place = (listed.id.as_str(), position as i64);
            let raw = text.get(message.raw.clone()).unwrap_or_default();
            self.row(
                Table::Messages,
                Some(place),
                text,
                &message.values,
                None,
                raw,
            )?;
        }
        Ok(())
    }

    fn feedback(
        &mut self,
        listed: &Listed<FeedbackRow>,
        conversation_id: Option<&str>,
    ) -> Result<()> {
        let mut read = None;
        let row = listed.row(&mut read)?;
        let text = listed.raw.get();
        self.row(
            Table::Feedback,
            None,
            text,
            &row.values,
            Some(conversation_id),
            text,
        )
    }

    /// Adds a row to its partition, in the columns' order ([`Table::column_names`]), writing row
    /// groups out as they fill. `values` are the table's documented columns' (read from
    /// `record`, the listed record's bytes), `raw` the row's own bytes as sent.
    fn row(
        &mut self,
        table: Table,
        place: Option<(&str, i64)>,
        record: &str,
        values: &[Value],
        conversation_id: Option<Option<&str>>,
        raw: &str,
    ) -> Result<()> {
        let month = month_of(Value::of_field(
            table.columns(),
            values,
            "createdAt",
            record,
        ));
        if let Some(only) = &self.only
            && !only.contains(&(table, month.map(str::to_string)))
        {
            return Ok(());
        }
        let key = (table, month.map(str::to_string));
        let index = table as usize;
        if !self.open.contains_key(&key) {
            let dir = self.partition_dir(table, month);
            let file = create(&dir.join(DATA_FILE_ASIDE), &dir, &self.schemas[index])?;
            let group = RowGroup::new(&self.kinds[index]);
            self.open.insert(key.clone(), Open { dir, file, group });
        }
        let Some(open) = self.open.get_mut(&key) else {
            return Err(Error::WriterStopped);
        };
        let group = &mut open.group;
        let before = group.bytes;
        let mut column = 0;
        if let Some((conversation_id, position)) = place {
            group.push_text(column, Some(conversation_id.as_bytes()));
            group.push_int(column + 1, Some(position));
            column += 2;
        }
        for value in values {
            let value = value.get(record);
            match self.kinds[index].get(column) {
                Some(Kind::Timestamp) => group.push_int(column, value.and_then(micros)),
                Some(Kind::Integer) => {
                    group.push_int(column, value.and_then(|v| v.parse().ok()));
                }
                _ => group.push_text(column, value.map(str::as_bytes)),
            }
            column += 1;
        }
        if let Some(conversation_id) = conversation_id {
            group.push_text(column, conversation_id.map(str::as_bytes));
            column += 1;
        }
        group.push_text(column, Some(raw.as_bytes()));
        self.buffered += group.bytes - before;
        if group.bytes >= ROW_GROUP_BYTES {
            self.write_group(&key)?;
        }
        if self.buffered > BUFFERED_BYTES / ENCODER_TABLES.len() {
            let largest = self
                .open
                .iter()
                .max_by_key(|(_, open)| open.group.bytes)
                .map(|(key, _)| key.clone());
            if let Some(largest) = largest {
                self.write_group(&largest)?;
            }
        }
        Ok(())
    }

    /// Writes a partition's buffered rows as a row group.
    fn write_group(&mut self, key: &Partition) -> Result<()> {
        let Some(open) = self.open.get_mut(key) else {
            return Ok(());
        };
        if open.group.rows == 0 {
            return Ok(());
        }
        self.buffered -= open.group.bytes;
        open.group
            .write(&mut open.file)
            .map_err(|source| Error::Parquet {
                path: open.dir.join(DATA_FILE_ASIDE),
                source,
            })
    }

    /// Closes every partition's file and renames it into place, then removes the partitions
    /// left without a row: of those to write, or (writing all) every other one on disk, which
    /// a dataset of an older version being rebuilt can have.
    fn publish(&mut self) -> Result<Partitions> {
        let mut partitions = Partitions::default();
        let mut written = BTreeSet::new();
        let keys: Vec<Partition> = self.open.keys().cloned().collect();
        for key in keys {
            self.write_group(&key)?;
            let Some(open) = self.open.remove(&key) else {
                continue;
            };
            publish(open.file, &open.dir)?;
            written.insert(open.dir);
            partitions.written += 1;
        }
        let empty: Vec<PathBuf> = match &self.only {
            Some(only) => only
                .iter()
                .map(|(table, month)| self.partition_dir(*table, month.as_deref()))
                .filter(|dir| !written.contains(dir) && dir.exists())
                .collect(),
            None => self.partitions_on_disk()?,
        };
        let mut tables: BTreeSet<PathBuf> = written
            .iter()
            .filter_map(|dir| dir.parent().map(Path::to_path_buf))
            .collect();
        for dir in empty.into_iter().filter(|dir| !written.contains(dir)) {
            remove_partition(&dir)?;
            tables.extend(dir.parent().map(Path::to_path_buf));
            partitions.removed += 1;
        }
        for table in &tables {
            files::sync_dir(table);
        }
        Ok(partitions)
    }

    fn partition_dir(&self, table: Table, month: Option<&str>) -> PathBuf {
        self.dir
            .join(table.name())
            .join(format!("month={}", month.unwrap_or(NO_MONTH)))
    }

    /// Every partition's directory on disk (named `month=...` in a table's directory).
    fn partitions_on_disk(&self) -> Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        for table in self.tables {
            let table_dir = self.dir.join(table.name());
            let Ok(entries) = std::fs::read_dir(&table_dir) else {
                continue;
            };
            for entry in entries {
                let entry = entry.map_err(Error::io("read", &table_dir))?;
                let ours = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.starts_with("month="));
                if ours && entry.path().is_dir() {
                    found.push(entry.path());
                }
            }
        }
        Ok(found)
    }

    /// Removes the files of the partitions still open, and the directories left empty, so that
    /// the next run finds the directory as this one did (a dataset without a state must be empty).
    fn discard(&mut self) {
        for (_, open) in std::mem::take(&mut self.open) {
            drop(open.file);
            let _ = std::fs::remove_file(open.dir.join(DATA_FILE_ASIDE));
            // `remove_dir` removes only an empty directory: one with other files is left as is.
            let _ = std::fs::remove_dir(&open.dir);
        }
        for table in self.tables {
            let _ = std::fs::remove_dir(self.dir.join(table.name()));
        }
        self.buffered = 0;
    }
}
