//! What the generated client carries into every hook: the key, its kind, the retry policy, the size limit and a call's record of attempts.
//!
//! The generated code names [`ClientState`] as progenitor's inner type, so this module imports
//! nothing that imports the generated code: only [`super::retry`] and [`super::concurrency`], which
//! import nothing of the crate.

use std::fmt;
use std::sync::Arc;

use reqwest::header::HeaderValue;

use super::concurrency::Concurrency;
use super::retry::{CallRecord, RetryPolicy};

/// Which kind of key a client holds; both are sent as a bearer token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// An API integration key: reads and writes, on every operation.
    ApiIntegration,
    /// A web integration key (also Slack, Discord, support-copilot and MCP assistants), on the
    /// operations whose spec lists it: logging conversations, feedback and events, and getting or
    /// deleting a conversation. Other operations are refused before any request.
    WebIntegration,
}

/// What the hand-written layer hands to the generated client: cheap to clone.
///
/// The key and limits are shared by every clone; the retry policy belongs to one client handle
/// (see [`crate::Client::with_retry_policy`]); a call's record of attempts belongs to one call.
#[derive(Clone)]
pub struct ClientState {
    inner: Arc<StateInner>,
    retry: RetryPolicy,
    call: Option<Arc<CallRecord>>,
    /// Whether the `exec` hook hands an answer's body back as it crossed the wire, still coded:
    /// a listing's page, which the listing decodes once its reader nears it.
    keeps_bodies_coded: bool,
}

struct StateInner {
    /// `Bearer <key>`, marked sensitive so that `reqwest` and `http` never print it.
    authorization: HeaderValue,
    /// The key itself, only to scrub it from error bodies that echo it back.
    api_key: Box<str>,
    key_kind: KeyKind,
    max_response_bytes: u64,
    /// How many requests are in flight, shared by every clone, so that listings, exports and the
    /// recorder's writes of one client share one window.
    concurrency: Arc<Concurrency>,
}

impl ClientState {
    pub(crate) fn new(
        authorization: HeaderValue,
        api_key: &str,
        key_kind: KeyKind,
        retry: RetryPolicy,
        max_response_bytes: u64,
        max_concurrency: usize,
    ) -> Self {
        Self {
            inner: Arc::new(StateInner {
                authorization,
                api_key: api_key.into(),
                key_kind,
                max_response_bytes,
                concurrency: Arc::new(Concurrency::new(max_concurrency)),
            }),
            retry,
            call: None,
            keeps_bodies_coded: false,
        }
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The same state with another retry policy.
    pub(crate) fn with_retry_policy(&self, retry: RetryPolicy) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            retry,
            call: None,
            keeps_bodies_coded: false,
        }
    }

    /// The same state for one call, whose attempts are counted in `record`.
    pub(super) fn for_call(&self, record: Arc<CallRecord>) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            retry: self.retry.clone(),
            call: Some(record),
            keeps_bodies_coded: false,
        }
    }

    /// The same state for one call whose answer's body is handed back as it crossed the wire,
    /// still coded (see [`super::compression`]).
    pub(super) fn keeping_bodies_coded(mut self) -> Self {
        self.keeps_bodies_coded = true;
        self
    }

    /// Whether the `exec` hook leaves the answer's body coded.
    pub(super) fn keeps_bodies_coded(&self) -> bool {
        self.keeps_bodies_coded
    }

    /// The record of the call under way, when the call came through the transport.
    pub(super) fn call_record(&self) -> Option<&CallRecord> {
        self.call.as_deref()
    }

    pub(super) fn authorization(&self) -> &HeaderValue {
        &self.inner.authorization
    }

    /// The key, only to scrub it from what a server sends back.
    pub(super) fn api_key(&self) -> &str {
        &self.inner.api_key
    }

    pub(super) fn max_response_bytes(&self) -> u64 {
        self.inner.max_response_bytes
    }

    /// The window of requests in flight that every clone shares.
    pub(crate) fn concurrency(&self) -> &Arc<Concurrency> {
        &self.inner.concurrency
    }

    pub(crate) fn key_kind(&self) -> KeyKind {
        self.inner.key_kind
    }
}

impl fmt::Debug for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientState")
            .field("authorization", &"Bearer <redacted>")
            .field("key_kind", &self.inner.key_kind)
            .field("retry", &self.retry)
            .field("max_response_bytes", &self.inner.max_response_bytes)
            .field("max_concurrency", &self.inner.concurrency.ceiling())
            .finish_non_exhaustive()
    }
}
