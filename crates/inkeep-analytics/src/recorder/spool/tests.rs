use std::io::{Seek, SeekFrom, Write};

use super::*;

/// A directory under the system's temporary one, removed when dropped (also when a test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "inkeep-spool-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &Path) -> Result<Spool> {
    open_limited(dir, DEFAULT_MAX_SPOOL_BYTES)
}

fn open_limited(dir: &Path, max_bytes: u64) -> Result<Spool> {
    Spool::open(
        dir,
        max_bytes,
        FsyncPolicy::Interval(Duration::from_secs(1)),
        Arc::new(AtomicU64::new(0)),
    )
    .map(|(spool, _)| spool)
}

fn write(spool: &mut Spool, kind: Kind, id: &str, seq: u64, body: &str, spill: bool) {
    if let Err(why) = spool.write(kind, id, seq, body.as_bytes(), spill) {
        panic!("write {id}: {}", why.reason());
    }
}

fn bodies(spilled: &[Spilled]) -> Vec<(u64, String)> {
    spilled
        .iter()
        .map(|s| (s.seq, String::from_utf8_lossy(&s.body).into_owned()))
        .collect()
}

/// Moves everything in the write-ahead log into the database file, as the spool's thread does.
fn checkpoint(database: &Path) -> rusqlite::Result<()> {
    let db = Connection::open(database)?;
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

#[test]
fn a_reopened_spool_replays_what_was_not_delivered_newest_version_only_in_order() -> Result<()> {
    let dir = TempDir::new("replay");
    {
        let mut spool = open(&dir.0)?;
        write(&mut spool, Kind::Conversation, "c", 1, r#"{"v":1}"#, false);
        write(&mut spool, Kind::Feedback, "f", 2, "{}", false);
        write(&mut spool, Kind::Conversation, "c", 3, r#"{"v":3}"#, false);
        write(&mut spool, Kind::Conversation, "d", 4, r#"{"v":4}"#, false);
        write(&mut spool, Kind::Conversation, "d", 5, r#"{"v":5}"#, false);
        // d's version 4 delivered: version 5 stays; version 5 delivered: d leaves.
        spool
            .acknowledge(Kind::Conversation, 4, "d")
            .map_err(|w| Error::invalid_input(w.reason()))?;
        assert!(!spool.has_spilled());
        spool
            .acknowledge(Kind::Conversation, 5, "d")
            .map_err(|w| Error::invalid_input(w.reason()))?;
        assert!(
            open(&dir.0).is_err(),
            "a second opener is refused by the lock"
        );
        let status = SpoolStatus::read(&dir.0)?;
        assert_eq!(
            (
                status.conversations,
                status.feedback,
                status.last_sequence,
                status.locked
            ),
            (1, 1, 3, true),
            "{status:?}"
        );
    }
    let spool = open(&dir.0)?;
    assert_eq!(spool.next_seq(), 4);
    assert_eq!(spool.spilled(), 2);
    assert_eq!(spool.first_spilled(), Some(1));
    // c keeps the place of its first version, before the feedback recorded after it.
    assert_eq!(
        bodies(&read_spilled(spool.database(), 10).map_err(|e| sqlite_error("read", &dir.0, e))?),
        vec![(3, r#"{"v":3}"#.to_string()), (2, "{}".to_string())]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |path: &Path| std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o777);
        assert_eq!(mode(&dir.0), 0o700);
        for name in [
            DATABASE,
            "spool.sqlite3-wal",
            "spool.sqlite3-shm",
            files::LOCK,
        ] {
            assert_eq!(mode(&dir.0.join(name)), 0o600, "{name}");
        }
    }
    Ok(())
}

/// A conversation spilled again keeps its place, before feedback recorded after its first
/// version, and what is read back leaves the backlog unless a newer version came meanwhile.
#[test]
fn a_spilled_conversation_keeps_its_place_before_what_depends_on_it() -> Result<()> {
    let dir = TempDir::new("order");
    let mut spool = open(&dir.0)?;
    write(&mut spool, Kind::Conversation, "c", 1, r#"{"v":1}"#, true);
    write(&mut spool, Kind::Feedback, "f", 2, "{}", true);
    write(&mut spool, Kind::Conversation, "c", 3, r#"{"v":3}"#, true);
    assert_eq!(spool.spilled(), 2);
    let read = read_spilled(spool.database(), 10).map_err(|e| sqlite_error("read", &dir.0, e))?;
    assert_eq!(
        read.iter().map(|r| (r.position, r.seq)).collect::<Vec<_>>(),
        vec![(1, 3), (2, 2)]
    );
    // Read back, but version 5 of c is spilled before the read back ends: c stays spilled.
    write(&mut spool, Kind::Conversation, "c", 5, r#"{"v":5}"#, true);
    spool
        .read_back_done(&[(1, 3), (2, 2)], &[])
        .map_err(|w| Error::invalid_input(w.reason()))?;
    assert_eq!((spool.spilled(), spool.first_spilled()), (1, Some(1)));
    spool
        .read_back_done(&[(1, 5)], &[])
        .map_err(|w| Error::invalid_input(w.reason()))?;
    assert_eq!((spool.spilled(), spool.first_spilled()), (0, None));
    Ok(())
}

/// Bytes overwritten in the middle of the database after a run: the next start sets it aside,
/// keeps it for inspection, recovers the records it can read, and takes new ones.
#[test]
fn a_damaged_database_is_set_aside_with_what_can_be_read() -> Result<()> {
    let dir = TempDir::new("damaged");
    let body = format!(r#"{{"text":"{}"}}"#, "x".repeat(1000));
    {
        let mut spool = open(&dir.0)?;
        for n in 1..=300 {
            write(&mut spool, Kind::Event, &format!("e{n}"), n, &body, false);
        }
    }
    let database = dir.0.join(DATABASE);
    checkpoint(&database).map_err(|e| sqlite_error("checkpoint", &database, e))?;
    let len = std::fs::metadata(&database).map_or(0, |m| m.len());
    assert!(len > 200_000, "{len}");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&database)
        .map_err(|e| Error::configuration_with_source("open", e))?;
    file.seek(SeekFrom::Start(len / 2))
        .and_then(|_| file.write_all(&[0xA5; 4096]))
        .map_err(|e| Error::configuration_with_source("overwrite", e))?;
    drop(file);

    let (mut spool, opened) = Spool::open(
        &dir.0,
        DEFAULT_MAX_SPOOL_BYTES,
        FsyncPolicy::Interval(Duration::from_secs(1)),
        Arc::new(AtomicU64::new(0)),
    )?;
    let set_aside = opened
        .set_aside
        .ok_or_else(|| Error::invalid_input("the damage was not found"))?;
    assert!(set_aside.path.exists(), "kept for inspection");
    assert_eq!(
        SpoolStatus::read(&dir.0)?.set_aside,
        vec![set_aside.path.clone()]
    );
    assert!(
        opened.records > 200 && opened.records < 300,
        "what can be read is kept, what cannot is not: {}",
        opened.records
    );
    assert!(spool.next_seq() > 300);
    let seq = spool.next_seq();
    write(&mut spool, Kind::Event, "after", seq, &body, false);
    Ok(())
}

/// At its size limit, the spool refuses a write with a reason and stays whole: deleting what was
/// delivered makes room again.
#[test]
fn a_full_spool_refuses_with_its_reason_and_stays_usable() -> Result<()> {
    let dir = TempDir::new("full");
    let body = format!(r#"{{"text":"{}"}}"#, "y".repeat(4000));
    let mut spool = open_limited(&dir.0, 256 * 1024)?;
    let mut written = 0;
    let refused = loop {
        written += 1;
        if let Err(why) = spool.write(
            Kind::Event,
            &format!("e{written}"),
            written,
            body.as_bytes(),
            false,
        ) {
            break why;
        }
        assert!(written < 1000, "the limit is never met");
    };
    assert!(matches!(refused, Unwritable::Full), "{}", refused.reason());
    assert!(refused.reason().contains("max_spool_bytes"));
    for seq in 1..written {
        spool
            .acknowledge(Kind::Event, seq, "")
            .map_err(|w| Error::invalid_input(w.reason()))?;
    }
    write(&mut spool, Kind::Event, "again", written + 1, &body, false);
    Ok(())
}

/// The recording connection never checkpoints: with the spool's own checkpoints held off, a
/// recording thread without any runtime writes 12 MB, three times SQLite's automatic checkpoint
/// threshold, and every frame is still in the log afterwards.
#[test]
fn a_recording_call_never_checkpoints() -> Result<()> {
    let dir = TempDir::new("no-checkpoint");
    let (mut spool, _) = Spool::open_checkpointing(
        &dir.0,
        DEFAULT_MAX_SPOOL_BYTES,
        FsyncPolicy::Interval(Duration::from_secs(1)),
        Arc::new(AtomicU64::new(0)),
        Duration::from_secs(3600),
    )?;
    assert!(tokio::runtime::Handle::try_current().is_err());
    let body = format!(r#"{{"text":"{}"}}"#, "z".repeat(4000));
    for n in 1..=3000 {
        write(&mut spool, Kind::Event, &format!("e{n}"), n, &body, false);
    }
    let db = Connection::open(spool.database()).map_err(|e| sqlite_error("open", &dir.0, e))?;
    let (log, checkpointed): (i64, i64) = db
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(1)?, row.get(2)?))
        })
        .map_err(|e| sqlite_error("checkpoint", &dir.0, e))?;
    assert!(
        log >= 3000,
        "the log was restarted by a checkpoint: {log} frames"
    );
    assert_eq!(
        log, checkpointed,
        "this checkpoint, the first, copied them all"
    );
    Ok(())
}
