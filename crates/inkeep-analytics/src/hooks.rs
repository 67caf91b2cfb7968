//! Hooks that progenitor's generated methods call around every request: the key, the accepted media type, the local checks that need the built request, retries and the response-size limit.

use std::fmt;
use std::sync::Arc;

use progenitor_client::{ClientHooks, OperationInfo};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};

use crate::generated::Client as GeneratedClient;
use crate::generated::operations;
use crate::limits::limit_response;
use crate::retry::{
    CallRecord, Failure, RetryPolicy, describe, is_idempotent_request, is_retryable_error,
    is_retryable_status,
};

/// The API refuses request bodies over 2 MB; refusing them here saves the upload and gives a clear error.
pub const MAX_REQUEST_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Which kind of key a client holds; both are sent as a bearer token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// An API integration key: reads and writes, on every operation.
    ApiIntegration,
    /// A web integration key (also Slack, Discord, support-copilot and MCP assistants), on the
    /// operations whose spec lists it (not write-only: it also gets and deletes a conversation). Other operations are refused before any request.
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
}

struct StateInner {
    /// `Bearer <key>`, marked sensitive so that `reqwest` and `http` never print it.
    authorization: HeaderValue,
    /// The key itself, only to scrub it from error bodies that echo it back.
    api_key: Box<str>,
    key_kind: KeyKind,
    max_response_bytes: u64,
}

impl ClientState {
    pub(crate) fn new(
        authorization: HeaderValue,
        api_key: &str,
        key_kind: KeyKind,
        retry: RetryPolicy,
        max_response_bytes: u64,
    ) -> Self {
        Self {
            inner: Arc::new(StateInner {
                authorization,
                api_key: api_key.into(),
                key_kind,
                max_response_bytes,
            }),
            retry,
            call: None,
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
        }
    }

    /// The same state for one call, whose attempts are counted in `record`.
    pub(crate) fn for_call(&self, record: Arc<CallRecord>) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            retry: self.retry.clone(),
            call: Some(record),
        }
    }

    pub(crate) fn max_response_bytes(&self) -> u64 {
        self.inner.max_response_bytes
    }

    pub(crate) fn key_kind(&self) -> KeyKind {
        self.inner.key_kind
    }

    /// Scrubs the key from anything the server sent back in `error`.
    pub(crate) fn redact(&self, error: crate::Error) -> crate::Error {
        error.redact(&self.inner.api_key)
    }

    /// Scrubs the key from a text that quotes what the server sent, such as a decoder's message.
    pub(crate) fn redact_text(&self, text: String) -> String {
        if self.inner.api_key.is_empty() || !text.contains(&*self.inner.api_key) {
            return text;
        }
        text.replace(&*self.inner.api_key, "<redacted>")
    }

    /// Converts an error of a generated method, with the key scrubbed from anything the server sent back.
    pub(crate) async fn convert_error(
        &self,
        operation: &'static str,
        error: progenitor_client::Error<progenitor_client::ByteStream>,
    ) -> crate::Error {
        self.redact(crate::Error::from_generated(operation, error).await)
    }
}

impl fmt::Debug for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientState")
            .field("authorization", &"Bearer <redacted>")
            .field("key_kind", &self.inner.key_kind)
            .field("retry", &self.retry)
            .field("max_response_bytes", &self.inner.max_response_bytes)
            .finish_non_exhaustive()
    }
}

impl ClientHooks<ClientState> for GeneratedClient {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        let operation = operations::by_method_name(info.operation_id);
        let state = &self.inner.inner;
        if state.key_kind == KeyKind::WebIntegration
            && operation.is_some_and(|op| !op.accepts_web_key)
        {
            let id = operation.map_or(info.operation_id, |op| op.id);
            return Err(progenitor_client::Error::InvalidRequest(format!(
                "{id} needs an API integration key; this client holds a web integration key, which only writes"
            )));
        }
        if let Some(length) = request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .map(<[u8]>::len)
            && length > MAX_REQUEST_BODY_BYTES
        {
            return Err(progenitor_client::Error::InvalidRequest(format!(
                "the request body is {length} bytes; the API accepts at most {MAX_REQUEST_BODY_BYTES}"
            )));
        }
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, state.authorization.clone());
        // progenitor sends `Accept: application/json` only for JSON answers; the CSV exports must ask for CSV.
        if let Some(operation) = operation
            && operation.response_media_type != "application/json"
            && let Ok(media_type) = HeaderValue::from_str(operation.response_media_type)
        {
            headers.insert(ACCEPT, media_type);
        }
        // progenitor adds `api-version: <info.version>` for Dropshot servers; the Inkeep API has no
        // such header, and the spec's version is ours, not the API's, so it is not sent.
        headers.remove("api-version");
        Ok(())
    }

    /// Sends the request, and again after a backoff when an idempotent request met a transient
    /// failure (a lost connection, a timeout, 408, 429 or 5XX other than 501), within the policy's
    /// count and time limit. A JSON answer's body is bounded by the client's response-size limit.
    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let state = &self.inner;
        let policy = &state.retry;
        let operation = operations::by_method_name(info.operation_id);
        let name = operation.map_or(info.operation_id, |op| op.id);
        // Calls through `Client` share their record with the call-level loop; calls through
        // `Client::generated` count on their own.
        let own_record;
        let record = match &state.call {
            Some(record) => record.as_ref(),
            None => {
                own_record = CallRecord::new();
                &own_record
            }
        };
        record.set_idempotent(operation.is_some_and(|op| {
            is_idempotent_request(op, request.body().and_then(reqwest::Body::as_bytes))
        }));
        let limit = operation
            .filter(|op| op.response_media_type == "application/json")
            .map(|_| state.max_response_bytes());
        let mut request = request;
        loop {
            let attempt = record.begin_attempt();
            let again = if record.is_idempotent() && attempt <= policy.max_retries {
                request.try_clone()
            } else {
                None
            };
            let result = self.client.execute(request).await;
            let result = match limit {
                Some(limit) => result.map(|response| limit_response(response, limit)),
                None => result,
            };
            let Some(next) = again else {
                return result;
            };
            let (reason, headers) = match &result {
                Ok(response) if is_retryable_status(response.status()) => (
                    Failure::Sent(format!("status {}", response.status().as_u16())),
                    Some(response.headers().clone()),
                ),
                Err(error) if is_retryable_error(error) => (Failure::Sent(describe(error)), None),
                _ => return result,
            };
            let Some(wait) = record.plan_retry(policy, name, attempt, &reason, headers.as_ref())
            else {
                return result;
            };
            // The failed answer is dropped before the wait so its connection goes back to the pool.
            drop(result);
            tokio::time::sleep(wait).await;
            request = next;
        }
    }
}
