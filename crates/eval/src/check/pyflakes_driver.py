"""Runs pyflakes on the files named on the command line and prints one JSON object a line.

baton's checker classifies pyflakes' findings by their message class (`UndefinedName`,
`UnusedImport`, ...) rather than by their English text, so it runs pyflakes through its API
with this reporter. Syntax errors and unreadable files get the kinds `SyntaxError` and
`UnexpectedError`. Exit status: 0, whatever was found.
"""
import json
import sys

from pyflakes import api


def emit(kind, filename, line, message):
    print(json.dumps({"kind": kind, "file": filename, "line": line or 0, "message": message}))


class JsonReporter:
    def unexpectedError(self, filename, msg):
        emit("UnexpectedError", filename, 0, str(msg))

    def syntaxError(self, filename, msg, lineno, offset, text):
        emit("SyntaxError", filename, lineno, str(msg))

    def flake(self, message):
        text = message.message % message.message_args
        emit(type(message).__name__, message.filename, message.lineno, text)


reporter = JsonReporter()
for path in sys.argv[1:]:
    api.checkPath(path, reporter)
