//! What every request of one sandbox shares: the store, the keys, the fault draws and the request ids.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::{ConcurrentInserts, FaultConfig, OutageKind, RateLimit, SandboxConfig};
use crate::content::Content;
use crate::rng::{Rng, mix};
use crate::store::Store;

/// The stream of the seed that fault decisions are drawn from.
const FAULT_STREAM: u64 = 3;

/// A fault that answers in place of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    RateLimited,
    Unavailable,
    BadGateway,
    DroppedConnection,
    TruncatedBody,
}

/// What the fault draw decided for one request.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FaultPlan {
    pub delay: Option<Duration>,
    pub fault: Option<Fault>,
    pub retry_after_secs: u64,
    /// The rate limit the answer states in `RateLimit-Policy`, when the sandbox states it.
    pub stated_rate_limit: Option<RateLimit>,
}

struct FaultState {
    config: FaultConfig,
    rng: Rng,
    /// When the faults were applied: the outage window counts from here.
    applied: Instant,
    bucket: Bucket,
}

/// The rate limit's token bucket: full when the faults are applied.
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn full(limit: Option<RateLimit>, now: Instant) -> Self {
        Self {
            tokens: limit.map_or(0.0, |limit| f64::from(limit.burst)),
            refilled: now,
        }
    }

    /// Takes a token, or says how long until one is back.
    fn take(&mut self, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second).min(f64::from(limit.burst));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / limit.per_second,
            ))
        }
    }
}

impl FaultState {
    /// The outage window as instants, if one is configured.
    fn outage_window(&self) -> Option<(Instant, Instant, OutageKind)> {
        let outage = self.config.outage?;
        let start = self.applied + outage.starts_after;
        Some((start, start + outage.lasts, outage.kind))
    }
}

pub(crate) struct Shared {
    store: Mutex<Store>,
    pub api_keys: Vec<String>,
    pub web_keys: Vec<String>,
    pub concurrent_inserts: Option<ConcurrentInserts>,
    faults: Mutex<FaultState>,
    seed: u64,
    requests: AtomicU64,
    /// How many requests were answered `429`.
    rate_limited: AtomicU64,
    /// Wakes the accept loop when the faults change, so that it can close or reopen the listener.
    pub faults_changed: Notify,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys stay out of debug output, as the SDK keeps its own.
        f.debug_struct("Shared")
            .field("seed", &self.seed)
            .field("concurrent_inserts", &self.concurrent_inserts)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(config: &SandboxConfig, content: &'static Content) -> Self {
        Self {
            store: Mutex::new(Store::seeded(config.seed, config.conversations, content)),
            api_keys: config.api_keys.clone(),
            web_keys: config.web_keys.clone(),
            concurrent_inserts: config.concurrent_inserts,
            faults: Mutex::new(FaultState {
                config: config.faults.clone(),
                rng: Rng::stream(config.seed, FAULT_STREAM),
                applied: Instant::now(),
                bucket: Bucket::full(config.faults.rate_limit, Instant::now()),
            }),
            seed: config.seed,
            requests: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            faults_changed: Notify::new(),
        }
    }

    /// The store; a handler that panicked while holding it cannot leave it half-written in a way
    /// that matters more than stopping the sandbox would, so a poisoned lock is used as it is.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_faults(&self, faults: FaultConfig) {
        {
            let mut state = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            state.bucket = Bucket::full(faults.rate_limit, now);
            state.applied = now;
            state.config = faults;
        }
        self.faults_changed.notify_one();
    }

    /// The window in which the listener must be closed, if an outage of refused connections is
    /// configured.
    pub(crate) fn refused_window(&self) -> Option<(Instant, Instant)> {
        let state = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        match state.outage_window() {
            Some((start, end, OutageKind::Refused)) => Some((start, end)),
            _ => None,
        }
    }

    /// How many requests have come in, answered or not.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// How many requests were answered `429 Too Many Requests`.
    pub(crate) fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// A unique id for each request: `req_` and 16 hex digits.
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("req_{:016x}", mix(self.seed.rotate_left(17) ^ n))
    }

    /// Draws the faults of one request. Nothing is drawn while faults are off, so turning them on
    /// later gives the same sequence as a sandbox started with them.
    pub(crate) fn draw_faults(&self) -> FaultPlan {
        let mut state = self.faults.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if let Some((start, end, kind)) = state.outage_window()
            && (start..end).contains(&now)
        {
            let fault = match kind {
                // A connection kept alive from before the outage is closed without an answer.
                OutageKind::Refused => Fault::DroppedConnection,
                OutageKind::Unavailable => Fault::Unavailable,
            };
            return FaultPlan {
                fault: Some(fault),
                ..FaultPlan::default()
            };
        }
        let stated_rate_limit = state
            .config
            .rate_limit
            .filter(|_| state.config.states_rate_limit);
        if let Some(limit) = state.config.rate_limit
            && let Err(wait) = state.bucket.take(limit, now)
        {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            // Whole seconds, rounded up, as the API's `Retry-After` is: never 0, which would
            // invite an immediate retry that the bucket refuses again.
            return FaultPlan {
                fault: Some(Fault::RateLimited),
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                stated_rate_limit,
                ..FaultPlan::default()
            };
        }
        let config = state.config.clone();
        if !config.is_enabled() {
            return FaultPlan {
                stated_rate_limit,
                ..FaultPlan::default()
            };
        }
        let delayed = state.rng.chance(config.delayed);
        let roll = state.rng.unit();
        let kinds = [
            Fault::RateLimited,
            Fault::Unavailable,
            Fault::BadGateway,
            Fault::DroppedConnection,
            Fault::TruncatedBody,
        ];
        let mut threshold = 0.0;
        let mut fault = None;
        for (kind, (_, probability)) in kinds.into_iter().zip(config.exclusive()) {
            threshold += probability;
            if probability > 0.0 && roll < threshold {
                fault = Some(kind);
                break;
            }
        }
        if fault == Some(Fault::RateLimited) {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        FaultPlan {
            delay: delayed.then_some(config.delay),
            fault,
            retry_after_secs: config.retry_after_secs,
            stated_rate_limit,
        }
    }
}
