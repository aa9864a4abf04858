//! The committed transcript's format. `p:{P}:transcript` holds the base pack: a tar of the
//! session's `<id>.jsonl` (and its folder `<id>/`, when it has one). `p:{P}:transcript_chunks`
//! holds what each later commit added, in order, each a tar of one entry
//! `<id>.jsonl@<offset>` (the bytes appended to the file, which was `offset` bytes long) and the
//! folder's files that were added or changed (whole). A commit thus sends only what its turn
//! added: the cost of a task does not grow with its plan. Packs and chunks are gzipped from
//! 16 KiB (below that a compressor costs more than it saves; readers tell them apart by gzip's
//! magic bytes). Workers write and restore the transcript (and compact it to one pack when they
//! restore it); anything that shows a conversation reads it with [`assemble_jsonl`].

use std::io::Read;

use flate2::read::GzDecoder;

use crate::ids::ClaudeSessionId;

/// Packs at least this large are gzipped.
pub const COMPRESS_FROM: usize = 16 * 1024;
/// How a gzipped pack starts.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Most bytes read out of one blob (a hostile blob must not expand without bound).
pub const MAX_UNPACKED_BYTES: u64 = 512 * 1024 * 1024;

/// The tar stream inside a blob, decompressed if it was compressed, capped in size.
pub fn reader(blob: &[u8]) -> Box<dyn Read + '_> {
    if blob.starts_with(&GZIP_MAGIC) {
        Box::new(GzDecoder::new(blob).take(MAX_UNPACKED_BYTES))
    } else {
        Box::new(blob.take(MAX_UNPACKED_BYTES))
    }
}

/// The transcript file (`<session>.jsonl`) out of a blob; `None` when the blob does not hold it.
///
/// # Errors
/// The blob is not a readable pack.
pub fn read_jsonl(blob: &[u8], session: ClaudeSessionId) -> std::io::Result<Option<Vec<u8>>> {
    let name = format!("{session}.jsonl");
    let mut archive = tar::Archive::new(reader(blob));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.as_os_str() == name.as_str() {
            let mut out = Vec::new();
            entry.read_to_end(&mut out)?;
            return Ok(Some(out));
        }
    }
    Ok(None)
}

/// The name of a chunk's entry that appends to the transcript file which was `offset` long.
pub fn append_entry_name(session: ClaudeSessionId, offset: u64) -> String {
    format!("{session}.jsonl@{offset}")
}

/// The offset of an append entry named `name` for `session`, `None` for other entries.
pub fn append_offset(name: &str, session: ClaudeSessionId) -> Option<u64> {
    name.strip_prefix(&format!("{session}.jsonl@"))?
        .parse()
        .ok()
}

/// The transcript file out of a base pack and the chunks committed after it.
///
/// # Errors
/// A pack or chunk is unreadable, or a chunk does not continue the file where it ends.
pub fn assemble_jsonl(
    base: &[u8],
    chunks: &[Vec<u8>],
    session: ClaudeSessionId,
) -> std::io::Result<Option<Vec<u8>>> {
    let Some(mut jsonl) = read_jsonl(base, session)? else {
        return Ok(None);
    };
    for chunk in chunks {
        let mut archive = tar::Archive::new(reader(chunk));
        for entry in archive.entries()? {
            let mut entry = entry?;
            let name = entry.path()?.to_string_lossy().into_owned();
            if let Some(offset) = append_offset(&name, session) {
                if offset != jsonl.len() as u64 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "a chunk appends at {offset}, the transcript is {} bytes",
                            jsonl.len()
                        ),
                    ));
                }
                entry.read_to_end(&mut jsonl)?;
            }
        }
    }
    Ok(Some(jsonl))
}
