//! `mcp --http`: the streamable HTTP transport, guarded so that no web page can drive it, as the MCP transport specification asks (servers MUST validate `Origin`, SHOULD authenticate).
//!
//! Every request passes three checks before the MCP service sees it, in this order:
//! - `Origin`, when a browser sent one: a loopback origin or one listed with `--allow-origin`,
//!   otherwise `403` (this stops a page the user visits, including one behind DNS rebinding);
//! - the bearer token: `Authorization: Bearer <token>` on every request, otherwise `401`; the
//!   token is the one given (`--http-token` or [`ENV_MCP_TOKEN`]) or one generated at start and
//!   printed once on stderr, never logged;
//! - `Host`, by rmcp: loopback names only while the server listens on loopback.
//!
//! The server binds 127.0.0.1 unless `--bind` names another address; then, and with
//! `--allow-writes`, running without a token (`--no-http-token`) is refused.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::Server;
use crate::failure::Failure;

/// The environment variable that gives the HTTP transport its bearer token.
pub const ENV_MCP_TOKEN: &str = "INKEEP_ANALYTICS_MCP_TOKEN";

/// The shortest token accepted from the user: shorter ones could be guessed.
const MIN_TOKEN_CHARS: usize = 16;

/// The address the server listens on unless `--bind` says otherwise.
pub const DEFAULT_BIND: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How the HTTP transport is served and guarded, from the command line.
#[derive(Debug)]
pub struct HttpOptions {
    /// The port (0 picks a free one).
    pub port: u16,
    /// The address to listen on.
    pub bind: IpAddr,
    /// The token given by the user; one is generated when `None` unless `no_token`.
    pub token: Option<String>,
    /// Serve without a token (read-only on loopback only).
    pub no_token: bool,
    /// Origins allowed besides the loopback ones, such as `https://app.example.com`.
    pub allowed_origins: Vec<String>,
    /// Whether the tools that write and delete are offered.
    pub allow_writes: bool,
}

