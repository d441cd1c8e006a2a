"""One name, one thing: no public top-level name is defined in two modules of src/.

A release module (config/steps/vX_Y_Z.py, db/steps/vX_Y_Z.py) declares the names its chain
reads from every release (VERSION, apply, MODEL, DEFAULTS, KEEPS, STEP, CHECKS ...), always
through the module: those repeat by design and are not counted.
Run as a script to list the collisions: python3 tests/unit/test_name_collisions.py
"""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "harbor_upgrade"
RELEASE_MODULE = re.compile(r"(config|db)/steps/v\d+_\d+_\d+\.py")


def top_level_names(tree: ast.Module) -> list[str]:
    """Public names a module defines at its top level (classes, functions, assignments; not imports)."""
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [n.id for target in node.targets for n in ast.walk(target) if isinstance(n, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not n.startswith("_")]


def collisions(src: Path = SRC) -> dict[str, list[str]]:
    """name -> the modules defining it, for every name defined in two or more modules."""
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if RELEASE_MODULE.fullmatch(rel):
            continue
        for name in dict.fromkeys(top_level_names(ast.parse(path.read_text(encoding="utf-8")))):
            where[name].append(rel)
    return {name: modules for name, modules in sorted(where.items()) if len(modules) > 1}


def test_no_public_top_level_name_is_defined_in_two_modules():
    assert collisions() == {}


def test_the_count_sees_a_collision_and_leaves_release_conventions_alone(tmp_path):
    for rel, text in {"a.py": "class Progress: ...\nSTEPS = ()\n", "b.py": "Progress = 1\n_private = 2\n",
                      "config/steps/v2_4_0.py": "VERSION = '2.4.0'\ndef apply(doc): ...\n",
                      "config/steps/v2_5_0.py": "VERSION = '2.5.0'\ndef apply(doc): ...\nSTEPS = ()\n",
                      "db/steps/v2_5_0.py": "from x import Progress\n_private = 1\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert collisions(tmp_path) == {"Progress": ["a.py", "b.py"]}


if __name__ == "__main__":
    found = collisions()
    for name, modules in found.items():
        print(f"{name}: {', '.join(modules)}")
    print(f"{len(found)} names defined in two or more modules")
