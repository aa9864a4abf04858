//! The committed transcript's format, as stored in `p:{P}:transcript`: a tar holding the
//! session's `<id>.jsonl` (and its folder `<id>/`, when it has one), gzipped from 16 KiB (below
//! that a compressor costs more than it saves; readers tell the two apart by gzip's magic bytes).
//! Workers write and restore it; anything that shows a conversation reads it.

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
