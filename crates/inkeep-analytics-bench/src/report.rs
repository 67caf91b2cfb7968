//! Turns one run's measurements into the markdown of `BENCHMARKS.md`: medians, ratios from the
//! same run, and each target with whether it was met.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Contender names, shared by the harness and the report.
pub const SDK_SCAN_CONVERSATIONS: &str = "SDK item stream: conversations";
/// The SDK over all feedback.
pub const SDK_SCAN_FEEDBACK: &str = "SDK item stream: feedback";
/// The program's export.
pub const CLI_EXPORT: &str = "`inkeep-analytics conversations export`";
/// The docs' Python snippet in a loop.
pub const PYTHON_SCAN_CONVERSATIONS: &str = "Python `requests` loop: conversations";
/// The same over feedback.
pub const PYTHON_SCAN_FEEDBACK: &str = "Python `requests` loop: feedback";
/// The Python loop writing JSON lines.
pub const PYTHON_EXPORT: &str = "Python `requests` loop writing JSON lines";
/// The Python loop over conversations with one `requests.Session()`.
pub const PYTHON_SESSION_SCAN_CONVERSATIONS: &str = "Python `requests.Session` loop: conversations";
/// The same over feedback.
pub const PYTHON_SESSION_SCAN_FEEDBACK: &str = "Python `requests.Session` loop: feedback";
/// The Python loop with one `requests.Session()` writing JSON lines.
pub const PYTHON_SESSION_EXPORT: &str = "Python `requests.Session` loop writing JSON lines";
/// A hand-written Rust scan without the SDK: plain `reqwest` and `serde_json` into the floor structs.
pub const FLOOR_SCAN_CONVERSATIONS: &str =
    "Hand-written `reqwest` + `serde_json` loop: conversations";
/// The official TypeScript SDK over conversations.
pub const TS_SCAN_CONVERSATIONS: &str = "TypeScript SDK `conversations.list`: conversations";
/// The official TypeScript SDK over feedback.
pub const TS_SCAN_FEEDBACK: &str = "TypeScript SDK `feedback.list`: feedback";

/// The section of `BENCHMARKS.md` that the loopback profile rewrites.
pub const RESULTS_SECTION: &str = "results";
/// The section that the loopback profile rewrites when nginx serves.
pub const NGINX_SECTION: &str = "results-nginx";
/// The section that the WAN profile rewrites.
pub const WAN_SECTION: &str = "results-wan";
/// The section that the rate-limit scenario rewrites.
pub const RATE_LIMIT_SECTION: &str = "results-rate-limit";
/// The section that `build-cost` rewrites.
pub const BUILD_SECTION: &str = "build-cost";

/// The memory bound of the full scan and of the export.
const MEMORY_TARGET_MIB: f64 = 32.0;

/// One run of one contender.
#[derive(Clone, Copy, Debug)]
pub struct Measurement {
    /// From start to exit.
    pub wall: Duration,
    /// Peak resident memory.
    pub max_rss_kib: u64,
    /// How many records it read or wrote.
    pub records: u64,
}

/// Every contender's measurements on one dataset.
#[derive(Debug)]
pub struct Run {
    /// Conversations served.
    pub conversations: usize,
    /// Feedback items served.
    pub feedback: usize,
    /// Bytes of all conversation pages.
    pub conversation_bytes: usize,
    /// Bytes of all feedback pages.
    pub feedback_bytes: usize,
    /// Bytes of all conversation pages in each encoding served (`identity`, `gzip`, `br`, `zstd`).
    pub sizes: BTreeMap<&'static str, usize>,
    /// Contender name to its rounds.
    pub samples: BTreeMap<&'static str, Vec<Measurement>>,
}

impl Run {
    /// The median wall time of a contender, in milliseconds.
    pub fn median_wall(&self, name: &str) -> Option<f64> {
        let mut walls: Vec<f64> = self
            .samples
            .get(name)?
            .iter()
            .map(|m| m.wall.as_secs_f64() * 1e3)
            .collect();
        median(&mut walls)
    }

    fn median_rss_mib(&self, name: &str) -> Option<f64> {
        let mut rss: Vec<f64> = self
            .samples
            .get(name)?
            .iter()
            .map(|m| m.max_rss_kib as f64 / 1024.0)
            .collect();
        median(&mut rss)
    }

