"""Every bundled checkpoint: sha256 as registered, loads strictly, and its clean accuracy on
the first 500 test images of the shared copy is within 3 points of its model card (whose
number is the 100-draw decision on the first 1000; measured: 16 draws on these 500 land within
0.8 points of it for rat, lerat and rn (32 draws: 0.6), at half the cost)."""

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
    p = ratzoo.predict_proba(model, x, samples=16 if ratzoo.is_randomized(model) else 1, seed=0)
    acc = (p.label == y).float().mean().item()
    assert abs(acc - card["clean accuracy"]) <= 0.03, (entry.name, acc, card["clean accuracy"])


@pytest.mark.parametrize("entry", BUNDLED, ids=[e.name for e in BUNDLED])
def test_preset_reproduces_the_bundled_checkpoint(entry):
    """`python -m train --preset NAME` trains what is shipped: every training field of the bundled
    config.json (those that define the run, TrainConfig.fingerprint) equals the preset's."""
    from train.config import PRESETS, TrainConfig

    shipped = json.loads((checkpoints_dir() / entry.bundled / "config.json").read_text())["training"]["config"]
    assert shipped["preset"] == entry.name
    want = TrainConfig(**PRESETS[entry.name]).fingerprint()
    diff = {k: (shipped.get(k), v) for k, v in want.items() if shipped.get(k) != v}
    assert diff == {}, f"{entry.name}: (shipped, preset) differ: {diff}"


def test_every_zoo_model_has_its_preset():
    from train.config import PRESETS

    for e in entries().values():
        if e.trained:
            assert PRESETS[e.name]["method"] == e.method, e.name
        else:  # an inference-only defense borrows its base's weights: nothing to train
            assert e.name not in PRESETS and PRESETS[e.base]


def test_every_literature_zoo_name_is_an_entry_or_a_preset():
    """A planned name of ``zoo.json``'s ``literature`` can be trained as it is named
    (``python -m train --preset NAME``) until its entry comes with the checkpoint."""
    from train.config import PRESETS, TrainConfig

    from ratzoo.zoo import literature

    names = {d["defense"]: d["zoo"] for d in literature()}
    assert [n for zoo in names.values() for n in zoo if n not in entries() and n not in PRESETS] == []
    for defense in ("rse", "pni"):  # the trained defenses: their preset trains that very model
        assert [TrainConfig(**PRESETS[n]).noise_kind for n in names[defense]] == [defense]


def test_register_writes_the_pin_into_the_registry_data(tmp_path):
    """`python -m train.register` sets the sha256 in zoo.json (data) and edits no source file."""
    import shutil

    from ratzoo import zoo
    from train.register import pin

    registry = tmp_path / "zoo.json"
    shutil.copy(zoo.REGISTRY_FILE, registry)
    sources = {p: p.read_bytes() for p in zoo.REGISTRY_FILE.parent.glob("*.py")}
    (tmp_path / "ck" / "rat").mkdir(parents=True)
    (tmp_path / "ck" / "rat" / "model.safetensors").write_bytes(b"retrained weights")
    assert pin(["rat"], registry=registry, checkpoints=tmp_path / "ck") == {"rat": sha256_file(tmp_path / "ck" / "rat" / "model.safetensors")}
    after = zoo.read_registry(registry)
    assert after["rat"].sha256 == sha256_file(tmp_path / "ck" / "rat" / "model.safetensors")
    assert {n: e for n, e in after.items() if n != "rat"} == {n: e for n, e in entries().items() if n != "rat"}
    assert {p: p.read_bytes() for p in sources} == sources
    with pytest.raises(KeyError, match="not a bundled model"):
        pin(["nope"], registry=registry, checkpoints=tmp_path / "ck")
