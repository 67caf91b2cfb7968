//! Integration tests of the SDK against httpmock servers on 127.0.0.1; nothing here reaches the internet.
//!
//! One binary with a module per area, so the workspace links one test executable instead of many.

mod auth_and_limits;
mod builders;
mod decoding;
mod errors;
mod faults;
mod fuzz;
mod listing;
mod network;
mod openai;
mod operations;
mod pagination;
mod query_language;
mod recorder;
mod reliability;
mod retries;
mod spool;
mod support;
