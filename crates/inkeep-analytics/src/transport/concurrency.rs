//! How many requests a client keeps in flight: one adaptive window per client, shared by its listings, exports and the recorder's writes, so that they ask as much of the server as it sustains and no more.
//!
//! The window starts at [`INITIAL_CONCURRENCY`] and grows by one request for every answer that
//! comes back whole, clean and fast (fast: within twice the fastest recent answer, plus a margin),
//! which doubles it every round trip until the server first pushes back; after that it grows by
//! one request per window's worth of such answers (additive increase). A 429, a 503 or a timeout
//! halves it (multiplicative decrease), at most once per round trip, and a `Retry-After` holds
//! every request of the client until it has passed. A server that states its rate
//! (`RateLimit-Policy`) has the client's requests start no faster than that rate, for as long as
//! the client lives. The window never passes the ceiling the user set
//! ([`DEFAULT_MAX_CONCURRENCY`] by default) nor falls below one.
//!
//! This module imports nothing else of the crate: the client state holds the controller, and the
//! hooks take a [`Permit`] around every attempt.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Notify;

use super::BoxError;

/// The most requests a client keeps in flight by default.
///
/// Sixteen requests cover a long, fast link (200 ms round trips at 100 Mbit/s with compressed
/// pages of 100 conversations); a listing holds at most its `prefetch` pages of them ahead of its
/// reader, so memory is bounded there, not here.
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;

/// How many requests a client starts with in flight, before it has seen how the server answers.
///
/// Half the ceiling: on a 200 ms round trip, a listing of 20 pages then takes three round trips
/// instead of five (measured in `BENCHMARKS.md`'s WAN profile), and a server that cannot take
/// eight requests at once halves it at its first refusal.
pub(crate) const INITIAL_CONCURRENCY: usize = 8;

/// Answers slower than twice the fastest by at most this much still count as fast: on loopback
/// the fastest answer takes a millisecond, and scheduling alone varies by more than that.
const FAST_MARGIN: Duration = Duration::from_millis(50);

/// The adaptive window of one client, shared by all its clones.
#[derive(Debug)]
pub(crate) struct Concurrency {
    ceiling: usize,
    window: Mutex<Window>,
    /// Woken whenever a request ends or the window changes, so that waiting requests look again.
    changed: Notify,
}

#[derive(Debug)]
struct Window {
    /// The window as a fraction, so that additive increase can add a fraction of a request.
    limit: f64,
    in_flight: usize,
    /// No request starts before this: the server's `Retry-After`, for the whole client.
    paused_until: Option<Instant>,
    /// The time between request starts when the server stated its rate (`RateLimit-Policy`).
    pace: Option<Duration>,
    /// When the pace lets the next request start.
    next_start: Option<Instant>,
    /// Whether the server has never pushed back: the window then grows by one per clean answer.
    slow_start: bool,
    /// The fastest recent answer, slowly forgotten so that a server that became slower for good
    /// does not stop the window from growing forever.
    fastest: Option<Duration>,
    /// When the window was last halved, so that one burst of refusals halves it once.
    last_decrease: Option<Instant>,
}

/// How a request ended, as the window sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A whole answer in this time: grows the window when it was fast.
    Clean(Duration),
    /// 429, 503 or a timeout: halves the window, and holds every request for the server's
    /// `Retry-After` when it sent one.
    Overloaded(Option<Duration>),
    /// Anything else (a client error, a broken connection): leaves the window as it is.
    Neutral,
}

