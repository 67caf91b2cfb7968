//! One run: the listings are paged on the async side, the records applied on a blocking thread, with a bounded channel between them.
//!
//! The SDK's raw pages keep each record's bytes as the server sent them, so nothing is decoded
//! into the typed model: only the fields that become columns are read, on the listing's side
//! for a new mirror (whose writer, the critical path, then only binds them; see
//! [`crate::record`]), on the writer's for the few records a re-run finds changed. At most
//! [`PAGES_IN_FLIGHT`] pages wait in the channel and the SDK holds a few more ahead, so memory
//! stays flat whatever the size of the data set. Conversations are listed before feedback, so
//! that a feedback item whose conversation is not embedded finds its message already mirrored.

use std::sync::Arc;

use futures::TryStreamExt;
use inkeep_analytics::Client;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::record::{ConversationRow, FeedbackRow, Listed, ReadRow};
use crate::report::{ApiTotals, Report};
use crate::store::Writer;

/// Pages between the listing and the writer: enough to keep both busy.
const PAGES_IN_FLIGHT: usize = 2;

/// How many passes a listing makes at most when its total changes while it pages (offsets shift
/// under a listing that changes, so a record can slide past the cursor).
const MAX_PASSES: usize = 3;

/// Where a run stands, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// `conversations` or `feedback`.
    pub what: &'static str,
    /// Records listed so far in this listing.
    pub listed: u64,
    /// The API's latest total for it.
    pub total: u64,
}

/// How a sync runs.
#[derive(Clone)]
pub struct SyncOptions {
    page_size: i64,
    progress: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            page_size: inkeep_analytics::listing::MAX_PAGE_SIZE,
            progress: None,
        }
    }
}

impl std::fmt::Debug for SyncOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncOptions")
            .field("page_size", &self.page_size)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl SyncOptions {
    /// Records per request, 1 to [`inkeep_analytics::listing::MAX_PAGE_SIZE`] (the default).
    pub fn page_size(mut self, page_size: i64) -> Self {
        self.page_size = page_size;
        self
    }

    /// Called after every page with where the run stands.
    pub fn on_progress(mut self, progress: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        if (1..=inkeep_analytics::listing::MAX_PAGE_SIZE).contains(&self.page_size) {
            Ok(())
        } else {
            Err(Error::InvalidInput(format!(
                "the page size must be between 1 and {}, got {}",
                inkeep_analytics::listing::MAX_PAGE_SIZE,
                self.page_size
            )))
        }
    }
}

/// What the listing side hands the writer: records already read (see [`crate::record`]).
enum Batch {
    Conversations(Vec<Listed<ConversationRow>>),
    ConversationsListed { complete: bool },
    Feedback(Vec<Listed<FeedbackRow>>),
    FeedbackListed { complete: bool },
    Done { totals: ApiTotals, complete: bool },
}

/// What a run applies the listings to, on the writer's thread: the SQLite mirror's [`Writer`],
/// or the Parquet dataset's lighter state.
pub(crate) trait Target: Send + 'static {
    /// Whether the listing's side should read each record's rows ([`Listed::row`]): for a new
    /// SQLite mirror or Parquet dataset, whose records are all written, so that the writer's
    /// thread only binds them and the encoders do not read them again.
    fn reads_rows(&self) -> bool;
    /// Starts the run's transaction.
    fn begin(&mut self) -> Result<()>;
    /// Applies one listed conversation; whether it was written (new or changed).
    fn conversation(&mut self, record: &Listed<ConversationRow>) -> Result<bool>;
    /// The conversations' listing ended (`complete`: what it did not list can be deleted).
    fn end_conversations(&mut self, complete: bool) -> Result<()>;
    /// Applies one listed feedback item; when it was written, its conversation's id if known.
    fn feedback(&mut self, record: &Listed<FeedbackRow>) -> Result<Option<Option<String>>>;
    /// The feedback's listing ended.
    fn end_feedback(&mut self, complete: bool) -> Result<()>;
    /// Records the run and commits it.
    fn commit(self, totals: ApiTotals, complete: bool) -> Result<Report>;
}

