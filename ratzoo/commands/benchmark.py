"""``python -m ratzoo benchmark``: the command line of :func:`ratzoo.benchmark` (:mod:`ratzoo.benchmarking`).

CLI::

    python -m ratzoo benchmark --model rat --threat-model Linf --eps 8/255 --n 1000 \\
        --out rat_linf.json --resume --leaderboard checkpoints/results/leaderboard.json

``--model`` takes a zoo name, a checkpoint folder or ``module.path:callable`` (your own code,
called with no arguments, returning any ``nn.Module`` that takes images in [0, 1]);
``--leaderboard`` adds the record's entry to a leaderboard file (:mod:`ratzoo.leaderboard`).

**Parts.** The command keeps each finished part on disk (:mod:`ratzoo.parts`, in the folder
:meth:`BenchmarkConfig.parts_dir` names), so a killed run resumes with ``--resume`` and processes
share one run's parts: on CPU one process per core by default (``--procs``), and
``torchrun --nproc_per_node=N -m ratzoo benchmark ...`` gives the parts to the ranks in turn (gloo
on CPU, NCCL on GPUs) and rank 0 gathers and writes the one record (write ``--n-images`` there:
torchrun's own parser takes ``--n`` for one of its options).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import cli
from .._io import write_json
from ..attacks.apgd import canonical_norm
from ..attacks.base import PRECISIONS, check_budget, parse_budget
from ..benchmarking import (DEFAULT_CASCADE_AFTER, DEFAULT_CASCADE_MARGIN, DEFAULT_LATE_TARGET_EOT,
                            DEFAULT_REFINE_MARGIN, DEFAULT_STEPS, DEFAULT_TARGET_EOT, DEFAULT_TARGETS, PART_SIZE,
                            THREAT_MODELS, benchmark)
from ..geometry import IMAGE_DIM
from ..identity import model_identity
from ..judge import DEFAULT_DECISION_SAMPLES, DEFAULT_EOT
from ..leaderboard import eps_text, leaderboard_entry, update_leaderboard
from ..parts import Parts, folder_key
from ..randomness import randomness_of
from ..record import Record

IDENTITY_FILE = "model.json"  # in each parts folder: the identity of the model its parts measured


def _field(default: Any, help: str, key: str | None = None, **arg: Any) -> Any:
    """A :class:`BenchmarkConfig` field (:func:`ratzoo.cli.option`) and its ``key``: whether it
    defines the measurement (``"always"``, or ``"unless_default"`` for fields added later, so
    that the parts of older runs keep their folder) or only how it is run (None)."""
    return cli.option(default, help, meta={"key": key}, **arg)


@dataclasses.dataclass
class BenchmarkConfig:
    """``python -m ratzoo benchmark``'s configuration: one field per flag (``--part-size`` for
    ``part_size``), the record's ``command`` says which were given."""

    model: str = _field(None, "zoo name, checkpoint folder, hf-hub:OWNER/NAME or module.path:callable", "always",
                        required=True)
    threat_model: str = _field("Linf", "threat model (any case)", "always", choices=list(THREAT_MODELS),
                               type=canonical_norm)
    eps: str | None = _field(None, "budget, e.g. 8/255 or 0.5 (default: 8/255 Linf, 0.5 L2)", "always")
    n: int = _field(1000, "test images; under torchrun write --n-images (torchrun reads --n as its own)",
                    flags=("--n", "--n-images"), type=cli.positive_int("--n"))
    offset: int = _field(0, "index of the first test image", "always", type=cli.nonnegative_int("--offset"))
    seed: int = _field(0, "the one seed (each part's is derived from it)", "always")
    steps: int = _field(DEFAULT_STEPS, "APGD iterations per attack and per target", "always",
                        type=cli.positive_int("--steps"))
    eot_samples: int = _field(DEFAULT_EOT, "EOT draws per step on a randomized model", "always",
                              flags=("--eot-samples", "--eot"), type=cli.positive_int("--eot-samples"))
    targets: int = _field(DEFAULT_TARGETS, "APGD-T targets, the most likely wrong classes (at most classes - 1)",
                          "always", type=cli.positive_int("--targets"))
    target_eot_samples: int = _field(DEFAULT_TARGET_EOT, "EOT draws per step of APGD-T's likeliest target on a "
                                     "randomized model", "always", flags=("--target-eot-samples", "--target-eot"),
                                     type=cli.positive_int("--target-eot-samples"))
    late_target_eot_samples: int = _field(DEFAULT_LATE_TARGET_EOT, "EOT draws per step of APGD-T's other targets",
                                          "always", flags=("--late-target-eot-samples", "--late-target-eot"),
                                          type=cli.positive_int("--late-target-eot-samples"))
    cascade_after: int = _field(DEFAULT_CASCADE_AFTER, "APGD-T target ranks every robust image gets", "always",
                                type=cli.positive_int("--cascade-after"))
    cascade_margin: float = _field(DEFAULT_CASCADE_MARGIN, "after --cascade-after ranks, an image gets the next "
                                   "target only while its smallest decision margin is at most this", "always")
    refine_margin: float = _field(DEFAULT_REFINE_MARGIN, "after the cascade, an image still robust with a margin at "
                                  "most this gets the first target again at --eot-samples draws (0: never)", "always")
    decision_samples: int = _field(DEFAULT_DECISION_SAMPLES, "fresh draws of the decision rule", "always",
                                   type=cli.positive_int("--decision-samples"))
    part_size: int = _field(PART_SIZE, "images per resumable part", "always", type=cli.positive_int("--part-size"))
    randomness: str | None = _field(None, "override the detected randomness", "always",
                                    choices=["deterministic", "per-sample", "per-call"])
    precision: str = _field("auto", "the attacks' passes (auto: bf16 where the device runs it natively); "
                                    "verdicts are always float32", "unless_default", choices=list(PRECISIONS))
    resume: bool = _field(False, "reuse finished parts (also: share one run between processes)")
    wait: bool = _field(False, "when other processes measure the last parts, wait for them and write the record "
                               "too (default: leave it to the process that finishes last)")
    procs: int = _field(0, "processes sharing the parts on CPU, one thread each (0: one per core, the faster "
                           "layout, benchmarks/bench_benchmark.py layout; 1: this process alone)",
                        type=cli.nonnegative_int("--procs"))
    threads: int = _field(0, "torch threads per process (0: 1 when several processes share the CPU, else torch's "
                             "default)", type=cli.nonnegative_int("--threads"))
    data_dir: str | None = _field(None, "CIFAR-10 folder (default $RATZOO_CIFAR10 or the Hub)")
    device: str | None = _field(None, "cuda or cpu (default: cuda when available)")
    out: str | None = _field(None, "write the record here (default: print it)")
    leaderboard: str | None = _field(None, "add or update this model's entry in this leaderboard file")
    name: str | None = _field(None, "the model's name in the record (default: --model)")
    sanity: bool = _field(False, "also run Carlini et al.'s checks (large eps; 2x steps, 2x draws)")
    no_progress: bool = _field(False, "no progress bar")

    def budget(self) -> float:
        """``eps`` as a number (the threat model's default when unset).

        Raises:
            ValueError: a budget that makes no sense (the message names the flag).
        """
        if self.eps is None:
            return THREAT_MODELS[self.threat_model]
        eps = parse_budget(self.eps, "--eps")
        check_budget(eps, self.threat_model, IMAGE_DIM, "--eps")
        return eps

    def benchmark_kwargs(self, eps: float) -> dict[str, Any]:
        """:func:`benchmark`'s arguments of this configuration (``eps``: :meth:`budget`)."""
        return dict(threat_model=self.threat_model, eps=eps, seed=self.seed, steps=self.steps,
                    eot_samples=self.eot_samples, n_target_classes=self.targets,
                    target_eot_samples=self.target_eot_samples, late_target_eot_samples=self.late_target_eot_samples,
                    cascade_after=self.cascade_after,
                    cascade_margin=self.cascade_margin, refine_margin=self.refine_margin,
                    decision_samples=self.decision_samples, randomness=self.randomness, precision=self.precision,
                    model_name=self.name or self.model, offset=self.offset, part_size=self.part_size)

    def parts_dir(self, model_digest: str | None = None) -> Path:
        """Where this run's finished parts live: ``$RATZOO_BENCHMARK_PARTS/<key>/<model>``
        (default ``$RATZOO_CACHE/benchmark``, i.e. ``~/.cache/ratzoo/benchmark``; a variable of
        its own so that pointing the parts into a repository never moves the dataset cache
        there; delete it to clear them), the key hashing every field that defines the
        measurement and ``<model>`` the measured model's
        :func:`~ratzoo.identity.model_identity` digest (None: the key's folder itself), so a
        changed model never reuses another's parts. ``n`` is not in the key: part j is the same
        images and seed whatever n, so a run of the first 100 images reuses the first part of a
        run of 1000 (and the other way round)."""
        ident = [self.budget() if f.name == "eps" else getattr(self, f.name) for f in dataclasses.fields(self)
                 if f.metadata["key"] == "always"
                 or (f.metadata["key"] == "unless_default" and getattr(self, f.name) != f.default)]
        from ..data import cache_dir

        digest = folder_key(ident)
        parts = os.environ.get("RATZOO_BENCHMARK_PARTS")
        key = (Path(parts) if parts else cache_dir() / "benchmark") / digest
        return key / model_digest if model_digest else key


