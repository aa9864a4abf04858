//! A plan's workspace on disk: `<root>/<workspace>`, which may not leave the workspace root.
//! The document check cannot see the disk, so the walk below refuses a symlink anywhere on the
//! way: at ingest (for folders that exist already) and again before every task (a task's own
//! tools could have turned a folder into a symlink since the last one).

use std::path::{Path, PathBuf};

use baton_core::Workspace;

/// Why a workspace cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkspaceError {
    #[error("workspace {ws:?} is not valid: {problem}")]
    Invalid { ws: String, problem: String },
    #[error(
        "workspace {ws:?} goes through a symlink ({path}), which could leave the workspace root"
    )]
    Symlink { ws: String, path: PathBuf },
    #[error("workspace {ws:?}: {path} is not a folder")]
    NotAFolder { ws: String, path: PathBuf },
    #[error("creating workspace folder {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("workspace {ws:?} leaves the workspace root")]
    LeavesRoot { ws: String },
    #[error(
        "workspace {ws:?} makes a path of {len} characters on this worker, over the {MAX_PATH} \
         the CLI names a session folder after whole (longer names are cut and hashed, and two \
         workspaces could share one); name a shorter one"
    )]
    TooLong { ws: String, len: usize },
    #[error("workspace {ws:?}: finishing an interrupted hand-over from a spare CLI")]
    HandOver {
        ws: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "workspace {ws:?} is (or reads to the CLI as) {SPARES_DIR:?} or a folder in it, which \
         the worker keeps for its spare CLIs' folders; name another folder"
    )]
    Reserved { ws: String },
}

/// Longest workspace path (in UTF-16 units, as the CLI counts) whose session folder the CLI
/// names after the whole path (`transcript::project_dir_name`): past it the name is cut and
/// followed by a 32-bit hash, which two workspaces can share.
const MAX_PATH: usize = 200;

/// The folder of the workspace root where spare CLIs park (`spare`): no plan's workspace may
/// be it or be inside it, since a box there could write into the folder a later plan gets.
pub(crate) const SPARES_DIR: &str = ".baton-spares";

/// True for [`SPARES_DIR`], anything inside it, and any workspace the CLI would give the same
/// session folder name as one of those (it writes every character but a letter or a digit as
/// `-`: `_baton-spares/x`, `_baton/spares/x`), in any case (a case-insensitive disk).
fn is_reserved(ws: &str) -> bool {
    let mangle = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect()
    };
    let (ws, reserved) = (mangle(ws), mangle(SPARES_DIR));
    ws == reserved || ws.starts_with(&format!("{reserved}-"))
}

/// Walks `<root>/<ws>` folder by folder, refusing symlinks and non-folders. `create`: missing
/// folders are made; otherwise the walk ends at the first missing one (nothing below it can be
/// a symlink yet). Returns the path walked to.
fn walk(root: &Path, ws: &Workspace, create: bool) -> Result<PathBuf, WorkspaceError> {
    let name = || ws.as_str().to_owned();
    if is_reserved(ws.as_str()) {
        return Err(WorkspaceError::Reserved { ws: name() });
    }
    let len = root
        .join(ws.as_str())
        .to_string_lossy()
        .encode_utf16()
        .count();
    if len > MAX_PATH {
        return Err(WorkspaceError::TooLong { ws: name(), len });
    }
    let mut path = root.to_owned();
    for part in ws.as_str().split('/') {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(WorkspaceError::Symlink { ws: name(), path });
            }
            Ok(m) if !m.is_dir() => return Err(WorkspaceError::NotAFolder { ws: name(), path }),
            Ok(_) => {}
            Err(_) if !create => break,
            Err(_) => std::fs::create_dir(&path).map_err(|source| WorkspaceError::Create {
                path: path.clone(),
                source,
            })?,
        }
    }
    Ok(path)
}

/// Checks a workspace a document names against the disk as it is (at ingest).
pub(crate) fn check(root: &Path, ws: &Workspace) -> Result<(), WorkspaceError> {
    walk(root, ws, false).map(|_| ())
}

/// Makes `<root>/<workspace>` exist and returns its canonical path (before each task).
/// `workspace` is the plan's stored value, checked again. `root` is canonical (made so at the
/// worker's start); the walk leaves no link and no `.` or `..` on the way, so the path walked
/// to is canonical as it stands (resolving it again cost a `readlink` per component per task).
pub(crate) fn prepare(root: &Path, workspace: &str) -> Result<PathBuf, WorkspaceError> {
    let ws: Workspace = workspace
        .parse()
        .map_err(|problem| WorkspaceError::Invalid {
            ws: workspace.to_owned(),
            problem,
        })?;
    let real = walk(root, &ws, true)?;
    if !real.starts_with(root) {
        return Err(WorkspaceError::LeavesRoot {
            ws: workspace.to_owned(),
        });
    }
    crate::handover::finish(&real).map_err(|source| WorkspaceError::HandOver {
        ws: workspace.to_owned(),
        source,
    })?;
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspaces_are_made_inside_the_root_and_symlinks_refused() {
        let root = std::env::temp_dir().join(format!("baton-ws-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&root).unwrap();
        let root = root.canonicalize().unwrap();
        let made = prepare(&root, "apps/one").unwrap();
        assert_eq!(made, root.join("apps/one"));
        assert!(made.is_dir());

        std::os::unix::fs::symlink("/tmp", root.join("out")).unwrap();
        let ws: Workspace = "out/x".parse().unwrap();
        assert!(matches!(
            check(&root, &ws),
            Err(WorkspaceError::Symlink { .. })
        ));
        assert!(matches!(
            prepare(&root, "out/x"),
            Err(WorkspaceError::Symlink { .. })
        ));
        std::fs::write(root.join("file"), b"x").unwrap();
        assert!(matches!(
            prepare(&root, "file"),
            Err(WorkspaceError::NotAFolder { .. })
        ));
        assert!(matches!(
            prepare(&root, "../up"),
            Err(WorkspaceError::Invalid { .. })
        ));
        // The spares' folder is no plan's, nor is anything inside it.
        for reserved in [
            SPARES_DIR,
            ".baton-spares/a1b2",
            "_baton-spares/w/id",
            "_baton/spares/w/id",
            ".Baton-Spares",
        ] {
            let ws: Workspace = reserved.parse().unwrap();
            assert!(matches!(
                check(&root, &ws),
                Err(WorkspaceError::Reserved { .. })
            ));
            assert!(matches!(
                prepare(&root, reserved),
                Err(WorkspaceError::Reserved { .. })
            ));
        }
        // A path the CLI would name a session folder after only in part is refused.
        let long = "x".repeat(200);
        let ws: Workspace = long.parse().unwrap();
        assert!(matches!(
            check(&root, &ws),
            Err(WorkspaceError::TooLong { .. })
        ));
        let fresh: Workspace = "not/yet/there".parse().unwrap();
        assert!(check(&root, &fresh).is_ok());
        assert!(!root.join("not").exists(), "a check creates nothing");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
