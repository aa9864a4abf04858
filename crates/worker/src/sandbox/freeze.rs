//! Holding a box still: every process in it stopped (SIGSTOP) while the worker's own git works
//! on the workspace, and let go (SIGCONT) after. A warm box lives on between tasks, and a
//! command the model left running in the background could change the workspace while git
//! reads it (make a repository there again after the worker removed the task's, and have git
//! run that repository's filters outside the box). The processes are found as the descendants
//! of the box's bubblewrap process (`/proc/<pid>/task/<tid>/children`), top down, until a
//! round finds no new one: a stopped process forks no more.

use std::collections::BTreeSet;

/// Rounds of looking for new processes before giving up (a fork storm outruns nothing: each
/// round stops what it found).
const ROUNDS: usize = 20;

/// The stopped processes of a box; they go on when this is dropped.
#[derive(Debug)]
pub(crate) struct Frozen(Vec<i32>);

/// Stops every descendant of `root` (the box's bubblewrap process, which itself keeps running:
/// it only waits).
pub(crate) fn freeze(root: u32) -> Frozen {
    // Held from the first stop on: whatever happens after it (a panic included), dropping it
    // lets every stopped process go on.
    let mut stopped = Frozen(Vec::new());
    let mut seen: BTreeSet<i32> = BTreeSet::new();
    for _ in 0..ROUNDS {
        let found: Vec<i32> = descendants(root)
            .into_iter()
            .filter(|p| !seen.contains(p))
            .collect();
        if found.is_empty() {
            break;
        }
        for pid in &found {
            signal(*pid, libc::SIGSTOP);
            seen.insert(*pid);
            stopped.0.push(*pid);
        }
        // A stop is delivered soon, not at once: wait (briefly) until each one has taken it,
        // so that the next round finds every child they could still have made.
        let deadline = std::time::Instant::now() + STOP_WAIT;
        while found.iter().any(|p| running(*p)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    stopped
}

/// How long a round waits for its processes to have stopped.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// True while `pid` exists and is not stopped.
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().and_then(|r| r.trim().chars().next()))
        .is_some_and(|state| !matches!(state, 'T' | 't' | 'Z' | 'X'))
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for pid in self.0.iter().rev() {
            signal(*pid, libc::SIGCONT);
        }
    }
}

/// Sends `sig` to every descendant of `root`: how a box's CLI (in a session of its own, out of
/// reach of a signal to the worker's child's process group) gets its SIGTERM and its grace.
pub(crate) fn signal_tree(root: u32, sig: i32) {
    for pid in descendants(root) {
        signal(pid, sig);
    }
}

/// Every descendant of `root`, parents before children.
fn descendants(root: u32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut pending = vec![root];
    while let Some(pid) = pending.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if let Ok(c) = i32::try_from(child) {
                    out.push(c);
                }
                pending.push(child);
            }
        }
    }
    out
}

#[expect(
    unsafe_code,
    reason = "kill(2) on processes of a box this worker started; libc has no safe wrapper"
)]
fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) touches no memory of ours. The pids are descendants of a child this
    // worker has not reaped, read just now; one that exited meanwhile gets a signal that goes
    // nowhere, or (if its pid was reused within these milliseconds) a stop and a continue.
    unsafe {
        libc::kill(pid, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pid: u32) -> char {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().and_then(|r| r.trim().chars().next()))
            .unwrap_or('?')
    }

    #[test]
    fn a_tree_of_processes_is_stopped_and_goes_on_after() {
        // sh starts a background sleep and waits: two levels below the root.
        let mut root = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        let id = root.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while descendants(id).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let kids = descendants(id);
        assert!(!kids.is_empty());
        let frozen = freeze(id);
        for k in &kids {
            assert_eq!(state(u32::try_from(*k).unwrap()), 'T', "stopped");
        }
        drop(frozen);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while kids
            .iter()
            .any(|k| state(u32::try_from(*k).unwrap()) == 'T')
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for k in &kids {
            assert_ne!(state(u32::try_from(*k).unwrap()), 'T', "going on");
        }
        let _ = root.kill();
        let _ = root.wait();
        for k in kids {
            signal(k, libc::SIGKILL);
        }
    }
}
