"""The operator's harbor.yml as a round-trip document, and the few edits a release step makes.

The file is parsed once with ruamel.yaml's round-trip loader, so comments, key order,
blank lines and quoting survive. ruamel attaches the comment lines that sit *between*
two keys to the last value before them; a naive delete or append therefore drops or
misplaces them. The helpers here move those comment lines along, so that every comment
of the operator's file is still in the output:

- ``add_key`` inserts a key and moves the following comment lines after it;
- ``remove_key`` never throws text away: the removed entry is kept as a commented-out
  block in place, under a line that says why it went;
- ``set_value`` changes a value and says so in a trailing comment.

Every note we write starts with ``NOTE_PREFIX`` so an operator can grep for our edits.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import ScalarString
from ruamel.yaml.tokens import CommentToken

NOTE_PREFIX = "harbor-upgrade"


@dataclass
class Indentation:
    """How the operator indents: ruamel applies one setting to the whole file."""
    mapping: int = 2
    sequence: int = 4
    offset: int = 2


def detect_layout(text: str) -> Indentation:
    """Read the indentation of the first nested mapping and the first block list."""
    mapping = None
    offset = None
    lines = text.splitlines()
    prev_indent: int | None = None
    prev_opens_block = False
    for line in lines:
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped)
        if prev_opens_block and prev_indent is not None:
            if stripped.startswith("- ") or stripped == "-":
                if offset is None:
                    offset = max(indent - prev_indent, 0)
            elif indent > prev_indent and mapping is None:
                mapping = indent - prev_indent
        prev_indent = indent
        prev_opens_block = stripped.rstrip().endswith(":") and not stripped.startswith("- ")
        if mapping is not None and offset is not None:
            break
    mapping = mapping if mapping and mapping <= 8 else 2
    offset = offset if offset is not None and offset <= 8 else 2
    return Indentation(mapping=mapping, sequence=offset + 2, offset=offset)


def make_yaml(layout: Indentation | None = None) -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096          # never fold a long line the operator wrote on one line
    layout = layout or Indentation()
    y.indent(mapping=layout.mapping, sequence=layout.sequence, offset=layout.offset)
    return y


def dump(data: object, layout: Indentation | None = None) -> str:
    buf = io.StringIO()
    make_yaml(layout).dump(data, buf)
    return buf.getvalue()


# ---------------------------------------------------------------------------
# Where ruamel keeps the comment lines that follow a value.
#
# The token after a value holds everything after the value on its line: an optional
# end-of-line comment, the line break, then whole comment and blank lines up to the
# next key. ``first line`` = eol comment, ``rest`` = the lines that follow.

_SELF = object()   # "the collection itself": an empty [] or {} carries its comments after the bracket


def _slot(container: CommentedMap | CommentedSeq, key: object) -> tuple[list, int]:
    if key is _SELF:
        if not container.ca.comment:
            container.ca.comment = [None, None]
        return container.ca.comment, 0
    entry = container.ca.items.setdefault(key, [None, None, None, None])
    while len(entry) < 4:
        entry.append(None)
    return entry, (2 if isinstance(container, CommentedMap) else 0)


def _get(container, key) -> str:
    entry, i = _slot(container, key)
    return entry[i].value if entry[i] is not None else ""


def _put(container, key, text: str) -> None:
    entry, i = _slot(container, key)
    if not text:
        entry[i] = None
    elif entry[i] is not None:
        entry[i].value = text
    else:
        entry[i] = CommentToken(text, CommentMark(0), None)


def last_leaf(container: CommentedMap | CommentedSeq, key: object) -> tuple[object, object]:
    """The innermost last entry under container[key]: comments after the block hang there."""
    value = container[key]
    while isinstance(value, (CommentedMap, CommentedSeq)):
        if len(value) == 0:
            value.fa.set_flow_style()
            return value, _SELF
        container = value
        key = list(value.keys())[-1] if isinstance(value, CommentedMap) else len(value) - 1
        value = container[key]
    return container, key


def pop_following(container, key) -> str:
    """Detach the comment lines after the block of container[key] (not its eol comment)."""
    leaf_c, leaf_k = last_leaf(container, key)
    first, _, rest = _get(leaf_c, leaf_k).partition("\n")
    _put(leaf_c, leaf_k, first + "\n" if first else "")
    return rest


def append_following(container, key, lines: str) -> None:
    """Add whole comment lines after the block of container[key], after any already there."""
    if not lines:
        return
    leaf_c, leaf_k = last_leaf(container, key)
    text = _get(leaf_c, leaf_k) or "\n"
    if not text.endswith("\n"):
        text += "\n"
    _put(leaf_c, leaf_k, text + lines)


def _add_eol_note(mapping: CommentedMap, key: object, note: str) -> None:
    """Put a note at the end of the entry's line; a note of ours already there is replaced."""
    first, _, rest = _get(mapping, key).partition("\n")
    for ours in (f"  ({NOTE_PREFIX} ", f"# {NOTE_PREFIX} "):
        if ours in first:
            first = first[:first.index(ours)].rstrip()
    first = f"{first}  ({note})" if first.strip() else f" # {note}"
    _put(mapping, key, first + "\n" + rest)


