//! Every command of the program, end to end against a sandbox: what it sends and what it prints.

use std::collections::HashMap;

use httpmock::MockServer;
use serde_json::{Value, json};

use crate::support::{KEY, Scratch, Server, cli, id_of, parse, read, run, run_with_input};

/// The JSON document a command printed.
#[track_caller]
fn json_of(output: &crate::support::Output) -> Value {
    parse(output.ok().as_bytes())
}

/// The conversations of the server, decoded.
fn conversations(server: &Server) -> HashMap<String, Value> {
    server
        .raw_conversations()
        .into_iter()
        .map(|(id, text)| (id, parse(text.as_bytes())))
        .collect()
}

/// `value` without the object members that are null.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(key, value)| (key.clone(), without_nulls(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// A count, which the API sends as a number or as a string of digits.
fn count(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
}

/// The rows of a query answer.
#[track_caller]
fn rows(answer: &Value) -> Vec<Value> {
    match answer["data"]["result"].as_array() {
        Some(rows) => rows.clone(),
        None => panic!("a query answer without rows: {answer}"),
    }
}

#[test]
fn conversations_get_and_get_by_external_id_print_the_stored_conversation() {
    let server = Server::start();
    let stored = conversations(&server);
    let Some((id, conversation)) = stored.iter().find(|(_, c)| c["externalId"].is_string()) else {
        panic!("the seeded data has conversations with external ids");
    };
    let Some(external_id) = conversation["externalId"].as_str() else {
        panic!("checked above");
    };

    // `get` prints the typed model, which leaves out a field the server sent as an explicit
    // null (documented in the SDK's README); everything else is the stored conversation.
    let got = json_of(&run(server.cli().args(["conversations", "get", id])));
    assert!(
        without_nulls(&got) == without_nulls(conversation),
        "{id} differs from the stored conversation"
    );

    let by_external = json_of(&run(server.cli().args([
        "conversations",
        "get-by-external-id",
        external_id,
    ])));
    assert_eq!(by_external["id"].as_str(), Some(id.as_str()));

    // JSON lines: the same document on one line.
    let line = run(server
        .cli()
        .args(["--format", "jsonl", "conversations", "get", id]))
    .ok();
    assert_eq!(line.lines().count(), 1);
    assert_eq!(parse::<Value>(line.as_bytes()), got);
}

#[test]
fn conversations_log_reads_stdin_and_upserts() {
    let server = Server::start();
    let first = json!({
        "id": "conv_e2e_stdin",
        "type": "openai",
        "externalId": "e2e-stdin-1",
        "properties": {"plan": "pro", "note": "ünïcödé ✓"},
        "messages": [
            {"role": "user", "content": "How do I export?"},
            {"role": "assistant", "content": "Run `conversations export`."}
        ]
    });
    let logged = json_of(&run_with_input(
        server.cli().args(["conversations", "log", "-"]),
        Some(first.to_string().as_bytes()),
    ));
    assert_eq!(logged["id"], "conv_e2e_stdin");
    assert_eq!(logged["messages"].as_array().map(Vec::len), Some(2));

    let got = json_of(&run(server.cli().args([
        "conversations",
        "get",
        "conv_e2e_stdin",
    ])));
    assert_eq!(got["messages"][0]["content"], "How do I export?");
    assert_eq!(got["properties"]["note"], "ünïcödé ✓");
    let total_after_insert = conversations(&server).len();
    assert_eq!(total_after_insert, crate::support::CONVERSATIONS + 1);

    // Logging the same id again replaces the messages instead of adding a conversation.
    let mut second = first.clone();
    let Some(messages) = second["messages"].as_array_mut() else {
        panic!("the conversation above has messages");
    };
    messages.push(json!({"role": "user", "content": "Thanks!"}));
    run_with_input(
        server.cli().args(["conversations", "log", "-"]),
        Some(second.to_string().as_bytes()),
    )
    .ok();
    let got = json_of(&run(server.cli().args([
        "conversations",
        "get-by-external-id",
        "e2e-stdin-1",
    ])));
    assert_eq!(got["messages"].as_array().map(Vec::len), Some(3));
    assert_eq!(got["messages"][2]["content"], "Thanks!");
    assert_eq!(conversations(&server).len(), total_after_insert);
}

