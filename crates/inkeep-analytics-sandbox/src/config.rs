//! What a sandbox is started with: the seed and size of its data, its keys, its faults and its concurrent writes.

use std::time::Duration;

use crate::error::{Error, Result};

/// The API integration key of a default sandbox: it reads and writes, on every operation.
pub const DEFAULT_API_KEY: &str = "sk-sandbox";

/// The web integration key of a default sandbox: it calls only the operations whose security in the
/// spec accepts a web integration key (the SDK's generated operation table says which).
pub const DEFAULT_WEB_KEY: &str = "wk-sandbox";

/// The seed of a default sandbox.
pub const DEFAULT_SEED: u64 = 42;

/// How many conversations a default sandbox is seeded with.
pub const DEFAULT_CONVERSATIONS: usize = 250;

/// How a sandbox behaves: its data, keys, faults and concurrent writes.
///
/// Every field is public; start from [`SandboxConfig::default`] and change what you need:
///
/// ```
/// use inkeep_analytics_sandbox::{FaultConfig, SandboxConfig};
///
/// let config = SandboxConfig {
///     seed: 7,
///     conversations: 40,
///     faults: FaultConfig { rate_limited: 0.1, ..FaultConfig::default() },
///     ..SandboxConfig::default()
/// };
/// assert_eq!(config.api_keys, ["sk-sandbox"]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxConfig {
    /// The seed of the data and of every random decision (ids, faults): the same seed gives the same
    /// data, byte for byte.
    pub seed: u64,
    /// How many conversations the sandbox starts with (feedback and events are seeded in proportion).
    pub conversations: usize,
    /// The API integration keys it accepts (read and write, every operation). At least one.
    pub api_keys: Vec<String>,
    /// The web integration keys it accepts: on the operations the spec marks for them (mostly
    /// writes), `403` on the others.
    pub web_keys: Vec<String>,
    /// The faults it injects; none by default.
    pub faults: FaultConfig,
    /// New conversations inserted while a client pages through `GET /conversations`; off by default.
    pub concurrent_inserts: Option<ConcurrentInserts>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            seed: DEFAULT_SEED,
            conversations: DEFAULT_CONVERSATIONS,
            api_keys: vec![DEFAULT_API_KEY.to_string()],
            web_keys: vec![DEFAULT_WEB_KEY.to_string()],
            faults: FaultConfig::default(),
            concurrent_inserts: None,
        }
    }
}

impl SandboxConfig {
    /// Checks the configuration; starting a sandbox does this too.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when there is no API key, a key is empty or has whitespace, a key
    /// is both an API and a web key, the faults are invalid ([`FaultConfig::validate`]), or the
    /// concurrent inserts have a zero `every` or `count`.
    pub fn validate(&self) -> Result<()> {
        if self.api_keys.is_empty() {
            return Err(Error::InvalidConfig(
                "at least one API key is needed, or nothing could read the data".into(),
            ));
        }
        for key in self.api_keys.iter().chain(&self.web_keys) {
            if key.is_empty() || key.chars().any(char::is_whitespace) {
                return Err(Error::InvalidConfig(format!(
                    "the key {key:?} is empty or has whitespace, so it cannot be sent as a bearer token"
                )));
            }
        }
        if let Some(key) = self.web_keys.iter().find(|key| self.api_keys.contains(key)) {
            return Err(Error::InvalidConfig(format!(
                "the key {key:?} is both an API key and a web key"
            )));
        }
        self.faults.validate()?;
        if let Some(inserts) = &self.concurrent_inserts
            && (inserts.every == 0 || inserts.count == 0)
        {
            return Err(Error::InvalidConfig(
                "concurrent inserts need `every` and `count` of at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Faults the sandbox injects, each with a probability per request; all off by default.
///
/// The kinds that answer in place of the API (`rate_limited`, `unavailable`, `bad_gateway`,
/// `dropped_connection`, `truncated_body`) exclude each other: one draw per request picks at most
/// one, so their probabilities must add up to 1 at most. `delayed` is drawn separately and
/// combines with any of them. The draws come from the seed, so a client that sends the same
/// requests in the same order meets the same faults.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// `429 Too Many Requests` with a `Retry-After` header and a problem+json body.
    pub rate_limited: f64,
    /// The `Retry-After` of the `429` answers, in whole seconds.
    pub retry_after_secs: u64,
    /// `503 Service Unavailable` with an HTML body, as a proxy answers.
    pub unavailable: f64,
    /// `502 Bad Gateway` with an empty body.
    pub bad_gateway: f64,
    /// The connection is closed without any answer.
    pub dropped_connection: f64,
    /// The answer announces its full `Content-Length`, sends part of the body, then closes the connection.
    pub truncated_body: f64,
    /// The answer comes after [`FaultConfig::delay`].
    pub delayed: f64,
    /// How long a delayed answer waits.
    pub delay: Duration,
    /// A real request rate, as an API gateway enforces it: requests past it are answered `429`
    /// with `Retry-After`, whatever the probabilities above say. Off by default.
    pub rate_limit: Option<RateLimit>,
    /// Whether every answer states the rate limit's rate in a `RateLimit-Policy` header
    /// (`"sandbox";q=20;w=1`), as API gateways that follow the IETF draft on rate limit headers
    /// do. Off by default: the API's reference documents no such header.
    pub states_rate_limit: bool,
    /// A window in which the API is down, then recovers: what the recorder must ride out.
    /// Off by default.
    pub outage: Option<Outage>,
}

/// A token bucket over every request of the sandbox: it holds up to `burst` requests and refills
/// at `per_second`; a request that finds it empty is answered `429 Too Many Requests` with a
/// problem+json body and a `Retry-After` of the whole seconds until a token is back (at least 1),
/// as the API's rate limiter answers. Refused requests take no token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Requests a second, sustained (more than 0).
    pub per_second: f64,
    /// Requests that may come at once after a quiet spell (at least 1).
    pub burst: u32,
}

/// How the API is down during an [`Outage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutageKind {
    /// The listener is closed: new connections are refused, open ones are closed without an answer.
    Refused,
    /// Every request is answered `503 Service Unavailable` with a proxy's HTML body.
    Unavailable,
}

/// A window in which the sandbox is down, counted from the moment the faults were applied (the
/// sandbox's start, or [`Sandbox::set_faults`](crate::Sandbox::set_faults)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// How long the sandbox serves normally before the outage.
    pub starts_after: Duration,
    /// How long the outage lasts; the sandbox serves normally again afterwards.
    pub lasts: Duration,
    /// Refused connections or `503` answers.
    pub kind: OutageKind,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            rate_limited: 0.0,
            retry_after_secs: 1,
            unavailable: 0.0,
            bad_gateway: 0.0,
            dropped_connection: 0.0,
            truncated_body: 0.0,
            delayed: 0.0,
            delay: Duration::from_millis(500),
            rate_limit: None,
            states_rate_limit: false,
            outage: None,
        }
    }
}

