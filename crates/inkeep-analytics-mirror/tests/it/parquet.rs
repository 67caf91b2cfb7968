//! `ParquetMirror`: the dataset, read back with the parquet crate, equals what the API served,
//! and a re-run rewrites only the partitions that changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use inkeep_analytics_mirror::{ParquetMirror, STATE_FILE, SqliteMirror, SyncOptions};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::support::{self, Scratch, Served};

/// Every `data.parquet` of a table, by partition name (`month=...`).
fn partitions(dir: &Path, table: &str) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir.join(table)) else {
        return found;
    };
    for entry in entries {
        let entry = entry.expect("an entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(name.starts_with("month="), "{name}");
        let file = entry.path().join("data.parquet");
        assert!(file.is_file(), "{} has its file", name);
        found.insert(name, file);
    }
    found
}

/// The rows of a table, each as its columns by name.
fn read(dir: &Path, table: &str) -> Vec<(String, BTreeMap<String, Field>)> {
    let mut rows = Vec::new();
    for (partition, file) in partitions(dir, table) {
        let reader = SerializedFileReader::new(std::fs::File::open(&file).expect("opens"))
            .expect("a Parquet file");
        for row in reader.get_row_iter(None).expect("rows") {
            let row = row.expect("a row");
            let columns = row
                .get_column_iter()
                .map(|(name, field)| (name.clone(), field.clone()))
                .collect();
            rows.push((partition.clone(), columns));
        }
    }
    rows
}

fn text(row: &BTreeMap<String, Field>, column: &str) -> Option<String> {
    match &row[column] {
        Field::Str(text) => Some(text.clone()),
        Field::Null => None,
        other => panic!("{column} is {other:?}"),
    }
}

fn assert_dataset(dir: &Path, served: &Served) {
    let conversations = read(dir, "conversations");
    let mut raws = BTreeMap::new();
    for (partition, row) in &conversations {
        let id = text(row, "id").expect("an id");
        let raw = text(row, "raw").expect("raw");
        let created_at = support::field(&raw, "createdAt");
        let created_at = created_at.as_str().expect("a createdAt");
        assert_eq!(partition, &format!("month={}", &created_at[..7]));
        let micros = chrono::DateTime::parse_from_rfc3339(created_at)
            .expect("a time")
            .timestamp_micros();
        assert_eq!(row["created_at"], Field::TimestampMicros(micros));
        raws.insert(id, raw);
    }
    assert_eq!(raws, served.conversations);

    let mut messages: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for (_, row) in read(dir, "messages") {
        let Field::Long(position) = row["position"] else {
            panic!("position is {:?}", row["position"]);
        };
        messages
            .entry(text(&row, "conversation_id").expect("a conversation"))
            .or_default()
            .push((position, text(&row, "raw").expect("raw")));
    }
    for (id, raw) in &served.conversations {
        let mut mirrored = messages.remove(id).unwrap_or_default();
        mirrored.sort();
        let positions: Vec<i64> = mirrored.iter().map(|(p, _)| *p).collect();
        let expected: Vec<i64> = (0..mirrored.len() as i64).collect();
        assert_eq!(positions, expected, "the positions of {id}");
        let mirrored: Vec<String> = mirrored.into_iter().map(|(_, raw)| raw).collect();
        assert_eq!(mirrored, support::messages_of(raw), "the messages of {id}");
    }
    assert!(
        messages.is_empty(),
        "messages of deleted conversations: {:?}",
        messages.keys()
    );

    let feedback: BTreeMap<String, String> = read(dir, "feedback")
        .into_iter()
        .map(|(_, row)| {
            (
                text(&row, "id").expect("an id"),
                text(&row, "raw").expect("raw"),
            )
        })
        .collect();
    assert_eq!(feedback, served.feedback);
}

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("metadata").ino()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dataset_reads_back_and_a_rerun_rewrites_only_what_changed() {
    let (_sandbox, client) = support::sandbox().await;
    let scratch = Scratch::new("parquet");
    let dir = scratch.path().join("dataset");
    let mirror = ParquetMirror::new(&dir);

    let before = support::served(&client).await;
    let first = mirror
        .sync(&client, &SyncOptions::default())
        .await
        .expect("the first sync");
    assert_eq!(
        first.conversations.inserted,
        before.conversations.len() as u64
    );
    assert!(dir.join(STATE_FILE).is_file());
    assert_dataset(&dir, &before);
    let months = partitions(&dir, "conversations");
    assert!(months.len() >= 3, "several months: {months:?}");
    let all_partitions: u64 = ["conversations", "messages", "feedback"]
        .iter()
        .map(|table| partitions(&dir, table).len() as u64)
        .sum();
    assert_eq!(
        first.partitions.expect("partitions").written,
        all_partitions
    );

    let unchanged = mirror
        .sync(&client, &SyncOptions::default())
        .await
        .expect("a sync with nothing changed");
    assert!(!unchanged.changed());
    assert_eq!(unchanged.partitions.expect("partitions").written, 0);

    let inodes: BTreeMap<String, u64> = months
        .iter()
        .map(|(month, file)| (month.clone(), inode(file)))
        .collect();
    support::change_the_api(&client, &before).await;
    let after = support::served(&client).await;
    let second = mirror
        .sync(&client, &SyncOptions::default())
        .await
        .expect("the second sync");
    assert_eq!(second.conversations.deleted, 3);
    assert_dataset(&dir, &after);
    let written = second.partitions.expect("partitions").written;
    assert!(
        written > 0 && written < all_partitions,
        "{written} of {all_partitions}"
    );
    assert!(partitions(&dir, "conversations").contains_key("month=2025-07"));
    // Partitions of conversations no change touched are the same files.
    let touched: Vec<String> = support::diff_months(&before.conversations, &after.conversations);
    let kept = inodes
        .iter()
        .filter(|(month, _)| !touched.contains(month))
        .filter(|(month, ino)| inode(&partitions(&dir, "conversations")[*month]) == **ino)
        .count();
    assert_eq!(
        kept,
        inodes.len() - inodes.keys().filter(|m| touched.contains(m)).count()
    );
    assert!(kept > 0);
}

