pub struct Note {
    pub id: usize,
    pub title: String,
    pub tags: Vec<String>,
}

#[derive(Default)]
pub struct NoteStore {
    notes: Vec<Note>,
}

impl NoteStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, title: &str, tags: &[&str]) -> &Note {
        let id = self.notes.len() + 1;
        let tags = tags.iter().map(|tag| tag.to_string()).collect();
        self.notes.push(Note { id, title: title.to_string(), tags });
        &self.notes[id - 1]
    }

    pub fn by_tag(&self, tag: &str) -> Vec<&Note> {
        self.notes.iter().filter(|note| note.tags.iter().any(|t| t == tag)).collect()
    }
}
