"""Reproduce the paper's experiments on the zoo: ``python -m train.experiments``.

One command measures everything the README and the model cards show, with
``ratzoo.evaluate`` and its decision rule (EOT prediction over 100 fresh draws):

- ``table``: for each model, on the first ``--n`` test images: clean accuracy; FGSM and
  PGD-20 Linf 8/255; PGD-20 L2 0.5; APGD-CE Linf 8/255; C&W-L2 (accuracy at L2 0.25 /
  0.5 / 1.0 and the median minimal norm, on ``--n-cw`` images). Noisy models are attacked
  with EOT (``--eot-samples`` draws per step).
- ``fig3``: accuracy vs Linf eps (2/255 .. 32/255) for FGSM and PGD-20 (paper's Figure 3).
- ``fig4``: accuracy vs number of EOT samples (1 .. 50) for FGSM, PGD-20 and C&W
  (paper's Figure 4).
- ``fig2``: C&W-L2 on ``--n-fig2`` images (default 100) for the paper's Figure 2 (where its examples lie
  relative to the Linf ball), for models whose table record lacks per-image Linf norms
  (``--stages fig2 --models rn,rat,lerat``; not in the default stages).
- ``table2``: the paper's Table 2 Linf setting: PGD-10 at eps 0.3 on the paper's [-1, 1]
  input scale, i.e. eps 0.15 (38/255) and step 0.01 on ours, with EOT-50 (``--n-table2``
  images). Its L2 column is read off the table's C&W record (images C&W does not fool).
- ``margin`` (not in the paper): C&W-L2 with a confidence margin ``--cw-kappa`` (default 0.25 and 1,
  in log-mean-softmax units) on ``--n-cw-margin`` images, to test whether the table's C&W
  (kappa 0) is weak against noisy models because its minimal examples sit on the boundary.
- Figure 5 (C&W norm distributions) and Table 2 are read off the records above by
  ``python -m train.report``, which also writes the plots, the README table and the cards.

The sample sizes (``--n*``) meet the zoo's "at least 1,000 images" for the table and keep the
sweeps to a few hundred; on the 2-core development CPU the whole set took about 16 core-hours
(the total on the README's "Measuring took" line, which sums the records' elapsed times), most
of it C&W and APGD on the noisy models. Each record states its n and its 95% confidence interval.

Every measurement is one JSON record in ``checkpoints/results/records/``; a record that
exists for the same images and attack arguments is not measured again, so the command
resumes after a kill (one with another ``n`` or other arguments is re-measured and replaced). With ``--shard K`` a
record of more than K images is measured in parts of K images (images ``[0, K)``,
``[K, 2K)``, ...; the part at offset ``o`` uses seed ``--seed + o``) that are kept under
``$RATZOO_CACHE/experiment_parts`` (outside the checkout) and merged into the record
(``ratzoo.evaluation.merge_records``) once all exist, so a kill loses at most one part and
two processes can share one record. A record of at most K images is identical with and
without ``--shard``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ratzoo import cli, zoo
from ratzoo._io import write_json
from ratzoo.judge import DEFAULT_EOT
from ratzoo.parts import BY_IMAGES, Parts, folder_key

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "checkpoints" / "results"
MODELS = tuple(zoo.trained_names())  # the registry's order (a defense entry trains nothing)


def _kappas(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 1 or 0.5,1, got {text!r}")
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"margins must be finite and > 0 (kappa = 0 is the table's cw_l2), "
                                         f"got {text!r}")
    return values


@dataclasses.dataclass
class ExperimentsConfig:
    """``python -m train.experiments``'s configuration: one field per flag (``--n-cw`` for ``n_cw``)."""

    models: str = cli.option(",".join(MODELS), "zoo names, comma-separated")
    stages: str = cli.option("table,table2,margin,fig3,fig4", "which stages to run")
    n: int = cli.option(1000, "test images for the table", type=cli.positive_int("--n"))
    n_apgd: int = cli.option(1000, "test images for APGD-CE in the table", type=cli.positive_int("--n-apgd"))
    n_cw: int = cli.option(1000, "test images for C&W in the table", type=cli.positive_int("--n-cw"))
    n_cw_margin: int = cli.option(200, "test images for C&W with a margin (kappa > 0)",
                                  type=cli.positive_int("--n-cw-margin"))
    cw_kappa: tuple[float, ...] = cli.option((0.25, 1.0), "C&W confidence margins of the margin stage, comma-separated",
                                             type=_kappas)
    n_fig2: int = cli.option(100, "test images of the fig2 stage (C&W with per-image Linf and L2 norms, the paper's "
                                  "Figure 2)", type=cli.positive_int("--n-fig2"))
    n_table2: int = cli.option(500, "test images for the paper's Table 2 Linf setting",
                               type=cli.positive_int("--n-table2"))
    table2_eot_samples: int = cli.option(50, "EOT draws of the Table 2 setting (paper: 50)",
                                         flags=("--table2-eot-samples", "--table2-eot"),
                                         type=cli.positive_int("--table2-eot-samples"))
    n_sweep: int = cli.option(300, "test images for the eps and EOT sweeps", type=cli.positive_int("--n-sweep"))
    n_cw_sweep: int = cli.option(50, "test images for the C&W EOT sweep", type=cli.positive_int("--n-cw-sweep"))
    cw_sweep_max_eot_samples: int = cli.option(20, "largest EOT of the C&W sweep (0 = no C&W sweep)",
                                               flags=("--cw-sweep-max-eot-samples", "--cw-sweep-max-eot"),
                                               type=cli.nonnegative_int("--cw-sweep-max-eot-samples"))
    threads: int = cli.option(0, "torch CPU threads (0 = default)", type=cli.nonnegative_int("--threads"))
    eot_samples: int = cli.option(DEFAULT_EOT, "EOT draws per attack step against noisy models",
                                  flags=("--eot-samples", "--eot"), type=cli.positive_int("--eot-samples"))
    apgd_steps: int = cli.option(50, "APGD-CE iterations of the table", type=cli.positive_int("--apgd-steps"))
    cw_steps: int = cli.option(40, "C&W iterations per binary-search step (paper: 40)",
                               type=cli.positive_int("--cw-steps"))
    cw_search: int = cli.option(5, "C&W binary-search steps (paper: 9)", type=cli.positive_int("--cw-search"))
    data_dir: str = cli.option("", "CIFAR-10 folder (default $RATZOO_CIFAR10 or the Hub)")
    seed: int = cli.option(0, "seed of the attacks and decisions (with --shard, the part at offset o: seed + o)")
    only: str = cli.option("", "run only these record keys (comma-separated)")
    shard: int = cli.option(0, "measure records of more images than this in resumable parts of this many images "
                               "(0 = one run per record)", type=cli.nonnegative_int("--shard"))


