//! Lazy page and item streams over the API's limit/offset listings, which progenitor does not page by itself.
//!
//! One builder, [`Listing`], serves both listings; a [`ListingKind`] says which (its operation, its
//! pages and items). A listing stops at the first of: a page shorter than the page size, an offset
//! at or past the latest `total`, an error (which it yields last), or a guard against servers that
//! never end.
//!
//! # How a stream fetches ahead
//!
//! An ordered prefetch alone would be `stream::iter(offsets).map(fetch).buffered(n)`; the pieces
//! below exist because a page fetched ahead should not be decoded, nor even decompressed, before
//! the reader nears it.
//!
//! - [`Cursor`]: where the reader is (offset, pages read, the last page's ids) and the guards
//!   against a server that never ends or repeats a page.
//! - [`PageTask`]: one page being fetched, in a tokio task of its own when there is a runtime, so
//!   that it downloads and decodes while the reader works; aborted when dropped.
//! - the decode permit: a one-shot channel per page. [`fetch_page`] downloads the page at once but
//!   keeps it as it crossed the wire (compressed, when the server compresses) until its permit is
//!   sent or dropped; only then does it decompress and decode it.
//! - [`Prefetcher`]: the reader's cursor plus the queue of [`PageTask`]s ahead of it, in offset
//!   order; it decides how many pages to request and which may decode.
//!
//! A page's life, from the reader's side:
//!
//! ```text
//!  requested ──► on the wire ──► downloaded, held as received (compressed) ──┐
//!  (request_ahead)                                                           │ permit sent: among the
//!                                                                            ▼ `prefetch` nearest pages
//!                                             decompressed and decoded ──► handed to the reader
//!                                                                          (next_page, PageTask::finish)
//! ```
//!
//! | Link (round trip of the client's window) | Pages requested ahead | Pages that may decode |
//! |---|---|---|
//! | short (under [`LONG_LINK`]: loopback, a nearby region) | `prefetch` (3 by default) | all of them |
//! | long (another continent) | the client's window, up to its ceiling (16) | the `prefetch` nearest the reader |
//!
//! Either way no page is requested while `prefetch` pages already wait decoded: the reader is then
//! the bottleneck, and more would only hold memory. Pages are never requested past the latest
//! `total`, so a listing's end costs no extra request.
//!
//! Why: on a 200 ms link the window keeps up to 16 pages in flight. When `reqwest` decoded them,
//! each held its page decompressed as it arrived, with a brotli or zstd decoder of about a page,
//! and the WAN profile of `BENCHMARKS.md` peaked at 37 MiB at 2,000 conversations and 57 MiB at
//! 20,000. Held as received, a page waits at about a seventh of its decoded size with no decoder,
//! and the peak fell to 20 to 27 MiB from 2,000 to 100,000 conversations, within the 32 MiB
//! target, with every time target still met.
use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::generated::Client as GeneratedClient;
use crate::generated::types::{Conversation, ConversationList, FeedbackList, FeedbackWithContext};
use crate::transport::{Attempt, Nesting, Transport};

use self::sealed::{Endpoint, Kind, Progress};

/// The largest `limit` the API accepts, and the page size streams use by default.
pub const MAX_PAGE_SIZE: i64 = 100;

/// How many pages a stream fetches before it decides the server never ends (10 million items at 100 a page).
const DEFAULT_MAX_PAGES: u64 = 100_000;

/// The most pages of conversations a stream holds received ahead of the caller by default.
///
/// The pages held ahead are most of a listing's memory (a page of 100 conversations is about
/// 1 MB as received, more once decoded): 3 keep a full scan of any size within about 25 MiB of
/// peak memory on loopback, where more do not make it faster. On a long link (answers slower
/// than 25 ms) the client's window decides how many pages are requested ahead, up to its
/// ceiling, since they spend most of their time on the wire; only these 3 are then decoded, and
/// the others wait as they crossed the wire (compressed, when the server compresses).
pub const DEFAULT_PREFETCH: usize = 3;

/// The fastest answer from which a link counts as long: its pages ahead are mostly on the wire,
/// so the client's window, not [`Listing::prefetch`], decides how many are requested. Loopback
/// and a nearby region answer a page well within it; another continent does not.
const LONG_LINK: Duration = Duration::from_millis(25);

/// The most pages of feedback a stream fetches ahead by default: half as many as conversations,
/// because a feedback page holds two lists of items that each embed their conversation (about 2 MB).
pub const DEFAULT_FEEDBACK_PREFETCH: usize = 3;

