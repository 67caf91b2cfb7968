//! Client configuration: the API key, base URL, timeouts, concurrency and HTTP client, checked before any request is made.
//!
//! [`ClientBuilder`] takes every setting; this module also holds the defaults and limits it starts
//! from, so that a program can show them (in its `--help`, say) or start from them.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::HeaderValue;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::transport::{ClientState, Transport};
pub use crate::transport::{
    DEFAULT_LONG_JOB_RETRY_FOR, DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_ELAPSED,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_RETRIES, KeyKind, MAX_REQUEST_BODY_BYTES, RetryPolicy,
};

/// The API's production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.analytics.inkeep.com";

/// The environment variable [`Client::from_env`] reads the API key from.
pub const ENV_API_KEY: &str = "INKEEP_ANALYTICS_API_KEY";

/// The environment variable [`Client::from_env`] reads an optional base URL from.
pub const ENV_BASE_URL: &str = "INKEEP_ANALYTICS_BASE_URL";

/// How long a whole request (connect, send, read the body) may take by default.
///
/// An export page of 100 conversations is about 1 MB, so this leaves room for slow links.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long establishing a connection may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many redirects the built-in HTTP client follows before it gives up.
///
/// The API does not redirect; a few hops leave room for a proxy in front of it.
pub const MAX_REDIRECTS: usize = 5;

/// How long an idle connection stays open for the next request: long enough to span the pauses
/// of a listing read by a slow caller, short enough for servers and proxies that close idle ones.
pub(crate) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// How often TCP keepalive probes (and HTTP/2 pings) check an idle connection, so that a NAT or
/// load balancer does not drop it silently between two requests.
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);

// `Client`'s constructors live here, next to the settings they check, so that `client` does not
// import this module back.
impl Client {
    /// A builder for every setting.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from `INKEEP_ANALYTICS_API_KEY` and, when set, `INKEEP_ANALYTICS_BASE_URL`.
    pub fn from_env() -> Result<Self> {
        ClientBuilder::new().from_env()?.build()
    }
}

/// Builds a [`Client`]; every setting is checked by [`ClientBuilder::build`], before any request.
///
/// ```
/// use std::time::Duration;
///
/// let client = inkeep_analytics::Client::builder()
///     .api_key("sk-example")
///     .base_url("https://api.analytics.inkeep.com")
///     .timeout(Duration::from_secs(30))
///     .build()?;
/// assert_eq!(client.base_url(), "https://api.analytics.inkeep.com");
/// # Ok::<(), inkeep_analytics::Error>(())
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct ClientBuilder {
    api_key: Option<String>,
    key_kind: Option<KeyKind>,
    base_url: Option<String>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    user_agent: Option<String>,
    http_client: Option<reqwest::Client>,
    allow_insecure_http: bool,
    retry: RetryPolicy,
    max_response_bytes: Option<u64>,
    max_concurrency: Option<usize>,
    root_certificates: Vec<Vec<u8>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("key_kind", &self.key_kind)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("user_agent", &self.user_agent)
            .field(
                "http_client",
                &self.http_client.as_ref().map(|_| "<custom>"),
            )
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("retry", &self.retry)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_concurrency", &self.max_concurrency)
            .field("root_certificates", &self.root_certificates.len())
            .finish()
    }
}

impl ClientBuilder {
    /// Starts with no key and the defaults for everything else.
    pub fn new() -> Self {
        Self::default()
    }

