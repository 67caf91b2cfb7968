//! The recorder's crash-safe spool: an append-only journal in a directory, written before a
//! recording call returns, so that a process killed at any point loses nothing it recorded.
//!
//! The journal is a series of segment files (`journal-<n>.log`) of frames: a length, a CRC-32
//! and a payload that is either a record (kind, sequence number, id, JSON body) or an
//! acknowledgement (the record left the queue: delivered or refused for good). An acknowledged
//! conversation version also acknowledges every older version of the same conversation. A
//! recorder started on the directory replays what was not acknowledged, in order, keeping only
//! the newest version of each conversation. A frame cut off by a crash mid-write is detected by
//! its length or CRC and skipped, never fatal. Full segments are compacted: what is still live is
//! copied into a fresh segment and the old ones are deleted. A lock file keeps a second process out.
//!
//! A recording call only appends: a spool at its size limit refuses the record at once, and both
//! the compaction that may make room and the reading back of spilled records do their disk work
//! without the lock that recording calls take.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::queue::Kind;
use crate::error::{Error, Result};

/// The largest size a segment grows to before a new one is started.
const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// The bytes before a frame's payload: its length and its CRC-32, both little-endian.
const HEADER: usize = 8;

/// The largest payload a frame may claim; a larger length is a torn or foreign frame.
const MAX_PAYLOAD: u32 = 4 * 1024 * 1024;

/// How many bytes a spool may hold by default.
pub const DEFAULT_MAX_SPOOL_BYTES: u64 = 1024 * 1024 * 1024;

/// When the spool's writes are forced to the disk (`fsync`).
///
/// Every record is in the operating system's page cache before the recording call returns, which
/// survives the process being killed; forcing it to the disk is what survives a power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// Never forced; the operating system writes the pages back in its own time.
    Never,
    /// Forced by the worker at this interval (one second by default).
    Interval(Duration),
    /// Forced before every recording call returns: the safest and slowest.
    EveryRecord,
}

/// The live records a compaction copies, by sequence number.
type Moving = Vec<(u64, Loc)>;

/// Where a live record's frame is.
#[derive(Clone, Debug)]
struct Loc {
    segment: u64,
    offset: u64,
    len: u32,
    kind: Kind,
    id: String,
}

impl Loc {
    /// The bytes its frame takes in the journal, header included.
    fn frame_len(&self) -> u64 {
        u64::from(self.len) + HEADER as u64
    }
}

/// A record read back from the journal.
#[derive(Debug)]
pub(crate) struct Spilled {
    /// Its place among the spilled records.
    pub position: u64,
    pub seq: u64,
    pub kind: Kind,
    pub body: Vec<u8>,
}

/// Spilled records taken to be read back outside the spool's lock.
pub(crate) struct ReadBack {
    dir: PathBuf,
    entries: Vec<ReadEntry>,
}

struct ReadEntry {
    /// The place the record held among the spilled ones.
    position: u64,
    seq: u64,
    loc: Loc,
    file: Result<Arc<File>>,
}

/// What a read back got: the records read, in order; the first that could not be read, if one
/// could not; and the place and sequence number of each one after it, left unread.
pub(crate) struct ReadOutcome {
    pub read: Vec<Spilled>,
    pub failed: Option<Unreadable>,
    pub unread: Vec<(u64, u64)>,
}

/// A spilled record the disk did not give back.
pub(crate) struct Unreadable {
    pub seq: u64,
    pub kind: Kind,
    pub id: String,
    pub error: Error,
}

impl ReadBack {
    /// Reads the records from the disk, in order, up to the first that cannot be read.
    pub(crate) fn read(self) -> ReadOutcome {
        let mut outcome = ReadOutcome {
            read: Vec::with_capacity(self.entries.len()),
            failed: None,
            unread: Vec::new(),
        };
        for entry in self.entries {
            if outcome.failed.is_some() {
                outcome.unread.push((entry.position, entry.seq));
                continue;
            }
            // The reader of a read back is the only one using these descriptors.
            let payload = entry
                .file
                .and_then(|file| read_payload_from(&file, &self.dir, &entry.loc));
            match payload {
                Ok(payload) => {
                    if let Some(Frame::Record { body_at, .. }) = decode(&payload) {
                        outcome.read.push(Spilled {
                            position: entry.position,
                            seq: entry.seq,
                            kind: entry.loc.kind,
                            body: payload[body_at..].to_vec(),
                        });
                    }
                }
                Err(error) => {
                    outcome.failed = Some(Unreadable {
                        seq: entry.seq,
                        kind: entry.loc.kind,
                        id: entry.loc.id,
                        error,
                    });
                }
            }
        }
        outcome
    }
}

/// One decoded frame.
enum Frame {
    Record {
        seq: u64,
        kind: Kind,
        id: String,
        body_at: usize,
    },
    Ack {
        seq: u64,
        kind: Kind,
        id: String,
    },
}

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Conversation => b'c',
        Kind::Feedback => b'f',
        Kind::Event => b'e',
    }
}

fn byte_kind(byte: u8) -> Option<Kind> {
    match byte {
        b'c' => Some(Kind::Conversation),
        b'f' => Some(Kind::Feedback),
        b'e' => Some(Kind::Event),
        _ => None,
    }
}

/// Encodes a frame: `[len][crc][tag, kind, seq, id_len, id, body]`; the tag is `r` or `a`.
fn encode(tag: u8, kind: Kind, seq: u64, id: &str, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    encode_into(&mut frame, tag, kind, seq, id, body);
    frame
}

