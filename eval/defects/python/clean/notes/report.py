from notes.store import Note


def render_report(notes: list[Note]) -> str:
    return "\n".join(f"#{note.id} {note.title} [{', '.join(note.tags)}]" for note in notes)
