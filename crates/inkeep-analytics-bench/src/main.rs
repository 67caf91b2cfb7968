//! The end-to-end benchmark harness behind `cargo xtask bench`: it serves pre-rendered pages on
//! loopback and runs the SDK, the program and the peers side by side, alternating, in one run.
//!
//! Every contender runs as its own process under `measure`, which reports its wall time and its
//! peak resident memory (the kernel's `ru_maxrss` of the one child it waited for).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use inkeep_analytics::Client;
use inkeep_analytics_bench::nginx::NginxServer;
use inkeep_analytics_bench::proxy::{Shape, ShapingProxy};
use inkeep_analytics_bench::report::{self, Measurement, Run};
use inkeep_analytics_bench::server::{API_KEY, Encoding, PageServer, Pages, ServerOptions};
use inkeep_analytics_bench::{data, floor};

mod sync_scenario;

const USAGE: &str = "\
usage: inkeep-analytics-bench <command>

commands:
  run [--profile loopback|wan] [--conversations N] [--feedback N] [--rounds N]
      [--scales N,N,..|none] [--server builtin|nginx] [--latency-ms N] [--bandwidth-mbit N]
      [--large N] [--write FILE]
        serve pre-rendered pages on 127.0.0.1 (in the WAN profile compressed, behind a shaping
        proxy) and run every contender side by side
  rate-limit [--conversations N] [--rate R] [--burst N] [--rounds N] [--write FILE]
        the program's export against a rate-limited sandbox
  sync [--conversations N] [--feedback N] [--rounds N] [--server builtin|nginx]
        `inkeep-analytics sync --db` into a new file, its re-run with nothing changed, `sync
        --parquet` and the Python loader, side by side with the SDK's scans of both listings
  build-cost [--write FILE]
        build a new crate that depends on inkeep-analytics from clean, as shipped and with the
        generated code committed instead, and compare time and crate counts
  scan --base-url URL --resource conversations|feedback|raw-conversations|floor-conversations
      [--prefetch N]
        the SDK contender: every item of a listing through the item stream (raw pages, or a
        hand-written reqwest and serde_json loop with the floor structs, to compare)
  floor --conversations N --feedback N
        single-threaded decoding of the same pages with the floor structs and the SDK's types
  serve [--conversations N] [--feedback N]
        serve the benchmark's pages on 127.0.0.1 until stopped, to profile a contender by hand
  measure -- PROGRAM [ARGS..]
        run PROGRAM, then print its wall time and peak RSS as one JSON line";

/// The seeds of the benchmark's data: the same on every run, so that runs compare.
const CONVERSATION_SEED: u64 = 20_261_121;
const FEEDBACK_SEED: u64 = 20_261_122;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&Options::parse(&args[1..])),
        Some("rate-limit") => rate_limit(&Options::parse(&args[1..])),
        Some("sync") => sync_scenario::run(&Options::parse(&args[1..])),
        Some("build-cost") => inkeep_analytics_bench::build_cost::run(
            &workspace_root(),
            Options::parse(&args[1..]).write.as_deref(),
        ),
        Some("scan") => scan(&Options::parse(&args[1..])),
        Some("floor") => floor(&Options::parse(&args[1..])),
        Some("measure") => measure(&args[1..]),
        Some("serve") => serve(&Options::parse(&args[1..])),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug)]
struct Options {
    conversations: usize,
    feedback: usize,
    rounds: usize,
    scales: Vec<usize>,
    write: Option<PathBuf>,
    base_url: Option<String>,
    resource: Option<String>,
    /// Pages fetched ahead; the SDK's default when not given.
    prefetch: Option<usize>,
    /// `loopback` or `wan`.
    profile: String,
    /// Whether `--conversations` was given: each scenario has its own default.
    conversations_set: bool,
    /// The WAN profile's latency each way.
    latency_ms: u64,
    /// The WAN profile's shared bandwidth.
    bandwidth_mbit: u64,
    /// The WAN profile's second, larger run with the peers (0 skips it).
    large: usize,
    /// The loopback profile's server: `builtin` or `nginx`.
    server: String,
    /// The rate-limit scenario's rate and burst.
    rate: f64,
    burst: u32,
}

