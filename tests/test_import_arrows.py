"""The persistence modules' import arrows point one way: _io < fileformat/registry < models < checkpoint
< hub < zoo, with card below its callers; the leaderboard sits above the benchmark; every
``from .x import`` in ``ratzoo/*.py`` counts, at module level and inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "ratzoo"
MODULES = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def imports(module: str) -> set[tuple[str, str]]:
    """(imported ratzoo module, the function importing it or "<module>") for each import in ``module``.

    ``from . import x`` is an edge to ``x`` when it is a module, else to the package (``__init__``).
    """
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    edges = set()

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else scope
            if isinstance(child, ast.ImportFrom):
                if child.level == 1 and child.module:
                    edges.add((child.module.split(".")[0], scope))
                elif child.level == 1:
                    edges.update((a.name if a.name in MODULES else "__init__", scope) for a in child.names)
                elif child.level == 0 and (child.module or "").split(".")[0] == "ratzoo":
                    parts = child.module.split(".")
                    edges.add((parts[1] if len(parts) > 1 else "__init__", scope))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    parts = a.name.split(".")
                    if parts[0] == "ratzoo":
                        edges.add((parts[1] if len(parts) > 1 else "__init__", scope))
            visit(child, inner)

    visit(tree, "<module>")
    return edges


def imported(module: str) -> set[str]:
    return {target for target, _ in imports(module)}


def test_the_parser_sees_lazy_imports() -> None:
    """The check below would pass vacuously if function-level imports were missed."""
    assert ("card", "update_results") in imports("checkpoint")
    assert ("models", "<module>") in imports("checkpoint")


@pytest.mark.parametrize("leaf", ["_io", "fileformat", "registry"])
def test_leaves_import_no_ratzoo_module_but_the_writers(leaf: str) -> None:
    assert imported(leaf) <= ({"_io"} if leaf != "_io" else set())


@pytest.mark.parametrize("module,forbidden", [
    ("card", {"models", "zoo", "checkpoint", "hub", "registry"}),
    ("checkpoint", {"hub", "zoo"}),
    ("hub", {"zoo"}),
])
def test_no_upward_arrow(module: str, forbidden: set[str]) -> None:
    assert imported(module) & forbidden == set()


def test_the_mixin_hook_is_the_models_only_upward_arrow() -> None:
    """huggingface_hub's mixin makes loading a classmethod of the model: that hook alone may
    reach the loader, and nothing in models knows checkpoint folders or the zoo."""
    up = {(target, scope) for target, scope in imports("models") if target in {"checkpoint", "hub", "zoo", "card"}}
    assert up - {("card", "generate_model_card")} == {("hub", "_from_pretrained")}


def test_the_benchmark_reaches_the_leaderboard_only_from_its_cli() -> None:
    """An entry keeps the ensemble's keys, so the leaderboard imports the benchmark; the
    benchmark's one arrow back is its CLI's (``main`` and ``_publish``, which writes ``--leaderboard``)."""
    assert ("benchmarking", "<module>") in imports("leaderboard")
    assert {scope for target, scope in imports("benchmarking") if target == "leaderboard"} == {"main", "_publish"}
