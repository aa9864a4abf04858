//! Packing and restoring off the runtime's threads. Reading, hashing and gzipping a transcript
//! takes time in proportion to its size, and a task decides that size (a hostile one can leave
//! hundreds of MB in its session folder), so past [`INLINE_UP_TO`] bytes the work runs on
//! tokio's blocking pool: the runtime threads go on renewing every hold's lease and serving the
//! model gateway meanwhile, however many of them there are. Smaller work runs where it is
//! asked for, since the hop to another thread and back costs more than it does.
//!
//! The cap on a session (`--max-transcript-size`) is checked here first, from the files' sizes
//! alone (nothing is read of a session that is too large); the pack checks it again as it
//! reads, in case a process left running in the box grows a file meanwhile.

use super::{io_err, Committed, Pack, SessionFiles, TranscriptError};

/// Work on at most this many bytes runs on the calling thread.
pub(crate) const INLINE_UP_TO: u64 = 64 * 1024;

/// What each file of the session's folder costs besides its bytes: the tar header it has in a
/// pack.
pub(super) const PER_FILE: u64 = 512;

/// Runs `work` on tokio's blocking pool when it handles more than [`INLINE_UP_TO`] bytes, else
/// here. A panic in it is a panic here.
pub(crate) async fn off_runtime_past<T, F>(bytes: u64, work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if bytes <= INLINE_UP_TO {
        return work();
    }
    run_blocking(work).await
}

/// Runs `work` on tokio's blocking pool. A panic in it is a panic here.
async fn run_blocking<T, F>(work: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime that is shutting down cancels a blocking task before it starts.
        Err(e) => panic!("transcript work cancelled: {e}"),
    }
}

impl SessionFiles {
    /// The bytes the session holds: the transcript file and the folder's regular files, each of
    /// those counted with the tar header it costs in a pack (so a folder of many empty files
    /// counts too), from their sizes alone; the folder is listed only until it holds more than
    /// `limit` (then [`TranscriptError::TooLarge`], with what was counted so far).
    fn footprint(&self, limit: u64) -> Result<u64, TranscriptError> {
        let jsonl = self.jsonl();
        let file = match std::fs::symlink_metadata(&jsonl) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_err(&jsonl)(e)),
        };
        let folder: u64 = self
            .folder_stamps(limit.saturating_sub(file))
            .map_err(|e| match e {
                TranscriptError::TooLarge { size, .. } => TranscriptError::TooLarge {
                    size: size.saturating_add(file),
                    limit,
                },
                e => e,
            })?
            .values()
            .map(|s| s.len.saturating_add(PER_FILE))
            .sum();
        Ok(file.saturating_add(folder))
    }

    /// What handling the session costs before anything is read, in bytes: the transcript's
    /// bytes past `from`, or everything when the session has a folder (how many files it holds
    /// is known only once it is walked, which is itself work in proportion to them).
    fn cost_past(&self, from: u64) -> u64 {
        if self.folder_is_real() {
            return u64::MAX;
        }
        std::fs::symlink_metadata(self.jsonl()).map_or(0, |m| m.len().saturating_sub(from))
    }

    /// [`TranscriptError::TooLarge`] when the session holds more than `limit` bytes, from its
    /// files' sizes alone.
    fn check_cap(&self, limit: u64) -> Result<(), TranscriptError> {
        let size = self.footprint(limit)?;
        if size > limit {
            return Err(TranscriptError::TooLarge { size, limit });
        }
        Ok(())
    }
}

/// What a commit sends of the session in `files`: only what was added since `before` when that
/// is known, else the whole pack; [`TranscriptError::TooLarge`] when the session holds more
/// than `limit` bytes (then nothing of it is read). Off the runtime's threads past
/// [`INLINE_UP_TO`].
///
/// # Errors
/// The session is too large, or its transcript is missing or unreadable.
pub(crate) async fn pack_capped(
    files: &SessionFiles,
    before: Option<&Committed>,
    limit: u64,
) -> Result<Pack, TranscriptError> {
    let cost = files.cost_past(before.map_or(0, |b| b.len));
    if cost <= INLINE_UP_TO {
        files.check_cap(limit)?;
        // Only a chunk here: a file that no longer starts with what was committed (which its
        // size does not tell) is packed whole, off the runtime.
        let chunk = match before {
            Some(b) => files.chunk_since(b, limit)?,
            None => Some(files.pack_within(limit)?),
        };
        if let Some(pack) = chunk {
            return Ok(pack);
        }
    }
    let (files, before) = (files.clone(), before.cloned());
    run_blocking(move || {
        files.check_cap(limit)?;
        match &before {
            Some(b) => files.pack_since_within(b, limit),
            None => files.pack_within(limit),
        }
    })
    .await
}

