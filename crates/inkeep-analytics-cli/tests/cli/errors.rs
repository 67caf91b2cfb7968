//! The documented exit codes, the one line a failure prints, and the key kept out of every output.

use std::process::Command;
use std::time::Duration;

use httpmock::{Method::GET, MockServer};
use serde_json::json;

use crate::support::{KEY, Output, Server, WEB_KEY, cli, closed_port, run, run_with_input};

/// A program pointed at a port where nothing listens, so that any request it sent would fail with 6.
fn unreachable() -> Command {
    let mut command = cli();
    command.args([
        "--base-url",
        &format!("http://127.0.0.1:{}", closed_port()),
        "--api-key",
        KEY,
        "--retries",
        "0",
    ]);
    command
}

/// The problem+json body the API sends with an error.
fn problem(status: u16, code: &str, detail: &str, request_id: &str) -> String {
    json!({
        "title": "Internal Server Error",
        "status": status,
        "detail": detail,
        "instance": "/conversations",
        "requestId": request_id,
        "code": code,
        "error": {"message": detail, "code": code}
    })
    .to_string()
}

#[track_caller]
fn assert_line_has(output: &Output, parts: &[&str]) {
    let line = output.error_line();
    for part in parts {
        assert!(
            line.contains(part),
            "{part:?} is missing from the error line: {line}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &["--bogus", "conversations", "list"],
        &["conversations", "list", "--bogus"],
        &["conversations", "frobnicate"],
        &["--format", "xml", "conversations", "list"],
        &["--timeout", "5h", "conversations", "list"],
        &["--retries", "-1", "conversations", "list"],
        &["conversations", "export", "--resume"],
        &["query", "tickets"],
        &["completions", "tcsh"],
    ];
    for args in cases {
        let output = run(unreachable().args(*args));
        output.exits(2);
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(
            output.stderr.starts_with("error: "),
            "{args:?}: {}",
            output.stderr
        );
    }
    // `--sandbox` conflicts with a key or a base URL: it brings its own.
    let output = run(cli().args(["--sandbox", "--api-key", "x", "conversations", "list"]));
    output.exits(2);
    assert!(
        output.stderr.contains("cannot be used with"),
        "{}",
        output.stderr
    );
}

#[test]
fn input_refused_locally_exits_2_with_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["conversations", "list", "--limit", "101"],
            "limit must be between 0 and 100, got 101",
        ),
        (
            &["conversations", "list", "--limit", "-1"],
            "limit must be between 0 and 100, got -1",
        ),
        (
            &["conversations", "list", "--offset", "-5"],
            "offset must be 0 or more",
        ),
        (
            &["feedback", "list", "--limit", "101"],
            "limit must be between 0 and 100",
        ),
        (
            &["conversations", "export", "--page-size", "0"],
            "--page-size must be between 1 and 100, got 0",
        ),
        (
            &["feedback", "export", "--page-size", "101"],
            "--page-size must be between 1 and 100, got 101",
        ),
        (
            &["--format", "table", "conversations", "export"],
            "not as a table",
        ),
        (
            &["query", "conversations", "--where", "type = "],
            "invalid filter: expected a JSON value",
        ),
        (
            &["query", "conversations", "--where", "type == \"openai\""],
            "invalid filter",
        ),
        (
            &["query", "conversations", "--where", "colour = \"red\""],
            "colour",
        ),
        (
            &["query", "conversations", "--where", "(type = \"openai\""],
            "expected `)`",
        ),
        (
            &[
                "query",
                "conversations",
                "--where",
                "type = \"openai\" xor id = \"x\"",
            ],
            "expected `and`, `or` or the end",
        ),
        (
            &["query", "conversations", "--select", "median:id"],
            "median:id",
        ),
        (
            &["query", "conversations", "--select", "time:fortnight"],
            "the time unit must be one of",
        ),
        (
            &["query", "conversations", "--group-by", "nope"],
            "is not a field of this view",
        ),
        (
            &["query", "conversations", "--order-by", "id:sideways"],
            "the direction must be asc or desc",
        ),
        (&["conversations", "get", ""], "empty"),
    ];
    for (args, message) in cases {
        let output = run(unreachable().args(*args));
        output.exits(2);
        assert_line_has(&output, &[message]);
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn malformed_json_input_exits_2_with_the_position() {
    let output = run_with_input(
        unreachable().args(["conversations", "log", "-"]),
        Some(b"{\"type\": \"openai\",\n \"messages\": [}"),
    );
    output.exits(2);
    assert_line_has(
        &output,
        &[
            "standard input is not a conversation as the API expects it",
            "line 2",
        ],
    );
}

#[test]
fn a_missing_key_exits_2_and_suggests_the_sandbox() {
    let output = run(cli().args(["conversations", "list"]));
    output.exits(2);
    assert_line_has(
        &output,
        &["no API key", "INKEEP_ANALYTICS_API_KEY", "--sandbox"],
    );
}

#[test]
fn a_wrong_key_exits_3_with_the_status_code_detail_and_request_id() {
    let server = Server::start();
    let output = run(cli().args([
        "--base-url",
        server.url(),
        "--api-key",
        "sk-not-the-key",
        "conversations",
        "list",
    ]));
    output.exits(3);
    assert_line_has(
        &output,
        &[
            "listing conversations failed",
            "401 Unauthorized",
            "(unauthorized)",
            "Invalid API key",
            "[request id req_",
        ],
    );
    assert!(!output.stderr.contains("sk-not-the-key"));
}

#[test]
fn a_web_key_on_a_read_exits_3_with_the_403() {
    let server = Server::start();
    let output = run(cli().args([
        "--base-url",
        server.url(),
        "--api-key",
        WEB_KEY,
        "feedback",
        "list",
    ]));
    output.exits(3);
    assert_line_has(
        &output,
        &[
            "listing feedback failed",
            "403 Forbidden",
            "(forbidden)",
            "[request id req_",
        ],
    );
    // The same key may write: a web key logs events.
    let event = json!({"entityType": "search", "type": "search_performed", "searchQuery": "web"});
    run_with_input(
        cli().args([
            "--base-url",
            server.url(),
            "--api-key",
            WEB_KEY,
            "events",
            "log",
            "-",
        ]),
        Some(event.to_string().as_bytes()),
    )
    .ok();
}

#[test]
fn an_unknown_id_exits_4() {
    let server = Server::start();
    let cases: &[(&[&str], &str)] = &[
        (
            &["conversations", "get", "conv_nope"],
            "getting conversation conv_nope failed: getConversation: API error 404 Not Found",
        ),
        (
            &["conversations", "get-by-external-id", "ext-nope"],
            "external id ext-nope failed: getConversationByExternalId: API error 404 Not Found",
        ),
        (
            &["conversations", "delete", "conv_nope"],
            "deleting conversation conv_nope failed: deleteConversation: API error 404 Not Found",
        ),
        (
            &["feedback", "get", "fb_nope"],
            "getting feedback fb_nope failed: getFeedbackById: API error 404 Not Found",
        ),
        (
            &["feedback", "delete", "fb_nope"],
            "deleting feedback fb_nope failed: deleteFeedbackById: API error 404 Not Found",
        ),
    ];
    for (args, message) in cases {
        let output = run(server.cli().args(*args));
        output.exits(4);
        assert_line_has(&output, &[message, "(not_found)", "[request id req_"]);
    }
}

#[test]
fn a_422_from_the_sandbox_exits_5() {
    let server = Server::start();
    let body = json!({"type": "positive", "messageId": "msg_does_not_exist"});
    let output = run_with_input(
        server.cli().args(["feedback", "submit", "-"]),
        Some(body.to_string().as_bytes()),
    );
    output.exits(5);
    assert_line_has(
        &output,
        &[
            "submitting the feedback failed",
            "422 Unprocessable Entity",
            "(unprocessable_entity)",
            "msg_does_not_exist",
            "[request id req_",
        ],
    );
    // Logging a conversation again with another type is the sandbox's 422 too.
    let first = json!({"id": "conv_e2e_kind", "type": "openai", "messages": [{"role": "user", "content": "Hi"}]});
    run_with_input(
        server.cli().args(["conversations", "log", "-"]),
        Some(first.to_string().as_bytes()),
    )
    .ok();
    let mut second = first.clone();
    second["type"] = json!("support_ticket");
    let output = run_with_input(
        server.cli().args(["conversations", "log", "-"]),
        Some(second.to_string().as_bytes()),
    );
    output.exits(5);
    assert_line_has(
        &output,
        &[
            "logging the conversation failed",
            "422 Unprocessable Entity",
            "[request id req_",
        ],
    );
}

#[test]
fn a_500_exits_5_after_the_retries() {
    let mock = MockServer::start();
    let failing = mock.mock(|when, then| {
        when.method(GET).path("/conversations");
        then.status(500)
            .header("content-type", "application/problem+json")
            .header("x-request-id", "req_mock_500")
            .body(problem(
                500,
                "internal_server_error",
                "The database is resting",
                "req_mock_500",
            ));
    });
    let output = run(cli().args([
        "--base-url",
        &mock.base_url(),
        "--api-key",
        KEY,
        "--retries",
        "0",
        "conversations",
        "list",
    ]));
    output.exits(5);
    assert_line_has(
        &output,
        &[
            "listing conversations failed",
            "500 Internal Server Error",
            "(internal_server_error)",
            "The database is resting",
            "[request id req_mock_500]",
        ],
    );
    assert_eq!(failing.calls(), 1, "--retries 0 sends once");

    let output = run(cli().args([
        "--base-url",
        &mock.base_url(),
        "--api-key",
        KEY,
        "--retries",
        "2",
        "conversations",
        "list",
    ]));
    output.exits(5);
    assert_eq!(failing.calls(), 1 + 3, "--retries 2 sends three times");
}

#[test]
fn an_html_error_page_still_gives_one_line() {
    let mock = MockServer::start();
    mock.mock(|when, then| {
        when.method(GET).path("/feedback/fb_1");
        then.status(503)
            .header("content-type", "text/html")
            .body("<html>\r\n<head><title>503</title></head>\r\n<body>down</body>\r\n</html>\r\n");
    });
    let output = run(cli().args([
        "--base-url",
        &mock.base_url(),
        "--api-key",
        KEY,
        "--retries",
        "0",
        "feedback",
        "get",
        "fb_1",
    ]));
    output.exits(5);
    assert_line_has(
        &output,
        &[
            "getting feedback fb_1 failed: getFeedbackById: API error 503 Service Unavailable",
            "<html>",
        ],
    );
}

#[test]
fn a_refused_connection_exits_6() {
    let output = run(unreachable().args(["conversations", "list"]));
    output.exits(6);
    assert_line_has(&output, &["listing conversations failed", "127.0.0.1"]);
}

#[test]
fn a_timeout_exits_6() {
    // The server answers long after `--timeout`, so that "cut short" (sooner than the answer) is a
    // margin no loaded machine misses, while the test itself lasts the timeout.
    const SERVER_DELAY: Duration = Duration::from_secs(30);
    let mock = MockServer::start();
    mock.mock(|when, then| {
        when.method(GET).path("/conversations");
        then.status(200).delay(SERVER_DELAY).body("{}");
    });
    let started = std::time::Instant::now();
    let output = run(cli().args([
        "--base-url",
        &mock.base_url(),
        "--api-key",
        KEY,
        "--retries",
        "0",
        "--timeout",
        "300ms",
        "conversations",
        "list",
    ]));
    output.exits(6);
    assert_line_has(&output, &["listing conversations failed"]);
    assert!(
        started.elapsed() < SERVER_DELAY,
        "--timeout cut the request short"
    );
}

#[test]
fn the_key_never_appears_in_any_output() {
    let server = Server::start();
    let mock = MockServer::start();
    // A server that echoes the key back in its error, which is retried and so also logged.
    mock.mock(|when, then| {
        when.method(GET).path("/conversations");
        then.status(503)
            .header("content-type", "application/problem+json")
            .body(problem(
                503,
                "unavailable",
                &format!("the key {KEY} is not valid here"),
                "req_echo",
            ));
    });
    let mut runs = Vec::new();
    for verbosity in [&[][..], &["-v"], &["-vv"], &["-vvv"]] {
        let commands = [
            with(server.cli(), &["conversations", "list", "--limit", "2"]),
            with(server.cli_from_env(), &["feedback", "list", "--limit", "2"]),
            with(server.cli(), &["conversations", "get", "conv_nope"]),
            with(
                server.cli(),
                &["conversations", "export", "--page-size", "25"],
            ),
            with(
                server.cli(),
                &["query", "events", "--csv", "--select", "id"],
            ),
            with(
                cli(),
                &[
                    "--base-url",
                    &mock.base_url(),
                    "--api-key",
                    KEY,
                    "--retries",
                    "1",
                    "conversations",
                    "list",
                ],
            ),
            with(unreachable(), &["conversations", "list"]),
            with(
                cli(),
                &["--sandbox", "--api-key", KEY, "conversations", "list"],
            ),
        ];
        for mut command in commands {
            runs.push(run(command.args(verbosity)));
        }
    }
    let mut help = cli();
    help.env("INKEEP_ANALYTICS_API_KEY", KEY).arg("--help");
    runs.push(run(&mut help));
    for output in &runs {
        assert!(!output.text().contains(KEY), "the key is on stdout");
        assert!(
            !output.stderr.contains(KEY),
            "the key is on stderr: {}",
            output.stderr
        );
    }
    let echoed = &runs[5];
    echoed.exits(5);
    assert!(echoed.stderr.contains("<redacted>"), "{}", echoed.stderr);
    // The logs hold the retries and the export, or the checks above would prove little.
    assert!(
        runs.iter()
            .any(|output| output.stderr.contains("WARN") && output.stderr.contains("retrying"))
    );
    assert!(
        runs.iter()
            .any(|output| output.stderr.contains("INFO")
                && output.stderr.contains("export complete"))
    );
}

/// `command` with `args` added.
fn with(mut command: Command, args: &[&str]) -> Command {
    command.args(args);
    command
}