/// An origin as browsers send it: scheme, host and port (the scheme's default when absent).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]`, refusing a path, a query or another scheme than http(s).
    fn parse(text: &str) -> Option<Origin> {
        let uri: axum::http::Uri = text.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let path = uri.path_and_query().map_or("", |path| path.as_str());
        if !(path.is_empty() || path == "/") {
            return None;
        }
        let authority = uri.authority()?;
        if authority.as_str().contains('@') {
            return None;
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        Some(Origin {
            scheme,
            host,
            port: authority.port_u16().unwrap_or(default_port),
        })
    }

    fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<IpAddr>()
                .is_ok_and(|address| address.is_loopback())
    }

    /// The form rmcp's own Origin check takes, with the port always explicit.
    fn allowed_entry(&self) -> String {
        if self.host.contains(':') {
            format!("{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            format!("{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// What every request is checked against.
struct Guard {
    /// The SHA-256 of the token: requests are compared by their token's hash, so that how long a
    /// comparison takes says nothing about the token.
    token_hash: Option<[u8; 32]>,
    allowed_origins: Vec<Origin>,
}

impl Guard {
    fn origin_allowed(&self, headers: &HeaderMap) -> Result<(), String> {
        let Some(value) = headers.get(header::ORIGIN) else {
            // Only browsers send `Origin`; a local client without one is judged by its token.
            return Ok(());
        };
        let text = value.to_str().unwrap_or_default();
        match Origin::parse(text) {
            Some(origin) if origin.is_loopback() || self.allowed_origins.contains(&origin) => {
                Ok(())
            }
            _ => Err(format!(
                "Forbidden: requests from the origin {text:?} are not allowed; start the server with --allow-origin {text} to allow it"
            )),
        }
    }

    fn token_accepted(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token_hash else {
            return true;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        given.is_some_and(|token| hash(token) == *expected)
    }

    async fn check(self: Arc<Self>, request: Request, next: Next) -> Response {
        if let Err(message) = self.origin_allowed(request.headers()) {
            return (StatusCode::FORBIDDEN, message).into_response();
        }
        if !self.token_accepted(request.headers()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "Unauthorized: send the server's token as `Authorization: Bearer <token>` (printed when it started, or the one given with --http-token)",
            )
                .into_response();
        }
        next.run(request).await
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A token of 32 random bytes from the operating system, in hex.
fn generate_token() -> Result<String, Failure> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| {
        Failure::Usage(format!(
            "cannot generate a token for the HTTP transport: {error}; give one with --http-token"
        ))
    })?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Checks the options before anything listens: the refusals, the token and the origins.
fn plan(options: &HttpOptions) -> Result<(Option<String>, bool, Vec<Origin>), Failure> {
    let loopback = options.bind.is_loopback();
    if options.no_token && options.token.is_some() {
        return Err(Failure::Usage(
            "--no-http-token cannot be used with a token (--http-token or INKEEP_ANALYTICS_MCP_TOKEN)".into(),
        ));
    }
    if options.no_token && options.allow_writes {
        return Err(Failure::Usage(
            "--allow-writes over HTTP needs a token: drop --no-http-token (a token is generated and printed at start) or give one with --http-token".into(),
        ));
    }
    if options.no_token && !loopback {
        return Err(Failure::Usage(format!(
            "listening on {} (not loopback) needs a token: drop --no-http-token (a token is generated and printed at start) or give one with --http-token",
            options.bind
        )));
    }
    if let Some(token) = &options.token
        && (token.chars().count() < MIN_TOKEN_CHARS || !token.chars().all(|c| c.is_ascii_graphic()))
    {
        return Err(Failure::Usage(format!(
            "the HTTP token must be at least {MIN_TOKEN_CHARS} printable characters without spaces"
        )));
    }
    let mut origins = Vec::new();
    for text in &options.allowed_origins {
        match Origin::parse(text) {
            Some(origin) => origins.push(origin),
            None => {
                return Err(Failure::Usage(format!(
                    "--allow-origin {text:?} is not an origin such as https://app.example.com or http://localhost:3000"
                )));
            }
        }
    }
    let (token, generated) = match (&options.token, options.no_token) {
        (_, true) => (None, false),
        (Some(token), false) => (Some(token.clone()), false),
        (None, false) => (Some(generate_token()?), true),
    };
    Ok((token, generated, origins))
}

/// Serves MCP over streamable HTTP at `/mcp` until Ctrl-C.
pub async fn serve(server: Server, options: HttpOptions) -> Result<(), Failure> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

    let (token, generated, origins) = plan(&options)?;
    let address = SocketAddr::new(options.bind, options.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(Failure::io(format!("listening on {address}")))?;
    let bound = listener
        .local_addr()
        .map_err(Failure::io("reading the bound address"))?;

    // rmcp checks `Origin` too, against the same list, and `Host` while on loopback; off loopback
    // clients name the server by names it cannot know, and the token guards it instead.
    let mut allowed: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .flat_map(|host| [format!("http://{host}:*"), format!("https://{host}:*")])
        .collect();
    allowed.extend(origins.iter().map(Origin::allowed_entry));
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_origins(allowed)
        .enforce_origin_validation();
    if !options.bind.is_loopback() {
        config = config.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let guard = Arc::new(Guard {
        token_hash: token.as_deref().map(hash),
        allowed_origins: origins,
    });
    let router =
        axum::Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn(move |request, next| {
                Arc::clone(&guard).check(request, next)
            }));
    let shown = match bound.ip() {
        IpAddr::V6(ip) => format!("[{ip}]:{}", bound.port()),
        IpAddr::V4(ip) => format!("{ip}:{}", bound.port()),
    };
    let access = match (&token, generated) {
        (Some(token), true) => format!(
            "; every request needs the header `Authorization: Bearer {token}` (a token generated for this run: pass --http-token or set {ENV_MCP_TOKEN} to choose one)"
        ),
        (Some(_), false) => {
            "; every request needs the token given, as `Authorization: Bearer <token>`".into()
        }
        (None, _) => "; without a token: any local program may call it".into(),
    };
    // The one place the token is shown: stderr, once, for the user to copy into the client.
    eprintln!(
        "MCP server listening on http://{shown}/mcp (streamable HTTP){access}; Ctrl-C stops it"
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(Failure::io("serving MCP over HTTP"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> HttpOptions {
        HttpOptions {
            port: 0,
            bind: DEFAULT_BIND,
            token: None,
            no_token: false,
            allowed_origins: Vec::new(),
            allow_writes: false,
        }
    }

    #[test]
    fn origins_parse_as_browsers_send_them() {
        let parsed = Origin::parse("HTTPS://App.Example.com");
        assert_eq!(
            parsed,
            Some(Origin {
                scheme: "https".into(),
                host: "app.example.com".into(),
                port: 443
            })
        );
        assert!(Origin::parse("http://[::1]:3000").is_some_and(|o| o.is_loopback()));
        assert!(Origin::parse("http://127.0.0.1:8080").is_some_and(|o| o.is_loopback()));
        assert!(Origin::parse("http://localhost").is_some_and(|o| o.is_loopback()));
        assert!(Origin::parse("http://evil.example").is_some_and(|o| !o.is_loopback()));
        assert!(Origin::parse("http://localhost.evil.example").is_some_and(|o| !o.is_loopback()));
        for bad in [
            "null",
            "file://",
            "ftp://x",
            "https://a.example/path",
            "x",
            "",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_loopback_and_listed_origins_pass() {
        let guard = Guard {
            token_hash: Some(hash("a-token-of-enough-length")),
            allowed_origins: Origin::parse("https://app.example.com")
                .into_iter()
                .collect(),
        };
        let with = |name: header::HeaderName, value: &str| {
            let mut headers = HeaderMap::new();
            if let Ok(value) = value.parse() {
                headers.insert(name, value);
            }
            headers
        };
        assert!(guard.origin_allowed(&HeaderMap::new()).is_ok());
        assert!(
            guard
                .origin_allowed(&with(header::ORIGIN, "http://localhost:5173"))
                .is_ok()
        );
        assert!(
            guard
                .origin_allowed(&with(header::ORIGIN, "https://app.example.com"))
                .is_ok()
        );
        assert!(
            guard
                .origin_allowed(&with(header::ORIGIN, "https://app.example.com:8443"))
                .is_err()
        );
        assert!(
            guard
                .origin_allowed(&with(header::ORIGIN, "http://evil.example"))
                .is_err()
        );
        assert!(guard.origin_allowed(&with(header::ORIGIN, "null")).is_err());

        assert!(guard.token_accepted(&with(
            header::AUTHORIZATION,
            "Bearer a-token-of-enough-length"
        )));
        assert!(guard.token_accepted(&with(
            header::AUTHORIZATION,
            "bearer a-token-of-enough-length"
        )));
        assert!(!guard.token_accepted(&with(
            header::AUTHORIZATION,
            "Bearer a-token-of-enough-lengtH"
        )));
        assert!(!guard.token_accepted(&with(header::AUTHORIZATION, "a-token-of-enough-length")));
        assert!(!guard.token_accepted(&HeaderMap::new()));
    }

    #[test]
    fn unsafe_plans_are_refused_before_listening() {
        let refused = |options: HttpOptions| match plan(&options) {
            Err(Failure::Usage(message)) => message,
            other => panic!("not refused: {other:?}"),
        };
        assert!(
            refused(HttpOptions {
                no_token: true,
                allow_writes: true,
                ..options()
            })
            .contains("--allow-writes")
        );
        assert!(
            refused(HttpOptions {
                no_token: true,
                bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                ..options()
            })
            .contains("not loopback")
        );
        assert!(
            refused(HttpOptions {
                token: Some("short".into()),
                ..options()
            })
            .contains("at least")
        );
        assert!(
            refused(HttpOptions {
                allowed_origins: vec!["evil".into()],
                ..options()
            })
            .contains("--allow-origin")
        );
        match plan(&options()) {
            Ok((Some(token), true, _)) => assert_eq!(token.len(), 64),
            other => panic!("no token was generated: {other:?}"),
        }
        match plan(&HttpOptions {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            token: Some("a-token-of-enough-length".into()),
            ..options()
        }) {
            Ok((Some(_), false, _)) => {}
            other => panic!("a given token on another address was refused: {other:?}"),
        }
    }
}
