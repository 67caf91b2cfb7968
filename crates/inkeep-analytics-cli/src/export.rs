//! `conversations export` and `feedback export`: every record exactly once, exactly as the server sent it, written atomically and resumable.
//!
//! Records are paged with the SDK's raw pages, so nothing is decoded into the typed model and
//! written back: a JSON line is the server's own bytes. Offsets shift when records are inserted
//! or deleted during the export; every record's id is remembered, so a record seen twice is
//! written once, and when the total changed during a pass, another pass from the start picks up
//! what the shift hid, until a pass ends with the total it started with.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use inkeep_analytics::{Client, listing::raw_record_id};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use self::checkpoint::{Checkpoint, Checkpointer, Files, hash_of_range};
use crate::cli::Format;
use crate::failure::Failure;
use crate::output::{self, raw_cell};
use crate::owner_only;

mod checkpoint;

/// How many passes an export makes at most before it settles for what it has; each pass after
/// the first only runs because the total changed during the one before.
const MAX_PASSES: usize = 5;

/// What is exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `GET /conversations`.
    Conversations,
    /// `GET /feedback`, both lists.
    Feedback,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Conversations => "conversations",
            Kind::Feedback => "feedback",
        }
    }
}

/// How an export runs.
#[derive(Debug)]
pub struct Plan {
    /// What is exported.
    pub kind: Kind,
    /// Records per request.
    pub page_size: i64,
    /// `Jsonl`, `Json` or `Csv`.
    pub format: Format,
    /// A file, written atomically, or standard output.
    pub output: Option<PathBuf>,
    /// Continue from the checkpoint of an interrupted export to `output`.
    pub resume: bool,
    /// Show a progress bar on stderr when it is a terminal.
    pub progress: bool,
}

impl Plan {
    /// The command that resumes this export: the program's own command line with `--resume`
    /// added, quoted for a POSIX shell, and whether an `--api-key` given on it was left out (a
    /// failure message must never show the key; the environment variable stands in for it).
    fn resume_command(&self) -> (String, bool) {
        let mut arguments = std::env::args();
        let program = arguments
            .next()
            .as_deref()
            .map(Path::new)
            .and_then(Path::file_name)
            .map_or("inkeep-analytics".into(), |name| {
                name.to_string_lossy().into_owned()
            });
        let mut words = vec![program];
        let mut key_left_out = false;
        let mut skip_next = false;
        for argument in arguments {
            if std::mem::take(&mut skip_next) {
                continue;
            }
            if argument == "--api-key" {
                skip_next = true;
                key_left_out = true;
            } else if argument.starts_with("--api-key=") {
                key_left_out = true;
            } else {
                words.push(argument);
            }
        }
        if !words.iter().any(|word| word == "--resume") {
            words.push("--resume".into());
        }
        let command = words
            .iter()
            .map(|word| match shlex::try_quote(word) {
                Ok(quoted) => quoted.into_owned(),
                Err(_) => word.clone(),
            })
            .collect::<Vec<_>>()
            .join(" ");
        (command, key_left_out)
    }
}

/// A page reduced to what the export needs.
struct Page {
    records: Vec<Box<RawValue>>,
    /// How far the offset moves: the record count for conversations, the page size for feedback,
    /// whose two lists share one offset.
    step: u64,
    total: u64,
}

