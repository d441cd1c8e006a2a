"""Read a harbor.yml once, walk the release steps to the target, validate, write safely.

The edges live here: reading and checking the input file, the atomic write with its
backup, the diff shown to the operator (secrets masked). The steps in between are
pure edits of one round-trip document.
"""
from __future__ import annotations

import difflib
import errno
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .. import secrets, versions
from ..errors import HarborYmlInvalid, InvalidInput, UnsupportedVersion, ValidationFailed
from ..private import NoTempFile, replace_atomically, write_temp_beside
from ..versions import path_between, release_line
from . import reader
from .document import Document, Indentation, detect_layout, dump, key_line, make_yaml
from .model import assumptions, validate
from .steps import CONFIG_STEPS, RELEASES

# A real harbor.yml is about 10 KB. The round-trip parser and emitter need some 15-20 s
# per MB on this kind of machine, so a file more than 12 times larger than any real
# configuration is refused up front instead of keeping the operator waiting (Harbor's
# own migrate spends about 50 s per step on 5 MB). See bench/bench_config.py.
MAX_BYTES = 128 * 1024


@dataclass
class Source:
    path: Path
    raw: bytes
    text: str
    bom: bool


@dataclass
class MigrationResult:
    """What a migration did (or, from plan_migration, would do)."""
    input_path: Path
    from_version: str               # _version as the file says it (e.g. '2.1.1')
    to_version: str                 # the target release
    steps: list[str]                # release steps run, in order ([] when already there)
    changed: bool                   # the output text differs from the input text
    output_path: Path | None = None  # where the result was (or would be) written
    backup_path: Path | None = None  # harbor.yml.<old-version>.bak, when the input was replaced
    diff_text: str = ""             # unified diff input -> output, secrets masked
    changes: list[str] = field(default_factory=list)  # one line per edit, '<step>: <key> ...'
    warnings: list[str] = field(default_factory=list)  # assumptions made, values kept against Harbor
    output_text: str = ""           # the migrated file (secrets NOT masked: it is the file)
    written: bool = False


# ---------------------------------------------------------------------------
# Reading.

def read_source(path: str | os.PathLike, hint: str = "pass the path of harbor.yml with -i") -> Source:
    """The file, read the one bounded way (config/reader.py): regular file, size, UTF-8, structure."""
    path = Path(path)
    raw, text, bom = reader.read_text(path, MAX_BYTES, hint=hint)
    return Source(path, raw, text, bom)


def parse(source: Source) -> tuple[CommentedMap, Indentation]:
    """The round-trip document and its layout; every way of not being a mapping is refused."""
    layout = detect_layout(source.text)
    try:
        data = make_yaml(layout).load(source.text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}" if mark is not None else ""
        what = " ".join(str(x) for x in (err.context, err.problem) if x)
        raise HarborYmlInvalid(f"{source.path}{where}: not valid YAML: {what}") from None
    except (YAMLError, ValueError, TypeError, RecursionError) as err:
        raise HarborYmlInvalid(f"{source.path}: not valid YAML: {type(err).__name__}: {err}") from None
    if data is None:
        has_comments = any(line.strip() for line in source.text.splitlines())
        raise HarborYmlInvalid(f"{source.path}: " + ("holds only comments, no settings" if has_comments
                                                 else "the file is empty"),
                           hint="pass the harbor.yml of the installation with -i")
    if not isinstance(data, CommentedMap):
        kind = "a list" if isinstance(data, (list, CommentedSeq)) else f"a single value ({type(data).__name__})"
        raise HarborYmlInvalid(f"{source.path}, line 1: is {kind}, not a mapping of settings like harbor.yml")
    return data, layout


def input_version(data: CommentedMap, path: Path) -> tuple[str, str]:
    """(_version as written, the release line it belongs to)."""
    if "_version" not in data:
        raise InvalidInput(f"{path}: no _version key, so the release of this file is unknown",
                           hint="add `_version: X.Y.Z` with the Harbor release this file belongs to "
                                "(Harbor 2.1.x files say 2.0.0)")
    line = key_line(data, "_version")
    where = f"{path}, line {line}: _version: " if line else f"{path}: _version: "
    written = data["_version"]
    return str(written), release_line(written, where=where, releases=RELEASES)