    /// An API integration key, which reads and writes. This or [`ClientBuilder::web_integration_key`] is required.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(api_key.into());
        self.key_kind = Some(KeyKind::ApiIntegration);
        self
    }

    /// A web integration key, which logs conversations, feedback and events, and reads or deletes
    /// a conversation by id. Calls to other operations are refused before any request.
    pub fn web_integration_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self.key_kind = Some(KeyKind::WebIntegration);
        self
    }

    /// The base URL, [`DEFAULT_BASE_URL`] when unset.
    ///
    /// It must be `https://`, or `http://` on a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`)
    /// unless [`ClientBuilder::allow_insecure_http`] is set, and carries no credentials, query or fragment.
    /// A path prefix is kept.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// How long a whole request may take, [`DEFAULT_TIMEOUT`] when unset.
    /// Ignored when [`ClientBuilder::http_client`] is given: configure that client instead.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long connecting may take, [`DEFAULT_CONNECT_TIMEOUT`] when unset.
    /// Ignored when [`ClientBuilder::http_client`] is given: configure that client instead.
    pub fn connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = Some(connect_timeout);
        self
    }

    /// The `User-Agent` header, `inkeep-analytics-rust/<version>` when unset.
    /// Ignored when [`ClientBuilder::http_client`] is given: configure that client instead.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Uses your own `reqwest::Client` (proxies, TLS roots, connection pools) instead of building one.
    ///
    /// Its redirect policy applies instead of this crate's (at most [`MAX_REDIRECTS`], never from
    /// `https` to `http`). Either way `reqwest` drops the `Authorization` header when a redirect
    /// leads to another host, port or scheme.
    ///
    /// The hooks ask for gzip, brotli and zstd and decode the answers themselves, so that a page
    /// fetched ahead waits compressed until the reader nears it. A client that decodes by itself
    /// (`reqwest`'s default with its `gzip`, `brotli` or `zstd` features) still works, but holds
    /// those pages decoded, which on a long link costs memory: build it with `.no_gzip()`,
    /// `.no_brotli()` and `.no_zstd()` to avoid that.
    pub fn http_client(mut self, http_client: reqwest::Client) -> Self {
        self.http_client = Some(http_client);
        self
    }

    /// How many times an idempotent request (a read, a delete, a query, a write that carries an
    /// id) is retried after a transient failure; [`crate::config::DEFAULT_MAX_RETRIES`] when unset, 0 turns
    /// retries off. [`crate::Client::with_max_retries`] changes it for some calls only.
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.retry.max_retries = max_retries;
        self
    }

    /// The whole retry policy: count, backoff and time limit.
    /// [`crate::Client::with_retry_policy`] changes it for some calls only.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The largest JSON response body the client reads, in bytes; [`crate::config::DEFAULT_MAX_RESPONSE_BYTES`]
    /// (256 MiB) when unset. A larger body is refused with [`Error::ResponseTooLarge`], from its
    /// `Content-Length` before reading any of it, or once that many bytes have arrived.
    /// CSV exports are streamed, never held whole, and not limited. Must be at least 1.
    pub fn max_response_bytes(mut self, max_response_bytes: u64) -> Self {
        self.max_response_bytes = Some(max_response_bytes);
        self
    }

    /// The most requests the client keeps in flight at once, over all its clones, listings,
    /// exports and the recorder's writes; [`crate::config::DEFAULT_MAX_CONCURRENCY`] when unset. Must be at least 1.
    ///
    /// The client starts with 8 requests in flight and adds more while
    /// answers come back fast and clean; a 429, a 503 or a timeout halves the number, and a
    /// `Retry-After` holds every request of the client until it has passed. This is the ceiling:
    /// lower it to spare a server or memory (a listing holds at most this many pages ahead of its
    /// reader), raise it for long, fast links.
    pub fn max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = Some(max_concurrency);
        self
    }

    /// Trusts the certificates of this PEM bundle as roots, besides the platform's (a company's
    /// TLS-inspecting proxy, a test server with a self-signed certificate).
    /// Checked by [`ClientBuilder::build`]; ignored when [`ClientBuilder::http_client`] is given.
    pub fn add_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Allows a plain `http://` base URL on a host that is not loopback, which sends the key in clear text.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Reads [`ENV_API_KEY`] and, when set and not empty, [`ENV_BASE_URL`].
    pub fn from_env(self) -> Result<Self, Error> {
        self.apply_env(|name| std::env::var(name).ok())
    }

    /// [`ClientBuilder::from_env`] over any source of variables, so that it can be tested without
    /// touching the process environment.
    fn apply_env(mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let api_key = lookup(ENV_API_KEY).ok_or_else(|| {
            Error::configuration(format!(
                "{ENV_API_KEY} is not set: export it with an Inkeep Analytics API key"
            ))
        })?;
        self.api_key = Some(api_key);
        self.key_kind = Some(KeyKind::ApiIntegration);
        if let Some(base_url) = lookup(ENV_BASE_URL)
            && !base_url.trim().is_empty()
        {
            self.base_url = Some(base_url);
        }
        Ok(self)
    }

    /// Checks every setting and builds the client. Nothing is sent.
    pub fn build(self) -> Result<Client, Error> {
        let authorization = authorization_header(self.api_key.as_deref())?;
        let max_response_bytes = self
            .max_response_bytes
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
        if max_response_bytes == 0 {
            return Err(Error::configuration(
                "max_response_bytes must be at least 1",
            ));
        }
        let max_concurrency = self.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
        if max_concurrency == 0 {
            return Err(Error::configuration("max_concurrency must be at least 1"));
        }
        let api_key = self.api_key.unwrap_or_default();
        let base_url = validate_base_url(
            self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            self.allow_insecure_http,
        )?;
        let http_client = match self.http_client {
            Some(client) => client,
            None => {
                #[cfg(all(feature = "rustls-ring", not(feature = "rustls")))]
                install_ring_provider();
                let mut builder = reqwest::Client::builder()
                    .timeout(self.timeout.unwrap_or(DEFAULT_TIMEOUT))
                    .connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
                    .user_agent(self.user_agent.unwrap_or_else(|| {
                        format!("inkeep-analytics-rust/{}", env!("CARGO_PKG_VERSION"))
                    }))
                    .redirect(redirect_policy())
                    // gzip, brotli and zstd are asked for and decoded by the hooks, not by
                    // `reqwest`, so that a page fetched ahead can wait compressed (see
                    // `transport::compression`).
                    .no_gzip()
                    .no_brotli()
                    .no_zstd()
                    // Connections are kept for the next request; over TLS, ALPN picks HTTP/2 when
                    // the server offers it, and pings keep its one connection alive between pages.
                    .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                    .tcp_keepalive(KEEPALIVE_INTERVAL)
                    .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
                    .http2_keep_alive_timeout(DEFAULT_CONNECT_TIMEOUT)
                    .http2_adaptive_window(true);
                if !self.root_certificates.is_empty() {
                    builder = trust_roots(builder, &self.root_certificates)?;
                }
                builder.build().map_err(|source| {
                    Error::configuration_with_source("cannot build the HTTP client", source)
                })?
            }
        };
        let state = ClientState::new(
            authorization,
            &api_key,
            self.key_kind.unwrap_or(KeyKind::ApiIntegration),
            self.retry,
            max_response_bytes,
            max_concurrency,
        );
        Ok(Client::from_transport(Transport::new(
            &base_url,
            http_client,
            state,
        )))
    }
}

