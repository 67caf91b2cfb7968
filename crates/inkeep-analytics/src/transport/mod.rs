//! The one place a request is sent from: the key, progenitor's hooks, retries and the record of a
//! call's attempts, the size limits, and reading and decoding the answer.
//!
//! [`crate::Client`]'s methods, the listings of [`crate::pagination`] and the CSV exports ask a
//! [`Transport`]; none of them builds or sends a request itself.
//!
//! - [`state`]: what the generated client carries into the hooks (the key, its kind, the policy).
//! - [`hooks`]: progenitor's `pre` and `exec` hooks: local checks, headers, retries of sends.
//! - [`retry`]: the policy, backoff and the record one call's attempts share.
//! - [`limits`]: the response-size limit and the nesting bound of raw records.
//! - [`compression`]: the codings asked for, decoded as answers stream or once a held page is due.
//! - [`concurrency`]: the client's adaptive window of requests in flight.
//! - this module: a call with its body-level retries, the listings' `GET`, decoding, errors.
//!
//! # Layers
//!
//! This module sits under everything that asks it: it names the error, the generated client and
//! its own submodules, never `client`, the listings, `query`, the recorder or `openai`.
//! `cargo xtask check` holds that line (`xtask/src/layers.rs`), since Rust itself permits module cycles.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use progenitor_client::{ByteStream, ResponseValue};
use serde::de::DeserializeOwned;

pub(crate) mod compression;
pub(crate) mod concurrency;
pub(crate) mod hooks;
pub(crate) mod limits;
pub(crate) mod retry;
pub(crate) mod state;

pub use self::concurrency::DEFAULT_MAX_CONCURRENCY;
pub use self::hooks::MAX_REQUEST_BODY_BYTES;
pub use self::limits::DEFAULT_MAX_RESPONSE_BYTES;
pub use self::retry::{
    DEFAULT_LONG_JOB_RETRY_FOR, DEFAULT_MAX_ELAPSED, DEFAULT_MAX_RETRIES, RetryPolicy,
};
pub(crate) use self::state::ClientState;
pub use self::state::KeyKind;

/// The error of the response bodies the transport wraps (a permit's, a size limit's), as
/// `reqwest::Body` takes it.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

use self::compression::{Coding, decode_held, decode_streaming};
use self::concurrency::Concurrency;
use self::limits::{check_nesting, limit_response};
use self::retry::{CallRecord, Failure, describe, is_malformed};
use crate::error::{Error, Result, too_large};
use crate::generated;

/// One attempt of a generated call, boxed so that [`Transport::call`] can issue it again.
pub(crate) type Attempt<'a, T> =
    BoxFuture<'a, std::result::Result<ResponseValue<T>, progenitor_client::Error<ByteStream>>>;

/// Sends the requests of one client handle: the generated client with its state (key, policy,
/// limits), cheap to clone. Clones share one connection pool.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    generated: generated::Client,
}

impl Transport {
    /// A transport to `base_url` (checked, without a trailing slash) through `http_client`.
    pub(crate) fn new(base_url: &str, http_client: reqwest::Client, state: ClientState) -> Self {
        Self {
            generated: generated::Client::new_with_client(base_url, http_client, state),
        }
    }

    /// The generated client, which sends through the same hooks.
    pub(crate) fn generated(&self) -> &generated::Client {
        &self.generated
    }

    /// The base URL requests go to, without a trailing slash.
    pub(crate) fn base_url(&self) -> &str {
        progenitor_client::ClientInfo::baseurl(&self.generated)
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        self.generated.inner.retry_policy()
    }

    pub(crate) fn key_kind(&self) -> KeyKind {
        self.generated.inner.key_kind()
    }

    /// The window of requests in flight that this client's listings, exports and writes share.
    pub(crate) fn concurrency(&self) -> &Concurrency {
        self.generated.inner.concurrency()
    }

    /// The same transport (key, settings, connection pool) with another retry policy.
    pub(crate) fn with_retry_policy(&self, policy: RetryPolicy) -> Self {
        Self {
            generated: generated::Client {
                baseurl: self.generated.baseurl.clone(),
                client: self.generated.client.clone(),
                inner: self.generated.inner.with_retry_policy(policy),
            },
        }
    }

    /// Scrubs the key from anything the server sent back in `error`.
    fn redact(&self, error: Error) -> Error {
        error.redact(self.generated.inner.api_key())
    }

    /// Scrubs the key from a text that quotes what the server sent, such as a decoder's message.
    fn redact_text(&self, text: String) -> String {
        let api_key = self.generated.inner.api_key();
        if api_key.is_empty() || !text.contains(api_key) {
            return text;
        }
        text.replace(api_key, "<redacted>")
    }

