"""The one bounded way to read a YAML file the operator (or anyone who can write it) gave us.

harbor.yml is input from outside: every command that reads it (migrate, plan, run,
artifacts, backup) goes through here, and so does the generated docker-compose.yml.

- At most ``limit`` bytes are read, whatever st_size says; only a regular file is read
  (a FIFO, a device such as /dev/zero, a socket or a folder is refused). The file is
  opened non-blocking, and fstat decides on the open descriptor, so a FIFO never hangs.
- The text must be UTF-8 (a BOM is allowed); UTF-16/32, NUL bytes and invalid bytes
  are named with the file and line.
- Before any YAML object is built, one streaming pass over the parser's events bounds
  the nesting depth, the alias uses and the size the aliases expand to ("billion laughs"
  is refused in microseconds instead of hanging every later walk of the data), and
  refuses integers with more digits than Python converts (a 5,000-digit ``_version``).
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, MappingStartEvent, ScalarEvent

from ..errors import HarborUpgradeError, InvalidInput

# A real harbor.yml has depth 4-5, a few hundred nodes and no aliases.
MAX_YAML_DEPTH = 64
MAX_ALIASES = 1000
MAX_NODES = 100_000           # nodes after alias expansion; a 128 KB file without aliases stays below
MAX_INT_DIGITS = 4000         # Python refuses int() of more than 4,300 digits
_PLAIN_INT = re.compile(r"[-+]?[0-9][0-9_]*")

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _refuse(message: str, hint: str | None = None) -> InvalidInput:
    return InvalidInput(message, reference="harbor-yml-invalid", hint=hint)


def read_bytes(path: str | os.PathLike, limit: int, *, hint: str | None = None) -> bytes:
    """The file's bytes: a regular file of at most ``limit`` bytes, however it presents itself."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file", hint=hint, reference="harbor-yml-missing") from None
    except NotADirectoryError:
        raise InvalidInput(f"{path}: no such file (a part of the path is not a folder)", hint=hint,
                           reference="harbor-yml-missing") from None
    except IsADirectoryError:
        raise _refuse(f"{path}: is a folder, not a harbor.yml file", hint) from None
    except PermissionError:
        raise _refuse(f"{path}: permission denied", "run as a user who can read the file") from None
    except OSError as err:
        raise _refuse(f"{path}: cannot open: {err.strerror or err}", hint) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise _refuse(f"{path}: is {kind}, not a regular file; nothing was read", hint)
        if st.st_size > limit:
            raise _refuse(_too_large(path, st.st_size, limit), hint or "check that the path names the right file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:     # it grew, or st_size lied
            raise _refuse(_too_large(path, size, limit, at_least=True), hint)
        return b"".join(chunks)
    except HarborUpgradeError:
        raise
    except OSError as err:
        raise _refuse(f"{path}: cannot read: {err.strerror or err}", hint) from None
    finally:
        os.close(fd)


def _too_large(path: Path, size: int, limit: int, at_least: bool = False) -> str:
    amount = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size:,} bytes"
    return (f"{path}: {'more than ' if at_least else ''}{amount} is far too large for a harbor.yml (a real one "
            f"is about 10 KB; the limit is {limit // 1024} KB)")


