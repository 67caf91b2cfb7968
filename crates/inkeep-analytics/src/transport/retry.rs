//! Retries of requests that are safe to repeat, with exponential backoff, full jitter and `Retry-After`.
//!
//! A request is retried only when sending it twice cannot change the outcome: `GET` and `DELETE`,
//! the read-only query `POST`s, and writes whose JSON body carries a top-level `id`, which the API
//! treats as an upsert (the hooks decide which, from the operation table). [`crate::Client`] gives
//! every write an id when the caller did not, so its writes are retried too; a write without an id
//! (raw JSON through [`crate::Client::generated`]) is sent once, so a retry can never log anything twice.
//!
//! Two places retry, sharing one [`CallRecord`] so that the bounds hold across both: the `exec`
//! hook retries failed sends and transient statuses, and the transport's call loop retries a
//! success whose body was cut off or malformed, which progenitor reads after `exec` has returned.
//!
//! This module imports nothing else of the crate: the client state the generated code holds
//! carries a [`RetryPolicy`], and [`crate::Error`] asks it which failures are transient.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How many times a failed request is retried by default (so at most 3 attempts).
pub const DEFAULT_MAX_RETRIES: u32 = 2;

/// How long a call may keep retrying by default, counted from its first attempt.
pub const DEFAULT_MAX_ELAPSED: Duration = Duration::from_secs(60);

/// How long each request of a long job (an export, a listing read to its end, a sync) may keep
/// retrying by default under [`RetryPolicy::for_long_jobs`]: minutes, not attempts, so that one
/// unlucky page in a burst of faults does not throw away the pages before it.
pub const DEFAULT_LONG_JOB_RETRY_FOR: Duration = Duration::from_secs(10 * 60);

/// When and how often requests are retried.
///
/// ```
/// use std::time::Duration;
/// use inkeep_analytics::config::RetryPolicy;
///
/// let patient = RetryPolicy {
///     max_retries: 5,
///     max_elapsed: Duration::from_secs(120),
///     ..RetryPolicy::default()
/// };
/// assert_eq!(patient.initial_backoff, Duration::from_millis(200));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 turns retries off.
    pub max_retries: u32,
    /// The backoff before the first retry; it doubles with every retry.
    pub initial_backoff: Duration,
    /// The longest backoff, and the longest `Retry-After` honoured.
    pub max_backoff: Duration,
    /// How long a call may keep retrying, from its first attempt: no retry starts when its wait
    /// would end past this. An attempt under way is bounded by the request timeout, not by this.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
            max_elapsed: DEFAULT_MAX_ELAPSED,
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

    /// Retries bounded by time alone: each request is retried as often as its transient failures
    /// ask, with the same capped exponential backoff, full jitter and `Retry-After`, until
    /// `retry_for` has passed since its first attempt.
    ///
    /// This is the bound for the requests of a long job, such as an export of hundreds of pages,
    /// where a fixed count of attempts would let one page that meets a burst of faults end the
    /// whole job; a single call on a request path keeps the count of [`RetryPolicy::default`].
    /// [`DEFAULT_LONG_JOB_RETRY_FOR`] is the program's default for its long jobs.
    ///
    /// ```
    /// use std::time::Duration;
    /// use inkeep_analytics::{Client, config::RetryPolicy};
    ///
    /// # fn demo(client: Client) {
    /// let export = client.with_retry_policy(RetryPolicy::for_long_jobs(Duration::from_secs(600)));
    /// assert_eq!(export.retry_policy().max_elapsed, Duration::from_secs(600));
    /// # }
    /// ```
    pub fn for_long_jobs(retry_for: Duration) -> Self {
        Self {
            max_retries: u32::MAX,
            max_elapsed: retry_for,
            ..Self::default()
        }
    }

    /// How long to wait before retry number `retry` (1-based): full jitter over an exponential backoff,
    /// or the server's `Retry-After` when it sent one, capped at `max_backoff` either way.
    pub(crate) fn delay(&self, retry: u32, headers: Option<&HeaderMap>) -> Duration {
        self.backoff(retry, headers.and_then(retry_after), Jitter::Full)
    }

    /// The one backoff of the crate, for the client's retries and the recorder's pauses alike: the
    /// server's `Retry-After` when it sent one, else an exponential backoff after `failures`
    /// failures in a row (1-based) with `jitter`, capped at `max_backoff` either way.
    pub(crate) fn backoff(
        &self,
        failures: u32,
        retry_after: Option<Duration>,
        jitter: Jitter,
    ) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_backoff);
        }
        let exponential = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
            .min(self.max_backoff);
        match jitter {
            Jitter::Full => exponential.mul_f64(random_fraction()),
            Jitter::Half => exponential.mul_f64(0.5 + random_fraction() / 2.0),
        }
    }
}

/// How much of a backoff is random.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Jitter {
    /// Anywhere from nothing to the whole backoff: retries of many clients spread out the most.
    Full,
    /// Half fixed, half random: a pause that never collapses to nothing, for the recorder, whose
    /// pauses hold every write.
    Half,
}