impl Concurrency {
    /// A window that never passes `ceiling` (at least 1).
    pub(crate) fn new(ceiling: usize) -> Self {
        let ceiling = ceiling.max(1);
        Self {
            ceiling,
            window: Mutex::new(Window {
                limit: INITIAL_CONCURRENCY.min(ceiling) as f64,
                in_flight: 0,
                paused_until: None,
                pace: None,
                next_start: None,
                slow_start: true,
                fastest: None,
                last_decrease: None,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        // The window holds plain numbers, valid whatever a panicking holder left behind.
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most requests the client may have in flight now, between 1 and the ceiling.
    pub(crate) fn window(&self) -> usize {
        let limit = self.lock().limit;
        (limit as usize).clamp(1, self.ceiling)
    }

    /// The fastest recent answer, once there is one: how long the link makes a request wait.
    pub(crate) fn round_trip(&self) -> Option<Duration> {
        self.lock().fastest
    }

    /// The ceiling the user set.
    pub(crate) fn ceiling(&self) -> usize {
        self.ceiling
    }

    /// Waits until the window has room and no `Retry-After` holds the client, and takes a place.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Permit {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so that a release between the look and the wait is not missed.
            changed.as_mut().enable();
            let paused_until = {
                let mut window = self.lock();
                let now = Instant::now();
                match window.paused_until {
                    Some(until) if until > now => Some(until),
                    _ if window.next_start.is_some_and(|at| at > now) => window.next_start,
                    _ => {
                        window.paused_until = None;
                        let room = (window.limit as usize).clamp(1, self.ceiling);
                        if window.in_flight < room {
                            window.in_flight += 1;
                            if let Some(pace) = window.pace {
                                window.next_start = Some(now + pace);
                            }
                            return Permit {
                                controller: Arc::clone(self),
                                started: Instant::now(),
                                done: false,
                            };
                        }
                        None
                    }
                }
            };
            match paused_until {
                Some(until) => tokio::time::sleep_until(until.into()).await,
                None => changed.await,
            }
        }
    }

    /// Paces request starts to the rate the server stated, in requests a second, for the whole
    /// client: a gateway that says its rate is never pushed into refusing.
    pub(crate) fn pace(&self, per_second: f64) {
        if !(per_second.is_finite() && per_second > 0.0) {
            return;
        }
        let pace = Duration::try_from_secs_f64(1.0 / per_second).unwrap_or(Duration::MAX);
        let mut window = self.lock();
        if window.pace != Some(pace) {
            window.pace = Some(pace);
            // Requests already under way spent some of the server's allowance.
            let next = Instant::now().checked_add(pace);
            window.next_start = window.next_start.max(next);
        }
    }

    fn release(&self, outcome: Outcome) {
        {
            let mut window = self.lock();
            window.in_flight = window.in_flight.saturating_sub(1);
            let now = Instant::now();
            match outcome {
                Outcome::Clean(latency) => {
                    let fastest = window
                        .fastest
                        .map_or(latency, |fastest| latency.min(fastest + fastest / 64));
                    window.fastest = Some(fastest);
                    if latency <= fastest.saturating_mul(2) + FAST_MARGIN {
                        let step = if window.slow_start {
                            1.0
                        } else {
                            1.0 / window.limit.max(1.0)
                        };
                        window.limit = (window.limit + step).min(self.ceiling as f64);
                    }
                }
                Outcome::Overloaded(retry_after) => {
                    let round_trip = window.fastest.unwrap_or(Duration::ZERO).max(FAST_MARGIN);
                    if window
                        .last_decrease
                        .is_none_or(|at| now.duration_since(at) >= round_trip)
                    {
                        window.limit = (window.limit / 2.0).max(1.0);
                        window.last_decrease = Some(now);
                    }
                    window.slow_start = false;
                    if let Some(wait) = retry_after {
                        let until = now + wait;
                        window.paused_until =
                            Some(window.paused_until.map_or(until, |at| at.max(until)));
                    }
                }
                Outcome::Neutral => {}
            }
        }
        self.changed.notify_waiters();
    }
}

/// A place in the window, held while one request is in flight; dropping it without
/// [`Permit::finish`] leaves the window as it is.
#[derive(Debug)]
pub(crate) struct Permit {
    controller: Arc<Concurrency>,
    started: Instant,
    done: bool,
}

impl Permit {
    /// How long ago the request started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Paces the client to the rate the server stated (see [`Concurrency::pace`]).
    pub(crate) fn pace(&self, per_second: f64) {
        self.controller.pace(per_second);
    }

    /// Gives the place back and tells the window how the request ended.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.done = true;
        self.controller.release(outcome);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.controller.release(Outcome::Neutral);
        }
    }
}