def decode_text(path: Path, raw: bytes) -> tuple[str, bool]:
    """(text without a BOM, whether it had one); anything but UTF-8 text is named with its line."""
    for bom, name in ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"),
                      (b"\xfe\xff", "UTF-16"), (b"\xff\xfe", "UTF-16")):
        if raw.startswith(bom):
            raise _refuse(f"{path}, line 1: {name} text (byte order mark {bom.hex(' ')}), not UTF-8",
                          "convert the file to UTF-8, e.g. with iconv -f UTF-16 -t UTF-8")
    if b"\x00" in raw:
        at = raw.index(b"\x00")
        line = raw[:at].count(b"\n") + 1
        if len(raw) >= 4 and (raw[1::2].count(0) > len(raw) // 4 or raw[0::2].count(0) > len(raw) // 4):
            raise _refuse(f"{path}, line {line}: looks like UTF-16 text without a byte order mark, not UTF-8",
                          "convert the file to UTF-8, e.g. with iconv -f UTF-16LE -t UTF-8")
        raise _refuse(f"{path}, line {line}: binary data (a NUL byte), not a YAML text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise _refuse(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[err.start]:02x})",
                      "convert the file to UTF-8, e.g. with iconv") from None
    had_bom = text.startswith("\ufeff")
    return (text[1:] if had_bom else text), had_bom


def check_structure(path: Path, text: str) -> None:
    """Refuse, before anything is built, what would make building or walking the data explode.

    Syntax errors are left to the loader, which names them with their line."""
    depth, aliases, nodes = 0, 0, 0
    sizes: dict[str, int] = {}
    # per open collection: (anchor, nodes before it, is a mapping, next scalar is a key, last key)
    stack: list[list] = []
    try:
        for event in YAML(typ="safe", pure=True).parse(text):
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            key = _key_of(stack)
            if isinstance(event, CollectionStartEvent):
                depth += 1
                nodes += 1
                if depth > MAX_YAML_DEPTH:
                    raise _refuse(f"{path}, line {line}: {_where(stack)}nested more than {MAX_YAML_DEPTH} levels deep "
                                  "(a harbor.yml has 4 or 5)")
                _advance(stack)
                stack.append([event.anchor, nodes - 1, isinstance(event, MappingStartEvent), True, None])
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
                anchor, before = stack.pop()[:2]
                if anchor is not None:
                    sizes[anchor] = nodes - before
            elif isinstance(event, ScalarEvent):
                nodes += 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
                value = event.value
                if (event.style is None and event.tag is None and len(value) > MAX_INT_DIGITS
                        and _PLAIN_INT.fullmatch(value)):
                    raise _refuse(f"{path}, line {line}: {_where(stack)}a number of {len(value):,} digits; "
                                  f"numbers here have at most a few")
                if stack and stack[-1][2] and stack[-1][3]:
                    stack[-1][4] = value
                _advance(stack)
            elif isinstance(event, AliasEvent):
                aliases += 1
                nodes += sizes.get(event.anchor, 1)
                if aliases > MAX_ALIASES:
                    raise _refuse(f"{path}, line {line}: more than {MAX_ALIASES} alias uses (*name); a harbor.yml "
                                  "needs none")
                _advance(stack)
            if nodes > MAX_NODES:
                raise _refuse(f"{path}, line {line}: {_where(stack, key)}the aliases expand to more than "
                              f"{MAX_NODES:,} values (a harbor.yml has a few hundred): refused, as a "
                              "\"billion laughs\" file")
    except YAMLError:
        return


def _advance(stack: list[list]) -> None:
    """A node ended inside the innermost collection: in a mapping, keys and values alternate."""
    if stack and stack[-1][2]:
        stack[-1][3] = not stack[-1][3]


def _key_of(stack: list[list]) -> str | None:
    return stack[-1][4] if stack and stack[-1][2] else None


def _where(stack: list[list], key: str | None = None) -> str:
    keys = [str(frame[4]) for frame in stack if frame[2] and frame[4] is not None]
    if key is not None and (not keys or keys[-1] != key):
        keys.append(str(key))
    return f"{'.'.join(keys)}: " if keys else ""


def read_text(path: str | os.PathLike, limit: int, *, hint: str | None = None) -> tuple[bytes, str, bool]:
    """(raw bytes, text, had a BOM) of a bounded, UTF-8, structurally sane YAML file."""
    raw = read_bytes(path, limit, hint=hint)
    text, bom = decode_text(Path(path), raw)
    check_structure(Path(path), text)
    return raw, text, bom


def load_plain(path: str | os.PathLike, limit: int) -> object:
    """Plain data (dicts, lists, scalars) of a YAML file read the bounded way; HarborUpgradeError
    (InvalidInput) for anything that is not one."""
    _, text, _ = read_text(path, limit)
    try:
        return YAML(typ="safe", pure=True).load(text)
    except (YAMLError, ValueError, TypeError, RecursionError) as err:
        raise _refuse(f"{path}: not valid YAML: {type(err).__name__}: {err}") from None