/// What one call has spent so far, shared by the `exec` hook and the call-level loop of
/// [`crate::Client`], so that attempts and elapsed time are bounded across both.
#[derive(Debug)]
pub(crate) struct CallRecord {
    started: Instant,
    attempts: AtomicU32,
    idempotent: AtomicBool,
}

impl CallRecord {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            attempts: AtomicU32::new(0),
            idempotent: AtomicBool::new(false),
        }
    }

    /// Counts an attempt about to be sent and returns its number, 1 for the first.
    pub(crate) fn begin_attempt(&self) -> u32 {
        self.attempts
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }

    /// How many attempts were sent (at least 1 once anything was sent).
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::Relaxed).max(1)
    }

    /// Records whether the request may be sent again, as decided from its operation and body.
    pub(crate) fn set_idempotent(&self, idempotent: bool) {
        self.idempotent.store(idempotent, Ordering::Relaxed);
    }

    pub(crate) fn is_idempotent(&self) -> bool {
        self.idempotent.load(Ordering::Relaxed)
    }

    /// Whether another attempt may follow attempt number `attempt`, and after what wait: `None` when
    /// the request is not idempotent, the attempts are used up, or the wait would end past
    /// `max_elapsed`. Every retry, and every retry refused for time, is logged at `warn`.
    pub(crate) fn plan_retry(
        &self,
        policy: &RetryPolicy,
        operation: &str,
        attempt: u32,
        failure: &Failure,
        headers: Option<&HeaderMap>,
    ) -> Option<Duration> {
        if !self.is_idempotent() || attempt > policy.max_retries {
            return None;
        }
        let wait = policy.delay(attempt, headers);
        let elapsed = self.started.elapsed();
        let reason = failure.reason();
        if elapsed.saturating_add(wait) > policy.max_elapsed {
            tracing::warn!(
                operation,
                attempt,
                reason = %reason,
                elapsed_ms = elapsed.as_millis() as u64,
                max_elapsed_ms = policy.max_elapsed.as_millis() as u64,
                "not retrying: the next attempt would start after the retry time limit"
            );
            return None;
        }
        if policy.max_retries == u32::MAX {
            // Bounded by time alone (a long job's policy): the time left says more than a count.
            tracing::warn!(
                operation,
                attempt,
                reason = %reason,
                wait_ms = wait.as_millis() as u64,
                retrying_for_s = policy.max_elapsed.saturating_sub(elapsed).as_secs(),
                "{}",
                failure.event()
            );
        } else {
            tracing::warn!(
                operation,
                attempt,
                max_attempts = policy.max_retries.saturating_add(1),
                reason = %reason,
                wait_ms = wait.as_millis() as u64,
                "{}",
                failure.event()
            );
        }
        Some(wait)
    }
}

/// Why an attempt failed in a way that another attempt may not.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A transient status, or a request that could not be sent or answered.
    Sent(String),
    /// A success whose body was cut off while it was read.
    CutOff(String),
    /// A success whose body is not JSON, or JSON that stops short.
    Malformed(String),
}

impl Failure {
    fn event(&self) -> &'static str {
        match self {
            Failure::Sent(_) => "retrying",
            Failure::CutOff(_) => "retrying a response whose body was cut off",
            Failure::Malformed(_) => "retrying a response whose body is malformed",
        }
    }

    fn reason(&self) -> &str {
        match self {
            Failure::Sent(reason) | Failure::CutOff(reason) | Failure::Malformed(reason) => reason,
        }
    }
}

/// An error with its causes, `: `-separated, for the reason of a logged retry: `reqwest`'s own
/// message alone ("error decoding response body") does not say what happened.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let more = error.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = error.source();
    }
    text
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

/// Whether a decode error means a truncated or garbled body rather than JSON of the wrong shape:
/// the first may come whole on another attempt, the second would come back the same.
pub(crate) fn is_malformed(error: &serde_json::Error) -> bool {
    matches!(
        error.classify(),
        serde_json::error::Category::Eof | serde_json::error::Category::Syntax
    )
}

/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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

/// The longest policy window the client paces to, in seconds: a minute.
const MAX_PACED_WINDOW_SECS: f64 = 60.0;

