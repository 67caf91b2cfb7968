//! Integration tests of the sandbox, driven with the real SDK client (and raw HTTP where the SDK
//! would refuse a request before sending it, or where exact bytes matter): one binary, a module
//! per area. Every sandbox listens on 127.0.0.1 and stops when its test ends.

mod support;

mod conversations;
mod errors;
mod faults;
mod feedback_and_events;
mod lifecycle;
mod listing;
mod queries;