def build_parser() -> argparse.ArgumentParser:
    """The CLI, one flag per :class:`BenchmarkConfig` field."""
    return cli.parser(
        "benchmark", BenchmarkConfig,
        "Benchmark any classifier (randomized or not) with APGD-CE + APGD-T, EOT for randomized "
        f"models, judged by the {DEFAULT_DECISION_SAMPLES}-draw decision rule; writes a record and optionally a "
        "leaderboard entry.",
        epilog="example: python -m ratzoo benchmark --model rat --threat-model Linf --eps 8/255 --n 1000 "
               "--out rat.json --resume")


_WORKER = "RATZOO_BENCHMARK_WORKER"


def _cpu_count() -> int:
    """Cores this process may use (``os.process_cpu_count`` is Python >= 3.13 only)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclasses.dataclass
class _Process:
    """Where this process stands in a run: its torchrun ``rank`` of ``world``, or ``worker``, a
    process this CLI started to share the parts (it never writes the record), and its layout."""

    world: int
    rank: int
    worker: str | None
    device: str
    procs: int
    threads: int

    @property
    def who(self) -> str:
        return f"worker {self.worker}" if self.worker else f"rank {self.rank}"

    @property
    def lead(self) -> bool:
        """Whether this process speaks for the run (notes, the record): rank 0, not a worker."""
        return self.rank == 0 and not self.worker


def _start_process(cfg: BenchmarkConfig) -> _Process:
    """Join torchrun's process group if there is one; choose the CPU processes and threads."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    device = cli.device(cfg.device)
    if world > 1:
        import torch.distributed as dist

        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    worker = os.environ.get(_WORKER)
    procs = 1 if world > 1 or worker or not device.startswith("cpu") else cfg.procs or _cpu_count()
    threads = cfg.threads or (1 if procs > 1 else 0)
    cli.set_threads(threads)
    return _Process(world, rank, worker, device, procs, threads)


