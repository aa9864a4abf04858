import { Note } from '../store';

export function renderReport(notes: Note[]): string {
  return notes.map((note) => `#${note.id} ${note.title} [${note.tags.join(',')}]`).join('\n');
}
