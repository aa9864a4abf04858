//! A local bare repository standing in for a remote (GitHub, GitLab...), made and read with the
//! real git: what a plan's branch holds is checked the way a user would check it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Runs git in `dir` (a work tree, or a bare repository with `--git-dir`), returning stdout.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .context("running git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {args:?} in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The folder of a pool's bare remotes, `<pool dir>/remotes`: the one folder its workers allow
/// local repositories in (`--repo-allow-path`), apart from their workspaces and state dirs.
pub fn remotes_dir(pool_dir: &Path) -> PathBuf {
    pool_dir.join("remotes")
}

/// A bare repository on the local disk, used as a remote.
pub struct BareRepo {
    pub path: PathBuf,
}

impl BareRepo {
    /// A bare repository at `path` whose `main` holds `files` in one initial commit.
    pub fn create(path: &Path, files: &[(&str, &str)]) -> Result<Self> {
        std::fs::create_dir_all(path)?;
        git(path, &["init", "--bare", "-q", "--initial-branch=main"])?;
        let repo = Self {
            path: path.to_owned(),
        };
        repo.commit_on("main", files, "initial commit")?;
        Ok(repo)
    }

    /// The remote of a test's pool: `remotes/remote.git` in the pool's folder (see
    /// [`remotes_dir`]), a README on `main`.
    pub fn in_folder(dir: &Path) -> Result<Self> {
        Self::create(
            &remotes_dir(dir).join("remote.git"),
            &[("README.md", "hi\n")],
        )
    }

    /// The URL a plan names.
    pub fn url(&self) -> String {
        self.path.display().to_string()
    }

    /// Adds a commit holding `files` on `branch` (created from `main` when new).
    pub fn commit_on(&self, branch: &str, files: &[(&str, &str)], message: &str) -> Result<String> {
        let work = self
            .path
            .with_extension(format!("work-{}", uuid::Uuid::new_v4().simple()));
        let url = self.url();
        let cloned = Command::new("git")
            .args(["clone", "-q", &url])
            .arg(&work)
            .output()?;
        if !cloned.status.success() {
            bail!("clone: {}", String::from_utf8_lossy(&cloned.stderr));
        }
        let has_branch = !git(
            &work,
            &["ls-remote", "origin", &format!("refs/heads/{branch}")],
        )?
        .trim()
        .is_empty();
        if has_branch {
            git(&work, &["checkout", "-q", branch])?;
        } else {
            git(&work, &["checkout", "-q", "-b", branch])?;
        }
        for (name, content) in files {
            let p = work.join(name);
            if let Some(d) = p.parent() {
                std::fs::create_dir_all(d)?;
            }
            std::fs::write(p, content)?;
        }
        git(&work, &["add", "-A"])?;
        git(&work, &["commit", "-q", "--allow-empty", "-m", message])?;
        git(&work, &["push", "-q", "origin", branch])?;
        let sha = git(&work, &["rev-parse", "HEAD"])?.trim().to_owned();
        std::fs::remove_dir_all(&work)?;
        Ok(sha)
    }

    /// The commit `rev` names, if any.
    pub fn rev(&self, rev: &str) -> Option<String> {
        git(
            &self.path,
            &["rev-parse", "--verify", "-q", &format!("{rev}^{{commit}}")],
        )
        .ok()
        .map(|s| s.trim().to_owned())
    }

    /// The commits of `branch` not on `since`, oldest first: (sha, subject, parent).
    pub fn log(&self, since: &str, branch: &str) -> Result<Vec<(String, String, String)>> {
        let text = git(
            &self.path,
            &[
                "log",
                "--reverse",
                "--format=%H%x09%P%x09%s",
                &format!("{since}..{branch}"),
            ],
        )?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut p = l.splitn(3, '\t');
                let (sha, parent, subject) = (p.next()?, p.next()?, p.next()?);
                Some((sha.to_owned(), subject.to_owned(), parent.to_owned()))
            })
            .collect())
    }

    /// The files a commit holds.
    pub fn files(&self, rev: &str) -> Result<Vec<String>> {
        Ok(git(&self.path, &["ls-tree", "-r", "--name-only", rev])?
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// A file's content at `rev`.
    pub fn show(&self, rev: &str, path: &str) -> Option<String> {
        git(&self.path, &["show", &format!("{rev}:{path}")]).ok()
    }

    /// A commit's full message.
    pub fn message(&self, rev: &str) -> Result<String> {
        git(&self.path, &["log", "-1", "--format=%B", rev])
    }
}