def build_parser() -> argparse.ArgumentParser:
    """The CLI, one flag per :class:`ExperimentsConfig` field."""
    p = cli.ArgumentParser(prog="python -m train.experiments", description=__doc__.split("\n\n")[0])
    cli.add_options(p, ExperimentsConfig)
    return p


def specs(cfg: ExperimentsConfig) -> list[tuple[str, str, int, dict[str, Any]]]:
    """(stage, record key, n, evaluate kwargs) for every measurement, cheapest first."""
    e = cfg.eot_samples
    out: list[tuple[str, str, int, dict[str, Any]]] = [
        ("table", "clean", cfg.n, dict(attack="none")),
        ("table", "fgsm_linf_8", cfg.n, dict(attack="fgsm", eps=8 / 255, eot_samples=e)),
        ("table", "pgd20_linf_8", cfg.n, dict(attack="pgd-linf", eps=8 / 255, steps=20, eot_samples=e)),
        ("table", "pgd20_l2_0.5", cfg.n, dict(attack="pgd-l2", eps=0.5, steps=20, eot_samples=e)),
        ("table", "apgd_ce_linf_8", cfg.n_apgd, dict(attack="apgd-ce", eps=8 / 255, steps=cfg.apgd_steps,
                                                      eot_samples=e)),
        ("table", "cw_l2", cfg.n_cw, dict(attack="cw-l2", steps=cfg.cw_steps, search_steps=cfg.cw_search,
                                           eot_samples=e)),
    ]
    # C&W with a confidence margin: pushes its minimal examples past the attack's own decision
    # boundary, which kappa = 0 leaves them on (and fresh draws undo); not in the paper
    for kappa in cfg.cw_kappa:
        out.append(("margin", f"cw_l2_kappa{kappa:g}", cfg.n_cw_margin,
                    dict(attack="cw-l2", steps=cfg.cw_steps, search_steps=cfg.cw_search, kappa=kappa,
                         eot_samples=e)))
    # the paper's Figure 2 needs each C&W example's Linf and L2 norm; the table's cw_l2 records of
    # the noisy models predate per-image Linf norms and cost ~2 core-hours each, so a smaller sample
    out.append(("fig2", "cw_l2_fig2", cfg.n_fig2, dict(attack="cw-l2", steps=cfg.cw_steps,
                                                        search_steps=cfg.cw_search, eot_samples=e)))
    # the paper's Table 2 (Linf): eps 0.3 and step 0.02 on inputs in [-1, 1] = 0.15 / 0.01 on [0, 1]
    out.append(("table2", "paper_pgd10_linf_0.15", cfg.n_table2,
                dict(attack="pgd-linf", eps=0.15, steps=10, step_size=0.01, eot_samples=cfg.table2_eot_samples)))
    # sweeps use their own n throughout (the table's 8/255 and EOT-20 points are not mixed in)
    for k in (2, 4, 8, 16, 32):
        out.append(("fig3", f"fgsm_linf_{k}_sweep" if k == 8 else f"fgsm_linf_{k}", cfg.n_sweep, dict(attack="fgsm", eps=k / 255, eot_samples=e)))
        out.append(("fig3", f"pgd20_linf_{k}_sweep" if k == 8 else f"pgd20_linf_{k}", cfg.n_sweep,
                    dict(attack="pgd-linf", eps=k / 255, steps=20, step_size=max(k / 4, 0.5) / 255, eot_samples=e)))
    for k in (1, 5, 10, 20, 50):
        out.append(("fig4", f"fgsm_linf_8_eot{k}", cfg.n_sweep, dict(attack="fgsm", eps=8 / 255, eot_samples=k)))
        out.append(("fig4", f"pgd20_linf_8_eot{k}", cfg.n_sweep,
                    dict(attack="pgd-linf", eps=8 / 255, steps=20, eot_samples=k)))
        if k <= cfg.cw_sweep_max_eot_samples:
            out.append(("fig4", f"cw_l2_eot{k}", cfg.n_cw_sweep,
                        dict(attack="cw-l2", steps=cfg.cw_steps, search_steps=cfg.cw_search, eot_samples=k)))
    return out


