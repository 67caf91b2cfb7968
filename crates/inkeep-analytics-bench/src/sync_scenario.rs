//! The `sync` scenario: `inkeep-analytics sync` into a new SQLite file, a re-run with nothing changed, into a new Parquet dataset, and the Python loader, side by side on the same served pages.
//!
//! The listing alone (the SDK's scans of both resources) is measured in the same rounds, as the
//! bound a re-run with nothing changed is held to. Contenders alternate within each round, so
//! that a machine busy with something else slows all of them alike. With
//! `INKEEP_BENCH_SYNC_BASELINE=PATH` naming another build of the program (an earlier commit's),
//! its three syncs run in the same rounds, for ratios between the two builds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use inkeep_analytics_bench::server::API_KEY;

use super::{Options, Setup, dataset, prepare_peers, workspace_root};

const SYNC_DB_NEW: &str = "sync --db, new file";
const SYNC_DB_RERUN: &str = "sync --db, re-run with nothing changed";
const SYNC_PARQUET_NEW: &str = "sync --parquet, new dataset";
const PYTHON_LOADER: &str = "Python loader (requests.Session, json, sqlite3.executemany)";
const SCAN_CONVERSATIONS: &str = "SDK scan of conversations";
const SCAN_FEEDBACK: &str = "SDK scan of feedback";
const BASELINE_DB_NEW: &str = "baseline: sync --db, new file";
const BASELINE_DB_RERUN: &str = "baseline: sync --db, re-run with nothing changed";
const BASELINE_PARQUET_NEW: &str = "baseline: sync --parquet, new dataset";

/// Another build of the program (an earlier commit's) to measure side by side with this one.
const BASELINE_VARIABLE: &str = "INKEEP_BENCH_SYNC_BASELINE";

/// One contender: what it runs, and what must be removed before each run.
struct Contender {
    name: &'static str,
    command: Vec<String>,
    env: Vec<(String, String)>,
    fresh: Option<PathBuf>,
}

/// One measured run: wall time in seconds, peak RSS in KiB, and what it printed.
struct Sample {
    seconds: f64,
    max_rss_kib: u64,
    stdout: String,
}

