//! Where a DUMMY-PAY connector may read: only under the allowed roots the runtime hands its
//! loader (`[dummypay] allowed_roots` in the settings). A directory is compared after
//! resolving symbolic links — `canonicalize`, or for a directory that does not exist yet, the
//! canonical form of its nearest existing ancestor with the rest of the path applied to it —
//! so neither `..` nor a link inside a root can lead outside it. A dangling link on the way is
//! refused: what it points to could be created later, outside.

use std::io;
use std::path::{Component, Path, PathBuf};

/// The directories a connector may read, and everything under them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedRoots(Vec<PathBuf>);

impl AllowedRoots {
    /// The roots as configured (relative ones are relative to the working directory; none
    /// needs to exist yet).
    pub fn new(roots: Vec<PathBuf>) -> Self {
        Self(roots)
    }

    /// `Ok` when `directory` resolves to one of the roots or a path under one; otherwise the
    /// message for the `directory` field.
    pub fn check(&self, directory: &Path) -> Result<(), String> {
        let resolved = resolve(directory).map_err(|e| {
            format!(
                "{:?} cannot be resolved: {e}",
                directory.display().to_string()
            )
        })?;
        let inside = self
            .0
            .iter()
            .filter_map(|root| resolve(root).ok())
            .any(|root| resolved.starts_with(&root));
        if inside {
            Ok(())
        } else {
            Err(format!(
                "{:?} is outside the directories DUMMY-PAY may read once symbolic links are resolved (setting dummypay.allowed_roots)",
                directory.display().to_string()
            ))
        }
    }
}

/// `path` absolute with every symbolic link resolved, for a path whose last components may not
/// exist yet.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    for ancestor in absolute.ancestors() {
        match ancestor.canonicalize() {
            Ok(mut base) => {
                let rest = absolute.strip_prefix(ancestor).unwrap_or(Path::new(""));
                // The rest does not exist: no link in it, so `..` is plain path arithmetic.
                for component in rest.components() {
                    match component {
                        Component::Normal(c) => base.push(c),
                        Component::ParentDir => {
                            base.pop();
                        }
                        _ => {}
                    }
                }
                return Ok(base);
            }
            Err(_) if std::fs::symlink_metadata(ancestor).is_ok() => {
                return Err(io::Error::other(format!(
                    "{} is a symbolic link to nothing",
                    ancestor.display()
                )));
            }
            Err(_) => {}
        }
    }
    Err(io::Error::other("no existing ancestor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_outside_missing_and_linked_directories() {
        let root = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let roots = AllowedRoots::new(vec![root.path().to_path_buf()]);
        assert!(roots.check(root.path()).is_ok());
        assert!(roots.check(&root.path().join("new/deeper")).is_ok());
        assert!(roots.check(other.path()).is_err());
        assert!(roots.check(&root.path().join("new/../../escape")).is_err());
        assert!(roots.check(&root.path().join("..")).is_err());
        std::os::unix::fs::symlink(other.path(), root.path().join("link")).unwrap();
        assert!(roots.check(&root.path().join("link")).is_err());
        assert!(roots.check(&root.path().join("link/sub")).is_err());
        std::os::unix::fs::symlink(other.path().join("gone"), root.path().join("dangling"))
            .unwrap();
        assert!(roots.check(&root.path().join("dangling")).is_err());
        // A root that is itself a link is allowed through its target.
        let via = AllowedRoots::new(vec![root.path().join("link")]);
        assert!(via.check(&other.path().join("x")).is_ok());
        assert!(AllowedRoots::default().check(root.path()).is_err());
    }
}
