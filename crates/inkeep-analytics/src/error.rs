//! The crate's one error type, which keeps everything a caller needs to act on a failure: status, problem details, request id and raw body.

use std::fmt;

use bytes::Bytes;
use futures::StreamExt;
use progenitor_client::ByteStream;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::transport::retry::{is_malformed, is_retryable_error, is_retryable_status};

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How much of an error body is kept. Error bodies are small; an HTML page from a proxy is cut here.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// How much of a body a decode error shows.
const SNIPPET_CHARS: usize = 200;

/// Headers that carry a request id when the body does not.
const REQUEST_ID_HEADERS: &[&str] = &["x-request-id", "request-id", "x-amzn-requestid", "cf-ray"];

/// Everything that can go wrong when calling the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API answered with an error status (4XX or 5XX).
    #[error(transparent)]
    Api(Box<ApiError>),

    /// The request could not be sent, or the response could not be read.
    ///
    /// Its message ends with the innermost cause (such as "Connection refused"), which
    /// `reqwest`'s own message ("error sending request for url ...") leaves out.
    #[error("{operation}: transport error: {source}{}{}", root_cause(.source), after_attempts(.attempts))]
    Transport {
        /// The operation, by its `operationId`.
        operation: &'static str,
        /// What `reqwest` reported.
        #[source]
        source: reqwest::Error,
        /// How many times the request was sent, retries included.
        attempts: u32,
    },

    /// The request, or reading its response, took longer than the configured timeout.
    #[error("{operation}: timed out: {source}{}{}", root_cause(.source), after_attempts(.attempts))]
    Timeout {
        /// The operation, by its `operationId`.
        operation: &'static str,
        /// What `reqwest` reported.
        #[source]
        source: reqwest::Error,
        /// How many times the request was sent, retries included.
        attempts: u32,
    },

    /// A success response whose body does not match the spec.
    #[error(
        "{operation}: cannot decode the {status} response: {source}; body starts with {snippet:?}{}",
        after_attempts(.attempts)
    )]
    Decode {
        /// The operation, by its `operationId`.
        operation: &'static str,
        /// The response status.
        status: StatusCode,
        /// The start of the body, for the error message.
        snippet: String,
        /// The body as received (for a status the spec does not document, at most 64 KiB of it).
        body: Bytes,
        /// Where decoding stopped.
        #[source]
        source: serde_json::Error,
        /// How many times the request was sent, retries included.
        attempts: u32,
    },

    /// A JSON response body larger than [`crate::ClientBuilder::max_response_bytes`]: refused from
    /// its `Content-Length`, or as soon as that many bytes had arrived, so it was never held whole.
    #[error(
        "{operation}: the response body is larger than the limit of {limit} bytes (ClientBuilder::max_response_bytes){}",
        after_attempts(.attempts)
    )]
    ResponseTooLarge {
        /// The operation, by its `operationId`.
        operation: &'static str,
        /// The limit, in bytes.
        limit: u64,
        /// How many times the request was sent, retries included.
        attempts: u32,
    },

    /// An argument was refused before any request was sent.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong with it.
        reason: String,
    },

    /// The client's key may not call this operation, found before any request: a web integration
    /// key only writes (see [`crate::ClientBuilder::web_integration_key`]).
    /// [`Error::is_auth`] is true for it, as for a 401 or 403 from the server.
    #[error("{operation}: not permitted: {reason}")]
    Permission {
        /// The operation, by its `operationId`.
        operation: &'static str,
        /// Why the key may not call it.
        reason: String,
    },

    /// The client could not be configured (missing key, bad base URL, ...).
    #[error("configuration error: {reason}")]
    Configuration {
        /// What is wrong.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A paginated listing did not behave like a finite list (for example, the same page again and again).
    #[error("{operation}: pagination stopped: {reason}")]
    Pagination {
        /// The operation, by its `operationId`.
        operation: &'static str,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    pub(crate) fn configuration(reason: impl Into<String>) -> Self {
        Error::Configuration {
            reason: reason.into(),
            source: None,
        }
    }

    pub(crate) fn configuration_with_source(
        reason: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Configuration {
            reason: reason.into(),
            source: Some(Box::new(source)),
        }
    }

    pub(crate) fn invalid_input(reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            reason: reason.into(),
        }
    }

    /// The HTTP status, when the server answered.
    ///
    /// ```
    /// use inkeep_analytics::{ApiError, Error, StatusCode};
    ///
    /// let error = Error::from(ApiError::from_parts(
    ///     "getConversation",
    ///     StatusCode::NOT_FOUND,
    ///     &Default::default(),
    ///     r#"{"code": "not_found", "detail": "no such conversation"}"#.into(),
    /// ));
    /// assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api(api) => Some(api.status),
            Error::Decode { status, .. } => Some(*status),
            Error::Transport { source, .. } | Error::Timeout { source, .. } => source.status(),
            _ => None,
        }
    }

    /// Whether the server answered 404: the conversation, feedback item or path does not exist.
    ///
    /// ```
    /// use inkeep_analytics::{ApiError, Error, StatusCode};
    ///
    /// let missing = Error::from(ApiError::from_parts(
    ///     "getFeedbackById",
    ///     StatusCode::NOT_FOUND,
    ///     &Default::default(),
    ///     "".into(),
    /// ));
    /// assert!(missing.is_not_found());
    /// assert!(!missing.is_auth());
    /// ```
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// Whether the key is the problem: the server answered 401 (unknown or revoked key) or 403
    /// (a key that may not call the operation), or the client refused the operation to its web
    /// integration key before any request ([`Error::Permission`]).
    ///
    /// ```
    /// use inkeep_analytics::{ApiError, Error, StatusCode};
    ///
    /// let refused = Error::from(ApiError::from_parts(
    ///     "getAllConversation",
    ///     StatusCode::UNAUTHORIZED,
    ///     &Default::default(),
    ///     r#"{"code": "unauthorized"}"#.into(),
    /// ));
    /// assert!(refused.is_auth());
    /// ```
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Permission { .. })
            || matches!(
                self.as_api().map(|api| api.status),
                Some(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
            )
    }

    /// Whether the failure is transient, so that the same call may succeed later: a timeout, a
    /// connection lost or refused, a body cut off, or a status of 408, 429, 500, 502, 503 or 504.
    ///
    /// The client already retried such failures of idempotent requests within its
    /// [`crate::config::RetryPolicy`] (see [`Error::attempts`]); this tells whether waiting longer and
    /// trying again is worth it. A write is safe to send again when it carries an `id`.
    ///
    /// ```
    /// use inkeep_analytics::{ApiError, Error, StatusCode};
    ///
    /// let busy = Error::from(ApiError::from_parts(
    ///     "queryConversations",
    ///     StatusCode::SERVICE_UNAVAILABLE,
    ///     &Default::default(),
    ///     "".into(),
    /// ));
    /// assert!(busy.is_retryable());
    /// let invalid = Error::from(ApiError::from_parts(
    ///     "queryConversations",
    ///     StatusCode::UNPROCESSABLE_ENTITY,
    ///     &Default::default(),
    ///     "".into(),
    /// ));
    /// assert!(!invalid.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(api) => is_retryable_status(api.status),
            Error::Timeout { .. } => true,
            Error::Transport { source, .. } => is_retryable_error(source),
            Error::Decode { source, .. } => is_malformed(source),
            _ => false,
        }
    }

    /// The API error, when the server answered with an error status.
    pub fn as_api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) => Some(api),
            _ => None,
        }
    }

    /// How many times the request was sent, retries included: 1 when it was not retried, 0 when
    /// nothing was sent (an error found before any request, or one that is not about a request).
    ///
    /// Errors converted with [`Error::from_generated`] report 1, since the generated client does
    /// not say how many times its hooks retried.
    pub fn attempts(&self) -> u32 {
        match self {
            Error::Api(api) => api.attempts,
            Error::Transport { attempts, .. }
            | Error::Timeout { attempts, .. }
            | Error::Decode { attempts, .. }
            | Error::ResponseTooLarge { attempts, .. } => *attempts,
            _ => 0,
        }
    }

    /// Records how many attempts led to this error.
    pub(crate) fn with_attempts(mut self, count: u32) -> Self {
        match &mut self {
            Error::Api(api) => api.attempts = count,
            Error::Transport { attempts, .. }
            | Error::Timeout { attempts, .. }
            | Error::Decode { attempts, .. }
            | Error::ResponseTooLarge { attempts, .. } => *attempts = count,
            _ => {}
        }
        self
    }

    /// How long the server asked to wait (`Retry-After`, in seconds or as a date) before sending again.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.as_api().and_then(|api| api.retry_after)
    }

    /// The request id the server gave, to quote to Inkeep support: the problem's `requestId`, or a
    /// request-id header (such as `x-request-id`) when the body has none.
    ///
    /// ```
    /// use inkeep_analytics::{ApiError, Error, StatusCode};
    ///
    /// let error = Error::from(ApiError::from_parts(
    ///     "logConversation",
    ///     StatusCode::INTERNAL_SERVER_ERROR,
    ///     &Default::default(),
    ///     r#"{"code": "internal", "requestId": "req_42"}"#.into(),
    /// ));
    /// assert_eq!(error.request_id(), Some("req_42"));
    /// ```
    pub fn request_id(&self) -> Option<&str> {
        self.as_api().and_then(|api| api.request_id.as_deref())
    }

    /// Converts an error of a generated method, reading the error body when there is one.
    ///
    /// Use it when calling progenitor's builders through [`crate::Client::generated`].
    pub async fn from_generated(
        operation: &'static str,
        error: progenitor_client::Error<ByteStream>,
    ) -> Self {
        use progenitor_client::Error as Generated;
        match error {
            Generated::InvalidRequest(reason) => Error::invalid_input(reason),
            Generated::CommunicationError(source)
            | Generated::ResponseBodyError(source)
            | Generated::InvalidUpgrade(source) => Error::transport(operation, source),
            Generated::ErrorResponse(response) => {
                let status = response.status();
                let headers = response.headers().clone();
                match read_limited(response.into_inner_stream()).await {
                    Ok(body) => ApiError::from_parts(operation, status, &headers, body).into(),
                    Err(source) => Error::transport(operation, source),
                }
            }
            // Every operation of the spec declares exactly one success status, 200 (the spec lint
            // checks it), and typed decoding only happens for that status.
            Generated::InvalidResponsePayload(body, source) => {
                Error::decode(operation, StatusCode::OK, body, source)
            }
            Generated::UnexpectedResponse(response) => {
                Error::from_response(operation, response).await
            }
            // The client's hooks raise `Custom` only to refuse an operation to the key it holds.
            Generated::Custom(reason) => Error::Permission { operation, reason },
        }
    }

    /// Builds the error for a response whose status the caller did not expect: an API error for
    /// 4XX and 5XX, a decode error for an undocumented success status.
    pub(crate) async fn from_response(
        operation: &'static str,
        response: reqwest::Response,
    ) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        // Undocumented statuses (429, 502, 503, ...) often carry a proxy's page: keep at most
        // MAX_ERROR_BODY of it, as for documented ones.
        match read_limited(response.bytes_stream()).await {
            Ok(body) if status.is_success() => Error::Decode {
                operation,
                status,
                snippet: snippet(&body),
                body,
                source: serde_json::Error::io(std::io::Error::other(format!(
                    "the spec does not document status {status} for this operation"
                ))),
                attempts: 1,
            },
            Ok(body) => ApiError::from_parts(operation, status, &headers, body).into(),
            Err(source) => Error::transport(operation, source),
        }
    }

    /// Replaces every copy of `secret` in the kept bodies and texts, in case a server or proxy echoes
    /// the request's headers back in its answer.
    pub(crate) fn redact(mut self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        match &mut self {
            Error::Api(api) => {
                api.body = redact_bytes(&api.body, secret);
                for text in [
                    &mut api.code,
                    &mut api.title,
                    &mut api.detail,
                    &mut api.instance,
                    &mut api.request_id,
                ]
                .into_iter()
                .flatten()
                {
                    *text = text.replace(secret, REDACTED);
                }
                if let Some(problem) = api.problem.take() {
                    api.problem = serde_json::to_string(&problem)
                        .ok()
                        .map(|json| json.replace(secret, REDACTED))
                        .and_then(|json| serde_json::from_str(&json).ok());
                }
            }
            Error::Decode {
                body,
                snippet,
                source,
                ..
            } => {
                *body = redact_bytes(body, secret);
                *snippet = snippet.replace(secret, REDACTED);
                // serde_json quotes the values it rejects ("invalid type: string ..."); its error
                // cannot be edited, so a message that quotes the key is replaced by a scrubbed copy.
                let message = source.to_string();
                if message.contains(secret) {
                    *source = serde::de::Error::custom(message.replace(secret, REDACTED));
                }
            }
            _ => {}
        }
        self
    }

    /// Classifies a `reqwest` failure: a body refused for its size, a timeout, or anything else.
    pub(crate) fn transport(operation: &'static str, source: reqwest::Error) -> Self {
        if let Some(too_large) = too_large(&source) {
            Error::ResponseTooLarge {
                operation,
                limit: too_large.limit,
                attempts: 1,
            }
        } else if source.is_timeout() {
            Error::Timeout {
                operation,
                source,
                attempts: 1,
            }
        } else {
            Error::Transport {
                operation,
                source,
                attempts: 1,
            }
        }
    }

    pub(crate) fn decode(
        operation: &'static str,
        status: StatusCode,
        body: Bytes,
        source: serde_json::Error,
    ) -> Self {
        Error::Decode {
            operation,
            status,
            snippet: snippet(&body),
            body,
            source,
            attempts: 1,
        }
    }
}

