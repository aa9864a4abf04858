//! A plan's checkout: the work tree is the plan's workspace (where the CLI runs, at the path
//! its session expects), the git dir is `<state-dir>/checkouts/<plan>-<repo key>.git`, outside
//! workspace, and borrows the mirror's objects. Before every attempt the work tree is made
//! exactly the checkpoint's files; after a success everything the task changed becomes one
//! commit, pushed to the plan's branch with a lease on what the branch held.

use std::path::{Path, PathBuf};

use baton_core::records::DiffStat;
use baton_core::{GitRef, PlanId, RepoSpec, RepoUrl};

use super::{unreachable, Git, GitError};
use crate::transcript::hex_sha256;

/// The trailer naming the plan in every checkpoint commit: how an unrecorded commit of this
/// plan (pushed by a holder whose Redis commit was then refused) is told from anyone else's.
const PLAN_TRAILER: &str = "Baton-Plan";

/// The files a task left, as committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// The plan's checkpoint after the task: its new commit, or the previous checkpoint when
    /// the task changed nothing.
    pub(crate) commit: String,
    pub(crate) diffstat: DiffStat,
}

/// A task's files, committed on this worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Committed {
    /// The task changed nothing: the checkpoint stays, nothing to push.
    Unchanged(Checkpoint),
    /// A new commit, to push.
    ToPush(Checkpoint),
}

/// What a checkpoint commit says about its task.
#[derive(Debug)]
pub(crate) struct CommitInfo<'a> {
    pub(crate) plan: &'a PlanId,
    pub(crate) task_id: &'a str,
    pub(crate) task_index: u64,
    pub(crate) prompt: &'a str,
    pub(crate) session_id: &'a str,
    pub(crate) cost_usd: f64,
}

impl CommitInfo<'_> {
    /// `<task id>: <first line of the prompt>`, then the trailers.
    fn message(&self) -> String {
        let first: String = self
            .prompt
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .chars()
            .take(72)
            .collect();
        format!(
            "{}: {first}\n\n{PLAN_TRAILER}: {}\nBaton-Task: {}\nBaton-Task-Index: {}\nBaton-Session: {}\nBaton-Cost-Usd: {:.4}\n",
            self.task_id, self.plan, self.task_id, self.task_index, self.session_id, self.cost_usd
        )
    }
}

/// A plan's checkout on this worker.
#[derive(Debug)]
pub(crate) struct Checkout {
    git_dir: PathBuf,
    work_tree: PathBuf,
    mirror: PathBuf,
    spec: RepoSpec,
    plan: PlanId,
    /// The commit the work tree was last made equal to (the base of the next commit).
    at: String,
    /// `at` is a checkpoint a task recorded (not the base): the branch was pushed there, unless
    /// every task so far changed nothing.
    recorded: bool,
}

impl Git {
    /// Makes the plan's work tree (`work_tree`, its workspace) exactly `checkpoint`'s files
    /// (the base's when the plan has none yet): tracked files reset, everything else removed.
    /// Fetches only when the commit is not on this worker yet. `tree_at`: the commit this
    /// hold's own last commit left the work tree at, when nothing ran since; then only files
    /// git ignores can differ, and the reset is skipped.
    #[tracing::instrument(name = "git.checkout", skip_all)]
    pub(crate) async fn checkout(
        &self,
        plan: &PlanId,
        spec: &RepoSpec,
        work_tree: &Path,
        checkpoint: Option<&str>,
        tree_at: Option<&str>,
    ) -> Result<Checkout, GitError> {
        // Checked at ingest too, but maybe by a worker that allows more.
        self.check_url(&spec.url)
            .map_err(|problem| GitError::Refused {
                url: spec.url.redacted(),
                problem,
            })?;
        let mirror = self.mirror(&spec.url).await?;
        let git_dir = self.plan_git_dir(plan, spec, &mirror).await?;
        let dirs = (Some(git_dir.as_path()), Some(work_tree));
        let at = match checkpoint {
            Some(c) if tree_at == Some(c) => c.to_owned(),
            Some(c) => {
                if !self.has_commit(&git_dir, c).await? {
                    self.fetch(&spec.url, &mirror).await?;
                    if !self.has_commit(&git_dir, c).await? {
                        return Err(GitError::CheckpointGone {
                            commit: c.to_owned(),
                            url: spec.url.redacted(),
                        });
                    }
                }
                self.run("reset", dirs.0, dirs.1, ["reset", "-q", "--hard", c])
                    .await?;
                c.to_owned()
            }
            None => {
                let base = self
                    .resolve_base(&spec.url, &mirror, spec.base.as_ref())
                    .await?;
                self.run("reset", dirs.0, dirs.1, ["reset", "-q", "--hard", &base])
                    .await?;
                base
            }
        };
        self.run("clean", dirs.0, dirs.1, ["clean", "-q", "-ffdx"])
            .await?;
        Ok(Checkout {
            git_dir,
            work_tree: work_tree.to_owned(),
            mirror,
            spec: spec.clone(),
            plan: plan.clone(),
            at,
            recorded: checkpoint.is_some(),
        })
    }

