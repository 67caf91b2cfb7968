//! A first sync's partitions, encoded while the listing goes on: the state starts empty, so every listed record is new and every partition is written whole.
//!
//! Before, a first sync wrote its state and then read every row back to encode it, one phase
//! after the other, and took 2.1 to 2.6 times as long as `sync --db`; here the records the
//! writer applied go, a page at a time, to a thread of this module, which encodes them into
//! their partitions on the second core while the writer fills the state.
//!
//! Each partition has an open file (written aside as `.data.parquet.tmp`) and a row group being
//! filled. A row group is written once it holds [`ROW_GROUP_BYTES`], and whenever the groups of
//! all partitions together hold more than [`BUFFERED_BYTES`] the largest is written, so that
//! memory stays bounded however the records of the months interleave in the listing. At the
//! finish each file is closed, synced and renamed over its partition's `data.parquet`; a run
//! that fails or is dropped removes the files it wrote aside.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type as SchemaType;
use serde_json::value::RawValue;

use super::{
    DATA_FILE_ASIDE, Kind, NO_MONTH, ROW_GROUP_BYTES, RowGroup, column_kinds, create, micros,
    publish, schema,
};
use crate::columns::{Fields, month_of};
use crate::error::{Error, Result};
use crate::files;
use crate::report::Partitions;
use crate::schema::Table;

/// The row groups of all partitions together hold at most about this much before the largest is
/// written: a first sync's months interleave, so every partition is open at once. (A first sync
/// of 20,000 conversations peaked at 128 MiB with 16 MiB here and 105 MiB with 8; 4 MiB saved
/// little more and makes smaller row groups.)
const BUFFERED_BYTES: usize = 8 << 20;

/// Pages of written records between the writer's thread and the encoder.
const PAGES_IN_FLIGHT: usize = 2;

/// What the writer's thread hands the encoder.
pub(super) enum Records {
    Conversations(Vec<Box<RawValue>>),
    /// Feedback items, each with its conversation's id when known.
    Feedback(Vec<(Box<RawValue>, Option<String>)>),
    /// The last record was sent: publish the partitions.
    Finish,
}

/// The encoder thread of a first sync, and the channel to it.
pub(super) struct Stream {
    sender: Option<SyncSender<Records>>,
    encoder: Option<JoinHandle<Result<Partitions>>>,
}

impl Stream {
    /// Starts the encoder of a first sync of the dataset in `dir`.
    pub(super) fn start(dir: &Path) -> Result<Self> {
        let (sender, receiver) = std::sync::mpsc::sync_channel(PAGES_IN_FLIGHT);
        let mut encoder = Encoder::new(dir)?;
        let handle = std::thread::Builder::new()
            .name("inkeep-mirror-parquet".into())
            .spawn(move || encoder.run(&receiver))
            .map_err(Error::io("start the Parquet encoder for", dir))?;
        Ok(Self {
            sender: Some(sender),
            encoder: Some(handle),
        })
    }

    /// Hands records to the encoder; waits while it is [`PAGES_IN_FLIGHT`] pages behind.
    pub(super) fn send(&mut self, records: Records) -> Result<()> {
        let sent = self
            .sender
            .as_ref()
            .is_some_and(|sender| sender.send(records).is_ok());
        if sent {
            Ok(())
        } else {
            // The encoder stopped: its own error says why.
            self.join().and(Err(Error::WriterStopped))
        }
    }

    /// Publishes every partition and returns what was written.
    pub(super) fn finish(mut self) -> Result<Partitions> {
        self.send(Records::Finish)?;
        self.join()
    }

    fn join(&mut self) -> Result<Partitions> {
        self.sender = None;
        match self.encoder.take() {
            Some(encoder) => encoder.join().map_err(|_| Error::WriterStopped)?,
            None => Err(Error::WriterStopped),
        }
    }
}

