//! Moving a Claude conversation between machines.
//!
//! The CLI keeps a session as `<config>/projects/<encoded cwd>/<id>.jsonl`, plus a folder
//! `<id>/` when it has subagent transcripts or saved tool results. The committed transcript in
//! Redis is the truth, a local copy only a cache (formats in `baton_core::transcript`). A
//! session's first commit packs both whole; each later commit of the same session sends a chunk
//! with only what its turn added (the file's new bytes and the folder's new or changed files),
//! so a task's cost does not grow with its plan. The worker knows what was committed
//! ([`Committed`]: the file's length, a running SHA-256 over it, its last bytes and the folder's
//! stamps) and checks the local file still starts with it before it sends only the rest.
//!
//! Before a resume the worker checks the local file is the committed one (cheaply, against what
//! its hold committed last; else by its digest) and otherwise restores base and chunks, which
//! also discards the partial turn a failed attempt may have left. It keeps exactly one copy of a
//! session per config dir, since the CLI reports a duplicated id as not found.
//!
//! A task decides how large its session gets, so packs are capped (`--max-transcript-size`), and
//! packing and restoring past a small size run on tokio's blocking pool (`blocking`).

mod blocking;
mod pack;
mod restore;
pub(crate) use blocking::{
    cut_back, pack_capped, restore_off_thread, rewind_off_thread, state_off_thread,
};
pub(crate) use pack::Pack;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use baton_core::ClaudeSessionId;
use sha2::{Digest, Sha256};

/// A transcript operation that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TranscriptError {
    #[error("no transcript file at {0}")]
    Missing(PathBuf),
    #[error("transcript blob is unreadable")]
    Corrupt(#[source] std::io::Error),
    #[error("restored transcript has digest {got}, the session record says {expected}")]
    DigestMismatch { expected: String, got: String },
    /// The session's files hold more than the worker's cap (both in bytes; `size` is what was
    /// counted when the cap was passed, so the session may hold more).
    #[error("the session's files hold at least {size} bytes, over the cap of {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("transcript file operation failed on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Opens a file of the session for the worker, never through a link: the project folder is
/// writable from inside the box, so a command there could swap the transcript (or a file of the
/// session's folder) for a link to a worker file, which the worker would then pack into Redis
/// and restore into the box at the next task. The last component is opened with `O_NOFOLLOW`,
/// the opened file must be a regular file, and its real path (the kernel's, from
/// `/proc/self/fd`) must be inside `inside` (a linked folder on the way is refused too).
/// `inside` is taken as written, not resolved: it must be canonical (the worker's config dir
/// is made canonical at start, and a session's folder is named after a canonical workspace),
/// so a folder swapped for a link anywhere on the way leads out of it.
pub(crate) fn open_inside(
    path: &Path,
    inside: &Path,
    options: &mut std::fs::OpenOptions,
) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    // O_NONBLOCK: a FIFO planted there must not hang the worker on open (it is then refused as
    // not a regular file); it changes nothing for a regular file.
    let f = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let refused = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{}: {why}", path.display()),
        )
    };
    if !f.metadata()?.is_file() {
        return Err(refused("not a regular file"));
    }
    let real = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd()))?;
    if !real.starts_with(inside) {
        return Err(refused("leads out of the session's project folder"));
    }
    Ok(f)
}

