//! `sync`: the program's summary and JSON report, and a sync killed mid-run, which must leave the
//! previous mirror whole.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use inkeep_analytics_sandbox::FaultConfig;
use serde_json::{Value, json};

use crate::support::{Running, Scratch, Server, run};

/// The conversations and feedback a mirror holds, by id, as their raw bytes; the number of runs.
fn mirrored(path: &Path) -> (HashMap<String, String>, HashMap<String, String>, i64) {
    let db = match rusqlite::Connection::open(path) {
        Ok(db) => db,
        Err(error) => panic!("cannot open {}: {error}", path.display()),
    };
    let rows = |sql: &str| -> HashMap<String, String> {
        let mut statement = db.prepare(sql).expect("a statement");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("a query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let runs: i64 = db
        .query_row("SELECT count(*) FROM sync_runs", [], |row| row.get(0))
        .expect("a count");
    (
        rows("SELECT id, raw FROM conversations"),
        rows("SELECT id, raw FROM feedback"),
        runs,
    )
}

fn report(output: &str) -> Value {
    match serde_json::from_str(output) {
        Ok(value) => value,
        Err(error) => panic!("not one JSON object ({error}): {output}"),
    }
}

#[test]
fn a_sync_killed_mid_run_leaves_the_previous_mirror() {
    let server = Server::start();
    let scratch = Scratch::new();
    let path = scratch.join("mirror.db");
    let first = run(server
        .cli()
        .args(["sync", "--format", "json", "--db"])
        .arg(&path))
    .ok();
    let first = report(&first);
    let conversations = server.raw_conversations();
    let feedback = server.raw_feedback();
    assert_eq!(first["conversations"]["inserted"], conversations.len());
    assert_eq!(first["feedback"]["inserted"], feedback.len());
    let before = mirrored(&path);
    assert_eq!(
        (&before.0, &before.1, before.2),
        (&conversations, &feedback, 1)
    );

    for n in 0..3 {
        let (status, body) = server.post(
            "/conversations",
            &json!({
                "id": format!("sync-killed-{n}"),
                "type": "openai",
                "messages": [{"role": "user", "content": format!("question {n}")}],
            }),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    // Slow answers, so that the run is killed with pages applied but not committed.
    server
        .sandbox()
        .set_faults(FaultConfig {
            delayed: 1.0,
            delay: Duration::from_millis(150),
            ..FaultConfig::default()
        })
        .expect("faults");
    let answered = server.sandbox().requests_answered();
    let mut command = server.cli();
    command
        .args(["sync", "--page-size", "5", "--db"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut sync = Running::spawn(&mut command);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.sandbox().requests_answered() < answered + 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        server.sandbox().requests_answered() >= answered + 4,
        "the sync never got going"
    );
    sync.kill();
    assert_eq!(mirrored(&path), before, "the killed run changed the mirror");

    server
        .sandbox()
        .set_faults(FaultConfig::default())
        .expect("no faults");
    let second = run(server
        .cli()
        .args(["sync", "--format", "json", "--db"])
        .arg(&path))
    .ok();
    let second = report(&second);
    assert_eq!(
        second["conversations"],
        json!({"inserted": 3, "updated": 0, "deleted": 0, "unchanged": conversations.len()})
    );
    let after = mirrored(&path);
    assert_eq!(after.0, server.raw_conversations());
    assert_eq!(after.2, 2, "the killed run left no record of itself");
}

#[test]
fn the_summary_says_what_changed_and_bad_targets_are_usage_errors() {
    let server = Server::start();
    let scratch = Scratch::new();
    let path = scratch.join("mirror.db");
    let text = run(server.cli().args(["sync", "--db"]).arg(&path)).ok();
    assert!(text.starts_with("conversations "), "{text}");
    assert!(text.contains(" inserted "), "{text}");
    assert!(text.contains("updated in"), "{text}");
    let again = run(server.cli().args(["sync", "--db"]).arg(&path)).ok();
    assert!(again.contains("already up to date"), "{again}");

    let notes = scratch.join("notes.txt");
    std::fs::write(&notes, "not a mirror").expect("written");
    let refused = run(server.cli().args(["sync", "--db"]).arg(&notes));
    refused.exits(2);
    assert!(
        refused.error_line().contains("not a mirror"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read(&notes).expect("readable"), b"not a mirror");

    run(server.cli().args(["sync"])).exits(2);
    let dataset = scratch.join("dataset");
    let parquet = report(
        &run(server
            .cli()
            .args(["sync", "--format", "json", "--parquet"])
            .arg(&dataset))
        .ok(),
    );
    assert!(
        parquet["partitions"]["written"].as_u64() > Some(0),
        "{parquet}"
    );
}