/// Fetches and decodes one page of a listing, as typed values or raw records; a compressed
/// page is decoded only once `decode_permit` fires (or is dropped), and waits compressed until then.
async fn fetch_page<T: DeserializeOwned>(
    transport: Transport,
    endpoint: &'static Endpoint,
    limit: i64,
    offset: u64,
    nesting: Nesting,
    decode_permit: oneshot::Receiver<()>,
) -> Result<T> {
    let query = [("limit", limit.to_string()), ("offset", offset.to_string())];
    transport
        .get_json(
            endpoint.operation,
            endpoint.method_name,
            endpoint.path,
            &query,
            nesting,
            async move {
                // A dropped sender means the stream no longer holds the page: decoding it then
                // costs nothing, since its task is being aborted.
                let _ = decode_permit.await;
            },
        )
        .await
}

/// A stream of pages of conversations.
pub type ConversationPages = BoxStream<'static, Result<ConversationList>>;

/// A stream of pages of feedback.
pub type FeedbackPages = BoxStream<'static, Result<FeedbackList>>;

/// A `limit` or `offset` as the caller gave it, in a type that holds every integer type's values
/// so that the check (and its message) sees the value as given.
#[derive(Clone, Copy, Debug)]
enum Given {
    Value(i128),
    /// A value above `i128::MAX` (only a `u128` can be one).
    Huge,
}

impl Given {
    fn from_integer(value: impl TryInto<i128>) -> Self {
        value.try_into().map_or(Given::Huge, Given::Value)
    }
}

/// The paging parameters of a listing.
#[derive(Clone, Debug)]
struct Paging {
    limit: Option<Given>,
    offset: Option<Given>,
    max_pages: u64,
    /// The most pages fetched ahead of the reader; the client's window decides below that.
    prefetch: usize,
}

impl Paging {
    fn new(prefetch: usize) -> Self {
        Self {
            limit: None,
            offset: None,
            max_pages: DEFAULT_MAX_PAGES,
            prefetch,
        }
    }

    /// Checks `limit` and `offset` for a single request, where a limit of 0 is allowed.
    fn for_request(&self) -> Result<(Option<i64>, Option<u64>)> {
        let limit = match self.limit {
            None => None,
            Some(Given::Value(limit)) if (0..=i128::from(MAX_PAGE_SIZE)).contains(&limit) => {
                // In range, so it fits.
                Some(i64::try_from(limit).unwrap_or(MAX_PAGE_SIZE))
            }
            Some(given) => {
                return Err(Error::invalid_input(format!(
                    "limit must be between 0 and {MAX_PAGE_SIZE}, got {}",
                    shown(given)
                )));
            }
        };
        let offset = match self.offset {
            None => None,
            Some(Given::Value(offset)) if offset < 0 => {
                return Err(Error::invalid_input(format!(
                    "offset must be 0 or more, got {offset}"
                )));
            }
            Some(given) => Some(
                match given {
                    Given::Value(offset) => u64::try_from(offset).ok(),
                    Given::Huge => None,
                }
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "offset must be at most {}, got {}",
                        u64::MAX,
                        shown(given)
                    ))
                })?,
            ),
        };
        Ok((limit, offset))
    }

    /// Checks the parameters for a stream, where the limit is the page size and must be at least 1.
    fn for_stream(&self) -> Result<(i64, u64)> {
        let (limit, offset) = self.for_request()?;
        let page_size = limit.unwrap_or(MAX_PAGE_SIZE);
        if page_size == 0 {
            return Err(Error::invalid_input(
                "a page size of 0 would never advance; use a limit between 1 and 100 to stream",
            ));
        }
        if self.max_pages == 0 {
            return Err(Error::invalid_input("max_pages must be at least 1"));
        }
        Ok((page_size, offset.unwrap_or(0)))
    }
}

/// A given value for an error message.
fn shown(given: Given) -> String {
    match given {
        Given::Value(value) => value.to_string(),
        Given::Huge => format!("a value above {}", i128::MAX),
    }
}

/// Reads a JSON number as a count; the API sends integers, so anything else is rounded down and clamped at 0.
pub(crate) fn count(number: &serde_json::Number) -> u64 {
    number
        .as_u64()
        .or_else(|| number.as_f64().map(|value| value.max(0.0) as u64))
        .unwrap_or(0)
}

/// What tells one listing from another, for [`Listing`]: the operation, how a page is fetched and
/// read, and what its items are. Sealed: [`ConversationListing`] and [`FeedbackListing`] are the
/// listings of the API.
pub trait ListingKind: Kind {}

/// The parts of a listing only this module uses; public in a private module, so that
/// [`ListingKind`] can require them without users implementing it.
mod sealed {
    use super::*;

    /// The operation behind a listing, for the plain `GET` its streams send.
    pub struct Endpoint {
        pub(super) operation: &'static str,
        pub(super) method_name: &'static str,
        pub(super) path: &'static str,
    }