/// Records are about 8 KB, larger than `BufWriter`'s default buffer, which would then write each
/// one with its own system call; a page (about 1 MB) fits in this one and is written at once.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Runs an export and returns how many records it wrote.
pub async fn run(client: &Client, plan: Plan) -> Result<u64, Failure> {
    if plan.format == Format::Table {
        return Err(Failure::Usage(
            "an export is written as jsonl (the default), json or csv, not as a table".into(),
        ));
    }
    if !(1..=inkeep_analytics::listing::MAX_PAGE_SIZE).contains(&plan.page_size) {
        return Err(Failure::Usage(format!(
            "--page-size must be between 1 and {}, got {}",
            inkeep_analytics::listing::MAX_PAGE_SIZE,
            plan.page_size
        )));
    }
    let mut target = Target::open(&plan)?;
    let mut state = match (&plan.output, plan.resume) {
        (Some(output), true) => resume_state(&plan, output, &mut target)?,
        _ => State::fresh(),
    };
    match write_pages(client, &plan, &mut target, &mut state).await {
        Ok(()) => Ok(state.records),
        Err(Failure::BrokenPipe) => Err(Failure::BrokenPipe),
        Err(failure) => Err(Failure::Unfinished {
            failure: Box::new(failure),
            progress: unfinished_note(&plan, &state),
        }),
    }
}

/// What a failed export tells its user: how far it got, and the exact command that resumes it.
fn unfinished_note(plan: &Plan, state: &State) -> String {
    let noun = plan.kind.noun();
    let of_total = if state.pass_total > 0 {
        format!(" of {}", state.pass_total)
    } else {
        String::new()
    };
    match &plan.output {
        Some(_) if !state.checkpointed => {
            "no page was written before the failure; run the same command again to start over"
                .into()
        }
        Some(output) => {
            let (command, key_left_out) = plan.resume_command();
            let key = if key_left_out {
                format!(
                    "set {} to the key given with --api-key (not shown here) and ",
                    inkeep_analytics::config::ENV_API_KEY
                )
            } else {
                String::new()
            };
            format!(
                "{records}{of_total} {noun} were written to {partial} and its checkpoint keeps \
                 them; {key}resume the export with: {command}",
                records = state.records,
                partial = partial_path(output).display(),
            )
        }
        None => format!(
            "{records}{of_total} {noun} were written to standard output; an export to a file \
             (--output FILE) can be resumed with --resume",
            records = state.records,
        ),
    }
}

/// Pages through the records from where `state` stands, writing and checkpointing each page,
/// and commits the file once every pass is done. A failure leaves a checkpoint of every page
/// written before it.
async fn write_pages(
    client: &Client,
    plan: &Plan,
    target: &mut Target,
    state: &mut State,
) -> Result<(), Failure> {
    let progress = progress_bar(plan);
    let result = write_passes(client, plan, target, state, &progress).await;
    if result.is_err() && state.checkpointed {
        // Checkpoints are written behind the export. An answer of the API ends it between
        // pages, where `state` counts what the file holds: the checkpoint of every page written
        // is written now, so that the note and `--resume` agree with the partial file. Any other
        // failure may come mid-page, and leaves the last checkpoint written behind it.
        let between_pages = matches!(result, Err(Failure::Api { .. }));
        let saved = if between_pages {
            target.checkpoint_now(plan, state)
        } else {
            target.stop_checkpoints()
        };
        if let Err(failure) = saved {
            tracing::warn!(error = %failure, "the last checkpoint could not be written");
        }
        state.checkpointed = target.checkpoints_written() || target.checkpoint_exists();
    }
    result?;
    target.commit()?;
    progress.finish_and_clear();
    Ok(())
}

