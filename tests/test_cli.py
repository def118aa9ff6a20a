"""The command lines' shared layer (:mod:`ratzoo.cli`)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from ratzoo import cli
from ratzoo.checkpoint import CheckpointError


@dataclasses.dataclass
class _Config:
    steps: int = cli.option(7, "iterations")
    margin: float = cli.option(0.25, "a margin", flags=("--margin", "-m"))
    name: str | None = cli.option(None, "a name")
    fast: bool = cli.option(False, "go fast")
    internal: int = 3  # no option(): not a flag


def _parser(**kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="t")
    cli.add_options(p, _Config, **kw)
    return p


def test_add_options_gives_each_field_its_default_type_and_help() -> None:
    p = _parser()
    assert _Config(**vars(p.parse_args([]))) == _Config()
    cfg = _Config(**vars(p.parse_args(["--steps", "9", "-m", "0.5", "--name", "x", "--fast"])))
    assert (cfg.steps, cfg.margin, cfg.name, cfg.fast) == (9, 0.5, "x", True)
    text = p.format_help()
    assert "iterations (default 7)" in text and "a margin (default 0.25)" in text
    assert "a name (default" not in text and "--internal" not in text
    assert "iterations (default" not in _parser(show_defaults=False).format_help()


@pytest.mark.parametrize("argv", [["--steps", "many"], ["--margin", "wide"], ["--fast", "yes"]])
def test_add_options_refuses_a_value_of_the_wrong_type(argv, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(argv)
    assert e.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("error, code", [(KeyError("unknown model 'x'"), 2), (ValueError("cannot import"), 2),
                                         (CheckpointError("x: no such checkpoint folder"), 3),
                                         (RuntimeError("the user's code failed"), 3)])
def test_model_errors_become_the_documented_exit_codes(error, code, capsys) -> None:
    with pytest.raises(cli.CommandError) as e, cli.model_errors():
        raise error
    assert e.value.report() == code
    assert capsys.readouterr().err == f"error: {error.args[0]}\n"  # a KeyError's message without its quotes
