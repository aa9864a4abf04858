//! Which entries' tags are trusted, and what a dead letter keeps of a document.

use super::*;

#[test]
fn a_tag_is_trusted_only_on_a_handed_back_entry() {
    let tagged = b"baton-tag:5f0c8d6e-8f1e-4a57-9d7e-2b9c4d1e0a11\n{\"tasks\":[]}";
    assert_eq!(
        origin(tagged, true),
        Origin::Retake {
            tag: "5f0c8d6e-8f1e-4a57-9d7e-2b9c4d1e0a11",
            doc: b"{\"tasks\":[]}"
        }
    );
    assert_eq!(
        origin(tagged, false),
        Origin::ClientTagged {
            doc: b"{\"tasks\":[]}"
        }
    );
    assert_eq!(
        origin(b"baton-tag:not-a-uuid\n{}", false),
        Origin::ClientTagged { doc: b"{}" }
    );
    assert_eq!(origin(b"{\"tasks\":[]}", false), Origin::Fresh);
    assert_eq!(
        origin(b"{\"tasks\":[]}", true),
        Origin::Fresh,
        "handed back before it was tagged"
    );
}

#[test]
fn dead_letters_keep_valid_sized_documents_whole_and_cut_oversized_ones() {
    let small = b"{\"tasks\":[]}";
    assert_eq!(kept_document(small), "{\"tasks\":[]}");
    let big = vec![b'x'; baton_core::plan::MAX_DOCUMENT_BYTES * 3];
    let kept = kept_document(&big);
    assert!(kept.len() < KEPT_OVERSIZED_BYTES + 100, "{}", kept.len());
    assert!(kept.ends_with(&format!(
        "[... {} more bytes not kept]",
        big.len() - KEPT_OVERSIZED_BYTES
    )));
}
