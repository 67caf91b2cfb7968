//! The MCP server (`inkeep-analytics mcp`) driven end to end: by rmcp's own client over the
//! program's stdio against a test sandbox, and by hand-written JSON-RPC as any other client speaks it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, GetPromptRequestParams, ReadResourceRequestParams, Tool,
};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::support::{self, CONVERSATIONS, KEY, Server};

/// A client session with the program, and what the program printed on stderr.
struct Session {
    client: RunningService<RoleClient, ()>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Session {
    /// Starts `inkeep-analytics --base-url <sandbox> mcp <args>` with the key in the environment.
    async fn start(server: &Server, args: &[&str]) -> Session {
        let mut command = support::cli();
        command
            .env("INKEEP_ANALYTICS_API_KEY", KEY)
            .args(["--base-url", server.url(), "mcp"])
            .args(args);
        let (transport, stderr) =
            TokioChildProcess::builder(tokio::process::Command::from(command))
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|error| panic!("cannot start the program: {error}"));
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            if let Some(mut stderr) = stderr {
                let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
            }
            text
        });
        let client = match tokio::time::timeout(support::TIME_LIMIT, ().serve(transport)).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => panic!("the MCP handshake failed: {error}"),
            Err(_) => panic!("the MCP handshake timed out"),
        };
        Session { client, stderr }
    }

    async fn tools(&self) -> Vec<Tool> {
        self.client
            .list_all_tools()
            .await
            .unwrap_or_else(|error| panic!("tools/list failed: {error}"))
    }

    async fn call(&self, name: &str, arguments: Value) -> CallToolResult {
        let Value::Object(arguments) = arguments else {
            panic!("arguments must be an object");
        };
        let request = CallToolRequestParams::new(name.to_string()).with_arguments(arguments);
        tokio::time::timeout(support::TIME_LIMIT, self.client.call_tool(request))
            .await
            .unwrap_or_else(|_| panic!("{name} timed out"))
            .unwrap_or_else(|error| panic!("{name} failed as a protocol error: {error}"))
    }

    /// Ends the session and returns what the program printed on stderr.
    async fn finish(self) -> String {
        let _ = self.client.cancel().await;
        tokio::time::timeout(support::TIME_LIMIT, self.stderr)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("cannot start a runtime: {error}"))
}

/// All text of a result, its notes included.
fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|content| content.as_text().map(|text| text.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn structured(result: &CallToolResult) -> &Value {
    result
        .structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("no structured content in {}", text(result)))
}

fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