impl Options {
    fn parse(args: &[String]) -> Self {
        let mut options = Options {
            conversations: 20_000,
            feedback: 5_000,
            rounds: 5,
            scales: vec![2_000, 20_000, 100_000],
            write: None,
            base_url: None,
            resource: None,
            prefetch: None,
            profile: "loopback".into(),
            conversations_set: false,
            latency_ms: 100,
            bandwidth_mbit: 100,
            large: 20_000,
            server: "builtin".into(),
            rate: 20.0,
            burst: 10,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().cloned().unwrap_or_default();
            let number = || value.replace('_', "").parse::<usize>().unwrap_or(0);
            match flag.as_str() {
                "--conversations" => {
                    options.conversations = number();
                    options.conversations_set = true;
                }
                "--feedback" => options.feedback = number(),
                "--rounds" => options.rounds = number().max(1),
                "--scales" => {
                    options.scales = value
                        .split(',')
                        .filter_map(|n| n.replace('_', "").parse().ok())
                        .collect()
                }
                "--write" => options.write = Some(PathBuf::from(value)),
                "--base-url" => options.base_url = Some(value),
                "--resource" => options.resource = Some(value),
                "--prefetch" => options.prefetch = Some(number()),
                "--profile" => options.profile = value,
                "--latency-ms" => options.latency_ms = number() as u64,
                "--bandwidth-mbit" => options.bandwidth_mbit = (number() as u64).max(1),
                "--large" => options.large = number(),
                "--server" => options.server = value,
                "--rate" => options.rate = value.parse().unwrap_or(20.0),
                "--burst" => options.burst = number().max(1) as u32,
                other => eprintln!("ignoring unknown argument {other}"),
            }
        }
        // The WAN profile's time targets are at 2,000 conversations (and 20,000 in its larger
        // run); its memory targets, as the loopback profile's, at 2,000, 20,000 and 100,000.
        if options.profile == "wan" && !options.conversations_set {
            options.conversations = 2_000;
        }
        options
    }
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or(manifest)
}

/// Serves the benchmark's pages until the process is stopped, printing the base URL.
///
/// `SIGINT`, `SIGTERM` and `SIGHUP` stop it cleanly: they are blocked before any thread starts
/// and waited for here, so that the dataset is dropped, which stops nginx; before, a stopped
/// `serve` left nginx running.
fn serve(options: &Options) -> Result<(), String> {
    use nix::sys::signal::{SigSet, Signal};
    let mut stop = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        stop.add(signal);
    }
    stop.thread_block()
        .map_err(|e| format!("cannot block the stop signals: {e}"))?;
    let dataset = dataset(options.conversations, options.feedback, setup(options))?;
    println!("{}", dataset.base_url());
    let signal = stop
        .wait()
        .map_err(|e| format!("cannot wait for a stop signal: {e}"))?;
    eprintln!("stopping on {signal}");
    drop(dataset);
    Ok(())
}

/// The SDK contender: every item of one listing through the item stream, touching each id.
fn scan(options: &Options) -> Result<(), String> {
    let base_url = options.base_url.clone().ok_or("scan needs --base-url")?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let records = runtime.block_on(async {
        let client = Client::builder()
            .api_key(API_KEY)
            .base_url(&base_url)
            .build()
            .map_err(|e| e.to_string())?;
        let conversations = || {
            let listing = client.list_conversations();
            match options.prefetch {
                Some(pages) => listing.prefetch(pages),
                None => listing,
            }
        };
        let mut records = 0u64;
        let mut id_bytes = 0usize;
        match options.resource.as_deref() {
            Some("conversations") => {
                let mut items = conversations().items();
                while let Some(conversation) = items.try_next().await.map_err(|e| e.to_string())? {
                    records += 1;
                    id_bytes += conversation.id().map_or(0, str::len);
                }
            }
            Some("feedback") => {
                let listing = client.list_feedback();
                let mut items = match options.prefetch {
                    Some(pages) => listing.prefetch(pages),
                    None => listing,
                }
                .items();
                while let Some(item) = items.try_next().await.map_err(|e| e.to_string())? {
                    records += 1;
                    id_bytes += item.feedback.id.len();
                }
            }
            // A scan written by hand without the SDK, for what the best plain loop gets.
            Some("floor-conversations") => {
                (records, id_bytes) = floor_scan(&base_url, options.prefetch.unwrap_or(3)).await?;
            }
            // Raw pages: the records as sent, not decoded, to see what paging itself costs.
            Some("raw-conversations") => {
                let mut pages = conversations().raw_pages();
                while let Some(page) = pages.try_next().await.map_err(|e| e.to_string())? {
                    records += page.conversations.len() as u64;
                }
            }
            other => return Err(format!("unknown resource {other:?}")),
        }
        std::hint::black_box(id_bytes);
        Ok::<u64, String>(records)
    })?;
    println!("{{\"records\":{records}}}");
    Ok(())
}

