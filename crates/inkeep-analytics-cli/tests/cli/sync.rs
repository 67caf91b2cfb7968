//! `sync`: the program's summary and JSON report, and a sync killed mid-run or stopped by a full
//! disk, which must leave the previous mirror whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inkeep_analytics_sandbox::FaultConfig;
use serde_json::{Value, json};

use crate::support::{Output, Running, Scratch, Server, run};

/// The conversations and feedback a mirror holds, by id, as their raw bytes; the number of runs.
fn mirrored(path: &Path) -> (HashMap<String, String>, HashMap<String, String>, i64) {
    let db = match rusqlite::Connection::open(path) {
        Ok(db) => db,
        Err(error) => panic!("cannot open {}: {error}", path.display()),
    };
    let rows = |sql: &str| -> HashMap<String, String> {
        let mut statement = db.prepare(sql).expect("a statement");
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("a query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let runs: i64 = db
        .query_row("SELECT count(*) FROM sync_runs", [], |row| row.get(0))
        .expect("a count");
    (
        rows("SELECT id, raw FROM conversations"),
        rows("SELECT id, raw FROM feedback"),
        runs,
    )
}

fn report(output: &str) -> Value {
    match serde_json::from_str(output) {
        Ok(value) => value,
        Err(error) => panic!("not one JSON object ({error}): {output}"),
    }
}

#[test]
fn a_sync_killed_mid_run_leaves_the_previous_mirror() {
    let server = Server::start();
    let scratch = Scratch::new();
    let path = scratch.join("mirror.db");
    let first = run(server
        .cli()
        .args(["sync", "--format", "json", "--db"])
        .arg(&path))
    .ok();
    let first = report(&first);
    let conversations = server.raw_conversations();
    let feedback = server.raw_feedback();
    assert_eq!(first["conversations"]["inserted"], conversations.len());
    assert_eq!(first["feedback"]["inserted"], feedback.len());
    let before = mirrored(&path);
    assert_eq!(
        (&before.0, &before.1, before.2),
        (&conversations, &feedback, 1)
    );

    for n in 0..3 {
        let (status, body) = server.post(
            "/conversations",
            &json!({
                "id": format!("sync-killed-{n}"),
                "type": "openai",
                "messages": [{"role": "user", "content": format!("question {n}")}],
            }),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    // Slow answers, so that the run is killed with pages applied but not committed.
    server
        .sandbox()
        .set_faults(FaultConfig {
            delayed: 1.0,
            delay: Duration::from_millis(150),
            ..FaultConfig::default()
        })
        .expect("faults");
    let answered = server.sandbox().requests_answered();
    let mut command = server.cli();
    command
        .args(["sync", "--page-size", "5", "--db"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut sync = Running::spawn(&mut command);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.sandbox().requests_answered() < answered + 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        server.sandbox().requests_answered() >= answered + 4,
        "the sync never got going"
    );
    sync.kill();
    assert_eq!(mirrored(&path), before, "the killed run changed the mirror");

    server
        .sandbox()
        .set_faults(FaultConfig::default())
        .expect("no faults");
    let second = run(server
        .cli()
        .args(["sync", "--format", "json", "--db"])
        .arg(&path))
    .ok();
    let second = report(&second);
    assert_eq!(
        second["conversations"],
        json!({"inserted": 3, "updated": 0, "deleted": 0, "unchanged": conversations.len()})
    );
    let after = mirrored(&path);
    assert_eq!(after.0, server.raw_conversations());
    assert_eq!(after.2, 2, "the killed run left no record of itself");
}

#[test]
fn the_summary_says_what_changed_and_bad_targets_are_usage_errors() {
    let server = Server::start();
    let scratch = Scratch::new();
    let path = scratch.join("mirror.db");
    let text = run(server.cli().args(["sync", "--db"]).arg(&path)).ok();
    assert!(text.starts_with("conversations "), "{text}");
    assert!(text.contains(" inserted "), "{text}");
    assert!(text.contains("updated in"), "{text}");
    let again = run(server.cli().args(["sync", "--db"]).arg(&path)).ok();
    assert!(again.contains("already up to date"), "{again}");

    let notes = scratch.join("notes.txt");
    std::fs::write(&notes, "not a mirror").expect("written");
    let refused = run(server.cli().args(["sync", "--db"]).arg(&notes));
    refused.exits(2);
    assert!(
        refused.error_line().contains("not a mirror"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read(&notes).expect("readable"), b"not a mirror");

    run(server.cli().args(["sync"])).exits(2);
    let dataset = scratch.join("dataset");
    let parquet = report(
        &run(server
            .cli()
            .args(["sync", "--format", "json", "--parquet"])
            .arg(&dataset))
        .ok(),
    );
    assert!(
        parquet["partitions"]["written"].as_u64() > Some(0),
        "{parquet}"
    );
}

/// Runs `command` (the program with its arguments, `--db PATH` last to come) with `--db DIR/mirror.db`
/// on a nearly full disk of its own, after copying `mirror` there: a tmpfs of the mirror's size
/// and 512 KiB more, mounted in a user and mount namespace of the child's own (Linux); where
/// namespaces are not allowed, a file size limit (`ulimit -f`) of about as much. Returns the
/// run's output, the mirror as the run left it (copied back next to `mirror`, with its journal
/// if one was left), and whether it was a real full disk.
#[cfg(target_os = "linux")]
fn sync_on_a_full_disk(command: &Command, mirror: &Path, disk: &Path) -> (Output, PathBuf, bool) {
    let size_kib = std::fs::metadata(mirror).expect("the mirror").len() / 1024 + 512;
    let after = mirror.with_extension("after");
    let namespaces = Command::new("unshare")
        .args(["-rm", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    std::fs::create_dir_all(disk).expect("a directory");
    let script = if namespaces {
        format!(
            r#"disk="$1"; mirror="$2"; after="$3"; shift 3
mount -t tmpfs -o size={size_kib}k tmpfs "$disk" || exit 99
cp "$mirror" "$disk/mirror.db" || exit 99
"$@" "$disk/mirror.db"; status=$?
ls -A "$disk" > "$after.files"
cp "$disk/mirror.db" "$after" || exit 99
if [ -e "$disk/mirror.db-journal" ]; then cp "$disk/mirror.db-journal" "$after-journal" || exit 99; fi
exit $status"#
        )
    } else {
        // POSIX counts `ulimit -f` in 512-byte blocks, bash in KiB: either way a write some way
        // past the mirror's size fails (with EFBIG, as SIGXFSZ is ignored) instead of the disk.
        let blocks = size_kib * 2;
        format!(
            r#"disk="$1"; mirror="$2"; after="$3"; shift 3
cp "$mirror" "$disk/mirror.db" || exit 99
(trap '' XFSZ; ulimit -f {blocks}; exec "$@" "$disk/mirror.db"); status=$?
ls -A "$disk" > "$after.files"
cp "$disk/mirror.db" "$after" || exit 99
if [ -e "$disk/mirror.db-journal" ]; then cp "$disk/mirror.db-journal" "$after-journal" || exit 99; fi
exit $status"#
        )
    };
    let mut wrapped = if namespaces {
        let mut wrapped = Command::new("unshare");
        wrapped.args(["-rm", "sh", "-c", &script, "sh"]);
        wrapped
    } else {
        let mut wrapped = Command::new("sh");
        wrapped.args(["-c", &script, "sh"]);
        wrapped
    };
    wrapped
        .arg(disk)
        .arg(mirror)
        .arg(&after)
        .arg(command.get_program())
        .args(command.get_args());
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    let output = run(&mut wrapped);
    assert_ne!(
        output.code,
        Some(99),
        "the test's setup failed: {}",
        output.stderr
    );
    (output, after, namespaces)
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_fails_the_sync_with_a_clear_error_and_leaves_the_mirror() {
    let server = Server::start();
    let scratch = Scratch::new();
    let path = scratch.join("mirror.db");
    run(server.cli().args(["sync", "--db"]).arg(&path)).ok();
    let before = mirrored(&path);
    // Four conversations of 1.5 MB: the next run needs far more room than the disk has left.
    for n in 0..4 {
        let (status, body) = server.post(
            "/conversations",
            &json!({
                "id": format!("sync-full-disk-{n}"),
                "type": "openai",
                "messages": [{"role": "user", "content": "x".repeat(1_500_000)}],
            }),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let mut command = server.cli();
    command.args(["sync", "--db"]);
    let (output, after, full_disk) = sync_on_a_full_disk(&command, &path, &scratch.join("disk"));
    assert_ne!(output.code, Some(0), "the sync succeeded on a full disk");
    let line = output.error_line();
    assert!(
        line.contains("mirror.db"),
        "the error names the mirror: {line}"
    );
    if full_disk {
        assert!(
            line.contains("full"),
            "the error says the disk is full: {line}"
        );
    }
    // Opened as SQLite finds it, with the rollback journal the failed run may have left (the
    // journal is SQLite's to play back), the mirror is the one before the run.
    assert_eq!(
        mirrored(&after),
        before,
        "the failed run changed the mirror"
    );
    let left = std::fs::read_to_string(after.with_extension("after.files")).expect("a listing");
    assert!(
        !left.contains("partial"),
        "the run left a partial file: {left}"
    );

    // With room again, the same mirror syncs.
    let report = report(
        &run(server
            .cli()
            .args(["sync", "--format", "json", "--db"])
            .arg(&path))
        .ok(),
    );
    assert_eq!(report["conversations"]["inserted"], 4);
}

/// The README's two-line starts, run as written from a scratch folder: each `inkeep-analytics
/// sync` line against the sandbox, each `sqlite3 FILE "SQL"` line through SQLite, and each
/// `duckdb` line's file pattern matched against the dataset the sync wrote.
#[test]
fn the_readme_two_line_starts_work_as_written() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let section = readme
        .split("\n## ")
        .find(|section| section.starts_with("A local mirror for analysis"))
        .expect("the README's sync section");
    let lines: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .flat_map(str::lines)
        .collect();
    let server = Server::start();
    let scratch = Scratch::new();
    let mut ran = Vec::new();
    for line in lines {
        if let Some(args) = line.strip_prefix("inkeep-analytics ") {
            let mut command = server.cli();
            command
                .current_dir(scratch.join(""))
                .args(args.split_whitespace());
            run(&mut command).ok();
            ran.push("sync");
        } else if let Some(rest) = line.strip_prefix("sqlite3 ") {
            let (file, sql) = rest.split_once(' ').expect("sqlite3 FILE SQL");
            let sql = sql.trim_matches('"');
            let db = rusqlite::Connection::open(scratch.join(file)).expect("the mirror");
            let rows: i64 = db
                .query_row(&format!("SELECT count(*) FROM ({sql})"), [], |row| {
                    row.get(0)
                })
                .expect("the README's query runs");
            assert!(rows > 0, "{sql} answered nothing");
            ran.push("sqlite3");
        } else if line.starts_with("duckdb ") {
            let pattern = line
                .split("read_parquet('")
                .nth(1)
                .and_then(|rest| rest.split('\'').next())
                .expect("a read_parquet pattern");
            let (table, rest) = pattern.split_once("/*/").expect("DIR/TABLE/*/*.parquet");
            assert_eq!(rest, "*.parquet", "{pattern}");
            let partitions = std::fs::read_dir(scratch.join(table)).expect("the table's folder");
            let mut files = 0;
            for partition in partitions {
                let partition = partition.expect("a partition").path();
                let name = partition
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                assert!(
                    name.is_some_and(|name| name.starts_with("month=")),
                    "{}",
                    partition.display()
                );
                files += std::fs::read_dir(&partition)
                    .expect("a partition's folder")
                    .filter_map(Result::ok)
                    .filter(|file| file.file_name().to_string_lossy().ends_with(".parquet"))
                    .count();
            }
            assert!(files > 0, "{pattern} matches no file");
            ran.push("duckdb");
        }
    }
    assert_eq!(
        ran,
        ["sync", "sqlite3", "sync", "duckdb"],
        "the README's starts"
    );
}