/// The error a limited body fails with; [`crate::Error::ResponseTooLarge`] is made from it.
#[derive(Debug)]
pub(crate) struct ResponseTooLarge {
    pub(crate) limit: u64,
}

impl fmt::Display for ResponseTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the response body is larger than the limit of {} bytes",
            self.limit
        )
    }
}

impl std::error::Error for ResponseTooLarge {}

/// Finds a [`ResponseTooLarge`] among the causes of an error.
pub(crate) fn too_large<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a ResponseTooLarge> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(found) = error.downcast_ref::<ResponseTooLarge>() {
            return Some(found);
        }
        cause = error.source();
    }
    None
}

/// The innermost cause of a transport failure, for its message: `reqwest` says only "error
/// sending request for url (...)", and the reason (a refused connection, a DNS failure) is at the
/// bottom of its sources. Nothing is added when the first layer already says it.
fn root_cause(error: &reqwest::Error) -> RootCause<'_> {
    RootCause(error)
}

struct RootCause<'a>(&'a reqwest::Error);

impl fmt::Display for RootCause<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut root: Option<&(dyn std::error::Error + 'static)> = None;
        let mut cause = std::error::Error::source(self.0);
        while let Some(error) = cause {
            root = Some(error);
            cause = error.source();
        }
        match root.map(ToString::to_string) {
            Some(root) if !self.0.to_string().contains(&root) => write!(f, ": {root}"),
            _ => Ok(()),
        }
    }
}