/// Every pass of the export, from where `state` stands, up to the records' closing bytes.
async fn write_passes(
    client: &Client,
    plan: &Plan,
    target: &mut Target,
    state: &mut State,
    progress: &ProgressBar,
) -> Result<(), Failure> {
    let mut sink = Sink::new(plan.format, plan.kind, state.records);
    if state.records == 0 && state.bytes == 0 {
        sink.start(&mut target.writer)
            .map_err(Failure::io("writing the export"))?;
        state.bytes = target
            .position()
            .map_err(Failure::io("writing the export"))?;
    }

    let mut pages_fetched: u64 = 0;
    loop {
        // The first pass fetches pages ahead. A later pass only runs because the data changed
        // while paging; it goes one page at a time, so that each page is read after the one
        // before it and what it misses is only what is added after its last request.
        let prefetch = (state.pass > 0).then_some(0);
        let mut pages = raw_pages(client, plan.kind, plan.page_size, state.offset, prefetch);
        let mut latest_total = state.pass_total;
        // A total that only grew means records were added; one that shrank means records were
        // removed, and records behind the cursor may have slid in front of it.
        let mut shrank = false;
        while let Some(page) = pages
            .try_next()
            .await
            .map_err(Failure::api(format!("exporting {}", plan.kind.noun())))?
        {
            // The first page of a fresh pass sets the total the pass is measured against.
            if state.offset == 0 && state.pass_total == 0 {
                state.pass_total = page.total;
                latest_total = page.total;
            }
            shrank |= page.total < latest_total;
            latest_total = page.total;
            for record in &page.records {
                let id = raw_record_id(record);
                let fresh = match &id {
                    Some(id) => state.seen.insert(id),
                    // A record without an id cannot be matched across pages; keep it.
                    None => true,
                };
                if fresh {
                    target.writer.mark_record();
                    sink.record(&mut target.writer, record)
                        .map_err(Failure::io("writing the export"))?;
                    state.records += 1;
                } else {
                    tracing::debug!(
                        id = id.as_deref().unwrap_or(""),
                        "skipped a record already written (offsets shifted)"
                    );
                }
            }
            state.offset += page.step;
            pages_fetched += 1;
            progress.set_length(page.total.max(state.records));
            progress.set_position(state.records);
            progress.set_message(format!("{pages_fetched} pages, pass {}", state.pass + 1));
            target
                .writer
                .flush()
                .map_err(Failure::io("writing the export"))?;
            state.bytes = target
                .position()
                .map_err(Failure::io("writing the export"))?;
            target.checkpoint_later(plan, state)?;
            state.checkpointed = target.file.is_some();
            // A later pass only looks for records added while the export ran: once every record
            // the server counts is written, there is nothing left for it to find.
            if state.pass > 0 && !shrank && state.records >= latest_total {
                break;
            }
        }
        let stable = latest_total == state.pass_total && !shrank;
        let caught_up = !shrank && state.records >= latest_total;
        if stable || caught_up {
            break;
        }
        if state.pass + 1 >= MAX_PASSES {
            tracing::warn!(
                passes = MAX_PASSES,
                "the total kept changing; records added during the last pass may be missing"
            );
            break;
        }
        // The total changed while paging, so offsets shifted and a record may have slid past the
        // cursor. Another pass from the start finds it; the ids already written keep it from repeating.
        tracing::info!(
            from = state.pass_total,
            to = latest_total,
            "the total changed during the export; paging again from the start"
        );
        state.pass += 1;
        state.offset = 0;
        state.pass_total = latest_total;
        target.checkpoint_later(plan, state)?;
    }
    sink.finish(&mut target.writer)
        .map_err(Failure::io("writing the export"))
}

fn raw_pages(
    client: &Client,
    kind: Kind,
    page_size: i64,
    offset: u64,
    prefetch: Option<usize>,
) -> futures::stream::BoxStream<'static, inkeep_analytics::Result<Page>> {
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    match kind {
        Kind::Conversations => capped(client.list_conversations(), prefetch)
            .limit(page_size)
            .offset(offset)
            .raw_pages()
            .map_ok(|page| Page {
                total: page.total_count(),
                step: page.conversations.len() as u64,
                records: page.conversations,
            })
            .boxed_stream(),
        Kind::Feedback => capped(client.list_feedback(), prefetch)
            .limit(page_size)
            .offset(offset)
            .raw_pages()
            .map_ok(move |page| {
                let total = page.total_count();
                let mut records = page.positive_feedback;
                records.extend(page.negative_feedback);
                Page {
                    records,
                    step: page_size as u64,
                    total,
                }
            })
            .boxed_stream(),
    }
}

