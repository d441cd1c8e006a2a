"""Text from hostile sources made safe to show on a terminal.

Names read from registry storage (a repository folder, a tag folder, an S3 key) can hold
any character: an escape sequence would drive the operator's terminal, a carriage return
would overwrite a line, a bidirectional override would reorder it, and a byte that is not
UTF-8 (kept as a lone surrogate) cannot even be printed. ``printable`` is the one place
that makes such text safe: every character that is not printable becomes a visible escape.
"""
from __future__ import annotations


def _escape(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:   # a byte of a file name that is not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """text with every character that is not printable (C0/C1 controls, DEL, format and
    bidirectional marks, line and paragraph separators, lone surrogates, unassigned code
    points) written as a ``\\xNN``/``\\uNNNN``/``\\UNNNNNNNN`` escape.

    A backslash is left as it is, so the function is idempotent: text that went through it
    once (a name stored in a report) is shown unchanged when it passes again."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)
