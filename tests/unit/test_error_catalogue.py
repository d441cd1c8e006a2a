"""The error catalogue: one declared class per reference, exit codes from the class only,
every reference used in src/ declared and documented in the README's reference table."""
from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import harbor_upgrade
from harbor_upgrade import errors
from harbor_upgrade.errors import CATALOGUE, ExitStatus, HarborUpgradeError, InvalidInput

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "harbor_upgrade"
README = REPO / "README.md"


def _import_everything() -> None:
    for mod in pkgutil.walk_packages(harbor_upgrade.__path__, "harbor_upgrade."):
        if not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)


@functools.cache
def raise_sites() -> list[tuple[str, int, str | None, str | None, bool]]:
    """(file, line, called name, reference literal, passes exit_code=) for every error call in src/,
    plus (file, line, None, reference, False) for every class-level ``reference = "..."``.
    src/ is parsed once per session (three tests read it)."""
    sites = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                kw = {k.arg: k.value for k in node.keywords if k.arg}
                ref = kw.get("reference")
                name = node.func.id if isinstance(node.func, ast.Name) else \
                    node.func.attr if isinstance(node.func, ast.Attribute) else None
                literal = ref.value if isinstance(ref, ast.Constant) and isinstance(ref.value, str) else None
                if literal is not None or "exit_code" in kw:
                    sites.append((path.relative_to(REPO).as_posix(), node.lineno, name, literal, "exit_code" in kw))
            elif isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                            and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == "reference"
                            and isinstance(stmt.value, ast.Constant)):
                        sites.append((path.relative_to(REPO).as_posix(), stmt.lineno, None, stmt.value.value, False))
    return sites


def readme_references(text: str) -> dict[str, int]:
    """reference -> exit code, from the README's table rows '| `ref` | code | meaning |'."""
    return {m[1]: int(m[2]) for m in re.finditer(r"^\| `([a-z0-9-]+)` \| (\d+) \|", text, re.MULTILINE)}


def undocumented(readme_text: str) -> list[str]:
    documented = readme_references(readme_text)
    return sorted(ref for ref, cls in CATALOGUE.items()
                  if documented.get(ref) != int(cls.exit_code))


def test_every_reference_used_in_src_is_declared_by_one_class():
    _import_everything()
    used = raise_sites()
    assert len(used) > 60
    undeclared = [(f, line, ref) for f, line, _, ref, _ in used if ref is not None and ref not in CATALOGUE]
    assert undeclared == []


def test_a_raise_site_builds_the_declared_class_so_its_exit_code_is_the_class_one():
    _import_everything()
    classes = {c.__name__: c for c in CATALOGUE.values()} | {"HarborUpgradeError": HarborUpgradeError}
    wrong = []
    for f, line, name, ref, _ in raise_sites():
        if ref is None or name not in classes:
            continue
        if not issubclass(CATALOGUE[ref], classes[name]):
            wrong.append((f, line, name, ref, CATALOGUE[ref].__mro__[1].__name__))
    assert wrong == []


def test_no_raise_site_overrides_the_exit_code():
    assert [(f, line) for f, line, _, _, exit_kw in raise_sites() if exit_kw] == []


def test_every_declared_reference_is_documented_in_the_readme_with_its_exit_code():
    _import_everything()
    assert undocumented(README.read_text()) == []


def test_an_undocumented_reference_is_found():
    _import_everything()
    text = README.read_text()
    without = "\n".join(line for line in text.splitlines() if not line.startswith("| `dirty-schema` |"))
    assert undocumented(without) == ["dirty-schema"]
    wrong_code = text.replace("| `dirty-schema` | 4 |", "| `dirty-schema` | 5 |")
    assert undocumented(wrong_code) == ["dirty-schema"]


def test_references_are_checked_when_a_class_is_created():
    with pytest.raises(TypeError, match="kebab-case"):
        type("Bad", (InvalidInput,), {"reference": "schema-not-2.4.0"})
    with pytest.raises(TypeError, match="kebab-case"):
        type("Bad", (InvalidInput,), {"reference": "Dirty_Schema"})
    with pytest.raises(TypeError, match="declared already"):
        type("Again", (InvalidInput,), {"reference": "dirty-schema"})
    assert "schema-not-2.4.0" not in CATALOGUE


def test_the_old_spelling_builds_the_declared_class():
    err = InvalidInput("no such backup", reference="backup-missing", hint="h")
    assert type(err) is errors.BackupMissing and isinstance(err, InvalidInput)
    assert (err.reference, err.exit_code, err.hint, str(err)) == ("backup-missing", ExitStatus.INVALID, "h",
                                                                  "no such backup")
    with pytest.raises(errors.BackupMissing):
        raise err
    # the three former overrides: the class carries the code
    assert HarborUpgradeError("x", reference="verify-failed").exit_code == ExitStatus.CHANGES_NEEDED
    assert errors.UnsafeState("x", reference="not-confirmed").exit_code == ExitStatus.INTERRUPTED
    assert InvalidInput("x", reference="invalid-dsn").exit_code == ExitStatus.INVALID
    # an exit_code passed by an old call site does not win over the class
    assert errors.UnsafeState("x", reference="dirty-schema", exit_code=5).exit_code == ExitStatus.UNSAFE_STATE


def test_errors_survive_pickling_with_class_and_hint():
    import pickle
    err = pickle.loads(pickle.dumps(InvalidInput("m", reference="backup-missing", hint="h")))
    assert (type(err), err.message, err.hint, err.reference) == (errors.BackupMissing, "m", "h", "backup-missing")