pub(crate) fn run(options: &Options) -> Result<(), String> {
    let root = workspace_root();
    let setup = Setup {
        wan: None,
        nginx: options.server == "nginx",
    };
    let data = dataset(options.conversations, options.feedback, setup)?;
    let peers = prepare_peers(&root);
    let scratch = root.join("target/bench-sync");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let cli = me
        .parent()
        .map(|dir| dir.join("inkeep-analytics"))
        .ok_or("no directory of the harness")?
        .display()
        .to_string();
    let base = data.base_url();
    let key = vec![("INKEEP_ANALYTICS_API_KEY".to_string(), API_KEY.to_string())];
    let baseline = std::env::var(BASELINE_VARIABLE).ok();
    let sync_with = |program: &str, target: &[&str]| {
        let mut command = vec![
            program.to_string(),
            "--quiet".into(),
            "--base-url".into(),
            base.clone(),
            "sync".into(),
            "--format".into(),
            "json".into(),
        ];
        command.extend(target.iter().map(|s| s.to_string()));
        command
    };
    let sync = |target: &[&str]| sync_with(&cli, target);
    let path = |name: &str| scratch.join(name).display().to_string();
    let scan = |resource: &str| {
        vec![
            me.display().to_string(),
            "scan".into(),
            "--base-url".into(),
            base.clone(),
            "--resource".into(),
            resource.into(),
        ]
    };

    // The mirror the re-run compares with, made once.
    let rerun_db = path("rerun.db");
    let made = sample(&me, &sync(&["--db", &rerun_db]), &key)?;
    check_sync(&made.stdout, options)?;

    let mut contenders = vec![
        Contender {
            name: SYNC_DB_NEW,
            command: sync(&["--db", &path("new.db")]),
            env: key.clone(),
            fresh: Some(scratch.join("new.db")),
        },
        Contender {
            name: SYNC_DB_RERUN,
            command: sync(&["--db", &rerun_db]),
            env: key.clone(),
            fresh: None,
        },
        Contender {
            name: SYNC_PARQUET_NEW,
            command: sync(&["--parquet", &path("dataset")]),
            env: key.clone(),
            fresh: Some(scratch.join("dataset")),
        },
        Contender {
            name: SCAN_CONVERSATIONS,
            command: scan("conversations"),
            env: Vec::new(),
            fresh: None,
        },
        Contender {
            name: SCAN_FEEDBACK,
            command: scan("feedback"),
            env: Vec::new(),
            fresh: None,
        },
    ];
    if let Some(baseline) = &baseline {
        let rerun = path("baseline-rerun.db");
        let made = sample(&me, &sync_with(baseline, &["--db", &rerun]), &key)?;
        check_sync(&made.stdout, options)?;
        contenders.extend([
            Contender {
                name: BASELINE_DB_NEW,
                command: sync_with(baseline, &["--db", &path("baseline-new.db")]),
                env: key.clone(),
                fresh: Some(scratch.join("baseline-new.db")),
            },
            Contender {
                name: BASELINE_DB_RERUN,
                command: sync_with(baseline, &["--db", &rerun]),
                env: key.clone(),
                fresh: None,
            },
            Contender {
                name: BASELINE_PARQUET_NEW,
                command: sync_with(baseline, &["--parquet", &path("baseline-dataset")]),
                env: key.clone(),
                fresh: Some(scratch.join("baseline-dataset")),
            },
        ]);
    }
    if let Some(env) = &peers.python {
        contenders.push(Contender {
            name: PYTHON_LOADER,
            command: vec![
                "python3".into(),
                root.join("xtask/peers/sync_sqlite.py")
                    .display()
                    .to_string(),
                base.clone(),
                API_KEY.into(),
                path("python.db"),
            ],
            env: env.clone(),
            fresh: Some(scratch.join("python.db")),
        });
    }
    for note in &peers.notes {
        eprintln!("{note}");
    }

    let mut samples: BTreeMap<&'static str, Vec<Sample>> = BTreeMap::new();
    for round in 0..options.rounds {
        for contender in &contenders {
            if let Some(fresh) = &contender.fresh {
                remove(fresh);
            }
            let measured = sample(&me, &contender.command, &contender.env)?;
            match contender.name {
                SYNC_DB_NEW | SYNC_PARQUET_NEW | BASELINE_DB_NEW | BASELINE_PARQUET_NEW => {
                    check_sync(&measured.stdout, options)?
                }
                SYNC_DB_RERUN | BASELINE_DB_RERUN => {
                    check_sync(&measured.stdout, options)?;
                    check_unchanged(&measured.stdout)?;
                }
                PYTHON_LOADER => check_records(&measured.stdout, options)?,
                _ => {}
            }
            eprintln!(
                "round {}: {:<62} {:>8.3} s {:>7} MiB",
                round + 1,
                contender.name,
                measured.seconds,
                measured.max_rss_kib / 1024
            );
            samples.entry(contender.name).or_default().push(measured);
        }
    }
    print_table(options, &samples);
    remove(&scratch);
    Ok(())
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_dir_all(path);
}

/// Runs `command` under `measure` in a process of its own.
fn sample(me: &Path, command: &[String], env: &[(String, String)]) -> Result<Sample, String> {
    let mut measure = Command::new(me);
    measure.arg("measure").arg("--").args(command);
    for (key, value) in env {
        measure.env(key, value);
    }
    let output = measure.output().map_err(|e| e.to_string())?;
    let line: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("{}: unreadable measurement: {e}", command.join(" ")))?;
    if line["code"] != 0 {
        return Err(format!(
            "{} failed ({}): {}",
            command.join(" "),
            line["code"],
            line["stderr"]
        ));
    }
    Ok(Sample {
        seconds: line["wall_ms"].as_f64().unwrap_or(0.0) / 1e3,
        max_rss_kib: line["max_rss_kib"].as_u64().unwrap_or(0),
        stdout: line["stdout"].as_str().unwrap_or_default().to_string(),
    })
}

/// A sync's report must account for every record served.
fn check_sync(stdout: &str, options: &Options) -> Result<(), String> {
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).map_err(|e| format!("not a report ({e}): {stdout}"))?;
    let held = |table: &str| {
        report[table]["inserted"].as_u64().unwrap_or(0)
            + report[table]["updated"].as_u64().unwrap_or(0)
            + report[table]["unchanged"].as_u64().unwrap_or(0)
    };
    if held("conversations") != options.conversations as u64
        || held("feedback") != options.feedback as u64
    {
        return Err(format!("the sync missed records: {stdout}"));
    }
    Ok(())
}

