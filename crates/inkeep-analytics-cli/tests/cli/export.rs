//! `conversations export` and `feedback export`: every record exactly once and byte for byte as
//! the server sent it, in every format, through faults and concurrent inserts, resumed after a
//! kill, written atomically, and a 401 on the way.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use httpmock::{Method::GET, MockServer};
use inkeep_analytics_sandbox::{ConcurrentInserts, FaultConfig, SandboxConfig};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::support::{
    KEY, Running, Scratch, Server, cli, id_of, lines, parse, read, run, sandbox_config,
};

/// Checks that `exported` (JSON texts) holds every record of `expected` (id to the server's
/// bytes) exactly once, byte for byte.
#[track_caller]
fn assert_exactly_once(exported: &[String], expected: &HashMap<String, String>) {
    let mut seen = HashSet::new();
    for record in exported {
        let id = id_of(record);
        assert!(seen.insert(id.clone()), "{id} was exported twice");
        match expected.get(&id) {
            Some(sent) => assert_eq!(record, sent, "{id} differs from what the server sent"),
            None => panic!("{id} was exported but the server does not have it"),
        }
    }
    let missing: Vec<&String> = expected.keys().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "not exported: {missing:?}");
}

/// The records of a JSON array export, each as the exact text the file holds.
#[track_caller]
fn array_records(bytes: &[u8]) -> Vec<String> {
    let records: Vec<Box<RawValue>> = parse(bytes);
    records
        .iter()
        .map(|record| record.get().to_string())
        .collect()
}

#[test]
fn conversations_export_writes_every_record_once_as_sent() {
    let server = Server::start();
    let expected = server.raw_conversations();
    assert_eq!(expected.len(), crate::support::CONVERSATIONS);
    for page_size in ["7", "100"] {
        let output = run(server
            .cli()
            .args(["conversations", "export", "--page-size", page_size]));
        assert_exactly_once(&lines(output.ok().as_bytes()), &expected);
    }
}

#[test]
fn feedback_export_writes_every_record_once_as_sent() {
    let server = Server::start();
    let expected = server.raw_feedback();
    assert!(
        expected.len() > 6,
        "enough feedback for several pages: {}",
        expected.len()
    );
    for page_size in ["2", "5", "100"] {
        let output = run(server
            .cli()
            .args(["feedback", "export", "--page-size", page_size]));
        assert_exactly_once(&lines(output.ok().as_bytes()), &expected);
    }
}

#[test]
fn json_export_is_an_array_of_the_records_as_sent() {
    let server = Server::start();
    let scratch = Scratch::new();
    let path = scratch.join("conversations.json");
    run(server
        .cli()
        .args([
            "--format",
            "json",
            "conversations",
            "export",
            "--page-size",
            "9",
            "--output",
        ])
        .arg(&path))
    .ok();
    assert_exactly_once(&array_records(&read(&path)), &server.raw_conversations());

    let feedback =
        run(server
            .cli()
            .args(["--format", "json", "feedback", "export", "--page-size", "4"]))
        .ok();
    assert_exactly_once(&array_records(feedback.as_bytes()), &server.raw_feedback());
}

#[test]
fn an_empty_export_is_an_empty_array_or_nothing() {
    let server = Server::start_with(SandboxConfig {
        conversations: 0,
        ..sandbox_config()
    });
    let json = run(server
        .cli()
        .args(["--format", "json", "conversations", "export"]))
    .ok();
    assert_eq!(parse::<Value>(json.as_bytes()), Value::Array(Vec::new()));
    let jsonl = run(server.cli().args(["conversations", "export"])).ok();
    assert!(jsonl.is_empty());
    let csv = run(server.cli().args(["--format", "csv", "feedback", "export"])).ok();
    assert_eq!(csv.lines().count(), 1, "only the header: {csv}");
}

/// The rows of a CSV export by id, with the header.
#[track_caller]
fn csv_rows(bytes: &[u8]) -> (Vec<String>, HashMap<String, HashMap<String, String>>) {
    let mut reader = csv::Reader::from_reader(bytes);
    let header: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(str::to_string).collect(),
        Err(error) => panic!("invalid CSV header: {error}"),
    };
    let mut rows = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => panic!("invalid CSV row: {error}"),
        };
        assert_eq!(record.len(), header.len(), "every row has every column");
        let row: HashMap<String, String> = header
            .iter()
            .cloned()
            .zip(record.iter().map(str::to_string))
            .collect();
        let id = row.get("id").cloned().unwrap_or_default();
        assert!(
            rows.insert(id.clone(), row).is_none(),
            "{id} is in the CSV twice"
        );
    }
    (header, rows)
}

