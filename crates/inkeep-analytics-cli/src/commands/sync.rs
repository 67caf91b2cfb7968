//! `sync`: keeps a local mirror (an SQLite file or a Parquet dataset) up to date through the mirror crate; this adds the flags, the progress bar and the summary.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::{ArgGroup, Args};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use inkeep_analytics::Client;
use inkeep_analytics_mirror::{Changes, Error, ParquetMirror, Report, SqliteMirror, SyncOptions};

use crate::cli::{Format, GlobalOptions};
use crate::failure::Failure;
use crate::output;

/// Where the mirror is.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["db", "parquet"])))]
pub struct SyncArgs {
    /// An SQLite file (created when missing): tables conversations, messages, feedback, sync_runs.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// A directory of Parquet files, Hive-partitioned by month (created when missing).
    #[arg(long, value_name = "DIR")]
    pub parquet: Option<PathBuf>,
    /// Records per request (1 to the API's largest page).
    #[arg(long, default_value_t = inkeep_analytics::listing::MAX_PAGE_SIZE, allow_negative_numbers = true)]
    pub page_size: i64,
}

/// Runs one sync and prints what it changed.
pub async fn run(global: &GlobalOptions, client: &Client, args: SyncArgs) -> Result<(), Failure> {
    let format = global.format.unwrap_or(Format::Table);
    if !matches!(format, Format::Table | Format::Json) {
        return Err(Failure::Usage(
            "sync prints a summary, or one JSON object with --format json".into(),
        ));
    }
    let progress = progress_bar(global);
    let bar = progress.clone();
    let options = SyncOptions::default()
        .page_size(args.page_size)
        .on_progress(move |progress| {
            bar.set_length(progress.total.max(progress.listed));
            bar.set_position(progress.listed);
            bar.set_message(progress.what);
        });
    // A sync reads every page of two listings: a long job, whose requests retry for
    // `--retry-for` rather than a count, as an export's do.
    let client = &super::sandbox::for_long_job(global, client);
    let started = Instant::now();
    let (report, target) = match (&args.db, &args.parquet) {
        (Some(db), _) => (
            SqliteMirror::new(db).sync(client, &options).await,
            db.display().to_string(),
        ),
        (None, Some(dir)) => (
            ParquetMirror::new(dir).sync(client, &options).await,
            dir.display().to_string(),
        ),
        (None, None) => return Err(Failure::Usage("give --db FILE or --parquet DIR".into())),
    };
    progress.finish_and_clear();
    let report = report.map_err(failure)?;
    let text = match format {
        Format::Json => serde_json::to_string(&report).unwrap_or_default() + "\n",
        _ => summary(&report, &target, started.elapsed().as_secs_f64()),
    };
    output::emit(&text, global.output.as_deref())
}

/// The mirror's errors as the program's failures: the API's keep their exit codes, a path that
/// is not a mirror is a usage error, the rest are local failures.
fn failure(error: Error) -> Failure {
    match error {
        Error::Api { what, source } => Failure::Api {
            what: format!("syncing {what}"),
            error: source,
        },
        Error::NotAMirror { .. } | Error::NewerSchema { .. } | Error::InvalidInput(_) => {
            Failure::Usage(error.to_string())
        }
        other => Failure::Io {
            what: "sync failed".into(),
            error: std::io::Error::other(other),
        },
    }
}

fn summary(report: &Report, target: &str, seconds: f64) -> String {
    let line = |what: &str, changes: &Changes| {
        format!(
            "{what:<14} {:>7} inserted {:>7} updated {:>7} deleted {:>8} unchanged\n",
            changes.inserted, changes.updated, changes.deleted, changes.unchanged
        )
    };
    let mut text = String::new();
    text.push_str(&line("conversations", &report.conversations));
    text.push_str(&line("messages", &report.messages));
    text.push_str(&line("feedback", &report.feedback));
    if let Some(partitions) = report.partitions {
        text.push_str(&format!(
            "partitions     {:>7} written  {:>7} removed\n",
            partitions.written, partitions.removed
        ));
    }
    let verb = if report.changed() {
        "updated"
    } else {
        "already up to date"
    };
    text.push_str(&format!("{target} {verb} in {seconds:.1} s\n"));
    if !report.complete {
        text.push_str(
            "the API's totals changed while listing: nothing was deleted; the next sync catches up\n",
        );
    }
    text
}

fn progress_bar(global: &GlobalOptions) -> ProgressBar {
    if global.quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg} {pos}/{len} [{elapsed_precise}] {per_sec}")
    {
        bar.set_style(style);
    }
    bar
}
