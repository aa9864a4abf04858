//! The worker's cache of the repositories it has seen: one bare mirror per URL under
//! `<state-dir>/repos`, named by a digest of the URL, fetched incrementally (branches and tags)
//! when a commit the worker needs is not in it yet. Plans' git dirs borrow its objects.

use std::path::{Path, PathBuf};

use baton_core::repo::redact;
use baton_core::{GitRef, RepoUrl};

use super::{unreachable, Git, GitError};
use crate::transcript::hex_sha256;

impl Git {
    /// The mirror of `url` (created empty the first time).
    pub(super) async fn mirror(&self, url: &RepoUrl) -> Result<PathBuf, GitError> {
        let name = &hex_sha256(url.as_str().as_bytes())[..24];
        let path = self.mirrors.join(format!("{name}.git"));
        if !path.join("HEAD").exists() {
            std::fs::create_dir_all(&self.mirrors).map_err(|source| GitError::Io {
                path: self.mirrors.clone(),
                source,
            })?;
            self.run(
                "init",
                None,
                None,
                [
                    "init".as_ref(),
                    "--bare".as_ref(),
                    "-q".as_ref(),
                    path.as_os_str(),
                ],
            )
            .await?;
        }
        Ok(path)
    }

    /// Fetches every branch and tag of `url` into its mirror (incremental; one fetch at a
    /// time per mirror).
    #[tracing::instrument(name = "git.fetch", skip_all)]
    pub(super) async fn fetch(&self, url: &RepoUrl, mirror: &Path) -> Result<(), GitError> {
        let lock = self.fetch_lock(mirror);
        let _one_at_a_time = lock.lock().await;
        let mut args = vec![
            "fetch".to_owned(),
            "--quiet".into(),
            "--prune".into(),
            "--force".into(),
            "--no-write-fetch-head".into(),
        ];
        args.extend(self.remote_program(url, "upload-pack"));
        args.extend([
            "--".into(),
            url.as_str().into(),
            "+refs/heads/*:refs/heads/*".into(),
            "+refs/tags/*:refs/tags/*".into(),
        ]);
        let out = self.output("fetch", Some(mirror), None, args).await?;
        if out.status.success() {
            return Ok(());
        }
        let detail = super::stderr_of(&out);
        Err(if unreachable(&detail) {
            GitError::Unreachable {
                url: url.redacted(),
                detail,
            }
        } else {
            GitError::Failed {
                what: "fetch".into(),
                detail,
            }
        })
    }

    /// True when `commit` is a commit object `git_dir` can see (its own or its mirror's).
    pub(super) async fn has_commit(&self, git_dir: &Path, commit: &str) -> Result<bool, GitError> {
        let spec = format!("{commit}^{{commit}}");
        let out = self
            .output("cat-file", Some(git_dir), None, ["cat-file", "-e", &spec])
            .await?;
        Ok(out.status.success())
    }

    /// The commit `base` names in `url` (a branch, tag or commit), or the remote's default
    /// branch when there is no base. Fetches first.
    pub(super) async fn resolve_base(
        &self,
        url: &RepoUrl,
        mirror: &Path,
        base: Option<&GitRef>,
    ) -> Result<String, GitError> {
        self.fetch(url, mirror).await?;
        let name = match base {
            Some(b) => b.as_str().to_owned(),
            None => self.default_branch(url).await?,
        };
        let spec = format!("{name}^{{commit}}");
        let out = self
            .output(
                "rev-parse",
                Some(mirror),
                None,
                [
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    "--end-of-options",
                    &spec,
                ],
            )
            .await?;
        let sha = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || sha.is_empty() {
            return Err(GitError::UnknownBase {
                base: name,
                url: url.redacted(),
            });
        }
        Ok(sha)
    }

    /// The branch the remote's `HEAD` points to (`refs/heads/<name>`).
    async fn default_branch(&self, url: &RepoUrl) -> Result<String, GitError> {
        let mut args = vec!["ls-remote".to_owned(), "--symref".into()];
        args.extend(self.remote_program(url, "upload-pack"));
        args.extend(["--".into(), url.as_str().into(), "HEAD".into()]);
        let out = self.output("ls-remote", None, None, args).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let detail = super::stderr_of(&out);
            return Err(GitError::Unreachable {
                url: url.redacted(),
                detail,
            });
        }
        text.lines()
            .find_map(|l| l.strip_prefix("ref: ")?.split_whitespace().next())
            .map(str::to_owned)
            .ok_or_else(|| GitError::UnknownBase {
                base: "(the default branch: the repository has none)".into(),
                url: url.redacted(),
            })
    }

    /// The commit branch `branch` of `url` is at, if it exists.
    pub(super) async fn remote_tip(
        &self,
        url: &RepoUrl,
        branch: &GitRef,
    ) -> Result<Option<String>, GitError> {
        let refname = format!("refs/heads/{branch}");
        let mut args = vec!["ls-remote".to_owned()];
        args.extend(self.remote_program(url, "upload-pack"));
        args.extend(["--".into(), url.as_str().into(), refname.clone()]);
        let out = self.output("ls-remote", None, None, args).await?;
        if !out.status.success() {
            return Err(GitError::Unreachable {
                url: url.redacted(),
                detail: redact(&super::stderr_of(&out)),
            });
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .find(|l| l.ends_with(&refname))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_owned))
    }
}