    /// What a stream learns from a page to decide where the next one starts.
    pub struct Progress {
        /// The ids of the page's records, in order, to notice a server that repeats a page.
        pub(super) ids: Vec<Option<String>>,
        /// How far the offset moves.
        pub(super) step: u64,
        /// Whether the page was shorter than asked for.
        pub(super) short: bool,
        /// The latest total the server reported.
        pub(super) total: u64,
    }

    /// A listing of the API, as the builder and its streams use it.
    pub trait Kind: 'static {
        /// A page decoded as typed values.
        type Page: DeserializeOwned + Send + 'static;
        /// A page whose records are kept exactly as the server sent them.
        type RawPage: DeserializeOwned + Send + 'static;
        /// One record of a page, as the item stream yields it.
        type Item: Send + 'static;
        /// The operation, for requests and errors.
        const ENDPOINT: &'static Endpoint;
        /// The most pages the streams fetch ahead by default; the client's window decides below it.
        const DEFAULT_PREFETCH: usize;
        /// Sends one page's request through the generated method; unset parameters are not sent.
        fn send_page(
            client: &GeneratedClient,
            limit: Option<i64>,
            offset: Option<u64>,
        ) -> Attempt<'_, Self::Page>;
        /// What a typed page tells the stream.
        fn progress(page: &Self::Page, page_size: u64) -> Progress;
        /// What a raw page tells the stream.
        fn raw_progress(page: &Self::RawPage, page_size: u64) -> Progress;
        /// A page's records, in the order the item stream yields them.
        fn into_items(page: Self::Page) -> Vec<Self::Item>;
    }
}

/// The conversations listing, `GET /conversations` (`getAllConversation`): see [`ListConversations`].
#[derive(Clone, Copy, Debug)]
pub enum ConversationListing {}

/// The feedback listing, `GET /feedback` (`getAllFeedback`): see [`ListFeedback`].
#[derive(Clone, Copy, Debug)]
pub enum FeedbackListing {}

impl ListingKind for ConversationListing {}
impl ListingKind for FeedbackListing {}

impl Kind for ConversationListing {
    type Page = ConversationList;
    type RawPage = RawConversationPage;
    type Item = Conversation;
    const ENDPOINT: &'static Endpoint = &Endpoint {
        operation: "getAllConversation",
        method_name: "get_all_conversation",
        path: "/conversations",
    };
    const DEFAULT_PREFETCH: usize = DEFAULT_PREFETCH;

    fn send_page(
        client: &GeneratedClient,
        limit: Option<i64>,
        offset: Option<u64>,
    ) -> Attempt<'_, ConversationList> {
        let mut request = client.get_all_conversation();
        if let Some(limit) = limit {
            request = request.limit(limit);
        }
        if let Some(offset) = offset {
            request = request.offset(offset);
        }
        request.send().boxed()
    }

    fn progress(page: &ConversationList, page_size: u64) -> Progress {
        Progress {
            ids: page
                .conversations
                .iter()
                .map(|c| c.id().map(str::to_string))
                .collect(),
            step: page.conversations.len() as u64,
            short: (page.conversations.len() as u64) < page_size,
            total: count(&page.total),
        }
    }

    fn raw_progress(page: &RawConversationPage, page_size: u64) -> Progress {
        Progress {
            ids: page
                .conversations
                .iter()
                .map(|record| raw_record_id(record))
                .collect(),
            step: page.conversations.len() as u64,
            short: (page.conversations.len() as u64) < page_size,
            total: count(&page.total),
        }
    }

    fn into_items(page: ConversationList) -> Vec<Conversation> {
        page.conversations
    }
}