    /// The plan's git dir, made the first time: a non-bare repository with no work tree of its
    /// own, borrowing the mirror's objects. Named by the plan id and its repository and
    /// branch: a plan id used again (the old plan's keys expired or were removed) for another
    /// repository gets a git dir of its own, never one whose objects are another mirror's.
    async fn plan_git_dir(
        &self,
        plan: &PlanId,
        spec: &RepoSpec,
        mirror: &Path,
    ) -> Result<PathBuf, GitError> {
        let git_dir = self.checkouts.join(git_dir_name(plan, spec));
        if git_dir.join("HEAD").exists() {
            return Ok(git_dir);
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| GitError::Io { path, source }
        };
        std::fs::create_dir_all(&self.checkouts).map_err(io(&self.checkouts))?;
        self.run(
            "init",
            None,
            None,
            [
                "init".as_ref(),
                "--bare".as_ref(),
                "-q".as_ref(),
                git_dir.as_os_str(),
            ],
        )
        .await?;
        self.run(
            "config",
            Some(&git_dir),
            None,
            ["config", "core.bare", "false"],
        )
        .await?;
        let alternates = git_dir.join("objects/info/alternates");
        let objects = mirror.join("objects");
        std::fs::write(&alternates, format!("{}\n", objects.display())).map_err(io(&alternates))?;
        Ok(git_dir)
    }

    /// Commits everything the task changed in the work tree (nothing leaves this worker yet).
    /// A repository the task made inside the work tree is recorded as its plain files: its
    /// `.git` is removed first (git would otherwise record it as a submodule it cannot push,
    /// and read its config, which the model wrote, outside the box).
    #[tracing::instrument(name = "git.checkpoint", skip_all)]
    pub(crate) async fn commit(
        &self,
        co: &Checkout,
        info: &CommitInfo<'_>,
    ) -> Result<Committed, GitError> {
        let dirs = (Some(co.git_dir.as_path()), Some(co.work_tree.as_path()));
        let tree = co.work_tree.clone();
        // A walk of the whole work tree: not on the runtime's threads.
        let removed =
            tokio::task::spawn_blocking(move || super::nested::remove_nested_repositories(&tree))
                .await
                .map_err(|e| GitError::Failed {
                    what: "removing nested repositories".into(),
                    detail: e.to_string(),
                })?
                .map_err(|e| GitError::Failed {
                    what: "removing nested repositories".into(),
                    detail: e.to_string(),
                })?;
        if removed > 0 {
            tracing::warn!(removed, "removed the .git of repositories the task made inside its workspace; their files are committed as plain files");
        }
        self.run("add", dirs.0, dirs.1, ["add", "-A"]).await?;
        let out = self
            .output(
                "commit",
                dirs.0,
                dirs.1,
                ["commit", "-q", "--no-verify", "-m", &info.message()],
            )
            .await?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stdout);
            if said.contains("nothing to commit") || said.contains("no changes added to commit") {
                return Ok(Committed::Unchanged(Checkpoint {
                    commit: co.at.clone(),
                    diffstat: DiffStat::default(),
                }));
            }
            return Err(GitError::Failed {
                what: "commit".into(),
                detail: super::stderr_of(&out),
            });
        }
        // The new commit's id and what it changed, in one call.
        let text = self
            .run(
                "log",
                dirs.0,
                None,
                [
                    "log",
                    "-1",
                    "--format=%H",
                    "--shortstat",
                    "--no-renames",
                    "HEAD",
                ],
            )
            .await?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let commit = lines.next().unwrap_or("").trim().to_owned();
        let diffstat = parse_shortstat(lines.next().unwrap_or(""));
        Ok(Committed::ToPush(Checkpoint { commit, diffstat }))
    }

    /// Pushes a checkpoint commit to the plan's branch with a lease: the branch must be at
    /// `expect` (absent, for `None`), or the push is refused ([`GitError::PushRefused`]).
    #[tracing::instrument(name = "git.push", skip_all)]
    pub(crate) async fn push_checkpoint(
        &self,
        co: &Checkout,
        checkpoint: &Checkpoint,
        expect: Option<&str>,
    ) -> Result<(), GitError> {
        self.push(
            &co.git_dir,
            &co.spec.url,
            &co.spec.branch,
            &checkpoint.commit,
            expect,
        )
        .await
    }

    /// What the plan's branch holds, when a push may replace it: the checkpoint, or a commit of
    /// this plan on top of it that no Redis commit recorded (pushed by a holder that lost its
    /// lease before its Redis commit). Anything else is someone else's work:
    /// [`GitError::BranchMoved`].
    pub(crate) async fn replaceable_tip(&self, co: &Checkout) -> Result<Option<String>, GitError> {
        let tip = self.remote_tip(&co.spec.url, &co.spec.branch).await?;
        if let Some(t) = tip.as_deref().filter(|t| *t != co.at) {
            if !self.is_unrecorded_commit_of(co, t).await? {
                return Err(GitError::BranchMoved {
                    branch: co.spec.branch.to_string(),
                    url: co.spec.url.redacted(),
                    at: t.to_owned(),
                });
            }
        }
        Ok(tip)
    }

    /// True when `tip` is a commit of this plan on top of the checkpoint that no Redis commit
    /// recorded (its holder lost the lease after pushing): the next push may replace it.
    async fn is_unrecorded_commit_of(&self, co: &Checkout, tip: &str) -> Result<bool, GitError> {
        if !self.has_commit(&co.git_dir, tip).await? {
            self.fetch(&co.spec.url, &co.mirror).await?;
        }
        let out = self
            .output(
                "log",
                Some(&co.git_dir),
                None,
                ["log", "-1", "--format=%P%n%B", tip],
            )
            .await?;
        if !out.status.success() {
            return Ok(false);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let parents = lines.next().unwrap_or("");
        let ours = format!("{PLAN_TRAILER}: {}", co.plan);
        Ok(parents == co.at && lines.any(|l| l.trim() == ours))
    }

    async fn push(
        &self,
        git_dir: &Path,
        url: &RepoUrl,
        branch: &GitRef,
        commit: &str,
        lease: Option<&str>,
    ) -> Result<(), GitError> {
        let refname = format!("refs/heads/{branch}");
        let refspec = format!("{commit}:{refname}");
        let lease = format!("--force-with-lease={refname}:{}", lease.unwrap_or(""));
        let mut args = vec![
            "push".to_owned(),
            "--quiet".into(),
            "--porcelain".into(),
            lease,
        ];
        args.extend(self.remote_program(url, "receive-pack"));
        args.extend(["--".into(), url.as_str().into(), refspec]);
        let out = self.output("push", Some(git_dir), None, args).await?;
        if out.status.success() {
            return Ok(());
        }
        let detail = super::stderr_of(&out);
        let said = format!("{}{detail}", String::from_utf8_lossy(&out.stdout));
        Err(
            if said.contains("stale info") || said.contains("rejected") {
                GitError::PushRefused {
                    branch: branch.to_string(),
                    detail: baton_core::repo::redact(said.trim()),
                }
            } else if unreachable(&detail) {
                GitError::Unreachable {
                    url: url.redacted(),
                    detail,
                }
            } else {
                GitError::Failed {
                    what: "push".into(),
                    detail,
                }
            },
        )
    }
}