/// Cuts the session's files back to `committed` (or removes them, when nothing is committed or
/// they no longer start with it), off the runtime's threads: what a task left past the cap
/// does not stay on the worker's disk.
pub(crate) async fn cut_back(files: &SessionFiles, committed: Option<&Committed>) {
    let (files, committed) = (files.clone(), committed.cloned());
    run_blocking(move || {
        if !committed.is_some_and(|c| files.rewind_to(&c)) {
            let _ = files.remove_everywhere();
        }
    })
    .await;
}

/// [`SessionFiles::rewind_to`], off the runtime's threads when the session has a folder.
pub(crate) async fn rewind_off_thread(files: &SessionFiles, committed: &Committed) -> bool {
    let cost = files.cost_past(u64::MAX);
    let (files, committed) = (files.clone(), committed.clone());
    off_runtime_past(cost, move || files.rewind_to(&committed)).await
}

/// [`SessionFiles::restore`], off the runtime's threads when base and chunks hold more than
/// [`INLINE_UP_TO`] bytes (compressed: what they expand to is larger still).
///
/// # Errors
/// As [`SessionFiles::restore`].
pub(crate) async fn restore_off_thread(
    files: &SessionFiles,
    base: Vec<u8>,
    chunks: Vec<Vec<u8>>,
    expected_digest: String,
) -> Result<Committed, TranscriptError> {
    let stored = base.len() as u64 + chunks.iter().map(|c| c.len() as u64).sum::<u64>();
    // A restore first removes what is left locally, which may be far more than what it writes.
    let cost = stored.max(files.cost_past(0));
    let files = files.clone();
    off_runtime_past(cost, move || {
        files.restore(&base, &chunks, &expected_digest)
    })
    .await
}

