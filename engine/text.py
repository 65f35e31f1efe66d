"""Terminal-safe text: user-supplied strings never carry control characters to a terminal.

A scenario name, a briefing or an id shared in a file could hold ANSI escape sequences
(clear the screen, move the cursor, retitle the window, ...) that a terminal would obey.
`printable` removes every control character (C0, DEL, C1, and the Unicode format
characters that reorder or hide text) so what is shown is what is written. The schema
applies it at the edge (engine/spec.py `Text`), the CLI to whatever it prints. This module
imports nothing from the engine, so the console can use it too.
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls (but tab and newline, which `printable` may keep), DEL and C1 controls.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS_AND_LAYOUT = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# ESC [ ... final byte: a whole CSI sequence goes, not only its ESC (else "[2J" is left).
_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?|\x9b[0-?]*[ -/]*[@-~]?")
# ESC ] ... BEL or ESC \ : an OSC sequence (window title, hyperlinks).
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")


def _no_format_chars(text: str) -> str:
    # Bidi overrides and other invisible format characters (category Cf) can make a
    # file show one thing and mean another; line/paragraph separators break a line.
    if text.isascii():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Zl", "Zp"))


def printable(text: str, keep_newlines: bool = False) -> str:
    """`text` without escape sequences and control characters.

    With keep_newlines, newlines and tabs stay (multi-line briefings); otherwise they
    become spaces so the result is one line.
    """
    text = _OSC.sub("", _CSI.sub("", text))
    if keep_newlines:
        text = text.replace("\r\n", "\n")
        return _no_format_chars(_CONTROLS.sub("", text))
    text = re.sub(r"[\t\n\r]", " ", text)
    return _no_format_chars(_CONTROLS_AND_LAYOUT.sub("", text))


def one_line(text: str) -> str:
    """Printable, whitespace collapsed: for a message that must stay on one line."""
    return " ".join(printable(text).split())
