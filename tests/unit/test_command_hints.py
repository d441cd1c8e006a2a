"""Every `harbor-upgrade …` command line the tool prints (messages, hints, help, docstrings)
or the README shows is parsed by the real click CLI: a renamed command or flag cannot leave
a stale hint behind."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

from harbor_upgrade.cli import cli

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "harbor_upgrade"

# The README's placeholder for any command.
ANY_COMMAND = "COMMAND"
# What may trail a word of a command line: usage brackets, or the end of its sentence or
# code span (then prose follows).
TAIL = re.compile(r"[\])`.;,:]*$")
END = re.compile(r"[`.;,:]")
PLACEHOLDER = "X"


def literal_texts(path: Path) -> list[str]:
    """Every string literal of a module; an f-string's fields become a placeholder value."""
    texts, parts_of_fstrings = [], set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.JoinedStr):
            parts_of_fstrings.update(id(v) for v in node.values)
            texts.append("".join(v.value if isinstance(v, ast.Constant) else PLACEHOLDER for v in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts_of_fstrings:
            texts.append(node.value)
    return texts


def command_lines() -> list[tuple[str, str]]:
    """(where, text after 'harbor-upgrade ') of every mention in src/ and the README."""
    found = []
    sources = [(p, literal_texts(p)) for p in sorted(SRC.rglob("*.py"))]
    sources.append((REPO / "README.md", (REPO / "README.md").read_text().splitlines()))
    for path, texts in sources:
        for text in texts:
            text = text.replace("\\|", "|")
            for m in re.finditer(r"harbor-upgrade ", text):
                if text[m.start() - 1:m.start()] in ("/", "-", "_") or is_prose(text[m.end():]):
                    continue
                found.append((f"{path.relative_to(REPO)}: {text[m.start():m.start() + 90]!r}", text[m.end():]))
    return found


def is_prose(rest: str) -> bool:
    """'harbor-upgrade then stops the stack', 'harbor-upgrade (an unexpected exception)': the
    tool's name in a sentence. A word that is no command but is followed by an option
    ('harbor-upgrade pgupgrade --cleanup') is a command line, and a stale one."""
    words = rest.split()
    if not words or words[0] == ANY_COMMAND or words[0].startswith("("):
        return True
    first = words[0].strip("`.,;:)").split("|")[0]
    return cli.get_command(click.Context(cli), first) is None and not (len(words) > 1 and words[1].startswith("-"))


def tokens_of(rest: str) -> list[str]:
    """The command line's words: up to the end of its line, sentence or code span, without
    the usage brackets of README synopses ([--dsn DSN], (A | B))."""
    out = []
    for word in rest.split("\n")[0].split():
        if word in ("|", "or"):
            continue
        core = word.lstrip("[(")
        tail = TAIL.search(core)
        if core[:tail.start()]:
            out.append(core[:tail.start()])
        if END.search(tail.group()):
            break
    return out


def parse(tokens: list[str]) -> None:
    """Resolve the command path through the groups, then let the command's own click parser
    read the rest: an unknown command or option, or an option without its value, fails;
    required options left out of a hint and words of prose after the command do not."""
    ctx = click.Context(cli, info_name="harbor-upgrade")
    command: click.Command = cli
    args = list(tokens)
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        names = args[0].split("|")
        subs = [command.get_command(ctx, n) for n in names]
        if not any(subs) and not (len(args) > 1 and args[1].startswith("-")):
            return  # 'another harbor-upgrade db run holds the lock': prose after the group's name
        assert all(subs), f"no command {' or '.join(names)!r} under {ctx.command_path!r}"
        args.pop(0)
        command = subs[0]
        ctx = click.Context(command, parent=ctx, info_name=names[0])
    command.make_parser(ctx).parse_args(args)


LINES = command_lines()


def test_the_collector_finds_the_hints():
    # the ones the operator relies on most: continue, undo, clean up, repair
    joined = " ".join(rest for _, rest in LINES)
    for expected in ("rollback --backup-dir", "db repair --dsn", "pg-upgrade --cleanup", "run --harbor-yml"):
        assert expected in joined
    assert len(LINES) > 40


@pytest.mark.parametrize("where,rest", LINES, ids=[w for w, _ in LINES])
def test_each_command_line_in_hints_and_readme_parses(where, rest):
    tokens = tokens_of(rest)
    try:
        parse(tokens)
    except click.UsageError as e:
        pytest.fail(f"{where}: harbor-upgrade {' '.join(tokens)}: {e.format_message()}")


def test_a_renamed_flag_would_be_caught():
    with pytest.raises(click.UsageError):
        parse(["rollback", "--backup-folder", "B"])
    with pytest.raises(AssertionError):
        parse(["db", "fix", "--dsn", "D"])