/// The request rate a server states in a `RateLimit-Policy` header (the IETF draft on rate limit
/// headers, which API gateways send): the most restrictive of its policies, in requests a second.
///
/// Both forms of the draft are read: `"default";q=20;w=1` (a quota `q` per window of `w`
/// seconds) and the earlier `20;w=1`. Only windows of up to [`MAX_PACED_WINDOW_SECS`] count: they
/// state a request rate, while an hourly or daily quota is a budget, which pacing would spread so
/// thin that the client would crawl. A policy without a window, or a quota or window that is not
/// a positive number, is ignored. The API's reference documents no such header; a server that
/// sends none leaves the client to learn its limit from `429` and `Retry-After`.
pub(crate) fn stated_rate(headers: &HeaderMap) -> Option<f64> {
    let mut slowest: Option<f64> = None;
    for value in headers.get_all("ratelimit-policy") {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for policy in value.split(',') {
            let mut parts = policy.split(';').map(str::trim);
            let first = parts.next().unwrap_or_default();
            let mut quota = first.parse::<f64>().ok();
            let mut window = None;
            for parameter in parts {
                match parameter.split_once('=') {
                    Some(("q", q)) => quota = q.trim().parse::<f64>().ok(),
                    Some(("w", w)) => window = w.trim().parse::<f64>().ok(),
                    _ => {}
                }
            }
            if let (Some(quota), Some(window)) = (quota, window)
                && quota.is_finite()
                && window.is_finite()
                && quota > 0.0
                && window > 0.0
                && window <= MAX_PACED_WINDOW_SECS
            {
                let rate = quota / window;
                slowest = Some(slowest.map_or(rate, |slowest| slowest.min(rate)));
            }
        }
    }
    slowest
}

/// A random factor in [0, 1): a fresh `RandomState` is seeded from the OS, so no RNG crate is needed.
fn random_fraction() -> f64 {
    let random = RandomState::new().hash_one(Instant::now());
    (random >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn a_stated_rate_is_read_from_either_form_of_the_draft() {
        let rate = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append("ratelimit-policy", HeaderValue::from_static(value));
            }
            stated_rate(&headers)
        };
        assert_eq!(rate(&["\"default\";q=20;w=1"]), Some(20.0));
        assert_eq!(rate(&["100;w=60"]), Some(100.0 / 60.0));
        // The most restrictive of several, in one header or several; a daily quota is a budget,
        // not a rate.
        assert_eq!(
            rate(&["\"burst\";q=100;w=1, \"minute\";q=3000;w=60"]),
            Some(50.0)
        );
        assert_eq!(
            rate(&["\"burst\";q=100;w=1, \"day\";q=1000;w=86400"]),
            Some(100.0)
        );
        assert_eq!(rate(&["50;w=1", "\"slow\";q=10;w=1"]), Some(10.0));
        // Nothing usable: no header, no window, a zero or a word where a number goes.
        assert_eq!(rate(&[]), None);
        assert_eq!(rate(&["\"default\";q=20"]), None);
        assert_eq!(
            rate(&[
                "\"default\";q=0;w=1",
                "20;w=0",
                "many;w=1",
                "\"x\";q=nan;w=1"
            ]),
            None
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..RetryPolicy::default()
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
    fn half_jitter_keeps_at_least_half_the_backoff() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        for failures in 1..=6 {
            let whole =
                Duration::from_millis(100 * 2u64.pow(failures - 1)).min(Duration::from_secs(1));
            for _ in 0..20 {
                let pause = policy.backoff(failures, None, Jitter::Half);
                assert!(
                    pause >= whole / 2 && pause <= whole,
                    "{pause:?} of {whole:?}"
                );
            }
        }
        let after = Some(Duration::from_secs(5));
        assert_eq!(policy.backoff(1, after, Jitter::Half), policy.max_backoff);
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
    fn a_long_job_retries_until_its_time_is_up_whatever_the_count() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            ..RetryPolicy::for_long_jobs(Duration::from_secs(60))
        };
        let record = CallRecord::new();
        record.set_idempotent(true);
        for attempt in [1, 3, 10, 1_000, u32::MAX - 1] {
            assert!(
                record
                    .plan_retry(&policy, "op", attempt, &Failure::Sent("x".into()), None)
                    .is_some(),
                "attempt {attempt}"
            );
        }
        // The backoff of a late retry stays capped rather than overflowing.
        assert!(policy.delay(u32::MAX, None) <= policy.max_backoff);
        let spent = RetryPolicy {
            max_elapsed: Duration::ZERO,
            ..policy
        };
        assert_eq!(
            record.plan_retry(&spent, "op", 1, &Failure::Sent("x".into()), None),
            None,
            "no retry once the time is up"
        );
    }

    #[test]
    fn retries_stop_at_the_count_and_the_time_limit() {
        let policy = RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            max_elapsed: Duration::from_secs(60),
        };
        let record = CallRecord::new();
        assert_eq!(
            record.plan_retry(&policy, "op", 1, &Failure::Sent("x".into()), None),
            None,
            "not idempotent"
        );
        record.set_idempotent(true);
        assert!(
            record
                .plan_retry(&policy, "op", 1, &Failure::Sent("x".into()), None)
                .is_some()
        );
        assert!(
            record
                .plan_retry(&policy, "op", 2, &Failure::Sent("x".into()), None)
                .is_some()
        );
        assert_eq!(
            record.plan_retry(&policy, "op", 3, &Failure::Sent("x".into()), None),
            None
        );

        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
        let hurried = RetryPolicy {
            max_backoff: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(2),
            ..policy
        };
        assert_eq!(
            record.plan_retry(
                &hurried,
                "op",
                1,
                &Failure::Sent("x".into()),
                Some(&headers)
            ),
            None,
            "a wait past max_elapsed is not started"
        );
    }
}