/// The suffix of a message when the request was sent more than once.
fn after_attempts(attempts: &u32) -> AfterAttempts {
    AfterAttempts(*attempts)
}

struct AfterAttempts(u32);

impl fmt::Display for AfterAttempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 1 {
            write!(f, " (after {} attempts)", self.0)
        } else {
            Ok(())
        }
    }
}

impl From<ApiError> for Error {
    fn from(error: ApiError) -> Self {
        Error::Api(Box::new(error))
    }
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of a body and drops the rest unread; a body stopped by
/// the client's response-size limit keeps what arrived before it, so its status is not lost.
async fn read_limited(
    stream: impl futures::Stream<Item = reqwest::Result<Bytes>>,
) -> Result<Bytes, reqwest::Error> {
    let mut stream = std::pin::pin!(stream);
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) if too_large(&error).is_some() => break,
            Err(error) => return Err(error),
        };
        let room = MAX_ERROR_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    Ok(Bytes::from(body))
}

const REDACTED: &str = "<redacted>";

fn redact_bytes(body: &Bytes, secret: &str) -> Bytes {
    let secret = secret.as_bytes();
    if !body.windows(secret.len()).any(|window| window == secret) {
        return body.clone();
    }
    let mut out = Vec::with_capacity(body.len());
    let mut rest: &[u8] = body;
    while let Some(at) = rest
        .windows(secret.len())
        .position(|window| window == secret)
    {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(REDACTED.as_bytes());
        rest = &rest[at + secret.len()..];
    }
    out.extend_from_slice(rest);
    Bytes::from(out)
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(SNIPPET_CHARS)
        .collect()
}