#[test]
fn conversations_log_reads_a_file() {
    let server = Server::start();
    let scratch = Scratch::new();
    let path = scratch.join("conversation.json");
    let body = json!({
        "id": "conv_e2e_file",
        "type": "support_ticket",
        "messages": [{"role": "user", "content": "My invoice is wrong"}]
    });
    if let Err(error) = std::fs::write(&path, body.to_string()) {
        panic!("cannot write {}: {error}", path.display());
    }
    let logged = json_of(&run(server.cli().args(["conversations", "log"]).arg(&path)));
    assert_eq!(logged["type"], "support_ticket");
    let got = json_of(&run(server.cli().args([
        "conversations",
        "get",
        "conv_e2e_file",
    ])));
    assert_eq!(got["type"], "support_ticket");
}

#[test]
fn invalid_input_is_refused_before_any_request() {
    let mock = MockServer::start();
    let anything = mock.mock(|when, then| {
        when.any_request();
        then.status(500);
    });
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["conversations", "log", "-"],
            "{\"type\": \"openai\", \"messages\": [",
            "standard input is not a conversation",
        ),
        (
            &["conversations", "log", "-"],
            "",
            "standard input is empty",
        ),
        (
            &["conversations", "log", "-"],
            "[1, 2]",
            "type must be openai",
        ),
        (
            &["conversations", "log", "-"],
            "{\"type\": \"chat\", \"messages\": []}",
            "type must be openai",
        ),
        (
            &["feedback", "submit", "-"],
            "{\"type\": \"positive\"}",
            "standard input is not feedback",
        ),
        (
            &["feedback", "submit", "-"],
            "{\"type\": \"meh\", \"messageId\": \"msg_1\"}",
            "type must be positive or negative",
        ),
        (
            &["events", "log", "-"],
            "not json",
            "standard input is not an event",
        ),
        (
            &["events", "log", "-"],
            "{\"entityType\": \"robot\", \"type\": \"x\"}",
            "entityType must be",
        ),
    ];
    for (args, input, message) in cases {
        let output = run_with_input(
            cli()
                .args(["--base-url", &mock.base_url(), "--api-key", KEY])
                .args(*args),
            Some(input.as_bytes()),
        );
        output.exits(2);
        let line = output.error_line();
        assert!(line.contains(message), "{args:?} with {input:?}: {line}");
        assert!(output.stdout.is_empty());
    }
    let output = run(cli().args([
        "--base-url",
        &mock.base_url(),
        "--api-key",
        KEY,
        "conversations",
        "log",
        "/no/such/file.json",
    ]));
    output.exits(2);
    assert!(
        output
            .error_line()
            .contains("cannot read /no/such/file.json"),
        "{}",
        output.stderr
    );
    assert_eq!(
        anything.calls(),
        0,
        "invalid input must not reach the server"
    );
}

#[test]
fn conversations_delete_removes_the_conversation() {
    let server = Server::start();
    let body = json!({"id": "conv_e2e_delete", "type": "openai", "messages": [{"role": "user", "content": "bye"}]});
    run_with_input(
        server.cli().args(["conversations", "log", "-"]),
        Some(body.to_string().as_bytes()),
    )
    .ok();
    let deleted = json_of(&run(server.cli().args([
        "conversations",
        "delete",
        "conv_e2e_delete",
    ])));
    assert_eq!(deleted["success"], true);
    run(server
        .cli()
        .args(["conversations", "get", "conv_e2e_delete"]))
    .exits(4);
    run(server
        .cli()
        .args(["conversations", "delete", "conv_e2e_delete"]))
    .exits(4);
    assert!(!conversations(&server).contains_key("conv_e2e_delete"));
}

