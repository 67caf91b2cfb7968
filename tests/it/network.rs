//! The client on a network like the internet's: compressed answers, the adaptive window of requests in flight, and HTTP/2 over TLS.
//!
//! httpmock cannot count the requests it serves at once nor stream a body it makes as it goes, so
//! these tests run a small HTTP/1.1 server of their own on 127.0.0.1, which stops with the test's runtime.

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use inkeep_analytics::{Client, Error, config::RetryPolicy};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::support::{TEST_KEY, conversation_page, openai_conversation};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A request as the server read it.
#[derive(Clone, Debug)]
struct Request {
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// A query parameter of the target, as a number.
    fn number(&self, name: &str) -> Option<u64> {
        let query = self.target.split_once('?')?.1;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .and_then(|(_, value)| value.parse().ok())
    }
}

/// What the server answers.
enum Body {
    /// Sent whole, with `Content-Length`.
    Full(Vec<u8>),
    /// Sent chunked, each chunk made when the one before has gone; `None` ends it.
    Made(Box<dyn FnMut() -> Option<Vec<u8>> + Send>),
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

impl Reply {
    fn json(body: &serde_json::Value) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: Body::Full(serde_json::to_vec(body).unwrap_or_default()),
        }
    }

    fn status(status: u16, retry_after: Option<&str>) -> Self {
        let mut headers = vec![("content-type", "application/json".into())];
        if let Some(after) = retry_after {
            headers.push(("retry-after", after.into()));
        }
        Self {
            status,
            headers,
            body: Body::Full(br#"{"title":"slow down"}"#.to_vec()),
        }
    }
}

/// One request's arrival: when, what, and how many requests the server held at that moment (itself included).
#[derive(Clone, Debug)]
struct Arrival {
    at: Instant,
    request: Request,
    in_flight: usize,
}

#[derive(Default)]
struct Stats {
    current: AtomicUsize,
    peak: AtomicUsize,
    arrivals: Mutex<Vec<Arrival>>,
}

impl Stats {
    fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals
            .lock()
            .map(|arrivals| arrivals.clone())
            .unwrap_or_default()
    }
}

type Handler = dyn Fn(usize, &Request) -> Reply + Send + Sync;