/// A listing with the pages ahead capped at `prefetch` when given; otherwise at the SDK's default,
/// below which the client's window of requests in flight (`--max-concurrency` at most) decides.
fn capped<L: inkeep_analytics::listing::ListingKind>(
    listing: inkeep_analytics::listing::Listing<L>,
    prefetch: Option<usize>,
) -> inkeep_analytics::listing::Listing<L> {
    match prefetch {
        Some(pages) => listing.prefetch(pages),
        None => listing,
    }
}

/// `BoxStream` for a `TryStream` whose item types were mapped.
trait BoxedStream: futures::Stream + Send + Sized + 'static {
    fn boxed_stream(self) -> futures::stream::BoxStream<'static, Self::Item> {
        Box::pin(self)
    }
}

impl<S: futures::Stream + Send + 'static> BoxedStream for S {}

/// The ids already written, kept as 128-bit fingerprints rather than strings: 16 bytes each
/// whatever an id's length, so that memory stays nearly flat as an export grows (100,000 ids take
/// about 3 MB instead of about 14 MB). A fingerprint is two SipHash digests under independent
/// random keys; the chance that any two of 10 million distinct ids share one is below 10^-24.
#[derive(Default)]
struct IdSet {
    keys: (RandomState, RandomState),
    fingerprints: HashSet<u128>,
}

impl IdSet {
    /// Remembers `id`; `false` if it was already there.
    fn insert(&mut self, id: &str) -> bool {
        let fingerprint =
            (u128::from(self.keys.0.hash_one(id)) << 64) | u128::from(self.keys.1.hash_one(id));
        self.fingerprints.insert(fingerprint)
    }
}

/// The export's progress between pages.
struct State {
    offset: u64,
    pass: usize,
    pass_total: u64,
    records: u64,
    bytes: u64,
    seen: IdSet,
    /// Whether a checkpoint of this export exists, so that `--resume` can continue it.
    checkpointed: bool,
}

impl State {
    fn fresh() -> Self {
        Self {
            offset: 0,
            pass: 0,
            pass_total: 0,
            records: 0,
            bytes: 0,
            seen: IdSet::default(),
            checkpointed: false,
        }
    }
}

/// Reads the checkpoint, cuts the partial file back to the last complete page and recalls the ids written.
fn resume_state(plan: &Plan, output: &Path, target: &mut Target) -> Result<State, Failure> {
    let checkpoint_path = checkpoint_path(output);
    let text = match std::fs::read_to_string(&checkpoint_path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::Usage(format!(
                "nothing to resume: {} does not exist (run the export without --resume)",
                checkpoint_path.display()
            )));
        }
        Err(error) => {
            return Err(Failure::io(format!(
                "reading {}",
                checkpoint_path.display()
            ))(error));
        }
    };
    let checkpoint: Checkpoint = serde_json::from_str(&text).map_err(|error| {
        Failure::Usage(format!(
            "{} is not a checkpoint: {error}",
            checkpoint_path.display()
        ))
    })?;
    if checkpoint.kind != plan.kind
        || checkpoint.format != format_name(plan.format)
        || checkpoint.page_size != plan.page_size
    {
        return Err(Failure::Usage(format!(
            "{} was written by an export of {} as {} with --page-size {}; resume with the same options",
            checkpoint_path.display(),
            checkpoint.kind.noun(),
            checkpoint.format,
            checkpoint.page_size
        )));
    }
    let seen = target.check_truncate_and_read_ids(&checkpoint, plan.format)?;
    Ok(State {
        offset: checkpoint.offset,
        pass: checkpoint.pass,
        pass_total: checkpoint.pass_total,
        records: checkpoint.records,
        bytes: checkpoint.bytes,
        seen,
        checkpointed: true,
    })
}

fn format_name(format: Format) -> String {
    format!("{format:?}").to_lowercase()
}

fn checkpoint_path(output: &Path) -> PathBuf {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".checkpoint");
    output.with_file_name(name)
}