def record_path(model: str, key: str) -> Path:
    return RESULTS / "records" / f"{model}__{key}.json"


def up_to_date(rec: dict[str, Any], n: int, kw: dict[str, Any]) -> bool:
    """Whether an existing record is this measurement: same first ``n`` images, same attack
    and attack arguments (EOT draws are not compared for a deterministic model, whose EOT
    sweep points are copies of its single-draw record). A record that is not is measured
    again and replaced when the new one is done (e.g. after raising ``--n-cw``)."""
    if int(rec.get("first_n", rec.get("n", -1))) != n or rec.get("attack") != kw.get("attack"):
        return False
    params = rec.get("params") or {}
    for k, v in kw.items():
        if k == "attack" or (k == "eot_samples" and not rec.get("randomized", True)):
            continue
        if params.get(k) != v:
            return False
    return True


def parts_dir() -> Path:
    """Where ``--shard`` keeps finished parts: resume state, outside the checkout."""
    from ratzoo.data import cache_dir

    return cache_dir() / "experiment_parts"


def part_folder(model: str, key: str, kw: dict[str, Any], seed: int, sha256: str | None) -> Path:
    """One folder per measurement: the attack arguments, seed and weights are in its name,
    so changing any of them never merges stale parts."""
    return parts_dir() / f"{model}__{key}__{folder_key([kw, seed, sha256], 12)}"


def _measure(model: Any, name: str, x: torch.Tensor, y: torch.Tensor, seed: int, kw: dict[str, Any]) -> dict[str, Any]:
    from ratzoo.evaluation import evaluate

    return evaluate(model, x, y, seed=seed, model_name=name, progress=sys.stderr.isatty(), **kw)


def _measure_sharded(model: Any, name: str, key: str, xs: Any, ys: Any, n: int, shard: int, seed: int,
                     kw: dict[str, Any]) -> dict[str, Any] | None:
    """Measure images ``[0, n)`` in parts of ``shard`` images, skipping finished parts and
    parts another process is measuring; the merged record, or None while parts are missing."""
    from ratzoo import zoo
    from ratzoo.data import to_tensor
    from ratzoo.evaluation import merge_records

    entry = zoo.entries().get(name)
    store = Parts(part_folder(name, key, kw, seed, entry.sha256 if entry else None), n, shard, name=BY_IMAGES,
                  indent=1)
    for j, start, stop in store.unclaimed():  # skips the parts another process measures, or finished
        print(f"   part [{start}, {stop}) seed {seed + start} -> {store.path(j)}", file=sys.stderr, flush=True)
        t0 = time.time()
        rec = _measure(model, name, to_tensor(xs[start:stop]), torch.from_numpy(ys[start:stop].copy()),
                       seed + start, kw)
        rec["offset"] = start
        store.save(j, rec)
        print(f"   part robust {100 * rec['robust_accuracy']:.1f}% ({time.time() - t0:.0f}s)",
              file=sys.stderr, flush=True)
    parts = store.finished()
    if len(parts) < len(store.ranges):
        return None  # the process measuring the last part merges
    return merge_records([parts[j] for j, _, _ in store.ranges])