def comment_block(text: str, indent: int) -> str:
    pad = " " * indent
    return "".join(f"{pad}# {line}".rstrip() + "\n" for line in text.splitlines())


def _is_scalar(value: object) -> bool:
    return not isinstance(value, (CommentedMap, CommentedSeq, dict, list))


# ---------------------------------------------------------------------------
# The edits a step makes.

def add_key(mapping: CommentedMap, key: str, value: object, *, after: str | None, note: str,
            indent: int) -> None:
    """Insert ``key`` after the key ``after`` (or first) with a note of ours.

    A single setting gets the note at the end of its line; a section gets it on a line
    of its own above it. Comment lines that followed ``after`` move below the new key,
    so they stay in front of the key they describe.
    """
    keys = list(mapping.keys())
    pos = keys.index(after) + 1 if after in keys else 0
    following = pop_following(mapping, keys[pos - 1]) if pos > 0 else ""
    mapping.insert(pos, key, value)
    text = note
    if _is_scalar(value):
        _add_eol_note(mapping, key, text)
    elif pos > 0:
        blank = "\n" if indent == 0 else ""
        append_following(mapping, keys[pos - 1], blank + comment_block(text, indent))
    else:
        mapping.yaml_set_comment_before_after_key(key, before=text, indent=indent)
    append_following(mapping, key, following)


def remove_key(mapping: CommentedMap, key: str, *, note: str, indent: int, layout: Indentation) -> str:
    """Take ``key`` out of the live settings but keep it, commented out, where it was.

    Returns the comment lines it could not place because the mapping is now empty: the
    caller puts them after the mapping (``{}``) in its parent."""
    keys = list(mapping.keys())
    pos = keys.index(key)
    following = pop_following(mapping, key)
    holder = CommentedMap()
    holder[key] = mapping[key]
    if key in mapping.ca.items:
        holder.ca.items[key] = list(mapping.ca.items[key])
    block = comment_block(note, indent) + comment_block(dump(holder, layout), indent)
    del mapping[key]
    mapping.ca.items.pop(key, None)
    if pos > 0:
        append_following(mapping, keys[pos - 1], block + following)
    elif len(mapping) > 0:
        first = next(iter(mapping.keys()))
        entry, _ = _slot(mapping, first)
        lines = (block + following).splitlines()
        entry[1] = [CommentToken(line.lstrip() + "\n", CommentMark(indent), None) for line in lines] \
            + list(entry[1] or [])
    else:
        return block + following
    return ""


def drop_key(mapping: CommentedMap, key: str) -> None:
    """Delete a key without a trace; the comment lines that followed it move up."""
    keys = list(mapping.keys())
    pos = keys.index(key)
    following = pop_following(mapping, key)
    del mapping[key]
    mapping.ca.items.pop(key, None)
    if pos > 0:
        append_following(mapping, keys[pos - 1], following)
    elif following and len(mapping) > 0:
        entry, _ = _slot(mapping, next(iter(mapping.keys())))
        entry[1] = [CommentToken(line.lstrip() + "\n", CommentMark(0), None)
                    for line in following.splitlines()] + list(entry[1] or [])


