from notes.report import render_summary
from notes.store import NoteStore


def main() -> None:
    store = NoteStore()
    store.add("Buy milk", ["home", "errand"])
    store.add("Write report", ["work"])
    print(render_summary(store.by_tag("home")))


if __name__ == "__main__":
    main()
