from note.report import render_report
from notes.store import NoteStore


def main() -> None:
    store = NoteStore()
    store.add("Buy milk", ["home", "errand"])
    store.add("Write report", ["work"])
    print(render_report(store.by_tag("home")))


if __name__ == "__main__":
    main()
