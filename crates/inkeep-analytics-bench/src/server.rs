//! The benchmark's page server on loopback, built to answer like a production server: pre-rendered
//! pages with `Content-Length`, keep-alive, `TCP_NODELAY`, a thread per core, and (in the WAN
//! profile) each page compressed once in the encodings a client asks for, as an API gateway does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;

use crate::data::PAGE_SIZE;

/// The key every contender sends.
pub const API_KEY: &str = "bench-key";

/// The pages the server hands out, page `i` for `offset = 100·i`; the last page of each is empty.
#[derive(Debug, Default)]
pub struct Pages {
    /// `GET /conversations` pages.
    pub conversations: Vec<Bytes>,
    /// `GET /feedback` pages.
    pub feedback: Vec<Bytes>,
}

/// A content coding the server can answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Encoding {
    /// The page as rendered.
    Identity,
    /// `gzip`, level 6 (zlib's default, and what most servers use on the fly).
    Gzip,
    /// `br`, quality 5 (what CDNs use on the fly; 11 is for static files).
    Brotli,
    /// `zstd`, level 3 (zstd's default).
    Zstd,
}

impl Encoding {
    /// The token of `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
        }
    }

    const COMPRESSED: [Encoding; 3] = [Encoding::Gzip, Encoding::Brotli, Encoding::Zstd];

    /// Compresses `bytes`; compressing into memory only fails on a bug of the encoder.
    pub fn compress(self, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        use std::io::Write;
        match self {
            Encoding::Identity => Ok(bytes.to_vec()),
            Encoding::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                encoder.write_all(bytes)?;
                encoder.finish()
            }
            Encoding::Brotli => {
                let mut out = Vec::new();
                {
                    let mut encoder = brotli::CompressorWriter::new(&mut out, 64 * 1024, 5, 22);
                    encoder.write_all(bytes)?;
                    encoder.flush()?;
                }
                Ok(out)
            }
            Encoding::Zstd => zstd::bulk::compress(bytes, 3),
        }
    }
}

/// One page in every encoding the server offers.
#[derive(Debug)]
struct Variants(Vec<(Encoding, Bytes)>);

impl Variants {
    fn identity(page: Bytes) -> Self {
        Variants(vec![(Encoding::Identity, page)])
    }

    /// The smallest variant among those the client accepts; identity when it accepts none.
    fn negotiate(&self, accept: &[Encoding]) -> (Encoding, &Bytes) {
        let mut best = None::<(Encoding, &Bytes)>;
        for (encoding, bytes) in &self.0 {
            let acceptable = *encoding == Encoding::Identity || accept.contains(encoding);
            if acceptable && best.is_none_or(|(_, current)| bytes.len() < current.len()) {
                best = Some((*encoding, bytes));
            }
        }
        match best {
            Some(found) => found,
            // Identity is always the first variant; an empty list is never built.
            None => (Encoding::Identity, &EMPTY),
        }
    }
}

static EMPTY: Bytes = Bytes::from_static(b"");

/// The codings named in an `Accept-Encoding` header with a non-zero quality.
pub fn accepted(header: Option<&HeaderValue>) -> Vec<Encoding> {
    let Some(text) = header.and_then(|value| value.to_str().ok()) else {
        return Vec::new();
    };
    text.split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let token = parts.next()?.trim().to_ascii_lowercase();
            let refused = parts.any(|parameter| {
                parameter
                    .trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f64>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if refused {
                return None;
            }
            Encoding::COMPRESSED
                .into_iter()
                .find(|encoding| encoding.token() == token)
        })
        .collect()
}

#[derive(Debug)]
struct Served {
    conversations: Vec<Variants>,
    feedback: Vec<Variants>,
    /// Whether answers carry `Vary: Accept-Encoding`.
    compressing: bool,
}

#[derive(Deserialize)]
struct Paging {
    limit: Option<usize>,
    offset: Option<usize>,
}

/// How to serve.
#[derive(Clone, Copy, Debug)]
pub struct ServerOptions {
    /// Compress every page once in gzip, brotli and zstd, and answer with the smallest the client
    /// accepts.
    pub compress: bool,
    /// Worker threads; a production server uses every core it has.
    pub threads: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            compress: false,
            threads: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

/// A running server; it stops when dropped.
pub struct PageServer {
    address: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    /// Total bytes of the conversation pages in each encoding.
    sizes: BTreeMap<Encoding, usize>,
}

impl PageServer {
    /// Serves `pages` uncompressed on an ephemeral port of 127.0.0.1.
    pub fn start(pages: Pages) -> std::io::Result<Self> {
        Self::start_with(pages, ServerOptions::default())
    }