/// The conversations as a competent user scans them without the SDK: plain `reqwest` and
/// `serde_json` into the floor structs, `ahead` pages fetched and decoded in tasks of their own
/// once the first page has told the total, the same parallelism as the SDK's default. It keeps
/// nothing the floor structs do not name and has no retries, so it is a floor, not a peer.
async fn floor_scan(base_url: &str, ahead: usize) -> Result<(u64, usize), String> {
    use futures::StreamExt;
    let http = reqwest::Client::new();
    let fetch = |offset: u64| {
        let request = http
            .get(format!(
                "{base_url}/conversations?limit=100&offset={offset}"
            ))
            .bearer_auth(API_KEY);
        tokio::spawn(async move {
            let body = request
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| e.to_string())?
                .bytes()
                .await
                .map_err(|e| e.to_string())?;
            serde_json::from_slice::<floor::ConversationPage>(&body).map_err(|e| e.to_string())
        })
    };
    let first = fetch(0).await.map_err(|e| e.to_string())??;
    let (mut records, mut id_bytes) = (0u64, 0usize);
    let mut count = |page: floor::ConversationPage| {
        for conversation in page.conversations {
            records += 1;
            id_bytes += conversation.id.len();
        }
    };
    let offsets = (100..first.total).step_by(100);
    count(first);
    let mut pages = futures::stream::iter(offsets)
        .map(fetch)
        .buffered(ahead.max(1));
    while let Some(page) = pages.next().await {
        count(page.map_err(|e| e.to_string())??);
    }
    Ok((records, id_bytes))
}

/// Single-threaded decoding of every page, timed in-process after rendering: the floor the full
/// scan's wall time is held to.
fn floor(options: &Options) -> Result<(), String> {
    let conversations = data::conversation_pages(&data::conversations(
        CONVERSATION_SEED,
        options.conversations,
    ));
    let (positive, negative) = data::feedback_items(FEEDBACK_SEED, options.feedback);
    let feedback = data::feedback_pages(&positive, &negative);
    let mut timings = BTreeMap::new();
    let time = |decode: &dyn Fn(&[u8]) -> Result<(), serde_json::Error>, pages: &[bytes::Bytes]| {
        let start = Instant::now();
        for page in pages {
            decode(page)?;
        }
        Ok::<f64, serde_json::Error>(start.elapsed().as_secs_f64() * 1e3)
    };
    use inkeep_analytics::types::{ConversationList, FeedbackList};
    use inkeep_analytics_bench::floor as structs;
    let error = |e: serde_json::Error| e.to_string();
    timings.insert(
        "floor_conversations_ms",
        time(
            &|p| serde_json::from_slice::<structs::ConversationPage>(p).map(drop),
            &conversations,
        )
        .map_err(error)?,
    );
    timings.insert(
        "sdk_conversations_ms",
        time(
            &|p| serde_json::from_slice::<ConversationList>(p).map(drop),
            &conversations,
        )
        .map_err(error)?,
    );
    timings.insert(
        "floor_feedback_ms",
        time(
            &|p| serde_json::from_slice::<structs::FeedbackPage>(p).map(drop),
            &feedback,
        )
        .map_err(error)?,
    );
    timings.insert(
        "sdk_feedback_ms",
        time(
            &|p| serde_json::from_slice::<FeedbackList>(p).map(drop),
            &feedback,
        )
        .map_err(error)?,
    );
    println!(
        "{}",
        serde_json::to_string(&timings).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Runs a program and reports its wall time and peak RSS. Run as its own process, so that
/// `RUSAGE_CHILDREN` covers exactly the one child it waits for.
fn measure(args: &[String]) -> Result<(), String> {
    let command: Vec<&String> = args.iter().skip_while(|a| *a == "--").collect();
    let (program, rest) = command.split_first().ok_or("measure needs a program")?;
    let start = Instant::now();
    let output = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let wall = start.elapsed();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: String = stderr
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    let line = serde_json::json!({
        "wall_ms": wall.as_secs_f64() * 1e3,
        "max_rss_kib": usage.max_rss(),
        "code": output.status.code(),
        "stdout": String::from_utf8_lossy(&output.stdout),
        "stderr": tail,
    });
    println!("{line}");
    Ok(())
}

/// One contender: a command run under `measure`.
struct Contender {
    name: &'static str,
    command: Vec<String>,
    env: Vec<(String, String)>,
    /// Where the contender writes its export, to be checked and removed.
    output: Option<PathBuf>,
}

fn run_measured(contender: &Contender) -> Result<Measurement, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(me);
    command.arg("measure").arg("--").args(&contender.command);
    for (key, value) in &contender.env {
        command.env(key, value);
    }
    // The TypeScript SDK reads a key and debug switch of its own from the environment.
    command
        .env_remove("INKEEPANALYTICS_API_INTEGRATION_KEY")
        .env_remove("INKEEPANALYTICS_DEBUG");
    let output = command.output().map_err(|e| e.to_string())?;
    let line: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("{}: unreadable measurement: {e}", contender.name))?;
    if line["code"] != 0 {
        return Err(format!(
            "{} failed ({}): {}",
            contender.name, line["code"], line["stderr"]
        ));
    }
    let stdout = line["stdout"].as_str().unwrap_or_default();
    let records = match &contender.output {
        Some(path) => count_lines(path)?,
        None => serde_json::from_str::<serde_json::Value>(stdout.trim())
            .ok()
            .and_then(|summary| summary["records"].as_u64())
            .ok_or_else(|| format!("{}: no record count in {stdout:?}", contender.name))?,
    };
    Ok(Measurement {
        wall: Duration::from_secs_f64(line["wall_ms"].as_f64().unwrap_or(0.0) / 1e3),
        max_rss_kib: line["max_rss_kib"].as_u64().unwrap_or(0),
        records,
    })
}