fn partial_path(output: &Path) -> PathBuf {
    let mut name = output
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    output.with_file_name(name)
}

fn progress_bar(plan: &Plan) -> ProgressBar {
    if !plan.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {pos}/{len} records {msg} [{elapsed_precise}] {per_sec}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Where the records go: standard output, or a partial file renamed into place when complete.
struct Target {
    writer: Tracked,
    file: Option<(PathBuf, PathBuf)>,
    /// Writes the partial file's checkpoints, from its first page on.
    checkpointer: Option<Checkpointer>,
}

/// The export's buffered writer, which also counts what it wrote, so that it knows where the last
/// record starts without flushing before each one.
struct Tracked {
    inner: BufWriter<Box<dyn WriteSeek>>,
    /// Bytes written through this writer, from where the output started.
    written: u64,
    /// Where the last record starts; `None` before any record.
    record_start: Option<u64>,
}

impl Tracked {
    fn new(inner: Box<dyn WriteSeek>, written: u64) -> Self {
        Self {
            inner: BufWriter::with_capacity(WRITE_BUFFER_BYTES, inner),
            written,
            record_start: None,
        }
    }

    /// Notes that a record starts here.
    fn mark_record(&mut self) {
        self.record_start = Some(self.written);
    }
}

impl Write for Tracked {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

trait WriteSeek: Write + Send {
    fn position(&mut self) -> std::io::Result<u64>;

    /// Makes what was written durable; nothing to do for standard output.
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl WriteSeek for File {
    fn position(&mut self) -> std::io::Result<u64> {
        self.stream_position()
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }
}

/// Standard output, which counts what it was given instead of seeking.
struct Stdout {
    inner: std::io::Stdout,
    written: u64,
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl WriteSeek for Stdout {
    fn position(&mut self) -> std::io::Result<u64> {
        Ok(self.written)
    }
}

impl Target {
    fn open(plan: &Plan) -> Result<Self, Failure> {
        let Some(output) = &plan.output else {
            return Ok(Self {
                writer: Tracked::new(
                    Box::new(Stdout {
                        inner: std::io::stdout(),
                        written: 0,
                    }),
                    0,
                ),
                file: None,
                checkpointer: None,
            });
        };
        let partial = partial_path(output);
        let mut options = owner_only::options();
        options.write(true).read(true);
        if plan.resume {
            options.create(false);
        } else {
            if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
                owner_only::create_dir_all(parent)
                    .map_err(Failure::io(format!("creating {}", parent.display())))?;
            }
            options.create(true).truncate(true);
        }
        let file = owner_only::open(&partial, &options).map_err(|error| {
            if plan.resume && error.kind() == std::io::ErrorKind::NotFound {
                Failure::Usage(format!(
                    "nothing to resume: {} does not exist (run the export without --resume)",
                    partial.display()
                ))
            } else {
                Failure::io(format!("opening {}", partial.display()))(error)
            }
        })?;
        Ok(Self {
            writer: Tracked::new(Box::new(file), 0),
            file: Some((partial, output.clone())),
            checkpointer: None,
        })
    }

    fn position(&mut self) -> std::io::Result<u64> {
        self.writer.flush()?;
        self.writer.inner.get_mut().position()
    }

    /// Makes the bytes written so far durable.
    fn sync(&mut self) -> std::io::Result<()> {
        self.writer.flush()?;
        self.writer.inner.get_mut().sync()
    }

    /// Checks that the partial file still holds what `checkpoint` counts (its length, and the
    /// hash of its last record), cuts it to that length, and returns the ids of its records.
    fn check_truncate_and_read_ids(
        &mut self,
        checkpoint: &Checkpoint,
        format: Format,
    ) -> Result<IdSet, Failure> {
        let Some((partial, output)) = &self.file else {
            return Ok(IdSet::default());
        };
        let bytes = checkpoint.bytes;
        let what = format!("resuming from {}", partial.display());
        let mut file = owner_only::open(partial, owner_only::options().read(true).write(true))
            .map_err(Failure::io(what.clone()))?;
        let start_again = format!(
            "the export cannot be resumed safely; remove {} and {} and run it again without --resume",
            partial.display(),
            checkpoint_path(output).display()
        );
        let length = file.metadata().map_err(Failure::io(what.clone()))?.len();
        if length < bytes {
            return Err(Failure::Usage(format!(
                "{} holds {length} bytes, but its checkpoint counts {bytes}: the file lost data the \
                 checkpoint says was written (a power loss before it reached the disk?); {start_again}",
                partial.display()
            )));
        }
        if let Some(expected) = &checkpoint.last_record_sha256 {
            let start = checkpoint.last_record_start.min(bytes);
            let found = hash_of_range(partial, start, bytes).map_err(Failure::io(what.clone()))?;
            if &found != expected {
                return Err(Failure::Usage(format!(
                    "the last record in {} (bytes {start} to {bytes}) is not the one its checkpoint \
                     was written after: the file was changed or damaged since; {start_again}",
                    partial.display()
                )));
            }
        }
        file.set_len(bytes).map_err(Failure::io(what.clone()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(Failure::io(what.clone()))?;
        let mut ids = IdSet::default();
        let reader = BufReader::new(&file);
        match format {
            Format::Csv => {
                let mut csv = csv::Reader::from_reader(reader);
                for row in csv.records() {
                    let row = row.map_err(|error| Failure::Usage(format!("{what}: {error}")))?;
                    if let Some(id) = row.get(0).filter(|id| !id.is_empty()) {
                        ids.insert(id);
                    }
                }
            }
            _ => {
                for line in reader.lines() {
                    let line = line.map_err(Failure::io(what.clone()))?;
                    let line = line
                        .trim()
                        .trim_start_matches('[')
                        .trim_end_matches(',')
                        .trim();
                    if line.is_empty() || line == "]" {
                        continue;
                    }
                    if let Ok(record) = serde_json::from_str::<Box<RawValue>>(line)
                        && let Some(id) = raw_record_id(&record)
                    {
                        ids.insert(&id);
                    }
                }
            }
        }
        let mut file = file;
        file.seek(SeekFrom::End(0))
            .map_err(Failure::io(what.clone()))?;
        self.writer = Tracked::new(Box::new(file), bytes);
        self.writer.record_start = checkpoint
            .last_record_sha256
            .is_some()
            .then_some(checkpoint.last_record_start);
        Ok(ids)
    }

    /// The checkpoint of what `state` counts, with whether its last record is to be hashed.
    fn checkpoint(&self, plan: &Plan, state: &State) -> (Checkpoint, bool) {
        let checkpoint = Checkpoint {
            kind: plan.kind,
            format: format_name(plan.format),
            page_size: plan.page_size,
            offset: state.offset,
            pass: state.pass,
            pass_total: state.pass_total,
            records: state.records,
            bytes: state.bytes,
            last_record_start: self.writer.record_start.unwrap_or(state.bytes),
            last_record_sha256: None,
        };
        (checkpoint, self.writer.record_start.is_some())
    }

    /// Hands the checkpoint of what `state` counts to the checkpoint thread, started on the
    /// first page; the bytes it counts must have been flushed.
    fn checkpoint_later(&mut self, plan: &Plan, state: &State) -> Result<(), Failure> {
        let Some((partial, output)) = &self.file else {
            return Ok(());
        };
        let what = || format!("writing {}", checkpoint_path(output).display());
        if self.checkpointer.is_none() {
            let files = Files {
                partial: partial.clone(),
                checkpoint: checkpoint_path(output),
            };
            self.checkpointer = Some(Checkpointer::start(files).map_err(Failure::io(what()))?);
        }
        let (checkpoint, hash) = self.checkpoint(plan, state);
        match &mut self.checkpointer {
            Some(checkpointer) => checkpointer
                .offer(checkpoint, hash)
                .map_err(Failure::io(what())),
            None => Ok(()),
        }
    }

    /// Stops the checkpoint thread and writes the checkpoint of what `state` counts here, once
    /// the partial file is durable.
    fn checkpoint_now(&mut self, plan: &Plan, state: &State) -> Result<(), Failure> {
        let Some((partial, output)) = &self.file else {
            return Ok(());
        };
        let files = Files {
            partial: partial.clone(),
            checkpoint: checkpoint_path(output),
        };
        let what = format!("writing {}", files.checkpoint.display());
        if let Some(checkpointer) = &mut self.checkpointer {
            checkpointer.stop().map_err(Failure::io(what.clone()))?;
        }
        // The page reaches the disk before the checkpoint that counts it: a checkpoint must
        // never name bytes that a power loss could take back.
        self.sync().map_err(Failure::io(what.clone()))?;
        let (checkpoint, hash) = self.checkpoint(plan, state);
        files.write(checkpoint, hash).map_err(Failure::io(what))
    }

    /// Stops the checkpoint thread, dropping the checkpoints it has not written yet.
    fn stop_checkpoints(&mut self) -> Result<(), Failure> {
        match &mut self.checkpointer {
            Some(checkpointer) => checkpointer
                .stop()
                .map_err(Failure::io("writing the export's checkpoint")),
            None => Ok(()),
        }
    }

    /// Whether the checkpoint file exists, from this run or the one it resumed.
    fn checkpoint_exists(&self) -> bool {
        self.file
            .as_ref()
            .is_some_and(|(_, output)| checkpoint_path(output).exists())
    }

    /// Whether a checkpoint of this run was written behind the export.
    fn checkpoints_written(&self) -> bool {
        self.checkpointer
            .as_ref()
            .is_some_and(Checkpointer::written)
    }

    /// Renames the complete partial file into place and removes the checkpoint.
    fn commit(&mut self) -> Result<(), Failure> {
        self.writer
            .flush()
            .map_err(Failure::io("writing the export"))?;
        // The checkpoints still waiting are of no use once the file is complete.
        self.stop_checkpoints()?;
        let Some((partial, output)) = self.file.take() else {
            return Ok(());
        };
        // The data is durable before the name that says the export is complete.
        File::open(&partial)
            .and_then(|file| file.sync_all())
            .map_err(Failure::io(format!("writing {}", partial.display())))?;
        std::fs::rename(&partial, &output)
            .and_then(|()| owner_only::sync_parent(&output))
            .map_err(Failure::io(format!(
                "moving the export to {}",
                output.display()
            )))?;
        Files {
            partial,
            checkpoint: checkpoint_path(&output),
        }
        .remove();
        Ok(())
    }
}

/// Writes records in the chosen format.
struct Sink {
    format: Format,
    kind: Kind,
    written: u64,
}

impl Sink {
    fn new(format: Format, kind: Kind, written: u64) -> Self {
        Self {
            format,
            kind,
            written,
        }
    }

    fn start(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        match self.format {
            Format::Json => out.write_all(b"[\n"),
            Format::Csv => output::write_csv_record(out, csv_columns(self.kind)),
            _ => Ok(()),
        }
    }

    fn record(&mut self, out: &mut impl Write, record: &RawValue) -> std::io::Result<()> {
        match self.format {
            Format::Csv => {
                let value: serde_json::Value = serde_json::from_str(record.get())?;
                output::write_csv_record(out, csv_row(self.kind, &value))?;
            }
            Format::Json => {
                if self.written > 0 {
                    out.write_all(b",\n")?;
                }
                write_one_line(out, record)?;
            }
            _ => {
                write_one_line(out, record)?;
                out.write_all(b"\n")?;
            }
        }
        self.written += 1;
        Ok(())
    }

    fn finish(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        match self.format {
            Format::Json if self.written > 0 => out.write_all(b"\n]\n"),
            Format::Json => out.write_all(b"]\n"),
            _ => Ok(()),
        }
    }
}

/// Writes the record's own bytes. Only a record the server pretty-printed over several lines is
/// changed, since a JSON line cannot hold a line break: the whitespace between its tokens is
/// dropped and every token is kept as sent, so that numbers such as `1.50` or integers beyond
/// 64 bits are not rewritten by a round trip through `serde_json::Value`.
fn write_one_line(out: &mut impl Write, record: &RawValue) -> std::io::Result<()> {
    let text = record.get();
    // One SIMD pass finds either byte; two `str::contains` scans read every record twice, a word
    // at a time.
    if memchr::memchr2(b'\n', b'\r', text.as_bytes()).is_some() {
        out.write_all(&without_whitespace(text))
    } else {
        out.write_all(text.as_bytes())
    }
}

/// Valid JSON without the whitespace outside its strings. JSON strings cannot hold a raw line
/// break or tab, and every escape starts with a backslash, so tracking quotes and backslashes is
/// enough to know where a string ends.
fn without_whitespace(json: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json.as_bytes() {
        if in_string {
            out.push(byte);
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = byte == b'"';
            out.push(byte);
        }
    }
    out
}

fn csv_columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Conversations => &[
            "id",
            "type",
            "externalId",
            "externalUrl",
            "createdAt",
            "updatedAt",
            "projectId",
            "integrationId",
            "visibility",
            "tags",
            "messageCount",
            "properties",
            "userProperties",
        ],
        Kind::Feedback => &[
            "id",
            "type",
            "messageId",
            "conversationId",
            "createdAt",
            "updatedAt",
            "details",
            "reasons",
            "sources",
            "properties",
            "userProperties",
        ],
    }
}

/// A CSV row: scalars as text, null and absent as empty, objects and arrays as compact JSON.
fn csv_row(kind: Kind, record: &serde_json::Value) -> Vec<String> {
    csv_columns(kind)
        .iter()
        .map(|column| match *column {
            "messageCount" => record["messages"]
                .as_array()
                .map_or(String::new(), |m| m.len().to_string()),
            "conversationId" => raw_cell(&record["conversation"]["id"]),
            column => raw_cell(&record[column]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        match serde_json::from_str(text) {
            Ok(raw) => raw,
            Err(error) => panic!("invalid test JSON: {error}"),
        }
    }

    #[test]
    fn a_multi_line_record_keeps_every_token() {
        let record = raw(
            "{\n  \"id\": \"a b\\\"\\\\\",\n  \"n\": 1.50,\n  \"big\": 123456789012345678901234567890,\n  \"s\": \"\\u00e9\\n\"\n}",
        );
        let mut out = Vec::new();
        assert!(write_one_line(&mut out, &record).is_ok());
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"id":"a b\"\\","n":1.50,"big":123456789012345678901234567890,"s":"\u00e9\n"}"#
        );
        let single = raw(r#"{ "id" : 1.0 }"#);
        let mut out = Vec::new();
        assert!(write_one_line(&mut out, &single).is_ok());
        assert_eq!(out, br#"{ "id" : 1.0 }"#);
    }

    #[test]
    fn ids_are_strings_or_numbers() {
        assert_eq!(
            raw_record_id(&raw(r#"{"id":"conv_1"}"#)).as_deref(),
            Some("conv_1")
        );
        assert_eq!(raw_record_id(&raw(r#"{"id":42}"#)).as_deref(), Some("42"));
        assert_eq!(raw_record_id(&raw(r#"{"id":null}"#)), None);
        assert_eq!(raw_record_id(&raw(r#"{"name":"x"}"#)), None);
        assert_eq!(raw_record_id(&raw("[1]")), None);
    }
}
