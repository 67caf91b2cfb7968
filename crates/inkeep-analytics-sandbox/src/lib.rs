#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod content;
mod error;
mod frontline;
mod http;
mod ingest;
mod problem;
mod query;
mod records;
mod rng;
mod seed;
mod server;
mod state;
mod store;
mod views;

pub use config::{
    ConcurrentInserts, DEFAULT_API_KEY, DEFAULT_CONVERSATIONS, DEFAULT_SEED, DEFAULT_WEB_KEY,
    FaultConfig, Outage, OutageKind, RateLimit, SandboxConfig,
};
pub use error::{Error, Result};
pub use server::{Sandbox, serve};