/// Writes a frame into `frame`, replacing what it held: a recording call reuses one buffer.
fn encode_into(frame: &mut Vec<u8>, tag: u8, kind: Kind, seq: u64, id: &str, body: &[u8]) {
    let id_len = u16::try_from(id.len()).unwrap_or(u16::MAX);
    let id = &id.as_bytes()[..usize::from(id_len)];
    frame.clear();
    frame.reserve(HEADER + 12 + id.len() + body.len());
    // The length and checksum go here once the payload is written.
    frame.extend_from_slice(&[0; HEADER]);
    frame.push(tag);
    frame.push(kind_byte(kind));
    frame.extend_from_slice(&seq.to_le_bytes());
    frame.extend_from_slice(&id_len.to_le_bytes());
    frame.extend_from_slice(id);
    frame.extend_from_slice(body);
    let payload = frame.get(HEADER..).unwrap_or_default();
    let length = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let checksum = crc32(payload).to_le_bytes();
    frame[..4].copy_from_slice(&length);
    frame[4..HEADER].copy_from_slice(&checksum);
}

/// A record's payload, read from its segment.
fn read_payload(dir: &Path, loc: &Loc) -> Result<Vec<u8>> {
    let path = dir.join(segment_name(loc.segment));
    let file = File::open(&path).map_err(|e| io_error("cannot open", &path, e))?;
    read_payload_from(&file, dir, loc)
}

/// A record's payload, read from its segment, already open.
fn read_payload_from(mut file: &File, dir: &Path, loc: &Loc) -> Result<Vec<u8>> {
    let failed = |e| io_error("cannot read", &dir.join(segment_name(loc.segment)), e);
    file.seek(SeekFrom::Start(loc.offset + HEADER as u64))
        .map_err(failed)?;
    let mut payload = vec![0u8; loc.len as usize];
    file.read_exact(&mut payload).map_err(failed)?;
    Ok(payload)
}

fn decode(payload: &[u8]) -> Option<Frame> {
    let tag = *payload.first()?;
    let kind = byte_kind(*payload.get(1)?)?;
    let seq = u64::from_le_bytes(payload.get(2..10)?.try_into().ok()?);
    let id_len = usize::from(u16::from_le_bytes(payload.get(10..12)?.try_into().ok()?));
    let id = std::str::from_utf8(payload.get(12..12 + id_len)?)
        .ok()?
        .to_string();
    match tag {
        b'r' => Some(Frame::Record {
            seq,
            kind,
            id,
            body_at: 12 + id_len,
        }),
        b'a' => Some(Frame::Ack { seq, kind, id }),
        _ => None,
    }
}

/// CRC-32 (IEEE), bitwise: frames are small and this keeps the crate free of another dependency.
fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

fn io_error(what: &str, path: &Path, error: io::Error) -> Error {
    Error::configuration_with_source(format!("spool: {what} {}", path.display()), error)
}

fn segment_name(n: u64) -> String {
    format!("journal-{n:010}.log")
}

fn segment_number(name: &str) -> Option<u64> {
    name.strip_prefix("journal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The spool holds users' conversations: readable by its owner only.
        options.mode(0o600);
    }
    options
}

/// The segments of a spool directory, by number.
fn segments(dir: &Path) -> Result<BTreeMap<u64, PathBuf>> {
    let mut found = BTreeMap::new();
    let entries = fs::read_dir(dir).map_err(|e| io_error("cannot read", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error("cannot read", dir, e))?;
        if let Some(n) = entry.file_name().to_str().and_then(segment_number) {
            found.insert(n, entry.path());
        }
    }
    Ok(found)
}

/// What a scan of the journal found.
#[derive(Debug, Default)]
struct Scan {
    live: BTreeMap<u64, Loc>,
    /// Frames cut off or damaged, skipped.
    torn: u64,
    /// For each segment, where its last whole frame ends.
    ends: BTreeMap<u64, u64>,
    next_seq: u64,
}

/// Reads every segment: records, then acknowledgements applied, so that their order across
/// segments (compaction copies old records into a newer segment) does not matter.
fn scan(dir: &Path) -> Result<Scan> {
    let mut scan = Scan {
        next_seq: 1,
        ..Scan::default()
    };
    let mut acks: Vec<(u64, Kind, String)> = Vec::new();
    for (n, path) in segments(dir)? {
        let bytes = fs::read(&path).map_err(|e| io_error("cannot read", &path, e))?;
        let mut at = 0usize;
        while at + HEADER <= bytes.len() {
            let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            let crc =
                u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
            let end = at + HEADER + len as usize;
            if len > MAX_PAYLOAD || end > bytes.len() || crc32(&bytes[at + HEADER..end]) != crc {
                break;
            }
            let payload = &bytes[at + HEADER..end];
            match decode(payload) {
                Some(Frame::Record { seq, kind, id, .. }) => {
                    scan.next_seq = scan.next_seq.max(seq + 1);
                    scan.live.insert(
                        seq,
                        Loc {
                            segment: n,
                            offset: at as u64,
                            len,
                            kind,
                            id,
                        },
                    );
                }
                Some(Frame::Ack { seq, kind, id }) => {
                    scan.next_seq = scan.next_seq.max(seq + 1);
                    acks.push((seq, kind, id));
                }
                None => {}
            }
            at = end;
        }
        if at < bytes.len() {
            // A frame cut off by a crash mid-write (or damaged): what follows it cannot be trusted.
            scan.torn += 1;
            tracing::warn!(
                segment = %path.display(),
                offset = at,
                "spool: skipping a record cut off or damaged, as a crash mid-write leaves it"
            );
        }
        scan.ends.insert(n, at as u64);
    }
    let mut by_conversation: HashMap<String, Vec<u64>> = HashMap::new();
    for (seq, loc) in &scan.live {
        if loc.kind == Kind::Conversation {
            by_conversation
                .entry(loc.id.clone())
                .or_default()
                .push(*seq);
        }
    }
    for (seq, kind, id) in acks {
        if kind == Kind::Conversation {
            for older in by_conversation
                .get(&id)
                .into_iter()
                .flatten()
                .filter(|s| **s <= seq)
            {
                scan.live.remove(older);
            }
        } else {
            scan.live.remove(&seq);
        }
    }
    Ok(scan)
}