/// [`SessionFiles::state`] (it reads and hashes the whole file), off the runtime's threads
/// when the file is larger than [`INLINE_UP_TO`] or the session has a folder.
pub(crate) async fn state_off_thread(files: &SessionFiles) -> Option<Committed> {
    let cost = files.cost_past(0);
    let files = files.clone();
    off_runtime_past(cost, move || files.state()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::ClaudeSessionId;
    use std::path::Path;

    /// A session's files in a fresh config dir, with `body` as the transcript.
    fn session(body: &[u8]) -> SessionFiles {
        let config = std::env::temp_dir().join(format!("baton-cap-{}", uuid::Uuid::new_v4()));
        let files = SessionFiles::new(&config, Path::new("/w/cap"), ClaudeSessionId::generate());
        std::fs::create_dir_all(files.jsonl().parent().unwrap()).unwrap();
        std::fs::write(files.jsonl(), body).unwrap();
        files
    }

    /// Packs past the threshold (a large transcript; a session with a folder) go through the
    /// blocking pool and restore to the same bytes on a runtime of one thread.
    #[tokio::test(flavor = "current_thread")]
    async fn large_sessions_pack_and_restore_off_the_runtime() {
        let body: Vec<u8> = (0..40_000u32)
            .flat_map(|i| format!("{{\"line\":{i}}}\n").into_bytes())
            .collect();
        let src = session(&body);
        assert!(src.cost_past(0) > INLINE_UP_TO);
        let first = pack_capped(&src, None, 1 << 30).await.unwrap();
        std::fs::create_dir_all(src.folder().join("tool-results")).unwrap();
        std::fs::write(src.folder().join("tool-results/out.txt"), "saved").unwrap();
        std::fs::write(src.jsonl(), [body.as_slice(), b"{\"line\":-1}\n"].concat()).unwrap();
        assert_eq!(src.cost_past(first.committed.len), u64::MAX, "a folder");
        let chunk = pack_capped(&src, Some(&first.committed), 1 << 30)
            .await
            .unwrap();
        assert!(chunk.append);
        let elsewhere = std::env::temp_dir().join(format!("baton-cap-{}", uuid::Uuid::new_v4()));
        let dst = SessionFiles::new(&elsewhere, Path::new("/w/cap"), src.id);
        let digest = chunk.committed.digest();
        let restored = restore_off_thread(&dst, first.blob, vec![chunk.blob], digest.clone())
            .await
            .unwrap();
        assert_eq!(restored.digest(), digest);
        assert_eq!(state_off_thread(&dst).await.unwrap().digest(), digest);
        let saved = std::fs::read_to_string(dst.folder().join("tool-results/out.txt")).unwrap();
        assert_eq!(saved, "saved");
        // A file rewritten to other bytes a little longer than committed: its size says "a small
        // chunk", its bytes need a whole pack.
        let only = session(&body);
        let committed = pack_capped(&only, None, 1 << 30).await.unwrap().committed;
        let other: Vec<u8> = body.iter().map(|b| b ^ 1).chain(*b"\n").collect();
        std::fs::write(only.jsonl(), &other).unwrap();
        assert!(only.cost_past(committed.len) <= INLINE_UP_TO);
        let whole = pack_capped(&only, Some(&committed), 1 << 30).await.unwrap();
        assert!(!whole.append);
        assert_eq!(
            whole.committed.digest(),
            crate::transcript::hex_sha256(&other)
        );
    }

    /// A session over the cap is refused with both sizes, whether the transcript or a file of
    /// the folder (or many empty ones) makes it so; cut back, it holds what was committed.
    #[tokio::test(flavor = "current_thread")]
    async fn a_session_over_the_cap_is_refused_with_its_size() {
        let src = session(b"{\"turn\":1}\n");
        let committed = pack_capped(&src, None, 4096).await.unwrap().committed;
        std::fs::write(src.jsonl(), vec![b'x'; 5000]).unwrap();
        let too_large = |r: Result<Pack, TranscriptError>| match r {
            Err(TranscriptError::TooLarge { size, limit }) => (size, limit),
            other => panic!("not refused: {other:?}"),
        };
        assert_eq!(too_large(pack_capped(&src, None, 4096).await), (5000, 4096));
        assert_eq!(
            too_large(src.pack_within(4096)).1,
            4096,
            "the pack checks it too"
        );
        let two_turns = b"{\"turn\":1}\n{\"turn\":2}\n";
        std::fs::write(src.jsonl(), two_turns).unwrap();
        let folder = src.folder().join("tool-results");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("big.bin"), vec![0; 8000]).unwrap();
        let (size, _) = too_large(pack_capped(&src, Some(&committed), 4096).await);
        assert_eq!(size, two_turns.len() as u64 + 8000 + PER_FILE);
        assert!(src.pack_since_within(&committed, 4096).is_err());
        std::fs::remove_file(folder.join("big.bin")).unwrap();
        for i in 0..10 {
            std::fs::write(folder.join(format!("empty-{i}")), b"").unwrap();
        }
        too_large(pack_capped(&src, Some(&committed), 4096).await);
        cut_back(&src, Some(&committed)).await;
        assert!(std::fs::read_dir(&folder).unwrap().next().is_none());
        assert_eq!(std::fs::read(src.jsonl()).unwrap(), b"{\"turn\":1}\n");
        assert!(pack_capped(&src, Some(&committed), 4096).await.is_ok());
        cut_back(&src, None).await;
        assert!(!src.jsonl().exists());
    }

    /// A folder of many empty files is refused once it passes the cap, not listed to its end
    /// first: the size named is what was counted by then, a few files past the cap.
    #[tokio::test(flavor = "current_thread")]
    async fn a_folder_of_many_files_is_listed_only_up_to_the_cap() {
        let src = session(b"{\"turn\":1}\n");
        let folder = src.folder().join("tool-results");
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..2000 {
            std::fs::write(folder.join(format!("empty-{i}")), b"").unwrap();
        }
        match pack_capped(&src, None, 4096).await {
            Err(TranscriptError::TooLarge { size, limit }) => {
                assert_eq!(limit, 4096);
                assert!(size <= 4096 + PER_FILE, "listed to its end: {size}");
            }
            other => panic!("not refused: {other:?}"),
        }
        // A rewind does not list it to its end either: it leaves the folder to a restore.
        assert!(src.folder_stamps(u64::MAX).unwrap().len() == 2000);
        assert!(src.folder_stamps(10 * PER_FILE).is_err());
    }

    /// Small work stays on the calling thread; work past the threshold leaves it, on a runtime
    /// of one thread too.
    #[tokio::test(flavor = "current_thread")]
    async fn work_past_the_threshold_runs_off_the_runtime_thread() {
        let here = std::thread::current().id();
        let small = off_runtime_past(INLINE_UP_TO, || std::thread::current().id()).await;
        assert_eq!(small, here);
        let large = off_runtime_past(INLINE_UP_TO + 1, || std::thread::current().id()).await;
        assert_ne!(large, here);
    }
}