impl Kind for FeedbackListing {
    type Page = FeedbackList;
    type RawPage = RawFeedbackPage;
    type Item = FeedbackItem;
    const ENDPOINT: &'static Endpoint = &Endpoint {
        operation: "getAllFeedback",
        method_name: "get_all_feedback",
        path: "/feedback",
    };
    const DEFAULT_PREFETCH: usize = DEFAULT_FEEDBACK_PREFETCH;

    fn send_page(
        client: &GeneratedClient,
        limit: Option<i64>,
        offset: Option<u64>,
    ) -> Attempt<'_, FeedbackList> {
        let mut request = client.get_all_feedback();
        if let Some(limit) = limit {
            request = request.limit(limit);
        }
        if let Some(offset) = offset {
            request = request.offset(offset);
        }
        request.send().boxed()
    }

    fn progress(page: &FeedbackList, page_size: u64) -> Progress {
        let ids = page
            .positive_feedback
            .iter()
            .chain(&page.negative_feedback)
            .map(|f| Some(f.id.clone()))
            .collect();
        feedback_progress(
            (page.positive_feedback.len(), &page.positive_feedback_count),
            (page.negative_feedback.len(), &page.negative_feedback_count),
            ids,
            page_size,
        )
    }

    fn raw_progress(page: &RawFeedbackPage, page_size: u64) -> Progress {
        let ids = page
            .positive_feedback
            .iter()
            .chain(&page.negative_feedback)
            .map(|record| raw_record_id(record))
            .collect();
        feedback_progress(
            (page.positive_feedback.len(), &page.positive_feedback_count),
            (page.negative_feedback.len(), &page.negative_feedback_count),
            ids,
            page_size,
        )
    }

    /// Positive then negative, each tagged with its list.
    fn into_items(page: FeedbackList) -> Vec<FeedbackItem> {
        let positive = page
            .positive_feedback
            .into_iter()
            .map(|feedback| FeedbackItem {
                sentiment: Sentiment::Positive,
                feedback,
            });
        let negative = page
            .negative_feedback
            .into_iter()
            .map(|feedback| FeedbackItem {
                sentiment: Sentiment::Negative,
                feedback,
            });
        positive.chain(negative).collect()
    }
}

/// Both lists of `GET /feedback` advance by the same offset, so the step is the page size, and
/// the listing ends when both lists run short.
fn feedback_progress(
    positive: (usize, &serde_json::Number),
    negative: (usize, &serde_json::Number),
    ids: Vec<Option<String>>,
    page_size: u64,
) -> Progress {
    Progress {
        ids,
        step: page_size,
        short: (positive.0 as u64) < page_size && (negative.0 as u64) < page_size,
        total: count(positive.1).max(count(negative.1)),
    }
}

/// A listing of the API, to fetch one page with [`Listing::send`] or stream every page or item
/// from an offset on; built by [`crate::Client::list_conversations`] and [`crate::Client::list_feedback`].
///
/// Its streams are lazy: nothing is requested before they are first polled. Once the first page
/// has told the total, pages are fetched (and decoded, each in a task of its own) ahead of the
/// caller, up to [`Listing::prefetch`] on a short link and as many as the client's window of
/// requests in flight allows on a long one (see [`crate::ClientBuilder::max_concurrency`]), so that the network,
/// decoding on every core and the caller's own work overlap. Items still come in order, no page past the total is requested, and
/// the first error ends a stream.
///
/// ```no_run
/// use futures::TryStreamExt;
///
/// # async fn demo(client: inkeep_analytics::Client) -> inkeep_analytics::Result<()> {
/// let mut conversations = client.list_conversations().limit(50).items();
/// while let Some(conversation) = conversations.try_next().await? {
///     println!("{:?}", conversation.id());
/// }
/// # Ok(())
/// # }
/// ```
#[must_use = "a listing does nothing until it is sent or streamed"]
pub struct Listing<L: ListingKind> {
    transport: Transport,
    paging: Paging,
    kind: PhantomData<fn() -> L>,
}

/// Lists conversations: `GET /conversations` (`getAllConversation`). A page holds 20
/// conversations unless [`Listing::limit`] says otherwise.
pub type ListConversations = Listing<ConversationListing>;

/// Lists feedback: `GET /feedback` (`getAllFeedback`).
///
/// The API returns a positive and a negative list per page, both cut by the same `limit` (10
/// unless [`Listing::limit`] says otherwise) and `offset`; the streams page until both lists are
/// exhausted, and the items are yielded positive then negative within each page.
pub type ListFeedback = Listing<FeedbackListing>;

// Derived `Clone` and `Debug` would require them of the marker type too.
impl<L: ListingKind> Clone for Listing<L> {
    fn clone(&self) -> Self {
        Self {
            transport: self.transport.clone(),
            paging: self.paging.clone(),
            kind: PhantomData,
        }
    }
}

impl<L: ListingKind> std::fmt::Debug for Listing<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listing")
            .field("operation", &L::ENDPOINT.operation)
            .field("transport", &self.transport)
            .field("paging", &self.paging)
            .finish()
    }
}

impl<L: ListingKind> Listing<L> {
    pub(crate) fn new(transport: Transport) -> Self {
        Self {
            transport,
            paging: Paging::new(L::DEFAULT_PREFETCH),
            kind: PhantomData,
        }
    }

