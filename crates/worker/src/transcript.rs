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

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use baton_core::transcript::{append_entry_name, append_offset, reader, COMPRESS_FROM};
use baton_core::ClaudeSessionId;
use flate2::write::GzEncoder;
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
    #[error("transcript file operation failed on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TranscriptError + '_ {
    move |source| TranscriptError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The CLI's folder name for a working directory: every character that is not an ASCII letter
/// or digit becomes `-`.
pub(crate) fn project_dir_name(cwd: &Path) -> String {
    cwd.to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
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

    /// The transcript file.
    pub(crate) fn jsonl(&self) -> PathBuf {
        self.dir.join(format!("{}.jsonl", self.id))
    }

    fn folder(&self) -> PathBuf {
        self.dir.join(self.id.to_string())
    }

    /// The folder's regular files (relative paths) with their sizes and modification times.
    fn folder_stamps(&self) -> Result<BTreeMap<PathBuf, FileStamp>, TranscriptError> {
        let root = self.folder();
        let mut out = BTreeMap::new();
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
    fn state_of(&self, bytes: &[u8]) -> Result<Committed, TranscriptError> {
        let mut hasher = Sha256::new();
        hasher.update(bytes);
        Ok(Committed {
            session: self.id,
            len: bytes.len() as u64,
            hasher,
            tail: bytes[bytes.len().saturating_sub(TAIL)..].to_vec(),
            folder: self.folder_stamps()?,
        })
    }

    /// The local copy's state (reads and hashes the whole file), `None` when there is none.
    pub(crate) fn state(&self) -> Option<Committed> {
        let bytes = std::fs::read(self.jsonl()).ok()?;
        self.state_of(&bytes).ok()
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
        let Ok(mut f) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&jsonl)
        else {
            return false;
        };
        let tail_start = committed.len - committed.tail.len() as u64;
        let mut tail = vec![0; committed.tail.len()];
        let starts_with = f
            .seek(SeekFrom::Start(tail_start))
            .and_then(|_| f.read_exact(&mut tail))
            .is_ok()
            && tail == committed.tail;
        let Ok(stamps) = self.folder_stamps() else {
            return false;
        };
        let kept = committed
            .folder
            .iter()
            .all(|(rel, stamp)| stamps.get(rel) == Some(stamp));
        if !starts_with || !kept || f.set_len(committed.len).is_err() {
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
        let Ok(mut f) = std::fs::File::open(self.jsonl()) else {
            return false;
        };
        let tail_start = committed.len - committed.tail.len() as u64;
        let mut rest = Vec::new();
        let read = f
            .seek(SeekFrom::Start(tail_start))
            .and_then(|_| f.read_to_end(&mut rest));
        read.is_ok()
            && rest == committed.tail
            && self.folder_stamps().is_ok_and(|s| s == committed.folder)
    }

    /// Packs the transcript file and the session's folder whole.
    ///
    /// # Errors
    /// The transcript file is missing or unreadable.
    pub(crate) fn pack(&self) -> Result<Pack, TranscriptError> {
        let jsonl = self.jsonl();
        let bytes = std::fs::read(&jsonl).map_err(|_| TranscriptError::Missing(jsonl.clone()))?;
        let committed = self.state_of(&bytes)?;
        let mut tar = tar::Builder::new(Vec::with_capacity(bytes.len() + 2048));
        let name = format!("{}.jsonl", self.id);
        append_bytes(&mut tar, &name, &bytes).map_err(io_err(&jsonl))?;
        let folder = self.folder();
        if folder.is_dir() {
            tar.append_dir_all(self.id.to_string(), &folder)
                .map_err(io_err(&folder))?;
        }
        let plain = tar.into_inner().map_err(io_err(&jsonl))?;
        Ok(Pack {
            blob: compressed(plain).map_err(io_err(&jsonl))?,
            append: false,
            committed,
        })
    }

    /// Packs what was added since `committed`: a chunk with the file's new bytes and the
    /// folder's new or changed files. A whole pack instead when the local file no longer starts
    /// with what was committed (or is another session's), or a folder file went away.
    ///
    /// # Errors
    /// The transcript file is missing or unreadable.
    pub(crate) fn pack_since(&self, committed: &Committed) -> Result<Pack, TranscriptError> {
        let jsonl = self.jsonl();
        if committed.session != self.id {
            return self.pack();
        }
        let mut f =
            std::fs::File::open(&jsonl).map_err(|_| TranscriptError::Missing(jsonl.clone()))?;
        let tail_start = committed.len - committed.tail.len() as u64;
        let mut rest = Vec::new();
        f.seek(SeekFrom::Start(tail_start))
            .and_then(|_| f.read_to_end(&mut rest))
            .map_err(io_err(&jsonl))?;
        if !rest.starts_with(&committed.tail) {
            return self.pack();
        }
        let added = &rest[committed.tail.len()..];
        let stamps = self.folder_stamps()?;
        if committed.folder.keys().any(|k| !stamps.contains_key(k)) {
            return self.pack();
        }
        let mut tar = tar::Builder::new(Vec::with_capacity(added.len() + 1024));
        append_bytes(&mut tar, &append_entry_name(self.id, committed.len), added)
            .map_err(io_err(&jsonl))?;
        let folder = self.folder();
        for (rel, stamp) in &stamps {
            if committed.folder.get(rel) != Some(stamp) {
                let path = folder.join(rel);
                tar.append_path_with_name(&path, Path::new(&self.id.to_string()).join(rel))
                    .map_err(io_err(&path))?;
            }
        }
        let plain = tar.into_inner().map_err(io_err(&jsonl))?;
        let mut hasher = committed.hasher.clone();
        hasher.update(added);
        let kept = rest.len().saturating_sub(TAIL);
        Ok(Pack {
            blob: compressed(plain).map_err(io_err(&jsonl))?,
            append: true,
            committed: Committed {
                session: self.id,
                len: committed.len + added.len() as u64,
                hasher,
                tail: rest[kept..].to_vec(),
                folder: stamps,
            },
        })
    }

    /// Makes the local copy equal to the committed transcript: removes any local copy (here and
    /// in other project folders of this config dir), unpacks the base pack, applies the chunks
    /// in order, and checks the transcript's digest. Returns what is now committed locally.
    ///
    /// # Errors
    /// [`TranscriptError::Corrupt`] or [`TranscriptError::DigestMismatch`] when base and chunks
    /// do not make the committed transcript; `Io` for local file trouble.
    pub(crate) fn restore(
        &self,
        base: &[u8],
        chunks: &[Vec<u8>],
        expected_digest: &str,
    ) -> Result<Committed, TranscriptError> {
        self.remove_everywhere()?;
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        for (i, blob) in std::iter::once(base)
            .chain(chunks.iter().map(Vec::as_slice))
            .enumerate()
        {
            self.unpack(blob, i > 0)?;
        }
        let got = self
            .state()
            .ok_or_else(|| TranscriptError::Missing(self.jsonl()))?;
        let digest = got.digest();
        if !expected_digest.is_empty() && digest != expected_digest {
            return Err(TranscriptError::DigestMismatch {
                expected: expected_digest.to_owned(),
                got: digest,
            });
        }
        Ok(got)
    }

    /// Unpacks one pack (`chunk`: false) or chunk into the session's folder.
    fn unpack(&self, blob: &[u8], chunk: bool) -> Result<(), TranscriptError> {
        let id = self.id.to_string();
        let whole = format!("{id}.jsonl");
        let mut archive = tar::Archive::new(reader(blob));
        let entries = archive.entries().map_err(TranscriptError::Corrupt)?;
        for entry in entries {
            let mut entry = entry.map_err(TranscriptError::Corrupt)?;
            let path = entry.path().map_err(TranscriptError::Corrupt)?.into_owned();
            let name = path.to_string_lossy().into_owned();
            if let Some(offset) = append_offset(&name, self.id).filter(|_| chunk) {
                let jsonl = self.jsonl();
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&jsonl)
                    .map_err(io_err(&jsonl))?;
                let len = file.metadata().map_err(io_err(&jsonl))?.len();
                if len != offset {
                    return Err(TranscriptError::Corrupt(std::io::Error::other(format!(
                        "a chunk appends at {offset}, the transcript is {len} bytes"
                    ))));
                }
                std::io::copy(&mut entry, &mut file).map_err(TranscriptError::Corrupt)?;
                continue;
            }
            let first = path
                .components()
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned());
            // Only this session's own file (in a base pack) and folder may come out of a blob.
            let allowed = (!chunk && first.as_deref() == Some(whole.as_str()))
                || first.as_deref() == Some(id.as_str());
            if !allowed {
                return Err(TranscriptError::Corrupt(std::io::Error::other(format!(
                    "unexpected entry {}",
                    path.display()
                ))));
            }
            // `unpack_in` refuses paths that would leave the folder.
            entry
                .unpack_in(&self.dir)
                .map_err(TranscriptError::Corrupt)?;
        }
        Ok(())
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

/// What a commit sends of the transcript, and what is committed once it lands.
#[derive(Debug)]
pub(crate) struct Pack {
    pub(crate) blob: Vec<u8>,
    /// A chunk to append (else a whole pack).
    pub(crate) append: bool,
    pub(crate) committed: Committed,
}

fn append_bytes(tar: &mut tar::Builder<Vec<u8>>, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)
}