def _open_parts(cfg: BenchmarkConfig, proc: _Process, identity: dict[str, Any], n: int) -> Parts:
    """This run's parts store, in the folder of this command and this model (its identity written
    beside the parts, and a note when the folder's siblings hold another model's parts)."""
    folder = cfg.parts_dir(identity["digest"])
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / IDENTITY_FILE).exists():  # allow_nan: a user's config or a broken model's parts may hold NaN
        write_json(folder / IDENTITY_FILE, identity, allow_nan=True)
    others = sorted(d.name for d in folder.parent.iterdir() if d != folder and any(d.glob("part_*.json")))
    if others and proc.lead:
        print(f"note: {folder.parent} also holds parts of this command measured on another model ({', '.join(others)}); "
              f"they are not reused: this model's weights, config, source or behaviour differ "
              f"({IDENTITY_FILE} in each folder says what was measured)", file=sys.stderr)
    return Parts(folder, n, cfg.part_size)


def _measure_parts(cfg: BenchmarkConfig, proc: _Process, store: Parts, mine: list[int], model: nn.Module,
                   x: torch.Tensor, y: torch.Tensor, common: dict[str, Any]) -> dict[int, dict[str, Any]] | None:
    """Measure the parts ``mine`` that no other process holds or finished, saving each as it
    ends; the parts this process measured, or None when the model or data refuse the arguments."""
    from ..progress import StepBar

    measured: dict[int, dict[str, Any]] = {}

    def keep(j: int, part: dict[str, Any]) -> None:
        store.save(j, part)
        measured[j] = part

    total = len(store.ranges)
    for j, _, _ in store.unclaimed(mine):  # skips the parts another process measures (or just did)
        bar = None if cfg.no_progress or proc.worker else StepBar(f"part {j + 1}/{total}")
        try:
            rec = benchmark(model, x, y, **common, only_parts=[j], on_part=keep,
                            progress=bar.update if bar is not None else None)
        except ValueError as e:  # arguments this model or data refuse (checked before any attack runs)
            print(f"\nerror: {e}", file=sys.stderr)
            return None
        if bar is not None:
            bar.close()
        print(f"[{proc.who}] part {j + 1}/{total}: robust {rec.robust_accuracy:.3f} of {rec.n} "
              f"({rec.elapsed_s:.0f} s)", file=sys.stderr, flush=True)
    return measured