#[test]
fn feedback_get_submit_and_delete() {
    let server = Server::start();
    let stored = server.raw_feedback();
    let Some((id, text)) = stored.iter().next() else {
        panic!("the seeded data has feedback");
    };
    let got = json_of(&run(server.cli().args(["feedback", "get", id])));
    let expected: Value = parse(text.as_bytes());
    assert_eq!(got["id"], expected["id"]);
    assert_eq!(got["messageId"], expected["messageId"]);
    assert_eq!(got["type"], expected["type"]);

    // Feedback on a message of a seeded conversation.
    let all = conversations(&server);
    let Some(message_id) = all
        .values()
        .filter_map(|c| c["messages"].as_array())
        .flatten()
        .find_map(|m| m["id"].as_str())
    else {
        panic!("the seeded conversations have messages");
    };
    let body =
        json!({"type": "negative", "messageId": message_id, "details": "Missing: the CSV columns"});
    let submitted = json_of(&run_with_input(
        server.cli().args(["feedback", "submit", "-"]),
        Some(body.to_string().as_bytes()),
    ));
    let Some(new_id) = submitted["id"].as_str() else {
        panic!("submitted feedback has an id: {submitted}");
    };
    let got = json_of(&run(server.cli().args(["feedback", "get", new_id])));
    assert_eq!(got["details"], "Missing: the CSV columns");
    assert_eq!(got["type"], "negative");
    assert_eq!(server.raw_feedback().len(), stored.len() + 1);

    let deleted = json_of(&run(server.cli().args(["feedback", "delete", new_id])));
    assert_eq!(deleted["success"], true);
    run(server.cli().args(["feedback", "get", new_id])).exits(4);
    assert_eq!(server.raw_feedback().len(), stored.len());
}

#[test]
fn feedback_list_holds_both_lists() {
    let server = Server::start();
    let page = json_of(&run(server
        .cli()
        .args(["feedback", "list", "--limit", "3"])));
    assert!(
        page["positiveFeedback"]
            .as_array()
            .is_some_and(|list| list.len() <= 3)
    );
    assert!(
        page["negativeFeedback"]
            .as_array()
            .is_some_and(|list| list.len() <= 3)
    );
    let lines = run(server
        .cli()
        .args(["--format", "jsonl", "feedback", "list", "--limit", "3"]))
    .ok();
    let records: Vec<Value> = lines.lines().map(|line| parse(line.as_bytes())).collect();
    let positive = records.iter().filter(|r| r["list"] == "positive").count();
    let negative = records.iter().filter(|r| r["list"] == "negative").count();
    assert_eq!(
        positive,
        page["positiveFeedback"].as_array().map_or(0, Vec::len)
    );
    assert_eq!(
        negative,
        page["negativeFeedback"].as_array().map_or(0, Vec::len)
    );
}

#[test]
fn events_log_reads_stdin() {
    let server = Server::start();
    let body =
        json!({"entityType": "search", "type": "search_performed", "searchQuery": "e2e pricing"});
    let logged = json_of(&run_with_input(
        server.cli().args(["events", "log", "-"]),
        Some(body.to_string().as_bytes()),
    ));
    assert_eq!(logged["searchQuery"], "e2e pricing");
    // The SDK names an event sent without an id (a UUID), so that a retry cannot log it twice.
    assert!(
        logged["id"].as_str().is_some_and(|id| id.len() == 36),
        "{logged}"
    );
    // The event is stored: the events view finds it.
    let answer = json_of(&run(server.cli().args([
        "query",
        "events",
        "--where",
        "searchQuery = \"e2e pricing\"",
    ])));
    assert_eq!(rows(&answer).len(), 1);
}

