from dataclasses import dataclass, field


@dataclass
class Note:
    id: int
    title: str
    tags: list[str] = field(default_factory=list)


class NoteStore:
    def __init__(self) -> None:
        self.notes: list[Note] = []

    def add(self, title: str, tags: list[str]) -> Note:
        note = Note(len(self.notes) + 1, title, tags)
        self.notes.append(note)
        return note

    def by_tag(self, tag: str) -> list[Note]:
        return [note for note in self.notes if tag in note.tags]
