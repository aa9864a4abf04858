export interface Note {
  id: number;
  title: string;
  tags: string[];
}

export class NoteStore {
  private notes: Note[] = [];

  add(title: string, tags: string[]): Note {
    const note: Note = { id: this.notes.length + 1, title, tags };
    this.notes.push(note);
    return note;
  }

  byTag(tag: string): Note[] {
    return this.notes.filter((note) => note.tags.includes(tag));
  }
}