/// A report without what differs between two targets or two runs (times, partitions).
fn counts(report: &inkeep_analytics_mirror::Report) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {}",
        report.conversations, report.messages, report.feedback, report.api_totals, report.complete
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_reports_what_an_sqlite_mirror_reports_and_rebuilds_changed_partitions() {
    let (_sandbox, client) = support::sandbox().await;
    let scratch = Scratch::new("parquet-counts");
    let dir = scratch.path().join("dataset");
    let dataset = ParquetMirror::new(&dir);
    let sqlite = SqliteMirror::new(scratch.path().join("mirror.db"));
    let options = SyncOptions::default();

    let before = support::served(&client).await;
    let first = dataset.sync(&client, &options).await.expect("a first sync");
    let first_db = sqlite.sync(&client, &options).await.expect("a first sync");
    assert_eq!(counts(&first), counts(&first_db));

    support::change_the_api(&client, &before).await;
    let after = support::served(&client).await;
    let second = dataset
        .sync(&client, &options)
        .await
        .expect("a second sync");
    let second_db = sqlite.sync(&client, &options).await.expect("a second sync");
    assert_eq!(counts(&second), counts(&second_db));
    assert!(second.messages.inserted > 0 && second.messages.deleted > 0);
    // The changed partitions were rebuilt from the state's records: the dataset is the API's,
    // and each feedback item is tied to the conversation the SQLite mirror ties it to.
    assert_dataset(&dir, &after);
    let tied: BTreeMap<String, Option<String>> = read(&dir, "feedback")
        .into_iter()
        .map(|(_, row)| {
            (
                text(&row, "id").expect("an id"),
                text(&row, "conversation_id"),
            )
        })
        .collect();
    let db = rusqlite::Connection::open(sqlite.path()).expect("the mirror");
    let mut statement = db
        .prepare("SELECT id, conversation_id FROM feedback")
        .expect("a query");
    let tied_in_db: BTreeMap<String, Option<String>> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(tied, tied_in_db);
    assert!(tied.values().any(Option::is_some));
    let partitions = second.partitions.expect("partitions");
    assert!(partitions.written > 0, "{partitions:?}");

    let third = dataset.sync(&client, &options).await.expect("a third sync");
    assert!(!third.changed());
    assert_eq!(third.partitions.expect("partitions").written, 0);
    assert_dataset(&dir, &after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_of_an_older_version_is_rebuilt_from_the_api_and_a_newer_one_refused() {
    let (_sandbox, client) = support::sandbox().await;
    let scratch = Scratch::new("parquet-older");
    let dir = scratch.path().join("dataset");
    let mirror = ParquetMirror::new(&dir);
    let options = SyncOptions::default();
    mirror.sync(&client, &options).await.expect("a first sync");

    // What an older version left: its state was a whole SQLite mirror, and it had a partition
    // that the API no longer has.
    let state = dir.join(STATE_FILE);
    std::fs::remove_file(&state).expect("removed");
    SqliteMirror::new(&state)
        .sync(&client, &options)
        .await
        .expect("a state of the older layout");
    let (_, some_file) = partitions(&dir, "conversations")
        .into_iter()
        .next()
        .expect("a partition");
    let stale = dir.join("conversations").join("month=2019-01");
    std::fs::create_dir_all(&stale).expect("a partition");
    std::fs::copy(some_file, stale.join("data.parquet")).expect("copied");

    let served = support::served(&client).await;
    let rebuilt = mirror
        .sync(&client, &options)
        .await
        .expect("the older dataset is rebuilt");
    assert_eq!(
        rebuilt.conversations.inserted,
        served.conversations.len() as u64
    );
    assert_eq!(rebuilt.partitions.expect("partitions").removed, 1);
    assert!(!stale.exists());
    assert_dataset(&dir, &served);
    // The state is now of this version: nothing changed on the next run, and `sync --db`
    // refuses it instead of misreading it.
    let again = mirror.sync(&client, &options).await.expect("a re-run");
    assert!(!again.changed());
    assert_eq!(again.partitions.expect("partitions").written, 0);
    let error = SqliteMirror::new(&state)
        .sync(&client, &options)
        .await
        .expect_err("a dataset's state is not an SQLite mirror");
    assert!(error.to_string().contains("another program"), "{error}");

    rusqlite::Connection::open(&state)
        .and_then(|db| db.pragma_update(None, "user_version", 99))
        .expect("a newer version");
    let before = std::fs::read(&state).expect("the state");
    let error = mirror
        .sync(&client, &options)
        .await
        .expect_err("a newer state is refused");
    assert!(
        matches!(
            error,
            inkeep_analytics_mirror::Error::NewerSchema { found: 99, .. }
        ),
        "{error}"
    );
    assert_eq!(std::fs::read(&state).expect("the state"), before);
    assert_dataset(&dir, &served);
}
