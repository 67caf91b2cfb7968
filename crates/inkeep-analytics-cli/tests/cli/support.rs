//! What every test shares: the real binary run with a clean environment and a time limit,
//! sandboxes on runtimes of their own, the server's own pages, golden files and scratch folders.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use inkeep_analytics_sandbox::{Sandbox, SandboxConfig};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// The program under test, built by Cargo for this test binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_inkeep-analytics");

/// The API key of the test sandboxes: tests assert it never appears in any output.
pub const KEY: &str = "sk-e2e-5f1c9a7b3d2e4d6f";

/// The web integration key of the test sandboxes: it may write but not read.
pub const WEB_KEY: &str = "wk-e2e-8d4b2f6a1c0e9b7a";

/// The seed of the test sandboxes; with [`CONVERSATIONS`] it fixes their data byte for byte.
pub const SEED: u64 = 7;

/// How many conversations a test sandbox starts with: enough for several pages, few enough to be quick.
pub const CONVERSATIONS: usize = 40;

/// How long one run of the program may take before the test kills it and fails.
pub const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Variables of a developer's environment that would change what the program does or prints:
/// its own settings, log filters, proxies (loopback requests must not go through one) and the
/// terminal's width and colours.
const INHERITED: &[&str] = &[
    "INKEEP_ANALYTICS_API_KEY",
    "INKEEP_ANALYTICS_BASE_URL",
    "INKEEP_ANALYTICS_MCP_TOKEN",
    "RUST_LOG",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "COLUMNS",
    "LINES",
    "NO_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
];

/// The program with none of the inherited variables, and help wrapped at 100 columns (clap
/// reads `COLUMNS` when standard output is not a terminal), so that goldens do not depend on
/// who runs the tests.
pub fn cli() -> Command {
    let mut command = Command::new(BIN);
    for name in INHERITED {
        command.env_remove(name);
    }
    command.env("COLUMNS", "100");
    command
}

/// What one run of the program left behind.
#[derive(Debug)]
pub struct Output {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Standard output, as bytes.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Standard output as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Fails the test unless the run succeeded, showing its stderr; returns standard output.
    #[track_caller]
    pub fn ok(&self) -> String {
        assert_eq!(
            self.code,
            Some(0),
            "the program failed; stderr:\n{}",
            self.stderr
        );
        self.text()
    }

    /// Fails the test unless the run exited with `code`.
    #[track_caller]
    pub fn exits(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code; stdout:\n{}\nstderr:\n{}",
            self.text(),
            self.stderr
        );
        self
    }

    /// The one line a failure prints on stderr, failing the test when there is not exactly one.
    #[track_caller]
    pub fn error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "a failure prints one line on stderr, got:\n{}",
            self.stderr
        );
        assert!(lines[0].starts_with("error: "), "{}", lines[0]);
        lines[0]
    }
}

/// A child process that is killed and reaped when dropped, so that a failing test leaves none behind.
pub struct Running {
    child: Child,
}

impl Running {
    /// Starts `command`.
    #[track_caller]
    pub fn spawn(command: &mut Command) -> Self {
        match command.spawn() {
            Ok(child) => Self { child },
            Err(error) => panic!("cannot start {BIN}: {error}"),
        }
    }

    /// Takes a pipe of the child's standard input.
    pub fn take_stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// Takes a pipe of the child's standard output.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Takes a pipe of the child's standard error.
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }

    /// Waits for the child to exit; kills it and fails the test after `limit`.
    #[track_caller]
    pub fn wait_for(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => {
                    self.kill();
                    panic!("{BIN} did not finish within {limit:?}; it was killed");
                }
                Err(error) => panic!("cannot wait for {BIN}: {error}"),
            }
        }
    }

    /// Kills the child (SIGKILL on Unix, so it cannot clean up) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            self.kill();
        }
    }
}

/// Reads a pipe to its end on a thread of its own, so that a child never blocks on a full pipe.
fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Runs `command` to its end, with nothing on standard input.
#[track_caller]
pub fn run(command: &mut Command) -> Output {
    run_with_input(command, None)
}

/// Runs `command` to its end as [`run`] does, killing it and failing the test only after `limit`:
/// for a long job, whose guard against a hang must not be missed by a loaded machine.
#[track_caller]
pub fn run_for(command: &mut Command, limit: Duration) -> Output {
    run_with_input_for(command, None, limit)
}

/// Runs `command` to its end, writing `input` to its standard input when given.
#[track_caller]
pub fn run_with_input(command: &mut Command, input: Option<&[u8]>) -> Output {
    run_with_input_for(command, input, TIME_LIMIT)
}

