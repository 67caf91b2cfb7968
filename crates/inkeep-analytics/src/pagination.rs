//! Lazy page and item streams over the API's limit/offset listings, which progenitor does not page by itself.
//!
//! A listing stops at the first of: a page shorter than the page size, an offset at or past the
//! latest `total`, an error (which it yields last), or a guard against servers that never end.

use std::collections::VecDeque;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::types::{Conversation, ConversationList, FeedbackList, FeedbackWithContext};

/// The largest `limit` the API accepts, and the page size streams use by default.
pub const MAX_PAGE_SIZE: i64 = 100;

/// How many pages a stream fetches before it decides the server never ends (10 million items at 100 a page).
const DEFAULT_MAX_PAGES: u64 = 100_000;

const GET_ALL_CONVERSATION: &str = "getAllConversation";
const GET_ALL_FEEDBACK: &str = "getAllFeedback";

/// A stream of pages of conversations.
pub type ConversationPages = BoxStream<'static, Result<ConversationList>>;

/// A stream of pages of feedback.
pub type FeedbackPages = BoxStream<'static, Result<FeedbackList>>;

/// The paging parameters shared by both listings.
#[derive(Clone, Debug)]
struct Paging {
    limit: Option<i64>,
    offset: Option<i64>,
    max_pages: u64,
}

impl Paging {
    fn new() -> Self {
        Self {
            limit: None,
            offset: None,
            max_pages: DEFAULT_MAX_PAGES,
        }
    }

