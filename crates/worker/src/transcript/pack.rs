//! Packing what a commit sends: the whole transcript (a session's first commit) or only what
//! a turn added since the committed state (every later one).

use std::io::{Read, Seek, SeekFrom, Write};

use baton_core::transcript::{append_entry_name, COMPRESS_FROM};
use flate2::write::GzEncoder;
use sha2::Digest;

use std::path::Path;

use super::{io_err, open_inside, read_inside, Committed, SessionFiles, TranscriptError, TAIL};

impl SessionFiles {
    /// Adds the folder's file `rel` to `tar`, opened through `open_inside`.
    fn append_folder_file(
        &self,
        tar: &mut tar::Builder<Vec<u8>>,
        rel: &Path,
    ) -> Result<(), TranscriptError> {
        let path = self.folder().join(rel);
        // Checked against the project folder, never against the folder being read (which could
        // be a link itself).
        let mut file = open_inside(&path, &self.dir, std::fs::OpenOptions::new().read(true))
            .map_err(io_err(&path))?;
        tar.append_file(Path::new(&self.id.to_string()).join(rel), &mut file)
            .map_err(io_err(&path))
    }

    /// Packs the transcript file and the session's folder whole.
    ///
    /// # Errors
    /// The transcript file is missing or unreadable.
    pub(crate) fn pack(&self) -> Result<Pack, TranscriptError> {
        let jsonl = self.jsonl();
        let bytes =
            read_inside(&jsonl, &self.dir).map_err(|_| TranscriptError::Missing(jsonl.clone()))?;
        let committed = self.state_of(&bytes)?;
        let mut tar = tar::Builder::new(Vec::with_capacity(bytes.len() + 2048));
        let name = format!("{}.jsonl", self.id);
        append_bytes(&mut tar, &name, &bytes).map_err(io_err(&jsonl))?;
        // The folder's regular files only (links are neither followed nor kept), each opened
        // through `open_inside`.
        for rel in committed.folder.keys() {
            self.append_folder_file(&mut tar, rel)?;
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
        let mut f = open_inside(&jsonl, &self.dir, std::fs::OpenOptions::new().read(true))
            .map_err(|_| TranscriptError::Missing(jsonl.clone()))?;
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
        for (rel, stamp) in &stamps {
            if committed.folder.get(rel) != Some(stamp) {
                self.append_folder_file(&mut tar, rel)?;
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