/// The CSV cell of a JSON value: text as is, null or absent as empty, anything else as compact JSON.
fn csv_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[test]
fn csv_export_has_a_header_and_one_row_per_record() {
    let server = Server::start();
    let conversations = server.raw_conversations();
    let text = run(server.cli().args([
        "--format",
        "csv",
        "conversations",
        "export",
        "--page-size",
        "11",
    ]))
    .ok();
    let (header, rows) = csv_rows(text.as_bytes());
    assert_eq!(
        header,
        [
            "id",
            "type",
            "externalId",
            "externalUrl",
            "createdAt",
            "updatedAt",
            "projectId",
            "integrationId",
            "visibility",
            "tags",
            "messageCount",
            "properties",
            "userProperties"
        ]
    );
    assert_eq!(rows.len(), conversations.len());
    for (id, text) in &conversations {
        let record: Value = parse(text.as_bytes());
        let Some(row) = rows.get(id) else {
            panic!("{id} is missing from the CSV");
        };
        for column in [
            "type",
            "externalId",
            "createdAt",
            "visibility",
            "tags",
            "properties",
            "userProperties",
        ] {
            let cell = row.get(column).cloned().unwrap_or_default();
            if matches!(record[column], Value::Object(_) | Value::Array(_)) {
                assert_eq!(
                    parse::<Value>(cell.as_bytes()),
                    record[column],
                    "{id}.{column}"
                );
            } else {
                assert_eq!(cell, csv_cell(&record[column]), "{id}.{column}");
            }
        }
        let messages = record["messages"].as_array().map_or(0, Vec::len);
        assert_eq!(row.get("messageCount"), Some(&messages.to_string()));
    }

    // Feedback details hold commas, quotes and line breaks; the CSV keeps them.
    let feedback = server.raw_feedback();
    let text =
        run(server
            .cli()
            .args(["--format", "csv", "feedback", "export", "--page-size", "3"]))
        .ok();
    let (header, rows) = csv_rows(text.as_bytes());
    assert_eq!(header.first().map(String::as_str), Some("id"));
    assert_eq!(rows.len(), feedback.len());
    let mut tricky = 0;
    for (id, text) in &feedback {
        let record: Value = parse(text.as_bytes());
        let details = rows
            .get(id)
            .and_then(|row| row.get("details"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(details, csv_cell(&record["details"]), "{id}.details");
        let conversation = rows
            .get(id)
            .and_then(|row| row.get("conversationId"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            conversation,
            csv_cell(&record["conversation"]["id"]),
            "{id}.conversationId"
        );
        tricky += usize::from(details.contains([',', '"', '\n']));
    }
    assert!(
        tricky > 0,
        "the seeded feedback has details that need quoting"
    );
}

/// A page of `GET /conversations` written by hand: numbers as `1.50` and beyond 64 bits, keys in
/// no order, unicode escapes, explicit nulls, unknown keys and an unknown kind, and whitespace
/// inside records, which a byte-for-byte export keeps.
const HAND_WRITTEN_FIRST: &str = r#"{"total": 3, "pageSize": 2, "count": 2,
  "conversations": [
    {"type":"openai","id":"conv_a","score":1.50,"big":123456789012345678901234567890,"neg":-0.0,"exp":1E+3,"text":"caf\u00e9 \ud83d\ude00 \"quoted\" \\ \/ ü","externalId":null,"messages":[{"role":"user","content":"Hi","id":"msg_1"}],"properties":{"z":1,"a":[1.0,2.50,{"k":null}]}},
    { "id" : "conv_b" , "type" : "support_ticket" , "futureField" : { "deep" : [ true , false , null ] } , "messages" : [ ] , "emptyObject" : { } }
  ]}"#;

/// The second page: an unknown conversation kind with a numeric counter and a line separator.
const HAND_WRITTEN_SECOND: &str = "{\"conversations\":[{\"id\":\"conv_c\",\"type\":\"voice_call\",\"durationSeconds\":12.000,\"transcript\":\"\\u2028line\",\"createdAt\":\"2030-01-01T00:00:00Z\"}],\"count\":1,\"pageSize\":2,\"total\":3}";

/// The records of the two pages exactly as written.
fn hand_written_records() -> Vec<String> {
    let mut records = Vec::new();
    for page in [HAND_WRITTEN_FIRST, HAND_WRITTEN_SECOND] {
        #[derive(serde::Deserialize)]
        struct Page {
            conversations: Vec<Box<RawValue>>,
        }
        let page: Page = parse(page.as_bytes());
        records.extend(
            page.conversations
                .iter()
                .map(|record| record.get().to_string()),
        );
    }
    records
}

/// An httpmock server that serves the two hand-written pages for a page size of 2.
fn hand_written_server() -> MockServer {
    let mock = MockServer::start();
    for (offset, body) in [("0", HAND_WRITTEN_FIRST), ("2", HAND_WRITTEN_SECOND)] {
        mock.mock(|when, then| {
            when.method(GET)
                .path("/conversations")
                .query_param("limit", "2")
                .query_param("offset", offset)
                .header("authorization", format!("Bearer {KEY}"));
            then.status(200)
                .header("content-type", "application/json")
                .body(body);
        });
    }
    mock
}

#[test]
fn any_server_that_behaves_like_the_api_is_exported_byte_for_byte() {
    let mock = hand_written_server();
    let expected = hand_written_records();
    assert_eq!(expected.len(), 3);
    let base = [
        "--base-url",
        &mock.base_url(),
        "--api-key",
        KEY,
        "--retries",
        "0",
    ];

    let output = run(cli()
        .args(base)
        .args(["conversations", "export", "--page-size", "2"]));
    let mut wanted = String::new();
    for record in &expected {
        wanted.push_str(record);
        wanted.push('\n');
    }
    assert_eq!(output.ok(), wanted, "JSON lines are the server's bytes");

    let output = run(cli().args(base).args([
        "--format",
        "json",
        "conversations",
        "export",
        "--page-size",
        "2",
    ]));
    let text = output.ok();
    assert_eq!(array_records(text.as_bytes()), expected);
    assert_eq!(text, format!("[\n{}\n]\n", expected.join(",\n")));
}

#[test]
fn a_pretty_printed_record_becomes_one_line_with_every_token_kept() {
    let mock = MockServer::start();
    let body = "{\n  \"conversations\": [\n    {\n      \"id\": \"conv_pretty\",\n      \"amount\": 1.50,\n      \"big\": 123456789012345678901234567890,\n      \"note\": \"two  spaces, a \\\"quote\\\" and a \\\\ backslash\"\n    }\n  ],\n  \"total\": 1,\n  \"pageSize\": 5,\n  \"count\": 1\n}\n";
    mock.mock(|when, then| {
        when.method(GET).path("/conversations");
        then.status(200)
            .header("content-type", "application/json")
            .body(body);
    });
    let output = run(cli().args([
        "--base-url",
        &mock.base_url(),
        "--api-key",
        KEY,
        "conversations",
        "export",
        "--page-size",
        "5",
    ]));
    assert_eq!(
        output.ok(),
        "{\"id\":\"conv_pretty\",\"amount\":1.50,\"big\":123456789012345678901234567890,\"note\":\"two  spaces, a \\\"quote\\\" and a \\\\ backslash\"}\n"
    );
}

#[test]
fn hand_written_feedback_is_exported_byte_for_byte() {
    let mock = MockServer::start();
    let first = r#"{"positiveFeedbackCount":3,"negativeFeedbackCount":1,
"positiveFeedback":[{"id":"fb_1","type":"positive","messageId":"msg_1","details":null,"rating":4.50},{ "id":"fb_2", "type":"positive", "messageId":"msg_2", "sources":[{"url":"https://example.com/a?b=1&c=2"}] }],
"negativeFeedback":[{"id":"fb_3","type":"negative","messageId":"msg_3","details":"Fehlt: \"step by step\", bitte\nmehr","reasons":[{"label":"incomplete","details":null}]}]}"#;
    let second = r#"{"positiveFeedback":[{"id":"fb_4","type":"positive","messageId":"msg_4","newKind":{"x":1e2}}],"negativeFeedback":[],"positiveFeedbackCount":3,"negativeFeedbackCount":1}"#;
    for (offset, body) in [("0", first), ("2", second)] {
        mock.mock(|when, then| {
            when.method(GET)
                .path("/feedback")
                .query_param("limit", "2")
                .query_param("offset", offset);
            then.status(200)
                .header("content-type", "application/json")
                .body(body);
        });
    }
    let output = run(cli().args([
        "--base-url",
        &mock.base_url(),
        "--api-key",
        KEY,
        "feedback",
        "export",
        "--page-size",
        "2",
    ]));
    let exported = lines(output.ok().as_bytes());
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Page {
        positive_feedback: Vec<Box<RawValue>>,
        negative_feedback: Vec<Box<RawValue>>,
    }
    let mut expected = Vec::new();
    for body in [first, second] {
        let page: Page = parse(body.as_bytes());
        expected.extend(
            page.positive_feedback
                .iter()
                .chain(&page.negative_feedback)
                .map(|r| r.get().to_string()),
        );
    }
    assert_eq!(exported, expected);
}

#[test]
fn output_is_written_atomically() {
    let server = Server::start();
    let scratch = Scratch::new();
    let path = scratch.join("conversations.jsonl");
    let printed = run(server
        .cli()
        .args(["conversations", "export", "--page-size", "13", "--output"])
        .arg(&path))
    .ok();
    assert!(printed.is_empty(), "the records go to the file");
    assert_eq!(
        scratch.files(),
        ["conversations.jsonl"],
        "no partial or checkpoint file is left"
    );
    assert_exactly_once(&lines(&read(&path)), &server.raw_conversations());

    // A failed export leaves the earlier file as it was.
    let before = read(&path);
    let output = run(cli()
        .args([
            "--base-url",
            server.url(),
            "--api-key",
            "sk-wrong",
            "conversations",
            "export",
            "--output",
        ])
        .arg(&path));
    output.exits(3);
    assert_eq!(read(&path), before);
}

#[test]
fn a_401_during_an_export_exits_3_and_leaves_no_final_file() {
    let mock = MockServer::start();
    mock.mock(|when, then| {
        when.method(GET).path("/conversations").query_param("offset", "0");
        then.status(200)
            .header("content-type", "application/json")
            .body(r#"{"conversations":[{"id":"conv_1","type":"openai"},{"id":"conv_2","type":"openai"}],"total":5,"pageSize":2,"count":2}"#);
    });
    let revoked = mock.mock(|when, then| {
        when.method(GET).path("/conversations").query_param("offset", "2");
        then.status(401)
            .header("content-type", "application/problem+json")
            .header("x-request-id", "req_revoked_401")
            .body(r#"{"title":"Unauthorized","status":401,"detail":"The key was revoked","code":"unauthorized","requestId":"req_revoked_401"}"#);
    });
    // The last page, fetched ahead, answers too: the one failure is the 401.
    mock.mock(|when, then| {
        when.method(GET).path("/conversations").query_param("offset", "4");
        then.status(200)
            .header("content-type", "application/json")
            .body(r#"{"conversations":[{"id":"conv_5","type":"openai"}],"total":5,"pageSize":2,"count":1}"#);
    });
    let scratch = Scratch::new();
    let path = scratch.join("conversations.jsonl");
    let output = run(cli()
        .args([
            "--base-url",
            &mock.base_url(),
            "--api-key",
            KEY,
            "conversations",
            "export",
            "--page-size",
            "2",
            "--output",
        ])
        .arg(&path));
    output.exits(3);
    let line = output.error_line();
    for part in [
        "exporting conversations failed",
        "401 Unauthorized",
        "(unauthorized)",
        "The key was revoked",
        "[request id req_revoked_401]",
    ] {
        assert!(line.contains(part), "{part:?} is missing: {line}");
    }
    assert!(
        line.contains("2 of 5 conversations were written to")
            && line.contains("resume the export with: inkeep-analytics --base-url"),
        "{line}"
    );
    assert!(!output.stderr.contains(KEY));
    assert_eq!(revoked.calls(), 1, "a 401 is not retried");
    assert!(!path.exists(), "no final file after a failed export");
    // What was exported before the 401 is kept for --resume.
    let partial = scratch.join("conversations.jsonl.partial");
    assert_eq!(lines(&read(&partial)).len(), 2);
    assert!(scratch.join("conversations.jsonl.checkpoint").exists());
}

#[test]
fn faults_and_retries_lose_and_repeat_nothing() {
    let server = Server::start_with(SandboxConfig {
        faults: FaultConfig {
            rate_limited: 0.15,
            retry_after_secs: 0,
            unavailable: 0.1,
            bad_gateway: 0.1,
            dropped_connection: 0.05,
            truncated_body: 0.05,
            ..FaultConfig::default()
        },
        ..sandbox_config()
    });
    let conversations = run(server.cli().args([
        "--retries",
        "20",
        "conversations",
        "export",
        "--page-size",
        "6",
    ]));
    let feedback =
        run(server
            .cli()
            .args(["--retries", "20", "feedback", "export", "--page-size", "3"]));
    let conversations = lines(conversations.ok().as_bytes());
    let feedback = lines(feedback.ok().as_bytes());
    server.sandbox().set_faults(FaultConfig::none()).ok();
    assert_exactly_once(&conversations, &server.raw_conversations());
    assert_exactly_once(&feedback, &server.raw_feedback());
}

#[test]
fn concurrent_inserts_are_neither_repeated_nor_lost() {
    let inserts = ConcurrentInserts { every: 1, count: 3 };
    let server = Server::start_with(SandboxConfig {
        concurrent_inserts: Some(inserts),
        ..sandbox_config()
    });
    let before: HashSet<String> = server.conversation_ids_by_query().into_iter().collect();
    let output = run(server
        .cli()
        .args(["conversations", "export", "--page-size", "10"]));
    let exported = lines(output.ok().as_bytes());
    // Read with the query operation, which sets off no inserts of its own; newest first.
    let after = server.conversation_ids_by_query();

    let mut seen = HashSet::new();
    for record in &exported {
        let id = id_of(record);
        assert!(seen.insert(id.clone()), "{id} was exported twice");
    }
    let lost: Vec<&String> = before.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "conversations that existed before the export were lost: {lost:?}"
    );
    let after_set: HashSet<&String> = after.iter().collect();
    assert!(
        seen.iter().all(|id| after_set.contains(id)),
        "every exported conversation exists"
    );
    assert!(
        exported.len() > before.len(),
        "conversations inserted during the export were exported too"
    );

    // The sandbox inserts after answering, so the conversations inserted after the export's last
    // request cannot be in it; while inserts never stop, neither can every other one be. What is
    // missing must be the newest conversations, those inserted during the export's last pass,
    // and the program must say that the data kept changing.
    let missed: Vec<&String> = after.iter().filter(|id| !seen.contains(*id)).collect();
    let newest: Vec<&String> = after.iter().take(missed.len()).collect();
    assert_eq!(
        missed, newest,
        "only the newest conversations may be missing"
    );
    assert!(
        missed.len() <= inserts.count || output.stderr.contains("kept changing"),
        "{} conversations were not exported, without a warning:\n{}",
        missed.len(),
        output.stderr
    );
}

/// A sandbox with enough pages that a slow export is still running when its checkpoint first
/// counts 4 records: checkpoints are written behind the export, and on a loaded disk one may
/// trail it by a few syncs.
fn server_for_a_slow_export() -> Server {
    Server::start_with(SandboxConfig {
        conversations: 200,
        ..sandbox_config()
    })
}

/// Starts an export that will be killed: slow (every request is delayed), to `path`.
fn start_slow_export(server: &Server, args: &[&str], page_size: &str, path: &Path) -> Running {
    server
        .sandbox()
        .set_faults(FaultConfig {
            delayed: 1.0,
            delay: Duration::from_millis(80),
            ..FaultConfig::none()
        })
        .ok();
    let mut command = server.cli();
    command
        .args(args)
        .args(["--page-size", page_size, "--output"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Running::spawn(&mut command)
}

/// Waits until the checkpoint of `path` says at least `records` were written.
#[track_caller]
fn wait_for_checkpoint(path: &Path, records: u64) {
    let mut name = path.as_os_str().to_owned();
    name.push(".checkpoint");
    let checkpoint = std::path::PathBuf::from(name);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&checkpoint)
            && let Ok(value) = serde_json::from_str::<Value>(&text)
            && value["records"]
                .as_u64()
                .is_some_and(|written| written >= records)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!(
        "no checkpoint with {records} records at {}",
        checkpoint.display()
    );
}

/// Kills an export part way, checks what it left, then resumes it and returns the final file.
#[track_caller]
fn kill_and_resume(
    server: &Server,
    args: &[&str],
    page_size: &str,
    name: &str,
    torn_tail: &[u8],
) -> Vec<u8> {
    let scratch = Scratch::new();
    let path = scratch.join(name);
    let mut export = start_slow_export(server, args, page_size, &path);
    wait_for_checkpoint(&path, 4);
    export.kill();
    assert!(!path.exists(), "a killed export leaves no final file");
    let partial = scratch.join(&format!("{name}.partial"));
    assert!(
        partial.exists() && scratch.join(&format!("{name}.checkpoint")).exists(),
        "{:?}",
        scratch.files()
    );
    // Bytes written after the last checkpoint, as when a kill lands in the middle of a page.
    if let Err(error) = std::fs::OpenOptions::new()
        .append(true)
        .open(&partial)
        .and_then(|mut file| std::io::Write::write_all(&mut file, torn_tail))
    {
        panic!("cannot append to {}: {error}", partial.display());
    }

    server.sandbox().set_faults(FaultConfig::none()).ok();
    // Resuming with other options is refused, and changes nothing.
    let output = run(server
        .cli()
        .args(args)
        .args(["--page-size", "99", "--resume", "--output"])
        .arg(&path));
    output.exits(2);
    assert!(
        output.error_line().contains("resume with the same options"),
        "{}",
        output.stderr
    );

    run(server
        .cli()
        .args(args)
        .args(["--page-size", page_size, "--resume", "--output"])
        .arg(&path))
    .ok();
    assert_eq!(
        scratch.files(),
        [name],
        "the partial and checkpoint files are gone"
    );
    read(&path)
}

#[test]
fn a_killed_jsonl_export_resumes_with_every_record_once() {
    let server = server_for_a_slow_export();
    let args = ["conversations", "export"];
    let bytes = kill_and_resume(
        &server,
        &args,
        "2",
        "conversations.jsonl",
        b"{\"id\":\"conv_torn\",\"type\":",
    );
    assert_exactly_once(&lines(&bytes), &server.raw_conversations());
}

#[test]
fn a_killed_json_export_resumes_as_one_valid_array() {
    let server = server_for_a_slow_export();
    let args = ["--format", "json", "conversations", "export"];
    let bytes = kill_and_resume(
        &server,
        &args,
        "3",
        "conversations.json",
        b",\n{\"id\":\"conv_torn\"",
    );
    assert_exactly_once(&array_records(&bytes), &server.raw_conversations());
}

#[test]
fn a_killed_csv_export_resumes_with_one_header() {
    let server = server_for_a_slow_export();
    let args = ["--format", "csv", "conversations", "export"];
    let bytes = kill_and_resume(
        &server,
        &args,
        "2",
        "conversations.csv",
        b"conv_torn,openai,\"half",
    );
    let (_, rows) = csv_rows(&bytes);
    let expected: HashSet<String> = server.raw_conversations().into_keys().collect();
    assert_eq!(rows.keys().cloned().collect::<HashSet<_>>(), expected);
    assert_eq!(
        String::from_utf8_lossy(&bytes)
            .matches("id,type,externalId")
            .count(),
        1
    );
}

#[test]
fn a_killed_feedback_export_resumes() {
    let server = server_for_a_slow_export();
    let args = ["feedback", "export"];
    let bytes = kill_and_resume(&server, &args, "1", "feedback.jsonl", b"");
    assert_exactly_once(&lines(&bytes), &server.raw_feedback());
}

#[test]
fn resume_needs_an_interrupted_export() {
    let server = Server::start();
    let scratch = Scratch::new();
    let path = scratch.join("nothing.jsonl");
    let output = run(server
        .cli()
        .args(["conversations", "export", "--resume", "--output"])
        .arg(&path));
    output.exits(2);
    assert!(
        output.error_line().contains("nothing to resume"),
        "{}",
        output.stderr
    );
    assert!(scratch.files().is_empty());
}

#[test]
fn a_reader_that_stops_early_is_not_a_failure() {
    // Enough records to fill the pipe, so the program writes after the reader is gone.
    let server = Server::start_with(SandboxConfig {
        conversations: 250,
        ..sandbox_config()
    });
    let mut command = server.cli();
    command
        .args(["conversations", "export"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut export = Running::spawn(&mut command);
    let Some(stdout) = export.take_stdout() else {
        panic!("stdout is piped");
    };
    let stderr = export.take_stderr();
    // `| head -n 1`: read one line, then close the pipe.
    let mut first = String::new();
    if let Err(error) =
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first)
    {
        panic!("cannot read the export: {error}");
    }
    assert!(
        first.starts_with("{\"") && first.ends_with("}\n"),
        "{first}"
    );
    let status = export.wait_for(crate::support::TIME_LIMIT);
    let mut errors = String::new();
    if let Some(mut stderr) = stderr {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut errors);
    }
    assert_eq!(status.code(), Some(0), "{errors}");
    assert!(errors.is_empty(), "{errors}");
}

/// Starts a slow export to `path` with stderr kept, kills nothing, and waits for `records` in its checkpoint.
fn start_slow_export_keeping_stderr(
    server: &Server,
    args: &[&str],
    path: &Path,
) -> (Running, std::thread::JoinHandle<String>) {
    server
        .sandbox()
        .set_faults(FaultConfig {
            delayed: 1.0,
            delay: Duration::from_millis(80),
            ..FaultConfig::none()
        })
        .ok();
    let mut command = server.cli();
    command
        .args(args)
        .arg("--output")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut running = Running::spawn(&mut command);
    let stderr = running.take_stderr();
    let printed = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stderr) = stderr {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        }
        text
    });
    (running, printed)
}

#[test]
fn a_failed_export_says_how_far_it_got_and_the_command_that_resumes_it() {
    // Enough pages that the export is still under way when the API goes down.
    let server = Server::start_with(SandboxConfig {
        conversations: 200,
        ..sandbox_config()
    });
    let scratch = Scratch::new();
    let path = scratch.join("conversations.jsonl");
    let args = [
        "--retry-for",
        "1s",
        "conversations",
        "export",
        "--page-size",
        "2",
    ];
    let (mut export, printed) = start_slow_export_keeping_stderr(&server, &args, &path);
    wait_for_checkpoint(&path, 4);
    // The API goes down for good: each request retries for --retry-for, then the export ends.
    server
        .sandbox()
        .set_faults(FaultConfig {
            unavailable: 1.0,
            ..FaultConfig::none()
        })
        .ok();
    let status = export.wait_for(crate::support::TIME_LIMIT);
    let stderr = printed.join().unwrap_or_default();
    assert_eq!(status.code(), Some(5), "{stderr}");
    assert!(!stderr.contains(KEY), "{stderr}");
    assert!(stderr.contains("503"), "{stderr}");
    let line = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(
        line.contains(" of 200 conversations were written to"),
        "{line}"
    );
    assert!(
        line.contains("set INKEEP_ANALYTICS_API_KEY to the key given with --api-key"),
        "{line}"
    );
    let command = line
        .split_once("resume the export with: ")
        .unwrap_or_else(|| panic!("no command to resume with: {line}"))
        .1;
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"inkeep-analytics"), "{command}");
    assert!(words.contains(&"--resume"), "{command}");
    assert!(
        !words.contains(&"--api-key"),
        "the key is never printed: {command}"
    );

    // The printed command, with the key in the environment, finishes the export.
    server.sandbox().set_faults(FaultConfig::none()).ok();
    let resumed: Vec<&str> = words.iter().skip(1).copied().collect();
    let mut command = cli();
    command.env("INKEEP_ANALYTICS_API_KEY", server.sandbox().api_key());
    run(command.args(&resumed)).ok();
    assert_eq!(scratch.files(), ["conversations.jsonl"]);
    assert_exactly_once(&lines(&read(&path)), &server.raw_conversations());
}

