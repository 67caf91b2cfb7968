//! A shaping proxy on loopback that makes 127.0.0.1 look like the internet: every byte is delayed
//! by a latency each way, and all connections share one link of limited bandwidth in each
//! direction, so that what a client gains from compression and from requests in flight shows.
//!
//! The link is a FIFO queue with a clock: a chunk read from one side is sent on the link when the
//! link is free, takes `bytes / bandwidth` to cross it, and arrives `latency` later. The reader
//! of a side waits until its chunk has crossed before it reads the next, so the proxy buffers at
//! most what is on the wire and TCP's flow control reaches back to the sender.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The default latency each way: a request waits two of them, 200 ms.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(100);

/// The default bandwidth shared by every connection: 100 Mbit/s.
pub const DEFAULT_BANDWIDTH_BITS: u64 = 100_000_000;

/// The most a chunk holds, so that connections interleave on the link as packets do.
const CHUNK: usize = 16 * 1024;

/// How the proxy shapes.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Added to every byte, each way.
    pub latency: Duration,
    /// Bits a second, shared by every connection, in each direction.
    pub bandwidth_bits: u64,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            latency: DEFAULT_LATENCY,
            bandwidth_bits: DEFAULT_BANDWIDTH_BITS,
        }
    }
}

impl Shape {
    /// How long `bytes` take to cross the link.
    pub fn transmission(&self, bytes: usize) -> Duration {
        Duration::from_secs_f64(bytes as f64 * 8.0 / self.bandwidth_bits.max(1) as f64)
    }
}

/// One direction of the link: the instant it is free again.
#[derive(Debug)]
struct Link {
    free_at: Mutex<Instant>,
}

impl Link {
    fn new() -> Self {
        Self {
            free_at: Mutex::new(Instant::now()),
        }
    }

    /// Queues `bytes` on the link and returns when they have crossed it.
    fn reserve(&self, shape: &Shape, bytes: usize) -> Instant {
        let mut free_at = self.free_at.lock().unwrap_or_else(PoisonError::into_inner);
        let start = (*free_at).max(Instant::now());
        *free_at = start + shape.transmission(bytes);
        *free_at
    }
}

/// A running proxy; it stops when dropped.
pub struct ShapingProxy {
    address: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl ShapingProxy {
    /// Listens on an ephemeral port of 127.0.0.1 and forwards every connection to `upstream`.
    pub fn start(upstream: SocketAddr, shape: Shape) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-proxy")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let address = listener.local_addr()?;
        let down = Arc::new(Link::new());
        let up = Arc::new(Link::new());
        runtime.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let (up, down) = (Arc::clone(&up), Arc::clone(&down));
                tokio::spawn(async move {
                    // A failed upstream closes the client's connection, which the client reports.
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pipe(client_read, server_write, up, shape),
                        pipe(server_read, client_write, down, shape),
                    );
                });
            }
        });
        Ok(Self {
            address,
            runtime: Some(runtime),
        })
    }

    /// The base URL to give contenders.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for ShapingProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Carries one direction of one connection over the shaped link, until either side closes.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    link: Arc<Link>,
    shape: Shape,
) {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let read = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let crossed = link.reserve(&shape, read);
            if sender
                .send((crossed + shape.latency, buffer[..read].to_vec()))
                .is_err()
            {
                break;
            }
            tokio::time::sleep_until(crossed).await;
        }
        // Dropping the sender ends the writer once everything in flight has arrived.
    };
    let writer = async move {
        while let Some((due, bytes)) = receiver.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;
    use crate::server::{Encoding, PageServer, Pages, ServerOptions};

    #[test]
    fn the_proxy_adds_a_round_trip_and_caps_the_bandwidth_of_all_connections_together() {
        let records = data::conversations(11, 200);
        let pages = data::conversation_pages(&records);
        let page_bytes = pages[0].len();
        let server = PageServer::start_with(
            Pages {
                conversations: pages.clone(),
                feedback: data::feedback_pages(&[], &[]),
            },
            ServerOptions {
                compress: true,
                threads: 1,
            },
        )
        .expect("the server starts");
        let shape = Shape {
            latency: Duration::from_millis(50),
            bandwidth_bits: 40_000_000,
        };
        let proxy = ShapingProxy::start(server.address(), shape).expect("the proxy starts");
        let address: SocketAddr = proxy
            .base_url()
            .trim_start_matches("http://")
            .parse()
            .expect("an address");
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let path = "/conversations?limit=100&offset=0";

        // Only lower bounds are checked here: a shaping proxy must never deliver sooner than the
        // link it models allows, while how little it adds on top is the harness's to measure (an
        // upper bound in a test is broken by a loaded CI machine, not by the proxy).

        // A small answer: at least one round trip, 100 ms.
        let started = std::time::Instant::now();
        let (head, _) = runtime.block_on(crate::server::tests::exchange(
            address,
            "/conversations?limit=100&offset=200",
            None,
        ));
        let small = started.elapsed();
        assert_eq!(head[0], "http/1.1 200 ok");
        assert!(small >= Duration::from_millis(100), "{small:?}");

        // Two large answers at once share the link: together they take their bytes over the
        // bandwidth, not half of it.
        let started = std::time::Instant::now();
        let answers = runtime.block_on(async {
            tokio::join!(
                crate::server::tests::exchange(address, path, None),
                crate::server::tests::exchange(address, path, None),
            )
        });
        let both = started.elapsed();
        assert_eq!(answers.0.1, pages[0].as_ref(), "bytes arrive intact");
        assert_eq!(answers.1.1, pages[0].as_ref());
        let wire = shape.transmission(2 * page_bytes) + Duration::from_millis(100);
        assert!(
            both >= wire,
            "{both:?} for {} bytes, expected at least {wire:?}",
            2 * page_bytes
        );

        // Compressed, the same page crosses the link as its compressed bytes: the proxy shapes
        // what is on the wire, so the answer takes at least those bytes' transmission time, and
        // those bytes are several times fewer than the page's.
        let started = std::time::Instant::now();
        let (head, body) =
            runtime.block_on(crate::server::tests::exchange(address, path, Some("zstd")));
        let compressed = started.elapsed();
        assert!(head.iter().any(|line| line == "content-encoding: zstd"));
        assert_eq!(body, Encoding::Zstd.compress(&pages[0]).expect("zstd"));
        assert!(
            body.len() * 3 < page_bytes,
            "{} of {page_bytes}",
            body.len()
        );
        let compressed_wire = shape.transmission(body.len()) + Duration::from_millis(100);
        assert!(
            compressed >= compressed_wire,
            "{compressed:?}, expected at least {compressed_wire:?}"
        );
    }
}
