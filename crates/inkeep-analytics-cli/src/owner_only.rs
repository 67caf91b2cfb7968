//! The one place the program creates files and directories, because they hold users' conversations, feedback and events: files are readable by their owner only (0600) and directories are 0700, whatever the umask.
//!
//! A file that already exists keeps the mode it has when opened, so a file the program writes
//! again (an output it replaces, a partial export it truncates) is set to 0600 as well. On
//! platforms without Unix modes these are plain file operations.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// The mode of every file the program creates.
#[cfg(unix)]
pub const FILE_MODE: u32 = 0o600;

/// The mode of every directory the program creates.
#[cfg(unix)]
pub const DIR_MODE: u32 = 0o700;

/// Options that create a file (when `options` ask for it) readable by its owner only.
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options
}

/// Opens `path` with `options` (start from [`options`]), and makes a file that existed before,
/// with a wider mode, readable by its owner only too.
pub fn open(path: &Path, options: &OpenOptions) -> std::io::Result<File> {
    let file = options.open(path)?;
    restrict(&file)?;
    Ok(file)
}

/// Creates or truncates `path` for writing, readable by its owner only, creating its missing
/// parent directories with [`create_dir_all`].
pub fn create(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        create_dir_all(parent)?;
    }
    open(path, options().write(true).create(true).truncate(true))
}

/// Writes `bytes` to `path` as [`create`] does.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    create(path)?.write_all(bytes)
}

/// Creates `path` and its missing parents as directories only their owner may enter. Directories
/// that exist already are left as they are: they may be shared on purpose, such as `/tmp`.
pub fn create_dir_all(path: &Path) -> std::io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(path)
}

/// Makes the directory entries of `path`'s directory durable, after a file in it was created or
/// renamed: without it a rename that the caller counts on may be lost on a power loss.
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Sets an open file to [`FILE_MODE`] unless it is already.
fn restrict(file: &File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let permissions = file.metadata()?.permissions();
        if permissions.mode() & 0o777 != FILE_MODE {
            file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
    }
    Ok(())
}

/// A fresh directory under the system's temporary directory, for the unit tests of the modules
/// that write files.
#[cfg(test)]
pub(crate) fn scratch_dir(purpose: &str) -> std::io::Result<std::path::PathBuf> {
    let path = std::env::temp_dir().join(format!(
        "inkeep-analytics-{purpose}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos())
    ));
    std::fs::create_dir_all(&path)?;
    Ok(path)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        match std::fs::metadata(path) {
            Ok(metadata) => metadata.permissions().mode() & 0o777,
            Err(error) => panic!("{}: {error}", path.display()),
        }
    }

    #[test]
    fn files_and_directories_are_their_owners_only() -> std::io::Result<()> {
        let scratch = tempfile_dir()?;
        let file = scratch.join("new/deeper/export.jsonl");
        write(&file, b"{}\n")?;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&scratch.join("new")), 0o700);
        assert_eq!(mode(&scratch.join("new/deeper")), 0o700);

        // A file that was there, readable by everyone, is narrowed when written again.
        let existing = scratch.join("existing.csv");
        std::fs::write(&existing, b"old")?;
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644))?;
        write(&existing, b"new")?;
        assert_eq!(mode(&existing), 0o600);
        assert_eq!(std::fs::read(&existing)?, b"new");
        sync_parent(&existing)?;
        std::fs::remove_dir_all(&scratch)
    }

    fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
        scratch_dir("owner-only")
    }
}