impl Target for Writer {
    fn reads_rows(&self) -> bool {
        self.is_new()
    }
    fn begin(&mut self) -> Result<()> {
        Writer::begin(self)
    }
    fn conversation(&mut self, record: &Listed<ConversationRow>) -> Result<bool> {
        Writer::conversation(self, record)
    }
    fn end_conversations(&mut self, complete: bool) -> Result<()> {
        Writer::end_conversations(self, complete)
    }
    fn feedback(&mut self, record: &Listed<FeedbackRow>) -> Result<Option<Option<String>>> {
        Writer::feedback(self, record)
    }
    fn end_feedback(&mut self, complete: bool) -> Result<()> {
        Writer::end_feedback(self, complete)
    }
    fn commit(self, totals: ApiTotals, complete: bool) -> Result<Report> {
        Writer::commit(self, totals, complete)
    }
}

/// What a mirror does on the writer's thread besides applying records to its target: the
/// Parquet dataset encodes the records a first sync writes while the listing goes on, or
/// rewrites a later run's changed partitions before the commit. The SQLite mirror needs none (`()`).
pub(crate) trait Sink<W>: Send + 'static {
    /// Called once the run's transaction has begun (the target knows whether it started empty).
    fn begin(&mut self, _writer: &W) -> Result<()> {
        Ok(())
    }

    /// The conversations of a page that the writer inserted or updated, in listing order, with
    /// the rows the listing's side read when the target asked for them.
    fn conversations(&mut self, _records: Vec<Listed<ConversationRow>>) -> Result<()> {
        Ok(())
    }

    /// The feedback items of a page that the writer inserted or updated, each with the id of
    /// its conversation when known.
    fn feedback(&mut self, _records: Vec<(Listed<FeedbackRow>, Option<String>)>) -> Result<()> {
        Ok(())
    }

    /// Called after the last record and before the commit.
    fn finish(self, _writer: &mut W) -> Result<()>
    where
        Self: Sized,
    {
        Ok(())
    }
}

impl<W> Sink<W> for () {}

/// Runs the listings into `writer`, and the records it wrote into `sink`, on the writer's thread.
pub(crate) async fn run<W: Target, S: Sink<W>>(
    client: &Client,
    options: &SyncOptions,
    writer: W,
    sink: S,
) -> Result<Report> {
    options.check()?;
    let read_rows = writer.reads_rows();
    let (sender, receiver) = mpsc::channel(PAGES_IN_FLIGHT);
    let worker = tokio::task::spawn_blocking(move || apply(writer, receiver, sink));
    let listed = list(client, options, read_rows, &sender).await;
    drop(sender);
    let applied = worker.await.map_err(|_| Error::WriterStopped);
    match listed {
        // The writer's own error says more than the closed channel the listing met.
        Ok(()) | Err(Error::WriterStopped) => applied?,
        Err(error) => Err(error),
    }
}

/// The writer's thread: applies batches in order; a channel closed before `Done` (the listing
/// failed) drops the writer, which rolls the run back.
fn apply<W: Target, S: Sink<W>>(
    mut writer: W,
    mut receiver: mpsc::Receiver<Batch>,
    mut sink: S,
) -> Result<Report> {
    writer.begin()?;
    sink.begin(&writer)?;
    while let Some(batch) = receiver.blocking_recv() {
        match batch {
            Batch::Conversations(records) => {
                let mut written = Vec::new();
                for record in records {
                    if writer.conversation(&record)? {
                        written.push(record);
                    }
                }
                if !written.is_empty() {
                    sink.conversations(written)?;
                }
            }
            Batch::ConversationsListed { complete } => writer.end_conversations(complete)?,
            Batch::Feedback(records) => {
                let mut written = Vec::new();
                for record in records {
                    if let Some(conversation_id) = writer.feedback(&record)? {
                        written.push((record, conversation_id));
                    }
                }
                if !written.is_empty() {
                    sink.feedback(written)?;
                }
            }
            Batch::FeedbackListed { complete } => writer.end_feedback(complete)?,
            Batch::Done { totals, complete } => {
                sink.finish(&mut writer)?;
                return writer.commit(totals, complete);
            }
        }
    }
    Err(Error::WriterStopped)
}

