use notes::report::render_report;
use notes::store::NoteStore;

fn main() {
    let mut store = NoteStore::new();
    store.add("Buy milk", &["home", "errand"]);
    store.add("Write report");
    println!("{}", render_report(&store.by_tag("home")));
}
