"""The committed leaderboard records reproduce: today's code, run on a record's first part with
the record's own parameters, gives back its per-image verdicts (``-m slow``: minutes of CPU).

A change to the attacks, the seeding or the part layout that moves a committed number shows up
here before a re-measured zoo does. Deterministic models only: their verdicts depend on the
attack's seeded random start alone, so they repeat on this CPU; a noisy model's verdicts near the
boundary can move with the order of float sums on another machine.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ratzoo
from ratzoo import Record
from ratzoo.benchmarking import ensemble_params
from ratzoo.data import to_tensor

from conftest import REPO_ROOT

RESULTS = REPO_ROOT / "checkpoints" / "results" / "benchmark"


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["standard_L2", "at_Linf"])
def test_a_committed_records_first_part_reproduces(entry, cifar_root) -> None:
    rec = Record.load(RESULTS / f"{entry}.json")
    params = rec.params
    assert {k: params[k] for k in ensemble_params()} == ensemble_params(), "a record of today's ensemble"
    size = params["part_size"]
    xs, ys = ratzoo.load_cifar10("test", root=cifar_root)
    x = to_tensor(np.array(xs[rec.offset: rec.offset + size]))
    y = torch.from_numpy(np.array(ys[rec.offset: rec.offset + size])).long()
    model = ratzoo.load(rec.model).eval()
    kw = {k: params[k] for k in ensemble_params() if k not in ("ensemble", "targets_judged", "threat_model", "eps")}
    again = ratzoo.benchmark(model, x, y, threat_model=rec.threat_model, eps=rec.eps, seed=rec.seed, part_size=size,
                             offset=rec.offset, **kw)
    assert not again.randomized
    want = {k: v[:size] for k, v in rec.per_image.items()}
    for key in ("clean_correct", "robust", "robust_after_apgd_ce", "broken_by", "target_rank"):
        got = again.per_image[key]
        diff = [i for i, (a, b) in enumerate(zip(got, want[key])) if a != b]
        assert diff == [], f"{entry} {key}: images {diff} differ from the committed record ({json.dumps(params)})"