def _gather(proc: _Process, measured: dict[int, dict[str, Any]]) -> list[dict[int, dict[str, Any]]] | None:
    """Every torchrun rank's measured parts, on rank 0 (None on the other ranks); this process's
    alone without torchrun."""
    if proc.world == 1:
        return [measured]
    import torch.distributed as dist

    gathered: list[dict[int, dict[str, Any]]] | None = [{} for _ in range(proc.world)] if proc.rank == 0 else None
    dist.gather_object(measured, gathered, dst=0)  # rank 0 gets every rank's per-image outcomes
    dist.destroy_process_group()
    return gathered


def _await_parts(cfg: BenchmarkConfig, proc: _Process, store: Parts, parts: dict[int, dict[str, Any]],
                 helpers: list[subprocess.Popen]) -> int | None:
    """Wait for the helper processes, then (``--wait``) for the parts other processes measure;
    None once every part is in ``parts``, else the exit code to return now."""
    for h in helpers:
        if h.wait():
            print(f"error: a helper process exited with {h.returncode}; rerun with --resume to finish", file=sys.stderr)
            return 3
    parts.update(store.finished())
    while not all(j in parts for j, _, _ in store.ranges):  # parts another process is measuring
        if not cfg.wait:
            print(f"[rank {proc.rank}] the other parts are being measured by another process; the process that "
                  f"finishes the last part writes the record (or rerun with --resume --wait)", file=sys.stderr)
            return 0
        time.sleep(5)
        parts.update(store.finished())
    return None


def _sanity(cfg: BenchmarkConfig, rec: Record, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
            parts: dict[int, dict[str, Any]], common: dict[str, Any]) -> None:
    """``--sanity``: Carlini et al.'s checks on the first part's images, into the record's ``extra``."""
    from ..sanity import benchmark_checks

    m = min(len(x), PART_SIZE)
    rec.extra["sanity"] = benchmark_checks(
        model, x[:m], y[:m], rec, base_part=parts.get(0) if cfg.part_size == m else None,
        **{k: v for k, v in common.items() if k not in ("model_name", "offset", "part_size")})
    for c in rec.extra["sanity"]:
        print(f"[{'ok' if c['passed'] else 'FLAG'}] {c['check']}: {c['message']}", file=sys.stderr)