/// `plain` gzipped when it is large enough for that to pay.
fn compressed(plain: Vec<u8>) -> std::io::Result<Vec<u8>> {
    if plain.len() < COMPRESS_FROM {
        return Ok(plain);
    }
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain)?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::transcript::GZIP_MAGIC;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("baton-transcript-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A session's files in a fresh config dir, with `body` as the transcript.
    fn session(cwd: &str, body: &[u8]) -> SessionFiles {
        let files = SessionFiles::new(&tmp(), Path::new(cwd), ClaudeSessionId::generate());
        std::fs::create_dir_all(files.jsonl().parent().unwrap()).unwrap();
        std::fs::write(files.jsonl(), body).unwrap();
        files
    }

    fn append(files: &SessionFiles, more: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(files.jsonl())
            .unwrap();
        f.write_all(more).unwrap();
    }

    #[test]
    fn large_packs_are_gzipped_and_round_trip() {
        let body: String = (0..2000)
            .map(|i| format!("{{\"line\":{i},\"text\":\"a transcript line\"}}\n"))
            .collect();
        let src = session("/work/ws/big", body.as_bytes());
        let pack = src.pack().unwrap();
        assert!(!pack.append);
        assert!(pack.blob.starts_with(&GZIP_MAGIC));
        assert!(pack.blob.len() < body.len() / 4, "compressed");
        let dst = SessionFiles::new(&tmp(), Path::new("/work/ws/big"), src.id);
        dst.restore(&pack.blob, &[], &pack.committed.digest())
            .unwrap();
        assert_eq!(std::fs::read_to_string(dst.jsonl()).unwrap(), body);
        // What a reader of the committed blob (the dashboard) sees.
        let read = baton_core::transcript::read_jsonl(&pack.blob, src.id)
            .unwrap()
            .unwrap();
        assert_eq!(read, body.as_bytes());
    }

    /// Each commit after the first sends what its turn added; base and chunks restore (and
    /// assemble) to the whole transcript, digest checked.
    #[test]
    fn later_commits_send_only_what_their_turn_added() {
        let src = session("/work/ws/grow", b"{\"turn\":1}\n");
        let first = src.pack().unwrap();
        let mut committed = first.committed.clone();
        let mut chunks = Vec::new();
        for turn in 2..=5 {
            let line = format!("{{\"turn\":{turn},\"pad\":\"{}\"}}\n", "x".repeat(5000));
            append(&src, line.as_bytes());
            if turn == 4 {
                std::fs::create_dir_all(src.folder().join("tool-results")).unwrap();
                std::fs::write(src.folder().join("tool-results/out.txt"), b"saved output").unwrap();
            }
            assert!(
                !src.is_at(&committed),
                "the file grew past what was committed"
            );
            let pack = src.pack_since(&committed).unwrap();
            assert!(pack.append, "turn {turn} is a chunk");
            // The turn's bytes (and turn 4's folder file) in tar's framing.
            assert!(
                pack.blob.len() < line.len() + 4096,
                "turn {turn} sends one turn: {}",
                pack.blob.len()
            );
            committed = pack.committed;
            assert!(src.is_at(&committed));
            chunks.push(pack.blob);
        }
        let whole = std::fs::read(src.jsonl()).unwrap();
        assert_eq!(committed.digest(), hex_sha256(&whole));

        let dst = SessionFiles::new(&tmp(), Path::new("/work/ws/grow"), src.id);
        let restored = dst
            .restore(&first.blob, &chunks, &committed.digest())
            .unwrap();
        assert_eq!(std::fs::read(dst.jsonl()).unwrap(), whole);
        assert_eq!(
            std::fs::read(dst.folder().join("tool-results/out.txt")).unwrap(),
            b"saved output"
        );
        assert_eq!(restored.digest(), committed.digest());
        let assembled =
            baton_core::transcript::assemble_jsonl(&first.blob, &chunks, src.id).unwrap();
        assert_eq!(assembled.unwrap(), whole);

        // A chunk out of order, or a missing one, is refused rather than mis-assembled.
        let mut skipped = chunks.clone();
        skipped.remove(0);
        assert!(matches!(
            SessionFiles::new(&tmp(), Path::new("/work/ws/grow"), src.id).restore(
                &first.blob,
                &skipped,
                ""
            ),
            Err(TranscriptError::Corrupt(_))
        ));
        assert!(baton_core::transcript::assemble_jsonl(&first.blob, &skipped, src.id).is_err());
    }

    /// What was written after a commit (a warm CLI's last record on its way out, a failed
    /// attempt's partial turn and its folder files) is cut off; a copy that changed what was
    /// committed is left alone.
    #[test]
    fn a_copy_rewinds_to_what_was_committed() {
        let src = session("/work/ws/rw", &vec![b'a'; 9_000]);
        let committed = src.pack().unwrap().committed;
        append(&src, b"{\"type\":\"exit record\"}\n");
        std::fs::create_dir_all(src.folder()).unwrap();
        std::fs::write(src.folder().join("partial.txt"), b"half").unwrap();
        assert!(src.rewind_to(&committed));
        assert!(src.is_at(&committed));
        assert_eq!(std::fs::read(src.jsonl()).unwrap(), vec![b'a'; 9_000]);
        assert!(!src.folder().join("partial.txt").exists());

        let mut changed = vec![b'a'; 9_000];
        changed[8_999] = b'b';
        std::fs::write(src.jsonl(), &changed).unwrap();
        assert!(!src.rewind_to(&committed));
        assert_eq!(std::fs::read(src.jsonl()).unwrap(), changed, "left alone");
    }

    /// A local file that no longer starts with what was committed (rewritten, or another
    /// session's) gets a whole pack, never a chunk that would not fit.
    #[test]
    fn a_rewritten_transcript_is_packed_whole() {
        let src = session("/work/ws/rw", &vec![b'a'; 10_000]);
        let committed = src.pack().unwrap().committed;
        let mut changed = vec![b'a'; 10_000];
        changed[9_990] = b'b';
        changed.extend_from_slice(b"more\n");
        std::fs::write(src.jsonl(), &changed).unwrap();
        let pack = src.pack_since(&committed).unwrap();
        assert!(!pack.append);
        assert_eq!(pack.committed.digest(), hex_sha256(&changed));
        let other = session("/work/ws/rw", b"{}\n");
        assert!(
            !other.pack_since(&committed).unwrap().append,
            "another session"
        );
    }

    #[test]
    fn project_dir_names_match_the_cli() {
        assert_eq!(
            project_dir_name(Path::new("/srv/My_proj.v2/sub dir")),
            "-srv-My-proj-v2-sub-dir"
        );
    }

    #[test]
    fn pack_then_restore_elsewhere_round_trips_and_keeps_one_copy() {
        let (a, b) = (tmp(), tmp());
        let id = ClaudeSessionId::generate();
        let cwd = Path::new("/work/ws/p1");
        let src = SessionFiles::new(&a, cwd, id);
        std::fs::create_dir_all(src.jsonl().parent().unwrap()).unwrap();
        std::fs::write(src.jsonl(), b"{\"line\":1}\n").unwrap();
        std::fs::create_dir_all(src.folder().join("subagents")).unwrap();
        std::fs::write(src.folder().join("subagents/x.jsonl"), b"sub").unwrap();
        let pack = src.pack().unwrap();
        let (blob, digest) = (pack.blob, pack.committed.digest());

        // A stale copy in another project folder of the target must go.
        let stale = SessionFiles::new(&b, Path::new("/elsewhere"), id);
        std::fs::create_dir_all(stale.jsonl().parent().unwrap()).unwrap();
        std::fs::write(stale.jsonl(), b"old").unwrap();

        let dst = SessionFiles::new(&b, cwd, id);
        dst.restore(&blob, &[], &digest).unwrap();
        assert_eq!(std::fs::read(dst.jsonl()).unwrap(), b"{\"line\":1}\n");
        assert_eq!(
            std::fs::read(dst.folder().join("subagents/x.jsonl")).unwrap(),
            b"sub"
        );
        assert!(!stale.jsonl().exists());
        assert_eq!(dst.state().unwrap().digest(), digest);

        assert!(!blob.starts_with(&GZIP_MAGIC), "a small pack is plain tar");
        assert!(matches!(
            dst.restore(b"garbage", &[], &digest),
            Err(TranscriptError::Corrupt(_))
        ));
        let mut gz_garbage = GZIP_MAGIC.to_vec();
        gz_garbage.extend_from_slice(b"garbage");
        assert!(matches!(
            dst.restore(&gz_garbage, &[], &digest),
            Err(TranscriptError::Corrupt(_))
        ));
        assert!(matches!(
            dst.restore(&blob, &[], "00"),
            Err(TranscriptError::DigestMismatch { .. })
        ));
    }
}