#[test]
fn where_filters_select_exactly_the_matching_conversations() {
    let server = Server::start();
    let all = conversations(&server);
    let expected_ids = |keep: &dyn Fn(&Value) -> bool| {
        let mut ids: Vec<String> = all
            .iter()
            .filter(|(_, c)| keep(c))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    };
    let queried_ids = |filter: &str| {
        let answer = json_of(&run(server.cli().args([
            "query",
            "conversations",
            "--where",
            filter,
            "--select",
            "id",
        ])));
        let mut ids: Vec<String> = rows(&answer)
            .iter()
            .map(|row| id_of(&row.to_string()))
            .collect();
        ids.sort();
        ids
    };

    let tickets = expected_ids(&|c| c["type"] == "support_ticket");
    assert!(!tickets.is_empty());
    assert_eq!(queried_ids("type = \"support_ticket\""), tickets);

    let not_openai = expected_ids(&|c| c["type"] != "openai");
    assert_eq!(queried_ids("type != \"openai\""), not_openai);
    assert_eq!(
        queried_ids("type in [\"support_ticket\", \"support_copilot\"]"),
        not_openai
    );
    assert_eq!(queried_ids("type not in [\"openai\"]"), not_openai);

    let pro = expected_ids(&|c| c["properties"]["plan"] == "pro");
    assert!(!pro.is_empty() && pro.len() < all.len());
    assert_eq!(queried_ids("properties.plan = \"pro\""), pro);

    let pro_tickets =
        expected_ids(&|c| c["properties"]["plan"] == "pro" && c["type"] == "support_ticket");
    assert_eq!(
        queried_ids("(properties.plan = \"pro\") and type = \"support_ticket\""),
        pro_tickets
    );
    let either =
        expected_ids(&|c| c["properties"]["plan"] == "pro" || c["type"] == "support_ticket");
    assert_eq!(
        queried_ids("properties.plan = \"pro\" or type = \"support_ticket\""),
        either
    );
}

#[test]
fn where_comparisons_and_order_by() {
    let server = Server::start();
    let answer = json_of(&run(server.cli().args([
        "query",
        "conversations",
        "--where",
        "userMessageCount >= 2",
        "--select",
        "id",
        "--select",
        "userMessageCount",
        "--select",
        "firstMessageTime",
        "--order-by",
        "firstMessageTime:desc",
    ])));
    let matching = rows(&answer);
    assert!(!matching.is_empty());
    assert!(
        matching
            .iter()
            .all(|row| count(&row["userMessageCount"]).is_some_and(|n| n >= 2)),
        "{matching:?}"
    );
    let times: Vec<&str> = matching
        .iter()
        .filter_map(|row| row["firstMessageTime"].as_str())
        .collect();
    assert_eq!(times.len(), matching.len());
    assert!(
        times.windows(2).all(|pair| pair[0] >= pair[1]),
        "ordered by firstMessageTime, newest first"
    );

    let fewer = json_of(&run(server.cli().args([
        "query",
        "conversations",
        "--where",
        "userMessageCount < 2",
        "--select",
        "id",
    ])));
    let all = json_of(&run(server.cli().args([
        "query",
        "conversations",
        "--select",
        "id",
    ])));
    assert_eq!(matching.len() + rows(&fewer).len(), rows(&all).len());
}

#[test]
fn group_by_counts_add_up() {
    let server = Server::start();
    let all = conversations(&server);
    let answer = json_of(&run(server.cli().args([
        "query",
        "conversations",
        "--select",
        "type",
        "--select",
        "count:id",
        "--group-by",
        "type",
    ])));
    let mut counted = 0;
    for row in rows(&answer) {
        let expected = all.values().filter(|c| c["type"] == row["type"]).count() as u64;
        assert_eq!(count(&row["count_id"]), Some(expected), "{row}");
        counted += expected;
    }
    assert_eq!(counted, all.len() as u64);
}