/// Lists conversations, then feedback, into the channel; with `read_rows` (a new mirror, whose
/// records are all written), each record's rows are read here rather than on the writer's thread.
async fn list(
    client: &Client,
    options: &SyncOptions,
    read_rows: bool,
    sender: &mpsc::Sender<Batch>,
) -> Result<()> {
    let (conversations, conversations_complete) = passes(
        options,
        "conversations",
        |prefetch| {
            let listing = client.list_conversations().limit(options.page_size);
            let listing = match prefetch {
                Some(pages) => listing.prefetch(pages),
                None => listing,
            };
            listing
                .raw_pages()
                .map_ok(|page| (page.total_count(), page.conversations))
                .boxed_local_stream()
        },
        sender,
        |records| read(records, read_rows).map(Batch::Conversations),
    )
    .await?;
    send(
        sender,
        Batch::ConversationsListed {
            complete: conversations_complete,
        },
    )
    .await?;
    let (feedback, feedback_complete) = passes(
        options,
        "feedback",
        |prefetch| {
            let listing = client.list_feedback().limit(options.page_size);
            let listing = match prefetch {
                Some(pages) => listing.prefetch(pages),
                None => listing,
            };
            listing
                .raw_pages()
                .map_ok(|page| {
                    let total = page.total_count();
                    let mut records = page.positive_feedback;
                    records.extend(page.negative_feedback);
                    (total, records)
                })
                .boxed_local_stream()
        },
        sender,
        |records| read(records, read_rows).map(Batch::Feedback),
    )
    .await?;
    send(
        sender,
        Batch::FeedbackListed {
            complete: feedback_complete,
        },
    )
    .await?;
    send(
        sender,
        Batch::Done {
            totals: ApiTotals {
                conversations,
                feedback,
            },
            complete: conversations_complete && feedback_complete,
        },
    )
    .await
}

/// Reads a page's records for the writer (their rows too with `read_rows`).
fn read<Row: ReadRow>(records: Vec<Box<RawValue>>, read_rows: bool) -> Result<Vec<Listed<Row>>> {
    records
        .into_iter()
        .map(|record| Listed::read(record, read_rows))
        .collect()
}

type Pages<'a> =
    futures::stream::BoxStream<'a, inkeep_analytics::Result<(u64, Vec<Box<RawValue>>)>>;

/// Pages one listing until a pass ends with the total it started with (or [`MAX_PASSES`]);
/// returns the last total and whether the listing was stable, so that deletions can be trusted.
async fn passes<'a>(
    options: &SyncOptions,
    what: &'static str,
    pages: impl Fn(Option<usize>) -> Pages<'a>,
    sender: &mpsc::Sender<Batch>,
    batch: impl Fn(Vec<Box<RawValue>>) -> Result<Batch>,
) -> Result<(u64, bool)> {
    let mut listed = 0u64;
    for pass in 0..MAX_PASSES {
        // A later pass only runs because the data changed while paging: it reads one page at a
        // time, so that each page is read after the one before it.
        let mut stream = pages((pass > 0).then_some(0));
        let mut first_total = None;
        let mut latest_total = 0u64;
        let mut shrank = false;
        while let Some((total, records)) = stream
            .try_next()
            .await
            .map_err(|source| Error::Api { what, source })?
        {
            shrank |= first_total.is_some() && total < latest_total;
            first_total.get_or_insert(total);
            latest_total = total;
            listed += records.len() as u64;
            send(sender, batch(records)?).await?;
            if let Some(progress) = &options.progress {
                progress(Progress {
                    what,
                    listed,
                    total: latest_total,
                });
            }
        }
        if !shrank && first_total.is_none_or(|first| first == latest_total) {
            return Ok((latest_total, true));
        }
        tracing::info!(
            what,
            pass = pass + 1,
            "the total changed while paging; listing again from the start"
        );
        if pass + 1 == MAX_PASSES {
            tracing::warn!(
                what,
                "the total kept changing; nothing is deleted in this run, the next one catches up"
            );
            return Ok((latest_total, false));
        }
    }
    Ok((0, false))
}

async fn send(sender: &mpsc::Sender<Batch>, batch: Batch) -> Result<()> {
    sender.send(batch).await.map_err(|_| Error::WriterStopped)
}

/// `BoxStream` for the mapped page streams.
trait BoxedLocal<'a>: futures::Stream + Send + Sized + 'a {
    fn boxed_local_stream(self) -> futures::stream::BoxStream<'a, Self::Item> {
        Box::pin(self)
    }
}

impl<'a, S: futures::Stream + Send + 'a> BoxedLocal<'a> for S {}