/// Reads a session file whole, through [`open_inside`].
fn read_inside(path: &Path, inside: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_inside(path, inside, std::fs::OpenOptions::new().read(true))?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TranscriptError + '_ {
    move |source| TranscriptError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Longest project folder name the CLI writes before it cuts the name and adds a hash.
const MAX_PROJECT_DIR_NAME: usize = 200;

/// The CLI's folder name for a working directory (2.1.332, `J$` in its bundle): every UTF-16
/// unit of the path that is not an ASCII letter or digit becomes `-` (JavaScript's
/// `replace(/[^a-zA-Z0-9]/g, "-")`, so a character outside the BMP becomes two); a name longer
/// than 200 is cut to 200 and followed by `-` and the path's Java-style string hash
/// (`h = 31 * h + unit`, 32-bit), absolute, in base 36.
pub(crate) fn project_dir_name(cwd: &Path) -> String {
    let path = cwd.to_string_lossy();
    let units: Vec<u16> = path.encode_utf16().collect();
    let name: String = units
        .iter()
        .map(|&u| match u8::try_from(u) {
            Ok(b) if b.is_ascii_alphanumeric() => char::from(b),
            _ => '-',
        })
        .collect();
    if name.len() <= MAX_PROJECT_DIR_NAME {
        return name;
    }
    let hash = units
        .iter()
        .fold(0i32, |h, &u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
    format!(
        "{}-{}",
        &name[..MAX_PROJECT_DIR_NAME],
        base36(i64::from(hash).unsigned_abs())
    )
}

/// `n.toString(36)`.
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        // `n % 36` is below 36, so the index is in range.
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Where one session's files live in one config dir.
#[derive(Debug, Clone)]
pub(crate) struct SessionFiles {
    projects: PathBuf,
    dir: PathBuf,
    id: ClaudeSessionId,
}

impl SessionFiles {
    /// The files of session `id` run in `cwd` (canonical) under `config_dir`.
    pub(crate) fn new(config_dir: &Path, cwd: &Path, id: ClaudeSessionId) -> Self {
        let projects = config_dir.join("projects");
        Self {
            dir: projects.join(project_dir_name(cwd)),
            projects,
            id,
        }
    }

    /// The session's project folder (the CLI's folder for the working directory).
    pub(crate) fn dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The transcript file.
    pub(crate) fn jsonl(&self) -> PathBuf {
        self.dir.join(format!("{}.jsonl", self.id))
    }

    fn folder(&self) -> PathBuf {
        self.dir.join(self.id.to_string())
    }

    /// True when the session's folder is a real folder (not a link, which could lead anywhere).
    fn folder_is_real(&self) -> bool {
        std::fs::symlink_metadata(self.folder()).is_ok_and(|m| m.file_type().is_dir())
    }

    /// The folder's regular files (relative paths) with their sizes and modification times.
    /// None when the folder is missing or is a link (never followed).
    /// [`TranscriptError::TooLarge`] as soon as they hold more than `limit` bytes, each counted
    /// with its tar header: the box can leave millions of files there, and listing them all
    /// before a refusal cost the worker about 120 bytes of memory each.
    fn folder_stamps(&self, limit: u64) -> Result<BTreeMap<PathBuf, FileStamp>, TranscriptError> {
        let root = self.folder();
        let mut out = BTreeMap::new();
        let mut held = 0u64;
        if !self.folder_is_real() {
            return Ok(out);
        }
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let meta = entry.metadata().map_err(io_err(&path))?;
                if meta.is_dir() {
                    pending.push(path);
                } else if meta.is_file() {
                    held = held.saturating_add(meta.len().saturating_add(blocking::PER_FILE));
                    if held > limit {
                        return Err(TranscriptError::TooLarge { size: held, limit });
                    }
                    let rel = path.strip_prefix(&root).unwrap_or(&path).to_owned();
                    out.insert(
                        rel,
                        FileStamp {
                            len: meta.len(),
                            modified: meta.modified().ok(),
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    /// What committing `bytes` (the whole file) and the folder as it is now leaves committed.
    fn state_of(&self, bytes: &[u8], limit: u64) -> Result<Committed, TranscriptError> {
        let mut hasher = Sha256::new();
        hasher.update(bytes);
        Ok(Committed {
            session: self.id,
            len: bytes.len() as u64,
            hasher,
            tail: bytes[bytes.len().saturating_sub(TAIL)..].to_vec(),
            folder: self.folder_stamps(limit.saturating_sub(bytes.len() as u64))?,
        })
    }

    /// The local copy's state (reads and hashes the whole file), `None` when there is none.
    pub(crate) fn state(&self) -> Option<Committed> {
        let bytes = read_inside(&self.jsonl(), &self.dir).ok()?;
        self.state_of(&bytes, u64::MAX).ok()
    }

    /// Makes the local copy exactly `committed` again when it still starts with it (checked
    /// without reading the whole file): cuts off what was written after the commit (a warm CLI
    /// writes a last record on its way out; a failed attempt leaves a partial turn) and removes
    /// folder files added since. False, touching nothing, when the copy is not `committed` plus
    /// more.
    pub(crate) fn rewind_to(&self, committed: &Committed) -> bool {
        if committed.session != self.id {
            return false;
        }
        let jsonl = self.jsonl();
        let Ok(mut f) = open_inside(
            &jsonl,
            &self.dir,
            std::fs::OpenOptions::new().read(true).write(true),
        ) else {
            return false;
        };
        let tail_start = committed.len - committed.tail.len() as u64;
        let mut tail = vec![0; committed.tail.len()];
        let starts_with = f
            .seek(SeekFrom::Start(tail_start))
            .and_then(|_| f.read_exact(&mut tail))
            .is_ok()
            && tail == committed.tail;
        // A folder past what a default cap lets a session hold is not walked to its end: a
        // restore replaces it instead.
        let Ok(stamps) = self.folder_stamps(REWIND_WALKS_UP_TO) else {
            return false;
        };
        let kept = committed
            .folder
            .iter()
            .all(|(rel, stamp)| stamps.get(rel) == Some(stamp));
        // A link where the folder should be: restore instead (it removes the link).
        let linked = std::fs::symlink_metadata(self.folder()).is_ok() && !self.folder_is_real();
        if !starts_with || !kept || linked || f.set_len(committed.len).is_err() {
            return false;
        }
        let folder = self.folder();
        for rel in stamps
            .keys()
            .filter(|rel| !committed.folder.contains_key(*rel))
        {
            if std::fs::remove_file(folder.join(rel)).is_err() {
                return false;
            }
        }
        true
    }

    /// True when the local copy is still exactly `committed` (checked without reading the
    /// whole file: its length, its last bytes and the folder's stamps).
    #[cfg(test)]
    pub(crate) fn is_at(&self, committed: &Committed) -> bool {
        if committed.session != self.id {
            return false;
        }
        let Ok(mut f) = open_inside(
            &self.jsonl(),
            &self.dir,
            std::fs::OpenOptions::new().read(true),
        ) else {
            return false;
        };
        let tail_start = committed.len - committed.tail.len() as u64;
        let mut rest = Vec::new();
        let read = f
            .seek(SeekFrom::Start(tail_start))
            .and_then(|_| f.read_to_end(&mut rest));
        read.is_ok()
            && rest == committed.tail
            && self
                .folder_stamps(u64::MAX)
                .is_ok_and(|s| s == committed.folder)
    }

    /// Removes this session's files from every project folder of the config dir.
    pub(crate) fn remove_everywhere(&self) -> Result<(), TranscriptError> {
        let Ok(dirs) = std::fs::read_dir(&self.projects) else {
            return Ok(());
        };
        for d in dirs.flatten() {
            let p = d.path();
            let file = p.join(format!("{}.jsonl", self.id));
            if file.exists() {
                std::fs::remove_file(&file).map_err(io_err(&file))?;
            }
            let folder = p.join(self.id.to_string());
            if folder.is_dir() {
                std::fs::remove_dir_all(&folder).map_err(io_err(&folder))?;
            }
        }
        Ok(())
    }
}

/// SHA-256 as lowercase hex.
pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// How much of a session's folder (bytes, each file with its tar header) a rewind lists
/// before it leaves the folder to a restore: the default `--max-transcript-size`.
const REWIND_WALKS_UP_TO: u64 = 256 << 20;

/// Bytes of the committed file kept to check that the local file still starts with it.
const TAIL: usize = 4096;

/// A file of the session's folder as committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

/// What is committed of one session's transcript, as far as this worker knows: enough to send
/// only what a turn adds, and to tell cheaply whether the local copy is still exactly it.
#[derive(Debug, Clone)]
pub(crate) struct Committed {
    session: ClaudeSessionId,
    /// The transcript file's committed length.
    len: u64,
    /// SHA-256 over those bytes, not yet finished (more bytes extend it).
    hasher: Sha256,
    /// The last (up to) [`TAIL`] of those bytes.
    tail: Vec<u8>,
    /// The folder's files as committed.
    folder: BTreeMap<PathBuf, FileStamp>,
}

impl Committed {
    /// SHA-256 (hex) of the committed transcript file.
    pub(crate) fn digest(&self) -> String {
        format!("{:x}", self.hasher.clone().finalize())
    }

    /// The session it belongs to.
    pub(crate) fn session(&self) -> ClaudeSessionId {
        self.session
    }
}

#[cfg(test)]
mod tests;