def check_target(target: str) -> str:
    if target not in RELEASES:
        raise UnsupportedVersion(f"target {target!r} is not a Harbor release this tool migrates to",
                                 hint="use one of " + ", ".join(RELEASES[1:]))
    return target


def register_secrets(node: object) -> None:
    """Every value under a secret-looking key (passwords, tokens, keys) is masked from now on."""
    if isinstance(node, dict):
        for key, value in node.items():
            if secrets.is_secret_key(key) and not isinstance(value, (dict, list)) and value is not None:
                secrets.register(value)
            register_secrets(value)
    elif isinstance(node, list):
        for item in node:
            register_secrets(item)


_SECRET_LINE = re.compile(r"^(?P<pre>[-+ ]?\s*(?:#\s*)*(?:-\s+)?)(?P<key>[A-Za-z0-9_-]+)(?P<sep>:[ \t]+)(?P<val>\S.*)$")


def mask_yaml_text(text: str) -> str:
    """Hide the value of every secret-looking key, registered or not, then every known secret."""
    def line(m: re.Match) -> str:
        if secrets.is_secret_key(m["key"]):
            return f"{m['pre']}{m['key']}{m['sep']}{secrets.MASK}"
        return m.group(0)
    masked = "\n".join(_SECRET_LINE.sub(line, part) for part in text.split("\n"))
    return secrets.mask_all(masked)


# ---------------------------------------------------------------------------
# Planning: everything but the write.

def _plan(input_path: str | os.PathLike, target: str | None) -> tuple[MigrationResult, Source]:
    # default: the newest release of the whole upgrade (config and database steps);
    # -t may name any later release the config steps know
    target = check_target(target or versions.TARGET)
    source = read_source(input_path)
    data, layout = parse(source)
    register_secrets(data)
    written, line = input_version(data, source.path)
    try:
        steps = path_between(line, target, RELEASES) if line != target else []
    except UnsupportedVersion as err:
        raise UnsupportedVersion(f"{source.path}: _version {written}: {err.message}", hint=err.hint) from None
    doc = Document(data, layout)
    for version in steps:
        doc.step = version
        CONFIG_STEPS[version](doc)
    if steps:
        doc.step = target
        doc.change((), "_version", target, "the release this file is for")
        output = dump(doc.data, layout)
        if "\r\n" in source.text:       # a file edited on Windows keeps its line ends
            output = output.replace("\r\n", "\n").replace("\n", "\r\n")
        output = ("\ufeff" if source.bom else "") + output
    else:
        output = source.raw.decode("utf-8")
    problems = validate(doc.data, target)
    doc.step = ""
    doc.warnings.extend(assumptions(doc.data, target))
    if problems:
        lines = "\n".join(f"  {p.render()}" for p in problems)
        raise ValidationFailed(
            f"{source.path}: the {target} result is not a valid harbor.yml "
            f"({len(problems)} problem{'s' if len(problems) > 1 else ''}); nothing was written:\n{lines}",
            hint=f"fix these in {source.path} and run the command again")
    result = MigrationResult(
        input_path=source.path, from_version=written, to_version=target, steps=steps,
        changed=output != source.raw.decode("utf-8"), changes=doc.changes, warnings=doc.warnings,
        output_text=output)
    return result, source


def _diff(source: Source, result: MigrationResult, output_path: Path) -> str:
    before = source.raw.decode("utf-8").splitlines(keepends=True)
    after = result.output_text.splitlines(keepends=True)
    diff = "".join(difflib.unified_diff(before, after, fromfile=str(source.path), tofile=str(output_path)))
    return mask_yaml_text(diff)


def plan_migration(input_path: str | os.PathLike, target: str | None = None,
                   output_path: str | os.PathLike | None = None) -> MigrationResult:
    """What migrate_file would do; writes nothing. Raises HarborUpgradeError on bad input.
    ``output_path`` only names the new side of the diff."""
    result, source = _plan(input_path, target)
    result.diff_text = _diff(source, result, Path(output_path) if output_path else source.path)
    return result