/// A body that holds its request's place in the window until the last byte has arrived, so that
/// the window counts a page as in flight while it downloads, and times it whole.
pub(crate) struct PermitBody {
    inner: reqwest::Body,
    permit: Option<Permit>,
}

impl PermitBody {
    pub(crate) fn new(inner: reqwest::Body, permit: Permit) -> Self {
        Self {
            inner,
            permit: Some(permit),
        }
    }
}

impl HttpBody for PermitBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                if let Some(permit) = self.permit.take() {
                    let latency = permit.elapsed();
                    permit.finish(Outcome::Clean(latency));
                }
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(permit) = self.permit.take() {
                    permit.finish(if error.is_timeout() {
                        Outcome::Overloaded(None)
                    } else {
                        Outcome::Neutral
                    });
                }
            }
            Poll::Ready(Some(Ok(_))) | Poll::Pending => {}
        }
        polled.map(|frame| frame.map(|frame| frame.map_err(|error| Box::new(error) as BoxError)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `count` requests one after another through the window, each ending as `outcome`.
    fn answer(controller: &Arc<Concurrency>, count: usize, outcome: Outcome) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        else {
            panic!("no runtime");
        };
        runtime.block_on(async {
            for _ in 0..count {
                controller.acquire().await.finish(outcome);
            }
        });
    }

    #[test]
    fn the_window_doubles_then_halves_and_stays_within_bounds() {
        let fast = Outcome::Clean(Duration::from_millis(1));
        let controller = Arc::new(Concurrency::new(16));
        assert_eq!(controller.window(), INITIAL_CONCURRENCY);
        answer(&controller, 2, fast);
        assert_eq!(
            controller.window(),
            INITIAL_CONCURRENCY + 2,
            "one more request per clean answer"
        );
        answer(&controller, 20, fast);
        assert_eq!(controller.window(), 16, "never past the ceiling");
        answer(&controller, 3, Outcome::Overloaded(None));
        assert_eq!(
            controller.window(),
            8,
            "a burst of refusals halves the window once"
        );
        answer(&controller, 8, fast);
        assert_eq!(
            controller.window(),
            8,
            "after a refusal, a window's worth of answers..."
        );
        answer(&controller, 1, fast);
        assert_eq!(controller.window(), 9, "...grows it by one");
        answer(&controller, 10, Outcome::Clean(Duration::from_secs(1)));
        assert_eq!(
            controller.window(),
            9,
            "slow answers do not grow the window"
        );
        answer(&controller, 10, Outcome::Neutral);
        assert_eq!(controller.window(), 9);
    }

    #[test]
    fn a_stated_rate_spaces_request_starts() {
        let controller = Arc::new(Concurrency::new(16));
        controller.pace(20.0);
        let started = Instant::now();
        // Five requests at 20 a second: the first waits one interval, as the pace was just set
        // by an answer, and each of the others one more.
        answer(&controller, 5, Outcome::Clean(Duration::from_millis(1)));
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(240), "{elapsed:?}");
        // A rate that is not a rate changes nothing.
        controller.pace(f64::NAN);
        controller.pace(0.0);
        assert_eq!(controller.lock().pace, Some(Duration::from_millis(50)));
    }

    #[test]
    fn retry_after_holds_every_request() {
        let controller = Arc::new(Concurrency::new(4));
        answer(
            &controller,
            1,
            Outcome::Overloaded(Some(Duration::from_millis(300))),
        );
        let started = Instant::now();
        answer(&controller, 1, Outcome::Neutral);
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
    }
}