/// What a spool directory holds, read without sending or changing anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolStatus {
    /// Conversations with a version not yet delivered (only the newest version is sent).
    pub conversations: u64,
    /// Conversation versions not yet delivered, older ones included.
    pub conversation_versions: u64,
    /// Feedback items not yet delivered.
    pub feedback: u64,
    /// Events not yet delivered.
    pub events: u64,
    /// The size of the journal's files.
    pub bytes: u64,
    /// How many segment files the journal has.
    pub segments: u64,
    /// Records cut off or damaged (by a crash mid-write), which are skipped.
    pub torn: u64,
    /// Whether a process holds the spool's lock now.
    pub locked: bool,
}

impl SpoolStatus {
    /// Reads what the spool in `dir` holds, without taking its lock or changing it.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when the directory or a segment cannot be read.
    pub fn read(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let scan = scan(dir)?;
        let mut status = SpoolStatus {
            torn: scan.torn,
            ..SpoolStatus::default()
        };
        let mut conversations = BTreeSet::new();
        for loc in scan.live.values() {
            match loc.kind {
                Kind::Conversation => {
                    status.conversation_versions += 1;
                    conversations.insert(loc.id.clone());
                }
                Kind::Feedback => status.feedback += 1,
                Kind::Event => status.events += 1,
            }
        }
        status.conversations = conversations.len() as u64;
        for path in segments(dir)?.values() {
            status.segments += 1;
            status.bytes += fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        }
        status.locked = match File::open(dir.join(LOCK_FILE)) {
            Ok(file) => match file.try_lock() {
                Ok(()) => {
                    let _ = file.unlock();
                    false
                }
                Err(_) => true,
            },
            Err(_) => false,
        };
        Ok(status)
    }

    /// Records not yet delivered, counting each conversation once.
    pub fn pending(&self) -> u64 {
        self.conversations + self.feedback + self.events
    }
}

const LOCK_FILE: &str = "lock";

/// An open spool, held by one recorder.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    /// Held (locked) for as long as the spool is open.
    lock: File,
    current: File,
    current_no: u64,
    sizes: BTreeMap<u64, u64>,
    live: BTreeMap<u64, Loc>,
    /// Live versions of each conversation, to acknowledge older ones with the newest.
    conversations: HashMap<String, BTreeSet<u64>>,
    /// Live records not in memory, in order: replayed at start, or spilled from a full queue.
    /// A conversation keeps the place of its oldest version held here, with its newest version
    /// (by position, the sequence number it is read back from).
    spilled: BTreeMap<u64, u64>,
    /// The position of each conversation in `spilled`.
    spilled_conversation: HashMap<String, u64>,
    next_seq: u64,
    max_bytes: u64,
    fsync: FsyncPolicy,
    /// The buffer a record's frame is written into before it goes to the journal in one write.
    frame: Vec<u8>,
    /// Segments closed since the last sync, still to be forced to the disk.
    unsynced: Vec<File>,
    /// The bytes of live frames in each segment, kept as records come and go, so that whether a
    /// compaction is worth it is known without walking every live record.
    live_bytes: HashMap<u64, u64>,
    /// The places of the spilled records being read back without the lock.
    reading_back: BTreeSet<u64>,
    /// A compaction is copying records outside the lock (see [`Spool::plan_compaction`]).
    compacting: bool,
}

/// A compaction planned under the spool's lock and run outside it: the live records of closed
/// segments are copied into `target`, and those segments are deleted once the copy is on the disk.
pub(crate) struct Compaction {
    dir: PathBuf,
    /// Keeps the spool's lock held (a duplicate of its descriptor) until the copy is done, even
    /// if the recorder is shut down meanwhile, so that no other process opens a half-copied spool.
    _lock: File,
    target: u64,
    old: Vec<u64>,
    moving: Vec<(u64, Loc)>,
}

/// What a compaction copied: each record's new offset in the target, and the target's size.
pub(crate) struct Compacted {
    target: u64,
    old: Vec<u64>,
    offsets: Vec<(u64, u64)>,
    size: u64,
}