/// An error answer of the API, with its problem details (`application/problem+json`) when the body has them.
///
/// Bodies that are not problem details (an HTML page from a proxy, an empty 503) still make an
/// `ApiError`: the problem fields are then `None` and [`ApiError::body`] keeps the text.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiError {
    /// The operation, by its `operationId`.
    pub operation: &'static str,
    /// The HTTP status.
    pub status: StatusCode,
    /// The problem's `code`, such as `unauthorized` (an open set).
    pub code: Option<String>,
    /// The problem's `title`.
    pub title: Option<String>,
    /// The problem's `detail`.
    pub detail: Option<String>,
    /// The problem's `instance`.
    pub instance: Option<String>,
    /// The problem's `requestId`, or a request-id response header when the body has none.
    pub request_id: Option<String>,
    /// The problem details, when the body decoded as such.
    pub problem: Option<crate::types::Problem>,
    /// The body as received (at most 64 KiB of it).
    pub body: Bytes,
    /// How many times the request was sent, retries included; this is the last answer.
    pub attempts: u32,
    /// The answer's `Retry-After`, read once here so that callers that pace themselves need no headers.
    retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// Builds an API error from a response's parts; never fails, whatever the body.
    pub fn from_parts(
        operation: &'static str,
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Self {
        // Decode leniently first: a body that is JSON but not a complete problem still has useful fields.
        let loose: Option<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_slice(&body).ok();
        let field = |name: &str| -> Option<String> {
            loose
                .as_ref()
                .and_then(|map| map.get(name))
                .and_then(|value| value.as_str())
                .map(str::to_string)
        };
        let legacy_code = loose
            .as_ref()
            .and_then(|map| map.get("error"))
            .and_then(|error| error.get("code"))
            .and_then(|code| code.as_str())
            .map(str::to_string);
        let header_request_id = REQUEST_ID_HEADERS.iter().find_map(|name| {
            headers
                .get(*name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        });
        ApiError {
            operation,
            status,
            code: field("code").or(legacy_code),
            title: field("title"),
            detail: field("detail").or_else(|| {
                loose
                    .as_ref()
                    .and_then(|map| map.get("error"))
                    .and_then(|error| error.get("message"))
                    .and_then(|message| message.as_str())
                    .map(str::to_string)
            }),
            instance: field("instance"),
            request_id: field("requestId").or(header_request_id),
            problem: serde_json::from_slice(&body).ok(),
            body,
            attempts: 1,
            retry_after: crate::transport::retry::retry_after(headers),
        }
    }

    /// The body as text (lossy for bytes that are not UTF-8).
    pub fn body_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: API error {}", self.operation, self.status)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        match (&self.detail, &self.title) {
            (Some(detail), _) => write!(f, ": {detail}")?,
            (None, Some(title)) => write!(f, ": {title}")?,
            (None, None) => {
                let text = self.body_text();
                let text = text.trim();
                if text.is_empty() {
                    write!(f, ": empty body")?;
                } else {
                    let snippet: String = text.chars().take(SNIPPET_CHARS).collect();
                    write!(f, ": {snippet:?}")?;
                }
            }
        }
        if let Some(request_id) = &self.request_id {
            write!(f, " [request id {request_id}]")?;
        }
        write!(f, "{}", AfterAttempts(self.attempts))
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("operation", &self.operation)
            .field("status", &self.status)
            .field("code", &self.code)
            .field("title", &self.title)
            .field("detail", &self.detail)
            .field("instance", &self.instance)
            .field("request_id", &self.request_id)
            .field("body", &self.body_text())
            .field("attempts", &self.attempts)
            .finish()
    }
}

impl std::error::Error for ApiError {}
