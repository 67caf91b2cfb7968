//! What a sync refuses, and what it leaves behind when it fails: never a half mirror, never a
//! touched file that is not a mirror, files only their owner may read.

use std::path::Path;

use inkeep_analytics_mirror::{Error, ParquetMirror, SqliteMirror, SyncOptions};
use inkeep_analytics_sandbox::FaultConfig;
use rusqlite::Connection;

use crate::support::{self, Scratch};

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("readable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_a_mirror_is_refused_untouched() {
    let (_sandbox, client) = support::sandbox().await;
    let scratch = Scratch::new("refuse");

    let text = scratch.path().join("notes.txt");
    std::fs::write(&text, "my notes, not a database\n").expect("written");
    let error = SqliteMirror::new(&text)
        .sync(&client, &SyncOptions::default())
        .await
        .expect_err("a text file is refused");
    assert!(matches!(error, Error::NotAMirror { .. }), "{error}");
    assert!(
        error.to_string().contains("not an SQLite database"),
        "{error}"
    );
    assert_eq!(bytes(&text), b"my notes, not a database\n");

    let other = scratch.path().join("other.db");
    {
        let db = Connection::open(&other).expect("a database");
        db.execute_batch("CREATE TABLE mine (x); INSERT INTO mine VALUES (1);")
            .expect("a table");
    }
    let before = bytes(&other);
    let error = SqliteMirror::new(&other)
        .sync(&client, &SyncOptions::default())
        .await
        .expect_err("another program's database is refused");
    assert!(error.to_string().contains("another program"), "{error}");
    assert_eq!(bytes(&other), before);

    let newer = scratch.path().join("newer.db");
    SqliteMirror::new(&newer)
        .sync(&client, &SyncOptions::default())
        .await
        .expect("a mirror");
    Connection::open(&newer)
        .and_then(|db| db.pragma_update(None, "user_version", 99))
        .expect("a newer version");
    let before = bytes(&newer);
    let error = SqliteMirror::new(&newer)
        .sync(&client, &SyncOptions::default())
        .await
        .expect_err("a newer layout is refused");
    assert!(
        matches!(error, Error::NewerSchema { found: 99, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("newer version"), "{error}");
    assert_eq!(bytes(&newer), before);

    let busy = scratch.path().join("busy");
    std::fs::create_dir_all(&busy).expect("a directory");
    std::fs::write(busy.join("report.csv"), "a,b\n").expect("written");
    let error = ParquetMirror::new(&busy)
        .sync(&client, &SyncOptions::default())
        .await
        .expect_err("a directory of other files is refused");
    assert!(error.to_string().contains("other files"), "{error}");
    assert_eq!(std::fs::read_dir(&busy).expect("listed").count(), 1);

    let error = ParquetMirror::new(&text)
        .sync(&client, &SyncOptions::default())
        .await
        .expect_err("a file is not a dataset");
    assert!(matches!(error, Error::NotAMirror { .. }), "{error}");

    // A path under a file cannot be created: the error says which and why.
    let error = SqliteMirror::new(text.join("mirror.db"))
        .sync(&client, &SyncOptions::default())
        .await
        .expect_err("an impossible path");
    assert!(matches!(error, Error::Io { .. }), "{error}");
    assert!(error.to_string().contains("notes.txt"), "{error}");

    let error = SqliteMirror::new(scratch.path().join("x.db"))
        .sync(&client, &SyncOptions::default().page_size(0))
        .await
        .expect_err("a page size of 0");
    assert!(matches!(error, Error::InvalidInput(_)), "{error}");
    assert!(
        !scratch.path().join("x.db").exists(),
        "refused before any file is made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_leaves_the_previous_mirror() {
    let (sandbox, client) = support::sandbox().await;
    let scratch = Scratch::new("failed");
    let path = scratch.path().join("mirror.db");
    let mirror = SqliteMirror::new(&path);
    let before = support::served(&client).await;
    mirror
        .sync(&client, &SyncOptions::default())
        .await
        .expect("the first sync");

    support::change_the_api(&client, &before).await;
    // A page that meets a 502 fails the run, after some pages were applied.
    let fragile = support::failing_at_random(&sandbox);
    let mut failures = 0;
    for _ in 0..5 {
        if let Err(error) = mirror
            .sync(&fragile, &SyncOptions::default().page_size(10))
            .await
        {
            assert!(matches!(error, Error::Api { .. }), "{error}");
            failures += 1;
            crate::sqlite::assert_mirrors(&path, &before);
        }
    }
    assert!(failures > 0, "the faults failed at least one run");
    sandbox
        .set_faults(FaultConfig::default())
        .expect("no faults");
    mirror
        .sync(&client, &SyncOptions::default())
        .await
        .expect("a sync after the faults");
    crate::sqlite::assert_mirrors(&path, &support::served(&client).await);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_for_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_sandbox, client) = support::sandbox().await;
    let scratch = Scratch::new("modes");
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };

    let path = scratch.path().join("new-dir").join("mirror.db");
    SqliteMirror::new(&path)
        .sync(&client, &SyncOptions::default())
        .await
        .expect("a sync");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&scratch.path().join("new-dir")), 0o700);

    let dir = scratch.path().join("dataset");
    ParquetMirror::new(&dir)
        .sync(&client, &SyncOptions::default())
        .await
        .expect("a sync");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(inkeep_analytics_mirror::STATE_FILE)), 0o600);
    let table = dir.join("conversations");
    assert_eq!(mode(&table), 0o700);
    for entry in std::fs::read_dir(&table).expect("partitions") {
        let partition = entry.expect("an entry").path();
        assert_eq!(mode(&partition), 0o700);
        assert_eq!(mode(&partition.join("data.parquet")), 0o600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_first_parquet_sync_leaves_nothing_behind() {
    let (sandbox, client) = support::sandbox().await;
    let scratch = Scratch::new("failed-parquet");
    let dir = scratch.path().join("dataset");
    let mirror = ParquetMirror::new(&dir);
    // A page that meets a 502 fails the run, after some partitions were begun.
    let fragile = support::failing_at_random(&sandbox);
    let mut failures = 0;
    for _ in 0..5 {
        if let Err(error) = mirror
            .sync(&fragile, &SyncOptions::default().page_size(10))
            .await
        {
            assert!(matches!(error, Error::Api { .. }), "{error}");
            failures += 1;
            let left: Vec<_> = std::fs::read_dir(&dir)
                .expect("the dataset directory")
                .map(|entry| entry.expect("an entry").path())
                .collect();
            assert!(left.is_empty(), "a failed first sync left {left:?}");
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    assert!(failures > 0, "the faults failed at least one run");
    sandbox
        .set_faults(FaultConfig::default())
        .expect("no faults");
    let report = mirror
        .sync(&client, &SyncOptions::default())
        .await
        .expect("a sync after the faults");
    assert!(report.partitions.expect("partitions").written > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_killed_first_parquet_sync_left_is_taken_over() {
    let (_sandbox, client) = support::sandbox().await;
    let scratch = Scratch::new("killed-parquet");
    let dir = scratch.path().join("dataset");
    // What a first sync killed during its listing leaves: the state's partial file and
    // partitions written aside, none published.
    let partition = dir.join("messages").join("month=2020-01");
    std::fs::create_dir_all(&partition).expect("a partition");
    std::fs::write(partition.join(".data.parquet.tmp"), b"half a file").expect("written");
    std::fs::write(
        dir.join(format!("{}.partial", inkeep_analytics_mirror::STATE_FILE)),
        b"half a state",
    )
    .expect("written");
    let report = ParquetMirror::new(&dir)
        .sync(&client, &SyncOptions::default())
        .await
        .expect("the next sync takes the directory over");
    assert!(report.partitions.expect("partitions").written > 0);
    assert!(dir.join(inkeep_analytics_mirror::STATE_FILE).is_file());

    // Anything else in the directory is still refused.
    let other = scratch.path().join("other");
    std::fs::create_dir_all(other.join("messages").join("month=2020-01")).expect("a directory");
    std::fs::write(
        other
            .join("messages")
            .join("month=2020-01")
            .join("data.parquet"),
        b"someone's data",
    )
    .expect("written");
    let error = ParquetMirror::new(&other)
        .sync(&client, &SyncOptions::default())
        .await
        .expect_err("a published partition without a state is not ours to replace");
    assert!(error.to_string().contains("other files"), "{error}");
}