    /// Serves `pages` on an ephemeral port of 127.0.0.1, compressing them first when asked.
    pub fn start_with(pages: Pages, options: ServerOptions) -> std::io::Result<Self> {
        let build = |pages: Vec<Bytes>| -> std::io::Result<Vec<Variants>> {
            if options.compress {
                compress_all(pages)
            } else {
                Ok(pages.into_iter().map(Variants::identity).collect())
            }
        };
        let served = Served {
            conversations: build(pages.conversations)?,
            feedback: build(pages.feedback)?,
            compressing: options.compress,
        };
        let mut sizes = BTreeMap::new();
        for page in &served.conversations {
            for (encoding, bytes) in &page.0 {
                *sizes.entry(*encoding).or_insert(0) += bytes.len();
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads.max(1))
            .thread_name("bench-server")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let address = listener.local_addr()?;
        let app = Router::new()
            .route("/conversations", get(conversations))
            .route("/feedback", get(feedback))
            .with_state(Arc::new(served));
        runtime.spawn(async move {
            use axum::serve::ListenerExt;
            // Production servers turn Nagle's algorithm off, so that the last segment of an
            // answer never waits for the client's delayed acknowledgement.
            let listener = listener.tap_io(|stream| {
                let _ = stream.set_nodelay(true);
            });
            // A server error ends the benchmark's requests, which then report it.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            runtime: Some(runtime),
            sizes,
        })
    }

    /// The base URL to give contenders.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Total bytes of the conversation pages in each encoding served (identity always).
    pub fn conversation_sizes(&self) -> &BTreeMap<Encoding, usize> {
        &self.sizes
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Compresses every page in every encoding, on every core.
fn compress_all(pages: Vec<Bytes>) -> std::io::Result<Vec<Variants>> {
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let chunk = pages.len().div_ceil(threads).max(1);
    let results: Vec<std::io::Result<Vec<Variants>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = pages
            .chunks(chunk)
            .map(|pages| {
                scope.spawn(move || {
                    pages
                        .iter()
                        .map(|page| {
                            let mut variants = vec![(Encoding::Identity, page.clone())];
                            for encoding in Encoding::COMPRESSED {
                                variants.push((encoding, Bytes::from(encoding.compress(page)?)));
                            }
                            Ok(Variants(variants))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a compressing thread panicked")))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(pages.len());
    for result in results {
        all.extend(result?);
    }
    Ok(all)
}

fn page(served: &Served, pages: &[Variants], headers: &HeaderMap, paging: &Paging) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == format!("Bearer {API_KEY}"));
    if !authorized {
        return (StatusCode::UNAUTHORIZED, "unauthorized").into_response();
    }
    let limit = paging.limit.unwrap_or(PAGE_SIZE);
    let offset = paging.offset.unwrap_or(0);
    if limit != PAGE_SIZE || !offset.is_multiple_of(PAGE_SIZE) {
        return (
            StatusCode::BAD_REQUEST,
            "the benchmark server serves pages of 100 at multiples of 100",
        )
            .into_response();
    }
    let index = (offset / PAGE_SIZE).min(pages.len().saturating_sub(1));
    let Some(variants) = pages.get(index) else {
        return (StatusCode::NOT_FOUND, "no pages").into_response();
    };
    let (encoding, body) = variants.negotiate(&accepted(headers.get(header::ACCEPT_ENCODING)));
    let mut response = body.clone().into_response();
    let answer = response.headers_mut();
    answer.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answer.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if encoding != Encoding::Identity {
        answer.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(encoding.token()),
        );
    }
    if served.compressing {
        answer.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

async fn conversations(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    Query(paging): Query<Paging>,
) -> Response {
    page(&served, &served.conversations, &headers, &paging)
}

async fn feedback(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    Query(paging): Query<Paging>,
) -> Response {
    page(&served, &served.feedback, &headers, &paging)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data;
    use futures::TryStreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_sdk_reads_every_record_once_and_a_wrong_key_is_refused() {
        let records = data::conversations(9, 250);
        let server = PageServer::start(Pages {
            conversations: data::conversation_pages(&records),
            feedback: data::feedback_pages(&[], &[]),
        })
        .expect("the server starts on 127.0.0.1");
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let client = |key: &str| {
            inkeep_analytics::Client::builder()
                .api_key(key)
                .base_url(server.base_url())
                .max_retries(0)
                .build()
                .expect("a client")
        };
        let ids: Vec<String> = runtime
            .block_on(
                client(API_KEY)
                    .list_conversations()
                    .items()
                    .map_ok(|conversation| conversation.id().unwrap_or_default().to_string())
                    .try_collect(),
            )
            .expect("every page is served");
        assert_eq!(ids.len(), 250);
        assert_eq!(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
            250
        );
        let refused = runtime.block_on(client("sk-wrong").list_conversations().send());
        assert_eq!(
            refused
                .err()
                .and_then(|error| error.as_api().map(|api| api.status.as_u16())),
            Some(401)
        );
    }

    /// One raw HTTP/1.1 exchange: the head's lines (lower-cased) and the body as sent.
    pub(crate) async fn exchange(
        address: SocketAddr,
        path: &str,
        accept_encoding: Option<&str>,
    ) -> (Vec<String>, Vec<u8>) {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let accept = accept_encoding
            .map(|value| format!("accept-encoding: {value}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET {path} HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {API_KEY}\r\n{accept}connection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        let split = answer
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .expect("a head");
        let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
        (
            head.lines().map(str::to_string).collect(),
            answer[split + 4..].to_vec(),
        )
    }

    fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
        head.iter()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
    }

    fn decompress(encoding: &str, body: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        match encoding {
            "gzip" => flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .map(drop)
                .expect("gzip"),
            "br" => brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .map(drop)
                .expect("brotli"),
            "zstd" => out = zstd::stream::decode_all(body).expect("zstd"),
            other => panic!("unexpected encoding {other}"),
        }
        out
    }

    #[test]
    fn the_server_honours_accept_encoding_with_content_length_and_vary() {
        let records = data::conversations(4, 120);
        let pages = data::conversation_pages(&records);
        let first = pages[0].clone();
        let server = PageServer::start_with(
            Pages {
                conversations: pages,
                feedback: data::feedback_pages(&[], &[]),
            },
            ServerOptions {
                compress: true,
                threads: 1,
            },
        )
        .expect("the server starts");
        let sizes = server.conversation_sizes().clone();
        assert_eq!(sizes.len(), 4, "{sizes:?}");
        for encoding in Encoding::COMPRESSED {
            assert!(
                sizes[&encoding] * 3 < sizes[&Encoding::Identity],
                "{encoding:?} compresses JSON at least 3 times: {sizes:?}"
            );
        }
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let path = "/conversations?limit=100&offset=0";
        for (accept, expected) in [
            (Some("gzip"), "gzip"),
            (Some("br"), "br"),
            (Some("zstd"), "zstd"),
            (Some("gzip, deflate, br;q=0"), "gzip"),
            (Some("deflate"), "identity"),
            (None, "identity"),
        ] {
            let (head, body) = runtime.block_on(exchange(server.address(), path, accept));
            assert_eq!(head[0], "http/1.1 200 ok", "{accept:?}");
            assert_eq!(
                header(&head, "content-length").and_then(|n| n.parse::<usize>().ok()),
                Some(body.len()),
                "{accept:?}: {head:?}"
            );
            assert!(
                header(&head, "transfer-encoding").is_none(),
                "no chunked answers"
            );
            assert_eq!(header(&head, "vary"), Some("accept-encoding"));
            let decoded = match header(&head, "content-encoding") {
                Some(encoding) => {
                    assert_eq!(encoding, expected, "{accept:?}");
                    decompress(encoding, &body)
                }
                None => {
                    assert_eq!(expected, "identity", "{accept:?}");
                    body
                }
            };
            assert_eq!(decoded, first.as_ref(), "{accept:?}");
        }
        // The client that accepts all three gets the smallest.
        let (head, body) =
            runtime.block_on(exchange(server.address(), path, Some("gzip, br, zstd")));
        let smallest = [Encoding::Gzip, Encoding::Brotli, Encoding::Zstd]
            .into_iter()
            .map(|encoding| encoding.compress(&first).expect("compress").len())
            .min();
        assert_eq!(Some(body.len()), smallest, "{head:?}");
    }
}
