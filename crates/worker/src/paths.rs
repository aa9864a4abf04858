//! Paths as the worker compares them: absolute, with symlinks in the part that exists resolved.
//! Used by the configuration (the folders it names) and by git (a local repository's path
//! against the allowed ones); depends on nothing else of the worker.

use std::path::{Path, PathBuf};

/// `path` made absolute (against the working directory) with its longest existing part
/// canonicalized and the rest appended as written: where it is, or would be once created.
pub(crate) fn resolve_path(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |p, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}