fn ids(conversations: &Value) -> Vec<String> {
    conversations
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|conversation| conversation["id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn reads_queries_cuts_at_the_budget_and_refuses_writes() {
    let server = Server::start();
    let (status, page) = server.get(&format!("/conversations?limit={CONVERSATIONS}"));
    assert_eq!(status, 200);
    let expected_ids = ids(&support::parse::<Value>(&page)["conversations"]);
    let mut printed = String::new();
    runtime().block_on(async {
        let session = Session::start(&server, &["--budget", "6000"]).await;
        let info = session.client.peer_info().expect("the server introduced itself");
        let implementation = info.server_info.as_ref().expect("server info");
        assert_eq!(implementation.name, "inkeep-analytics");
        assert!(info.capabilities.tools.is_some() && info.capabilities.resources.is_some());

        // Read tools only, each annotated as such.
        let tools = session.tools().await;
        let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
        for name in ["list_conversations", "get_conversation", "list_feedback", "query_conversations", "query_property_values", "top_search_queries"] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        for tool in &tools {
            assert!(!tool.name.starts_with("log_") && !tool.name.starts_with("delete_"), "{}", tool.name);
            let annotations = tool.annotations.as_ref().expect("annotations");
            assert_eq!(annotations.read_only_hint, Some(true), "{}", tool.name);
        }
        let query = tools.iter().find(|tool| tool.name == "query_conversations").expect("query tool");
        let properties = query.input_schema.get("properties").expect("a schema of the body");
        for key in ["select", "groupBy", "where", "orderBy"] {
            assert!(properties.get(key).is_some(), "{key} missing from {properties}");
        }

        // A page too large for the budget is cut, and the note's arguments fetch the rest.
        let first = session.call("list_conversations", json!({"limit": 20})).await;
        assert!(!is_error(&first), "{}", text(&first));
        let size = text(&first).chars().count();
        assert!(size <= 6000, "a result of {size} characters");
        let continuation = &structured(&first)["_continuation"];
        assert_eq!(continuation["cut"], true, "{}", text(&first));
        let shown = continuation["shown"].as_u64().expect("a count") as usize;
        assert!(shown > 0 && shown < 20, "{continuation}");
        assert!(text(&first).contains("\"offset\":"), "{}", text(&first));
        assert_eq!(ids(&structured(&first)["conversations"]), expected_ids[..shown]);
        let next = continuation["nextArguments"].clone();
        assert_eq!(next["offset"], shown);
        assert_eq!(next["limit"], 20);
        let second = session.call("list_conversations", next).await;
        assert!(!is_error(&second), "{}", text(&second));
        let more = ids(&structured(&second)["conversations"]);
        assert!(!more.is_empty());
        assert_eq!(more, expected_ids[shown..shown + more.len()]);
        // Compact: no nulls anywhere, message lists summarised with their counts.
        assert!(!text(&second).contains(":null"), "{}", text(&second));

        // A grouped query: one row per type, counts adding up to every conversation.
        let grouped = session
            .call(
                "query_conversations",
                json!({
                    "select": [{"type": "field", "field": "type"}, {"type": "aggregation", "aggregation": "count", "field": "id"}],
                    "groupBy": [{"field": "type"}],
                }),
            )
            .await;
        assert!(!is_error(&grouped), "{}", text(&grouped));
        let rows = structured(&grouped)["data"]["result"].as_array().cloned().unwrap_or_default();
        assert!(rows.len() > 1, "{rows:?}");
        let total: u64 = rows
            .iter()
            .map(|row| row["count_id"].as_u64().unwrap_or_else(|| panic!("no count in {row}")))
            .sum();
        assert_eq!(total, CONVERSATIONS as u64, "{rows:?}");

        // A CSV export comes back as CSV text within the budget, cut between records.
        let csv = session.call("export_events_query_results", json!({})).await;
        assert!(!is_error(&csv), "{}", text(&csv));
        assert!(csv.structured_content.is_none());
        let csv_text = text(&csv);
        assert!(csv_text.chars().count() <= 6000, "{} characters", csv_text.chars().count());
        let header = csv_text.lines().next().unwrap_or_default();
        assert!(header.split(',').any(|column| column == "eventType"), "{header}");
        assert!(csv_text.contains("\"resultOffset\":"), "a cut export names the records that follow: {csv_text}");

        // One conversation in full.
        let one = session.call("get_conversation", json!({"id": expected_ids[0]})).await;
        assert!(!is_error(&one), "{}", text(&one));
        assert_eq!(structured(&one)["id"], expected_ids[0]);

        // API errors are tool errors with the status, code and request id.
        let missing = session.call("get_conversation", json!({"id": "conv_does_not_exist"})).await;
        assert!(is_error(&missing));
        let error = &structured(&missing)["error"];
        assert_eq!(error["status"], 404, "{error}");
        assert_eq!(error["code"], "not_found", "{error}");
        assert!(error["requestId"].as_str().is_some_and(|id| !id.is_empty()), "{error}");
        assert!(text(&missing).contains("404"), "{}", text(&missing));
        // Arguments that do not fit the schema are tool errors too, not protocol failures.
        let wrong = session.call("query_conversations", json!({"select": "everything"})).await;
        assert!(is_error(&wrong), "{}", text(&wrong));

        // Writes are refused without --allow-writes, saying how to offer them.
        let refused = session
            .call("delete_conversation", json!({"id": expected_ids[0]}))
            .await;
        assert!(is_error(&refused));
        assert!(text(&refused).contains("--allow-writes"), "{}", text(&refused));

        // The resources: the fields of each view and the query language.
        let resources = session
            .client
            .list_resources(None)
            .await
            .unwrap_or_else(|error| panic!("resources/list failed: {error}"));
        let uris: Vec<&str> = resources.resources.iter().map(|r| r.uri.as_str()).collect();
        assert!(uris.contains(&"inkeep-analytics://views/conversations"), "{uris:?}");
        let guide = session
            .client
            .read_resource(ReadResourceRequestParams::new("inkeep-analytics://guide/query-language"))
            .await
            .unwrap_or_else(|error| panic!("resources/read failed: {error}"));
        let guide = serde_json::to_string(&guide).unwrap_or_default();
        assert!(guide.contains("groupBy") && guide.contains("jsonContains"), "{guide}");

        // The prompts: a plan of calls for a common question.
        let prompts = session
            .client
            .list_prompts(None)
            .await
            .unwrap_or_else(|error| panic!("prompts/list failed: {error}"));
        assert!(prompts.prompts.iter().any(|prompt| prompt.name == "complaints"));
        let mut since = serde_json::Map::new();
        since.insert("since".into(), json!("2025-01-01"));
        let complaints = session
            .client
            .get_prompt(GetPromptRequestParams::new("complaints").with_arguments(since))
            .await
            .unwrap_or_else(|error| panic!("prompts/get failed: {error}"));
        let complaints = serde_json::to_string(&complaints).unwrap_or_default();
        assert!(complaints.contains("query_feedback") && complaints.contains("2025-01-01"), "{complaints}");

        for result in [&first, &second, &grouped, &one, &missing, &refused] {
            printed.push_str(&serde_json::to_string(result).unwrap_or_default());
        }
        printed.push_str(&session.finish().await);
    });
    assert!(!printed.contains(KEY), "the key was printed");
    // Nothing was deleted.
    assert_eq!(
        server.get(&format!("/conversations/{}", expected_ids[0])).0,
        200
    );
}

#[test]
fn allow_writes_offers_annotated_writes_that_work() {
    let server = Server::start();
    let mut printed = String::new();
    runtime().block_on(async {
        let session = Session::start(&server, &["--allow-writes"]).await;
        let tools = session.tools().await;
        let listing: Vec<Value> = tools
            .iter()
            .map(|tool| serde_json::to_value(tool).unwrap_or_default())
            .collect();
        // The drift check of the tool list: a spec or table edit shows here as a diff to review.
        let golden = serde_json::to_string_pretty(&listing).unwrap_or_default() + "\n";
        support::assert_golden("mcp-tools-list.json", &golden);
        let delete = tools.iter().find(|tool| tool.name == "delete_conversation").expect("delete tool");
        let annotations = delete.annotations.as_ref().expect("annotations");
        assert_eq!(annotations.read_only_hint, Some(false));
        assert_eq!(annotations.destructive_hint, Some(true));
        assert_eq!(annotations.idempotent_hint, Some(true));

        let logged = session
            .call(
                "log_conversation",
                json!({"id": "mcp-logged-1", "type": "openai", "messages": [{"role": "user", "content": "Where is the pricing page?"}]}),
            )
            .await;
        assert!(!is_error(&logged), "{}", text(&logged));
        assert_eq!(structured(&logged)["id"], "mcp-logged-1");
        printed.push_str(&text(&logged));
        let deleted = session.call("delete_conversation", json!({"id": "mcp-logged-1"})).await;
        assert!(!is_error(&deleted), "{}", text(&deleted));
        assert_eq!(structured(&deleted)["success"], true);
        printed.push_str(&session.finish().await);
    });
    assert!(!printed.contains(KEY), "the key was printed");
    assert_eq!(server.get("/conversations/mcp-logged-1").0, 404);
}

#[test]
fn tools_narrows_the_offer_and_refuses_writes_without_the_flag() {
    let server = Server::start();
    runtime().block_on(async {
        let session =
            Session::start(&server, &["--tools", "top_search_queries,get_conversation"]).await;
        let names: Vec<String> = session
            .tools()
            .await
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        assert_eq!(names, ["get_conversation", "top_search_queries"]);
        let outside = session.call("list_conversations", json!({})).await;
        assert!(
            is_error(&outside) && text(&outside).contains("--tools"),
            "{}",
            text(&outside)
        );
        session.finish().await;
    });
    let output = support::run(server.cli().args(["mcp", "--tools", "delete_feedback"]));
    output.exits(2);
    assert!(
        output.stderr.contains("--allow-writes"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains(KEY));
}

/// Reads one JSON-RPC line from the program, or fails after the time limit.
fn read_message(lines: &std::sync::mpsc::Receiver<String>) -> Value {
    let line = lines
        .recv_timeout(support::TIME_LIMIT)
        .unwrap_or_else(|_| panic!("no answer from the program in time"));
    serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line:?} is not JSON-RPC"))
}

#[test]
fn raw_json_rpc_over_stdio_with_the_sandbox_flag() {
    let mut command = support::cli();
    command
        .args(["--sandbox", "mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start: {error}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut send = |message: Value| {
        let line = format!("{message}\n");
        stdin
            .write_all(line.as_bytes())
            .unwrap_or_else(|error| panic!("cannot write: {error}"));
        stdin
            .flush()
            .unwrap_or_else(|error| panic!("cannot flush: {error}"));
    };
    send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}),
    );
    let initialized = read_message(&lines);
    assert_eq!(initialized["id"], 1, "{initialized}");
    assert_eq!(
        initialized["result"]["serverInfo"]["name"], "inkeep-analytics",
        "{initialized}"
    );
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let listed = read_message(&lines);
    assert_eq!(listed["id"], 2, "{listed}");
    let tools = listed["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        tools
            .iter()
            .any(|tool| tool["name"] == "query_semantic_threads"),
        "{listed}"
    );
    send(
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_feedback", "arguments": {"limit": 2}}}),
    );
    let called = read_message(&lines);
    assert_eq!(called["id"], 3, "{called}");
    assert_eq!(called["result"]["isError"], false, "{called}");
    let feedback = &called["result"]["structuredContent"];
    assert!(
        feedback["positiveFeedbackCount"].as_u64().is_some(),
        "{called}"
    );
    let text = called["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<Value>(text).ok().as_ref(),
        Some(feedback)
    );
    send(
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "log_feedback", "arguments": {"type": "positive", "messageId": "m"}}}),
    );
    let refused = read_message(&lines);
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    // Closing stdin ends the session and the program.
    drop(stdin);
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                assert!(status.success(), "{status}");
                break;
            }
            Ok(None) if started.elapsed() < support::TIME_LIMIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                panic!("the program did not end when its stdin closed");
            }
        }
    }
    let mut printed = String::new();
    let _ = stderr.read_to_string(&mut printed);
    assert!(!printed.contains("sk-"), "{printed}");
}