/// The checkpoint of `path` as JSON.
#[track_caller]
fn checkpoint_of(path: &Path) -> Value {
    let mut name = path.as_os_str().to_owned();
    name.push(".checkpoint");
    parse(&read(Path::new(&name)))
}

#[test]
fn a_resume_refuses_a_partial_file_that_disagrees_with_its_checkpoint() {
    let server = server_for_a_slow_export();
    let scratch = Scratch::new();
    let path = scratch.join("conversations.jsonl");
    let partial = scratch.join("conversations.jsonl.partial");
    let mut export = start_slow_export(&server, &["conversations", "export"], "2", &path);
    wait_for_checkpoint(&path, 4);
    export.kill();
    server.sandbox().set_faults(FaultConfig::none()).ok();
    let checkpoint = checkpoint_of(&path);
    let bytes = checkpoint["bytes"].as_u64().unwrap_or_default() as usize;
    let start = checkpoint["last_record_start"].as_u64().unwrap_or_default() as usize;
    assert!(start < bytes, "{checkpoint}");
    let resume = || {
        run(server
            .cli()
            .args([
                "conversations",
                "export",
                "--page-size",
                "2",
                "--resume",
                "--output",
            ])
            .arg(&path))
    };
    let original = read(&partial);

    // The last record is not the one the checkpoint was written after.
    let mut changed = original.clone();
    let inside = start + (bytes - start) / 2;
    changed[inside] = if changed[inside] == b'x' { b'y' } else { b'x' };
    std::fs::write(&partial, &changed).unwrap_or_else(|error| panic!("{error}"));
    let output = resume();
    output.exits(2);
    assert!(
        output
            .error_line()
            .contains("is not the one its checkpoint"),
        "{}",
        output.stderr
    );
    assert_eq!(read(&partial), changed, "a refused resume changes nothing");

    // The file is shorter than the checkpoint says, as after a power loss that kept the
    // checkpoint but not the data: padding it with zeros would corrupt the export.
    std::fs::write(&partial, &original[..bytes - 1]).unwrap_or_else(|error| panic!("{error}"));
    let output = resume();
    output.exits(2);
    assert!(
        output
            .error_line()
            .contains(&format!("holds {} bytes", bytes - 1)),
        "{}",
        output.stderr
    );
    assert_eq!(
        read(&partial).len(),
        bytes - 1,
        "a refused resume changes nothing"
    );

    // Restored, it resumes.
    std::fs::write(&partial, &original).unwrap_or_else(|error| panic!("{error}"));
    resume().ok();
    assert_exactly_once(&lines(&read(&path)), &server.raw_conversations());
}

