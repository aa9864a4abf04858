//! Moving a Claude conversation between machines.
//!
//! The CLI keeps a session as `<config>/projects/<encoded cwd>/<id>.jsonl`, plus a folder
//! `<id>/` when it has subagent transcripts or saved tool results. After each committed task
//! the worker packs both (tar, gzipped from 16 KiB) and commits the blob to Redis with the session's TTL: that
//! blob is the truth, a local copy only a cache. Before a resume the worker compares the local
//! file's SHA-256 with the committed one and restores the blob when they differ, which also
//! discards the partial turn a failed attempt may have left. It keeps exactly one copy of a
//! session per config dir, since the CLI reports a duplicated id as not found.

use std::path::{Path, PathBuf};

use baton_core::transcript::{reader, COMPRESS_FROM};
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

    /// SHA-256 (hex) of the local transcript file, `None` when there is none.
    pub(crate) fn local_digest(&self) -> Option<String> {
        std::fs::read(self.jsonl()).ok().map(|b| hex_sha256(&b))
    }

    /// Packs the transcript file and the session's folder. Returns the blob and the digest of
    /// the transcript file.
    ///
    /// # Errors
    /// The transcript file is missing or unreadable.
    pub(crate) fn pack(&self) -> Result<(Vec<u8>, String), TranscriptError> {
        let jsonl = self.jsonl();
        let bytes = std::fs::read(&jsonl).map_err(|_| TranscriptError::Missing(jsonl.clone()))?;
        let digest = hex_sha256(&bytes);
        let mut tar = tar::Builder::new(Vec::with_capacity(bytes.len() + 2048));
        let name = format!("{}.jsonl", self.id);
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, &name, bytes.as_slice())
            .map_err(io_err(&jsonl))?;
        let folder = self.folder();
        if folder.is_dir() {
            tar.append_dir_all(self.id.to_string(), &folder)
                .map_err(io_err(&folder))?;
        }
        let plain = tar.into_inner().map_err(io_err(&jsonl))?;
        if plain.len() < COMPRESS_FROM {
            return Ok((plain, digest));
        }
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &plain).map_err(io_err(&jsonl))?;
        let blob = gz.finish().map_err(io_err(&jsonl))?;
        Ok((blob, digest))
    }

    /// Makes the local copy equal to `blob`: removes any local copy (here and in other project
    /// folders of this config dir), unpacks, and checks the transcript's digest.
    ///
    /// # Errors
    /// [`TranscriptError::Corrupt`] or [`TranscriptError::DigestMismatch`] when the blob does
    /// not hold the committed transcript; `Io` for local file trouble.
    pub(crate) fn restore(
        &self,
        blob: &[u8],
        expected_digest: &str,
    ) -> Result<(), TranscriptError> {
        self.remove_everywhere()?;
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let mut archive = tar::Archive::new(reader(blob));
        let entries = archive.entries().map_err(TranscriptError::Corrupt)?;
        for entry in entries {
            let mut entry = entry.map_err(TranscriptError::Corrupt)?;
            let path = entry.path().map_err(TranscriptError::Corrupt)?.into_owned();
            let first = path
                .components()
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned());
            let id = self.id.to_string();
            // Only this session's own file and folder may come out of a blob.
            let allowed = first.as_deref() == Some(&format!("{id}.jsonl"))
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
        let got = self
            .local_digest()
            .ok_or_else(|| TranscriptError::Missing(self.jsonl()))?;
        if !expected_digest.is_empty() && got != expected_digest {
            return Err(TranscriptError::DigestMismatch {
                expected: expected_digest.to_owned(),
                got,
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::transcript::GZIP_MAGIC;

    #[test]
    fn large_packs_are_gzipped_and_round_trip() {
        let (a, b) = (tmp(), tmp());
        let id = ClaudeSessionId::generate();
        let cwd = Path::new("/work/ws/big");
        let src = SessionFiles::new(&a, cwd, id);
        std::fs::create_dir_all(src.jsonl().parent().unwrap()).unwrap();
        let body: String = (0..2000)
            .map(|i| format!("{{\"line\":{i},\"text\":\"a transcript line\"}}\n"))
            .collect();
        std::fs::write(src.jsonl(), &body).unwrap();
        let (blob, digest) = src.pack().unwrap();
        assert!(blob.starts_with(&GZIP_MAGIC));
        assert!(blob.len() < body.len() / 4, "compressed");
        let dst = SessionFiles::new(&b, cwd, id);
        dst.restore(&blob, &digest).unwrap();
        assert_eq!(std::fs::read_to_string(dst.jsonl()).unwrap(), body);
        // What a reader of the committed blob (the dashboard) sees.
        let read = baton_core::transcript::read_jsonl(&blob, id)
            .unwrap()
            .unwrap();
        assert_eq!(read, body.as_bytes());
    }

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("baton-transcript-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
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
        let (blob, digest) = src.pack().unwrap();

        // A stale copy in another project folder of the target must go.
        let stale = SessionFiles::new(&b, Path::new("/elsewhere"), id);
        std::fs::create_dir_all(stale.jsonl().parent().unwrap()).unwrap();
        std::fs::write(stale.jsonl(), b"old").unwrap();

        let dst = SessionFiles::new(&b, cwd, id);
        dst.restore(&blob, &digest).unwrap();
        assert_eq!(std::fs::read(dst.jsonl()).unwrap(), b"{\"line\":1}\n");
        assert_eq!(
            std::fs::read(dst.folder().join("subagents/x.jsonl")).unwrap(),
            b"sub"
        );
        assert!(!stale.jsonl().exists());
        assert_eq!(dst.local_digest().unwrap(), digest);

        assert!(!blob.starts_with(&GZIP_MAGIC), "a small pack is plain tar");
        assert!(matches!(
            dst.restore(b"garbage", &digest),
            Err(TranscriptError::Corrupt(_))
        ));
        let mut gz_garbage = GZIP_MAGIC.to_vec();
        gz_garbage.extend_from_slice(b"garbage");
        assert!(matches!(
            dst.restore(&gz_garbage, &digest),
            Err(TranscriptError::Corrupt(_))
        ));
        assert!(matches!(
            dst.restore(&blob, "00"),
            Err(TranscriptError::DigestMismatch { .. })
        ));
    }
}