    fn max_rss_mib(&self, name: &str) -> Option<f64> {
        self.samples
            .get(name)?
            .iter()
            .map(|m| m.max_rss_kib as f64 / 1024.0)
            .reduce(f64::max)
    }
}

/// Everything one `run` measured.
#[derive(Debug)]
pub struct Report {
    /// The command that reproduces it.
    pub command: String,
    /// What the machine is.
    pub machine: String,
    /// What served the pages.
    pub server: String,
    /// The WAN profile's shaping, if it is that profile.
    pub shape: Option<crate::proxy::Shape>,
    /// The side-by-side run.
    pub main: Run,
    /// The WAN profile's larger run with the peers.
    pub large: Option<Run>,
    /// In-process decoding times (ms) of every page, single-threaded, per round.
    pub floor: BTreeMap<String, Vec<f64>>,
    /// The memory runs at several sizes.
    pub scales: Vec<Run>,
    /// Peers that were skipped, and why.
    pub notes: Vec<String>,
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    })
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// The machine, as far as it can be read without extra tools.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").parse::<f64>().ok())
        .map_or_else(String::new, |kib| {
            format!(", {:.0} GiB of memory", kib / 1024.0 / 1024.0)
        });
    let version = |program: &str| {
        std::process::Command::new(program)
            .arg("--version")
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| {
                let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
                if text.is_empty() {
                    String::from_utf8_lossy(&output.stderr).trim().to_string()
                } else {
                    text
                }
            })
            .unwrap_or_else(|| format!("no {program}"))
    };
    format!(
        "{cores} cores ({model}){memory}, Linux {}; {}, {}, Node.js {}",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        version("rustc"),
        version("python3"),
        version("node"),
    )
}

/// `a` as a multiple of `b`'s speed: how many times faster `a` (a time) is than `b`.
fn speedup(faster: Option<f64>, slower: Option<f64>) -> Option<f64> {
    Some(slower? / faster?)
}

fn format_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "not measured".to_string(), |r| format!("{r:.1}×"))
}

/// The run's header: the command, the machine and the data.
fn header(out: &mut String, report: &Report) {
    let main = &report.main;
    let _ = writeln!(
        out,
        "Measured with `{}` on {}.",
        report.command, report.machine
    );
    let _ = writeln!(
        out,
        "The server, {}, held {} conversations ({:.0} MiB in {} pages of 100) and {} feedback items ({:.0} MiB), rendered once, in the API's key order.",
        report.server,
        main.conversations,
        mib(main.conversation_bytes),
        main.conversations.div_ceil(100),
        main.feedback,
        mib(main.feedback_bytes),
    );
    let rounds = main.samples.values().map(Vec::len).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "Each contender ran {rounds} times as its own process, in a rotated order each round; times are medians of wall time from start to exit, memory is the peak resident set (`ru_maxrss`)."
    );
    for note in &report.notes {
        let _ = writeln!(out, "{note}");
    }
}

fn contender_table(out: &mut String, run: &Run) {
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Contender | Median wall time | Fastest–slowest | Peak RSS (median) | Records |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for (name, samples) in &run.samples {
        let walls: Vec<f64> = samples.iter().map(|m| m.wall.as_secs_f64() * 1e3).collect();
        let fastest = walls.iter().copied().reduce(f64::min).unwrap_or(0.0);
        let slowest = walls.iter().copied().reduce(f64::max).unwrap_or(0.0);
        let _ = writeln!(
            out,
            "| {name} | {:.0} ms | {fastest:.0}–{slowest:.0} ms | {:.1} MiB | {} |",
            run.median_wall(name).unwrap_or(0.0),
            run.median_rss_mib(name).unwrap_or(0.0),
            samples.first().map_or(0, |m| m.records),
        );
    }
}

fn ratio_row(out: &mut String, target: &str, ratio: Option<f64>, bound: f64) {
    let _ = writeln!(
        out,
        "| {target} | {} | {} |",
        format_ratio(ratio),
        ratio.map_or("not measured (peer skipped)", |r| verdict(r >= bound))
    );
}

