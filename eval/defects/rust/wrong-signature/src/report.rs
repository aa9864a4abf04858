use crate::store::Note;

pub fn render_report(notes: &[&Note]) -> String {
    let lines: Vec<String> = notes
        .iter()
        .map(|note| format!("#{} {} [{}]", note.id, note.title, note.tags.join(", ")))
        .collect();
    lines.join("\n")
}
