//! Repositories a task made inside its workspace. The worker's git would enter one to see
//! whether it changed (whatever `diff.ignoreSubmodules` says) and run what its config names
//! (filters, textconv), outside the box; and a nested repository could not travel to another
//! worker anyway. So before a checkpoint its `.git` is removed and its files are committed as
//! plain files of the plan.

use std::path::Path;

/// Removes every `.git` (folder or file) below the top of `work_tree`, without following links;
/// returns how many. The top's own `.git`, if any, is left: git never adds it, and baton's git
/// dir lives outside the workspace.
pub(super) fn remove_nested_repositories(work_tree: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut pending = vec![work_tree.to_owned()];
    while let Some(dir) = pending.pop() {
        // A folder git could not read either is left alone (git add warns about it).
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            // `file_type` does not follow links: a link is neither walked nor removed here.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if entry.file_name() == ".git" {
                if dir == work_tree {
                    continue;
                }
                if kind.is_dir() {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
                removed += 1;
            } else if kind.is_dir() {
                pending.push(path);
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_repositories_lose_their_git_and_nothing_else() {
        let root = std::env::temp_dir().join(format!("baton-nested-{}", uuid::Uuid::new_v4()));
        for d in ["a/.git/hooks", "a/b/c/.git", ".git", "plain/x"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("a/b/c/.git/config"), "[filter \"x\"]\n").unwrap();
        std::fs::write(root.join("plain/.git"), "gitdir: /elsewhere\n").unwrap();
        std::fs::write(root.join("plain/x/file"), "kept").unwrap();
        let outside =
            std::env::temp_dir().join(format!("baton-nested-out-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(outside.join(".git")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        assert_eq!(remove_nested_repositories(&root).unwrap(), 3);
        assert!(root.join(".git").exists(), "the top's own is left");
        assert!(!root.join("a/.git").exists() && !root.join("a/b/c/.git").exists());
        assert!(!root.join("plain/.git").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("plain/x/file")).unwrap(),
            "kept"
        );
        assert!(outside.join(".git").exists(), "a link is not followed");
        let _ = std::fs::remove_dir_all(&root);
        let _ = std::fs::remove_dir_all(&outside);
    }
}
