//! `record` and `spool status` end to end: JSON lines shipped to a sandbox, malformed lines, and
//! runs with a spool killed with SIGKILL at random points, with the API down and then through a
//! faulty network, after which the server holds exactly what was recorded, at its latest version.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use inkeep_analytics_sandbox::FaultConfig;
use serde_json::{Value, json};

use crate::support::{Running, Server, cli, parse, run, run_with_input};

/// A directory under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "inkeep-cli-{name}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ u128::from(rand_seed())
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(Instant::now())
}

/// Session `s` of round `r` after `turns` turns.
fn conversation(r: usize, s: usize, turns: usize) -> Value {
    let mut messages = Vec::new();
    for t in 1..=turns {
        messages.push(
            json!({"role": "user", "content": format!("q{t}"), "id": format!("k{r}s{s}-u{t}")}),
        );
        messages.push(json!({"role": "assistant", "content": format!("a{t}"), "id": format!("k{r}s{s}-a{t}")}));
    }
    json!({"conversation": {"type": "openai", "id": format!("k{r}s{s}"), "messages": messages}})
}

/// Interleaved sessions of 4 turns, each with feedback after its first turn and an event after its last.
fn lines(round: usize, sessions: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut state = 7 + round as u64;
    let mut done = vec![0usize; sessions];
    while done.iter().any(|d| *d < 4) {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let s = (state >> 33) as usize % sessions;
        if done[s] == 4 {
            continue;
        }
        done[s] += 1;
        out.push(conversation(round, s, done[s]));
        if done[s] == 1 {
            out.push(json!({"feedback": {"id": format!("k{round}f{s}"), "messageId": format!("k{round}s{s}-a1"), "type": "positive"}}));
        }
        if done[s] == 4 {
            out.push(json!({"event": {"entityType": "conversation", "conversationId": format!("k{round}s{s}"), "type": "kill_sim", "id": format!("k{round}e{s}")}}));
        }
    }
    out
}

