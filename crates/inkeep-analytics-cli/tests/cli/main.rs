//! End-to-end tests of the `inkeep-analytics` program: the real binary, run against sandboxes of
//! the API on 127.0.0.1 and, where a sandbox cannot produce a case, against httpmock servers.
//!
//! Goldens live in `tests/golden/`; `UPDATE_GOLDEN=1 cargo test -p inkeep-analytics-cli --test cli`
//! rewrites them, and a missing one fails.

mod columns;
mod commands;
mod errors;
mod export;
mod faults;
mod help;
mod mcp;
mod openai;
mod record;
mod sandbox;
mod support;
mod sync;
mod tables;
