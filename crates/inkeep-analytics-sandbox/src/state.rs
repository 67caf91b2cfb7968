//! What every request of one sandbox shares: the store, the keys, the fault draws and the request ids.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::config::{ConcurrentInserts, FaultConfig, SandboxConfig};
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
}

struct FaultState {
    config: FaultConfig,
    rng: Rng,
}

pub(crate) struct Shared {
    store: Mutex<Store>,
    pub api_keys: Vec<String>,
    pub web_keys: Vec<String>,
    pub concurrent_inserts: Option<ConcurrentInserts>,
    faults: Mutex<FaultState>,
    seed: u64,
    requests: AtomicU64,
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
            }),
            seed: config.seed,
            requests: AtomicU64::new(0),
        }
    }

    /// The store; a handler that panicked while holding it cannot leave it half-written in a way
    /// that matters more than stopping the sandbox would, so a poisoned lock is used as it is.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_faults(&self, faults: FaultConfig) {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .config = faults;
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
        let config = state.config.clone();
        if !config.is_enabled() {
            return FaultPlan::default();
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
        FaultPlan {
            delay: delayed.then_some(config.delay),
            fault,
            retry_after_secs: config.retry_after_secs,
        }
    }
}
