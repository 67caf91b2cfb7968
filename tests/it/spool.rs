//! The recorder's spool through what a disk does to it: a database damaged between two runs, a
//! full file system, and a recorder dropped while the API is down, whose spool the next one opens.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inkeep_analytics::types::{CreateOpenAiConversation, CreateOpenAiMessage};
use inkeep_analytics::{
    Client,
    config::RetryPolicy,
    recorder::{Outcome, Recorder, SpoolStatus},
};
use inkeep_analytics_sandbox::{Sandbox, SandboxConfig};

use crate::support::LogBuffer;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A directory under the system's temporary one, removed when dropped (also when a test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(
            format!(
                "inkeep-it-spool-{name}-{}-{:?}",
                std::process::id(),
                Instant::now()
            )
            .replace(['{', '}', ' ', ':', ','], ""),
        );
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A client of an API that is down: nothing listens on its port.
fn down_client() -> Result<Client, Box<dyn std::error::Error>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(Client::builder()
        .api_key("sk-test")
        .base_url(format!("http://127.0.0.1:{port}"))
        .build()?)
}

/// A session of `turns` turns whose messages carry `size` bytes of text each.
fn conversation(
    session: usize,
    turns: usize,
    size: usize,
) -> Result<CreateOpenAiConversation, inkeep_analytics::Error> {
    let text = "w".repeat(size);
    let mut messages = Vec::new();
    for turn in 1..=turns {
        messages.push(CreateOpenAiMessage::user(&text).with_id(format!("sp{session}-u{turn}"))?);
        messages
            .push(CreateOpenAiMessage::assistant(&text).with_id(format!("sp{session}-a{turn}"))?);
    }
    CreateOpenAiConversation::new(messages).with_id(format!("sp{session}"))
}

/// Bytes overwritten in the middle of the spool's database after a run (its log copied into it
/// first, as the spool's checkpoints do): the next run sets it aside, says so, recovers what it
/// can read, and records and delivers as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_spool_is_set_aside_and_reported_and_recording_goes_on() -> TestResult {
    let dir = TempDir::new("damaged");
    {
        let recorder = Recorder::builder(down_client()?).spool(&dir.0).build()?;
        for s in 0..200 {
            recorder.record_conversation(conversation(s, 5, 100)?)?;
        }
        recorder.shutdown(Duration::from_millis(50)).await;
    }
    let database = dir.0.join("spool.sqlite3");
    rusqlite::Connection::open(&database)?.query_row(
        "PRAGMA wal_checkpoint(TRUNCATE)",
        [],
        |_| Ok(()),
    )?;
    // One whole page in the middle: SQLite keeps no checksum of its pages, so that damage it
    // can see is a page that is no page (its header gone), as a torn or lost write leaves.
    let header = std::fs::read(&database)?;
    let page_size = u64::from(u16::from_be_bytes([header[16], header[17]]));
    let len = std::fs::metadata(&database)?.len();
    let mut file = std::fs::OpenOptions::new().write(true).open(&database)?;
    file.seek(SeekFrom::Start(len / 2 / page_size * page_size))?;
    file.write_all(&vec![0x5A; page_size as usize])?;
    drop(file);

    let sandbox = Sandbox::start_with(SandboxConfig {
        conversations: 0,
        ..SandboxConfig::default()
    })
    .await?;
    let client = Client::builder()
        .api_key(sandbox.api_key())
        .base_url(sandbox.base_url())
        .retry_policy(RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(200),
            ..RetryPolicy::default()
        })
        .build()?;
    let logs = LogBuffer::default();
    let recorder = {
        let _guard = logs.install();
        Recorder::builder(client.clone()).spool(&dir.0).build()?
    };
    let text = logs.text();
    assert!(
        text.contains("damaged") && text.contains("set aside") && text.contains("recovered="),
        "{text}"
    );
    assert_eq!(recorder.stats().spool_set_aside, 1);
    let status = SpoolStatus::read(&dir.0)?;
    assert_eq!(status.set_aside.len(), 1, "{status:?}");
    assert!(status.set_aside[0].exists());
    let recovered = status.pending();
    assert!(recovered > 100 && recovered < 200, "{status:?}");

    let after = recorder.record_conversation(conversation(1000, 1, 10)?)?;
    assert_eq!(after.outcome, Outcome::Spilled, "behind what was recovered");
    let report = recorder.shutdown(Duration::from_secs(60)).await;
    assert!(report.complete, "{report:?}");
    assert_eq!(report.delivered, recovered + 1, "{report:?}");
    client.get_conversation("sp1000").await?;
    assert_eq!(SpoolStatus::read(&dir.0)?.pending(), 0);
    Ok(())
}

