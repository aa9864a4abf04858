//! Packing what a commit sends: the whole transcript (a session's first commit) or only what
//! a turn added since the committed state (every later one).

use std::io::{Read, Seek, SeekFrom, Write};

use baton_core::transcript::{append_entry_name, COMPRESS_FROM};
use flate2::write::GzEncoder;
use sha2::Digest;

use std::path::Path;

use super::blocking::PER_FILE;
use super::{io_err, open_inside, Committed, SessionFiles, TranscriptError, TAIL};

impl SessionFiles {
    /// Adds the folder's file `rel` to `tar`, opened through `open_inside`, taking its size
    /// from `left` (the bytes the cap still allows): a file past it is not read at all, and
    /// only as many bytes as its header says are read (a file that grows meanwhile cannot
    /// make the pack larger).
    fn append_folder_file(
        &self,
        tar: &mut tar::Builder<Vec<u8>>,
        rel: &Path,
        left: &mut Budget,
    ) -> Result<(), TranscriptError> {
        let path = self.folder().join(rel);
        // Checked against the project folder, never against the folder being read (which could
        // be a link itself).
        let file = open_inside(&path, &self.dir, std::fs::OpenOptions::new().read(true))
            .map_err(io_err(&path))?;
        let meta = file.metadata().map_err(io_err(&path))?;
        left.take(meta.len().saturating_add(PER_FILE))?;
        // Read before the header is written: a file cut shorter meanwhile (by a process left
        // running in the box) would leave an entry shorter than its header says, and what
        // follows it in the pack (the next files' bytes, which the task chose) would be read
        // back as entries of the task's choosing.
        let mut bytes = Vec::new();
        file.take(meta.len())
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        header.set_size(bytes.len() as u64);
        let name = Path::new(&self.id.to_string()).join(rel);
        tar.append_data(&mut header, name, bytes.as_slice())
            .map_err(io_err(&path))
    }

    /// Packs the transcript file and the session's folder whole, refusing (with
    /// [`TranscriptError::TooLarge`]) a session that holds more than `limit` bytes.
    ///
    /// # Errors
    /// The transcript file is missing or unreadable, or the session is too large.
    pub(crate) fn pack_within(&self, limit: u64) -> Result<Pack, TranscriptError> {
        let jsonl = self.jsonl();
        let mut left = Budget { limit, used: 0 };
        let bytes = read_inside_upto(&jsonl, &self.dir, limit)
            .map_err(|_| TranscriptError::Missing(jsonl.clone()))?;
        left.take(bytes.len() as u64)?;
        let committed = self.state_of(&bytes, limit)?;
        let mut tar = tar::Builder::new(Vec::with_capacity(bytes.len() + 2048));
        let name = format!("{}.jsonl", self.id);
        append_bytes(&mut tar, &name, &bytes).map_err(io_err(&jsonl))?;
        // The folder's regular files only (links are neither followed nor kept), each opened
        // through `open_inside`.
        for rel in committed.folder.keys() {
            self.append_folder_file(&mut tar, rel, &mut left)?;
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
    /// with what was committed (or is another session's), or a folder file went away. A session
    /// that holds more than `limit` bytes is refused, as by [`Self::pack_within`].
    ///
    /// # Errors
    /// The transcript file is missing or unreadable, or the session is too large.
    pub(crate) fn pack_since_within(
        &self,
        committed: &Committed,
        limit: u64,
    ) -> Result<Pack, TranscriptError> {
        match self.chunk_since(committed, limit)? {
            Some(chunk) => Ok(chunk),
            None => self.pack_within(limit),
        }
    }

    /// The chunk of [`Self::pack_since_within`]; `None` where that makes a whole pack.
    pub(super) fn chunk_since(
        &self,
        committed: &Committed,
        limit: u64,
    ) -> Result<Option<Pack>, TranscriptError> {
        let jsonl = self.jsonl();
        if committed.session != self.id {
            return Ok(None);
        }
        let f = open_inside(&jsonl, &self.dir, std::fs::OpenOptions::new().read(true))
            .map_err(|_| TranscriptError::Missing(jsonl.clone()))?;
        let tail_start = committed.len - committed.tail.len() as u64;
        let mut rest = Vec::new();
        let mut f = f.take(limit.saturating_sub(tail_start).saturating_add(1));
        f.get_mut()
            .seek(SeekFrom::Start(tail_start))
            .and_then(|_| f.read_to_end(&mut rest))
            .map_err(io_err(&jsonl))?;
        let mut left = Budget { limit, used: 0 };
        left.take(tail_start + rest.len() as u64)?;
        if !rest.starts_with(&committed.tail) {
            return Ok(None);
        }
        let added = &rest[committed.tail.len()..];
        let stamps = self.folder_stamps(limit)?;
        if committed.folder.keys().any(|k| !stamps.contains_key(k)) {
            return Ok(None);
        }
        // Files the turn left unchanged count against the cap too: the session holds them.
        left.take(
            stamps
                .iter()
                .filter(|(rel, stamp)| committed.folder.get(*rel) == Some(stamp))
                .map(|(_, stamp)| stamp.len.saturating_add(PER_FILE))
                .sum(),
        )?;
        let mut tar = tar::Builder::new(Vec::with_capacity(added.len() + 1024));
        append_bytes(&mut tar, &append_entry_name(self.id, committed.len), added)
            .map_err(io_err(&jsonl))?;
        for (rel, stamp) in &stamps {
            if committed.folder.get(rel) != Some(stamp) {
                self.append_folder_file(&mut tar, rel, &mut left)?;
            }
        }
        let plain = tar.into_inner().map_err(io_err(&jsonl))?;
        let mut hasher = committed.hasher.clone();
        hasher.update(added);
        let kept = rest.len().saturating_sub(TAIL);
        Ok(Some(Pack {
            blob: compressed(plain).map_err(io_err(&jsonl))?,
            append: true,
            committed: Committed {
                session: self.id,
                len: committed.len + added.len() as u64,
                hasher,
                tail: rest[kept..].to_vec(),
                folder: stamps,
            },
        }))
    }

    /// [`Self::pack_within`] without a cap.
    #[cfg(test)]
    pub(crate) fn pack(&self) -> Result<Pack, TranscriptError> {
        self.pack_within(u64::MAX)
    }

    /// [`Self::pack_since_within`] without a cap.
    #[cfg(test)]
    pub(crate) fn pack_since(&self, committed: &Committed) -> Result<Pack, TranscriptError> {
        self.pack_since_within(committed, u64::MAX)
    }
}

/// The bytes a pack may still read under the session's cap.
struct Budget {
    limit: u64,
    used: u64,
}

impl Budget {
    /// Counts `n` more bytes; [`TranscriptError::TooLarge`] past the limit.
    fn take(&mut self, n: u64) -> Result<(), TranscriptError> {
        self.used = self.used.saturating_add(n);
        if self.used > self.limit {
            return Err(TranscriptError::TooLarge {
                size: self.used,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

/// Reads a session file through [`open_inside`], at most `limit` bytes and one more (so a file
/// past the limit is seen to be, without reading it all).
fn read_inside_upto(path: &Path, inside: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_inside(path, inside, std::fs::OpenOptions::new().read(true))?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
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
