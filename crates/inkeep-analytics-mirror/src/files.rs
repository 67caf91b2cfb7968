//! Owner-only files and directories: a mirror holds users' conversations, so what it creates is 0600 (files) and 0700 (directories).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

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