/// Why a record could not be written to the spool.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// The spool is at its size limit.
    Full,
    Io(Error),
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, takes its lock, and replays what it holds.
    pub(crate) fn open(dir: &Path, max_bytes: u64, fsync: FsyncPolicy) -> Result<Self> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .map_err(|e| io_error("cannot create", dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = open_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error("cannot open", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::configuration(format!(
                    "spool: {} is in use by another process (its lock is held)",
                    dir.display()
                )));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_error("cannot lock", &lock_path, e)),
        }
        let scan = scan(dir)?;
        // Cut a torn tail off, so that new frames follow whole ones.
        for (n, path) in segments(dir)? {
            let end = scan.ends.get(&n).copied().unwrap_or(0);
            let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if len > end {
                let file = open_options()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io_error("cannot open", &path, e))?;
                file.set_len(end)
                    .map_err(|e| io_error("cannot truncate", &path, e))?;
            }
        }
        let mut sizes = BTreeMap::new();
        for (n, path) in segments(dir)? {
            sizes.insert(n, fs::metadata(&path).map(|m| m.len()).unwrap_or(0));
        }
        let current_no = sizes.keys().next_back().map_or(1, |n| n + 1);
        let current = Self::create_segment(dir, current_no)?;
        sizes.insert(current_no, 0);
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            lock,
            current,
            current_no,
            sizes,
            live: BTreeMap::new(),
            conversations: HashMap::new(),
            spilled: BTreeMap::new(),
            spilled_conversation: HashMap::new(),
            next_seq: scan.next_seq,
            max_bytes,
            fsync,
            frame: Vec::new(),
            unsynced: Vec::new(),
            live_bytes: HashMap::new(),
            reading_back: BTreeSet::new(),
            compacting: false,
        };
        for (seq, loc) in scan.live {
            spool.track(seq, loc);
            spool.spill(seq);
        }
        if !spool.live.is_empty() {
            tracing::info!(
                records = spool.live.len(),
                spool = %dir.display(),
                "spool: replaying records left by an earlier run"
            );
        }
        Ok(spool)
    }

    fn create_segment(dir: &Path, n: u64) -> Result<File> {
        let path = dir.join(segment_name(n));
        open_options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error("cannot create", &path, e))
    }

    fn track(&mut self, seq: u64, loc: Loc) {
        if loc.kind == Kind::Conversation {
            self.conversations
                .entry(loc.id.clone())
                .or_default()
                .insert(seq);
        }
        *self.live_bytes.entry(loc.segment).or_default() += loc.frame_len();
        self.live.insert(seq, loc);
    }

    /// Forgets a record that left the spool.
    fn untrack(&mut self, seq: u64) {
        if let Some(loc) = self.live.remove(&seq)
            && let Some(bytes) = self.live_bytes.get_mut(&loc.segment)
        {
            *bytes = bytes.saturating_sub(loc.frame_len());
        }
    }

    /// The sequence number the next record gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.sizes.values().sum()
    }

    fn write(&mut self, frame: &[u8]) -> io::Result<()> {
        self.current.write_all(frame)?;
        if let Some(size) = self.sizes.get_mut(&self.current_no) {
            *size += frame.len() as u64;
        }
        Ok(())
    }

    /// Writes a record and returns its sequence number; the record is in the page cache (and on
    /// the disk with [`FsyncPolicy::EveryRecord`]) when this returns.
    pub(crate) fn append(
        &mut self,
        kind: Kind,
        id: &str,
        body: &[u8],
    ) -> std::result::Result<u64, AppendError> {
        let seq = self.next_seq;
        let mut frame = std::mem::take(&mut self.frame);
        encode_into(&mut frame, b'r', kind, seq, id, body);
        let written = self.append_frame(&frame);
        // One large record must not keep its buffer's size for good.
        if frame.capacity() > 1024 * 1024 {
            frame = Vec::new();
        }
        self.frame = frame;
        let (offset, frame_len) = written?;
        if self.fsync == FsyncPolicy::EveryRecord {
            self.current
                .sync_data()
                .map_err(|e| AppendError::Io(io_error("cannot sync", &self.dir, e)))?;
        }
        self.next_seq += 1;
        self.track(
            seq,
            Loc {
                segment: self.current_no,
                offset,
                len: u32::try_from(frame_len - HEADER).unwrap_or(u32::MAX),
                kind,
                id: id.to_string(),
            },
        );
        if offset + frame_len as u64 >= SEGMENT_BYTES {
            self.roll().map_err(AppendError::Io)?;
        }
        Ok(seq)
    }

    /// Writes an encoded frame at the end of the journal; returns where it went and its length.
    /// A spool at its size limit refuses the frame at once: the compaction that may make room
    /// copies and syncs whole segments, so it runs off the recording call (the recorder plans it
    /// with [`Spool::plan_compaction`] when a record is refused and when one is delivered).
    fn append_frame(&mut self, frame: &[u8]) -> std::result::Result<(u64, usize), AppendError> {
        if self.bytes() + frame.len() as u64 > self.max_bytes {
            return Err(AppendError::Full);
        }
        let offset = self.sizes.get(&self.current_no).copied().unwrap_or(0);
        self.write(frame)
            .map_err(|e| AppendError::Io(io_error("cannot write", &self.dir, e)))?;
        Ok((offset, frame.len()))
    }

    /// Marks a written record as held by the spool only, to be read back when there is room. A
    /// conversation version takes the place of an older one held here, so that feedback recorded
    /// after the older one is not read back before the conversation.
    pub(crate) fn spill(&mut self, seq: u64) {
        let Some(loc) = self.live.get(&seq) else {
            return;
        };
        if loc.kind == Kind::Conversation {
            match self.spilled_conversation.get(&loc.id) {
                Some(position) => {
                    self.spilled.insert(*position, seq);
                }
                None => {
                    self.spilled_conversation.insert(loc.id.clone(), seq);
                    self.spilled.insert(seq, seq);
                }
            }
        } else {
            self.spilled.insert(seq, seq);
        }
    }

    /// Whether records are held by the spool only, or being read back into memory.
    pub(crate) fn has_spilled(&self) -> bool {
        !self.spilled.is_empty() || !self.reading_back.is_empty()
    }

    pub(crate) fn spilled_len(&self) -> usize {
        self.spilled.len() + self.reading_back.len()
    }

    /// The place of the oldest record held by the spool only, counting those being read back.
    pub(crate) fn first_spilled(&self) -> Option<u64> {
        let held = self.spilled.keys().next();
        held.into_iter()
            .chain(self.reading_back.first())
            .min()
            .copied()
    }

    /// Takes up to `n` spilled records, oldest first, to be read back without the spool's lock
    /// ([`ReadBack::read`]), with their segments open, so that a compaction that deletes a segment
    /// meanwhile does not take the record away. Until [`Spool::end_read_back`], they count as
    /// spilled: a record recorded meanwhile is spilled behind them, not queued before them.
    pub(crate) fn start_read_back(&mut self, n: usize) -> ReadBack {
        let mut entries = Vec::new();
        let mut open: HashMap<u64, Arc<File>> = HashMap::new();
        while entries.len() < n {
            let Some((position, seq)) = self.spilled.pop_first() else {
                break;
            };
            let Some(loc) = self.live.get(&seq).cloned() else {
                continue;
            };
            if loc.kind == Kind::Conversation
                && self.spilled_conversation.get(&loc.id) == Some(&position)
            {
                self.spilled_conversation.remove(&loc.id);
            }
            let file = match open.get(&loc.segment) {
                Some(file) => Ok(Arc::clone(file)),
                None => {
                    let path = self.dir.join(segment_name(loc.segment));
                    File::open(&path)
                        .map(Arc::new)
                        .inspect(|file| {
                            open.insert(loc.segment, Arc::clone(file));
                        })
                        .map_err(|e| io_error("cannot open", &path, e))
                }
            };
            self.reading_back.insert(position);
            entries.push(ReadEntry {
                position,
                seq,
                loc,
                file,
            });
        }
        ReadBack {
            dir: self.dir.clone(),
            entries,
        }
    }

    /// Ends a read back: what was not taken into memory is held by the spool again, in its place.
    pub(crate) fn end_read_back(&mut self, unread: impl IntoIterator<Item = (u64, u64)>) {
        for (position, seq) in unread {
            self.hold_again(position, seq);
        }
        self.reading_back.clear();
    }

    /// Holds a record read back but not taken again at `position`. A conversation spilled again
    /// meanwhile keeps the earlier place, with its newer version.
    fn hold_again(&mut self, position: u64, seq: u64) {
        let Some(loc) = self.live.get(&seq) else {
            return;
        };
        if loc.kind == Kind::Conversation {
            let newer = self
                .spilled_conversation
                .get(&loc.id)
                .and_then(|held_at| self.spilled.remove(held_at));
            let id = loc.id.clone();
            self.spilled
                .insert(position, newer.map_or(seq, |newer| newer.max(seq)));
            self.spilled_conversation.insert(id, position);
        } else {
            self.spilled.insert(position, seq);
        }
    }

    /// Whether a record is still to be delivered.
    pub(crate) fn is_live(&self, seq: u64) -> bool {
        self.live.contains_key(&seq)
    }

    /// Reads back up to `n` spilled records, oldest first; they are in memory afterwards.
    #[cfg(test)]
    pub(crate) fn take_spilled(&mut self, n: usize) -> Result<Vec<Spilled>> {
        let outcome = self.start_read_back(n).read();
        let mut unread = outcome.unread;
        if let Some(failed) = &outcome.failed {
            // Held again at its sequence number: a test's spool has no older version in its way.
            unread.push((failed.seq, failed.seq));
        }
        self.end_read_back(unread);
        match outcome.failed {
            Some(failed) => Err(failed.error),
            None => Ok(outcome.read),
        }
    }

    #[cfg(test)]
    fn read_payload(&self, loc: &Loc) -> Result<Vec<u8>> {
        read_payload(&self.dir, loc)
    }

    /// Records that a record left the queue (delivered, or refused for good); for a conversation,
    /// every older version goes with it.
    pub(crate) fn acknowledge(&mut self, kind: Kind, seq: u64, id: &str) -> Result<()> {
        let frame = encode(b'a', kind, seq, id, &[]);
        self.write(&frame)
            .map_err(|e| io_error("cannot write", &self.dir, e))?;
        let acked: Vec<u64> = if kind == Kind::Conversation {
            let Some(versions) = self.conversations.get_mut(id) else {
                return Ok(());
            };
            let newer = versions.split_off(&(seq + 1));
            let acked = std::mem::replace(versions, newer);
            if versions.is_empty() {
                self.conversations.remove(id);
            }
            if let Some(position) = self.spilled_conversation.get(id).copied()
                && self.spilled.get(&position).is_some_and(|held| *held <= seq)
            {
                self.spilled_conversation.remove(id);
                self.spilled.remove(&position);
            }
            acked.into_iter().collect()
        } else {
            vec![seq]
        };
        for seq in acked {
            self.untrack(seq);
            if kind != Kind::Conversation {
                self.spilled.remove(&seq);
            }
        }
        if self.sizes.get(&self.current_no).copied().unwrap_or(0) >= SEGMENT_BYTES {
            self.roll()?;
        }
        Ok(())
    }

    /// Forces what was written to the disk.
    pub(crate) fn sync(&mut self) -> Result<()> {
        for file in self.files_to_sync() {
            file.sync_data()
                .map_err(|e| io_error("cannot sync", &self.dir, e))?;
        }
        Ok(())
    }

    /// The files a sync forces to the disk (the current segment and the segments closed since the
    /// last sync), to be synced outside the lock: a sync can take a disk's whole latency.
    pub(crate) fn files_to_sync(&mut self) -> Vec<File> {
        let mut files = std::mem::take(&mut self.unsynced);
        match self.current.try_clone() {
            Ok(current) => files.push(current),
            Err(error) => tracing::warn!(error = %error, "spool: cannot sync the journal"),
        }
        files
    }

    /// Starts a new segment. The closed one is synced and compacted later, off the recording
    /// call (see [`Spool::plan_compaction`]): a recording call only opens a file.
    fn roll(&mut self) -> Result<()> {
        let next = Self::create_segment(&self.dir, self.current_no + 1)?;
        self.current_no += 1;
        let closed = std::mem::replace(&mut self.current, next);
        if self.fsync != FsyncPolicy::Never {
            self.unsynced.push(closed);
        }
        self.sizes.insert(self.current_no, 0);
        Ok(())
    }

    /// The closed segments and their live records, when compacting them is worth it: nothing is
    /// done while more than half of those segments is still live, so that a long outage does not
    /// copy the same records again at every new segment.
    fn compaction_candidates(&self) -> Option<(Vec<u64>, Moving)> {
        let old: Vec<u64> = self
            .sizes
            .keys()
            .copied()
            .filter(|n| *n != self.current_no)
            .collect();
        if old.is_empty() {
            return None;
        }
        let old_bytes: u64 = old.iter().filter_map(|n| self.sizes.get(n)).sum();
        let live_bytes: u64 = old.iter().filter_map(|n| self.live_bytes.get(n)).sum();
        if live_bytes * 2 > old_bytes {
            return None;
        }
        let moving: Vec<(u64, Loc)> = self
            .live
            .iter()
            .filter(|(_, loc)| loc.segment != self.current_no)
            .map(|(seq, loc)| (*seq, loc.clone()))
            .collect();
        Some((old, moving))
    }

    /// Plans a compaction of the closed segments when one is due and none is running; the copy
    /// ([`Compaction::run`]) then happens without the lock, and [`Spool::finish_compaction`]
    /// makes it count. The current segment is closed too, so that the target's number is below
    /// every segment written afterwards.
    pub(crate) fn plan_compaction(&mut self) -> Result<Option<Compaction>> {
        if self.compacting {
            return Ok(None);
        }
        self.prepare_compaction()
    }

    /// The compaction of the closed segments, when one is worth it (see
    /// [`Spool::compaction_candidates`]); only a compaction that copies records reserves a target
    /// and closes the current segment.
    fn prepare_compaction(&mut self) -> Result<Option<Compaction>> {
        let Some((old, moving)) = self.compaction_candidates() else {
            return Ok(None);
        };
        let lock = self
            .lock
            .try_clone()
            .map_err(|e| io_error("cannot compact", &self.dir, e))?;
        let target = self.current_no + 1;
        if !moving.is_empty() {
            // The next current segment comes after the target.
            self.current_no += 1;
            self.roll()?;
        }
        self.compacting = true;
        Ok(Some(Compaction {
            dir: self.dir.clone(),
            _lock: lock,
            target,
            old,
            moving,
        }))
    }

    /// Moves the copied records to the target and drops the closed segments from the spool;
    /// returns the files to delete, which nothing refers to any more. A record acknowledged while
    /// the copy ran stays acknowledged: its copy replays with its acknowledgement, as one.
    /// A failed copy leaves the spool as it was, with its segments.
    pub(crate) fn finish_compaction(
        &mut self,
        compacted: Result<Compacted>,
    ) -> Result<Vec<PathBuf>> {
        self.compacting = false;
        let compacted = compacted?;
        for (seq, offset) in compacted.offsets {
            if let Some(live) = self.live.get_mut(&seq)
                && compacted.old.contains(&live.segment)
            {
                if let Some(bytes) = self.live_bytes.get_mut(&live.segment) {
                    *bytes = bytes.saturating_sub(live.frame_len());
                }
                *self.live_bytes.entry(compacted.target).or_default() += live.frame_len();
                live.segment = compacted.target;
                live.offset = offset;
            }
        }
        if compacted.size > 0 {
            self.sizes.insert(compacted.target, compacted.size);
        }
        let mut delete = vec![];
        for n in compacted.old {
            self.sizes.remove(&n);
            self.live_bytes.remove(&n);
            delete.push(self.dir.join(segment_name(n)));
        }
        Ok(delete)
    }
}