/// The body of one JSON-RPC answer, sent as JSON or as the data of a server-sent event.
fn answer(body: &str) -> Value {
    let data = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .find(|data| !data.is_empty())
        .unwrap_or(body);
    serde_json::from_str(data).unwrap_or_else(|error| panic!("{error}: {body:?}"))
}

#[test]
fn streamable_http_on_loopback() {
    let port = support::closed_port();
    let mut command = support::cli();
    command
        .args(["--sandbox", "mcp", "--http", &port.to_string()])
        .env("INKEEP_ANALYTICS_MCP_TOKEN", HTTP_TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut running = support::Running::spawn(&mut command);
    let url = format!("http://127.0.0.1:{port}/mcp");
    runtime().block_on(async {
        let http = support::http_client_builder()
            .no_proxy()
            .build()
            .unwrap_or_else(|error| panic!("{error}"));
        let post = |body: Value, session: Option<String>| {
            let mut request = http
                .post(&url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .bearer_auth(HTTP_TOKEN)
                .json(&body);
            if let Some(session) = session {
                request = request
                    .header("mcp-session-id", session)
                    .header("mcp-protocol-version", "2025-06-18");
            }
            request.timeout(support::TIME_LIMIT).send()
        };
        // The server binds before it starts its sandbox answering; wait for the port.
        let started = Instant::now();
        let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "http", "version": "0"}}});
        let response = loop {
            match post(initialize.clone(), None).await {
                Ok(response) => break response,
                Err(_) if started.elapsed() < support::TIME_LIMIT => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("the HTTP server never answered: {error}"),
            }
        };
        assert_eq!(response.status(), 200);
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.unwrap_or_default();
        assert_eq!(answer(&body)["result"]["serverInfo"]["name"], "inkeep-analytics", "{body}");
        let notified = post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}), session.clone())
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(notified.status().is_success(), "{}", notified.status());
        let called = post(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "top_search_queries", "arguments": {}}}),
            session,
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"));
        let body = called.text().await.unwrap_or_default();
        let called = answer(&body);
        assert_eq!(called["id"], 2, "{body}");
        assert_eq!(called["result"]["isError"], false, "{body}");
        assert!(called["result"]["structuredContent"]["data"]["result"].is_array(), "{body}");
    });
    running.kill();
}

