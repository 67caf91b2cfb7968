//! Retries of requests that are safe to repeat, with exponential backoff, full jitter and `Retry-After`.
//!
//! Only idempotent operations are retried: `GET` and `DELETE`, and the read-only query `POST`s.
//! Writes (logging a conversation, an event or feedback) are sent once, so a retry can never log
//! anything twice.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::generated::operations::Operation;

/// How many times a failed request is retried by default (so at most 3 attempts).
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// When and how often requests are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 turns retries off.
    pub max_retries: u32,
    /// The backoff before the first retry; it doubles with every retry.
    pub initial_backoff: Duration,
    /// The longest backoff, and the longest `Retry-After` honoured.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// How long to wait before retry number `retry` (1-based): full jitter over an exponential backoff,
    /// or the server's `Retry-After` when it sent one, capped at `max_backoff` either way.
    pub(crate) fn delay(&self, retry: u32, headers: Option<&HeaderMap>) -> Duration {
        if let Some(after) = headers.and_then(retry_after) {
            return after.min(self.max_backoff);
        }
        let exponential = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_backoff);
        exponential.mul_f64(jitter())
    }
}

/// Whether an operation may be sent twice without changing the outcome.
pub(crate) fn is_idempotent(operation: &Operation) -> bool {
    match operation.http_method {
        "GET" | "DELETE" | "HEAD" | "OPTIONS" => true,
        // The query operations read only; their bodies describe a query, not a write.
        "POST" => operation.path.starts_with("/query/"),
        _ => false,
    }
}

/// Whether an answer with this status is worth another attempt.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// Whether a transport failure is worth another attempt: the request may not have reached the
/// server, or the answer was lost on the way.
pub(crate) fn is_retryable_error(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A random factor in [0, 1): a fresh `RandomState` is seeded from the OS, so no RNG crate is needed.
fn jitter() -> f64 {
    let random = RandomState::new().hash_one(std::time::Instant::now());
    (random >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        for retry in 1..=10 {
            let ceiling =
                Duration::from_millis(100 * 2u64.pow(retry - 1)).min(Duration::from_secs(1));
            for _ in 0..20 {
                assert!(policy.delay(retry, None) <= ceiling);
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let policy = RetryPolicy::default();
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(policy.delay(1, Some(&headers)), Duration::from_secs(3));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3600"));
        assert_eq!(policy.delay(1, Some(&headers)), policy.max_backoff);
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(5));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&soon).unwrap_or(HeaderValue::from_static("0")),
        );
        let delay = policy.delay(1, Some(&headers));
        assert!(
            delay <= Duration::from_secs(5) && delay >= Duration::from_secs(3),
            "{delay:?}"
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert!(policy.delay(1, Some(&headers)) <= policy.initial_backoff);
    }

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
}