fn count_lines(path: &Path) -> Result<u64, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes.iter().filter(|b| **b == b'\n').count() as u64)
}

/// The peers that can run here, installed into `target/bench-peers`, and notes on those that cannot.
struct Peers {
    python: Option<Vec<(String, String)>>,
    node: Option<PathBuf>,
    notes: Vec<String>,
}

fn prepare_peers(root: &Path) -> Peers {
    let scratch = root.join("target/bench-peers");
    let mut notes = Vec::new();
    let has = |program: &str, arg: &str| {
        Command::new(program)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let python = if !has("python3", "--version") {
        notes.push("Python peers skipped: no `python3` on this machine.".to_string());
        None
    } else if python_imports(&[]) {
        Some(Vec::new())
    } else {
        let target = scratch.join("python");
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&target)
            .arg("requests")
            .status()
            .is_ok_and(|status| status.success());
        let env = vec![("PYTHONPATH".to_string(), target.display().to_string())];
        if installed && python_imports(&env) {
            Some(env)
        } else {
            notes.push("Python peers skipped: `requests` could not be installed.".to_string());
            None
        }
    };
    let node = if !has("node", "--version") || !has("npm", "--version") {
        notes.push("TypeScript SDK peer skipped: no `node` and `npm` on this machine.".to_string());
        None
    } else {
        let dir = scratch.join("node");
        let peers = root.join("xtask/peers");
        let copied = std::fs::create_dir_all(&dir).is_ok()
            && ["package.json", "package-lock.json", "scan_ts.mjs"]
                .iter()
                .all(|file| std::fs::copy(peers.join(file), dir.join(file)).is_ok());
        let installed = copied
            && Command::new("npm")
                .args([
                    "ci",
                    "--no-audit",
                    "--no-fund",
                    "--ignore-scripts",
                    "--prefix",
                ])
                .arg(&dir)
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
        if installed {
            Some(dir.join("scan_ts.mjs"))
        } else {
            notes.push(
                "TypeScript SDK peer skipped: `npm ci` of `@inkeep/inkeep-analytics` failed."
                    .to_string(),
            );
            None
        }
    };
    Peers {
        python,
        node,
        notes,
    }
}

