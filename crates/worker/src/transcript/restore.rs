//! Restoring the committed transcript on this machine: the base pack, then the chunks in order,
//! checked against the committed digest.

use baton_core::transcript::{append_offset, reader};

use super::{io_err, Committed, SessionFiles, TranscriptError};

impl SessionFiles {
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
                let mut file =
                    super::open_inside(&jsonl, &self.dir, std::fs::OpenOptions::new().append(true))
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
}
