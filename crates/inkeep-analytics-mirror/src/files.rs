//! Owner-only files and directories: a mirror holds users' conversations, so what it creates is 0600 (files) and 0700 (directories).

use std::fs::{File, OpenOptions};
use std::path::Path;

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

/// Creates `path` empty when it does not exist, 0600, so that SQLite then opens a file only its
/// owner may read (SQLite itself creates files 0644 less the umask). Its journal and temporary
/// files take the same mode, since SQLite copies the database's.
pub(crate) fn create_if_missing(path: &Path) -> Result<()> {
    match owner_only(OpenOptions::new().write(true).create_new(true)).open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(Error::io("create", path)(error)),
    }
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