#[track_caller]
fn run_with_input_for(command: &mut Command, input: Option<&[u8]>, limit: Duration) -> Output {
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut running = Running::spawn(command);
    let writer = match (input, running.child.stdin.take()) {
        (Some(input), Some(mut stdin)) => {
            let input = input.to_vec();
            // Dropping the pipe when done closes it, so the program sees the end of its input;
            // a program that stops reading early makes the write fail, which is its right.
            Some(std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            }))
        }
        _ => None,
    };
    let stdout = drain(running.child.stdout.take());
    let stderr = drain(running.child.stderr.take());
    let status = running.wait_for(limit);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Output {
        code: status.code(),
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// The configuration of a test sandbox: the fixed seed and size, and the test keys.
pub fn sandbox_config() -> SandboxConfig {
    SandboxConfig {
        seed: SEED,
        conversations: CONVERSATIONS,
        api_keys: vec![KEY.to_string()],
        web_keys: vec![WEB_KEY.to_string()],
        ..SandboxConfig::default()
    }
}

/// A sandbox served from a runtime of its own, so that tests stay synchronous and the sandbox
/// keeps answering while a test waits for the program.
pub struct Server {
    // Declared first so that it is dropped, and stops, before its runtime.
    sandbox: Sandbox,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Server {
    /// A sandbox with [`sandbox_config`].
    pub fn start() -> Self {
        Self::start_with(sandbox_config())
    }

    /// A sandbox with `config`.
    #[track_caller]
    pub fn start_with(config: SandboxConfig) -> Self {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => panic!("cannot start a runtime for the sandbox: {error}"),
        };
        let sandbox = match runtime.block_on(Sandbox::start_with(config)) {
            Ok(sandbox) => sandbox,
            Err(error) => panic!("cannot start the sandbox: {error}"),
        };
        let http = match http_client_builder().no_proxy().build() {
            Ok(http) => http,
            Err(error) => panic!("cannot build an HTTP client: {error}"),
        };
        Self {
            sandbox,
            runtime,
            http,
        }
    }

    /// The sandbox's base URL.
    pub fn url(&self) -> &str {
        self.sandbox.base_url()
    }

    /// The sandbox itself, to change its faults.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The program pointed at this sandbox with `--base-url` and `--api-key` (its first API key).
    pub fn cli(&self) -> Command {
        let mut command = cli();
        command.args([
            "--base-url",
            self.url(),
            "--api-key",
            self.sandbox.api_key(),
        ]);
        command
    }

    /// The program pointed at this sandbox through the environment variables.
    pub fn cli_from_env(&self) -> Command {
        let mut command = cli();
        command
            .env("INKEEP_ANALYTICS_BASE_URL", self.url())
            .env("INKEEP_ANALYTICS_API_KEY", self.sandbox.api_key());
        command
    }

    /// `GET path` with the sandbox's API key, straight over HTTP: the status and the body exactly as sent.
    #[track_caller]
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let url = format!("{}{path}", self.url());
        let answer = self.runtime.block_on(async {
            let response = self
                .http
                .get(&url)
                .bearer_auth(self.sandbox.api_key())
                .send()
                .await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.bytes().await?.to_vec()))
        });
        match answer {
            Ok(answer) => answer,
            Err(error) => panic!("GET {url}: {error}"),
        }
    }

    /// `POST path` with a JSON body and the sandbox's API key: the status and the body.
    #[track_caller]
    pub fn post(&self, path: &str, body: &Value) -> (u16, Vec<u8>) {
        let url = format!("{}{path}", self.url());
        let answer = self.runtime.block_on(async {
            let response = self
                .http
                .post(&url)
                .bearer_auth(self.sandbox.api_key())
                .json(body)
                .send()
                .await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.bytes().await?.to_vec()))
        });
        match answer {
            Ok(answer) => answer,
            Err(error) => panic!("POST {url}: {error}"),
        }
    }

    /// Every conversation as the server sends it, by id, read page by page with `GET /conversations`.
    #[track_caller]
    pub fn raw_conversations(&self) -> HashMap<String, String> {
        #[derive(Deserialize)]
        struct Page {
            conversations: Vec<Box<RawValue>>,
            total: u64,
        }
        let mut records = HashMap::new();
        let mut offset = 0;
        loop {
            let (status, body) = self.get(&format!("/conversations?limit=100&offset={offset}"));
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            let page: Page = parse(&body);
            let count = page.conversations.len() as u64;
            for record in page.conversations {
                let previous = records.insert(id_of(record.get()), record.get().to_string());
                assert!(previous.is_none(), "the sandbox sent a conversation twice");
            }
            offset += count;
            if count < 100 || offset >= page.total {
                return records;
            }
        }
    }

    /// Every feedback item as the server sends it, by id, read page by page with `GET /feedback`.
    #[track_caller]
    pub fn raw_feedback(&self) -> HashMap<String, String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            positive_feedback: Vec<Box<RawValue>>,
            negative_feedback: Vec<Box<RawValue>>,
        }
        let mut records = HashMap::new();
        let mut offset = 0;
        loop {
            let (status, body) = self.get(&format!("/feedback?limit=100&offset={offset}"));
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            let page: Page = parse(&body);
            let more = page.positive_feedback.len() == 100 || page.negative_feedback.len() == 100;
            for record in page
                .positive_feedback
                .into_iter()
                .chain(page.negative_feedback)
            {
                let previous = records.insert(id_of(record.get()), record.get().to_string());
                assert!(previous.is_none(), "the sandbox sent a feedback item twice");
            }
            if !more {
                return records;
            }
            offset += 100;
        }
    }

    /// The ids of every conversation now stored, newest first, read with the query operation,
    /// which (unlike `GET /conversations`) does not set off the sandbox's concurrent inserts.
    #[track_caller]
    pub fn conversation_ids_by_query(&self) -> Vec<String> {
        let query = serde_json::json!({
            "select": [{"type": "field", "field": "id"}],
            "orderBy": [{"field": "firstMessageTime", "direction": "desc"}, {"field": "id", "direction": "asc"}],
        });
        let (status, body) = self.post("/query/conversations", &query);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: Value = parse(&body);
        let Some(rows) = answer["data"]["result"].as_array() else {
            panic!("a query answer without rows: {answer}");
        };
        assert!(
            rows.len() < 1000,
            "the query answer holds at most 1,000 rows; use fewer conversations"
        );
        rows.iter()
            .map(|row| match row["id"].as_str() {
                Some(id) => id.to_string(),
                None => panic!("a row without an id: {row}"),
            })
            .collect()
    }
}

