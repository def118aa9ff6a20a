"""The command lines' shared layer (:mod:`ratzoo.cli`) and ``python -m ratzoo COMMAND``."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

import pytest

from ratzoo import cli
from ratzoo.checkpoint import CheckpointError

from conftest import REPO_ROOT


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ratzoo", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args", [[], ["nosuch"]])
def test_python_m_ratzoo_names_its_commands_for_none_or_an_unknown_one(args, subprocess_env) -> None:
    r = _run(args, subprocess_env)
    assert r.returncode == 2
    assert all(name in r.stderr for name in ("evaluate", "benchmark", "certify")), r.stderr
    assert ("unknown command 'nosuch'" in r.stderr) == bool(args)


@pytest.mark.parametrize("typed, meant", [("benchmarking", "benchmark"), ("ratzoo.evaluate", "evaluate"),
                                          ("certification", "certify"), ("benchmrak", "benchmark"), ("nosuch", None),
                                          ("ratzoo.commands.benchmark", "benchmark"), ("commands.evaluate", "evaluate"),
                                          ("commands.certify", "certify")])
def test_an_unknown_command_gets_the_likeliest_one_named(typed, meant, capsys) -> None:
    from ratzoo.__main__ import main

    assert main([typed, "--help"]) == 2
    err = capsys.readouterr().err
    assert f"unknown command {typed!r}" in err
    assert ("did you mean" in err) == bool(meant) and (not meant or f"python -m ratzoo {meant} ...?" in err), err


def test_python_m_ratzoo_dispatches_to_the_command(subprocess_env) -> None:
    r = _run(["benchmark", "--help"], subprocess_env)
    assert r.returncode == 0, r.stderr
    assert all(flag in r.stdout for flag in ("--threat-model", "--cascade-margin", "--part-size")), r.stdout
    # the command's own exit code and message come back
    r = _run(["certify", "--model", "nosuchmodel"], subprocess_env)
    assert r.returncode == 2 and "unknown model 'nosuchmodel'" in r.stderr, r.stderr


@pytest.mark.parametrize("module, command", [("benchmarking", "benchmark"), ("evaluation", "evaluate"),
                                             ("certification", "certify"), ("commands.benchmark", "benchmark"),
                                             ("commands.evaluate", "evaluate"), ("commands.certify", "certify")])
def test_a_commands_module_run_with_python_m_points_to_the_command(module, command, subprocess_env) -> None:
    r = subprocess.run([sys.executable, "-m", f"ratzoo.{module}", "--help"], cwd=REPO_ROOT, env=subprocess_env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and f"run it as: python -m ratzoo {command} ARGS" in r.stderr, r.stderr
    assert "usage:" not in r.stdout  # nothing ran


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


@dataclasses.dataclass
class _Typed:
    limit: int | None = cli.option(None, "a limit")
    eps: float | None = cli.option(None, "a budget", type=cli.budget("--eps"))
    levels: tuple[float, ...] = cli.option((0.25, 1.0), "levels", type=cli.comma_separated(float, "--levels"))
    count: int = cli.option(1, "a count", type=cli.positive_int("--count"))
    counts: tuple[int, ...] = cli.option((1,), "counts", type=cli.comma_separated(cli.positive_int("--counts"),
                                                                                  "--counts"))


def test_add_options_parses_optional_ints_budgets_and_comma_separated_values(capsys) -> None:
    p = argparse.ArgumentParser(prog="t")
    cli.add_options(p, _Typed)
    assert _Typed(**vars(p.parse_args([]))) == _Typed()
    cfg = _Typed(**vars(p.parse_args(["--limit", "3", "--eps", "8/255", "--levels", "0.5,,2", "--count", "4",
                                      "--counts", "2,3"])))
    assert (cfg.limit, cfg.eps, cfg.levels, cfg.count, cfg.counts) == (3, 8 / 255, (0.5, 2.0), 4, (2, 3))
    assert "levels (default 0.25,1.0)" in p.format_help() and "a limit (default" not in p.format_help()
    for argv, said in ((["--limit", "3.5"], "argument --limit: invalid int value: '3.5'"),
                       (["--eps", "eight"], "--eps='eight' is not a number"),
                       (["--levels", ","], "--levels is empty"),
                       (["--levels", "1,x"], "--levels takes comma-separated float values, got '1,x'"),
                       (["--count", "0"], "argument --count: --count must be a positive integer, got 0"),
                       (["--count", "-1"], "--count must be a positive integer, got -1"),
                       (["--count", "2.5"], "--count must be a positive integer, got '2.5'"),
                       (["--counts", "2,0"], "--counts must be a positive integer, got 0")):
        with pytest.raises(SystemExit) as e:
            p.parse_args(argv)
        assert e.value.code == 2 and said in capsys.readouterr().err


@dataclasses.dataclass
class _Overrides:
    steps: int = cli.option(7, "iterations")
    eps: float = cli.option(0.5, "a budget")
    scale: float = cli.option(1.0, "a scale", type=float)
    guard: bool = cli.option(True, "a guard")
    fast: bool = cli.option(False, "go fast")
    name: str = cli.option("", "a name")


def test_add_options_can_leave_flags_unset_take_bool_values_and_parse_a_type_its_way(capsys) -> None:
    p = argparse.ArgumentParser(prog="t")
    cli.add_options(p, _Overrides, unset_defaults=True, bool_values=True, types={"float": cli.budget("--x")})
    assert vars(p.parse_args([])) == dict.fromkeys(("steps", "eps", "scale", "guard", "fast", "name"))
    got = vars(p.parse_args(["--eps", "8/255", "--guard", "false", "--fast", "--steps", "9"]))
    assert got == {"steps": 9, "eps": 8 / 255, "scale": None, "guard": False, "fast": True, "name": None}
    assert (p.parse_args(["--fast", "yes"]).fast, p.parse_args(["--guard", "on"]).guard) == (True, True)
    text = " ".join(p.format_help().split())
    assert "iterations (default 7)" in text and "a guard (default True)" in text and "go fast (default False)" in text
    assert "a name (default" not in text  # "" is unset, as None
    for argv, said in ((["--guard", "maybe"], "argument --guard: expected true/false, got 'maybe'"),
                       (["--scale", "1/2"], "argument --scale: invalid float value: '1/2'")):  # its own type=
        with pytest.raises(SystemExit) as e:
            p.parse_args(argv)
        assert e.value.code == 2 and said in capsys.readouterr().err
    switches = _parser()  # the default: a bool is a switch taking no value, defaulting to False
    assert switches.parse_args([]).fast is False and switches.parse_args(["--fast"]).fast is True


@pytest.mark.parametrize("text, value", [("0", 0), ("7", 7), (" 3", 3)])
def test_nonnegative_int_takes_zero_and_up(text, value) -> None:
    assert cli.nonnegative_int("--offset")(text) == value


@pytest.mark.parametrize("text, said", [("-1", "--offset must be an integer >= 0, got -1"),
                                        ("1.5", "--offset must be an integer >= 0, got '1.5'"),
                                        ("x", "--offset must be an integer >= 0, got 'x'")])
def test_nonnegative_int_is_refused_by_argparse_with_the_flag_and_value_named(text, said, capsys) -> None:
    p = argparse.ArgumentParser(prog="t")
    p.add_argument("--offset", type=cli.nonnegative_int("--offset"), default=0)
    assert p.parse_args(["--offset", "0"]).offset == 0
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--offset", text])
    assert e.value.code == 2 and f"argument --offset: {said}" in capsys.readouterr().err


@pytest.mark.parametrize("error, code", [(KeyError("unknown model 'x'"), 2), (ValueError("cannot import"), 2),
                                         (CheckpointError("x: no such checkpoint folder"), 3),
                                         (RuntimeError("the user's code failed"), 3)])
def test_model_errors_become_the_documented_exit_codes(error, code, capsys) -> None:
    with pytest.raises(cli.CommandError) as e, cli.model_errors():
        raise error
    assert e.value.report() == code
    assert capsys.readouterr().err == f"error: {error.args[0]}\n"  # a KeyError's message without its quotes


@dataclasses.dataclass
class _Aliased:
    eot_samples: int = cli.option(20, "draws", flags=("--eot-samples", "--eot"))
    eot_seed: int = cli.option(0, "a seed")


@pytest.mark.parametrize("argv, value", [(["--eot", "3"], 3), (["--eot-samples", "4"], 4), (["--eot-sam", "5"], 5),
                                         (["--eot=6"], 6), (["--eot-sa=7"], 7)])
def test_a_flag_with_an_old_name_takes_either_name_and_abbreviations_of_both(argv, value) -> None:
    p = cli.ArgumentParser(prog="t")
    cli.add_options(p, _Aliased)
    assert p.parse_args(argv).eot_samples == value
    p = cli.ArgumentParser(prog="t")
    p.add_argument("--late-target-eot-samples", "--late-target-eot", dest="late", type=int)
    assert p.parse_args(["--late", "2"]).late == 2  # a prefix of both of one flag's names: that flag


def test_an_abbreviation_of_two_flags_is_still_ambiguous(capsys) -> None:
    p = cli.ArgumentParser(prog="t")
    cli.add_options(p, _Aliased)
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--eot", "1", "--eo", "2"])
    assert e.value.code == 2 and "ambiguous option: --eo could match --eot-samples, --eot-seed" in capsys.readouterr().err


def _command_parser(command: str) -> argparse.ArgumentParser:
    import importlib

    return importlib.import_module(command).build_parser()


# (the command's module, the flags it needs, the old flag, its new name, the config field, a value it refuses)
OLD_AND_NEW_FLAGS = [
    ("ratzoo.commands.benchmark", ["--model", "rat"], "--eot", "--eot-samples", "eot_samples", "0"),
    ("ratzoo.commands.benchmark", ["--model", "rat"], "--target-eot", "--target-eot-samples", "target_eot_samples", "0"),
    ("ratzoo.commands.benchmark", ["--model", "rat"], "--late-target-eot", "--late-target-eot-samples",
     "late_target_eot_samples", "0"),
    ("ratzoo.commands.evaluate", ["--model", "rat"], "--eot", "--eot-samples", "eot_samples", "0"),
    ("train.experiments", [], "--eot", "--eot-samples", "eot_samples", "0"),
    ("train.experiments", [], "--table2-eot", "--table2-eot-samples", "table2_eot_samples", "0"),
    ("train.experiments", [], "--cw-sweep-max-eot", "--cw-sweep-max-eot-samples", "cw_sweep_max_eot_samples", "-1"),
    ("train.config", [], "--eval-eot", "--eval-eot-samples", "eval_eot_samples", "0"),
]


@pytest.mark.parametrize("command, needed, old, new, field, bad", OLD_AND_NEW_FLAGS,
                         ids=[f"{c.rsplit('.', 1)[1]}{o}" for c, _, o, *_ in OLD_AND_NEW_FLAGS])
def test_an_old_flag_parses_as_its_new_name_which_help_and_errors_name(command, needed, old, new, field, bad,
                                                                       capsys) -> None:
    """The library's name (``eot_samples``) is the flag's; a command line written with its old
    name still sets the same field to the same value."""
    parse = _command_parser(command).parse_args
    by_old, by_new, default = parse([*needed, old, "7"]), parse([*needed, new, "7"]), parse(needed)
    assert getattr(by_old, field) == getattr(by_new, field) == 7 != getattr(default, field)
    assert vars(by_old) == vars(by_new)
    assert not hasattr(by_new, old[2:].replace("-", "_"))  # one field, named as the library names it
    text = " ".join(_command_parser(command).format_help().split())
    assert f"[{new} {field.upper()}]" in text and f"{new} {field.upper()}, {old} {field.upper()}" in text
    with pytest.raises(SystemExit) as e:
        parse([*needed, old, bad])
    assert e.value.code == 2 and f"argument {new}/{old}: {new} must be" in capsys.readouterr().err
