//! Owner-only files and directories: a mirror holds users' conversations, so what it creates is 0600 (files) and 0700 (directories).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};

/// Creates `dir` and its missing parents, each new one 0700; an existing one is left as it is.
pub(crate) fn create_dir_all(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(Error::io("create", dir))
}

/// Creates (or truncates) `path` for writing, 0600 when it is new.
pub(crate) fn create_file(path: &Path) -> Result<File> {
    owner_only(OpenOptions::new().write(true).create(true).truncate(true))
        .open(path)
        .map_err(Error::io("create", path))
}

fn owner_only(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Makes a rename or removal in `dir` durable (a no-op where directories cannot be opened).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// A new mirror file being written under a name of its own, next to where it will be: it
/// appears under its final name whole, or not at all.
///
/// A new mirror is written without a journal and without syncs (nothing earlier needs
/// protecting), synced once, then renamed into place. Its name is the final one with
/// `.partial` appended; the handle holds an exclusive lock on it, so that a second run creating
/// the same mirror fails at once instead of writing into the first one's file. A run killed
/// before the rename leaves the `.partial` file, which the next run truncates and rewrites.
#[derive(Debug)]
pub(crate) struct Partial {
    /// The partial file, open and locked for as long as the run lasts.
    file: File,
    path: PathBuf,
    target: PathBuf,
    published: bool,
}

impl Partial {
    /// Creates (or truncates a stale) `target.partial`, 0600, in `target`'s directory, created
    /// 0700 when missing.
    pub(crate) fn create(target: &Path) -> Result<Self> {
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_dir_all(parent)?;
        }
        let mut name = target.as_os_str().to_owned();
        name.push(".partial");
        let path = PathBuf::from(name);
        let file = owner_only(OpenOptions::new().read(true).write(true).create(true))
            .truncate(false)
            .open(&path)
            .map_err(Error::io("create", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::io("lock", &path)(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "another sync is creating this mirror now",
                )));
            }
            Err(std::fs::TryLockError::Error(error)) => {
                return Err(Error::io("lock", &path)(error));
            }
        }
        // What a killed run left is rewritten from the start.
        file.set_len(0).map_err(Error::io("truncate", &path))?;
        Ok(Self {
            file,
            path,
            target: target.to_path_buf(),
            published: false,
        })
    }

    /// The file to write.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Starts writing the file's pages to the disk while the run goes on, every `every`, on a
    /// thread of its own (see [`Writeback`]).
    pub(crate) fn write_back_every(&self, every: Duration) -> Result<Writeback> {
        let file = self
            .file
            .try_clone()
            .map_err(Error::io("write", &self.path))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("inkeep-mirror-writeback".into())
            .spawn(move || {
                // Syncs until told to stop (or the run is gone); an error here is not the
                // run's: the final sync in `publish` reports it.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let _ = file.sync_data();
                }
            })
            .map_err(Error::io("write", &self.path))?;
        Ok(Writeback {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Syncs the file, renames it over the target and syncs the directory: from here on the
    /// target is the new mirror, even after a power loss.
    pub(crate) fn publish(mut self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(Error::io("write", &self.path))?;
        std::fs::rename(&self.path, &self.target).map_err(Error::io("replace", &self.target))?;
        self.published = true;
        if let Some(parent) = self.target.parent() {
            sync_dir(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            });
        }
        Ok(())
    }
}

impl Drop for Partial {
    /// A run that did not publish leaves no partial file behind when it can help it.
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes a new mirror's pages to the disk while the run goes on, on a thread of its own.
///
/// A new mirror is written without syncs, so all of it (566 MB for 20,000 conversations) was
/// left for the end: the kernel's writeback of those pages (allocating blocks, building and
/// submitting the requests) then ran on the writer's thread, the run's critical path, when
/// SQLite closed the file. Synced every few hundred milliseconds from another thread, the same
/// work runs on the other core while the writer goes on, and little is left for the end.
#[derive(Debug)]
pub(crate) struct Writeback {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Writeback {
    /// Stops the thread, after the sync it may be in.
    pub(crate) fn stop(&mut self) {
        self.stop = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        self.stop();
    }
}