    /// Converts an error of a generated method into [`Error`], scrubbing the key from kept bodies.
    pub(crate) async fn convert_error(
        &self,
        operation: &'static str,
        error: progenitor_client::Error<ByteStream>,
    ) -> Error {
        self.redact(Error::from_generated(operation, error).await)
    }

    /// The generated client for one call: the same connection pool and key, with a fresh record of
    /// attempts that the `exec` hook and the call-level loop share.
    fn scoped(&self) -> (generated::Client, Arc<CallRecord>) {
        let record = Arc::new(CallRecord::new());
        let scoped = generated::Client {
            baseurl: self.generated.baseurl.clone(),
            client: self.generated.client.clone(),
            inner: self.generated.inner.for_call(Arc::clone(&record)),
        };
        (scoped, record)
    }

    /// Issues a generated call, and again when a success's body was cut off or malformed and the
    /// request is idempotent; converts its answer or error, which reports how many attempts were made.
    ///
    /// `send` builds and sends the call on the client it is given: the `exec` hook retries failed
    /// sends and transient statuses inside it, this loop only the bodies progenitor reads after that.
    pub(crate) async fn call<T, F>(&self, operation: &'static str, send: F) -> Result<T>
    where
        F: for<'a> Fn(&'a generated::Client) -> Attempt<'a, T>,
    {
        let (scoped, record) = self.scoped();
        let policy = self.retry_policy();
        loop {
            let error = match send(&scoped).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(error) => error,
            };
            if let Some(reason) = self.body_failure(&error)
                && let Some(wait) =
                    record.plan_retry(policy, operation, record.attempts(), &reason, None)
            {
                drop(error);
                tokio::time::sleep(wait).await;
                continue;
            }
            let attempts = record.attempts();
            return Err(self
                .convert_error(operation, error)
                .await
                .with_attempts(attempts));
        }
    }

    /// Sends a `GET` through the same hooks as the generated methods (key, checks, retries, limit)
    /// and decodes the success body as `T`: the page streams' own request, which reads the body
    /// into one buffer and decodes pages typed or with their records kept as the server sent them.
    /// A body cut off or malformed is retried like a failed send.
    ///
    /// The body is read as it crossed the wire, still compressed, and decoded only once `due`
    /// has finished: a listing lets the pages nearest its reader go first, and the others wait
    /// at about a seventh of their size (see [`compression`]).
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        method_name: &'static str,
        path: &str,
        query: &[(&str, String)],
        nesting: Nesting,
        due: impl Future<Output = ()>,
    ) -> Result<T> {
        use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};

        let (scoped, record) = self.scoped();
        let scoped = generated::Client {
            inner: scoped.inner.keeping_bodies_coded(),
            ..scoped
        };
        let policy = self.retry_policy();
        let limit = self.generated.inner.max_response_bytes();
        let info = OperationInfo {
            operation_id: method_name,
        };
        let mut due = Some(due);
        loop {
            let url = format!("{}{path}", self.base_url());
            let mut request = ClientInfo::client(&scoped)
                .get(url)
                .query(query)
                .header(reqwest::header::ACCEPT, "application/json")
                .build()
                .map_err(|source| Error::transport(operation, source))?;
            if let Err(error) = ClientHooks::<ClientState>::pre(&scoped, &mut request, &info).await
            {
                return Err(self.convert_error(operation, error).await);
            }
            let response = match ClientHooks::<ClientState>::exec(&scoped, request, &info).await {
                Ok(response) => response,
                Err(source) => {
                    return Err(
                        Error::transport(operation, source).with_attempts(record.attempts())
                    );
                }
            };
            if response.status() != reqwest::StatusCode::OK {
                let error = Error::from_response(operation, decode_streaming(response)).await;
                return Err(self.redact(error).with_attempts(record.attempts()));
            }
            let coding = Coding::of(response.headers());
            let expected = response.content_length().unwrap_or(0);
            let mut body = read_body(response, expected).await;
            if let Some(due) = due.take() {
                due.await;
            }
            if let (Ok(coded), Some(coding)) = (&body, coding) {
                // Decoded bytes are about seven times the coded ones; the buffer grows past that.
                let expected = (coded.len() as u64).saturating_mul(8).min(limit);
                let decoded = limit_response(decode_held(coded.clone(), coding), limit);
                body = read_body(decoded, expected).await;
            }
            let (reason, error) = match body {
                Ok(body) => match decode_json(&body, nesting) {
                    Ok(page) => return Ok(page),
                    Err(source) => {
                        let reason = is_malformed(&source)
                            .then(|| Failure::Malformed(self.redact_text(describe(&source))));
                        (
                            reason,
                            Error::decode(operation, reqwest::StatusCode::OK, body, source),
                        )
                    }
                },
                Err(source) => {
                    let reason = too_large(&source)
                        .is_none()
                        .then(|| Failure::CutOff(describe(&source)));
                    (reason, Error::transport(operation, source))
                }
            };
            let attempt = record.attempts();
            match reason
                .and_then(|reason| record.plan_retry(policy, operation, attempt, &reason, None))
            {
                Some(wait) => {
                    drop(error);
                    tokio::time::sleep(wait).await;
                }
                None => return Err(self.redact(error).with_attempts(attempt)),
            }
        }
    }

    /// Sends `body`, JSON the caller wrote and checked, as the body of the `POST` operation
    /// `operation_id` (one without path parameters), through the same hooks as every other call:
    /// the key, the body-size check, the window of requests in flight and the policy's retries.
    /// The body is sent as it is, without being parsed or written again; the answer is read only
    /// to give back its place in the window, since a success means the write was stored.
    pub(crate) async fn post_json(
        &self,
        operation_id: &'static str,
        body: bytes::Bytes,
    ) -> Result<()> {
        use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
        use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};

        let Some(operation) = generated::operations::by_id(operation_id)
            .filter(|op| op.http_method == "POST" && !op.path.contains('{'))
        else {
            return Err(Error::configuration(format!(
                "{operation_id} is not a POST operation of the spec without path parameters"
            )));
        };
        let (scoped, record) = self.scoped();
        let info = OperationInfo {
            operation_id: operation.method_name,
        };
        let url = format!("{}{}", self.base_url(), operation.path);
        let mut request = ClientInfo::client(&scoped)
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .body(body)
            .build()
            .map_err(|source| Error::transport(operation.id, source))?;
        if let Err(error) = ClientHooks::<ClientState>::pre(&scoped, &mut request, &info).await {
            return Err(self.convert_error(operation.id, error).await);
        }
        let response = ClientHooks::<ClientState>::exec(&scoped, request, &info)
            .await
            .map_err(|source| {
                Error::transport(operation.id, source).with_attempts(record.attempts())
            })?;
        if !response.status().is_success() {
            let error = Error::from_response(operation.id, decode_streaming(response)).await;
            return Err(self.redact(error).with_attempts(record.attempts()));
        }
        // Stored: an answer cut off or over the size limit changes nothing about that.
        let _ = read_body(response, 0).await;
        Ok(())
    }

    /// Whether a generated call failed on the body of a success, in a way that another attempt may
    /// fix: cut off (not refused for its size), or not JSON at all. A body that is JSON of the wrong
    /// shape would come back the same, so it is not retried.
    fn body_failure(&self, error: &progenitor_client::Error<ByteStream>) -> Option<Failure> {
        match error {
            progenitor_client::Error::ResponseBodyError(source) if too_large(source).is_none() => {
                Some(Failure::CutOff(describe(source)))
            }
            progenitor_client::Error::InvalidResponsePayload(_, source) if is_malformed(source) => {
                Some(Failure::Malformed(self.redact_text(describe(source))))
            }
            _ => None,
        }
    }
}

