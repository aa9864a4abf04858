"""A package named like the checker, as a plan could write one: with the project root first
on Python's path, `python -m mypy` would run this and find nothing."""