fn python_imports(env: &[(String, String)]) -> bool {
    let mut command = Command::new("python3");
    command.args(["-c", "import requests"]);
    for (key, value) in env {
        command.env(key, value);
    }
    command
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The conversations and feedback of one dataset, served, with what an export must contain.
struct Dataset {
    server: Serving,
    /// In the WAN profile, the shaping proxy every contender goes through.
    proxy: Option<ShapingProxy>,
    expected_export: Vec<u8>,
    conversations: usize,
    feedback: usize,
    conversation_bytes: usize,
    feedback_bytes: usize,
    /// Total bytes of the conversation pages in each encoding served.
    sizes: BTreeMap<Encoding, usize>,
}

/// What serves a dataset's pages.
enum Serving {
    Builtin(PageServer),
    Nginx(NginxServer),
}

impl Dataset {
    /// The base URL every contender is given: the proxy's when there is one.
    fn base_url(&self) -> String {
        match (&self.proxy, &self.server) {
            (Some(proxy), _) => proxy.base_url(),
            (None, Serving::Builtin(server)) => server.base_url(),
            (None, Serving::Nginx(server)) => server.base_url(),
        }
    }
}

/// How a dataset is served.
#[derive(Clone, Copy, Debug)]
struct Setup {
    /// Compress each page and put the shaping proxy in front.
    wan: Option<Shape>,
    /// Serve with nginx instead of the built-in server.
    nginx: bool,
}

fn dataset(conversations: usize, feedback: usize, setup: Setup) -> Result<Dataset, String> {
    let records = data::conversations(CONVERSATION_SEED, conversations);
    let (positive, negative) = data::feedback_items(FEEDBACK_SEED, feedback);
    let mut expected_export = Vec::with_capacity(records.iter().map(|r| r.len() + 1).sum());
    for record in &records {
        expected_export.extend_from_slice(record);
        expected_export.push(b'\n');
    }
    let pages = Pages {
        conversations: data::conversation_pages(&records),
        feedback: data::feedback_pages(&positive, &negative),
    };
    drop(records);
    let conversation_bytes = pages.conversations.iter().map(|p| p.len()).sum();
    let feedback_bytes = pages.feedback.iter().map(|p| p.len()).sum();
    let (server, sizes) = if setup.nginx {
        let server = NginxServer::start(&pages, &workspace_root().join("target/bench-nginx"))?;
        let mut sizes = BTreeMap::new();
        sizes.insert(Encoding::Identity, conversation_bytes);
        (Serving::Nginx(server), sizes)
    } else {
        let server = PageServer::start_with(
            pages,
            ServerOptions {
                compress: setup.wan.is_some(),
                ..ServerOptions::default()
            },
        )
        .map_err(|e| format!("cannot start the server: {e}"))?;
        let sizes = server.conversation_sizes().clone();
        (Serving::Builtin(server), sizes)
    };
    let proxy = match (setup.wan, &server) {
        (Some(shape), Serving::Builtin(server)) => Some(
            ShapingProxy::start(server.address(), shape)
                .map_err(|e| format!("cannot start the shaping proxy: {e}"))?,
        ),
        _ => None,
    };
    Ok(Dataset {
        server,
        proxy,
        expected_export,
        conversations,
        feedback,
        conversation_bytes,
        feedback_bytes,
        sizes,
    })
}

/// Every contender, against the dataset's base URL; without `feedback`, only those that read
/// conversations.
fn contenders(dataset: &Dataset, peers: &Peers, scratch: &Path, feedback: bool) -> Vec<Contender> {
    let me = std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let cli = std::env::current_exe()
        .ok()
        .and_then(|path| path.parent().map(|dir| dir.join("inkeep-analytics")))
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let base = dataset.base_url();
    let peers_dir = workspace_root().join("xtask/peers");
    // This harness's own `scan` over one listing.
    let own_scan = |name, resource: &str| Contender {
        name,
        command: vec![
            me.clone(),
            "scan".into(),
            "--base-url".into(),
            base.clone(),
            "--resource".into(),
            resource.into(),
        ],
        env: Vec::new(),
        output: None,
    };
    let mut list = vec![
        own_scan(report::SDK_SCAN_CONVERSATIONS, "conversations"),
        own_scan(report::FLOOR_SCAN_CONVERSATIONS, "floor-conversations"),
        own_scan(report::SDK_SCAN_FEEDBACK, "feedback"),
        Contender {
            name: report::CLI_EXPORT,
            command: vec![
                cli,
                "--quiet".into(),
                "--base-url".into(),
                base.clone(),
                "conversations".into(),
                "export".into(),
                "--output".into(),
                scratch.join("cli-export.jsonl").display().to_string(),
            ],
            env: vec![("INKEEP_ANALYTICS_API_KEY".into(), API_KEY.into())],
            output: Some(scratch.join("cli-export.jsonl")),
        },
    ];
    if let Some(env) = &peers.python {
        let script = |name: &str| peers_dir.join(name).display().to_string();
        list.push(Contender {
            name: report::PYTHON_SCAN_CONVERSATIONS,
            command: vec![
                "python3".into(),
                script("scan_requests.py"),
                base.clone(),
                API_KEY.into(),
                "conversations".into(),
            ],
            env: env.clone(),
            output: None,
        });
        list.push(Contender {
            name: report::PYTHON_SCAN_FEEDBACK,
            command: vec![
                "python3".into(),
                script("scan_requests.py"),
                base.clone(),
                API_KEY.into(),
                "feedback".into(),
            ],
            env: env.clone(),
            output: None,
        });
        list.push(Contender {
            name: report::PYTHON_EXPORT,
            command: vec![
                "python3".into(),
                script("export_requests.py"),
                base.clone(),
                API_KEY.into(),
                scratch.join("python-export.jsonl").display().to_string(),
            ],
            env: env.clone(),
            output: Some(scratch.join("python-export.jsonl")),
        });
        // The same loops with one `requests.Session()`, which keeps the connection open between
        // pages, as a Python user who writes a loop over many pages does.
        for (name, resource) in [
            (report::PYTHON_SESSION_SCAN_CONVERSATIONS, "conversations"),
            (report::PYTHON_SESSION_SCAN_FEEDBACK, "feedback"),
        ] {
            list.push(Contender {
                name,
                command: vec![
                    "python3".into(),
                    script("scan_requests.py"),
                    base.clone(),
                    API_KEY.into(),
                    resource.into(),
                    "--session".into(),
                ],
                env: env.clone(),
                output: None,
            });
        }
        list.push(Contender {
            name: report::PYTHON_SESSION_EXPORT,
            command: vec![
                "python3".into(),
                script("export_requests.py"),
                base.clone(),
                API_KEY.into(),
                scratch
                    .join("python-session-export.jsonl")
                    .display()
                    .to_string(),
                "--session".into(),
            ],
            env: env.clone(),
            output: Some(scratch.join("python-session-export.jsonl")),
        });
    }
    if let Some(script) = &peers.node {
        for (name, resource) in [
            (report::TS_SCAN_CONVERSATIONS, "conversations"),
            (report::TS_SCAN_FEEDBACK, "feedback"),
        ] {
            list.push(Contender {
                name,
                command: vec![
                    "node".into(),
                    script.display().to_string(),
                    base.clone(),
                    API_KEY.into(),
                    resource.into(),
                ],
                env: Vec::new(),
                output: None,
            });
        }
    }
    if !feedback {
        list.retain(|contender| !contender.name.contains("feedback"));
    }
    list
}

/// Times single-threaded decoding of the dataset's pages in a process of its own, which renders
/// the same pages from the same seeds first.
fn time_floor(dataset: &Dataset, floor: &mut BTreeMap<String, Vec<f64>>) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new(&me)
        .args(["floor", "--conversations"])
        .arg(dataset.conversations.to_string())
        .arg("--feedback")
        .arg(dataset.feedback.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    let timings: BTreeMap<String, f64> =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("floor: {e}"))?;
    for (key, value) in timings {
        floor.entry(key).or_default().push(value);
    }
    Ok(())
}

