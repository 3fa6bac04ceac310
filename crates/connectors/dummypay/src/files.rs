//! Files on disk: their signature (inode, size, modification time), the record the connector
//! keeps of each ingested file, and the path check that keeps every read inside the directory.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The store key prefix of file records.
pub const RECORD_PREFIX: &str = "file:";

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The inode (a rewritten-by-rename file gets a new one).
    pub inode: u64,
    /// The size in bytes.
    pub size: u64,
    /// The modification time, in nanoseconds since the epoch.
    pub mtime_ns: i128,
}

impl Signature {
    /// The signature of a file's metadata.
    pub fn of(meta: &Metadata) -> Self {
        Self {
            inode: meta.ino(),
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        }
    }
}

/// What the connector's store keeps about a file (key `file:<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The version last read.
    pub signature: Signature,
    /// The BLAKE3 hash of the bytes actually ingested.
    pub hash: String,
    /// `ingested` or `failed`: either way, this version is not read again.
    pub outcome: String,
}

/// Why a file name cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The name is not a plain file name.
    #[error("refusing file name {0:?}: only plain names from the directory listing are read")]
    NotAPlainName(String),
    /// The resolved path leaves the directory (a symlink pointing outside).
    #[error("refusing {0:?}: it resolves outside the connector's directory")]
    Outside(String),
    /// The file is gone.
    #[error("file {0:?} vanished before it could be read")]
    Vanished(String),
    /// Another I/O error.
    #[error("{name:?}: {source}")]
    Io {
        /// The file name.
        name: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Whether `name` is a plain file name (no separator, not `.`/`..`, not empty, no NUL).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// Opens `name` inside `directory` for reading. A plain name opened without following a
/// symlink is a file of the directory itself: nothing to resolve (one system call, which
/// matters at thousands of files per second). A symlink is resolved, must stay inside the
/// directory, and the opened file's real path is checked again, so a file swapped for a
/// symlink between the check and the open cannot lead outside.
pub fn open(directory: &Path, name: &str) -> Result<std::fs::File, PathError> {
    use std::os::unix::io::AsRawFd;
    if !is_plain_name(name) {
        return Err(PathError::NotAPlainName(name.to_string()));
    }
    let io = io_error(name);
    match open_no_follow(&directory.join(name)) {
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {}
        direct => return direct.map_err(io),
    }
    let path = resolve(directory, name)?;
    let file = open_no_follow(&path).map_err(io)?;
    let root = directory.canonicalize().map_err(io)?;
    let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(io)?;
    if !opened.starts_with(&root) {
        return Err(PathError::Outside(name.to_string()));
    }
    Ok(file)
}

/// Names the file in an I/O error; a missing file has vanished since the listing.
fn io_error(name: &str) -> impl Fn(std::io::Error) -> PathError + Copy + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            PathError::Vanished(name.to_string())
        } else {
            PathError::Io {
                name: name.to_string(),
                source,
            }
        }
    }
}

/// Opens `path` for reading, failing (ELOOP) if its last component is a symlink.
fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// The real path of `name` inside `directory`, refusing anything that leaves it.
pub fn resolve(directory: &Path, name: &str) -> Result<PathBuf, PathError> {
    if !is_plain_name(name) {
        return Err(PathError::NotAPlainName(name.to_string()));
    }
    let io = io_error(name);
    let root = directory.canonicalize().map_err(io)?;
    let path = root.join(name).canonicalize().map_err(io)?;
    if path.parent() != Some(root.as_path()) && !path.starts_with(&root) {
        return Err(PathError::Outside(name.to_string()));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_inside_the_directory_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok.json"), "{}").unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        assert!(resolve(dir.path(), "ok.json").is_ok());
        for bad in ["../secret", "/etc/passwd", "..", ".", "", "a/b"] {
            assert!(
                matches!(resolve(dir.path(), bad), Err(PathError::NotAPlainName(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            resolve(dir.path(), "link"),
            Err(PathError::Outside(_))
        ));
        assert!(matches!(
            resolve(dir.path(), "gone"),
            Err(PathError::Vanished(_))
        ));
    }

    #[test]
    fn open_reads_plain_files_and_symlinks_inside_but_nothing_outside() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok.json"), "plain").unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("ok.json"), dir.path().join("inside")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        for name in ["ok.json", "inside"] {
            let mut text = String::new();
            open(dir.path(), name)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text, "plain", "{name}");
        }
        assert!(matches!(
            open(dir.path(), "link"),
            Err(PathError::Outside(_))
        ));
        assert!(matches!(
            open(dir.path(), "../secret"),
            Err(PathError::NotAPlainName(_))
        ));
        assert!(matches!(
            open(dir.path(), "gone"),
            Err(PathError::Vanished(_))
        ));
    }
}