/// The token the HTTP tests give the server.
const HTTP_TOKEN: &str = "test-token-5b7e0c2a9f1d4e68";

/// `mcp --http 0` on a sandbox of its own: the running program, its endpoint, the line it
/// announced itself with, and the rest of its stderr as it comes.
struct HttpServer {
    running: support::Running,
    url: String,
    banner: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl HttpServer {
    /// Starts the program with `args` after `mcp --http 0` and waits for its announcement.
    fn start(args: &[&str], env: &[(&str, &str)]) -> HttpServer {
        let mut command = support::cli();
        command
            .args(["--sandbox", "mcp", "--http", "0"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut running = support::Running::spawn(&mut command);
        let Some(pipe) = running.take_stderr() else {
            panic!("no stderr");
        };
        let (sender, stderr) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let banner = loop {
            match stderr.recv_timeout(support::TIME_LIMIT) {
                Ok(line) if line.contains("MCP server listening on") => break line,
                Ok(_) => {}
                Err(error) => panic!("the server did not announce itself: {error}"),
            }
        };
        let url = banner
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {banner:?}"))
            .to_string();
        HttpServer {
            running,
            url,
            banner,
            stderr,
        }
    }

    /// The token the server generated, from its announcement.
    fn generated_token(&self) -> String {
        let after = self
            .banner
            .split_once("Bearer ")
            .unwrap_or_else(|| panic!("no token in {:?}", self.banner))
            .1;
        after
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect()
    }

    /// Stops the program and returns everything it printed on stderr.
    fn finish(mut self) -> String {
        self.running.kill();
        let mut printed = self.banner;
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            printed.push('\n');
            printed.push_str(&line);
        }
        printed
    }
}

/// An `initialize` request as a raw POST, with the given extra headers; its status and body.
async fn raw_initialize(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let http = support::http_client_builder()
        .no_proxy()
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .timeout(support::TIME_LIMIT)
        .send()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[test]
fn http_refuses_a_foreign_origin_and_a_missing_or_wrong_token() {
    let server = HttpServer::start(&[], &[("INKEEP_ANALYTICS_MCP_TOKEN", HTTP_TOKEN)]);
    assert!(
        !server.banner.contains(HTTP_TOKEN),
        "a token the user gave is not printed: {}",
        server.banner
    );
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    let bearer = format!("Bearer {HTTP_TOKEN}");
    runtime().block_on(async {
        let url = &server.url;
        let (status, body) = raw_initialize(url, &[("origin", "http://evil.example")]).await;
        assert_eq!(status, 403, "a foreign origin without a token: {body}");
        let (status, body) = raw_initialize(
            url,
            &[
                ("origin", "http://evil.example"),
                ("authorization", &bearer),
            ],
        )
        .await;
        assert_eq!(status, 403, "a foreign origin with the token: {body}");
        let (status, body) = raw_initialize(url, &[]).await;
        assert_eq!(status, 401, "no token: {body}");
        let (status, _) = raw_initialize(
            url,
            &[("authorization", "Bearer test-token-5b7e0c2a9f1d4e69")],
        )
        .await;
        assert_eq!(status, 401, "a wrong token");
        let (status, _) = raw_initialize(url, &[("authorization", HTTP_TOKEN)]).await;
        assert_eq!(status, 401, "the token without its scheme");
        let (status, body) = raw_initialize(
            url,
            &[
                ("origin", "http://localhost:5173"),
                ("authorization", &bearer),
            ],
        )
        .await;
        assert_eq!(status, 200, "a loopback origin with the token: {body}");
        let (status, body) = raw_initialize(url, &[("authorization", &bearer)]).await;
        assert_eq!(status, 200, "the token, no origin: {body}");
        assert_eq!(
            answer(&body)["result"]["serverInfo"]["name"],
            "inkeep-analytics"
        );
    });
    let printed = server.finish();
    assert!(!printed.contains(HTTP_TOKEN), "{printed}");
}

#[test]
fn http_origins_listed_with_allow_origin_are_accepted() {
    let server = HttpServer::start(
        &[
            "--http-token",
            HTTP_TOKEN,
            "--allow-origin",
            "https://app.example.com",
        ],
        &[],
    );
    let bearer = format!("Bearer {HTTP_TOKEN}");
    runtime().block_on(async {
        let (status, body) = raw_initialize(
            &server.url,
            &[
                ("origin", "https://app.example.com"),
                ("authorization", &bearer),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, _) = raw_initialize(
            &server.url,
            &[
                ("origin", "https://app.example.com:8443"),
                ("authorization", &bearer),
            ],
        )
        .await;
        assert_eq!(status, 403, "another port is another origin");
    });
    server.finish();
}

#[test]
fn rmcp_client_over_http_needs_the_generated_token() {
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let server = HttpServer::start(&[], &[]);
    let token = server.generated_token();
    assert_eq!(token.len(), 64, "{}", server.banner);
    support::install_crypto_provider();
    let connect = |config: StreamableHttpClientTransportConfig| async move {
        let transport = StreamableHttpClientTransport::from_config(config);
        match tokio::time::timeout(support::TIME_LIMIT, ().serve(transport)).await {
            Ok(served) => served.map_err(|error| error.to_string()),
            Err(_) => panic!("the MCP handshake timed out"),
        }
    };
    runtime().block_on(async {
        let refused = connect(StreamableHttpClientTransportConfig::with_uri(
            server.url.as_str(),
        ))
        .await;
        assert!(refused.is_err(), "a client without the token was served");
        let wrong = connect(
            StreamableHttpClientTransportConfig::with_uri(server.url.as_str())
                .auth_header("0".repeat(64)),
        )
        .await;
        assert!(wrong.is_err(), "a client with a wrong token was served");
        let mut foreign = std::collections::HashMap::new();
        foreign.insert(
            reqwest::header::ORIGIN,
            reqwest::header::HeaderValue::from_static("http://evil.example"),
        );
        let from_a_page = connect(
            StreamableHttpClientTransportConfig::with_uri(server.url.as_str())
                .auth_header(token.clone())
                .custom_headers(foreign),
        )
        .await;
        assert!(from_a_page.is_err(), "a foreign origin was served");

        let client = match connect(
            StreamableHttpClientTransportConfig::with_uri(server.url.as_str())
                .auth_header(token.clone()),
        )
        .await
        {
            Ok(client) => client,
            Err(error) => panic!("the client with the token was refused: {error}"),
        };
        let tools = client
            .list_all_tools()
            .await
            .unwrap_or_else(|error| panic!("tools/list failed: {error}"));
        assert!(tools.iter().any(|tool| tool.name == "list_conversations"));
        assert!(
            !tools.iter().any(|tool| tool.name.starts_with("delete_")),
            "read-only by default"
        );
        let called = client
            .call_tool(CallToolRequestParams::new("top_search_queries"))
            .await
            .unwrap_or_else(|error| panic!("top_search_queries failed: {error}"));
        assert_eq!(called.is_error, Some(false), "{}", text(&called));
        let _ = client.cancel().await;
    });
    let printed = server.finish();
    assert_eq!(
        printed.matches(&token).count(),
        1,
        "the generated token is printed once: {printed}"
    );
}

#[test]
fn http_without_a_token_is_refused_for_writes_and_off_loopback() {
    let writes = support::run(support::cli().args([
        "--sandbox",
        "mcp",
        "--http",
        "0",
        "--allow-writes",
        "--no-http-token",
    ]));
    writes.exits(2);
    assert!(
        writes.error_line().contains("--allow-writes"),
        "{}",
        writes.stderr
    );
    let exposed = support::run(support::cli().args([
        "--sandbox",
        "mcp",
        "--http",
        "0",
        "--bind",
        "0.0.0.0",
        "--no-http-token",
    ]));
    exposed.exits(2);
    assert!(
        exposed.error_line().contains("not loopback"),
        "{}",
        exposed.stderr
    );
    let short = support::run(support::cli().args([
        "--sandbox",
        "mcp",
        "--http",
        "0",
        "--http-token",
        "short",
    ]));
    short.exits(2);
    assert!(
        short.error_line().contains("at least 16"),
        "{}",
        short.stderr
    );
}
