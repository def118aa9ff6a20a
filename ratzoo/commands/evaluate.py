"""``python -m ratzoo evaluate``: the command line of :func:`ratzoo.evaluate` (:mod:`ratzoo.evaluation`).

One attack (or a sweep of budgets or EOT draws) on CIFAR-10 images, judged by the decision rule,
written as a JSON record, with Carlini et al.'s sanity checks on request::

    python -m ratzoo evaluate --model rat --attack pgd-linf --eps 8/255 --steps 20 \\
        --eot-samples 20 --n 1000 --out results.json
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import cli
from .._io import write_json
from ..attacks import ALIASES, ATTACKS, make_attack
from ..attacks.apgd import NORMS, canonical_norm
from ..attacks.base import check_budget
from ..evaluation import DEFAULT_ATTACK, DEFAULT_THRESHOLDS, evaluate
from ..geometry import IMAGE_DIM
from ..judge import DEFAULT_DECISION_SAMPLES, DEFAULT_EOT
from ..record import _json_safe


class UsageError(ValueError):
    """A bad command-line argument (exit code 2)."""


_CW = inspect.signature(ATTACKS["cw-l2"]).parameters  # C&W's own defaults, stated in the help
_ATTACK_ARGS = ("eps", "steps", "step_size", "restarts", "search_steps", "initial_const", "kappa", "norm")
"""The :class:`EvaluateConfig` fields passed on to the attack when given (None: the attack's default)."""


@dataclasses.dataclass
class EvaluateConfig:
    """``python -m ratzoo evaluate``'s configuration: one field per flag (``--step-size`` for
    ``step_size``); :meth:`validate` checks it before any model or data is loaded."""

    model: str = cli.option(None, "a zoo name (see ratzoo.list_models()), a checkpoint folder, hf-hub:OWNER/NAME "
                                  "or module.path:callable (your own nn.Module taking images in [0, 1])",
                            required=True)
    attack: str = cli.option(DEFAULT_ATTACK, f"none, {', '.join(ATTACKS)} (aliases: {', '.join(ALIASES)})")
    eps: float | None = cli.option(None, "budget, e.g. 8/255 (Linf) or 0.5 (L2); default: the attack's",
                                   type=cli.budget("--eps"))
    steps: int | None = cli.option(None, "attack iterations (C&W: Adam iterations per search step)",
                                   type=cli.positive_int("--steps"))
    step_size: float | None = cli.option(None, "PGD step size, e.g. 2/255 (default eps/4 Linf, eps/5 L2)",
                                         type=cli.budget("--step-size"))
    restarts: int | None = cli.option(None, "random restarts (PGD, APGD)", type=cli.positive_int("--restarts"))
    eot_samples: int = cli.option(DEFAULT_EOT, "noise draws per attack step on randomized models",
                                  flags=("--eot-samples", "--eot"), type=cli.positive_int("--eot-samples"))
    decision_samples: int = cli.option(DEFAULT_DECISION_SAMPLES, "fresh noise draws of the decision rule",
                                       type=cli.positive_int("--decision-samples"))
    search_steps: int | None = cli.option(None, f"C&W binary-search steps (default {_CW['search_steps'].default})",
                                          type=cli.positive_int("--search-steps"))
    initial_const: float | None = cli.option(None, f"C&W initial constant c (default {_CW['initial_const'].default:g})")
    kappa: float | None = cli.option(None, f"C&W confidence (default {_CW['kappa'].default:g})")
    norm: str | None = cli.option(None, "APGD threat model (default Linf)", type=canonical_norm, choices=NORMS)
    thresholds: tuple[float, ...] = cli.option(DEFAULT_THRESHOLDS, "C&W: L2 thresholds for accuracy",
                                               type=cli.comma_separated(cli.budget("--thresholds"), "--thresholds"))
    n: int = cli.option(1000, "number of test images", type=cli.positive_int("--n"))
    offset: int = cli.option(0, "index of the first test image", type=cli.nonnegative_int("--offset"))
    split: str = cli.option("test", "CIFAR-10 split", choices=["test", "train"])
    data_dir: str | None = cli.option(None, "local CIFAR-10 folder (Hub layout); default $RATZOO_CIFAR10 or the Hub")
    seed: int = cli.option(0, "seed of the attack and decision draws")
    device: str | None = cli.option(None, "cpu or cuda (default: cuda if available)")
    threads: int = cli.option(0, "CPU threads, 0 for torch's default")
    sweep_eps: tuple[float, ...] | None = cli.option(
        None, "comma-separated budgets, e.g. 2/255,4/255,8/255,16/255",
        type=cli.comma_separated(cli.budget("--sweep-eps"), "--sweep-eps"))
    sweep_eot: tuple[int, ...] | None = cli.option(None, "comma-separated eot_samples, e.g. 1,5,10,20,50",
                                                   type=cli.comma_separated(cli.positive_int("--sweep-eot"),
                                                                            "--sweep-eot"))
    sanity: bool = cli.option(False, "also run the large-budget check (accuracy must fall to ~0 when anything "
                                     "is allowed)")
    check_convergence: bool = cli.option(False, "re-run with steps and EOT doubled; say whether the attack has "
                                                "converged")
    out: str | None = cli.option(None, "write the JSON record here (default: print it)")
    no_progress: bool = cli.option(False, "no progress bar")

    def validate(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """The canonical attack name, the attack's keyword arguments and the sweep (``{}``, or its
        ``key`` and ``values``), once every flag is checked.

        Raises:
            UsageError: a flag that makes no sense (the message names it).
        """
        attack = ALIASES.get(self.attack.lower(), self.attack.lower())
        if attack != "none" and attack not in ATTACKS:
            raise UsageError(f"unknown attack {self.attack!r}; choose one of: none, {', '.join(ATTACKS)}")
        kw = {k: getattr(self, k) for k in _ATTACK_ARGS if getattr(self, k) is not None}
        if attack == "none" and kw:
            raise UsageError(f"--attack none takes no attack options, got {', '.join(sorted(kw))}")
        if attack != "none":
            kw["eot_samples"] = self.eot_samples
        if self.sweep_eps and self.sweep_eot:
            raise UsageError("give --sweep-eps or --sweep-eot, not both")
        sweep: dict[str, Any] = {}
        if self.sweep_eps:
            if attack in ("none", "cw-l2"):
                raise UsageError(f"--sweep-eps needs a bounded attack, not {attack!r} (C&W: use --thresholds)")
            sweep = {"key": "eps", "values": list(self.sweep_eps)}
        elif self.sweep_eot:
            if attack == "none":
                raise UsageError("--sweep-eot needs an attack")
            sweep = {"key": "eot_samples", "values": list(self.sweep_eot)}
        if attack != "none":
            try:  # the attack checks its own arguments, here before any model or data is loaded
                first = {sweep["key"]: sweep["values"][0]} if sweep else {}
                a = make_attack(attack, nn.Identity(), **{**kw, **first})
                swept = sweep.get("key") == "eps"
                for eps in sweep["values"] if swept else [a.eps]:
                    if eps is not None:
                        check_budget(eps, a.norm, IMAGE_DIM, "--sweep-eps" if swept else "--eps")
            except (ValueError, TypeError) as e:
                raise UsageError(str(e)) from None
        return attack, kw, sweep


def build_parser() -> argparse.ArgumentParser:
    """The CLI, one flag per :class:`EvaluateConfig` field."""
    return cli.parser(
        "evaluate", EvaluateConfig,
        "Attack a model on CIFAR-10 test images and write an honest JSON record "
        "(decision rule: mean softmax over fresh noise draws; 95% Wilson CIs).",
        epilog="example: python -m ratzoo evaluate --model rat --attack pgd-linf --eps 8/255 --steps 20 "
               "--eot-samples 20 --n 1000 --out results.json")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (0 ok, 2 bad arguments, 3 model/data error)."""
    try:
        cfg = EvaluateConfig(**vars(build_parser().parse_args(argv)))
    except SystemExit as e:  # argparse has printed why (or the help): return its code as every refusal here
        return int(e.code or 0)
    try:
        attack, kw, sweep = cfg.validate()
    except UsageError as e:
        print(f"error: {e}\n(see python -m ratzoo evaluate --help)", file=sys.stderr)
        return cli.BAD_ARGUMENT
    command = "python -m ratzoo evaluate " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        out = _run(cfg, attack, kw, sweep, command)
    except cli.CommandError as e:
        return e.report()
    _write(cfg, out, sweep)
    return 0


def _run(cfg: EvaluateConfig, attack: str, kw: dict[str, Any], sweep: dict[str, Any], command: str) -> dict[str, Any]:
    """Load the model and the images, attack (each sweep point in turn), run the sanity checks asked for.

    Raises:
        CommandError: the model or data cannot be loaded (exit 3), or ``--offset`` is past the split's end.
    """
    from ..data import describe_source, to_tensor
    from ..sanity import check_convergence, check_large_budget, check_monotone

    device = cli.device(cfg.device)
    cli.set_threads(cfg.threads)
    model = cli.load_model(cfg.model, device)
    xs, ys = cli.load_data(cfg.split, cfg.data_dir)
    n, offset, seed = cfg.n, cfg.offset, cfg.seed
    if offset >= len(xs):
        raise cli.CommandError(f"--offset {offset} is past the end of the {cfg.split} split ({len(xs)} images)",
                               cli.BAD_ARGUMENT)
    x = to_tensor(np.array(xs[offset : offset + n])).to(device)
    y = torch.from_numpy(np.array(ys[offset : offset + n])).to(device)
    if x.shape[0] < n:
        print(f"warning: only {x.shape[0]} images available from offset {offset}", file=sys.stderr)
    common = dict(seed=seed, decision_samples=cfg.decision_samples, thresholds=cfg.thresholds,
                  progress=not cfg.no_progress, model_name=str(cfg.model))
    t0 = time.perf_counter()
    out: dict[str, Any]
    if sweep:
        points = []
        for v in sweep["values"]:
            print(f"{sweep['key']} = {v:g}", file=sys.stderr)
            points.append(evaluate(model, x, y, attack=attack, **{**kw, sweep["key"]: v}, **common))
            print(f"  robust accuracy {points[-1]['robust_accuracy']:.4f}", file=sys.stderr)
        # a larger budget, or more EOT draws, is a stronger attack: accuracy must not rise
        checks = [check_monotone(points, sweep["key"])]
        out = {"sweep": sweep["key"], "values": sweep["values"], "model": str(cfg.model), "attack": attack,
               "n": int(x.shape[0]), "seed": seed, "points": points, "sanity": checks}
    else:
        out = evaluate(model, x, y, attack=attack, **kw, **common)
        out["sanity"] = []
    data_dir = cfg.data_dir or os.environ.get("RATZOO_CIFAR10")
    out.update(dataset=describe_source(cfg.data_dir), data={"split": cfg.split, "offset": offset, "data_dir": data_dir},
               command=command)
    if attack != "none" and cfg.sanity:
        print("sanity: large budget", file=sys.stderr)
        out["sanity"].append(check_large_budget(model, x, y, attack, **{k: v for k, v in kw.items() if k != "eps"},
                                                seed=seed, decision_samples=cfg.decision_samples))
    if attack != "none" and cfg.check_convergence:
        base = out if not sweep else out["points"][-1]
        print("sanity: convergence (doubling steps and EOT)", file=sys.stderr)
        out["sanity"].append(check_convergence(model, x, y, base, decision_samples=cfg.decision_samples,
                                               **{k: v for k, v in kw.items() if k not in ("steps", "eot_samples")}))
    for c in out["sanity"]:
        print(f"[{'ok' if c['passed'] else 'FLAG'}] {c['check']}: {c['message']}", file=sys.stderr)
    out["elapsed_total_s"] = round(time.perf_counter() - t0, 3)
    return out


def _write(cfg: EvaluateConfig, out: dict[str, Any], sweep: dict[str, Any]) -> None:
    """Write the record to ``--out`` (else stdout) and say the result in one line on stderr."""
    if cfg.out:
        write_json(cfg.out, _json_safe(out), indent=2)
        print(f"wrote {cfg.out}", file=sys.stderr)
    else:
        print(json.dumps(_json_safe(out), indent=2, allow_nan=False))
    if not sweep:
        print(f"clean accuracy {out['clean_accuracy']:.4f}, robust accuracy {out['robust_accuracy']:.4f} "
              f"(95% CI {out['robust_accuracy_ci95'][0]:.4f}-{out['robust_accuracy_ci95'][1]:.4f}), "
              f"n={out['n']}", file=sys.stderr)



if __name__ == "__main__":  # `python -m ratzoo.commands.evaluate`: the command has one entry point, the one
    # its record's `command` names
    sys.exit("run it as: python -m ratzoo evaluate ARGS (see python -m ratzoo evaluate --help)")