    /// How many records a page holds (for feedback, each of its two lists): 0 to 100 for
    /// [`Listing::send`] (the API's default is 20 conversations, 10 feedback items), 1 to 100 for
    /// the streams (default 100).
    ///
    /// Any integer type is taken (`u8` to `u128`, `i8` to `i128`, `usize`, `isize`); a value out
    /// of range is refused with [`Error::InvalidInput`] before any request.
    ///
    /// ```no_run
    /// # async fn demo(client: inkeep_analytics::Client) -> inkeep_analytics::Result<()> {
    /// let page_size: usize = 25;
    /// let page = client.list_conversations().limit(page_size).offset(50u64).send().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn limit(mut self, limit: impl TryInto<i128>) -> Self {
        self.paging.limit = Some(Given::from_integer(limit));
        self
    }

    /// How many records to skip: 0 or more (the API's default is 0).
    ///
    /// Any integer type is taken; a negative value, or one above `u64::MAX`, is refused with
    /// [`Error::InvalidInput`] before any request.
    pub fn offset(mut self, offset: impl TryInto<i128>) -> Self {
        self.paging.offset = Some(Given::from_integer(offset));
        self
    }

    /// How many pages a stream may fetch before it reports a server that never ends (default 100,000).
    pub fn max_pages(mut self, max_pages: u64) -> Self {
        self.paging.max_pages = max_pages;
        self
    }

    /// The most pages the streams hold fetched and decoded ahead of the caller once the first
    /// page has told the total ([`DEFAULT_PREFETCH`] for conversations,
    /// [`DEFAULT_FEEDBACK_PREFETCH`] for feedback); 0 fetches each page only when it is needed.
    /// On a short link it is also the most pages requested ahead; on a long one (answers slower
    /// than 25 ms) the client's window of requests in flight decides that (see
    /// [`crate::ClientBuilder::max_concurrency`]), and no page is requested while this many wait.
    /// Pages are never fetched past the latest total, so a listing's end costs no extra request.
    pub fn prefetch(mut self, pages: usize) -> Self {
        self.paging.prefetch = pages;
        self
    }

    /// Fetches one page. Unset parameters are not sent, so the API's defaults apply.
    pub async fn send(self) -> Result<L::Page> {
        let (limit, offset) = self.paging.for_request()?;
        self.transport
            .call(L::ENDPOINT.operation, |g| L::send_page(g, limit, offset))
            .await
    }

    /// Every page from the offset on, fetched lazily as the stream is polled.
    pub fn pages(self) -> BoxStream<'static, Result<L::Page>> {
        paginate(
            self.transport,
            &self.paging,
            L::ENDPOINT,
            Nesting::Decoder,
            L::progress,
        )
    }

    /// Every page from the offset on, with each record kept as the exact JSON the server sent:
    /// for exports that must not lose or reformat anything.
    pub fn raw_pages(self) -> BoxStream<'static, Result<L::RawPage>> {
        paginate(
            self.transport,
            &self.paging,
            L::ENDPOINT,
            Nesting::Scan,
            L::raw_progress,
        )
    }

    /// Every record from the offset on, page after page; the first error ends the stream.
    pub fn items(self) -> BoxStream<'static, Result<L::Item>> {
        self.pages()
            .map_ok(|page| stream::iter(L::into_items(page).into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }
}

/// Where a stream is, between two pages.
struct Cursor {
    transport: Transport,
    page_size: i64,
    offset: u64,
    pages: u64,
    max_pages: u64,
    previous_ids: Option<Vec<Option<String>>>,
    done: bool,
}

impl Cursor {
    /// Refuses to fetch past the page budget: a server that never ends must not keep the caller forever.
    fn check_budget(&self, operation: &'static str) -> Result<()> {
        if self.pages >= self.max_pages {
            return Err(Error::Pagination {
                operation,
                reason: format!(
                    "stopped after {} pages at offset {}; the server does not seem to end (raise max_pages if this is expected)",
                    self.pages, self.offset
                ),
            });
        }
        Ok(())
    }

    /// Moves past a page, refusing one identical to the previous, the sign of a server ignoring `offset`.
    fn advance(&mut self, operation: &'static str, progress: Progress) -> Result<()> {
        self.pages += 1;
        if !progress.ids.is_empty() && self.previous_ids.as_ref() == Some(&progress.ids) {
            return Err(Error::Pagination {
                operation,
                reason: format!(
                    "the server sent the same page twice (offset {}); stopping instead of looping",
                    self.offset
                ),
            });
        }
        self.previous_ids = Some(progress.ids);
        self.offset += progress.step;
        self.done = progress.short || self.offset >= progress.total;
        Ok(())
    }
}

/// A page being fetched ahead of the caller: a tokio task when there is a runtime, so that it
/// downloads and decodes while the caller works through the previous page; aborted when dropped.
struct PageTask<P> {
    offset: u64,
    task: PageFuture<P>,
    /// Lets the page be decoded; until then a compressed page waits as it crossed the wire.
    decode_permit: Option<oneshot::Sender<()>>,
}