def _publish(cfg: BenchmarkConfig, rec: Record, name: str) -> None:
    """Write the record (``--out``, else stdout), update ``--leaderboard``, print the summary."""
    if cfg.out:
        rec.save(cfg.out)
        print(f"wrote {cfg.out}", file=sys.stderr)
    else:
        print(json.dumps(rec.to_json(), indent=2))
    if cfg.leaderboard:
        from ..zoo import entries

        entry = entries().get(cfg.model)
        link = f"checkpoints/{entry.bundled}/README.md" if entry is not None and entry.bundled else None
        update_leaderboard(cfg.leaderboard, leaderboard_entry(rec, link=link, record_path=cfg.out))
        print(f"updated {cfg.leaderboard}", file=sys.stderr)
    lo, hi = rec.robust_accuracy_ci95
    print(f"{name}: clean {rec.clean_accuracy:.4f}, robust {rec.robust_accuracy:.4f} (95% CI {lo:.4f}-{hi:.4f}), "
          f"one draw {rec.single_draw_accuracy:.4f}, n={rec.n}, {rec.elapsed_s:.0f} s", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (0 ok, 2 bad arguments, 3 model/data error)."""
    import numpy as np

    from ..data import to_tensor

    cfg = BenchmarkConfig(**vars(build_parser().parse_args(argv)))
    try:
        eps = cfg.budget()
    except ValueError as e:
        print(f"error: {e}\n(see python -m ratzoo benchmark --help)", file=sys.stderr)
        return 2
    proc = _start_process(cfg)
    try:
        model = cli.load_model(cfg.model, proc.device)
        xs, ys = cli.load_data("test", cfg.data_dir)
    except cli.CommandError as e:
        return e.report()
    x = to_tensor(np.array(xs[cfg.offset: cfg.offset + cfg.n])).to(proc.device)
    y = torch.from_numpy(np.array(ys[cfg.offset: cfg.offset + cfg.n])).long().to(proc.device)
    n = len(x)
    if n < cfg.n:
        print(f"warning: only {n} images from offset {cfg.offset}", file=sys.stderr)
    identity = model_identity(model, cfg.model)
    store = _open_parts(cfg, proc, identity, n)
    all_parts = store.ranges
    parts = store.finished()
    if len(parts) == len(all_parts) and proc.lead:
        print(f"[{proc.who}] all {len(parts)} parts of this run were measured before, on this same model "
              f"({store.folder}): the record is rebuilt from them, no attack runs (delete the folder to measure "
              f"again)", file=sys.stderr)
    elif parts and not cfg.resume and proc.rank == 0 and proc.world == 1:
        print(f"error: {len(parts)} of the {len(all_parts)} parts of this exact run, on this same model, are finished "
              f"in {store.folder}; pass --resume to reuse them (or delete the folder to start over)", file=sys.stderr)
        return 2

    name = cfg.name or cfg.model
    common = cfg.benchmark_kwargs(eps)
    rnd = randomness_of(model, x, cfg.randomness)
    print(f"[{proc.who}] {name}: {rnd.kind}; {cfg.threat_model} eps {eps_text(cfg.threat_model, eps)}; "
          f"{len(all_parts)} parts of {cfg.part_size}; {len(parts)} already done ({store.folder})", file=sys.stderr)
    mine = [j for j, _, _ in all_parts if j % proc.world == proc.rank and j not in parts]
    procs = min(proc.procs, len(mine))
    layout = {"processes": max(procs, 1) * proc.world, "threads": torch.get_num_threads()}
    if not proc.worker:
        print(f"[{proc.who}] layout: {layout['processes']} process(es) x {layout['threads']} thread(s) on "
              f"{proc.device}", file=sys.stderr, flush=True)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    helpers = [subprocess.Popen([sys.executable, "-m", "ratzoo", "benchmark", *argv_list, "--resume", "--threads",
                                 str(proc.threads or 1)], env={**os.environ, _WORKER: str(k)})
               for k in range(1, procs)]
    measured = _measure_parts(cfg, proc, store, mine, model, x, y, common)
    if measured is None:
        return 2
    gathered = _gather(proc, measured)
    if gathered is None or proc.worker:
        return 0
    for got in gathered:
        parts.update(got)
    if (code := _await_parts(cfg, proc, store, parts, helpers)) is not None:
        return code
    rec = benchmark(model, x, y, **common, parts=parts)
    rec.elapsed_s = round(sum(p.get("elapsed_s", 0.0) for p in parts.values()), 3)
    rec.extra.update(dataset_note="CIFAR-10 test split" + (" (JPEG copy)" if cfg.data_dir or os.environ.get("RATZOO_CIFAR10") else ""),
                     command="python -m ratzoo benchmark " + " ".join(argv_list), layout=layout,
                     model_identity=identity)
    if cfg.sanity:
        _sanity(cfg, rec, model, x, y, parts, common)
    _publish(cfg, rec, name)
    return 0


if __name__ == "__main__":  # `python -m ratzoo.commands.benchmark`: the command has one entry point, the one
    # its record's `command` names
    sys.exit("run it as: python -m ratzoo benchmark ARGS (see python -m ratzoo benchmark --help)")
