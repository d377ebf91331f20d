"""Text from devices and lab files, made safe to print: what a board or phone says (or a device or model
is named) reaches the user's terminal, a Markdown table, an XML report."""

from __future__ import annotations

import re
from pathlib import Path

# ESC-introduced sequences (CSI, OSC and the rest) first, then any other C0 or C1 control character
# except tab and newline: a device must not clear the screen, retitle the window or move the cursor.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -~])")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` without terminal escape sequences and control characters (tabs and newlines kept)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def one_line(text: str) -> str:
    """`text` printable, its line breaks turned into spaces: a name in a list item or a console line."""
    return " ".join(printable(text).splitlines())


# What CommonMark and GitHub read as markup inside a line: escapes, code, emphasis, raw HTML and entities,
# math, strikethrough, a table's pipe; `_` only where it can open or close emphasis (not inside a word,
# as in mobilenet_v3_small); `]` only where a link would follow; at the start, what begins a block (a
# heading, a list, a link reference definition).
_MD_ALWAYS = re.compile(r"([\\`*<>$&~|])")
_MD_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_MD_LINK = re.compile(r"\](?=[(\[])")
_MD_BLOCK = re.compile(r"^(\s*)([#+=[-]|\d+(?=[.)]))")


def md_cell(value: object) -> str:
    """A name or a device's words in a Markdown table cell, as plain text: no markup in it takes effect, and
    neither a pipe nor a line break in it can end the cell or the row."""
    text = _MD_ALWAYS.sub(r"\\\1", one_line(str(value)))
    return _MD_LINK.sub(r"\\]", _MD_UNDERSCORE.sub(r"\\_", text))


def md_text(value: object) -> str:
    """`md_cell`, for the start of a line's text too (a list item's): what would begin a heading or a
    nested list there is escaped."""
    return _MD_BLOCK.sub(lambda m: f"{m[1]}{m[2]}\\" if m[2][0].isdigit() else f"{m[1]}\\{m[2]}", md_cell(value))


_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """`text` as XML 1.0 can hold it (JUnit readers reject a document with a control character in it):
    printable (tab and newline, which XML allows, kept), without surrogates and the two non-characters."""
    return _NOT_XML.sub("", printable(text))


def save(path: Path, text: str) -> None:
    """A report file as UTF-8, printable: a device or model may be named with terminal escapes or control
    characters, which have no place in a page, a table or a CSV someone will `cat`."""
    path.write_text(printable(text), encoding="utf-8")
