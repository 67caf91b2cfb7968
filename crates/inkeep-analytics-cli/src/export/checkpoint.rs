//! The export's checkpoints, written on a thread of their own so that the export never waits for the disk between pages.
//!
//! A checkpoint may only name bytes the disk holds, so each one follows a `sync_data` of the
//! partial file and is itself written under another name, synced, renamed into place and the
//! rename synced: three syncs a page. Done in line they were most of an export's time (on this
//! project's shared build machine, 16 ms a page against well under 1 ms to write it), so the
//! export hands each page's checkpoint to [`Checkpointer`] and goes on with the next page.
//!
//! The thread takes the newest checkpoint offered, syncs the file (which also makes every later
//! byte durable, harmlessly), then writes it; checkpoints offered meanwhile are replaced by newer
//! ones, so a slow disk means fewer checkpoints, never a longer export. A crash loses at most the
//! pages written since the last checkpoint, which a resume fetches again. Whoever ends the export
//! stops the thread first: a failure then writes the last checkpoint itself, a success renames the
//! file into place.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Kind;
use crate::owner_only;

/// What an interrupted export needs to continue, written next to the partial file after pages.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(super) struct Checkpoint {
    pub(super) kind: Kind,
    pub(super) format: String,
    pub(super) page_size: i64,
    /// The offset of the next page of the current pass.
    pub(super) offset: u64,
    /// Which pass the export is in.
    pub(super) pass: usize,
    /// The total the current pass started with.
    pub(super) pass_total: u64,
    /// Records written.
    pub(super) records: u64,
    /// Bytes of the partial file that hold those records.
    pub(super) bytes: u64,
    /// Where the last record written starts in the partial file (its separator included); it
    /// ends at `bytes`.
    #[serde(default)]
    pub(super) last_record_start: u64,
    /// The SHA-256 of the partial file's bytes from `last_record_start` to `bytes`, in hex: a
    /// resume refuses a file whose last record is not the one this checkpoint was written after.
    #[serde(default)]
    pub(super) last_record_sha256: Option<String>,
}

/// Where a checkpoint goes: the partial file it describes and the checkpoint file itself.
#[derive(Clone, Debug)]
pub(super) struct Files {
    pub(super) partial: PathBuf,
    pub(super) checkpoint: PathBuf,
}

impl Files {
    /// Writes `checkpoint`, with the hash of its last record when `hash_last_record`, once the
    /// bytes it names are durable (the caller's business).
    ///
    /// Written whole and synced under another name, then renamed over the last one and the
    /// rename synced: a crash leaves either checkpoint, never half of one.
    pub(super) fn write(
        &self,
        mut checkpoint: Checkpoint,
        hash_last_record: bool,
    ) -> std::io::Result<()> {
        if hash_last_record {
            checkpoint.last_record_sha256 = Some(hash_of_range(
                &self.partial,
                checkpoint.last_record_start,
                checkpoint.bytes,
            )?);
        }
        let temporary = self.temporary();
        let text = serde_json::to_string(&checkpoint).map_err(std::io::Error::other)?;
        owner_only::create(&temporary)
            .and_then(|mut file| {
                file.write_all(text.as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&temporary, &self.checkpoint))
            .and_then(|()| owner_only::sync_parent(&self.checkpoint))
    }

    /// Removes the checkpoint, and a temporary one a killed export may have left.
    pub(super) fn remove(&self) {
        let _ = std::fs::remove_file(&self.checkpoint);
        let _ = std::fs::remove_file(self.temporary());
    }

    fn temporary(&self) -> PathBuf {
        self.checkpoint.with_extension("checkpoint.tmp")
    }
}

/// A checkpoint offered to the thread, with whether its last record is to be hashed.
struct Job {
    checkpoint: Checkpoint,
    hash_last_record: bool,
}

/// The thread that syncs the partial file and writes checkpoints behind the export.
pub(super) struct Checkpointer {
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<JoinHandle<std::io::Result<()>>>,
    /// Set by whoever stops the thread: checkpoints still waiting are then dropped.
    stopping: Arc<AtomicBool>,
    /// Whether the thread wrote a checkpoint.
    written: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Starts the thread for `files`; the partial file must exist.
    pub(super) fn start(files: Files) -> std::io::Result<Self> {
        // Any handle on the file syncs all of its data; this one is the thread's own.
        let file = File::options().write(true).open(&files.partial)?;
        let (jobs, received) = mpsc::channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicBool::new(false));
        let worker = std::thread::Builder::new()
            .name("export-checkpoints".into())
            .spawn({
                let (stopping, written) = (stopping.clone(), written.clone());
                move || keep_checkpoints(&file, &files, &received, &stopping, &written)
            })?;
        Ok(Self {
            jobs: Some(jobs),
            worker: Some(worker),
            stopping,
            written,
        })
    }