def main(argv: list[str] | None = None) -> int:
    cfg = ExperimentsConfig(**vars(build_parser().parse_args(argv)))
    cli.set_threads(cfg.threads)
    import ratzoo
    from ratzoo.data import describe_source

    xs, ys = ratzoo.load_cifar10("test", root=cfg.data_dir or None)
    run = _Run(cfg, xs, ys, describe_source(cfg.data_dir or None),
               "python -m train.experiments " + " ".join(argv if argv is not None else sys.argv[1:]))
    for stage, key, n, kw in _todo(cfg):
        for name in cfg.models.split(","):
            _record(run, name, stage, key, min(n, len(xs)), kw)
    return 0


@dataclasses.dataclass(frozen=True)
class _Run:
    """What every record of one command shares: its configuration, the test split, how the
    dataset and the command are stated."""

    cfg: ExperimentsConfig
    xs: Any
    ys: Any
    dataset: str
    command: str


def _todo(cfg: ExperimentsConfig) -> list[tuple[str, str, int, dict[str, Any]]]:
    """The :func:`specs` of ``--stages``, only those of ``--only`` when given."""
    stages = set(cfg.stages.split(","))
    only = set(filter(None, cfg.only.split(",")))
    return [s for s in specs(cfg) if s[0] in stages and (not only or s[1] in only)]


def _record(run: _Run, name: str, stage: str, key: str, n: int, kw: dict[str, Any]) -> None:
    """Measure and write model ``name``'s record ``key`` unless an up-to-date one exists."""
    import ratzoo

    path = record_path(name, key)
    if path.is_file() and up_to_date(json.loads(path.read_text()), n, kw):
        return
    model = ratzoo.load(name)
    single_draw = not ratzoo.is_randomized(model) and kw.get("eot_samples", 1) > 1 and stage == "fig4"
    if single_draw and _copy_single_draw(path, name, key):
        return
    print(f"== {name} {key} (n={n}) {json.dumps({k: v for k, v in kw.items()})}", file=sys.stderr, flush=True)
    t0 = time.time()
    rec = _measure_first(run, model, name, key, n, kw)
    if rec is None:
        print("   other parts are being measured by another process, which will write the record",
              file=sys.stderr, flush=True)
        return
    rec.update(stage=stage, key=key, dataset=run.dataset, split="test", first_n=n, command=run.command)
    _write(path, rec)
    print(f"   robust {100 * rec['robust_accuracy']:.1f}% clean {100 * rec['clean_accuracy']:.1f}% "
          f"({time.time() - t0:.0f}s in this run, {rec['elapsed_s']:.0f}s in all parts)", file=sys.stderr, flush=True)


def _copy_single_draw(path: Path, name: str, key: str) -> bool:
    """A deterministic model's EOT sweep point is its eot=1 point, measured once: copy that
    record to ``path`` if it exists (whether it did)."""
    src = record_path(name, key.rsplit("_eot", 1)[0] + "_eot1")
    if not src.is_file():
        return False
    rec = json.loads(src.read_text())
    rec["note"] = "deterministic model: identical to eot_samples=1"
    _write(path, rec)
    return True


def _measure_first(run: _Run, model: Any, name: str, key: str, n: int, kw: dict[str, Any]) -> dict[str, Any] | None:
    """The record of the first ``n`` test images: in parts with ``--shard`` (None while another
    process measures some), else in one run."""
    from ratzoo.data import to_tensor

    cfg = run.cfg
    if cfg.shard and n > cfg.shard:
        return _measure_sharded(model, name, key, run.xs, run.ys, n, cfg.shard, cfg.seed, kw)
    return _measure(model, name, to_tensor(run.xs[:n]), torch.from_numpy(run.ys[:n].copy()), cfg.seed, kw)


def _write(path: Path, rec: dict[str, Any]) -> None:
    write_json(path, rec, indent=1, allow_nan=True)


if __name__ == "__main__":
    sys.exit(main())