/// A re-run with nothing changed must write nothing.
fn check_unchanged(stdout: &str) -> Result<(), String> {
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).map_err(|e| format!("not a report ({e}): {stdout}"))?;
    for table in ["conversations", "messages", "feedback"] {
        for change in ["inserted", "updated", "deleted"] {
            if report[table][change] != 0 {
                return Err(format!("the re-run changed the mirror: {stdout}"));
            }
        }
    }
    Ok(())
}

fn check_records(stdout: &str, options: &Options) -> Result<(), String> {
    let summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("not a summary ({e}): {stdout}"))?;
    let expected = (options.conversations + options.feedback) as u64;
    if summary["records"].as_u64() != Some(expected) {
        return Err(format!("the loader missed records: {stdout}"));
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Prints the medians, the peaks of memory and the ratios the targets are stated in, as markdown.
fn print_table(options: &Options, samples: &BTreeMap<&'static str, Vec<Sample>>) {
    let wall = |name: &str| {
        let mut values: Vec<f64> = samples
            .get(name)
            .map(|s| s.iter().map(|s| s.seconds).collect())
            .unwrap_or_default();
        median(&mut values)
    };
    let rss = |name: &str| {
        samples
            .get(name)
            .and_then(|s| s.iter().map(|s| s.max_rss_kib).max())
            .unwrap_or(0)
    };
    println!(
        "\n{} conversations and {} feedback items, {} server, {} rounds (medians; peak RSS the largest of the rounds)\n",
        options.conversations, options.feedback, options.server, options.rounds
    );
    println!("| contender | wall (s) | peak RSS (MiB) |\n| --- | ---: | ---: |");
    for name in [
        SYNC_DB_NEW,
        SYNC_DB_RERUN,
        SYNC_PARQUET_NEW,
        PYTHON_LOADER,
        SCAN_CONVERSATIONS,
        SCAN_FEEDBACK,
        BASELINE_DB_NEW,
        BASELINE_DB_RERUN,
        BASELINE_PARQUET_NEW,
    ] {
        if samples.contains_key(name) {
            println!(
                "| {name} | {:.3} | {:.1} |",
                wall(name),
                rss(name) as f64 / 1024.0
            );
        }
    }
    let db = wall(SYNC_DB_NEW);
    let listing = wall(SCAN_CONVERSATIONS) + wall(SCAN_FEEDBACK);
    println!();
    if samples.contains_key(PYTHON_LOADER) && db > 0.0 {
        println!(
            "- Python loader / sync --db: {:.1}x (target: at least 5x)",
            wall(PYTHON_LOADER) / db
        );
    }
    if db > 0.0 {
        println!(
            "- sync --parquet / sync --db: {:.2}x (target: at most 1.5x)",
            wall(SYNC_PARQUET_NEW) / db
        );
    }
    if listing > 0.0 {
        println!(
            "- re-run with nothing changed / listing both resources: {:.2}x (target: at most 1x)",
            wall(SYNC_DB_RERUN) / listing
        );
    }
    if samples.contains_key(BASELINE_DB_NEW) {
        let baseline_db = wall(BASELINE_DB_NEW);
        for (what, this, baseline) in [
            ("sync --db, new file", db, baseline_db),
            (
                "re-run with nothing changed",
                wall(SYNC_DB_RERUN),
                wall(BASELINE_DB_RERUN),
            ),
            (
                "sync --parquet, new dataset",
                wall(SYNC_PARQUET_NEW),
                wall(BASELINE_PARQUET_NEW),
            ),
        ] {
            if this > 0.0 {
                println!(
                    "- {what}: the baseline takes {:.2}x this build's time",
                    baseline / this
                );
            }
        }
        if samples.contains_key(PYTHON_LOADER) && baseline_db > 0.0 {
            println!(
                "- baseline: Python loader / sync --db: {:.1}x; sync --parquet / sync --db: {:.2}x; re-run / listing: {:.2}x",
                wall(PYTHON_LOADER) / baseline_db,
                wall(BASELINE_PARQUET_NEW) / baseline_db,
                wall(BASELINE_DB_RERUN) / listing.max(f64::MIN_POSITIVE)
            );
        }
    }
}