/// Trusts the roots of these PEM bundles besides the platform's.
#[cfg(any(feature = "rustls", feature = "rustls-ring", feature = "native-tls"))]
fn trust_roots(
    builder: reqwest::ClientBuilder,
    pems: &[Vec<u8>],
) -> Result<reqwest::ClientBuilder, Error> {
    let mut roots = Vec::new();
    for pem in pems {
        let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|source| {
            Error::configuration_with_source("a root certificate is not PEM", source)
        })?;
        if certificates.is_empty() {
            return Err(Error::configuration(
                "a root certificate bundle holds no certificate",
            ));
        }
        roots.extend(certificates);
    }
    Ok(builder.tls_certs_merge(roots))
}

/// A build without a TLS feature (a crate that only uses the types, such as the sandbox) speaks
/// plain HTTP only, so it has nothing to trust roots with.
#[cfg(not(any(feature = "rustls", feature = "rustls-ring", feature = "native-tls")))]
fn trust_roots(
    _builder: reqwest::ClientBuilder,
    _pems: &[Vec<u8>],
) -> Result<reqwest::ClientBuilder, Error> {
    Err(Error::configuration(
        "root certificates need TLS: enable the `rustls`, `rustls-ring` or `native-tls` feature",
    ))
}

/// Makes ring the process's rustls crypto provider unless the program installed one already:
/// `reqwest` built without a provider of its own takes the process's.
#[cfg(all(feature = "rustls-ring", not(feature = "rustls")))]
fn install_ring_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one at the same time; either provider then serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Follows at most [`MAX_REDIRECTS`] redirects, and none from `https` to `http`, which would send
/// the request (and its body) in clear text. `reqwest` itself drops `Authorization` when the host,
/// port or scheme changes, so the key never reaches the host a redirect points to.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if attempt.url().scheme() == "http"
            && attempt
                .previous()
                .iter()
                .any(|previous| previous.scheme() == "https")
        {
            attempt.error("refusing to follow a redirect from https to plain http")
        } else {
            attempt.follow()
        }
    })
}