#[cfg(unix)]
#[test]
fn files_the_program_writes_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .map(|metadata| metadata.permissions().mode() & 0o777)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    };
    let server = server_for_a_slow_export();
    let scratch = Scratch::new();
    let path = scratch.join("private/conversations.jsonl");
    let mut export = start_slow_export(&server, &["conversations", "export"], "2", &path);
    wait_for_checkpoint(&path, 4);
    export.kill();
    assert_eq!(
        mode(&scratch.join("private")),
        0o700,
        "a directory it creates"
    );
    assert_eq!(
        mode(&scratch.join("private/conversations.jsonl.partial")),
        0o600
    );
    assert_eq!(
        mode(&scratch.join("private/conversations.jsonl.checkpoint")),
        0o600
    );
    server.sandbox().set_faults(FaultConfig::none()).ok();
    run(server
        .cli()
        .args([
            "conversations",
            "export",
            "--page-size",
            "2",
            "--resume",
            "--output",
        ])
        .arg(&path))
    .ok();
    assert_eq!(mode(&path), 0o600);

    // Any other output, including a file that was there and readable by everyone.
    let listing = scratch.join("list.json");
    std::fs::write(&listing, b"old").unwrap_or_else(|error| panic!("{error}"));
    std::fs::set_permissions(&listing, std::fs::Permissions::from_mode(0o644))
        .unwrap_or_else(|error| panic!("{error}"));
    run(server
        .cli()
        .args(["conversations", "list", "--output"])
        .arg(&listing))
    .ok();
    assert_eq!(mode(&listing), 0o600);
    assert_ne!(read(&listing), b"old");
}