fn memory_rows(out: &mut String, report: &Report) {
    let runs = || {
        report
            .scales
            .iter()
            .chain(std::iter::once(&report.main))
            .chain(report.large.iter())
    };
    for (what, name) in [("scan", SDK_SCAN_CONVERSATIONS), ("export", CLI_EXPORT)] {
        let peaks: Vec<f64> = runs().filter_map(|run| run.max_rss_mib(name)).collect();
        let sizes: Vec<String> = runs()
            .filter(|run| run.samples.contains_key(name))
            .map(|run| run.conversations)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|size| size.to_string())
            .collect();
        let peak = peaks.iter().copied().reduce(f64::max);
        let _ = writeln!(
            out,
            "| Peak RSS of the {what} ≤ 32 MiB (at {}) | {} | {} |",
            if sizes.is_empty() {
                "no size".to_string()
            } else {
                sizes.join(", ")
            },
            peak.map_or_else(
                || "not measured".to_string(),
                |peak| format!("at most {peak:.1} MiB")
            ),
            peak.map_or("not measured", |peak| verdict(peak <= MEMORY_TARGET_MIB)),
        );
    }
}

fn scale_table(out: &mut String, report: &Report) {
    if report.scales.is_empty() {
        return;
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Memory as the number of conversations grows (largest peak shown):"
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Conversations | Page bytes | Full scan: time, peak RSS | Export: time, peak RSS |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|");
    for run in &report.scales {
        let _ = writeln!(
            out,
            "| {} | {:.0} MiB | {:.0} ms, {:.1} MiB | {:.0} ms, {:.1} MiB |",
            run.conversations,
            mib(run.conversation_bytes),
            run.median_wall(SDK_SCAN_CONVERSATIONS).unwrap_or(0.0),
            run.max_rss_mib(SDK_SCAN_CONVERSATIONS).unwrap_or(0.0),
            run.median_wall(CLI_EXPORT).unwrap_or(0.0),
            run.max_rss_mib(CLI_EXPORT).unwrap_or(0.0),
        );
    }
}

/// The markdown of the loopback profile.
pub fn render(report: &Report) -> String {
    let main = &report.main;
    let mut out = String::new();
    header(&mut out, report);
    contender_table(&mut out, main);
    let rounds = main.samples.values().map(Vec::len).max().unwrap_or(0);
    let mut floor = report.floor.clone();
    let floor_median = |key: &str, floor: &mut BTreeMap<String, Vec<f64>>| {
        floor.get_mut(key).and_then(|values| median(values))
    };
    let floor_conversations = floor_median("floor_conversations_ms", &mut floor);
    let sdk_conversations = floor_median("sdk_conversations_ms", &mut floor);
    let floor_feedback = floor_median("floor_feedback_ms", &mut floor);
    let sdk_feedback = floor_median("sdk_feedback_ms", &mut floor);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Single-threaded decoding of the same pages, timed inside a process of its own that ran in the same rotation (medians of {rounds}): conversations {:.0} ms with the floor structs and {:.0} ms with the SDK's types; feedback {:.0} ms and {:.0} ms.",
        floor_conversations.unwrap_or(0.0),
        sdk_conversations.unwrap_or(0.0),
        floor_feedback.unwrap_or(0.0),
        sdk_feedback.unwrap_or(0.0),
    );

    let sdk = main.median_wall(SDK_SCAN_CONVERSATIONS);
    let sdk_feedback_scan = main.median_wall(SDK_SCAN_FEEDBACK);
    let export = main.median_wall(CLI_EXPORT);
    let python = speedup(sdk, main.median_wall(PYTHON_SCAN_CONVERSATIONS));
    let typescript = speedup(sdk, main.median_wall(TS_SCAN_CONVERSATIONS));
    let python_export = speedup(export, main.median_wall(PYTHON_EXPORT));
    let python_session = speedup(sdk, main.median_wall(PYTHON_SESSION_SCAN_CONVERSATIONS));
    let python_session_export = speedup(export, main.median_wall(PYTHON_SESSION_EXPORT));
    let typescript_export = speedup(export, main.median_wall(TS_SCAN_CONVERSATIONS));
    let over_floor = speedup(sdk, floor_conversations);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Target (issue 13, loopback) | Measured in this run | Result |"
    );
    let _ = writeln!(out, "|---|---|---|");
    ratio_row(
        &mut out,
        "Typed scan ≥ 5× faster than the Python `requests` loop",
        python,
        5.0,
    );
    ratio_row(
        &mut out,
        "Typed scan ≥ 5× faster than the Python `requests.Session` loop (issue 25)",
        python_session,
        5.0,
    );
    ratio_row(
        &mut out,
        "Typed scan ≥ 10× faster than the TypeScript SDK",
        typescript,
        10.0,
    );
    let _ = writeln!(
        out,
        "| Typed scan ≥ 1.5× faster than single-threaded floor decoding of the same pages | {:.0} ms against {:.0} ms ({}) | {} |",
        sdk.unwrap_or(0.0),
        floor_conversations.unwrap_or(0.0),
        format_ratio(over_floor),
        over_floor.map_or("not measured", |r| verdict(r >= 1.5)),
    );
    ratio_row(
        &mut out,
        "Export ≥ 8× faster than the Python exporter",
        python_export,
        8.0,
    );
    ratio_row(
        &mut out,
        "Export ≥ 8× faster than the Python exporter with a `requests.Session` (issue 25)",
        python_session_export,
        8.0,
    );
    ratio_row(
        &mut out,
        "Export ≥ 8× faster than the TypeScript SDK's paging (issue 25)",
        typescript_export,
        8.0,
    );
    memory_rows(&mut out, report);
    if let Some(hand_written) = main.median_wall(FLOOR_SCAN_CONVERSATIONS) {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "The same scan written by hand without the SDK (`reqwest` and `serde_json` into the floor structs, 3 pages ahead in tasks, the SDK's default) took {hand_written:.0} ms: the SDK's item stream is {} faster, and the hand-written loop {} faster than Python with a session.",
            format_ratio(speedup(sdk, Some(hand_written))),
            format_ratio(speedup(
                Some(hand_written),
                main.median_wall(PYTHON_SESSION_SCAN_CONVERSATIONS)
            )),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Feedback: the SDK's item stream took {:.0} ms, {} faster than the Python loop, {} faster than the Python loop with a session and {} faster than the TypeScript SDK.",
        sdk_feedback_scan.unwrap_or(0.0),
        format_ratio(speedup(
            sdk_feedback_scan,
            main.median_wall(PYTHON_SCAN_FEEDBACK)
        )),
        format_ratio(speedup(
            sdk_feedback_scan,
            main.median_wall(PYTHON_SESSION_SCAN_FEEDBACK)
        )),
        format_ratio(speedup(
            sdk_feedback_scan,
            main.median_wall(TS_SCAN_FEEDBACK)
        )),
    );
    scale_table(&mut out, report);
    out
}

