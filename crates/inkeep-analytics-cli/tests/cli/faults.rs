//! `conversations export` and `feedback export` to a file, through a sandbox that fails 30% of
//! requests in every way it can: every record is written exactly once, byte for byte as the same
//! sandbox serves it with its faults turned off.
//!
//! Each run of the program is killed and fails the test after [`crate::support::TIME_LIMIT`].

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use inkeep_analytics_sandbox::{FaultConfig, SandboxConfig};

use crate::support::{Output, Scratch, Server, id_of, lines, read, run, run_for, sandbox_config};

/// How many conversations the sandbox holds: 50 pages of 100.
const CONVERSATIONS: usize = 5_000;

/// 30% of requests meet a fault, split evenly over the six kinds.
///
/// The five kinds that answer in place of the API (`429` with `Retry-After`, `503` with HTML,
/// `502` empty, a dropped connection, a truncated body) exclude each other and take 5% each; a
/// slow answer is drawn on its own, with 1/15, so that 1 - 0.75 * 14/15 = 0.30 of requests meet
/// at least one fault. `Retry-After: 0` and a 20 ms delay keep the test fast.
fn thirty_percent_faults() -> FaultConfig {
    FaultConfig {
        rate_limited: 0.05,
        retry_after_secs: 0,
        unavailable: 0.05,
        bad_gateway: 0.05,
        dropped_connection: 0.05,
        truncated_body: 0.05,
        delayed: 1.0 / 15.0,
        delay: Duration::from_millis(20),
        rate_limit: None,
        states_rate_limit: false,
        outage: None,
    }
}

/// A sandbox of [`CONVERSATIONS`] conversations with [`thirty_percent_faults`].
fn faulty_server() -> Server {
    Server::start_with(SandboxConfig {
        conversations: CONVERSATIONS,
        faults: thirty_percent_faults(),
        ..sandbox_config()
    })
}

/// Exports `what` to a file with ten retries per request, and returns the run and the file's
/// lines. A request fails for good only after eleven failures in a row, which the 25% of
/// requests that fail (a slow answer only delays) make about once in four million requests.
#[track_caller]
fn export_to_file(server: &Server, what: &str) -> (Output, Vec<String>) {
    let scratch = Scratch::new();
    let path = scratch.join("export.jsonl");
    let output = run(server
        .cli()
        .args(["--retries", "10", what, "export", "--output"])
        .arg(&path));
    output.ok();
    assert_eq!(
        scratch.files(),
        ["export.jsonl"],
        "a finished export leaves its file and nothing else"
    );
    let exported = lines(&read(&path));
    (output, exported)
}

/// Checks that `exported` holds every record of `expected` (id to the server's bytes) exactly
/// once, each line byte for byte the server's record.
#[track_caller]
fn assert_exactly_once(exported: &[String], expected: &HashMap<String, String>) {
    let mut seen = HashSet::new();
    for line in exported {
        let id = id_of(line);
        assert!(seen.insert(id.clone()), "{id} was exported twice");
        match expected.get(&id) {
            Some(sent) => assert_eq!(line, sent, "{id} differs from what the server sent"),
            None => panic!("{id} was exported but the server does not hold it"),
        }
    }
    let missing: Vec<&String> = expected.keys().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
}

/// Checks that the program met the faults and retried: its warnings on stderr name each
/// status, and some failures of the connection.
#[track_caller]
fn assert_faults_were_retried(output: &Output) {
    let retries: Vec<&str> = output
        .stderr
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("retrying"))
        .collect();
    for status in ["status 429", "status 502", "status 503"] {
        assert!(
            retries.iter().any(|line| line.contains(status)),
            "no retry after {status}; stderr:\n{}",
            output.stderr
        );
    }
    assert!(
        retries.iter().any(|line| !line.contains("reason=status")),
        "no retry after a dropped connection or a cut body; stderr:\n{}",
        output.stderr
    );
}

#[test]
fn conversations_export_writes_every_record_once_through_thirty_percent_faults() {
    let server = faulty_server();
    let (output, exported) = export_to_file(&server, "conversations");
    assert_faults_were_retried(&output);
    if let Err(error) = server.sandbox().set_faults(FaultConfig::none()) {
        panic!("cannot turn the faults off: {error}");
    }
    let expected = server.raw_conversations();
    assert_eq!(expected.len(), CONVERSATIONS);
    assert_exactly_once(&exported, &expected);
}

#[test]
fn feedback_export_writes_every_record_once_through_thirty_percent_faults() {
    let server = faulty_server();
    let (output, exported) = export_to_file(&server, "feedback");
    if let Err(error) = server.sandbox().set_faults(FaultConfig::none()) {
        panic!("cannot turn the faults off: {error}");
    }
    let expected = server.raw_feedback();
    assert!(
        expected.len() > 1_000,
        "enough feedback for many pages: {}",
        expected.len()
    );
    assert_exactly_once(&exported, &expected);
    // Fewer pages than the conversations, so fewer faults: at least some were met.
    assert!(
        output.stderr.contains("retrying"),
        "no retry at all; stderr:\n{}",
        output.stderr
    );
}

/// How many conversations the long export holds: 200 pages of 100, the size of the export that
/// gave up on a burst of faults when its requests were bounded by a count of attempts.
const LONG_EXPORT_CONVERSATIONS: usize = 20_000;

/// With the program's defaults (no `--retries`), every request of an export retries for
/// `--retry-for` rather than twice: through 30% faults, about 1.6% of the pages would fail three
/// attempts in a row, so a count of attempts ends nearly every export of 200 pages part way.
#[test]
fn a_long_export_through_thirty_percent_faults_finishes_with_the_defaults() {
    let server = Server::start_with(SandboxConfig {
        conversations: LONG_EXPORT_CONVERSATIONS,
        faults: thirty_percent_faults(),
        ..sandbox_config()
    });
    let scratch = Scratch::new();
    let path = scratch.join("export.jsonl");
    // About 15 s in a debug build on a quiet machine; the guard against a hang is far above it.
    let output = run_for(
        server
            .cli()
            .args(["conversations", "export", "--output"])
            .arg(&path),
        Duration::from_secs(600),
    );
    output.ok();
    assert_faults_were_retried(&output);
    assert_eq!(
        scratch.files(),
        ["export.jsonl"],
        "a finished export leaves its file and nothing else"
    );
    if let Err(error) = server.sandbox().set_faults(FaultConfig::none()) {
        panic!("cannot turn the faults off: {error}");
    }
    let expected = server.raw_conversations();
    assert_eq!(expected.len(), LONG_EXPORT_CONVERSATIONS);
    assert_exactly_once(&lines(&read(&path)), &expected);
}