#[test]
fn every_view_is_queried_as_json_and_as_csv() {
    let server = Server::start();
    let cases: &[(&str, &[&str])] = &[
        (
            "conversations",
            &[
                "--where",
                "type = \"openai\"",
                "--select",
                "id",
                "--select",
                "type",
            ],
        ),
        (
            "events",
            &[
                "--where",
                "eventType = \"search\"",
                "--select",
                "id",
                "--select",
                "searchQuery",
            ],
        ),
        (
            "feedback",
            &[
                "--where",
                "type = \"negative\"",
                "--select",
                "id",
                "--select",
                "type",
            ],
        ),
        (
            "semantic-threads",
            &[
                "--where",
                "messagesCount >= 1",
                "--select",
                "id",
                "--select",
                "subject",
            ],
        ),
    ];
    for (view, args) in cases {
        let answer = json_of(&run(server.cli().args(["query", view]).args(*args)));
        let json_rows = rows(&answer);
        assert!(
            !json_rows.is_empty(),
            "{view}: the sandbox has matching rows"
        );

        let text = run(server.cli().args(["query", view, "--csv"]).args(*args)).ok();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = match reader.headers() {
            Ok(header) => header.iter().map(str::to_string).collect(),
            Err(error) => panic!("{view}: invalid CSV: {error}\n{text}"),
        };
        assert!(
            header.iter().any(|column| column == "id"),
            "{view}: {header:?}"
        );
        let records: Vec<csv::StringRecord> = match reader.records().collect() {
            Ok(records) => records,
            Err(error) => panic!("{view}: invalid CSV: {error}\n{text}"),
        };
        assert_eq!(
            records.len(),
            json_rows.len(),
            "{view}: the CSV has the rows of the JSON answer"
        );
        let id_column = header.iter().position(|column| column == "id").unwrap_or(0);
        let mut csv_ids: Vec<&str> = records
            .iter()
            .filter_map(|record| record.get(id_column))
            .collect();
        let mut json_ids: Vec<&str> = json_rows
            .iter()
            .filter_map(|row| row["id"].as_str())
            .collect();
        csv_ids.sort_unstable();
        json_ids.sort_unstable();
        assert_eq!(csv_ids, json_ids, "{view}");
    }
}

#[test]
fn query_csv_to_a_file() {
    let server = Server::start();
    let scratch = Scratch::new();
    let path = scratch.join("events.csv");
    let output = run(server
        .cli()
        .args(["query", "events", "--csv", "--select", "id", "--output"])
        .arg(&path));
    assert!(
        output.ok().is_empty(),
        "the CSV goes to the file, not to stdout"
    );
    let text = String::from_utf8_lossy(&read(&path)).into_owned();
    assert!(
        text.starts_with("id\n") || text.starts_with("id\r\n"),
        "{}",
        &text[..text.len().min(80)]
    );
    assert!(text.lines().count() > 10);
}

#[test]
fn semantic_threads_search() {
    let server = Server::start();
    let all = json_of(&run(server.cli().args([
        "query",
        "semantic-threads",
        "--select",
        "id",
        "--select",
        "question",
    ])));
    let all = rows(&all);
    assert!(!all.is_empty());
    // A word of the first question finds at least that thread.
    let Some(word) = all[0]["question"]
        .as_str()
        .and_then(|q| q.split_whitespace().find(|w| w.len() > 5))
    else {
        panic!("a question with a long word: {}", all[0]);
    };
    let word = word
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_string();
    let found = json_of(&run(server.cli().args([
        "query",
        "semantic-threads",
        "--search",
        &word,
        "--select",
        "id",
    ])));
    let found = rows(&found);
    assert!(
        !found.is_empty() && found.len() <= all.len(),
        "searching {word:?}"
    );
    assert!(found.iter().any(|row| row["id"] == all[0]["id"]));
    // --search is for semantic threads only, and refused locally elsewhere.
    let output = run(server
        .cli()
        .args(["query", "conversations", "--search", "x"]));
    output.exits(2);
    assert!(
        output
            .error_line()
            .contains("--search only applies to semantic-threads")
    );
}