/// Runs every contender `rounds` times, in a rotated order each round, and checks what each returned.
///
/// With `floor`, single-threaded decoding of the same pages runs in the rotation too, as one more
/// contender, so that it meets the same conditions as the full scan it is compared with.
fn run_rounds(
    contenders: &[Contender],
    dataset: &Dataset,
    rounds: usize,
    mut floor: Option<&mut BTreeMap<String, Vec<f64>>>,
) -> Result<BTreeMap<&'static str, Vec<Measurement>>, String> {
    let mut samples: BTreeMap<&'static str, Vec<Measurement>> = BTreeMap::new();
    let slots = contenders.len() + usize::from(floor.is_some());
    for round in 0..rounds {
        for index in 0..slots {
            let Some(contender) = contenders.get((index + round) % slots) else {
                if let Some(floor) = floor.as_deref_mut() {
                    time_floor(dataset, floor)?;
                    eprintln!("round {}/{rounds}: single-threaded decoding", round + 1);
                }
                continue;
            };
            if let Some(path) = &contender.output {
                let _ = std::fs::remove_file(path);
            }
            let measurement = run_measured(contender)?;
            let expected = if contender.name.contains("feedback") {
                dataset.feedback
            } else {
                dataset.conversations
            } as u64;
            if measurement.records != expected {
                return Err(format!(
                    "{} returned {} records, expected {expected}",
                    contender.name, measurement.records
                ));
            }
            if contender.name == report::CLI_EXPORT
                && let Some(path) = &contender.output
            {
                let written = std::fs::read(path).map_err(|e| e.to_string())?;
                if written != dataset.expected_export {
                    return Err(format!(
                        "the export at {} is not byte for byte what the server sent",
                        path.display()
                    ));
                }
            }
            eprintln!(
                "round {}/{rounds}: {:<40} {:>9.1} ms {:>7.1} MiB",
                round + 1,
                contender.name,
                measurement.wall.as_secs_f64() * 1e3,
                measurement.max_rss_kib as f64 / 1024.0
            );
            samples.entry(contender.name).or_default().push(measurement);
        }
    }
    for contender in contenders {
        if let Some(path) = &contender.output {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(samples)
}

/// How the options serve a dataset.
fn setup(options: &Options) -> Setup {
    Setup {
        wan: (options.profile == "wan").then(|| Shape {
            latency: Duration::from_millis(options.latency_ms),
            bandwidth_bits: options.bandwidth_mbit * 1_000_000,
        }),
        nginx: options.profile != "wan" && options.server == "nginx",
    }
}

fn run(options: &Options) -> Result<(), String> {
    let wan = options.profile == "wan";
    if !wan && options.profile != "loopback" {
        return Err(format!(
            "unknown profile {:?}: loopback or wan",
            options.profile
        ));
    }
    let root = workspace_root();
    let scratch = root.join("target/bench-scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    eprintln!("preparing the peers ...");
    let mut peers = prepare_peers(&root);
    for note in &peers.notes {
        eprintln!("{note}");
    }
    let mut setup = setup(options);
    if setup.nginx && inkeep_analytics_bench::nginx::find_or_install().is_none() {
        peers.notes.push(
            "nginx was asked for but cannot be installed here: the built-in server served instead."
                .to_string(),
        );
        setup.nginx = false;
    }
    let server_name = if setup.nginx {
        "nginx (Debian's package: `sendfile`, `Content-Length`, a worker per core)"
    } else {
        "the built-in server (axum on a thread per core, `TCP_NODELAY`, `Content-Length`)"
    };
    let feedback = if wan { 0 } else { options.feedback };
    eprintln!(
        "rendering {} conversations and {feedback} feedback items ...",
        options.conversations
    );
    let main = dataset(options.conversations, feedback, setup)?;
    let contenders = contenders(&main, &peers, &scratch, !wan);
    let mut floor_runs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let samples = run_rounds(
        &contenders,
        &main,
        options.rounds,
        (!wan).then_some(&mut floor_runs),
    )?;
    let main_run = measured_run(&main, samples);
    drop(main);

    // The WAN profile's second target is at a larger size, with the peers: one slow round each.
    let mut large_run = None;
    if wan && options.large > 0 {
        eprintln!("the WAN profile at {} conversations ...", options.large);
        let dataset = dataset(options.large, 0, setup)?;
        let chosen: Vec<Contender> = self::contenders(&dataset, &peers, &scratch, false)
            .into_iter()
            .filter(|c| {
                [
                    report::CLI_EXPORT,
                    report::PYTHON_EXPORT,
                    report::TS_SCAN_CONVERSATIONS,
                ]
                .contains(&c.name)
            })
            .collect();
        let samples = run_rounds(&chosen, &dataset, 1, None)?;
        large_run = Some(measured_run(&dataset, samples));
    }

    let mut scale_runs = Vec::new();
    for &conversations in &options.scales {
        eprintln!("memory at {conversations} conversations ...");
        let dataset = dataset(conversations, 0, setup)?;
        let no_peers = Peers {
            python: None,
            node: None,
            notes: Vec::new(),
        };
        let chosen: Vec<Contender> = self::contenders(&dataset, &no_peers, &scratch, false)
            .into_iter()
            .filter(|c| c.name == report::SDK_SCAN_CONVERSATIONS || c.name == report::CLI_EXPORT)
            .collect();
        let samples = run_rounds(&chosen, &dataset, if wan { 1 } else { 3 }, None)?;
        scale_runs.push(measured_run(&dataset, samples));
    }

    let scales = options
        .scales
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut command = format!(
        "cargo xtask bench {} --conversations {} --rounds {} --scales {}",
        options.profile,
        options.conversations,
        options.rounds,
        if scales.is_empty() { "none" } else { &scales },
    );
    if wan {
        command.push_str(&format!(
            " --latency-ms {} --bandwidth-mbit {} --large {}",
            options.latency_ms, options.bandwidth_mbit, options.large
        ));
    } else {
        command.push_str(&format!(" --feedback {}", options.feedback));
        if setup.nginx {
            command.push_str(" --server nginx");
        }
    }
    let report = report::Report {
        command,
        machine: report::machine(),
        server: server_name.to_string(),
        shape: setup.wan,
        main: main_run,
        floor: floor_runs,
        large: large_run,
        scales: scale_runs,
        notes: peers.notes,
    };
    let (text, section) = if wan {
        (report::render_wan(&report), report::WAN_SECTION)
    } else if setup.nginx {
        (report::render(&report), report::NGINX_SECTION)
    } else {
        (report::render(&report), report::RESULTS_SECTION)
    };
    println!("{text}");
    if let Some(path) = &options.write {
        report::write_section(path, section, &text)?;
        eprintln!("wrote the results to {}", path.display());
    }
    Ok(())
}

fn measured_run(dataset: &Dataset, samples: BTreeMap<&'static str, Vec<Measurement>>) -> Run {
    Run {
        conversations: dataset.conversations,
        feedback: dataset.feedback,
        conversation_bytes: dataset.conversation_bytes,
        feedback_bytes: dataset.feedback_bytes,
        sizes: dataset
            .sizes
            .iter()
            .map(|(encoding, bytes)| (encoding.token(), *bytes))
            .collect(),
        samples,
    }
}

/// The program's export against a rate-limited sandbox: whether it finishes, how many of its
/// requests were refused, and how its wall time compares with pages over rate.
fn rate_limit(options: &Options) -> Result<(), String> {
    use inkeep_analytics_sandbox::{FaultConfig, RateLimit, Sandbox, SandboxConfig};
    let root = workspace_root();
    let scratch = root.join("target/bench-scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    // 41 pages: two seconds at 20 requests a second, long enough for the burst not to count much.
    let conversations = if options.conversations_set {
        options.conversations
    } else {
        4_000
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    eprintln!("seeding a sandbox with {conversations} conversations ...");
    let limit = RateLimit {
        per_second: options.rate,
        burst: options.burst,
    };
    let sandbox = runtime
        .block_on(Sandbox::start_with(SandboxConfig {
            conversations,
            faults: FaultConfig {
                rate_limit: Some(limit),
                ..FaultConfig::default()
            },
            ..SandboxConfig::default()
        }))
        .map_err(|e| format!("cannot start the sandbox: {e}"))?;
    let cli = std::env::current_exe()
        .ok()
        .and_then(|path| path.parent().map(|dir| dir.join("inkeep-analytics")))
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let output = scratch.join("rate-limit-export.jsonl");
    let contender = Contender {
        name: report::CLI_EXPORT,
        command: vec![
            cli,
            "--quiet".into(),
            "--base-url".into(),
            sandbox.base_url().to_string(),
            "conversations".into(),
            "export".into(),
            "--output".into(),
            output.display().to_string(),
        ],
        env: vec![(
            "INKEEP_ANALYTICS_API_KEY".into(),
            sandbox.api_key().to_string(),
        )],
        output: Some(output.clone()),
    };
    let mut texts = Vec::new();
    for states_rate in [false, true] {
        let faults = FaultConfig {
            rate_limit: Some(limit),
            states_rate_limit: states_rate,
            ..FaultConfig::default()
        };
        let mut rounds = Vec::new();
        for round in 0..options.rounds {
            // A fresh bucket each round, as after a quiet spell.
            sandbox
                .set_faults(faults.clone())
                .map_err(|e| e.to_string())?;
            let before = (sandbox.requests_answered(), sandbox.requests_rate_limited());
            let _ = std::fs::remove_file(&output);
            let outcome = run_measured(&contender);
            let requests = sandbox.requests_answered() - before.0;
            let refused = sandbox.requests_rate_limited() - before.1;
            let (error, wall, records) = match outcome {
                Ok(measurement) => (None, measurement.wall, measurement.records),
                Err(error) => (Some(error), Duration::ZERO, 0),
            };
            eprintln!(
                "rate {}, round {}/{}: {requests} requests, {refused} refused, {:.0} ms, {records} records{}",
                if states_rate { "stated" } else { "not stated" },
                round + 1,
                options.rounds,
                wall.as_secs_f64() * 1e3,
                error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            rounds.push(report::RateLimitRound {
                requests,
                refused,
                wall,
                records,
                error,
            });
        }
        texts.push(report::render_rate_limit(&report::RateLimitReport {
            command: format!(
                "cargo xtask bench rate-limit --conversations {conversations} --rate {} --burst {} --rounds {}",
                options.rate, options.burst, options.rounds
            ),
            machine: report::machine(),
            conversations,
            pages: conversations.div_ceil(data::PAGE_SIZE).max(1),
            rate: options.rate,
            burst: options.burst,
            states_rate,
            rounds,
        }));
    }
    let _ = std::fs::remove_file(&output);
    let text = texts.join("\n");
    println!("{text}");
    if let Some(path) = &options.write {
        report::write_section(path, report::RATE_LIMIT_SECTION, &text)?;
        eprintln!("wrote the results to {}", path.display());
    }
    Ok(())
}