def rename_key(mapping: CommentedMap, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` at the same position, with the comments it had."""
    pos = list(mapping.keys()).index(old)
    value = mapping[old]
    comments = mapping.ca.items.pop(old, None)
    del mapping[old]
    mapping.insert(pos, new, value)
    if comments is not None:
        mapping.ca.items[new] = comments


def set_value(mapping: CommentedMap, key: str, value: object, *, note: str, indent: int,
              layout: Indentation) -> None:
    """Change a value; the note goes to the end of its line, after any comment already there.

    The comment lines that followed the old value follow the new one. An old list or
    mapping is kept below, commented out, with the comments it held.
    """
    old = mapping.get(key)
    following = pop_following(mapping, key) if key in mapping else ""
    kept = ""
    if isinstance(old, (CommentedMap, CommentedSeq)) and len(old) > 0:
        holder = CommentedMap()
        holder[key] = old
        kept = comment_block("it was:\n" + dump(holder, layout), indent)
        first, _, _ = _get(mapping, key).partition("\n")   # the key's own eol comment stays
        _put(mapping, key, first + "\n" if first else "")
    mapping[key] = value
    _add_eol_note(mapping, key, note)
    append_following(mapping, key, kept + following)


def key_line(mapping: object, key: object) -> int | None:
    """1-based line of a key as the operator wrote it, or None for keys we added."""
    try:
        if isinstance(mapping, CommentedMap):
            return mapping.lc.key(key)[0] + 1
        if isinstance(mapping, CommentedSeq):
            return mapping.lc.item(key)[0] + 1
    except (KeyError, TypeError, AttributeError, IndexError):
        return None
    return None


# Where a section we add goes: the order of Harbor's own harbor.yml (2.4.0's, with the
# sections of later releases where those put them).
TOP_LEVEL_ORDER = (
    "hostname", "http", "https", "ip_family", "internal_tls", "external_url", "harbor_admin_password",
    "database", "data_volume", "storage_service", "clair", "trivy", "jobservice", "notification",
    "chart", "log", "_version", "external_database", "redis", "external_redis", "uaa", "proxy", "metric",
    "trace", "upload_purging", "cache", "core",
)


class Document:
    """The harbor.yml being migrated: the round-trip data, its layout, and what we changed.

    Release steps call ``add``, ``remove`` and ``change`` with the path of the section
    (a tuple of keys, () for the top level); each call leaves a note in the file and a
    line in ``changes``.
    """

    def __init__(self, data: CommentedMap, layout: Indentation):
        self.data = data
        self.layout = layout
        self.step = ""
        self.changes: list[str] = []
        self.warnings: list[str] = []
        self._originals: dict[tuple, object] = {}
        self._added: set[tuple] = set()
        self.gone: frozenset[tuple] = frozenset()   # key paths releases so far removed: never added back

    def section(self, *path: str) -> CommentedMap | None:
        """The mapping at path, or None when it is absent or not a mapping."""
        node: object = self.data
        for key in path:
            if not isinstance(node, CommentedMap) or key not in node:
                return None
            node = node[key]
        return node if isinstance(node, CommentedMap) else None

    def _mapping(self, path: tuple) -> CommentedMap:
        """The mapping an edit works on. Steps edit only sections they checked for (``has``,
        ``section``) or just added, so it is there; the edits below used to fail with an
        AttributeError on None otherwise, and now say which section a step got wrong."""
        mapping = self.section(*path)
        if mapping is None:
            raise LookupError(f"{self.step}: no mapping at {'.'.join(path) or '(top level)'} to edit")
        return mapping

    def has(self, *path: str) -> bool:
        parent = self.section(*path[:-1])
        return parent is not None and path[-1] in parent

    def _indent(self, path: tuple) -> int:
        return len(path) * self.layout.mapping

    def _note(self, note: str) -> str:
        return f"{NOTE_PREFIX} {self.step}: {note}"

    def _log(self, path: tuple, key: str, what: str) -> None:
        self.changes.append(f"{self.step}: {'.'.join((*path, key))} {what}")

    def add(self, path: tuple, key: str, value: object, note: str, *, after: str | None = None) -> None:
        """Add a key that is absent (top-level sections go where Harbor's file has them)."""
        mapping = self._mapping(path)
        if after is None:
            after = _anchor(mapping, key) if not path else (list(mapping.keys())[-1] if mapping else None)
        add_key(mapping, key, _to_node(value), after=after, note=self._note(note),
                indent=self._indent(path))
        self._added.add((*path, key))
        self._log(path, key, f"added ({note})")

    def added(self, path: tuple) -> bool:
        """Whether an earlier edit of this run added the key at path."""
        return tuple(path) in self._added

    def remove(self, path: tuple, key: str, note: str) -> None:
        """Retire a key: it stays in the file, commented out, under a note. A key an earlier
        step of this run added is simply taken out again (the operator never wrote it)."""
        if (*path, key) in self._added:
            drop_key(self._mapping(path), key)
            self._added.discard((*path, key))
            self.changes[:] = [c for c in self.changes if not c.split(": ", 1)[-1].startswith(
                f"{'.'.join((*path, key))} added")]
            return
        left = remove_key(self._mapping(path), key, note=self._note(note), indent=self._indent(path),
                          layout=self.layout)
        if left:
            append_following(self._mapping(path[:-1]), path[-1], left)
        self._log(path, key, f"commented out ({note})")

    def change(self, path: tuple, key: str, value: object, note: str) -> None:
        """Set a value; the note says what the operator's file had (the first value we saw)."""
        mapping = self._mapping(path)
        original = self._originals.setdefault((*path, key), mapping.get(key))
        shown = "empty" if original is None else repr(str(original)) if isinstance(original, str) else original
        old = mapping.get(key)
        if isinstance(old, ScalarString) and isinstance(value, str):
            value = type(old)(value)      # the operator quoted it: the new text is quoted the same way
        set_value(mapping, key, _to_node(value), note=self._note(f"{note}; was {shown}"),
                  indent=self._indent(path), layout=self.layout)
        self._log(path, key, f"changed ({note})")


    def rename(self, path: tuple, old: str, new: str, note: str) -> None:
        """Give a key its new name in place: value, position and comments stay."""
        rename_key(self._mapping(path), old, new)
        if (*path, old) in self._added:
            self._added.discard((*path, old))
            self._added.add((*path, new))
        _add_eol_note(self._mapping(path), new, self._note(f"{note}; was {old}"))
        self._log(path, new, f"renamed from {old} ({note})")

    def keep(self, path: tuple, key: str, note: str) -> None:
        """A value we keep where Harbor's own migrate would lose it: a note says so."""
        _add_eol_note(self._mapping(path), key, self._note(note))
        self._log(path, key, f"kept ({note})")
        warning = f"{'.'.join((*path, key))}: {note}"
        if warning not in self.warnings:
            self.warnings.append(warning)

    def warn(self, text: str) -> None:
        """Something the operator should know: an assumption made or a value kept against Harbor."""
        line = f"{self.step}: {text}" if self.step else text
        if line not in self.warnings:
            self.warnings.append(line)

    def append_item(self, path: tuple, key: str, value: object, note: str) -> None:
        """Add ``value`` at the end of the list at path.key, with a note on its line."""
        parent = self._mapping(path)
        items = parent[key]
        following = pop_following(parent, key)
        items.append(value)
        _add_eol_note(items, len(items) - 1, self._note(note))
        append_following(parent, key, following)
        self._log(path, key, f"gained {value!r} ({note})")

    def remove_items(self, path: tuple, key: str, value: object, note: str) -> None:
        """Drop every ``value`` from the list at path.key; a comment line records it."""
        parent = self._mapping(path)
        items = parent[key]
        kept_lines = ""
        for i in reversed([i for i, v in enumerate(items) if v == value]):
            lines = pop_following(items, i)
            eol = _get(items, i).strip()
            if eol:  # the operator's comment on the dropped entry stays, on the note's line
                note = f"{note}; it read: - {value}  {eol}"
            if i > 0:
                append_following(items, i - 1, lines)
            else:
                kept_lines = lines + kept_lines
            del items[i]
        following = pop_following(parent, key)
        note_line = comment_block(self._note(note), self._indent(path) + self.layout.offset)
        append_following(parent, key, note_line + kept_lines + following)
        self._log(path, key, f"lost {value!r} ({note})")


def _anchor(mapping: CommentedMap, key: str) -> str | None:
    """The key after which a new top-level section goes."""
    if key not in TOP_LEVEL_ORDER:
        return list(mapping.keys())[-1] if mapping else None
    before = TOP_LEVEL_ORDER[:TOP_LEVEL_ORDER.index(key)]
    present = [k for k in mapping.keys() if k in before]
    if present:
        return max(present, key=lambda k: (TOP_LEVEL_ORDER.index(k), list(mapping.keys()).index(k)))
    return None


def _to_node(value: object) -> object:
    """Plain dicts and lists become round-trip nodes, so comments can hang on them."""
    if isinstance(value, dict) and not isinstance(value, CommentedMap):
        return CommentedMap((k, _to_node(v)) for k, v in value.items())
    if isinstance(value, list) and not isinstance(value, CommentedSeq):
        return CommentedSeq(_to_node(v) for v in value)
    return value
