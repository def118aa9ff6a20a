"""The command lines of ``python -m ratzoo COMMAND`` (:mod:`ratzoo.__main__`), one module per command and
named after it: :mod:`~ratzoo.commands.benchmark`, :mod:`~ratzoo.commands.evaluate` and
:mod:`~ratzoo.commands.certify`, each the flags and the ``main`` over the library module of its job
(:mod:`ratzoo.benchmarking`, :mod:`ratzoo.evaluation`, :mod:`ratzoo.certification`). The commands
import the library; no library module imports them.
"""
