"""``python -m ratzoo COMMAND ARGS...``: the library's command lines under one name.

``python -m ratzoo benchmark ARGS`` runs ``main(ARGS)`` of :mod:`ratzoo.commands.benchmark` (likewise
``evaluate``: :mod:`ratzoo.commands.evaluate`, ``certify``: :mod:`ratzoo.commands.certify`), the command
line over the library module of its job (:mod:`ratzoo.benchmarking`, :mod:`ratzoo.evaluation`,
:mod:`ratzoo.certification`); each command's ``--help`` lists its flags. The command modules are named
after the commands: in their own package, they do not replace the functions of those names that
``ratzoo`` exports.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Sequence

COMMANDS = {  # name: (its module, what it does)
    "evaluate": ("commands.evaluate", "robust accuracy of one attack, under the decision rule"),
    "benchmark": ("commands.benchmark", "APGD-CE + APGD-T, the leaderboard's number"),
    "certify": ("commands.certify", "randomized-smoothing certified L2 accuracy"),
}
FORMER_MODULES = {"evaluation": "evaluate", "benchmarking": "benchmark", "certification": "certify"}
"""The library modules that held each command before :mod:`ratzoo.commands` (``python -m ratzoo.benchmarking``)."""


def usage() -> str:
    width = max(map(len, COMMANDS))
    return "usage: python -m ratzoo {" + ",".join(COMMANDS) + "} ARGS...\n\ncommands:\n" + "\n".join(
        f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items())


def suggestion(word: str) -> str | None:
    """The command ``word`` most likely meant: the command of a module's name (``commands.benchmark``,
    ``benchmarking`` or ``ratzoo.benchmark``, as once run with ``python -m``), else the closest command's name."""
    word = word.removeprefix("ratzoo.")
    by_module = {**FORMER_MODULES, **{module: name for name, (module, _) in COMMANDS.items()}}
    if word in by_module:
        return by_module[word]
    near = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.6)
    return near[0] if near else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv[0]`` with the rest; 2 (and the usage) for none or an unknown one."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if not argv or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr)
        if argv:
            near = suggestion(argv[0])
            print(f"error: unknown command {argv[0]!r}; choose one of: {', '.join(COMMANDS)}"
                  + (f" (did you mean: python -m ratzoo {near} ...?)" if near else ""), file=sys.stderr)
        return 2
    # the command's own argv, so that its record's `command` and any worker it starts get its arguments
    return importlib.import_module(f"ratzoo.{COMMANDS[argv[0]][0]}").main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
