//! Benchmarks of the inkeep-analytics SDK and program, kept out of the test suite: they report, tests assert.
//!
//! - [`data`] renders the realistic pages every contender reads;
//! - [`floor`] holds the hand-written serde structs that typed decoding is measured against;
//! - [`server`] serves the pages on loopback; [`report`] writes `BENCHMARKS.md`;
//! - [`chat`] builds the chat sessions the recorder's benchmark records;
//! - [`build_cost`] measures what depending on the SDK costs a new crate's build;
//! - the binary (`cargo xtask bench`) runs every contender side by side.

pub mod build_cost;
pub mod chat;
pub mod data;
pub mod floor;
pub mod nginx;
pub mod proxy;
pub mod report;
pub mod server;
