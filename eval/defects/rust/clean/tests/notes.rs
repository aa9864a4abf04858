use notes::report::render_report;
use notes::store::NoteStore;

#[test]
fn by_tag_finds_the_notes_with_a_tag() {
    let mut store = NoteStore::new();
    store.add("Buy milk", &["home"]);
    store.add("Write report", &["work"]);
    let titles: Vec<&str> = store.by_tag("home").iter().map(|note| note.title.as_str()).collect();
    assert_eq!(titles, ["Buy milk"]);
}

#[test]
fn the_report_lists_a_note_with_its_tags() {
    let mut store = NoteStore::new();
    store.add("Buy milk", &["home", "errand"]);
    assert_eq!(render_report(&store.by_tag("home")), "#1 Buy milk [home, errand]");
}