impl FaultConfig {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether any fault can happen.
    ///
    /// The rate limit and the outage are not drawn, so they do not count here.
    pub fn is_enabled(&self) -> bool {
        self.exclusive().iter().any(|(_, p)| *p > 0.0) || self.delayed > 0.0
    }

    /// The faults that answer in place of the API, in the order a draw walks them.
    pub(crate) fn exclusive(&self) -> [(&'static str, f64); 5] {
        [
            ("rate_limited", self.rate_limited),
            ("unavailable", self.unavailable),
            ("bad_gateway", self.bad_gateway),
            ("dropped_connection", self.dropped_connection),
            ("truncated_body", self.truncated_body),
        ]
    }

    /// Checks the probabilities.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when a probability is not a number between 0 and 1, the
    /// exclusive ones add up to more than 1, or the rate limit has no positive rate or no burst.
    pub fn validate(&self) -> Result<()> {
        if let Some(limit) = &self.rate_limit
            && (!limit.per_second.is_finite() || limit.per_second <= 0.0 || limit.burst == 0)
        {
            return Err(Error::InvalidConfig(format!(
                "a rate limit needs a positive rate and a burst of at least 1, got {} a second and a burst of {}",
                limit.per_second, limit.burst
            )));
        }
        let all = self
            .exclusive()
            .into_iter()
            .chain([("delayed", self.delayed)]);
        for (name, p) in all {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::InvalidConfig(format!(
                    "the probability of {name} must be between 0 and 1, got {p}"
                )));
            }
        }
        let sum: f64 = self.exclusive().iter().map(|(_, p)| p).sum();
        if sum > 1.0 + 1e-9 {
            return Err(Error::InvalidConfig(format!(
                "the probabilities of rate_limited, unavailable, bad_gateway, dropped_connection and truncated_body exclude each other and must add up to 1 at most, got {sum}"
            )));
        }
        Ok(())
    }
}

/// New conversations inserted while a client pages through `GET /conversations`, so that export
/// consistency can be tested.
///
/// After every `every`-th `GET /conversations` has been answered, `count` new conversations are
/// inserted. They are newer than every stored one, so they land at offset 0 and push every other
/// conversation `count` places further: a client paging by offset sees items again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConcurrentInserts {
    /// Insert after every this many `GET /conversations` requests (at least 1).
    pub every: u32,
    /// How many conversations each insert adds (at least 1).
    pub count: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid_and_quiet() {
        let config = SandboxConfig::default();
        assert!(config.validate().is_ok());
        assert!(!config.faults.is_enabled());
        assert_eq!(config.seed, 42);
        assert_eq!(config.conversations, 250);
    }

    #[test]
    fn bad_configurations_are_refused() {
        let no_key = SandboxConfig {
            api_keys: vec![],
            ..SandboxConfig::default()
        };
        assert!(no_key.validate().is_err());
        let spaced = SandboxConfig {
            web_keys: vec!["a b".into()],
            ..SandboxConfig::default()
        };
        assert!(spaced.validate().is_err());
        let both = SandboxConfig {
            web_keys: vec!["sk-sandbox".into()],
            ..SandboxConfig::default()
        };
        assert!(both.validate().is_err());
        let too_likely = FaultConfig {
            rate_limited: 0.6,
            unavailable: 0.6,
            ..FaultConfig::default()
        };
        assert!(too_likely.validate().is_err());
        let negative = FaultConfig {
            delayed: -0.1,
            ..FaultConfig::default()
        };
        assert!(negative.validate().is_err());
        for (per_second, burst) in [(0.0, 5), (f64::NAN, 5), (20.0, 0)] {
            let limit = FaultConfig {
                rate_limit: Some(RateLimit { per_second, burst }),
                ..FaultConfig::default()
            };
            assert!(limit.validate().is_err(), "{per_second} {burst}");
        }
        let sane = FaultConfig {
            rate_limit: Some(RateLimit {
                per_second: 20.0,
                burst: 10,
            }),
            ..FaultConfig::default()
        };
        assert!(sane.validate().is_ok());
        let never = SandboxConfig {
            concurrent_inserts: Some(ConcurrentInserts { every: 0, count: 1 }),
            ..SandboxConfig::default()
        };
        assert!(never.validate().is_err());
    }
}