/// Parses JSON the test expects to be valid.
#[track_caller]
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(error) => panic!("invalid JSON ({error}): {}", String::from_utf8_lossy(bytes)),
    }
}

/// The `id` of a JSON record.
#[track_caller]
pub fn id_of(record: &str) -> String {
    let value: Value = parse(record.as_bytes());
    match value["id"].as_str() {
        Some(id) => id.to_string(),
        None => panic!("a record without a string id: {record}"),
    }
}

/// A port of 127.0.0.1 on which nothing listens: one the system just gave out and took back.
#[track_caller]
pub fn closed_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()) {
        Ok(address) => address.port(),
        Err(error) => panic!("cannot find a free port: {error}"),
    }
}

/// Compares `actual` with the golden file `tests/golden/<name>`, or rewrites it when
/// `UPDATE_GOLDEN=1`. A missing golden fails: it has to be written, and reviewed, on purpose.
#[track_caller]
pub fn assert_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let actual = actual.replace("\r\n", "\n");
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|value| value == "1") {
        if let Err(error) = std::fs::write(&path, &actual) {
            panic!("cannot write {}: {error}", path.display());
        }
        return;
    }
    let expected = match std::fs::read_to_string(&path) {
        Ok(text) => text.replace("\r\n", "\n"),
        Err(error) => panic!(
            "cannot read the golden file {} ({error}); write it with \
             `UPDATE_GOLDEN=1 cargo test -p inkeep-analytics-cli --test cli` and review it",
            path.display()
        ),
    };
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, &actual)
            .unified_diff()
            .header(&format!("tests/golden/{name}"), "actual output")
            .to_string();
        panic!(
            "the output differs from tests/golden/{name}; if the change is intended, run \
             `UPDATE_GOLDEN=1 cargo test -p inkeep-analytics-cli --test cli` and review the diff:\n{diff}"
        );
    }
}

/// A scratch folder under Cargo's temporary folder for tests, removed when dropped.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A new, empty folder.
    #[track_caller]
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "cli-e2e-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        if let Err(error) = std::fs::create_dir_all(&path) {
            panic!("cannot create {}: {error}", path.display());
        }
        Self { path }
    }

    /// A path inside the folder.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The names of the files in the folder, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Reads a file the test expects to exist.
#[track_caller]
pub fn read(path: &Path) -> Vec<u8> {
    match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => panic!("cannot read {}: {error}", path.display()),
    }
}

/// The lines of JSON-lines output, failing the test when the output does not end with a newline.
#[track_caller]
pub fn lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    if text.is_empty() {
        return Vec::new();
    }
    assert!(text.ends_with('\n'), "JSON lines end with a newline");
    text.lines().map(str::to_string).collect()
}

/// A builder of the tests' own HTTP clients. The program builds rustls with ring and reqwest
/// without a crypto provider of its own, so a client built in the tests needs ring installed as
/// the process's provider first, as the SDK does for the program (`cargo test --workspace` also
/// turns on aws-lc through other crates, which hides this; `cargo test -p` does not).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// Makes ring the process's rustls crypto provider unless one is installed already.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may have installed one meanwhile: either way, one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
