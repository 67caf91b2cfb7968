//! The one error type of the crate: what can go wrong when a sandbox is configured, started or run.

use std::io;
use std::net::SocketAddr;

/// An error of the sandbox: a configuration it refuses, or an address it cannot listen on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is not usable, such as a fault probability above 1 or no API key.
    #[error("invalid sandbox configuration: {0}")]
    InvalidConfig(String),
    /// The server could not listen on the address.
    #[error("the sandbox could not listen on {addr}")]
    Bind {
        /// The address it tried.
        addr: SocketAddr,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// Reading the address of the listening socket failed.
    #[error("the sandbox could not read its own address")]
    LocalAddr(#[source] io::Error),
    /// A data file the seed is drawn from does not parse or has nothing to draw (built into the
    /// crate; its tests rule this out).
    #[error("the sandbox's seed data in {file} is invalid{}", .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    SeedData {
        /// The file, such as `data/topics.json`.
        file: &'static str,
        /// What is wrong, when it is not a parse error.
        detail: Option<String>,
        /// Why it does not parse.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// The server task ended abnormally (it panicked or was cancelled).
    #[error("the sandbox server task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// A `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