enum PageFuture<P> {
    Spawned(tokio::task::JoinHandle<Result<P>>),
    Local(BoxFuture<'static, Result<P>>),
}

impl<P> Drop for PageTask<P> {
    fn drop(&mut self) {
        if let PageFuture::Spawned(handle) = &self.task {
            handle.abort();
        }
    }
}

impl<P> PageTask<P> {
    /// Lets the page be decoded as soon as it is downloaded.
    fn permit_decode(&mut self) {
        if let Some(permit) = self.decode_permit.take() {
            let _ = permit.send(());
        }
    }

    /// Whether the page is in (downloaded and decoded) and waits for the caller.
    fn is_received(&self) -> bool {
        match &self.task {
            PageFuture::Spawned(handle) => handle.is_finished(),
            // Runs only when awaited.
            PageFuture::Local(_) => false,
        }
    }
}

impl<P: Send + 'static> PageTask<P> {
    /// Starts `fetch`, which decodes its page once the receiver it is given fires.
    fn start<Fut>(offset: u64, fetch: impl FnOnce(oneshot::Receiver<()>) -> Fut) -> Self
    where
        Fut: Future<Output = Result<P>> + Send + 'static,
    {
        let (decode_permit, when_permitted) = oneshot::channel();
        let future = fetch(when_permitted);
        let task = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => PageFuture::Spawned(runtime.spawn(future)),
            Err(_) => PageFuture::Local(future.boxed()),
        };
        Self {
            offset,
            task,
            decode_permit: Some(decode_permit),
        }
    }

    /// Stops the fetch and waits until it has stopped, so that nothing of it (a retry's warning
    /// above all) happens after the stream has ended with an error.
    async fn cancel(mut self) {
        if let PageFuture::Spawned(handle) = &mut self.task {
            handle.abort();
            // An aborted task ends at its next await point, so this wait is short.
            let _ = handle.await;
        }
    }

    async fn finish(mut self, operation: &'static str) -> Result<P> {
        self.permit_decode();
        match &mut self.task {
            PageFuture::Spawned(handle) => handle.await.map_err(|failure| Error::Pagination {
                operation,
                reason: format!("the task fetching offset {} failed: {failure}", self.offset),
            })?,
            PageFuture::Local(future) => future.await,
        }
    }
}

/// Lets the pages nearest the reader be decoded as soon as they are downloaded: the first
/// `prefetch` of `ahead` (the first at least). On a long link, where the window keeps more in
/// flight, the others wait compressed, at about a seventh of their decoded size, with no decoder
/// of their own, until the reader nears them.
fn permit_nearest_to_decode<P>(ahead: &mut VecDeque<PageTask<P>>, prefetch: usize) {
    for page in ahead.iter_mut().take(prefetch.max(1)) {
        page.permit_decode();
    }
}

/// Where a stream is, with the pages it fetches ahead of the caller.
struct Prefetcher<P> {
    cursor: Cursor,
    endpoint: &'static Endpoint,
    nesting: Nesting,
    progress: fn(&P, u64) -> Progress,
    /// Pages requested and not yet handed out, in offset order, the first at `cursor.offset`.
    ahead: VecDeque<PageTask<P>>,
    /// The offset of the next page to request.
    next_offset: u64,
    /// The latest total: pages are fetched ahead only below it, so that a listing's end costs no extra request.
    total: Option<u64>,
    prefetch: usize,
}

