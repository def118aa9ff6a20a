"""The command lines of ``python -m ratzoo COMMAND`` (:mod:`ratzoo.__main__`), one module per command and
named after it (``python -m ratzoo benchmark``: :mod:`ratzoo.commands.benchmark`): the flags and the
``main`` over the library module of its job (:mod:`ratzoo.benchmarking`). The commands import the
library; no library module imports them.
"""
