//! The transcript's packs, chunks and restores, on real files.

use super::*;
use baton_core::transcript::GZIP_MAGIC;
use std::io::Write;

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
    let assembled = baton_core::transcript::assemble_jsonl(&first.blob, &chunks, src.id).unwrap();
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
    // A character outside the BMP is two UTF-16 units, so two dashes, as in JavaScript.
    assert_eq!(
        project_dir_name(Path::new("/w/\u{1F600}/aaaaaaaaaa")),
        "-w----aaaaaaaaaa"
    );
}

/// Past 200 characters the CLI cuts the name and adds the path's hash. The expected names were
/// computed with the CLI's own function (`J$` and `Nle`, copied from the 2.1.332 bundle, run
/// in node); the last is the folder the real 2.1.332 CLI created, run against the stand-in in
/// that directory.
#[test]
fn long_project_dir_names_are_cut_and_hashed_like_the_cli() {
    let deep = format!("/work/workspaces/{}plan-1", "deep/".repeat(40));
    let name = project_dir_name(Path::new(&deep));
    assert_eq!(
        name,
        format!("-work-workspaces-{}dee-7pwu6p", "deep-".repeat(36))
    );
    assert_eq!(name.len(), 200 + "-7pwu6p".len());
    let wide = format!("/w/{}\u{e9}", "x".repeat(250));
    assert_eq!(
        project_dir_name(Path::new(&wide)),
        format!("-w-{}-3le2rm", "x".repeat(197))
    );
    let seen = format!("/tmp/h1cli/work/workspaces/{}plan-1", "deep/".repeat(40));
    assert_eq!(
        project_dir_name(Path::new(&seen)),
        format!(
            "-tmp-h1cli-work-workspaces-{}dee-n9tpdr",
            "deep-".repeat(34)
        )
    );
    let exactly = format!("/{}", "a".repeat(199));
    assert_eq!(
        project_dir_name(Path::new(&exactly)).len(),
        200,
        "200 is not cut"
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

/// The project folder is writable from inside the box: links planted there never make the
/// worker pack a file from outside it, in a whole pack or in a chunk.
#[test]
fn links_in_the_project_folder_are_never_followed() {
    let outside = tmp().join("worker-secret.txt");
    std::fs::write(&outside, "planted-secret\n").unwrap();
    let src = session("/work/ws/linked", b"{\"line\":1}\n");
    let folder = src.jsonl().with_extension("");
    std::fs::create_dir_all(folder.join("tool-results")).unwrap();
    std::fs::write(folder.join("tool-results/ok.txt"), "kept\n").unwrap();
    std::os::unix::fs::symlink(&outside, folder.join("tool-results/leak.txt")).unwrap();
    std::os::unix::fs::symlink(outside.parent().unwrap(), folder.join("dir-leak")).unwrap();
    let pack = src.pack().unwrap();
    let dst = SessionFiles::new(&tmp(), Path::new("/work/ws/linked"), src.id);
    dst.restore(&pack.blob, &[], &pack.committed.digest())
        .unwrap();
    let restored = dst.jsonl().with_extension("");
    assert_eq!(
        std::fs::read_to_string(restored.join("tool-results/ok.txt")).unwrap(),
        "kept\n"
    );
    assert!(!restored.join("tool-results/leak.txt").exists());
    assert!(!restored.join("dir-leak").exists());

    // A chunk: a link added since the commit is not sent either.
    std::os::unix::fs::symlink(&outside, folder.join("tool-results/later.txt")).unwrap();
    append(&src, b"{\"line\":2}\n");
    let chunk = src.pack_since(&pack.committed).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&chunk.blob[..]));
    let names: Vec<String> = match archive.entries() {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path().unwrap().display().to_string())
            .collect(),
        // Small chunks are not compressed.
        Err(_) => tar::Archive::new(&chunk.blob[..])
            .entries()
            .unwrap()
            .flatten()
            .map(|e| e.path().unwrap().display().to_string())
            .collect(),
    };
    assert!(!names.iter().any(|n| n.contains("later")), "{names:?}");

    // The transcript itself swapped for a link: refused, not read.
    std::fs::remove_file(src.jsonl()).unwrap();
    std::os::unix::fs::symlink(&outside, src.jsonl()).unwrap();
    assert!(src.pack().is_err());
    assert!(src.state().is_none());
    assert!(!src.rewind_to(&pack.committed));
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "planted-secret\n"
    );
}

/// The session's folder itself swapped for a link to a folder of the worker's: nothing in it is
/// packed, and a rewind does not delete there (it leaves the link for a restore to remove).
#[test]
fn a_linked_session_folder_is_neither_packed_nor_rewound_into() {
    let outside = tmp();
    std::fs::write(outside.join("key.txt"), "planted-secret\n").unwrap();
    let src = session("/work/ws/folder-link", b"{\"line\":1}\n");
    let committed = src.pack().unwrap().committed;
    let folder = src.jsonl().with_extension("");
    std::os::unix::fs::symlink(&outside, &folder).unwrap();
    let pack = src.pack().unwrap();
    let dst = SessionFiles::new(&tmp(), Path::new("/work/ws/folder-link"), src.id);
    dst.restore(&pack.blob, &[], &pack.committed.digest())
        .unwrap();
    assert!(!dst.jsonl().with_extension("").join("key.txt").exists());
    assert!(!src.rewind_to(&committed));
    assert!(
        outside.join("key.txt").exists(),
        "nothing deleted through the link"
    );
    src.restore(&pack.blob, &[], &pack.committed.digest())
        .unwrap();
    assert!(
        std::fs::symlink_metadata(&folder).is_err() || src.folder_is_real(),
        "the restore removed the link"
    );
    assert!(outside.join("key.txt").exists());
}

/// A folder file cut shorter while it is packed (a process left running in the box truncates
/// and rewrites it in a loop): every pack made meanwhile restores. An entry written shorter
/// than its header said misaligned the rest of the pack, whose next bytes (another file the
/// task chose) were then read back as entries.
#[test]
fn a_file_cut_shorter_while_packed_leaves_a_pack_that_restores() {
    let src = session("/work/ws/shrinking", b"{\"line\":1}\n");
    let folder = src.jsonl().with_extension("");
    std::fs::create_dir_all(&folder).unwrap();
    let big = folder.join("a-big.bin");
    std::fs::write(&big, vec![7u8; 256 * 1024]).unwrap();
    std::fs::write(folder.join("b-next.bin"), vec![1u8; 4096]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cutter = {
        let (stop, big) = (stop.clone(), big.clone());
        std::thread::spawn(move || {
            let f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.set_len(1000).unwrap();
                f.set_len(256 * 1024).unwrap();
            }
        })
    };
    let dst = SessionFiles::new(&tmp(), Path::new("/work/ws/shrinking"), src.id);
    let mut restored = 0;
    for _ in 0..300 {
        let Ok(pack) = src.pack() else { continue };
        let back = dst.restore(&pack.blob, &[], &pack.committed.digest());
        assert!(back.is_ok(), "a pack that does not restore: {back:?}");
        restored += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    cutter.join().unwrap();
    assert!(restored > 0, "some pack was made");
}