/// `<plan>-<key>.git`, the key a hash of the repository URL and the branch written.
fn git_dir_name(plan: &PlanId, spec: &RepoSpec) -> String {
    let repo = format!("{}\n{}", spec.url.as_str(), spec.branch);
    format!("{plan}-{}.git", &hex_sha256(repo.as_bytes())[..16])
}

/// `N file(s) changed, X insertion(s)(+), Y deletion(s)(-)` as git prints it.
fn parse_shortstat(line: &str) -> DiffStat {
    let mut stat = DiffStat::default();
    for part in line.split(',') {
        let mut words = part.split_whitespace();
        let n = words
            .next()
            .and_then(|w| w.parse::<u64>().ok())
            .unwrap_or(0);
        match words.next() {
            Some(w) if w.starts_with("file") => stat.files = n,
            Some(w) if w.starts_with("insertion") => stat.insertions = n,
            Some(w) if w.starts_with("deletion") => stat.deletions = n,
            _ => {}
        }
    }
    stat
}

impl Checkout {
    /// Where the plan's branch should be before this attempt's push: at the recorded
    /// checkpoint, or absent before the plan's first push.
    pub(crate) fn expected_tip(&self) -> Option<&str> {
        self.recorded.then_some(self.at.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortstats_parse() {
        let d = parse_shortstat(" 2 files changed, 3 insertions(+), 1 deletion(-)");
        assert_eq!((d.files, d.insertions, d.deletions), (2, 3, 1));
        let d = parse_shortstat(" 1 file changed, 1 insertion(+)");
        assert_eq!((d.files, d.insertions, d.deletions), (1, 1, 0));
        assert_eq!(parse_shortstat(""), DiffStat::default());
    }

    #[test]
    fn commit_messages_name_the_task_and_carry_the_trailers() {
        let plan: PlanId = "p1".parse().unwrap();
        let info = CommitInfo {
            plan: &plan,
            task_id: "storage",
            task_index: 2,
            prompt: "\n  Create store.py with load/save.\nMore detail.",
            session_id: "6bbba7b0-f321-478c-b8a3-4f20b5839a74",
            cost_usd: 0.1234,
        };
        let m = info.message();
        assert!(
            m.starts_with("storage: Create store.py with load/save.\n\n"),
            "{m}"
        );
        for t in [
            "Baton-Plan: p1",
            "Baton-Task: storage",
            "Baton-Task-Index: 2",
            "Baton-Session: 6bbba7b0",
            "Baton-Cost-Usd: 0.1234",
        ] {
            assert!(m.contains(t), "{t} in {m}");
        }
    }
}