# ---------------------------------------------------------------------------
# Writing.

def migrate_file(input_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
                 target: str | None = None) -> MigrationResult:
    """Migrate a harbor.yml to ``target`` and write it.

    Without ``output_path`` the input is replaced atomically and the original kept as
    ``<input>.<old-version>.bak`` beside it (an existing backup is never overwritten).
    With ``output_path`` the input is left untouched, and an input already at the target
    is copied unchanged. Nothing is written when reading, migrating or validating fails.
    """
    result, source = _plan(input_path, target)
    in_place = output_path is None or _same_file(source.path, Path(output_path))
    # in place through a symlink (/etc/harbor/harbor.yml -> ...): replace the file it points to
    # (output_path None means in place; saying so again lets mypy see output_path is set)
    out = Path(os.path.realpath(source.path)) if in_place or output_path is None else Path(output_path)
    result.output_path = out
    result.diff_text = _diff(source, result, out)
    if in_place:
        if result.changed:
            result.backup_path = keep_backup(source, result.from_version)
            write_atomically(out, result.output_text.encode("utf-8"), _mode(source.path))
            result.written = True
    else:
        _check_output(out)
        write_atomically(out, result.output_text.encode("utf-8"), _mode(source.path))
        result.written = True
    return result


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _mode(path: Path) -> int:
    # the file holds passwords: the result keeps the original's permissions
    return path.stat().st_mode & 0o7777


def _check_output(out: Path) -> None:
    if out.is_dir():
        raise InvalidInput(f"{out}: is a folder; -o takes the path of the file to write")
    if not out.parent.is_dir():
        raise InvalidInput(f"{out}: the folder {out.parent} does not exist; nothing was written",
                           hint=f"create it first (mkdir -p {out.parent})")


def write_atomically(target: Path, data: bytes, mode: int) -> None:
    """Write beside the target, then rename over it: readers see the old or the new file."""
    try:
        replace_atomically(target, data, mode)
    except NoTempFile as err:
        raise InvalidInput(f"{target}: cannot write in {target.parent}: {err.strerror or err}; "
                           "nothing was changed") from None
    except OSError as err:
        raise InvalidInput(f"{target}: cannot write: {err.strerror or err}; the file was not changed") from None


def keep_backup(source: Source, version: str) -> Path:
    """``harbor.yml.<version>.bak``; if taken by another file, ``.bak.2``, ``.bak.3`` ...

    The copy is written to a temp file beside it and hard-linked into place, which fails
    instead of overwriting when the name is taken: a backup is never half-written and
    never replaces another one.
    """
    safe = re.sub(r"[^0-9A-Za-z.]", "_", version)
    base = source.path.with_name(f"{source.path.name}.{safe}.bak")
    try:
        tmp = write_temp_beside(base, source.raw, _mode(source.path))
    except NoTempFile as err:
        raise InvalidInput(f"{base}: cannot write the backup in {base.parent}: {err.strerror or err}; "
                           "nothing was changed") from None
    except OSError as err:
        raise InvalidInput(f"{base}: cannot write the backup: {err.strerror or err}; nothing was changed") from None
    try:
        for n in range(1, 1000):
            candidate = base if n == 1 else base.with_name(f"{base.name}.{n}")
            try:
                _link_or_copy(tmp, candidate)
                return candidate
            except FileExistsError:
                if candidate.read_bytes() == source.raw:
                    return candidate       # this very file is already backed up there
        raise InvalidInput(f"{base}: too many backups beside {source.path}; nothing was changed",
                           hint="move old backups away")
    except OSError as err:
        raise InvalidInput(f"{base}: cannot write the backup: {err.strerror or err}; nothing was changed") from None
    finally:
        os.unlink(tmp)


def _link_or_copy(tmp: str, dest: Path) -> None:
    """Hard-link; where the filesystem has no hard links, copy into an exclusively created file."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        with open(tmp, "rb") as src, open(dest, "xb") as out:
            shutil.copyfileobj(src, out)
            out.flush()
            os.fsync(out.fileno())
        shutil.copymode(tmp, dest)
