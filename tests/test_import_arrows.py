"""The persistence modules' import arrows point one way: _io < fileformat/registry < models < checkpoint
< hub < zoo, with card below its callers; the leaderboard sits above the benchmark's library and
below its command line; the commands (``ratzoo/commands/``) sit above the whole library, which never
imports them nor :mod:`ratzoo.cli`; every ``from .x import`` in
``ratzoo/`` counts, at module level and inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "ratzoo"
MODULES = {p.stem for p in PACKAGE.glob("*.py")} | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def source(module: str) -> Path:
    """The file of ``module``, dotted below ``ratzoo`` (``commands.benchmark``; a package: its ``__init__.py``)."""
    path = PACKAGE.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imports(module: str) -> set[tuple[str, str]]:
    """(imported ratzoo module, the function importing it or "<module>") for each import in ``module``.

    The imported module is named by its first component below ``ratzoo`` (``attacks`` for
    ``ratzoo.attacks.base``, ``commands`` for ``ratzoo.commands.benchmark``). ``from . import x`` in
    a module of the package itself is an edge to ``x`` when it is a module, else to the package
    (``__init__``); relative imports are resolved from ``module``'s own package.
    """
    path = source(module)
    tree = ast.parse(path.read_text())
    dotted = [] if module == "__init__" else module.split(".")
    package = dotted if path.name == "__init__.py" else dotted[:-1]
    edges = set()

    def target(parts: list[str]) -> str:
        return parts[0] if parts else "__init__"

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else scope
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[: len(package) - (child.level - 1)]
                    if child.module:
                        edges.add((target(base + child.module.split(".")), scope))
                    elif not base:
                        edges.update((a.name if a.name in MODULES else "__init__", scope) for a in child.names)
                    else:
                        edges.add((target(base), scope))
                elif (child.module or "").split(".")[0] == "ratzoo":
                    edges.add((target(child.module.split(".")[1:]), scope))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    parts = a.name.split(".")
                    if parts[0] == "ratzoo":
                        edges.add((target(parts[1:]), scope))
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


def test_the_benchmark_library_never_imports_the_leaderboard_and_its_command_may() -> None:
    """An entry keeps the ensemble's keys, so the leaderboard imports the benchmark; the benchmark's
    library never imports it back, and its command line (``--leaderboard``), above both, imports it
    at module level."""
    assert ("benchmarking", "<module>") in imports("leaderboard")
    assert "leaderboard" not in imported("benchmarking")
    assert ("leaderboard", "<module>") in imports("commands.benchmark")
    assert ("benchmarking", "<module>") in imports("commands.benchmark")


def _modules() -> list[str]:
    """Every module of the package, dotted below ``ratzoo`` (a package by its name, the root as ``__init__``)."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        out.append(".".join(parts))
    return out


COMMANDS = [m for m in _modules() if m.startswith("commands.")]
LIBRARY = [m for m in _modules() if m != "commands" and not m.startswith("commands.") and m != "__main__"]
def test_the_commands_and_the_library_are_found() -> None:
    assert COMMANDS == ["commands.benchmark", "commands.certify", "commands.evaluate"]
    assert {"benchmarking", "evaluation", "certification", "cli", "attacks.apgd", "defenses"} <= set(LIBRARY)


@pytest.mark.parametrize("module", LIBRARY)
def test_no_library_module_imports_the_commands(module: str) -> None:
    assert "commands" not in imported(module)


def test_the_cli_layer_is_the_commands_and_no_library_module_imports_it() -> None:
    """Every command imports :mod:`ratzoo.cli`; no library module does (what a record states, the
    software versions and the model's config, lives in :mod:`ratzoo.record` and :mod:`ratzoo.identity`)."""
    assert all("cli" in imported(c) for c in COMMANDS)
    assert {m for m in LIBRARY if m != "cli" and "cli" in imported(m)} == set()