    /// Checks `limit` and `offset` for a single request, where a limit of 0 is allowed.
    fn for_request(&self) -> Result<(Option<i64>, Option<u64>)> {
        let limit = match self.limit {
            Some(limit) if !(0..=MAX_PAGE_SIZE).contains(&limit) => {
                return Err(Error::invalid_input(format!(
                    "limit must be between 0 and {MAX_PAGE_SIZE}, got {limit}"
                )));
            }
            limit => limit,
        };
        let offset = match self.offset {
            Some(offset) => Some(u64::try_from(offset).map_err(|_| {
                Error::invalid_input(format!("offset must be 0 or more, got {offset}"))
            })?),
            None => None,
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

/// Reads a JSON number as a count; the API sends integers, so anything else is rounded down and clamped at 0.
pub(crate) fn count(number: &serde_json::Number) -> u64 {
    number
        .as_u64()
        .or_else(|| number.as_f64().map(|value| value.max(0.0) as u64))
        .unwrap_or(0)
}

/// Where a stream is, between two pages.
struct Cursor {
    client: Client,
    page_size: i64,
    offset: u64,
    pages: u64,
    max_pages: u64,
    previous_ids: Option<Vec<Option<String>>>,
    done: bool,
}

impl Cursor {
    fn new(client: Client, page_size: i64, offset: u64, max_pages: u64) -> Self {
        Self {
            client,
            page_size,
            offset,
            pages: 0,
            max_pages,
            previous_ids: None,
            done: false,
        }
    }

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

    /// Refuses a page identical to the previous one, the sign of a server ignoring `offset`.
    fn check_progress(&mut self, operation: &'static str, ids: Vec<Option<String>>) -> Result<()> {
        self.pages += 1;
        if !ids.is_empty() && self.previous_ids.as_ref() == Some(&ids) {
            return Err(Error::Pagination {
                operation,
                reason: format!(
                    "the server sent the same page twice (offset {}); stopping instead of looping",
                    self.offset
                ),
            });
        }
        self.previous_ids = Some(ids);
        Ok(())
    }
}

/// Lists conversations: `GET /conversations` (`getAllConversation`).
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
#[derive(Clone, Debug)]
#[must_use = "a listing does nothing until it is sent or streamed"]
pub struct ListConversations {
    client: Client,
    paging: Paging,
}

impl ListConversations {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            paging: Paging::new(),
        }
    }

    /// How many conversations a page holds: 0 to 100 for [`ListConversations::send`] (the API's default is 20),
    /// 1 to 100 for the streams (default 100). Checked before any request.
    pub fn limit(mut self, limit: i64) -> Self {
        self.paging.limit = Some(limit);
        self
    }

    /// How many conversations to skip (0 or more; the API's default is 0). Checked before any request.
    pub fn offset(mut self, offset: i64) -> Self {
        self.paging.offset = Some(offset);
        self
    }

    /// How many pages a stream may fetch before it reports a server that never ends (default 100,000).
    pub fn max_pages(mut self, max_pages: u64) -> Self {
        self.paging.max_pages = max_pages;
        self
    }

    /// Fetches one page. Unset parameters are not sent, so the API's defaults apply.
    pub async fn send(self) -> Result<ConversationList> {
        let (limit, offset) = self.paging.for_request()?;
        fetch_conversations(&self.client, limit, offset).await
    }

    /// Every page from the offset on, fetched lazily as the stream is polled.
    pub fn pages(self) -> ConversationPages {
        let (page_size, offset) = match self.paging.for_stream() {
            Ok(parameters) => parameters,
            Err(error) => return stream::once(async move { Err(error) }).boxed(),
        };
        let cursor = Cursor::new(self.client, page_size, offset, self.paging.max_pages);
        stream::try_unfold(cursor, |mut cursor| async move {
            if cursor.done {
                return Ok(None);
            }
            cursor.check_budget(GET_ALL_CONVERSATION)?;
            let page =
                fetch_conversations(&cursor.client, Some(cursor.page_size), Some(cursor.offset))
                    .await?;
            let ids = page
                .conversations
                .iter()
                .map(|c| c.id().map(str::to_string))
                .collect();
            cursor.check_progress(GET_ALL_CONVERSATION, ids)?;
            let received = page.conversations.len() as u64;
            cursor.offset += received;
            cursor.done = received < cursor.page_size as u64 || cursor.offset >= count(&page.total);
            Ok(Some((page, cursor)))
        })
        .boxed()
    }

    /// Every conversation from the offset on, page after page; the first error ends the stream.
    pub fn items(self) -> BoxStream<'static, Result<Conversation>> {
        self.pages()
            .map_ok(|page| stream::iter(page.conversations.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }
}

async fn fetch_conversations(
    client: &Client,
    limit: Option<i64>,
    offset: Option<u64>,
) -> Result<ConversationList> {
    let mut request = client.generated().get_all_conversation();
    if let Some(limit) = limit {
        request = request.limit(limit);
    }
    if let Some(offset) = offset {
        request = request.offset(offset);
    }
    match request.send().await {
        Ok(response) => Ok(response.into_inner()),
        Err(error) => Err(client.convert_error(GET_ALL_CONVERSATION, error).await),
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

/// Lists feedback: `GET /feedback` (`getAllFeedback`).
///
/// The API returns a positive and a negative list per page, both cut by the same `limit` and
/// `offset`; the streams page until both lists are exhausted.
#[derive(Clone, Debug)]
#[must_use = "a listing does nothing until it is sent or streamed"]
pub struct ListFeedback {
    client: Client,
    paging: Paging,
}

impl ListFeedback {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            paging: Paging::new(),
        }
    }

    /// How many items each list of a page holds: 0 to 100 for [`ListFeedback::send`] (the API's default is 10),
    /// 1 to 100 for the streams (default 100). Checked before any request.
    pub fn limit(mut self, limit: i64) -> Self {
        self.paging.limit = Some(limit);
        self
    }

    /// How many items of each list to skip (0 or more; the API's default is 0). Checked before any request.
    pub fn offset(mut self, offset: i64) -> Self {
        self.paging.offset = Some(offset);
        self
    }

    /// How many pages a stream may fetch before it reports a server that never ends (default 100,000).
    pub fn max_pages(mut self, max_pages: u64) -> Self {
        self.paging.max_pages = max_pages;
        self
    }

    /// Fetches one page. Unset parameters are not sent, so the API's defaults apply.
    pub async fn send(self) -> Result<FeedbackList> {
        let (limit, offset) = self.paging.for_request()?;
        fetch_feedback(&self.client, limit, offset).await
    }

    /// Every page from the offset on, fetched lazily as the stream is polled.
    pub fn pages(self) -> FeedbackPages {
        let (page_size, offset) = match self.paging.for_stream() {
            Ok(parameters) => parameters,
            Err(error) => return stream::once(async move { Err(error) }).boxed(),
        };
        let cursor = Cursor::new(self.client, page_size, offset, self.paging.max_pages);
        stream::try_unfold(cursor, |mut cursor| async move {
            if cursor.done {
                return Ok(None);
            }
            cursor.check_budget(GET_ALL_FEEDBACK)?;
            let page =
                fetch_feedback(&cursor.client, Some(cursor.page_size), Some(cursor.offset)).await?;
            let ids = page
                .positive_feedback
                .iter()
                .chain(&page.negative_feedback)
                .map(|f| Some(f.id.clone()))
                .collect();
            cursor.check_progress(GET_ALL_FEEDBACK, ids)?;
            let page_size = cursor.page_size as u64;
            // Both lists advance by the same offset, so the page size is the step, not the item count.
            cursor.offset += page_size;
            let total =
                count(&page.positive_feedback_count).max(count(&page.negative_feedback_count));
            let both_short = (page.positive_feedback.len() as u64) < page_size
                && (page.negative_feedback.len() as u64) < page_size;
            cursor.done = both_short || cursor.offset >= total;
            Ok(Some((page, cursor)))
        })
        .boxed()
    }

    /// Every feedback item from the offset on, positive then negative within each page, tagged with its list.
    pub fn items(self) -> BoxStream<'static, Result<FeedbackItem>> {
        self.pages()
            .map_ok(|page| {
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
                stream::iter(positive.chain(negative).map(Ok).collect::<VecDeque<_>>())
            })
            .try_flatten()
            .boxed()
    }
}

async fn fetch_feedback(
    client: &Client,
    limit: Option<i64>,
    offset: Option<u64>,
) -> Result<FeedbackList> {
    let mut request = client.generated().get_all_feedback();
    if let Some(limit) = limit {
        request = request.limit(limit);
    }
    if let Some(offset) = offset {
        request = request.offset(offset);
    }
    match request.send().await {
        Ok(response) => Ok(response.into_inner()),
        Err(error) => Err(client.convert_error(GET_ALL_FEEDBACK, error).await),
    }
}
