//! The HTTP server: an accept loop over hyper connections, so that a fault can close a
//! connection without answering, and the [`Sandbox`] handle that runs it in the background.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::config::{FaultConfig, SandboxConfig};
use crate::content::Content;
use crate::error::{Error, Result};
use crate::frontline;
use crate::http;
use crate::state::Shared;

/// How long a shutdown waits for requests in flight before it closes their connections.
const GRACE: Duration = Duration::from_secs(5);

/// Serves the sandbox on `listener` until `shutdown` completes, then lets requests in flight
/// finish (for up to five seconds).
async fn run(listener: TcpListener, shared: Arc<Shared>, shutdown: impl Future<Output = ()>) {
    let router = http::router(Arc::clone(&shared));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let address = listener.local_addr().ok();
    let mut listener = Some(listener);
    loop {
        // An outage of refused connections closes the listener for its window, then binds the
        // same address again; the loop wakes at the window's edges and when the faults change.
        let now = std::time::Instant::now();
        let window = shared.refused_window().filter(|(_, end)| *end > now);
        let wake = match window {
            Some((start, end)) if start <= now => {
                listener = None;
                Some(end)
            }
            Some((start, _)) => Some(start),
            None => None,
        };
        if listener.is_none() && window.is_none_or(|(start, _)| start > now) {
            listener = match address {
                Some(address) => TcpListener::bind(address).await.ok(),
                None => None,
            };
            if listener.is_none() {
                // The port was taken meanwhile: try again shortly rather than give up serving.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        }
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let accept = async {
            match &listener {
                Some(listener) => listener.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            () = sleep => {}
            () = shared.faults_changed.notified() => {}
            accepted = accept => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(
                        stream,
                        Arc::clone(&shared),
                        router.clone(),
                        stopped.clone(),
                    ));
                }
                // Accepting fails for reasons that pass (too many open files): wait, then go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let _ = tokio::time::timeout(GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.shutdown().await;
}

/// Serves one connection until the client closes it, the server stops, or a fault drops it.
async fn connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let service = {
        let kill = Arc::clone(&kill);
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let shared = Arc::clone(&shared);
            let router = router.clone();
            let kill = Arc::clone(&kill);
            async move {
                Ok::<_, Infallible>(
                    frontline::handle(shared, router, kill, request.map(Body::new)).await,
                )
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let mut stopping = *stopped.borrow();
    if stopping {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            _ = connection.as_mut() => break,
            // Dropping the connection closes the socket without an answer.
            () = kill.notified() => break,
            _ = stopped.changed(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn bind(config: &SandboxConfig, addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    config.validate()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local = listener.local_addr().map_err(Error::LocalAddr)?;
    Ok((listener, local))
}

/// Serves a sandbox on `addr` until `shutdown` completes: what `inkeep-analytics sandbox serve`
/// runs.
///
/// When `shutdown` completes, the sandbox stops accepting connections and lets requests in
/// flight finish, for up to five seconds.
///
/// ```no_run
/// # async fn demo() -> Result<(), inkeep_analytics_sandbox::Error> {
/// use inkeep_analytics_sandbox::{SandboxConfig, serve};
///
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// # drop(stop);
/// let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 4010));
/// // Serves until `stop.send(())`, or until `stop` is dropped (a CLI waits for Ctrl-C instead).
/// serve(SandboxConfig::default(), addr, async {
///     let _ = stopped.await;
/// })
/// .await
/// # }
/// ```
///
/// # Errors
///
/// [`Error::InvalidConfig`] for a configuration [`SandboxConfig::validate`] refuses,
/// [`Error::Bind`] when the address is taken or not allowed, and [`Error::SeedData`] if the
/// built-in seed data were invalid (its tests rule that out).
pub async fn serve(
    config: SandboxConfig,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let (listener, _) = bind(&config, addr).await?;
    let shared = Arc::new(Shared::new(&config, Content::load()?));
    run(listener, shared, shutdown).await;
    Ok(())
}

/// A sandbox running in the background of the current Tokio runtime; it stops when dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), inkeep_analytics_sandbox::Error> {
/// let sandbox = inkeep_analytics_sandbox::Sandbox::start().await?;
/// assert!(sandbox.base_url().starts_with("http://127.0.0.1:"));
/// assert_eq!(sandbox.api_key(), "sk-sandbox");
/// # Ok(())
/// # }
/// ```
pub struct Sandbox {
    addr: SocketAddr,
    base_url: String,
    api_key: String,
    web_key: Option<String>,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("base_url", &self.base_url)
            .field(
                "running",
                &self.task.as_ref().is_some_and(|t| !t.is_finished()),
            )
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts a sandbox with [`SandboxConfig::default`] on a free port of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when no port can be had.
    pub async fn start() -> Result<Self> {
        Self::start_with(SandboxConfig::default()).await
    }

    /// Starts a sandbox with `config` on a free port of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a configuration [`SandboxConfig::validate`] refuses, and
    /// [`Error::Bind`] when no port can be had.
    pub async fn start_with(config: SandboxConfig) -> Result<Self> {
        Self::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts a sandbox with `config` on `addr` (port 0 picks a free one).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a configuration [`SandboxConfig::validate`] refuses,
    /// [`Error::Bind`] when the address is taken or not allowed, and [`Error::SeedData`] if the
    /// built-in seed data were invalid (its tests rule that out).
    pub async fn start_on(config: SandboxConfig, addr: SocketAddr) -> Result<Self> {
        let (listener, addr) = bind(&config, addr).await?;
        let shared = Arc::new(Shared::new(&config, Content::load()?));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, Arc::clone(&shared), async move {
            // Completes on `send` and also when the sender is dropped.
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            base_url: format!("http://{addr}"),
            api_key: config.api_keys.first().cloned().unwrap_or_default(),
            web_key: config.web_keys.first().cloned(),
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The base URL to give a client, such as `http://127.0.0.1:41234` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address the sandbox listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first API integration key of the configuration (`sk-sandbox` by default).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The first web integration key of the configuration (`wk-sandbox` by default), if any.
    pub fn web_key(&self) -> Option<&str> {
        self.web_key.as_deref()
    }

    /// Replaces the faults the sandbox injects, from the next request on.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for faults [`FaultConfig::validate`] refuses; the current
    /// faults stay.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<()> {
        faults.validate()?;
        self.shared.set_faults(faults);
        Ok(())
    }

    /// How many requests the sandbox has received since it started, whatever it answered.
    pub fn requests_answered(&self) -> u64 {
        self.shared.requests()
    }

    /// How many requests the sandbox has answered `429 Too Many Requests`, by its rate limit or
    /// by the `rate_limited` fault.
    pub fn requests_rate_limited(&self) -> u64 {
        self.shared.rate_limited()
    }

    /// Stops the sandbox and waits until it has: it stops accepting connections at once and
    /// lets requests in flight finish, for up to five seconds.
    ///
    /// # Errors
    ///
    /// [`Error::Task`] when the server task panicked.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(Error::Task),
            None => Ok(()),
        }
    }
}

impl Drop for Sandbox {
    /// Stops the server: the listening socket and every connection are closed as soon as the
    /// runtime runs the cancelled task, without waiting for requests in flight.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Sandbox;

    /// A sandbox can be kept in a static or moved between tasks.
    #[test]
    fn a_sandbox_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Sandbox>();
    }

    #[tokio::test]
    async fn its_debug_output_has_no_key() {
        let sandbox = match Sandbox::start().await {
            Ok(sandbox) => sandbox,
            Err(error) => panic!("start a sandbox: {error}"),
        };
        let debug = format!("{sandbox:?}");
        assert!(debug.contains(sandbox.base_url()) && debug.contains("running: true"));
        assert!(!debug.contains(sandbox.api_key()));
    }
}
