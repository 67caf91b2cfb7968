//! The public client: a thin, cheaply cloned handle over the generated client, with one method per operation.

use crate::config::ClientBuilder;
use crate::error::Result;
use crate::generated;
use crate::pagination::{ListConversations, ListFeedback};

/// A client of the Inkeep Analytics API.
///
/// `Client` is `Clone + Send + Sync`; clones share one connection pool, so clone it rather than
/// building a new one per task. Its `Debug` output never shows the API key.
///
/// ```no_run
/// # async fn demo() -> inkeep_analytics::Result<()> {
/// let client = inkeep_analytics::Client::from_env()?;
/// let page = client.list_conversations().limit(5).send().await?;
/// println!("{} conversations in all", page.total);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    generated: generated::Client,
}

impl Client {
    /// A builder for every setting.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from `INKEEP_ANALYTICS_API_KEY` and, when set, `INKEEP_ANALYTICS_BASE_URL`.
    pub fn from_env() -> Result<Self> {
        ClientBuilder::new().from_env()?.build()
    }

    pub(crate) fn from_generated(generated: generated::Client) -> Self {
        Self { generated }
    }

    /// The generated progenitor client, for calling an operation with its builder interface.
    ///
    /// Its methods return `progenitor_client::Error`; [`crate::Error::from_generated`] converts it.
    pub fn generated(&self) -> &generated::Client {
        &self.generated
    }

    /// Converts an error of a generated method into [`crate::Error`], scrubbing the key from kept bodies.
    pub(crate) async fn convert_error(
        &self,
        operation: &'static str,
        error: progenitor_client::Error<progenitor_client::ByteStream>,
    ) -> crate::Error {
        self.generated.inner.convert_error(operation, error).await
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        progenitor_client::ClientInfo::baseurl(&self.generated)
    }

    /// `GET /conversations` (`getAllConversation`): one page with [`ListConversations::send`],
    /// or every conversation with [`ListConversations::items`] and [`ListConversations::pages`].
    pub fn list_conversations(&self) -> ListConversations {
        ListConversations::new(self.clone())
    }

    /// `GET /feedback` (`getAllFeedback`): one page with [`ListFeedback::send`],
    /// or every feedback item with [`ListFeedback::items`] and [`ListFeedback::pages`].
    pub fn list_feedback(&self) -> ListFeedback {
        ListFeedback::new(self.clone())
    }
}