/// The physical bound of reading `run` over the link: its smallest compressed pages over the
/// bandwidth, plus two round trips (the first request, and the last page's answer).
pub fn physical_bound_ms(run: &Run, shape: &crate::proxy::Shape) -> Option<f64> {
    let smallest = run
        .sizes
        .iter()
        .filter(|(encoding, _)| **encoding != "identity")
        .map(|(_, bytes)| *bytes)
        .min()?;
    let round_trip = 2.0 * shape.latency.as_secs_f64();
    Some((shape.transmission(smallest).as_secs_f64() + 2.0 * round_trip) * 1e3)
}

/// The markdown of the WAN profile.
pub fn render_wan(report: &Report) -> String {
    let main = &report.main;
    let mut out = String::new();
    header(&mut out, report);
    if let Some(shape) = &report.shape {
        let _ = writeln!(
            out,
            "Every contender went through the shaping proxy: {} ms each way, {} Mbit/s shared by every connection; the server compressed each page once and answered with the smallest coding the client accepted.",
            shape.latency.as_millis(),
            shape.bandwidth_bits / 1_000_000,
        );
    }
    let sizes: Vec<String> = main
        .sizes
        .iter()
        .map(|(encoding, bytes)| format!("{encoding} {:.1} MiB", mib(*bytes)))
        .collect();
    let _ = writeln!(out, "Conversation pages: {}.", sizes.join(", "));
    contender_table(&mut out, main);
    let export = main.median_wall(CLI_EXPORT);
    let bound = report
        .shape
        .as_ref()
        .and_then(|shape| physical_bound_ms(main, shape));
    let _ = writeln!(out);
    if let Some(bound) = bound {
        let _ = writeln!(
            out,
            "Physical bound at {} conversations: the smallest compressed pages over the bandwidth plus two round trips, {bound:.0} ms. Each contender's ratio to it: {}.",
            main.conversations,
            main.samples
                .keys()
                .map(|name| format!(
                    "{name} {}",
                    format_ratio(main.median_wall(name).map(|wall| wall / bound))
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "| Target (issue 13, WAN) | Measured in this run | Result |"
    );
    let _ = writeln!(out, "|---|---|---|");
    let n = main.conversations;
    ratio_row(
        &mut out,
        &format!("Export of {n} ≥ 5× faster than the Python exporter"),
        speedup(export, main.median_wall(PYTHON_EXPORT)),
        5.0,
    );
    ratio_row(
        &mut out,
        &format!("Export of {n} ≥ 5× faster than the TypeScript SDK's listing"),
        speedup(export, main.median_wall(TS_SCAN_CONVERSATIONS)),
        5.0,
    );
    let over_bound = export.zip(bound).map(|(export, bound)| export / bound);
    let _ = writeln!(
        out,
        "| Export of {n} within 1.5× of the physical bound | {:.0} ms against {:.0} ms ({}) | {} |",
        export.unwrap_or(0.0),
        bound.unwrap_or(0.0),
        format_ratio(over_bound),
        over_bound.map_or("not measured", |r| verdict(r <= 1.5)),
    );
    match &report.large {
        Some(large) => {
            let export = large.median_wall(CLI_EXPORT);
            let n = large.conversations;
            ratio_row(
                &mut out,
                &format!("Export of {n} ≥ 10× faster than the Python exporter (one round)"),
                speedup(export, large.median_wall(PYTHON_EXPORT)),
                10.0,
            );
            ratio_row(
                &mut out,
                &format!(
                    "Export of {n} ≥ 10× faster than the TypeScript SDK's listing (one round)"
                ),
                speedup(export, large.median_wall(TS_SCAN_CONVERSATIONS)),
                10.0,
            );
        }
        None => {
            let _ = writeln!(
                out,
                "| Export of 20,000 ≥ 10× faster than both peers | not measured (`--large 0`) | not measured |"
            );
        }
    }
    memory_rows(&mut out, report);
    if let Some(large) = &report.large {
        let _ = writeln!(out);
        let _ = writeln!(out, "At {} conversations (one round):", large.conversations);
        contender_table(&mut out, large);
        if let Some(bound) = report
            .shape
            .as_ref()
            .and_then(|shape| physical_bound_ms(large, shape))
        {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "Physical bound at {} conversations: {bound:.0} ms; the export took {}.",
                large.conversations,
                format_ratio(large.median_wall(CLI_EXPORT).map(|wall| wall / bound))
            );
        }
    }
    scale_table(&mut out, report);
    out
}

/// One export against the rate-limited sandbox.
#[derive(Debug)]
pub struct RateLimitRound {
    /// Requests the sandbox received during the export.
    pub requests: u64,
    /// Of which answered `429`.
    pub refused: u64,
    /// The export's wall time.
    pub wall: Duration,
    /// Lines written.
    pub records: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// The rate-limit scenario.
#[derive(Debug)]
pub struct RateLimitReport {
    /// The command that reproduces it.
    pub command: String,
    /// What the machine is.
    pub machine: String,
    /// Conversations in the sandbox.
    pub conversations: usize,
    /// Pages an export needs (the last one short or empty).
    pub pages: usize,
    /// The sandbox's rate, requests a second.
    pub rate: f64,
    /// Its burst.
    pub burst: u32,
    /// Whether every answer stated the rate in `RateLimit-Policy`.
    pub states_rate: bool,
    /// Every export.
    pub rounds: Vec<RateLimitRound>,
}

/// The markdown of the rate-limit scenario.
pub fn render_rate_limit(report: &RateLimitReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured with `{}` on {}.",
        report.command, report.machine
    );
    let ideal = report.pages as f64 / report.rate * 1e3;
    let _ = writeln!(
        out,
        "The sandbox held {} conversations ({} pages of 100, the last page known full from `total`) behind a token bucket of {} requests a second with a burst of {}, answering `429` with `Retry-After` in whole seconds, {}; pages over rate is {ideal:.0} ms.",
        report.conversations,
        report.pages,
        report.rate,
        report.burst,
        if report.states_rate {
            "and stating its rate on every answer in a `RateLimit-Policy` header, as gateways that follow the IETF draft do"
        } else {
            "and stating no rate, as the API's reference documents none"
        },
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Round | Finished | Requests | Refused (429) | Wall time | Against pages over rate |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|");
    for (index, round) in report.rounds.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} ({:.1}%) | {:.0} ms | {} |",
            index + 1,
            match &round.error {
                None => format!("yes, {} records", round.records),
                Some(error) => format!("no: {}", error.lines().next().unwrap_or_default()),
            },
            round.requests,
            round.refused,
            share(round.refused, round.requests) * 100.0,
            round.wall.as_secs_f64() * 1e3,
            format_ratio(Some(round.wall.as_secs_f64() * 1e3 / ideal)),
        );
    }
    let finished = report
        .rounds
        .iter()
        .all(|round| round.error.is_none() && round.records == report.conversations as u64);
    let worst_share = report
        .rounds
        .iter()
        .map(|round| share(round.refused, round.requests))
        .reduce(f64::max)
        .unwrap_or(0.0);
    let mut walls: Vec<f64> = report
        .rounds
        .iter()
        .map(|round| round.wall.as_secs_f64() * 1e3)
        .collect();
    let wall = median(&mut walls).unwrap_or(0.0);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| Target (issue 13, rate limit, {}) | Measured in this run | Result |",
        if report.states_rate {
            "rate stated"
        } else {
            "no rate stated"
        }
    );
    let _ = writeln!(out, "|---|---|---|");
    let _ = writeln!(
        out,
        "| The export finishes with no error, every record written | {} | {} |",
        if finished {
            "every round"
        } else {
            "not every round"
        },
        verdict(finished)
    );
    let _ = writeln!(
        out,
        "| At most 5% of its requests refused | at most {:.1}% | {} |",
        worst_share * 100.0,
        verdict(worst_share <= 0.05)
    );
    let _ = writeln!(
        out,
        "| Within 1.3× of pages over rate | median {wall:.0} ms against {ideal:.0} ms ({}) | {} |",
        format_ratio(Some(wall / ideal)),
        verdict(wall / ideal <= 1.3)
    );
    out
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Replaces the section `name` of the markdown file at `path` (between its
/// `<!-- bench:name:start -->` and `<!-- bench:name:end -->` markers), adding it at the end if missing.
pub fn write_section(path: &Path, name: &str, text: &str) -> Result<(), String> {
    let start = format!("<!-- bench:{name}:start -->");
    let end = format!("<!-- bench:{name}:end -->");
    let current = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{start}\n{}\n{end}", text.trim_end());
    let updated = match (current.find(&start), current.find(&end)) {
        (Some(from), Some(to)) if from < to => {
            format!("{}{block}{}", &current[..from], &current[to + end.len()..])
        }
        _ => format!("{}\n\n{block}\n", current.trim_end()),
    };
    std::fs::write(path, updated).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_in_place_and_added_when_missing() {
        let dir = std::env::temp_dir().join(format!("bench-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("BENCHMARKS.md");
        std::fs::write(&path, "# Benchmarks\n\nIntro.\n").expect("write");
        write_section(&path, "results", "first").expect("added");
        write_section(&path, "results", "second").expect("replaced");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "# Benchmarks\n\nIntro.\n\n<!-- bench:results:start -->\nsecond\n<!-- bench:results:end -->\n"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn medians_and_ratios_come_from_the_same_run() {
        let measurement = |ms: u64| Measurement {
            wall: Duration::from_millis(ms),
            max_rss_kib: 20 * 1024,
            records: 10,
        };
        let mut samples = BTreeMap::new();
        samples.insert(
            SDK_SCAN_CONVERSATIONS,
            vec![measurement(100), measurement(300), measurement(110)],
        );
        samples.insert(
            PYTHON_SCAN_CONVERSATIONS,
            vec![measurement(500), measurement(440), measurement(460)],
        );
        let run = Run {
            conversations: 10,
            feedback: 0,
            conversation_bytes: 1,
            feedback_bytes: 0,
            sizes: BTreeMap::new(),
            samples,
        };
        assert_eq!(run.median_wall(SDK_SCAN_CONVERSATIONS), Some(110.0));
        let ratio = speedup(
            run.median_wall(SDK_SCAN_CONVERSATIONS),
            run.median_wall(PYTHON_SCAN_CONVERSATIONS),
        );
        assert_eq!(ratio.map(|r| (r * 10.0).round() / 10.0), Some(4.2));
        let text = render(&Report {
            command: "cargo xtask bench".into(),
            machine: "a test machine".into(),
            server: "a test server".into(),
            shape: None,
            main: run,
            large: None,
            floor: BTreeMap::new(),
            scales: Vec::new(),
            notes: vec!["TypeScript SDK peer skipped: no `node`.".into()],
        });
        assert!(
            text.contains(
                "| Typed scan ≥ 5× faster than the Python `requests` loop | 4.2× | **missed** |"
            ),
            "{text}"
        );
        assert!(text.contains("not measured (peer skipped)"), "{text}");
    }
}