impl<P> Prefetcher<P>
where
    P: DeserializeOwned + Send + 'static,
{
    /// Requests the page at `next_offset`.
    fn request_next(&mut self) {
        let transport = self.cursor.transport.clone();
        let (endpoint, page_size, offset, nesting) = (
            self.endpoint,
            self.cursor.page_size,
            self.next_offset,
            self.nesting,
        );
        self.ahead
            .push_back(PageTask::start(offset, move |decode_permit| {
                fetch_page(
                    transport,
                    endpoint,
                    page_size,
                    offset,
                    nesting,
                    decode_permit,
                )
            }));
        self.next_offset += self.cursor.page_size as u64;
    }

    /// Keeps pages requested ahead of the caller, below the latest total and within the page
    /// budget: at most `prefetch` on a short link, where pages arrive at once and wait in memory;
    /// as many as the client's window allows on a long one, where most are still on the wire.
    /// Either way, none is requested while `prefetch` pages already wait received: the caller
    /// is then the bottleneck, and more would only hold memory.
    fn request_ahead(&mut self) {
        if self.prefetch == 0 {
            return;
        }
        let budget = self.cursor.max_pages.saturating_sub(self.cursor.pages + 1) as usize;
        let concurrency = self.cursor.transport.concurrency();
        let window = concurrency.window();
        let long_link = concurrency
            .round_trip()
            .is_some_and(|round_trip| round_trip >= LONG_LINK);
        let most = if long_link {
            self.prefetch.max(window)
        } else {
            self.prefetch
        };
        // Pages requested here are not received yet, so this count holds for the whole loop.
        let received = self.ahead.iter().filter(|page| page.is_received()).count();
        while self.ahead.len() < most.min(window).min(budget)
            && self.total.is_some_and(|total| self.next_offset < total)
            && received < self.prefetch
        {
            self.request_next();
        }
        permit_nearest_to_decode(&mut self.ahead, self.prefetch);
    }

    /// Ends the pages fetched ahead before `error` ends the stream, and hands the error back.
    async fn cancel_ahead(&mut self, error: Error) -> Error {
        for page in self.ahead.drain(..) {
            page.cancel().await;
        }
        error
    }

    async fn next_page(&mut self) -> Result<Option<P>> {
        if self.cursor.done {
            return Ok(None);
        }
        self.cursor.check_budget(self.endpoint.operation)?;
        if self
            .ahead
            .front()
            .is_some_and(|page| page.offset != self.cursor.offset)
        {
            // The server moved the offset by other than a page (a longer page than asked):
            // what was fetched ahead is at the wrong offsets.
            self.ahead.clear();
        }
        if self.ahead.is_empty() {
            self.next_offset = self.cursor.offset;
            self.request_next();
        }
        let Some(task) = self.ahead.pop_front() else {
            return Ok(None);
        };
        self.request_ahead();
        let page = match task.finish(self.endpoint.operation).await {
            Ok(page) => page,
            Err(error) => return Err(self.cancel_ahead(error).await),
        };
        let progress = (self.progress)(&page, self.cursor.page_size as u64);
        self.total = Some(progress.total);
        if let Err(error) = self.cursor.advance(self.endpoint.operation, progress) {
            return Err(self.cancel_ahead(error).await);
        }
        if self.cursor.done {
            self.ahead.clear();
        } else {
            // Start on the next pages now, while the caller works through this one.
            self.request_ahead();
        }
        Ok(Some(page))
    }
}

/// A lazy stream of the pages of `endpoint`, decoded as `P` with its nesting bounded as `nesting`
/// says; `progress` reads what the stream needs from each page.
///
/// Nothing is requested before the stream is first polled. Once the first page has told the
/// total, further pages are fetched (and decoded) ahead of the caller, as `Prefetcher::request_ahead`
/// decides, so that the network, decoding and the caller's own work overlap; the first error ends
/// the stream.
fn paginate<P>(
    transport: Transport,
    paging: &Paging,
    endpoint: &'static Endpoint,
    nesting: Nesting,
    progress: fn(&P, u64) -> Progress,
) -> BoxStream<'static, Result<P>>
where
    P: DeserializeOwned + Send + 'static,
{
    let (page_size, offset) = match paging.for_stream() {
        Ok(parameters) => parameters,
        Err(error) => return stream::once(async move { Err(error) }).boxed(),
    };
    let prefetcher = Prefetcher {
        cursor: Cursor {
            transport,
            page_size,
            offset,
            pages: 0,
            max_pages: paging.max_pages,
            previous_ids: None,
            done: false,
        },
        endpoint,
        nesting,
        progress,
        ahead: VecDeque::new(),
        next_offset: offset,
        total: None,
        prefetch: paging.prefetch,
    };
    stream::unfold(Some(prefetcher), |state| async move {
        let mut prefetcher = state?;
        match prefetcher.next_page().await {
            Ok(Some(page)) => Some((Ok(page), Some(prefetcher))),
            Ok(None) => None,
            // The first error ends the stream, once what was fetched ahead has stopped.
            Err(error) => Some((Err(error), None)),
        }
    })
    .fuse()
    .boxed()
}

/// The `id` of a raw record, read without decoding the rest of it: a string as is, a number as
/// written, so that records of a server sending numeric ids are still told apart.
/// `None` for a record that is not an object or has no such id.
pub fn raw_record_id(record: &RawValue) -> Option<String> {
    use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    /// Whether a key is `id`, read without copying it.
    struct IsId;
    impl<'de> DeserializeSeed<'de> for IsId {
        type Value = bool;
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
            deserializer.deserialize_str(self)
        }
    }
    impl Visitor<'_> for IsId {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
            Ok(key == "id")
        }
    }

    /// Reads keys until `id` and stops there: the id usually comes first, and the rest of a
    /// record (kilobytes of messages) is not needed to tell it apart.
    struct FindId<'a>(&'a mut Option<String>);
    impl<'de> Visitor<'de> for FindId<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a record")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(is_id) = map.next_key_seed(IsId)? {
                if is_id {
                    *self.0 = match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::String(id) => Some(id),
                        serde_json::Value::Number(id) => Some(id.to_string()),
                        _ => None,
                    };
                    // Ends the parse early; the caller keeps what was found.
                    return Err(de::Error::custom("found the id"));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }

    // Serde would read a map from other tokens too; a record is an object.
    if !record.get().starts_with('{') {
        return None;
    }
    let mut id = None;
    let _ = serde_json::Deserializer::from_str(record.get()).deserialize_map(FindId(&mut id));
    id
}