/// What the server must hold after the first `k` lines were recorded: the latest version of
/// each conversation among them (its message ids), and the feedback among them.
fn check_prefix(server: &Server, lines: &[Value], k: usize) {
    let mut latest: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut feedback = std::collections::BTreeSet::new();
    for line in &lines[..k] {
        if let Some(c) = line.get("conversation") {
            let ids = c["messages"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(|m| m["id"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            latest.insert(c["id"].as_str().unwrap_or_default().to_string(), ids);
        }
        if let Some(f) = line.get("feedback") {
            feedback.insert(f["id"].as_str().unwrap_or_default().to_string());
        }
    }
    for line in lines {
        if let Some(c) = line.get("conversation") {
            let id = c["id"].as_str().unwrap_or_default();
            let (status, body) = server.get(&format!("/conversations/{id}"));
            match latest.get(id) {
                Some(expected) => {
                    assert_eq!(status, 200, "conversation {id} was recorded (k = {k})");
                    let stored: Value = parse(&body);
                    let ids: Vec<String> = stored["messages"]
                        .as_array()
                        .map(|m| {
                            m.iter()
                                .filter_map(|m| m["id"].as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    assert_eq!(
                        &ids, expected,
                        "conversation {id} is at its latest recorded version (k = {k})"
                    );
                }
                None => assert_eq!(
                    status, 404,
                    "conversation {id} was never recorded (k = {k})"
                ),
            }
        }
        if let Some(f) = line.get("feedback") {
            let id = f["id"].as_str().unwrap_or_default();
            let (status, _) = server.get(&format!("/feedback/{id}"));
            let expected = if feedback.contains(id) { 200 } else { 404 };
            assert_eq!(status, expected, "feedback {id} (k = {k})");
        }
    }
}

fn spool_status(dir: &Path) -> Value {
    if !dir.exists() {
        return json!({"lastSequence": 0, "pending": 0, "feedback": 0, "events": 0});
    }
    let output = run(cli().args(["spool", "status", "--format", "json"]).arg(dir));
    parse(output.ok().as_bytes())
}

/// A base URL where nothing listens: the API is down.
fn down_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn record_ships_lines_and_skips_malformed_ones() {
    let server = Server::start();
    let mut input = String::new();
    for line in [conversation(90, 0, 1), conversation(90, 0, 2)] {
        input.push_str(&line.to_string());
        input.push('\n');
    }
    input.push_str("{\"conversation\": \n");
    input.push_str(
        &json!({"feedback": {"id": "k90f0", "messageId": "k90s0-a2", "type": "negative"}})
            .to_string(),
    );
    input.push('\n');
    let output = run_with_input(server.cli().args(["record", "-"]), Some(input.as_bytes()));
    output.exits(2);
    assert!(
        output.stderr.contains("line 3: not a record"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("1 malformed") && output.stderr.contains("pending 0"),
        "{}",
        output.stderr
    );
    let (status, body) = server.get("/conversations/k90s0");
    assert_eq!(status, 200);
    let stored: Value = parse(&body);
    assert_eq!(stored["messages"].as_array().map(Vec::len), Some(4));
    assert_eq!(server.get("/feedback/k90f0").0, 200);
    let ok = run_with_input(
        server.cli().args(["record", "-"]),
        Some(conversation(91, 0, 1).to_string().as_bytes()),
    );
    ok.exits(0);
}

#[test]
fn record_with_the_api_down_exits_non_zero_and_keeps_everything_in_the_spool() {
    let dir = TempDir::new("down");
    let input = format!("{}\n{}\n", conversation(92, 0, 1), conversation(92, 0, 2));
    let output = run_with_input(
        cli()
            .args([
                "--base-url",
                &down_url(),
                "--api-key",
                "sk-test",
                "record",
                "--wait",
                "300ms",
                "--spool",
            ])
            .arg(&dir.0)
            .arg("-"),
        Some(input.as_bytes()),
    );
    output.exits(6);
    assert!(output.stderr.contains("pending 1"), "{}", output.stderr);
    assert!(
        output.stderr.contains("\npending: conversation k92s0\n")
            || output.stderr.ends_with("\npending: conversation k92s0"),
        "the report names what was not delivered: {}",
        output.stderr
    );
    let status = spool_status(&dir.0);
    // One row per conversation: its newest version, the second line.
    assert_eq!(
        (
            status["conversations"].as_u64(),
            status["lastSequence"].as_u64()
        ),
        (Some(1), Some(2)),
        "{status}"
    );
    assert_eq!(status["locked"], false);
    let text = run(cli().args(["spool", "status"]).arg(&dir.0)).ok();
    assert!(text.contains("pending: 1 records"), "{text}");
}

/// Kills a run of `record --spool` with SIGKILL at a random point while it reads its input with
/// the API down, kills the next run at a random point while it delivers through a faulty network,
/// and lets a third finish: the server then holds exactly the first `k` lines, `k` being what
/// the first run had journaled.
#[test]
fn record_with_a_spool_killed_at_random_points_loses_nothing_and_sends_nothing_stale() {
    let mut seed = rand_seed();
    for round in 0..3 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let dir = TempDir::new("kill");
        let lines = lines(round, 25);
        // Run 1: the API is down; the input arrives slowly; SIGKILL at a random point.
        let mut command = cli();
        command
            .args([
                "--base-url",
                &down_url(),
                "--api-key",
                "sk-test",
                "-q",
                "record",
                "--spool",
            ])
            .arg(&dir.0)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut running = Running::spawn(&mut command);
        let stdin = running.take_stdin();
        let text: Vec<String> = lines.iter().map(|l| format!("{l}\n")).collect();
        let writer = std::thread::spawn(move || {
            if let Some(mut stdin) = stdin {
                for line in text {
                    if stdin.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                    let _ = stdin.flush();
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        let kill_after = 100 + (seed >> 40) % 400;
        std::thread::sleep(Duration::from_millis(kill_after));
        running.kill();
        let _ = writer.join();
        let status = spool_status(&dir.0);
        // Lines are numbered from 1 as they are recorded, and with the API down none leaves the
        // spool: the newest number it holds is how many lines it took.
        let k = status["lastSequence"].as_u64().unwrap_or(0) as usize;
        assert!(k <= lines.len());

        // Run 2: through a faulty network, killed at a random point while it delivers.
        let server = Server::start();
        let faults = FaultConfig {
            unavailable: 0.1,
            dropped_connection: 0.1,
            truncated_body: 0.1,
            delayed: 0.2,
            delay: Duration::from_millis(20),
            ..FaultConfig::none()
        };
        if let Err(error) = server.sandbox().set_faults(faults) {
            panic!("faults: {error}");
        }
        let mut second = Running::spawn(
            server
                .cli()
                .args(["-q", "record", "--spool"])
                .arg(&dir.0)
                .arg("-")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        std::thread::sleep(Duration::from_millis(50 + (seed >> 20) % 300));
        second.kill();

        // Run 3: the network is fine; it delivers what is left and exits 0.
        if let Err(error) = server.sandbox().set_faults(FaultConfig::none()) {
            panic!("faults: {error}");
        }
        let output = run(server
            .cli()
            .args(["record", "--spool"])
            .arg(&dir.0)
            .arg("-"));
        output.exits(0);
        check_prefix(&server, &lines, k);
        let left = spool_status(&dir.0);
        assert_eq!(
            left["pending"], 0,
            "round {round}, killed after {kill_after} ms: {left}"
        );
    }
}

/// A stand-in API that takes every write at once and remembers the id of each, on a runtime of
/// its own that stops with it.
struct Sink {
    url: String,
    ids: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Sink {
    fn start() -> Self {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => panic!("cannot start a runtime for the sink: {error}"),
        };
        let ids = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let kept = std::sync::Arc::clone(&ids);
        let take = move |body: axum::body::Bytes| {
            let kept = std::sync::Arc::clone(&kept);
            async move {
                let id = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|value| value.get("id")?.as_str().map(str::to_owned));
                if let (Some(id), Ok(mut ids)) = (id, kept.lock()) {
                    ids.insert(id);
                }
                body
            }
        };
        let app = axum::Router::new().route("/events", axum::routing::post(take));
        let listener = match runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")) {
            Ok(listener) => listener,
            Err(error) => panic!("cannot listen: {error}"),
        };
        let url = match listener.local_addr() {
            Ok(address) => format!("http://{address}"),
            Err(error) => panic!("no address: {error}"),
        };
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            ids,
            _runtime: runtime,
        }
    }

    fn received(&self) -> usize {
        self.ids.lock().map(|ids| ids.len()).unwrap_or(0)
    }
}

/// A batch of 50,000 records, five times the queue in memory, read faster than it is delivered
/// and without a spool: `record` waits for room instead of dropping, and every record arrives.
#[test]
fn record_without_a_spool_loads_a_batch_five_times_the_queue_without_losing_any() {
    const RECORDS: usize = 50_000;
    let sink = Sink::start();
    let dir = TempDir::new("batch");
    if let Err(error) = std::fs::create_dir_all(&dir.0) {
        panic!("cannot create {}: {error}", dir.0.display());
    }
    let path = dir.0.join("batch.jsonl");
    let mut input = String::with_capacity(RECORDS * 80);
    for n in 0..RECORDS {
        input.push_str(&format!(
            "{{\"event\":{{\"entityType\":\"search\",\"type\":\"b\",\"searchQuery\":\"q\",\"id\":\"b{n}\"}}}}\n"
        ));
    }
    if let Err(error) = std::fs::write(&path, input) {
        panic!("cannot write {}: {error}", path.display());
    }
    let mut running = Running::spawn(
        cli()
            .args(["--base-url", &sink.url, "--api-key", "sk-test", "record"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let mut stderr = String::new();
    if let Some(mut pipe) = running.take_stderr() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    // A generous limit: the run sends one request per record.
    let status = running.wait_for(Duration::from_secs(600));
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("dropped 0"), "{stderr}");
    assert_eq!(sink.received(), RECORDS, "{stderr}");
}