impl Compaction {
    /// Copies the live records into the target and forces it to the disk; touches nothing the
    /// recording calls use, so it runs without the spool's lock.
    pub(crate) fn run(self) -> Result<Compacted> {
        let (offsets, size) = if self.moving.is_empty() {
            (vec![], 0)
        } else {
            copy_records(&self.dir, self.target, &self.moving).inspect_err(|_| {
                // What was copied is a duplicate of what the closed segments still hold.
                let _ = fs::remove_file(self.dir.join(segment_name(self.target)));
            })?
        };
        Ok(Compacted {
            target: self.target,
            old: self.old,
            offsets,
            size,
        })
    }
}

/// Copies records into segment `target` (created or appended to) and syncs it; returns each
/// record's offset there and the segment's size.
fn copy_records(dir: &Path, target: u64, moving: &[(u64, Loc)]) -> Result<(Vec<(u64, u64)>, u64)> {
    let path = dir.join(segment_name(target));
    let mut file = open_options()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| io_error("cannot create", &path, e))?;
    let mut offset = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut offsets = Vec::with_capacity(moving.len());
    let mut frame = Vec::new();
    for (seq, loc) in moving {
        let payload = read_payload(dir, loc)?;
        frame.clear();
        frame.extend_from_slice(&loc.len.to_le_bytes());
        frame.extend_from_slice(&crc32(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        file.write_all(&frame)
            .map_err(|e| io_error("cannot write", &path, e))?;
        offsets.push((*seq, offset));
        offset += frame.len() as u64;
    }
    file.sync_data()
        .map_err(|e| io_error("cannot sync", &path, e))?;
    Ok((offsets, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "inkeep-spool-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn append(spool: &mut Spool, kind: Kind, id: &str, body: &str) -> u64 {
        match spool.append(kind, id, body.as_bytes()) {
            Ok(seq) => seq,
            Err(error) => panic!("append: {error:?}"),
        }
    }

    #[test]
    fn the_crc_is_the_standard_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_reopened_spool_replays_what_was_not_acknowledged_newest_version_only() -> Result<()> {
        let dir = temp_dir("replay");
        {
            let mut spool = Spool::open(&dir, DEFAULT_MAX_SPOOL_BYTES, FsyncPolicy::Never)?;
            let v1 = append(&mut spool, Kind::Conversation, "c", "{\"v\":1}");
            append(&mut spool, Kind::Conversation, "c", "{\"v\":2}");
            let fb = append(&mut spool, Kind::Feedback, "f", "{}");
            append(&mut spool, Kind::Conversation, "d", "{\"v\":1}");
            let delivered = append(&mut spool, Kind::Conversation, "d", "{\"v\":2}");
            spool.acknowledge(Kind::Conversation, delivered, "d")?;
            assert!(fb > v1);
            assert!(
                Spool::open(&dir, DEFAULT_MAX_SPOOL_BYTES, FsyncPolicy::Never).is_err(),
                "a second opener is refused by the lock"
            );
        }
        let mut spool = Spool::open(&dir, DEFAULT_MAX_SPOOL_BYTES, FsyncPolicy::Never)?;
        let replayed = spool.take_spilled(10)?;
        let bodies: Vec<(Kind, String)> = replayed
            .iter()
            .map(|s| (s.kind, String::from_utf8_lossy(&s.body).into_owned()))
            .collect();
        assert_eq!(
            bodies,
            vec![
                (Kind::Conversation, "{\"v\":2}".to_string()),
                (Kind::Feedback, "{}".to_string())
            ]
        );
        assert!(spool.next_seq() > 5);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for path in segments(&dir)?.values() {
                let mode = fs::metadata(path)
                    .map(|m| m.permissions().mode())
                    .unwrap_or(0);
                assert_eq!(mode & 0o777, 0o600, "{}", path.display());
            }
        }
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn a_torn_last_record_is_skipped_and_cut_off() -> Result<()> {
        let dir = temp_dir("torn");
        {
            let mut spool = Spool::open(&dir, DEFAULT_MAX_SPOOL_BYTES, FsyncPolicy::Never)?;
            append(&mut spool, Kind::Event, "e1", "{\"a\":1}");
            append(&mut spool, Kind::Event, "e2", "{\"a\":2}");
        }
        let Some(path) = segments(&dir)?
            .values()
            .find(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0) > 0)
            .cloned()
        else {
            panic!("a segment with records");
        };
        let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let file = open_options()
            .write(true)
            .open(&path)
            .map_err(|e| io_error("open", &path, e))?;
        file.set_len(len - 3)
            .map_err(|e| io_error("truncate", &path, e))?;
        drop(file);
        let status = SpoolStatus::read(&dir)?;
        assert_eq!((status.events, status.torn), (1, 1));
        let mut spool = Spool::open(&dir, DEFAULT_MAX_SPOOL_BYTES, FsyncPolicy::Never)?;
        assert_eq!(spool.take_spilled(10)?.len(), 1);
        append(&mut spool, Kind::Event, "e3", "{\"a\":3}");
        drop(spool);
        assert_eq!(
            SpoolStatus::read(&dir)?.torn,
            0,
            "the torn tail was cut off"
        );
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    /// What the recorder does after a delivery or a refused record: plans a compaction and runs
    /// it (here at once; the recorder runs it on a thread of its own).
    fn compact_as_the_recorder_does(spool: &mut Spool) -> Result<()> {
        if let Some(compaction) = spool.plan_compaction()? {
            for path in spool.finish_compaction(compaction.run())? {
                fs::remove_file(&path).map_err(|e| io_error("cannot delete", &path, e))?;
            }
        }
        Ok(())
    }

    #[test]
    fn compaction_keeps_what_is_live_and_bounds_the_size() -> Result<()> {
        let dir = temp_dir("compact");
        let body = "x".repeat(100_000);
        let mut spool = Spool::open(&dir, 20 * 1024 * 1024, FsyncPolicy::Never)?;
        let mut last = 0;
        let mut refused = 0;
        for n in 0..300 {
            let id = format!("c{}", n % 3);
            let seq = match spool.append(Kind::Conversation, &id, body.as_bytes()) {
                Ok(seq) => seq,
                Err(AppendError::Full) => {
                    refused += 1;
                    compact_as_the_recorder_does(&mut spool)?;
                    continue;
                }
                Err(AppendError::Io(error)) => return Err(error),
            };
            if n % 3 != 0 {
                spool.acknowledge(Kind::Conversation, seq, &id)?;
                compact_as_the_recorder_does(&mut spool)?;
            }
            last = seq;
        }
        assert!(spool.bytes() < 20 * 1024 * 1024, "{}", spool.bytes());
        assert_eq!(
            refused, 0,
            "compacting after deliveries keeps room for what is live"
        );
        assert!(last > 0);
        drop(spool);
        let status = SpoolStatus::read(&dir)?;
        assert_eq!(status.conversations, 1, "{status:?}");
        assert!(matches!(
            Spool::open(&dir, 150_000, FsyncPolicy::Never)?.append(
                Kind::Event,
                "big",
                body.as_bytes()
            ),
            Err(AppendError::Full)
        ));
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    /// Records are read back without the lock: one recorded meanwhile is spilled behind them, and
    /// what the queue could not take is held again in its place, a conversation with its newest
    /// version.
    #[test]
    fn a_read_back_keeps_the_order_of_what_is_recorded_meanwhile() -> Result<()> {
        let dir = temp_dir("read-back");
        let mut spool = Spool::open(&dir, DEFAULT_MAX_SPOOL_BYTES, FsyncPolicy::Never)?;
        let first = append(&mut spool, Kind::Conversation, "c", "{\"v\":1}");
        spool.spill(first);
        let feedback = append(&mut spool, Kind::Feedback, "f", "{\"f\":1}");
        spool.spill(feedback);
        let batch = spool.start_read_back(10);
        assert!(spool.has_spilled(), "records being read count as spilled");
        assert_eq!(spool.first_spilled(), Some(first));
        let newer = append(&mut spool, Kind::Conversation, "c", "{\"v\":2}");
        spool.spill(newer);
        let outcome = batch.read();
        assert!(outcome.failed.is_none());
        let read = outcome.read;
        assert_eq!(
            read.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![first, feedback]
        );
        // The queue was full: neither was taken.
        spool.end_read_back(read.iter().map(|r| (r.position, r.seq)));
        let again: Vec<(u64, Vec<u8>)> = spool
            .take_spilled(10)?
            .into_iter()
            .map(|r| (r.seq, r.body))
            .collect();
        assert_eq!(
            again,
            vec![
                (newer, b"{\"v\":2}".to_vec()),
                (feedback, b"{\"f\":1}".to_vec())
            ]
        );
        assert!(!spool.has_spilled());
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    /// A record the disk does not give back (here, its segment was cut short after it was
    /// spilled) is reported with what it was, and those before it are read.
    #[test]
    fn a_record_that_cannot_be_read_back_is_reported_not_fatal() -> Result<()> {
        let dir = temp_dir("unreadable");
        let mut spool = Spool::open(&dir, DEFAULT_MAX_SPOOL_BYTES, FsyncPolicy::Never)?;
        let first = append(&mut spool, Kind::Event, "e1", "{\"a\":1}");
        spool.spill(first);
        let second = append(&mut spool, Kind::Event, "e2", "{\"a\":2}");
        spool.spill(second);
        let path = dir.join(segment_name(spool.current_no));
        let len = fs::metadata(&path)
            .map_err(|e| io_error("stat", &path, e))?
            .len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_len(len - 3))
            .map_err(|e| io_error("truncate", &path, e))?;
        let outcome = spool.start_read_back(10).read();
        assert_eq!(
            outcome.read.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![first]
        );
        let failed = outcome
            .failed
            .ok_or_else(|| Error::invalid_input("the cut record was read"))?;
        assert_eq!(
            (failed.seq, failed.kind, failed.id.as_str()),
            (second, Kind::Event, "e2")
        );
        assert!(outcome.unread.is_empty());
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    /// A spool at its limit refuses at once, without copying on the call, and the compaction the
    /// recorder then runs makes room for what comes next.
    #[test]
    fn a_full_spool_refuses_at_once_and_a_compaction_makes_room() -> Result<()> {
        let dir = temp_dir("full");
        let body = "z".repeat(100_000);
        let mut spool = Spool::open(&dir, 20 * 1024 * 1024, FsyncPolicy::Never)?;
        let mut n = 0;
        loop {
            match spool.append(Kind::Event, &format!("e{n}"), body.as_bytes()) {
                // Delivered at once: the journal fills with what is no longer needed.
                Ok(seq) => spool.acknowledge(Kind::Event, seq, "")?,
                Err(AppendError::Full) => break,
                Err(AppendError::Io(error)) => return Err(error),
            }
            n += 1;
        }
        let segments_before = spool.sizes.len();
        assert!(segments_before > 2, "{segments_before}");
        assert!(
            matches!(
                spool.append(Kind::Event, "again", body.as_bytes()),
                Err(AppendError::Full)
            ),
            "the refusal did not compact"
        );
        assert_eq!(spool.sizes.len(), segments_before);
        compact_as_the_recorder_does(&mut spool)?;
        // What is left is the segment being written, which a compaction leaves alone.
        assert!(spool.bytes() <= SEGMENT_BYTES, "{}", spool.bytes());
        let seq = append(&mut spool, Kind::Event, "after", &body);
        assert_eq!(spool.live.keys().copied().collect::<Vec<_>>(), vec![seq]);
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    /// The compaction a recorder's worker runs on a blocking thread: records written and
    /// acknowledged while it copies are neither lost nor brought back, and the closed segments go.
    #[test]
    fn a_compaction_outside_the_lock_loses_nothing_written_or_acknowledged_meanwhile() -> Result<()>
    {
        let dir = temp_dir("compact-outside");
        let body = "y".repeat(100_000);
        let mut spool = Spool::open(
            &dir,
            1024 * 1024 * 1024,
            FsyncPolicy::Interval(Duration::from_secs(1)),
        )?;
        // Three segments' worth of events; every other one delivered.
        let mut live = BTreeSet::new();
        for n in 0..250 {
            let seq = append(&mut spool, Kind::Event, &format!("e{n}"), &body);
            if n % 2 == 0 {
                spool.acknowledge(Kind::Event, seq, &format!("e{n}"))?;
            } else {
                live.insert(seq);
            }
        }
        let closed: Vec<u64> = spool
            .sizes
            .keys()
            .copied()
            .filter(|n| *n != spool.current_no)
            .collect();
        assert!(closed.len() >= 2, "{closed:?}");
        let compaction = spool
            .plan_compaction()?
            .ok_or_else(|| Error::invalid_input("no compaction planned"))?;
        assert!(
            spool.plan_compaction()?.is_none(),
            "one compaction at a time"
        );
        // Meanwhile the service records, and the worker delivers a record being copied.
        let copied_then_delivered = *live
            .iter()
            .next()
            .ok_or_else(|| Error::invalid_input("no live record"))?;
        spool.acknowledge(Kind::Event, copied_then_delivered, "")?;
        live.remove(&copied_then_delivered);
        for n in 250..260 {
            live.insert(append(&mut spool, Kind::Event, &format!("e{n}"), &body));
        }
        let bytes_before = spool.bytes();
        let compacted = compaction.run();
        for path in spool.finish_compaction(compacted)? {
            fs::remove_file(path).map_err(|e| io_error("cannot delete", &dir, e))?;
        }
        for n in closed {
            assert!(!dir.join(segment_name(n)).exists(), "segment {n} is left");
        }
        assert!(
            spool.bytes() < bytes_before * 3 / 4,
            "{} of {bytes_before} bytes",
            spool.bytes()
        );
        // What the running spool reads back is what is live.
        let held: BTreeSet<u64> = spool.live.keys().copied().collect();
        assert_eq!(held, live);
        for loc in spool.live.values() {
            assert_eq!(spool.read_payload(loc)?.len(), loc.len as usize);
        }
        drop(spool);
        // And so does a spool opened after a crash.
        let reopened = Spool::open(&dir, 1024 * 1024 * 1024, FsyncPolicy::Never)?;
        let replayed: BTreeSet<u64> = reopened.live.keys().copied().collect();
        assert_eq!(replayed, live);
        drop(reopened);
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }
}