#[test]
fn properties_keys_and_values() {
    let server = Server::start();
    let keys = json_of(&run(server.cli().args(["properties", "keys"])));
    let Some(keys) = keys["results"].as_array() else {
        panic!("property keys: {keys}");
    };
    assert!(keys.iter().any(|key| key == "plan"), "{keys:?}");

    let user_keys = json_of(&run(server.cli().args([
        "properties",
        "keys",
        "--field",
        "userProperties",
        "--view",
        "conversations_view",
    ])));
    assert!(
        user_keys["results"]
            .as_array()
            .is_some_and(|keys| keys.iter().any(|key| key == "email")),
        "{user_keys}"
    );

    let values = json_of(&run(server.cli().args([
        "properties",
        "values",
        "plan",
        "--limit",
        "2",
    ])));
    let Some(values) = values["results"].as_array() else {
        panic!("property values: {values}");
    };
    assert!(!values.is_empty() && values.len() <= 2, "{values:?}");
    let plans = ["free", "pro", "enterprise"];
    assert!(
        values
            .iter()
            .all(|value| value.as_str().is_some_and(|v| plans.contains(&v))),
        "{values:?}"
    );

    run(server.cli().args(["properties", "keys", "--field", "nope"])).exits(2);
    run(server
        .cli()
        .args(["properties", "keys", "--view", "nope_view"]))
    .exits(2);
    run(server
        .cli()
        .args(["properties", "values", "plan", "--limit", "0"]))
    .exits(2);
}

#[test]
fn search_statistics() {
    let server = Server::start();
    let top = json_of(&run(server.cli().args([
        "--format",
        "json",
        "search",
        "top-queries",
    ])));
    let Some(top) = top.as_array() else {
        panic!("top queries as a JSON array of rows: {top}");
    };
    assert!(!top.is_empty());
    let counts: Vec<u64> = top.iter().filter_map(|row| count(&row["count"])).collect();
    assert_eq!(counts.len(), top.len());
    assert!(
        counts.windows(2).all(|pair| pair[0] >= pair[1]),
        "most frequent first"
    );

    let later = json_of(&run(server.cli().args([
        "--format",
        "json",
        "search",
        "top-queries",
        "--after",
        "2025-06-01",
    ])));
    let later_total: u64 = later.as_array().map_or(0, |rows| {
        rows.iter().filter_map(|row| count(&row["count"])).sum()
    });
    assert!(
        later_total < counts.iter().sum::<u64>(),
        "--after counts fewer searches"
    );

    let weekly = json_of(&run(server.cli().args([
        "--format",
        "json",
        "search",
        "weekly-users",
    ])));
    assert!(
        weekly
            .as_array()
            .is_some_and(|rows| !rows.is_empty()
                && rows.iter().all(|row| count(&row["unique_users"]).is_some())),
        "{weekly}"
    );
    let none = json_of(&run(server.cli().args([
        "--format",
        "json",
        "search",
        "weekly-users",
        "--project-id",
        "proj_nope",
    ])));
    assert_eq!(none, json!([]));
    // An `after` the sandbox cannot read is its 400, another API error.
    run(server
        .cli()
        .args(["search", "top-queries", "--after", "yesterday"]))
    .exits(5);
}

#[test]
fn the_environment_variables_configure_the_client() {
    let server = Server::start();
    let page = json_of(&run(server.cli_from_env().args([
        "conversations",
        "list",
        "--limit",
        "2",
    ])));
    assert_eq!(page["conversations"].as_array().map(Vec::len), Some(2));
    // The flag wins over the variable.
    let output =
        run(server
            .cli_from_env()
            .args(["--api-key", "sk-wrong", "conversations", "list"]));
    output.exits(3);
}

#[test]
fn output_writes_a_file_instead_of_stdout() {
    let server = Server::start();
    let scratch = Scratch::new();
    let path = scratch.join("page.json");
    let printed = run(server
        .cli()
        .args(["conversations", "list", "--limit", "4", "--output"])
        .arg(&path))
    .ok();
    assert!(printed.is_empty());
    let page: Value = parse(&read(&path));
    assert_eq!(page["conversations"].as_array().map(Vec::len), Some(4));
}
