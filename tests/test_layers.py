"""The layers import downwards only: ``ratzoo`` never imports ``train`` or ``app``, and ``train``
never imports ``app`` (the demo's screen layer), read from the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"ratzoo": {"train", "app"}, "train": {"app"}}


def imported_roots(source: str, filename: str = "<src>") -> set[str]:
    """The top-level package of every absolute import in ``source``, at any depth (a lazy
    import inside a function counts too); relative imports are the package's own."""
    roots = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_a_layer_above_it(package: str) -> None:
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert len(files) >= 5, f"no modules found under {package}/"
    bad = {f.relative_to(REPO_ROOT).as_posix(): sorted(imported_roots(f.read_text(), str(f)) & FORBIDDEN[package])
           for f in files}
    assert not any(bad.values()), {f: roots for f, roots in bad.items() if roots}


@pytest.mark.parametrize("source", [
    "import app", "import app.results as r", "from app import results", "from app.results import figure2_rows",
    "def f():\n    from app import results\n",
])
def test_the_import_check_sees_every_form_of_import(source: str) -> None:
    assert "app" in imported_roots(source)


def test_the_import_check_leaves_relative_and_lookalike_imports_alone() -> None:
    assert imported_roots("from .results import x\nimport apple\nfrom application import y") == {"apple", "application"}