impl Drop for Stream {
    /// A run that stops before its finish waits for the encoder to remove what it wrote aside.
    fn drop(&mut self) {
        if self.encoder.is_some() {
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

/// The encoder thread's state: every open partition, by table and month.
struct Encoder {
    dir: PathBuf,
    schemas: [Arc<SchemaType>; 3],
    kinds: [Vec<Kind>; 3],
    open: BTreeMap<(Table, Option<String>), Open>,
    /// The bytes held in all the open row groups.
    buffered: usize,
}

impl Encoder {
    fn new(dir: &Path) -> Result<Self> {
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
            open: BTreeMap::new(),
            buffered: 0,
        })
    }

    /// Encodes what arrives until the finish, then publishes; on an error, or a channel closed
    /// before the finish (the run failed), removes the files written aside.
    fn run(&mut self, receiver: &Receiver<Records>) -> Result<Partitions> {
        let result = self.receive(receiver);
        if result.is_err() {
            self.discard();
        }
        result
    }

    fn receive(&mut self, receiver: &Receiver<Records>) -> Result<Partitions> {
        for records in receiver {
            match records {
                Records::Conversations(records) => {
                    for record in &records {
                        self.conversation(record)?;
                    }
                }
                Records::Feedback(records) => {
                    for (record, conversation_id) in &records {
                        self.feedback(record, conversation_id.as_deref())?;
                    }
                }
                Records::Finish => return self.publish(),
            }
        }
        Err(Error::WriterStopped)
    }

    fn conversation(&mut self, record: &RawValue) -> Result<()> {
        let fields = Fields::of_record("a conversation", record)?;
        let conversation_id = fields.text("id");
        self.row(Table::Conversations, None, &fields, None, record)?;
        let messages: Vec<&RawValue> = fields.messages()?;
        let conversation_id = conversation_id.as_deref().unwrap_or_default();
        for (position, message) in messages.into_iter().enumerate() {
            let fields = Fields::of_record("a message", message)?;
            let place = (conversation_id, position as i64);
            self.row(Table::Messages, Some(place), &fields, None, message)?;
        }
        Ok(())
    }

    fn feedback(&mut self, record: &RawValue, conversation_id: Option<&str>) -> Result<()> {
        let fields = Fields::of_record("a feedback item", record)?;
        self.row(
            Table::Feedback,
            None,
            &fields,
            Some(conversation_id),
            record,
        )
    }

    /// Adds a row to its partition, in the columns' order ([`Table::column_names`]), writing row
    /// groups out as they fill.
    fn row(
        &mut self,
        table: Table,
        place: Option<(&str, i64)>,
        fields: &Fields<'_>,
        conversation_id: Option<Option<&str>>,
        raw: &RawValue,
    ) -> Result<()> {
        let created_at = fields.text("createdAt");
        let key = (table, month_of(created_at.as_deref()).map(str::to_string));
        let index = table as usize;
        if !self.open.contains_key(&key) {
            let dir = self
                .dir
                .join(table.name())
                .join(format!("month={}", key.1.as_deref().unwrap_or(NO_MONTH)));
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
        for spec in table.columns() {
            let value = fields.value(spec);
            match self.kinds[index].get(column) {
                Some(Kind::Timestamp) => group.push_int(column, value.as_deref().and_then(micros)),
                Some(Kind::Integer) => {
                    group.push_int(column, value.as_deref().and_then(|v| v.parse().ok()));
                }
                _ => group.push_text(column, value.as_deref().map(str::as_bytes)),
            }
            column += 1;
        }
        if let Some(conversation_id) = conversation_id {
            group.push_text(column, conversation_id.map(str::as_bytes));
            column += 1;
        }
        group.push_text(column, Some(raw.get().as_bytes()));
        self.buffered += group.bytes - before;
        if group.bytes >= ROW_GROUP_BYTES {
            self.write_group(&key)?;
        }
        if self.buffered > BUFFERED_BYTES {
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
    fn write_group(&mut self, key: &(Table, Option<String>)) -> Result<()> {
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

    /// Closes every partition's file and renames it into place.
    fn publish(&mut self) -> Result<Partitions> {
        let mut partitions = Partitions::default();
        let mut tables = BTreeSet::new();
        let keys: Vec<(Table, Option<String>)> = self.open.keys().cloned().collect();
        for key in keys {
            self.write_group(&key)?;
            let Some(open) = self.open.remove(&key) else {
                continue;
            };
            publish(open.file, &open.dir)?;
            tables.extend(open.dir.parent().map(Path::to_path_buf));
            partitions.written += 1;
        }
        for table in &tables {
            files::sync_dir(table);
        }
        Ok(partitions)
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
        for table in Table::ALL {
            let _ = std::fs::remove_dir(self.dir.join(table.name()));
        }
        self.buffered = 0;
    }
}