/// A page of `GET /conversations` whose records are kept exactly as the server sent them.
#[derive(Debug, Deserialize)]
#[non_exhaustive]
pub struct RawConversationPage {
    /// Each conversation's JSON, byte for byte as received.
    pub conversations: Vec<Box<RawValue>>,
    /// How many conversations the project has in all.
    pub total: serde_json::Number,
    /// The page size the server applied.
    #[serde(rename = "pageSize")]
    pub page_size: serde_json::Number,
    /// How many conversations this page holds.
    pub count: serde_json::Number,
}

/// A page of `GET /feedback` whose records are kept exactly as the server sent them.
#[derive(Debug, Deserialize)]
#[non_exhaustive]
pub struct RawFeedbackPage {
    /// The total of positive feedback.
    #[serde(rename = "positiveFeedbackCount")]
    pub positive_feedback_count: serde_json::Number,
    /// The total of negative feedback.
    #[serde(rename = "negativeFeedbackCount")]
    pub negative_feedback_count: serde_json::Number,
    /// Each positive item's JSON, byte for byte as received.
    #[serde(rename = "positiveFeedback")]
    pub positive_feedback: Vec<Box<RawValue>>,
    /// Each negative item's JSON, byte for byte as received.
    #[serde(rename = "negativeFeedback")]
    pub negative_feedback: Vec<Box<RawValue>>,
}

impl RawConversationPage {
    /// `total` as a count (the API sends integers; anything else is rounded down, at least 0).
    pub fn total_count(&self) -> u64 {
        count(&self.total)
    }
}

impl RawFeedbackPage {
    /// Both counts added, as a count of all feedback.
    pub fn total_count(&self) -> u64 {
        count(&self.positive_feedback_count) + count(&self.negative_feedback_count)
    }
}

/// Which list of `GET /feedback` an item came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sentiment {
    /// From `positiveFeedback`.
    Positive,
    /// From `negativeFeedback`.
    Negative,
}

/// A feedback item, tagged with the list it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedbackItem {
    /// The list the item came from.
    pub sentiment: Sentiment,
    /// The feedback, with its message and conversation.
    pub feedback: FeedbackWithContext,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Sets its flag when the future holding it is dropped, that is, when the fetch has stopped.
    struct Stopped(Arc<AtomicBool>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_fetch_has_stopped_when_cancel_returns() {
        let stopped = Arc::new(AtomicBool::new(false));
        let guard = Stopped(stopped.clone());
        let task = PageTask::<()>::start(0, move |_permit| async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(())
        });
        // Let the fetch start and park, as a request waiting on the network or on a retry does.
        tokio::task::yield_now().await;
        assert!(!stopped.load(Ordering::SeqCst));
        task.cancel().await;
        assert!(
            stopped.load(Ordering::SeqCst),
            "the fetch still runs after the stream ended"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn only_the_pages_nearest_the_reader_are_decoded() {
        use std::sync::atomic::AtomicUsize;
        let decoding = Arc::new(AtomicUsize::new(0));
        let mut ahead: VecDeque<PageTask<()>> = (0..6u64)
            .map(|offset| {
                let decoding = decoding.clone();
                PageTask::start(offset * 100, move |decode_permit| async move {
                    let _ = decode_permit.await;
                    decoding.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                    Ok(())
                })
            })
            .collect();
        let settle = || async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        };
        settle().await;
        assert_eq!(
            decoding.load(Ordering::SeqCst),
            0,
            "a page decoded before it was due"
        );
        permit_nearest_to_decode(&mut ahead, 3);
        settle().await;
        assert_eq!(decoding.load(Ordering::SeqCst), 3);
        // The reader takes the first page: the fourth is now among the nearest.
        drop(ahead.pop_front());
        permit_nearest_to_decode(&mut ahead, 3);
        settle().await;
        assert_eq!(decoding.load(Ordering::SeqCst), 4);
        // With no prefetch, the page the reader waits for is still due.
        let mut rest: VecDeque<_> = ahead.drain(3..).collect();
        permit_nearest_to_decode(&mut rest, 0);
        settle().await;
        assert_eq!(decoding.load(Ordering::SeqCst), 5);
    }
}