    /// Hands `checkpoint` to the thread, whose bytes up to `checkpoint.bytes` must have been
    /// handed to the operating system already. Fails with the thread's error if it stopped on one.
    pub(super) fn offer(
        &mut self,
        checkpoint: Checkpoint,
        hash_last_record: bool,
    ) -> std::io::Result<()> {
        let job = Job {
            checkpoint,
            hash_last_record,
        };
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => Ok(()),
            // The thread ended, which it only does on an error before it is stopped.
            _ => self.stop(),
        }
    }

    /// Stops the thread, dropping the checkpoints not yet written, once the one it is writing is
    /// done; returns the error it stopped on, if any.
    pub(super) fn stop(&mut self) -> std::io::Result<()> {
        self.stopping.store(true, Ordering::Release);
        self.jobs = None;
        match self.worker.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(error))) => Err(error),
            Some(Err(_)) => Err(std::io::Error::other("the checkpoint thread panicked")),
        }
    }

    /// Whether the thread wrote at least one checkpoint.
    pub(super) fn written(&self) -> bool {
        self.written.load(Ordering::Acquire)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The thread's loop: the newest checkpoint offered, after a sync that makes its bytes durable.
fn keep_checkpoints(
    file: &File,
    files: &Files,
    jobs: &mpsc::Receiver<Job>,
    stopping: &AtomicBool,
    written: &AtomicBool,
) -> std::io::Result<()> {
    while let Ok(mut job) = jobs.recv() {
        // Only the newest counts: the ones before it name fewer pages.
        while let Ok(newer) = jobs.try_recv() {
            job = newer;
        }
        if stopping.load(Ordering::Acquire) {
            break;
        }
        // The sync starts after the job's bytes were handed to the system, so it covers them.
        file.sync_data()?;
        files.write(job.checkpoint, job.hash_last_record)?;
        written.store(true, Ordering::Release);
    }
    Ok(())
}

/// The SHA-256, in hex, of the bytes of `path` from `start` to `end`: the last record of a
/// partial export, read back once per checkpoint rather than hashing every record as it is written.
pub(super) fn hash_of_range(path: &Path, start: u64, end: u64) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut bytes = vec![0; usize::try_from(end.saturating_sub(start)).unwrap_or(0)];
    file.seek(SeekFrom::Start(start))?;
    std::io::Read::read_exact(&mut file, &mut bytes)?;
    Ok(hex(&Sha256::digest(&bytes)))
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn scratch() -> std::io::Result<PathBuf> {
        owner_only::scratch_dir("checkpoint")
    }

    fn checkpoint(records: u64, bytes: u64, last_record_start: u64) -> Checkpoint {
        Checkpoint {
            kind: Kind::Conversations,
            format: "jsonl".into(),
            page_size: 100,
            offset: records,
            pass: 0,
            pass_total: 10,
            records,
            bytes,
            last_record_start,
            last_record_sha256: None,
        }
    }

    /// A bound for what a loaded machine does in well under a second, so that a broken thread
    /// fails the test instead of hanging it.
    const PATIENCE: Duration = Duration::from_secs(60);

    #[test]
    fn the_thread_writes_the_checkpoint_with_the_hash_of_its_last_record() -> std::io::Result<()> {
        let dir = scratch()?;
        let files = Files {
            partial: dir.join("export.jsonl.partial"),
            checkpoint: dir.join("export.jsonl.checkpoint"),
        };
        std::fs::write(&files.partial, b"{\"id\":1}\n{\"id\":2}\n")?;
        let mut checkpointer = Checkpointer::start(files.clone())?;
        checkpointer.offer(checkpoint(2, 18, 9), true)?;
        let since = Instant::now();
        while !checkpointer.written() {
            assert!(since.elapsed() < PATIENCE, "no checkpoint was written");
            std::thread::sleep(Duration::from_millis(1));
        }
        checkpointer.stop()?;
        let written: Checkpoint = serde_json::from_slice(&std::fs::read(&files.checkpoint)?)?;
        let expected = Checkpoint {
            last_record_sha256: Some(hex(&Sha256::digest(b"{\"id\":2}\n"))),
            ..checkpoint(2, 18, 9)
        };
        assert_eq!(written, expected);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.checkpoint)?.permissions().mode() & 0o777;
            assert_eq!(mode, owner_only::FILE_MODE);
        }
        files.remove();
        assert!(!files.checkpoint.exists());
        std::fs::remove_dir_all(dir)
    }

    #[test]
    fn a_checkpoint_that_cannot_be_written_fails_the_export() -> std::io::Result<()> {
        let dir = scratch()?;
        // The checkpoint's directory would be under a file: creating it fails.
        let blocker = dir.join("not-a-directory");
        std::fs::write(&blocker, b"")?;
        let files = Files {
            partial: dir.join("export.jsonl.partial"),
            checkpoint: blocker.join("export.jsonl.checkpoint"),
        };
        std::fs::write(&files.partial, b"{\"id\":1}\n")?;
        let mut checkpointer = Checkpointer::start(files)?;
        let since = Instant::now();
        // The thread ends on its error; the next offer, or the stop, returns it.
        let error = loop {
            if let Err(error) = checkpointer.offer(checkpoint(1, 9, 0), true) {
                break error;
            }
            assert!(
                since.elapsed() < PATIENCE,
                "the thread's error never came back"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_ne!(error.kind(), std::io::ErrorKind::Other, "{error}");
        assert!(!checkpointer.written());
        std::fs::remove_dir_all(dir)
    }
}
