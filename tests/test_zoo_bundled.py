"""Every bundled checkpoint: sha256 as registered, loads strictly, and its clean accuracy on
the first 500 test images of the shared copy is within 3 points of its model card."""

from __future__ import annotations

import json

import pytest
import torch

import ratzoo
from ratzoo.checkpoint import sha256_file
from ratzoo.data import to_tensor
from ratzoo.zoo import checkpoints_dir, entries

BUNDLED = [e for e in entries().values() if e.bundled and (checkpoints_dir() / e.bundled / "model.safetensors").is_file()]


def test_registry_records_sha_of_every_bundled_checkpoint():
    for e in entries().values():
        folder = checkpoints_dir() / (e.bundled or "")
        if e.bundled and (folder / "model.safetensors").is_file():
            assert e.sha256 == sha256_file(folder / "model.safetensors"), e.name
            assert (folder / "model.safetensors").stat().st_size < 5 * 2**20, "bundled checkpoints stay small"


@pytest.mark.parametrize("entry", BUNDLED, ids=[e.name for e in BUNDLED])
def test_bundled_clean_accuracy_matches_card(entry, cifar_root):
    model = ratzoo.load(entry.name)
    cfg = json.loads((checkpoints_dir() / entry.bundled / "config.json").read_text())
    assert cfg["training"].get("command"), "the exact training command is recorded"
    card = {m["name"]: m["value"] for m in cfg["results"]["metrics"]}
    xs, ys = ratzoo.load_cifar10("test", root=cifar_root)
    x, y = to_tensor(xs[:500]), torch.from_numpy(ys[:500].copy())
    p = ratzoo.predict_proba(model, x, samples=32 if ratzoo.is_randomized(model) else 1, seed=0)
    acc = (p.label == y).float().mean().item()
    assert abs(acc - card["clean accuracy"]) <= 0.03, (entry.name, acc, card["clean accuracy"])
