//! `inkeep-analytics record` and `spool status`: ship JSON lines of records through the SDK's
//! recorder, so that a service in another language, or a log file, gets its ordering, bounds,
//! backoff and crash-safe spool.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use inkeep_analytics::{
    Client,
    recorder::{FlushReport, Outcome, Record, RecordId, Recorder, SpoolStatus},
};

use crate::cli::{Format, GlobalOptions, parse_duration};
use crate::failure::{EXIT_API, EXIT_NETWORK, EXIT_OTHER, EXIT_USAGE, Failure};

/// Ship JSON lines of records through the recorder.
#[derive(Debug, Args)]
#[command(after_help = "Each line is one record:
  {\"conversation\": <body of POST /conversations>}
  {\"feedback\": <body of POST /feedback>}
  {\"event\": <body of POST /events>}

Examples:
  inkeep-analytics record --spool /var/spool/inkeep records.jsonl
  my-service | inkeep-analytics record --spool ./spool -

A malformed line is reported with its number and skipped. When the queue in memory is full, reading
waits for room (up to --wait for one record, after which records that find no room are dropped).
The program exits 0 once everything it read was delivered, and non-zero otherwise, with counts and
the ids of what was not delivered. With --spool, every record is committed
to a SQLite database in that directory before it is queued: a run killed at any point leaves
nothing behind that the next run on the same directory does not deliver, before newer records.")]
pub struct RecordArgs {
    /// Keep records in a crash-safe spool in this directory (created, readable by its owner only).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// How long to keep delivering after the input ends, and the longest a record waits for room
    /// in a full queue, such as `30s` or `10m`.
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Duration,
    /// Send a conversation at most once per this interval (its latest version), such as `2s`.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub min_interval: Option<Duration>,
    /// A file of JSON lines, or `-` for standard input.
    #[arg(default_value = "-", value_name = "FILE")]
    pub input: PathBuf,
}

/// Look into a recorder's spool.
#[derive(Debug, Subcommand)]
pub enum SpoolCommand {
    /// What a spool holds, without sending it.
    #[command(after_help = "Example:\n  inkeep-analytics spool status /var/spool/inkeep")]
    Status {
        /// The spool's directory.
        dir: PathBuf,
    },
}

/// What reading the input found.
#[derive(Debug, Default)]
struct Read {
    lines: u64,
    malformed: u64,
    refused: u64,
}

/// Runs `record`.
pub async fn run(global: &GlobalOptions, client: Client, args: RecordArgs) -> Result<(), Failure> {
    let mut builder = Recorder::builder(client).dead_letter(|letter| {
        eprintln!("refused for good: {}: {}", letter.id, letter.error);
    });
    if let Some(dir) = &args.spool {
        builder = builder.spool(dir);
    }
    if let Some(interval) = args.min_interval {
        builder = builder.min_interval(interval);
    }
    let recorder = builder
        .build()
        .map_err(Failure::api("starting the recorder"))?;
    let show_progress = !global.quiet && std::io::stderr().is_terminal();
    let input = args.input.clone();
    let reading = recorder.clone();
    let wait = args.wait;
    let read =
        tokio::task::spawn_blocking(move || read_lines(&reading, &input, show_progress, wait))
            .await
            .map_err(|error| Failure::Usage(format!("reading the records failed: {error}")))??;
    if show_progress {
        eprintln!("read {} lines; delivering", read.lines);
    }
    let report = recorder.shutdown(args.wait).await;
    let stats = recorder.stats();
    let summary = format!(
        "read {} lines: {} malformed, {} refused locally; delivered {}, pending {}, dead-lettered {}, dropped {}{}",
        read.lines,
        read.malformed,
        read.refused,
        report.delivered,
        report.pending,
        report.dead_lettered,
        report.dropped,
        not_delivered(&report)
    );
    let code = if report.pending > 0 || !report.complete {
        Some(EXIT_NETWORK)
    } else if report.dead_lettered > 0 {
        Some(EXIT_API)
    } else if read.malformed > 0 || read.refused > 0 {
        Some(EXIT_USAGE)
    } else if stats.dropped() > 0 {
        Some(EXIT_OTHER)
    } else {
        None
    };
    match code {
        Some(code) => Err(Failure::Incomplete { summary, code }),
        None => {
            if !global.quiet {
                eprintln!("{summary}");
            }
            Ok(())
        }
    }
}

/// The ids of what was not delivered, one line per fate, each with how many more there were.
fn not_delivered(report: &FlushReport) -> String {
    let mut text = String::new();
    for (fate, ids, count) in [
        ("pending", &report.pending_ids, report.pending),
        (
            "dead-lettered",
            &report.dead_lettered_ids,
            report.dead_lettered,
        ),
        ("dropped", &report.dropped_ids, report.dropped),
    ] {
        if count == 0 {
            continue;
        }
        let named: Vec<String> = ids.iter().map(RecordId::to_string).collect();
        text.push_str(&format!("\n{fate}: {}", named.join(", ")));
        let more = count.saturating_sub(ids.len() as u64);
        if more > 0 {
            let sep = if named.is_empty() { "" } else { " and " };
            text.push_str(&format!("{sep}{more} more"));
        }
    }
    text
}

/// Reads the input line by line and records each record, waiting up to `wait` for room in a
/// full queue so that a batch is not loaded lossily; runs on a blocking thread. Once a record
/// found no room in that time, delivery has stalled: the rest are recorded without waiting, so
/// that the run still ends in about `wait`.
fn read_lines(
    recorder: &Recorder,
    input: &PathBuf,
    progress: bool,
    wait: Duration,
) -> Result<Read, Failure> {
    let mut stalled = false;
    let reader: Box<dyn BufRead> = if input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(input)
            .map_err(Failure::io(format!("opening {}", input.display())))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut read = Read::default();
    for (index, line) in reader.split(b'\n').enumerate() {
        let number = index + 1;
        let line = line.map_err(Failure::io(format!("reading {}", input.display())))?;
        read.lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record: Record = match serde_json::from_slice(&line) {
            Ok(record) => record,
            Err(error) => {
                read.malformed += 1;
                eprintln!("line {number}: not a record ({error}); skipped");
                continue;
            }
        };
        let recorded = if stalled {
            recorder.record(record)
        } else {
            recorder.record_when_room_blocking(record, wait)
        };
        match recorded {
            Ok(recorded) => {
                stalled |= recorded.outcome == Outcome::DroppedQueueFull;
                if matches!(
                    recorded.outcome,
                    Outcome::DroppedQueueFull
                        | Outcome::DroppedSpoolFull
                        | Outcome::DroppedSpoolUnwritable
                ) {
                    eprintln!("line {number}: dropped ({:?})", recorded.outcome);
                }
            }
            Err(error) => {
                read.refused += 1;
                eprintln!("line {number}: {error}; skipped");
            }
        }
        if progress && read.lines.is_multiple_of(1000) {
            let stats = recorder.stats();
            eprint!(
                "\rread {} lines, delivered {}, pending {}   ",
                read.lines, stats.sent, stats.pending
            );
        }
    }
    if progress {
        eprintln!();
    }
    Ok(read)
}

/// Runs `spool status`.
pub fn spool(global: &GlobalOptions, command: SpoolCommand) -> Result<(), Failure> {
    let SpoolCommand::Status { dir } = command;
    if !dir.is_dir() {
        return Err(Failure::Usage(format!(
            "{} is not a spool directory",
            dir.display()
        )));
    }
    let status = SpoolStatus::read(&dir).map_err(Failure::api("reading the spool"))?;
    let set_aside: Vec<String> = status
        .set_aside
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    let text = if global.format == Some(Format::Json) {
        serde_json::json!({
            "conversations": status.conversations,
            "feedback": status.feedback,
            "events": status.events,
            "pending": status.pending(),
            "bytes": status.bytes,
            "lastSequence": status.last_sequence,
            "setAside": set_aside,
            "locked": status.locked,
        })
        .to_string()
            + "\n"
    } else {
        let mut text = format!(
            "pending: {} records ({} conversations, {} feedback, {} events)\nbytes: {}\nlast sequence number: {}\nin use by a process: {}\n",
            status.pending(),
            status.conversations,
            status.feedback,
            status.events,
            status.bytes,
            status.last_sequence,
            if status.locked { "yes" } else { "no" }
        );
        for path in &set_aside {
            text.push_str(&format!("damaged database set aside: {path}\n"));
        }
        text
    };
    crate::output::emit(&text, global.output.as_deref())
}
