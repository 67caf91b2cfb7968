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
use inkeep_analytics_bench::data;
use inkeep_analytics_bench::report::{self, Measurement, Run};
use inkeep_analytics_bench::server::{API_KEY, PageServer, Pages};

const USAGE: &str = "\
usage: inkeep-analytics-bench <command>

commands:
  run [--conversations N] [--feedback N] [--rounds N] [--scales N,N,..|none] [--write FILE]
        serve pre-rendered pages on 127.0.0.1 and run every contender side by side
  build-cost [--write FILE]
        build a new crate that depends on inkeep-analytics from clean, as shipped and with the
        generated code committed instead, and compare time and crate counts
  scan --base-url URL --resource conversations|feedback [--prefetch N]
        the SDK contender: every item of a listing through the item stream
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
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().cloned().unwrap_or_default();
            let number = || value.replace('_', "").parse::<usize>().unwrap_or(0);
            match flag.as_str() {
                "--conversations" => options.conversations = number(),
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
                other => eprintln!("ignoring unknown argument {other}"),
            }
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
fn serve(options: &Options) -> Result<(), String> {
    let dataset = dataset(options.conversations, options.feedback)?;
    println!("{}", dataset.server.base_url());
    loop {
        std::thread::park();
    }
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
    server: PageServer,
    expected_export: Vec<u8>,
    conversations: usize,
    feedback: usize,
    conversation_bytes: usize,
    feedback_bytes: usize,
}

fn dataset(conversations: usize, feedback: usize) -> Result<Dataset, String> {
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
    let conversation_bytes = pages.conversations.iter().map(|p| p.len()).sum();
    let feedback_bytes = pages.feedback.iter().map(|p| p.len()).sum();
    let server = PageServer::start(pages).map_err(|e| format!("cannot start the server: {e}"))?;
    Ok(Dataset {
        server,
        expected_export,
        conversations,
        feedback,
        conversation_bytes,
        feedback_bytes,
    })
}

fn contenders(dataset: &Dataset, peers: &Peers, scratch: &Path) -> Vec<Contender> {
    let me = std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let cli = std::env::current_exe()
        .ok()
        .and_then(|path| path.parent().map(|dir| dir.join("inkeep-analytics")))
        .map(|path| path.display().to_string())
        .unwrap_or_default();
    let base = dataset.server.base_url();
    let peers_dir = workspace_root().join("xtask/peers");
    let mut list = vec![
        Contender {
            name: report::SDK_SCAN_CONVERSATIONS,
            command: vec![
                me.clone(),
                "scan".into(),
                "--base-url".into(),
                base.clone(),
                "--resource".into(),
                "conversations".into(),
            ],
            env: Vec::new(),
            output: None,
        },
        Contender {
            name: report::SDK_SCAN_FEEDBACK,
            command: vec![
                me.clone(),
                "scan".into(),
                "--base-url".into(),
                base.clone(),
                "--resource".into(),
                "feedback".into(),
            ],
            env: Vec::new(),
            output: None,
        },
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

fn run(options: &Options) -> Result<(), String> {
    let root = workspace_root();
    let scratch = root.join("target/bench-scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    eprintln!("preparing the peers ...");
    let peers = prepare_peers(&root);
    for note in &peers.notes {
        eprintln!("{note}");
    }
    eprintln!(
        "rendering {} conversations and {} feedback items ...",
        options.conversations, options.feedback
    );
    let main = dataset(options.conversations, options.feedback)?;
    let contenders = contenders(&main, &peers, &scratch);
    let mut floor_runs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let samples = run_rounds(&contenders, &main, options.rounds, Some(&mut floor_runs))?;

    let main_run = Run {
        conversations: main.conversations,
        feedback: main.feedback,
        conversation_bytes: main.conversation_bytes,
        feedback_bytes: main.feedback_bytes,
        samples,
    };
    drop(main);

    let mut scale_runs = Vec::new();
    for &conversations in &options.scales {
        eprintln!("memory at {conversations} conversations ...");
        let dataset = dataset(conversations, 0)?;
        let all = self::contenders(
            &dataset,
            &Peers {
                python: None,
                node: None,
                notes: Vec::new(),
            },
            &scratch,
        );
        let chosen: Vec<Contender> = all
            .into_iter()
            .filter(|c| c.name == report::SDK_SCAN_CONVERSATIONS || c.name == report::CLI_EXPORT)
            .collect();
        let samples = run_rounds(&chosen, &dataset, 3, None)?;
        scale_runs.push(Run {
            conversations,
            feedback: 0,
            conversation_bytes: dataset.conversation_bytes,
            feedback_bytes: 0,
            samples,
        });
    }

    let command = format!(
        "cargo xtask bench --conversations {} --feedback {} --rounds {} --scales {}",
        options.conversations,
        options.feedback,
        options.rounds,
        options
            .scales
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let text = report::render(&report::Report {
        command,
        machine: report::machine(),
        main: main_run,
        floor: floor_runs,
        scales: scale_runs,
        notes: peers.notes,
    });
    println!("{text}");
    if let Some(path) = &options.write {
        report::write_section(path, report::RESULTS_SECTION, &text)?;
        eprintln!("wrote the results to {}", path.display());
    }
    Ok(())
}
