//! The hooks progenitor's generated methods call around every request: the key, the accepted media type, the local checks that need the built request, the client's window of requests in flight, retries and the response-size limit.

use std::borrow::Cow;

use progenitor_client::{ClientHooks, OperationInfo};
use reqwest::header::{ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, HeaderValue};
use serde::Deserialize;

use super::compression::{ACCEPTED_CODINGS, decode_streaming};
use super::concurrency::{Outcome, Permit, PermitBody};
use super::limits::{limit_response, map_body};
use super::retry::{
    CallRecord, Failure, describe, is_retryable_error, is_retryable_status, retry_after,
    stated_rate,
};
use super::state::{ClientState, KeyKind};
use crate::generated::Client as GeneratedClient;
use crate::generated::operations::{self, Operation};

/// The API refuses request bodies over 2 MB; refusing them here saves the upload and gives a clear error.
pub const MAX_REQUEST_BODY_BYTES: usize = 2 * 1024 * 1024;

impl ClientHooks<ClientState> for GeneratedClient {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        let operation = operations::by_method_name(info.operation_id);
        let state = &self.inner;
        if state.key_kind() == KeyKind::WebIntegration
            && operation.is_some_and(|op| !op.accepts_web_key)
        {
            let id = operation.map_or(info.operation_id, |op| op.id);
            // `Custom` is the variant progenitor leaves to hooks, and these hooks raise it for
            // this refusal only: `Error::from_generated` turns it into `Error::Permission`.
            return Err(progenitor_client::Error::Custom(format!(
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
        headers.insert(AUTHORIZATION, state.authorization().clone());
        // progenitor sends `Accept: application/json` only for JSON answers; the CSV exports must ask for CSV.
        if let Some(operation) = operation
            && operation.response_media_type != "application/json"
            && let Ok(media_type) = HeaderValue::from_str(operation.response_media_type)
        {
            headers.insert(ACCEPT, media_type);
        }
        // Asked for here rather than by `reqwest`, which would also decode every answer as it
        // arrives (see `super::compression`); a caller's own header is kept.
        headers
            .entry(ACCEPT_ENCODING)
            .or_insert(HeaderValue::from_static(ACCEPTED_CODINGS));
        // progenitor adds `api-version: <info.version>` for Dropshot servers; the Inkeep API has no
        // such header, and the spec's version is ours, not the API's, so it is not sent.
        headers.remove("api-version");
        Ok(())
    }

    /// Sends the request, and again after a backoff when an idempotent request met a transient
    /// failure (a lost connection, a timeout, 408, 429 or 5XX other than 501), within the policy's
    /// count and time limit. A coded answer is decoded as it streams, unless the call keeps it
    /// coded (a listing's page), and a JSON answer's body is bounded by the client's response-size limit.
    ///
    /// Every attempt waits for a place in the client's window of requests in flight, and tells the
    /// window how it ended: a JSON success keeps its place until its body has been read whole.
    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let state = &self.inner;
        let policy = state.retry_policy();
        let operation = operations::by_method_name(info.operation_id);
        let name = operation.map_or(info.operation_id, |op| op.id);
        // Calls through `Client` share their record with the call-level loop; calls through
        // `Client::generated` count on their own.
        let own_record;
        let record = match state.call_record() {
            Some(record) => record,
            None => {
                own_record = CallRecord::new();
                &own_record
            }
        };
        // Only a retry needs to know, and finding a write's `id` parses its body: a client that
        // never retries (the recorder's, which paces its writes itself) skips that pass.
        record.set_idempotent(
            policy.max_retries > 0
                && operation.is_some_and(|op| {
                    is_idempotent_request(op, request.body().and_then(reqwest::Body::as_bytes))
                }),
        );
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
            let permit = state.concurrency().acquire().await;
            let result = match self.client.execute(request).await {
                Ok(response) => {
                    let response = if state.keeps_bodies_coded() {
                        response
                    } else {
                        decode_streaming(response)
                    };
                    let response = match limit {
                        Some(limit) => limit_response(response, limit),
                        None => response,
                    };
                    Ok(hold_place(
                        response,
                        permit,
                        limit.is_some(),
                        policy.max_backoff,
                    ))
                }
                Err(error) => {
                    permit.finish(if error.is_timeout() {
                        Outcome::Overloaded(None)
                    } else {
                        Outcome::Neutral
                    });
                    Err(error)
                }
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

/// Tells the window how an answer went, and keeps the request's place while a JSON success's
/// body downloads; streamed answers (CSV) give it back at once, since the caller reads them at
/// its own pace and must not hold the whole client's window meanwhile.
fn hold_place(
    response: reqwest::Response,
    permit: Permit,
    read_whole: bool,
    max_wait: std::time::Duration,
) -> reqwest::Response {
    let status = response.status();
    if let Some(rate) = stated_rate(response.headers()) {
        permit.pace(rate);
    }
    if matches!(status.as_u16(), 429 | 503) {
        let wait = retry_after(response.headers()).map(|wait| wait.min(max_wait));
        permit.finish(Outcome::Overloaded(wait));
        return response;
    }
    if !status.is_success() {
        permit.finish(Outcome::Neutral);
        return response;
    }
    if !read_whole {
        let latency = permit.elapsed();
        permit.finish(Outcome::Clean(latency));
        return response;
    }
    map_body(response, |body| {
        reqwest::Body::wrap(PermitBody::new(body, permit))
    })
}

/// Whether an operation may be sent twice without changing the outcome, whatever its body.
pub(crate) fn is_idempotent(operation: &Operation) -> bool {
    match operation.http_method {
        "GET" | "DELETE" | "HEAD" | "OPTIONS" => true,
        // The query operations read only; their bodies describe a query, not a write.
        "POST" => operation.path.starts_with("/query/"),
        _ => false,
    }
}

/// Whether this request may be sent twice: an idempotent operation, or a `POST` write whose JSON
/// object body carries a top-level, non-empty string `id`, which makes the write an upsert.
pub(crate) fn is_idempotent_request(operation: &Operation, body: Option<&[u8]>) -> bool {
    is_idempotent(operation)
        || (operation.http_method == "POST" && body.is_some_and(has_top_level_id))
}

/// Whether a JSON body is an object with a non-empty string `id` at its top level.
fn has_top_level_id(body: &[u8]) -> bool {
    /// Only `id` is read; every other member is skipped without being kept.
    #[derive(Deserialize)]
    struct TopLevel<'a> {
        #[serde(borrow, default)]
        id: Option<Cow<'a, str>>,
    }
    // A derived struct also accepts a JSON array, whose first element would pass for the id.
    let is_object = body
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|byte| *byte == b'{');
    is_object
        && serde_json::from_slice::<TopLevel<'_>>(body)
            .ok()
            .and_then(|top| top.id)
            .is_some_and(|id| !id.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_operations_are_retried() {
        use crate::generated::operations::by_id;
        for (id, expected) in [
            ("getAllConversation", true),
            ("deleteConversation", true),
            ("queryConversations", true),
            ("exportEventsQueryResults", true),
            ("logConversation", false),
            ("logEvent", false),
            ("logFeedback", false),
        ] {
            let operation = by_id(id);
            assert_eq!(operation.map(is_idempotent), Some(expected), "{id}");
        }
    }

    #[test]
    fn writes_are_idempotent_when_their_body_has_an_id() {
        use crate::generated::operations::by_id;
        let Some(log) = by_id("logConversation") else {
            panic!("logConversation is not in the operation table");
        };
        for (body, expected) in [
            (
                &br#"{"id": "c1", "type": "openai", "messages": []}"#[..],
                true,
            ),
            (br#"  {"type": "openai", "id": "c\u0031"}"#, true),
            (br#"{"type": "openai", "messages": [{"id": "m1"}]}"#, false),
            (br#"{"id": "", "type": "openai"}"#, false),
            (br#"{"id": "  "}"#, false),
            (br#"{"id": null}"#, false),
            (br#"{"id": 7}"#, false),
            (br#"["c1"]"#, false),
            (br#"{"id": "c1", "id": "c2"}"#, false),
            (b"not json", false),
        ] {
            assert_eq!(
                is_idempotent_request(log, Some(body)),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(!is_idempotent_request(log, None));
        let Some(query) = by_id("queryEvents") else {
            panic!("queryEvents is not in the operation table");
        };
        assert!(is_idempotent_request(query, Some(b"{}")));
    }
}
