//! Repository URLs are data: a plan's `repo.url` that names a folder on the worker's own disk
//! (an absolute path or `file://`) could otherwise make the worker read, and push to, any
//! repository it can reach: its own state (the mirrors, other plans' git dirs) or a workspace,
//! where the model writes files (and so a repository config whose commands git would run). So a
//! local path is refused unless it lies under a folder the worker allows (`--repo-allow-path`,
//! none by default), and never inside the workspace root or the state dir; a path through a
//! symlink, or with `.`/`..` or percent-escapes in it, is refused rather than resolved.
//!
//! The check runs at ingest (the document is dead-lettered, field `repo.url`) and again before
//! every checkout (a document ingested by a worker that allows more fails its plan here). git
//! itself is told the same: `protocol.file.allow=never` when no folder is allowed, so neither a
//! submodule nor a redirect can bring a `file://` remote in.

use std::path::{Component, Path, PathBuf};

use baton_core::RepoUrl;

use crate::paths::resolve_path;

/// The local repositories a worker accepts.
#[derive(Debug, Clone)]
pub(crate) struct LocalRepos {
    /// The `--repo-allow-path` folders, resolved.
    allowed: Vec<PathBuf>,
    /// Folders no repository may be in, with their names for the message.
    forbidden: Vec<(PathBuf, &'static str)>,
}

impl LocalRepos {
    /// The policy for a worker allowing `allowed`, with its workspace root and state dir.
    pub(crate) fn new(allowed: &[PathBuf], workspace_root: &Path, state_dir: &Path) -> Self {
        Self {
            allowed: allowed.iter().map(|p| resolve_path(p)).collect(),
            forbidden: vec![
                (resolve_path(workspace_root), "workspace root"),
                (resolve_path(state_dir), "state dir (--state-dir)"),
            ],
        }
    }

    /// Whether any local repository may be used (git's `protocol.file.allow` follows it).
    pub(crate) fn any(&self) -> bool {
        !self.allowed.is_empty()
    }

    /// Why `url` may not be used, if it may not (for the field `repo.url`).
    pub(crate) fn check(&self, url: &RepoUrl) -> Result<(), String> {
        let Some(path) = url.local_path() else {
            return Ok(());
        };
        if path.contains('%') {
            return Err("is a local path with percent-escapes; name the folder plainly".into());
        }
        let path = Path::new(path);
        if path
            .components()
            .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
        {
            return Err("is a local path with '.' or '..' in it; name the folder plainly".into());
        }
        let mut walked = PathBuf::new();
        for part in path.components() {
            walked.push(part);
            match std::fs::symlink_metadata(&walked) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(format!(
                        "is a local path through a symlink ({}); name the real folder",
                        walked.display()
                    ));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let real = resolve_path(path);
        for (dir, what) in &self.forbidden {
            if real.starts_with(dir) || dir.starts_with(&real) {
                return Err(format!(
                    "is a local path inside (or holding) the worker's {what}, {}: a plan may not use the worker's own folders as a repository",
                    dir.display()
                ));
            }
        }
        if self.allowed.is_empty() {
            return Err(
                "is a local path, and this worker allows none: set --repo-allow-path \
                 (BATON_REPO_ALLOW_PATH) to the folder holding the repositories plans may name"
                    .into(),
            );
        }
        if !self.allowed.iter().any(|a| real.starts_with(a)) {
            let list: Vec<String> = self
                .allowed
                .iter()
                .map(|a| a.display().to_string())
                .collect();
            return Err(format!(
                "is a local path outside the folders this worker allows (--repo-allow-path: {})",
                list.join(", ")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_repositories_need_an_allowed_folder_away_from_the_workers_own() {
        let tmp = std::env::temp_dir().join(format!("baton-local-{}", uuid::Uuid::new_v4()));
        let (remotes, root, state) = (tmp.join("remotes"), tmp.join("ws"), tmp.join("state"));
        for d in [&remotes, &root, &state] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::symlink(&remotes, tmp.join("link")).unwrap();
        let url = |p: &str| p.parse::<RepoUrl>().unwrap();
        let t = tmp.display();
        let none = LocalRepos::new(&[], &root, &state);
        assert!(!none.any());
        let e = none.check(&url(&format!("{t}/remotes/a.git"))).unwrap_err();
        assert!(e.contains("--repo-allow-path"), "{e}");
        assert!(none.check(&url("https://github.com/a/b.git")).is_ok());

        let some = LocalRepos::new(std::slice::from_ref(&remotes), &root, &state);
        assert!(some.any());
        assert!(some.check(&url(&format!("{t}/remotes/a.git"))).is_ok());
        assert!(some
            .check(&url(&format!("file://{t}/remotes/new.git")))
            .is_ok());
        for (bad, says) in [
            (format!("{t}/other/a.git"), "outside the folders"),
            (format!("{t}/ws/plan/.git"), "workspace root"),
            (format!("file://{t}/state/repos/x.git"), "state dir"),
            (format!("{t}"), "holding"),
            (format!("{t}/link/a.git"), "symlink"),
            (format!("{t}/remotes/../ws/a"), "'..'"),
            (format!("file://{t}/remotes/%2e%2e/ws"), "percent"),
        ] {
            let e = some.check(&url(&bad)).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        // An allowed folder holding the workspace root does not let a plan name a workspace.
        let wide = LocalRepos::new(std::slice::from_ref(&tmp), &root, &state);
        assert!(wide.check(&url(&format!("{t}/ws/p"))).is_err());
        assert!(wide.check(&url(&format!("{t}/remotes/a.git"))).is_ok());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