/// Serves `handler` on 127.0.0.1, holding each request `delay` before answering.
async fn serve(delay: Duration, handler: Arc<Handler>) -> std::io::Result<(String, Arc<Stats>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let stats = Arc::new(Stats::default());
    let counter = Arc::new(AtomicUsize::new(0));
    let shared = Arc::clone(&stats);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let stats = Arc::clone(&shared);
            let handler = Arc::clone(&handler);
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                while let Some(request) = read_request(&mut read).await {
                    let in_flight = stats.current.fetch_add(1, Ordering::SeqCst) + 1;
                    stats.peak.fetch_max(in_flight, Ordering::SeqCst);
                    if let Ok(mut arrivals) = stats.arrivals.lock() {
                        arrivals.push(Arrival {
                            at: Instant::now(),
                            request: request.clone(),
                            in_flight,
                        });
                    }
                    tokio::time::sleep(delay).await;
                    let index = counter.fetch_add(1, Ordering::SeqCst);
                    let reply = handler(index, &request);
                    let sent = write_reply(&mut write, reply).await;
                    stats.current.fetch_sub(1, Ordering::SeqCst);
                    if sent.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok((base_url, stats))
}

async fn read_request(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Request> {
    let mut line = String::new();
    if read.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let target = line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((key, value)) = trimmed.split_once(':') {
            headers.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    let request = Request { target, headers };
    let length: usize = request
        .header("content-length")
        .and_then(|length| length.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    read.read_exact(&mut body).await.ok()?;
    Some(request)
}

async fn write_reply(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    reply: Reply,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match reply.body {
        Body::Full(body) => {
            head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
            write.write_all(head.as_bytes()).await?;
            write.write_all(&body).await?;
        }
        Body::Made(mut next) => {
            head.push_str("transfer-encoding: chunked\r\n\r\n");
            write.write_all(head.as_bytes()).await?;
            while let Some(chunk) = next() {
                if chunk.is_empty() {
                    continue;
                }
                write
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                write.write_all(&chunk).await?;
                write.write_all(b"\r\n").await?;
            }
            write.write_all(b"0\r\n\r\n").await?;
        }
    }
    write.flush().await
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

fn client(
    base_url: &str,
    configure: impl FnOnce(inkeep_analytics::ClientBuilder) -> inkeep_analytics::ClientBuilder,
) -> Client {
    match configure(Client::builder().api_key(TEST_KEY).base_url(base_url)).build() {
        Ok(client) => client,
        Err(error) => panic!("cannot build a test client: {error}"),
    }
}

/// The ids of a listing of `total` conversations, in order.
fn ids(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|n| format!("conv_{n:06}")).collect()
}

/// A listing of `total` conversations, pages cut by the request's `limit` and `offset`.
fn page_for(request: &Request, total: u64) -> serde_json::Value {
    let limit = request.number("limit").unwrap_or(20);
    let offset = request.number("offset").unwrap_or(0);
    let end = (offset + limit).min(total);
    conversation_page(&ids(offset.min(end)..end), total as usize)
}

// ---------------------------------------------------------------------------------------------
// Compression
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn compressed_pages_decode_and_raw_records_are_the_decompressed_bytes() -> TestResult {
    let total = 250;
    let (base_url, stats) = serve(
        Duration::ZERO,
        Arc::new(move |_, request: &Request| {
            let page = serde_json::to_vec(&page_for(request, total)).unwrap_or_default();
            let asks = request.header("accept-encoding").unwrap_or_default();
            let mut reply = Reply::json(&serde_json::Value::Null);
            reply.body = if asks.contains("gzip") {
                reply.headers.push(("content-encoding", "gzip".into()));
                Body::Full(gzip(&page))
            } else {
                Body::Full(page)
            };
            reply
        }),
    )
    .await?;
    let client = client(&base_url, |builder| builder);

    let items: Vec<_> = client.list_conversations().items().try_collect().await?;
    let got: Vec<_> = items
        .iter()
        .filter_map(|c| c.id().map(str::to_string))
        .collect();
    assert_eq!(got, ids(0..total));

    let pages: Vec<_> = client
        .list_conversations()
        .raw_pages()
        .try_collect()
        .await?;
    let exported: String = pages
        .iter()
        .flat_map(|page| page.conversations.iter().map(|record| record.get()))
        .collect();
    let sent: String = ids(0..total)
        .iter()
        .map(|id| serde_json::to_string(&openai_conversation(id)).unwrap_or_default())
        .collect();
    assert!(
        exported == sent,
        "the raw records differ from the bytes the server compressed"
    );

    let arrivals = stats.arrivals();
    assert!(!arrivals.is_empty());
    for arrival in &arrivals {
        let asks = arrival
            .request
            .header("accept-encoding")
            .unwrap_or_default();
        for encoding in ["gzip", "br", "zstd"] {
            assert!(
                asks.contains(encoding),
                "{encoding} not asked for: {asks:?}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_compressed_csv_export_streams_the_exact_decompressed_bytes() -> TestResult {
    let mut csv = b"id,eventType,createdAt\r\n".to_vec();
    for n in 0..20_000 {
        csv.extend_from_slice(
            format!("evt_{n:05},message_copied,2025-03-01T12:00:00.000Z\r\n").as_bytes(),
        );
    }
    let compressed = gzip(&csv);
    assert!(compressed.len() * 5 < csv.len(), "the body should compress");
    let (base_url, _) = serve(
        Duration::ZERO,
        Arc::new(move |_, _: &Request| Reply {
            status: 200,
            headers: vec![
                ("content-type", "text/csv".into()),
                ("content-encoding", "gzip".into()),
            ],
            body: Body::Full(compressed.clone()),
        }),
    )
    .await?;
    let export = client(&base_url, |builder| builder)
        .export_events_query_results(inkeep_analytics::query::events())
        .await?;
    let chunks: Vec<_> = export.try_collect().await?;
    let bytes = chunks.concat();
    assert_eq!(bytes.len(), csv.len());
    assert!(
        bytes == csv,
        "the exported bytes differ from the decompressed body"
    );
    Ok(())
}

#[tokio::test]
async fn a_compression_bomb_is_refused_once_its_expansion_passes_the_limit() -> TestResult {
    const LIMIT: u64 = 1 << 20;
    /// A gzip of 4 GiB of zeros if it were sent whole; the server makes it as it sends it.
    const EXPANDED: usize = 4 << 30;
    let sent_compressed = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&sent_compressed);
    let (base_url, _) = serve(
        Duration::ZERO,
        Arc::new(move |_, _: &Request| {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let zeros = vec![0u8; 256 * 1024];
            let mut expanded = 0usize;
            let counted = Arc::clone(&counted);
            Reply {
                status: 200,
                headers: vec![
                    ("content-type", "application/json".into()),
                    ("content-encoding", "gzip".into()),
                ],
                body: Body::Made(Box::new(move || {
                    if expanded >= EXPANDED {
                        return None;
                    }
                    let _ = encoder.write_all(&zeros);
                    let _ = encoder.flush();
                    expanded += zeros.len();
                    let chunk = std::mem::take(encoder.get_mut());
                    counted.fetch_add(chunk.len(), Ordering::SeqCst);
                    Some(chunk)
                })),
            }
        }),
    )
    .await?;
    let client = client(&base_url, |builder| {
        builder.max_response_bytes(LIMIT).max_retries(0)
    });

    let result = client.list_conversations().send().await;
    assert!(
        matches!(result, Err(Error::ResponseTooLarge { limit, .. }) if limit == LIMIT),
        "{result:?}"
    );
    // That the client gave up early is counted in bytes, not in time, which a loaded machine
    // stretches: the whole bomb is about 16 MB compressed; the server stops making it when the client has
    // hung up, having filled little more than the sockets' buffers.
    let sent = sent_compressed.load(Ordering::SeqCst);
    assert!(
        sent < 4 << 20,
        "{sent} compressed bytes were made before the client gave up"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Adaptive concurrency
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_grows_on_a_healthy_server_and_never_passes_the_ceiling() -> TestResult {
    let total = 3_000;
    // A long link (answers slower than 25 ms): the window, not `prefetch`, decides.
    let (base_url, stats) = serve(
        Duration::from_millis(40),
        Arc::new(move |_, request: &Request| Reply::json(&page_for(request, total))),
    )
    .await?;
    let client = client(&base_url, |builder| {
        builder.max_concurrency(6).max_retries(0)
    });

    let items: Vec<_> = client.list_conversations().items().try_collect().await?;
    let got: Vec<_> = items
        .iter()
        .filter_map(|c| c.id().map(str::to_string))
        .collect();
    assert_eq!(
        got,
        ids(0..total),
        "items out of order, missing or repeated"
    );

    let peak = stats.peak.load(Ordering::SeqCst);
    assert!(
        peak >= 5,
        "the window did not grow: at most {peak} in flight"
    );
    assert!(
        peak <= 6,
        "{peak} requests in flight, past the ceiling of 6"
    );
    let arrivals = stats.arrivals();
    assert_eq!(
        arrivals.len(),
        30,
        "one request a page, none past the total"
    );
    assert!(
        arrivals
            .iter()
            .all(|a| a.request.number("offset") < Some(total))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_short_link_a_listing_requests_no_more_than_prefetch_pages_ahead() -> TestResult {
    let total = 2_000;
    // Rendered before the server starts, as a production server's pages are served: rendering
    // one in a debug build takes long enough for the link to look long.
    let rendered: std::collections::HashMap<u64, Vec<u8>> = (0..total)
        .step_by(100)
        .map(|offset| {
            let page = conversation_page(&ids(offset..offset + 100), total as usize);
            (offset, serde_json::to_vec(&page).unwrap_or_default())
        })
        .collect();
    let (base_url, stats) = serve(
        Duration::ZERO,
        Arc::new(move |_, request: &Request| {
            let offset = request.number("offset").unwrap_or(0);
            match rendered.get(&offset) {
                Some(body) if request.number("limit") == Some(100) => Reply {
                    status: 200,
                    headers: vec![("content-type", "application/json".into())],
                    body: Body::Full(body.clone()),
                },
                _ => Reply::json(&page_for(request, total)),
            }
        }),
    )
    .await?;
    let client = client(&base_url, |builder| builder.max_retries(0));
    let mut items = client.list_conversations().prefetch(2).items();
    let mut got = Vec::new();
    while let Some(item) = items.try_next().await? {
        got.extend(item.id().map(str::to_string));
        // A slow reader: pages pile up ahead of it unless the stream stops requesting them.
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    assert_eq!(got, ids(0..total));
    let peak = stats.peak.load(Ordering::SeqCst);
    assert!(
        peak <= 2,
        "{peak} requests in flight on a short link with prefetch 2: pages would pile up in memory"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_halves_the_window_and_its_retry_after_holds_every_request() -> TestResult {
    let total = 1_200;
    let refused_at = Arc::new(Mutex::new(None::<Instant>));
    let refusal = Arc::clone(&refused_at);
    let (base_url, stats) = serve(
        Duration::from_millis(20),
        Arc::new(move |index, request: &Request| {
            if index == 40 {
                if let Ok(mut at) = refusal.lock() {
                    *at = Some(Instant::now());
                }
                return Reply::status(429, Some("1"));
            }
            Reply::json(&page_for(request, total))
        }),
    )
    .await?;
    let client = client(&base_url, |builder| {
        builder.max_concurrency(8).retry_policy(RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(10),
            ..RetryPolicy::default()
        })
    });

    // Small pages decode quickly, so that a request the client started just before the 429
    // reached it is not held up for long behind other pages' decoding on the runtime's threads.
    let items: Vec<_> = client
        .list_conversations()
        .limit(20)
        .items()
        .try_collect()
        .await?;
    let got: Vec<_> = items
        .iter()
        .filter_map(|c| c.id().map(str::to_string))
        .collect();
    assert_eq!(
        got,
        ids(0..total),
        "items out of order, missing or repeated"
    );

    let Some(refused) = refused_at.lock().ok().and_then(|at| *at) else {
        panic!("the server never refused");
    };
    let arrivals = stats.arrivals();
    let (before, after): (Vec<_>, Vec<_>) = arrivals.iter().partition(|a| a.at <= refused);
    // Requests the client had started before the 429 reached it may land just after it.
    let held: Vec<_> = after
        .iter()
        .filter(|a| a.at > refused + Duration::from_millis(100))
        .collect();
    let first = held.first().map(|a| a.at.duration_since(refused));
    assert!(
        first.is_some_and(|wait| wait >= Duration::from_millis(950)),
        "a request was sent {first:?} after a 429 with Retry-After: 1"
    );
    let peak_before = before.iter().map(|a| a.in_flight).max().unwrap_or(0);
    assert!(
        peak_before >= 5,
        "the window did not grow before the 429: {peak_before}"
    );
    // The window (at most the ceiling of 8) was halved: the requests that resume together are at
    // most 4, fewer than were in flight before.
    let peak_resumed = held.iter().take(4).map(|a| a.in_flight).max().unwrap_or(0);
    assert!(
        peak_resumed <= 4 && peak_resumed < peak_before,
        "{peak_resumed} in flight after the 429, {peak_before} before"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_under_429_and_503_faults_is_complete_and_in_order() -> TestResult {
    let total = 4_000;
    let (base_url, stats) = serve(
        Duration::from_millis(5),
        Arc::new(move |index, request: &Request| match index % 7 {
            3 => Reply::status(503, None),
            5 => Reply::status(429, Some("0")),
            _ => Reply::json(&page_for(request, total)),
        }),
    )
    .await?;
    let client = client(&base_url, |builder| {
        builder.max_concurrency(8).retry_policy(RetryPolicy {
            max_retries: 6,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            ..RetryPolicy::default()
        })
    });

    let items: Vec<_> = client.list_conversations().items().try_collect().await?;
    let got: Vec<_> = items
        .iter()
        .filter_map(|c| c.id().map(str::to_string))
        .collect();
    assert_eq!(got.len(), total as usize);
    assert_eq!(
        got,
        ids(0..total),
        "items out of order, missing or repeated"
    );
    let arrivals = stats.arrivals();
    let offsets: HashSet<_> = arrivals
        .iter()
        .filter_map(|a| a.request.number("offset"))
        .collect();
    assert!(
        offsets.iter().all(|offset| *offset < total),
        "fetched past the total"
    );
    assert!(stats.peak.load(Ordering::SeqCst) <= 8);
    Ok(())
}

/// A rate limiter that states its rate (`RateLimit-Policy`) is never pushed into refusing: the
/// client paces the listing's requests to it after the first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stated_rate_paces_the_client_so_the_limiter_never_refuses() -> TestResult {
    use inkeep_analytics_sandbox::{FaultConfig, RateLimit, Sandbox, SandboxConfig};
    let limit = RateLimit {
        per_second: 40.0,
        burst: 10,
    };
    let sandbox = Sandbox::start_with(SandboxConfig {
        conversations: 1_200,
        faults: FaultConfig {
            rate_limit: Some(limit),
            states_rate_limit: true,
            ..FaultConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await?;
    let client = Client::builder()
        .api_key(sandbox.api_key())
        .base_url(sandbox.base_url())
        .build()?;
    let started = Instant::now();
    let items: Vec<_> = client.list_conversations().items().try_collect().await?;
    let elapsed = started.elapsed();
    assert_eq!(items.len(), 1_200);
    assert_eq!(
        sandbox.requests_rate_limited(),
        0,
        "the client outran the rate it was told"
    );
    // Twelve pages at 40 a second: past the first answer, the pace set the time, not the burst.
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 over TLS
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_speaks_http2_over_tls_on_one_kept_connection() -> TestResult {
    use tokio_rustls::rustls;

    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();

    let total = 250;
    let connections = Arc::new(AtomicUsize::new(0));
    let protocols = Arc::new(Mutex::new(Vec::<Option<Vec<u8>>>::new()));
    let versions = Arc::new(Mutex::new(Vec::<hyper::Version>::new()));
    let (accepted, negotiated, seen) = (
        Arc::clone(&connections),
        Arc::clone(&protocols),
        Arc::clone(&versions),
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let Ok(tls) = acceptor.accept(stream).await else {
                continue;
            };
            if let Ok(mut protocols) = negotiated.lock() {
                protocols.push(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
            }
            let seen = Arc::clone(&seen);
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    if let Ok(mut versions) = seen.lock() {
                        versions.push(request.version());
                    }
                    let target = Request {
                        target: request.uri().to_string(),
                        headers: Vec::new(),
                    };
                    let body = serde_json::to_vec(&page_for(&target, total)).unwrap_or_default();
                    async move {
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    }
                },
            );
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service),
            );
        }
    });

    let client = client(&format!("https://localhost:{port}"), |builder| {
        builder
            .add_root_certificates_pem(certified.cert.pem())
            .max_retries(0)
    });
    let items: Vec<_> = client.list_conversations().items().try_collect().await?;
    let got: Vec<_> = items
        .iter()
        .filter_map(|c| c.id().map(str::to_string))
        .collect();
    assert_eq!(got, ids(0..total));

    let protocols = protocols.lock().map(|p| p.clone()).unwrap_or_default();
    assert_eq!(
        protocols,
        vec![Some(b"h2".to_vec())],
        "ALPN did not pick HTTP/2"
    );
    let versions = versions.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(versions.len(), 3, "one request a page");
    assert!(
        versions.iter().all(|v| *v == hyper::Version::HTTP_2),
        "{versions:?}"
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "pages in flight share one connection"
    );
    Ok(())
}
