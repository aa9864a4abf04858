import unittest

from notes.report import render_report
from notes.store import NoteStore


class NotesTest(unittest.TestCase):
    def test_by_tag_finds_the_notes_with_a_tag(self) -> None:
        store = NoteStore()
        store.add("Buy milk", ["home"])
        store.add("Write report", ["work"])
        self.assertEqual([note.title for note in store.by_tag("home")], ["Buy milk"])

    def test_the_report_lists_a_note_with_its_tags(self) -> None:
        store = NoteStore()
        store.add("Buy milk", ["home", "errand"])
        self.assertEqual(render_report(store.by_tag("home")), "#1 Buy milk [home, errand]")


if __name__ == "__main__":
    unittest.main()
