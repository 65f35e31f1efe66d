"""Project errors: bad input names the file, the field path and what was expected."""

from __future__ import annotations


class InputError(Exception):
    """Bad scenario, save or command input. The CLI prints str(err) on one line, exit 2."""

    def __init__(self, source: str, path: str, expected: str) -> None:
        self.source = source
        self.path = path
        self.expected = expected
        super().__init__(f"{source}: {path}: {expected}")