fn authorization_header(api_key: Option<&str>) -> Result<HeaderValue, Error> {
    let Some(api_key) = api_key else {
        return Err(Error::configuration(format!(
            "no API key: call ClientBuilder::api_key or set {ENV_API_KEY}"
        )));
    };
    if api_key.trim().is_empty() {
        return Err(Error::configuration("the API key is empty"));
    }
    if api_key.trim() != api_key {
        return Err(Error::configuration(
            "the API key has leading or trailing white space",
        ));
    }
    // The error deliberately says nothing about the key's content.
    let mut value = HeaderValue::from_str(&format!("Bearer {api_key}")).map_err(|_| {
        Error::configuration("the API key has characters that cannot be sent in a header")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Checks a base URL and returns it without a trailing slash, ready for progenitor's path joining.
pub(crate) fn validate_base_url(
    base_url: &str,
    allow_insecure_http: bool,
) -> Result<String, Error> {
    let url = Url::parse(base_url.trim()).map_err(|error| {
        Error::configuration(format!("the base URL {base_url:?} is not a URL: {error}"))
    })?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(Error::configuration(format!(
                "the base URL {base_url:?} uses plain http on a host that is not loopback; use https, \
                 or allow it explicitly with ClientBuilder::allow_insecure_http"
            )));
        }
        scheme => {
            return Err(Error::configuration(format!(
                "the base URL {base_url:?} has scheme {scheme:?}; only http and https are supported"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo the URL here: it holds credentials.
        return Err(Error::configuration(
            "the base URL carries credentials; pass the API key with ClientBuilder::api_key instead",
        ));
    }
    if url.fragment().is_some() {
        return Err(Error::configuration(format!(
            "the base URL {base_url:?} has a fragment"
        )));
    }
    if url.query().is_some() {
        return Err(Error::configuration(format!(
            "the base URL {base_url:?} has a query string"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::configuration(format!(
            "the base URL {base_url:?} has no host"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            validate_base_url("https://api.analytics.inkeep.com/", false)
                .ok()
                .as_deref(),
            Some("https://api.analytics.inkeep.com")
        );
        assert_eq!(
            validate_base_url("http://127.0.0.1:8080/prefix/", false)
                .ok()
                .as_deref(),
            Some("http://127.0.0.1:8080/prefix")
        );
        assert!(validate_base_url("http://[::1]:9/", false).is_ok());
        assert!(validate_base_url("http://localhost:9", false).is_ok());
        for bad in [
            "ftp://example.com",
            "http://example.com",
            "https://user:pw@example.com",
            "https://example.com/#frag",
            "https://example.com/?q=1",
            "not a url",
            "",
        ] {
            assert!(validate_base_url(bad, false).is_err(), "{bad} was accepted");
        }
        assert!(validate_base_url("http://example.com", true).is_ok());
    }

    #[test]
    fn credentials_are_not_echoed() {
        let error = validate_base_url("https://user:hunter2@example.com", false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn the_environment_gives_the_key_and_base_url() {
        let vars = |key: &'static str, url: &'static str| {
            move |name: &str| match name {
                ENV_API_KEY => Some(key.to_string()),
                ENV_BASE_URL => Some(url.to_string()),
                _ => None,
            }
        };
        let client = ClientBuilder::new()
            .apply_env(vars("sk-env", "http://127.0.0.1:4010/"))
            .and_then(ClientBuilder::build);
        assert_eq!(
            client.ok().as_ref().map(Client::base_url),
            Some("http://127.0.0.1:4010")
        );

        let client = ClientBuilder::new()
            .apply_env(vars("sk-env", " "))
            .and_then(ClientBuilder::build);
        assert_eq!(
            client.ok().as_ref().map(Client::base_url),
            Some(DEFAULT_BASE_URL)
        );

        let missing = ClientBuilder::new()
            .apply_env(|_| None)
            .err()
            .map(|e| e.to_string());
        assert!(missing.is_some_and(|message| message.contains(ENV_API_KEY)));

        let bad_url = ClientBuilder::new()
            .apply_env(vars("sk-env", "ftp://example.com"))
            .and_then(ClientBuilder::build);
        assert!(matches!(bad_url, Err(Error::Configuration { .. })));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let builder = ClientBuilder::new().api_key("sk-very-secret");
        assert!(!format!("{builder:?}").contains("sk-very-secret"));
        let client = builder.build();
        assert!(
            client
                .as_ref()
                .is_ok_and(|c| !format!("{c:?}").contains("sk-very-secret"))
        );
    }

    #[test]
    fn keys_are_checked() {
        assert!(authorization_header(None).is_err());
        assert!(authorization_header(Some("  ")).is_err());
        assert!(authorization_header(Some(" key")).is_err());
        assert!(authorization_header(Some("bad\nkey")).is_err());
        let value = authorization_header(Some("sk-secret")).ok();
        assert!(value.as_ref().is_some_and(HeaderValue::is_sensitive));
        assert!(!format!("{value:?}").contains("sk-secret"));
    }
}