/// A frame in the middle of the spool's log overwritten between two runs: SQLite's recovery
/// keeps the log up to the damage and drops the commits after it without a word, so the next
/// run says so, with how many were lost, and keeps a copy of the damaged files aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_in_the_spools_log_is_reported_with_what_was_lost() -> TestResult {
    let dir = TempDir::new("damaged-log");
    let database = dir.0.join("spool.sqlite3");
    {
        let recorder = Recorder::builder(down_client()?).spool(&dir.0).build()?;
        recorder.record_conversation(conversation(0, 1, 100)?)?;
        // A reader holding a snapshot keeps the log from being restarted, so that every later
        // commit stays in it, one after the other.
        let reader = rusqlite::Connection::open_with_flags(
            &database,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        reader.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
        reader.execute_batch("BEGIN")?;
        reader.query_row("SELECT count(*) FROM records", [], |_| Ok(()))?;
        for s in 1..60 {
            recorder.record_conversation(conversation(s, 1, 100)?)?;
        }
        recorder.shutdown(Duration::from_millis(50)).await;
        reader.execute_batch("COMMIT")?;
    }
    let log = dir.0.join("spool.sqlite3-wal");
    let mut bytes = std::fs::read(&log)?;
    let page_size = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let frames = (bytes.len() - 32) / (24 + page_size);
    assert!(frames > 40, "{frames} frames");
    let middle = 32 + frames / 2 * (24 + page_size) + 24 + page_size / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&log, &bytes)?;

    let logs = LogBuffer::default();
    let recorder = {
        let _guard = logs.install();
        Recorder::builder(down_client()?)
            .spool(&dir.0)
            .drop_timeout(Duration::from_millis(10))
            .build()?
    };
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| line.contains("log was damaged"))
        .unwrap_or_default();
    assert!(line.contains("lost="), "{text}");
    assert!(!line.contains("lost=0"), "{text}");
    assert_eq!(recorder.stats().spool_set_aside, 1);
    assert_eq!(SpoolStatus::read(&dir.0)?.set_aside.len(), 1);
    Ok(())
}

/// Unmounts a file system mounted by a test, also when the test fails.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Set in a test's child process, run again inside a user and mount namespace of its own.
const IN_A_NAMESPACE: &str = "INKEEP_IT_IN_A_MOUNT_NAMESPACE";