/// The most a body's buffer is sized for up front from `Content-Length` (larger bodies grow it).
const MAX_PREALLOCATED_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a body into one buffer sized for the `expected` bytes (its `Content-Length`, say), so
/// that a 1 MB page is one allocation and one copy instead of a buffer doubled and copied as
/// chunks arrive.
async fn read_body(
    mut response: reqwest::Response,
    expected: u64,
) -> reqwest::Result<bytes::Bytes> {
    let expected = expected.min(MAX_PREALLOCATED_BODY_BYTES);
    let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(bytes::Bytes::from(body))
}

/// How a body's nesting is bounded before it is decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Nesting {
    /// By serde_json's own recursion limit, which every typed value meets while it is decoded.
    Decoder,
    /// By a scan first: raw records are only skipped over by serde_json, which does not count depth.
    Scan,
}

/// Bounds the nesting of a JSON body and decodes it.
///
/// A page takes a few milliseconds, decoded where it was read, as `reqwest`'s `.json()` would:
/// the streams fetch pages in tasks of their own, so on a multi-threaded runtime pages decode in
/// parallel with each other and with the caller, with no extra threads and their memory.
fn decode_json<T: DeserializeOwned>(
    body: &[u8],
    nesting: Nesting,
) -> std::result::Result<T, serde_json::Error> {
    if let Nesting::Scan = nesting {
        check_nesting(body)?;
    }
    // Checking the whole body's UTF-8 at once (with SIMD) is several times faster than
    // serde_json checking each string of a byte slice; an invalid body is decoded from the bytes
    // so that the error says where.
    match simdutf8::basic::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}
