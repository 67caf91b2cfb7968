//! The mirror against sandboxes of the API on 127.0.0.1: what it holds after a first sync, after
//! the API changed, after a failed run, and what it refuses to touch.

mod parquet;
mod safety;
mod sqlite;
mod support;