/// A 1 MiB file system at `dir`, so that the disk really fills (`ENOSPC`): mounted here where this
/// process may (CI runs as root); elsewhere `test` is run again in a child process inside a user
/// and mount namespace of its own (`unshare -Urm`, which an unprivileged user may create), where it
/// can mount one, and `None` says the child ran it and passed. Where neither can be done, the test
/// fails with the reason rather than pass without checking a full disk.
fn small_file_system(
    dir: &Path,
    test: &str,
) -> Result<Option<Mounted>, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
        .arg(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if mounted {
        return Ok(Some(Mounted(dir.to_path_buf())));
    }
    if std::env::var_os(IN_A_NAMESPACE).is_some() {
        return Err(
            "no tmpfs could be mounted, even in a user and mount namespace of the test's own"
                .into(),
        );
    }
    let namespaces = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
        .output();
    match namespaces {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            return Err(format!(
                "a full disk cannot be made here: this process may not mount a tmpfs, nor create a user and mount namespace (unshare -Urm: {})",
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        Err(error) => {
            return Err(format!(
                "a full disk cannot be made here: this process may not mount a tmpfs, and unshare cannot be run ({error})"
            )
            .into());
        }
    }
    // The child runs this one test and shows its output; a child that hangs is stopped long after
    // any run on a loaded machine would have ended, so that the test fails instead of hanging.
    let mut child = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .arg(std::env::current_exe()?)
        .args([test, "--exact", "--test-threads=1", "--nocapture"])
        .env(IN_A_NAMESPACE, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    // Read on a thread of its own, so that a child with much to say never waits on a full pipe.
    let stdout = child.stdout.take().map(|mut stdout| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        })
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(
                format!("{test}, run again in a user and mount namespace, did not end").into(),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = stdout
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    println!("{output}");
    if !status.success() {
        return Err(format!(
            "{test}, run again in a user and mount namespace where it mounts a tmpfs, failed ({status}); its output is above"
        )
        .into());
    }
    // A name libtest does not know runs nothing, and passes.
    if !output.contains("test result: ok. 1 passed") {
        return Err(format!("{test} did not run in its child process; its output is above").into());
    }
    Ok(None)
}

/// Records 600 conversations of about 5 KB each (3 MB in all), and gives each call's outcome.
fn record_600_conversations_of_5_kb(
    recorder: &Recorder,
) -> Result<Vec<Outcome>, Box<dyn std::error::Error>> {
    let mut outcomes = Vec::new();
    for s in 0..600 {
        outcomes.push(
            recorder
                .record_conversation(conversation(s, 1, 2500)?)?
                .outcome,
        );
    }
    Ok(outcomes)
}

/// The warning that the spool cannot take records, which must be said once and only once.
fn the_one_spool_warning(text: &str) -> &str {
    let warnings: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("the spool cannot take records"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning: {text}");
    warnings[0]
}

/// The name libtest knows a test of this module by.
fn test_name(function: &str) -> String {
    let module = module_path!();
    let module = module.split_once("::").map_or(module, |(_, below)| below);
    format!("{module}::{function}")
}

/// A spool on a full file system (a 1 MiB tmpfs, really out of space): recording goes on in
/// memory within the queue's bounds, one warning says why in plain words, and what the queue
/// cannot take either is counted by reason, never refused as a configuration error.
#[test]
fn a_spool_on_a_full_disk_keeps_records_in_memory_with_a_plain_warning() -> TestResult {
    let dir = TempDir::new("full");
    let Some(_mounted) = small_file_system(
        &dir.0,
        &test_name("a_spool_on_a_full_disk_keeps_records_in_memory_with_a_plain_warning"),
    )?
    else {
        return Ok(());
    };
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let recorder = Recorder::builder(down_client()?)
        .spool(dir.0.join("spool"))
        .max_pending_records(400)
        .drop_timeout(Duration::from_millis(10))
        .build()?;
    let outcomes = record_600_conversations_of_5_kb(&recorder)?;
    let count = |outcome: Outcome| outcomes.iter().filter(|o| **o == outcome).count();
    let stats = recorder.stats();
    let text = logs.text();
    assert_eq!(count(Outcome::Queued), 400, "{outcomes:?}");
    assert_eq!(count(Outcome::DroppedSpoolUnwritable), 200, "{outcomes:?}");
    assert_eq!(stats.dropped_spool_unwritable, 200, "{stats:?}");
    assert_eq!(
        stats.dropped_spool_full, 0,
        "a full disk is not a full spool: {stats:?}"
    );
    assert!(stats.memory_only > 0, "{stats:?}");
    assert!(
        the_one_spool_warning(&text).contains("no space left on device"),
        "{text}"
    );
    assert!(!text.contains("configuration error"), "{text}");
    drop(recorder);
    Ok(())
}

/// A spool at its size limit (`max_spool_bytes`, on a disk with room): as on a full disk,
/// recording goes on in memory, but the warning and the counts name the limit, which the user
/// can raise, rather than the disk.
#[test]
fn a_full_spool_keeps_records_in_memory_and_names_its_limit() -> TestResult {
    let dir = TempDir::new("full-spool");
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let recorder = Recorder::builder(down_client()?)
        .spool(dir.0.join("spool"))
        .max_pending_records(400)
        .max_spool_bytes(1024 * 1024)
        .drop_timeout(Duration::from_millis(10))
        .build()?;
    let outcomes = record_600_conversations_of_5_kb(&recorder)?;
    let count = |outcome: Outcome| outcomes.iter().filter(|o| **o == outcome).count();
    let stats = recorder.stats();
    let text = logs.text();
    assert_eq!(count(Outcome::Queued), 400, "{outcomes:?}");
    assert_eq!(count(Outcome::DroppedSpoolFull), 200, "{outcomes:?}");
    assert_eq!(stats.dropped_spool_full, 200, "{stats:?}");
    assert_eq!(stats.dropped_spool_unwritable, 0, "{stats:?}");
    assert!(
        the_one_spool_warning(&text).contains("max_spool_bytes"),
        "{text}"
    );
    assert!(!text.contains("configuration error"), "{text}");
    drop(recorder);
    Ok(())
}

/// A spool on a file system that is already full when the recorder starts: the recorder starts
/// all the same, keeps records in memory, and one warning says why in plain words, never a
/// configuration error. The small tmpfs is mounted as [`small_file_system`] says.
#[test]
fn a_recorder_started_on_a_full_disk_keeps_records_in_memory_with_a_plain_warning() -> TestResult {
    let dir = TempDir::new("full-at-start");
    let Some(_mounted) = small_file_system(
        &dir.0,
        &test_name(
            "a_recorder_started_on_a_full_disk_keeps_records_in_memory_with_a_plain_warning",
        ),
    )?
    else {
        return Ok(());
    };
    // Fill the file system to its last byte.
    {
        let mut filler = std::fs::File::create(dir.0.join("filler"))?;
        let block = vec![0u8; 4096];
        loop {
            match filler.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let recorder = Recorder::builder(down_client()?)
        .spool(dir.0.join("spool"))
        .drop_timeout(Duration::from_millis(10))
        .build()?;
    let recorded = recorder.record_conversation(conversation(1, 1, 10)?)?;
    assert_eq!(recorded.outcome, Outcome::Queued);
    let stats = recorder.stats();
    assert_eq!((stats.pending, stats.memory_only), (1, 1), "{stats:?}");
    let text = logs.text();
    assert!(
        the_one_spool_warning(&text).contains("no space left on device"),
        "{text}"
    );
    drop(recorder);
    Ok(())
}

/// A server that accepts connections and never answers, until the test ends.
fn silent_server() -> Result<(String, std::thread::JoinHandle<()>), std::io::Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    listener.set_nonblocking(true)?;
    let thread = std::thread::spawn(move || {
        let started = Instant::now();
        let mut held = Vec::new();
        // It stops by itself, long after the test's waits.
        while started.elapsed() < Duration::from_secs(30) {
            match listener.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Ok((url, thread))
}

/// Dropped without a shutdown while the API never answers, a recorder stops by its drop timeout
/// and releases its spool, which keeps what was not delivered: a new recorder in the same
/// process opens the same directory and holds it.
#[test]
fn a_recorder_dropped_with_the_api_down_releases_its_spool_by_its_deadline() -> TestResult {
    let (url, _server) = silent_server()?;
    let client = Client::builder()
        .api_key("sk-test")
        .base_url(&url)
        .timeout(Duration::from_secs(60))
        .build()?;
    let dir = TempDir::new("drop");
    let recorder = Recorder::builder(client.clone())
        .spool(&dir.0)
        .drop_timeout(Duration::from_millis(300))
        .build()?;
    for s in 0..20 {
        recorder.record_conversation(conversation(s, 1, 10)?)?;
    }
    let dropped = Instant::now();
    drop(recorder);
    // The test waits as long as a loaded machine may need; it only fails if the spool is never
    // released (it was kept for as long as the process ran).
    let reopened = loop {
        match Recorder::builder(client.clone()).spool(&dir.0).build() {
            Ok(recorder) => break recorder,
            Err(_) if dropped.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => return Err(error.into()),
        }
    };
    assert!(
        dropped.elapsed() >= Duration::from_millis(250),
        "the worker kept trying until its deadline"
    );
    // Read from the tables: the new recorder's stats may count a record twice for an instant
    // while it reads the spool back into its queue.
    assert_eq!(SpoolStatus::read(&dir.0)?.pending(), 20);
    reopened.shutdown_blocking(Duration::from_millis(50));
    Ok(())
}
