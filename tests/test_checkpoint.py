"""Checkpoint folders: round trip, strict loading errors, the zoo registry and model cards."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import ratzoo
from ratzoo import CheckpointError, load_checkpoint, noise_control, save_checkpoint
from ratzoo import zoo
from ratzoo.checkpoint import CARD, CONFIG, WEIGHTS, sha256_file
from ratzoo.models import RandomizedClassifier
from ratzoo.zoo import ZooEntry

ZOO_NAMES = tuple(zoo.trained_names())  # the registry's models with weights of their own
RESULTS = {
    "dataset": "CIFAR-10",
    "split": "test",
    "metrics": [
        {"name": "clean accuracy", "type": "accuracy", "value": 0.8123, "n": 500, "ci95": [0.77, 0.84]},
        {"name": "PGD-20 Linf 8/255 (EOT-10)", "type": "robust_accuracy", "value": 0.4, "n": 500},
    ],
}


def _set_config(folder: Path, **changes) -> None:
    path = folder / CONFIG
    cfg = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "model":
            cfg["model"].update(value)
        else:
            cfg[key] = value
    path.write_text(json.dumps(cfg))


def _rehash(folder: Path) -> None:
    """Make config.json agree with the (tampered) weights, to reach the checks behind the sha."""
    _set_config(folder, weights_sha256=sha256_file(folder / WEIGHTS))


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(noise_kind="fixed", noise_sigma=0.4),
        dict(noise_kind="learned", noise_sigma=0.4, noise_layer=0),
        dict(architecture="wide_resnet28_10", width=1, dropout=0.1),
    ],
    ids=["standard", "fixed", "learned-layer0", "wrn"],
)
def test_round_trip_identical_logits(tmp_path: Path, overrides: dict) -> None:
    torch.manual_seed(0)
    model = ratzoo.build_model(**{"width": 2, **overrides})
    with torch.no_grad():
        for p in model.parameters():  # move away from the init so a lost tensor shows
            p.add_(torch.randn_like(p) * 0.1)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    model.eval()
    folder = save_checkpoint(model, tmp_path / "ck", training={"method": "x"}, results=RESULTS)
    assert sorted(p.name for p in folder.iterdir()) == sorted([WEIGHTS, CONFIG, CARD])
    loaded = load_checkpoint(folder)
    assert not loaded.training, "a loaded model must be in eval() mode"
    assert loaded.config == model.config
    model = model.to(memory_format=torch.channels_last)  # the layout load_checkpoint returns
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad(), noise_control(model, enabled=False), noise_control(loaded, enabled=False):
        assert torch.equal(model(x), loaded(x))
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    if model.noise is not None:
        assert loaded.noise.enabled, "noise must stay ON after loading"
        torch.testing.assert_close(loaded.noise.sigma, model.noise.sigma, rtol=0, atol=0)
        with torch.no_grad(), noise_control(model, seed=1), noise_control(loaded, seed=1):
            assert torch.equal(model(x), loaded(x))


def test_config_records_everything(tmp_path: Path) -> None:
    training = {"method": "rat", "command": "python -m train --preset rat", "config": {"lr": 0.2}}
    folder = save_checkpoint(ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.5),
                             tmp_path / "rat", training=training, results=RESULTS)
    cfg = json.loads((folder / CONFIG).read_text())
    assert cfg["name"] == "rat"
    assert cfg["model"]["noise_kind"] == "fixed" and cfg["model"]["noise_sigma"] == 0.5
    assert cfg["model"]["mean"] == list(ratzoo.models.CIFAR10_MEAN)
    assert cfg["training"] == training and cfg["results"] == RESULTS
    assert cfg["weights_sha256"] == sha256_file(folder / WEIGHTS)


def test_bf16_storage_loads_as_float32(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ratzoo.build_model(width=2).eval()
    folder = save_checkpoint(model, tmp_path / "bf16", dtype=torch.bfloat16)
    assert all(v.dtype in (torch.bfloat16, torch.int64) for v in load_file(folder / WEIGHTS).values())
    loaded = load_checkpoint(folder)
    assert all(v.dtype in (torch.float32, torch.int64) for v in loaded.state_dict().values())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v.to(torch.bfloat16).to(v.dtype), rtol=0, atol=0)


def test_loaded_models_are_channels_last_and_attackable(tmp_path: Path) -> None:
    """load_checkpoint returns channels_last weights (the faster layout, benchmarks/bench_layout.py);
    logits and attacks on plain contiguous images must be those of the default layout, and a
    re-save from a loaded model must work (safetensors needs contiguous tensors)."""
    torch.manual_seed(0)
    model = ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.3).eval()
    folder = save_checkpoint(model, tmp_path / "ck")
    loaded = load_checkpoint(folder)
    convs = [m.weight for m in loaded.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert not all(w.is_contiguous() for w in convs)  # (1x1 kernels are both layouts at once)
    x = torch.rand(8, 3, 32, 32)
    with torch.no_grad(), noise_control(model, seed=3):
        want = model(x)
    with torch.no_grad(), noise_control(loaded, seed=3):
        got = loaded(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    y = want.argmax(1)
    for attack in (ratzoo.attacks.PGD(loaded, eps=8 / 255, steps=3, eot_samples=2, seed=0),
                   ratzoo.attacks.PGDL2(loaded, eps=0.5, steps=3, eot_samples=2, seed=0)):
        adv = attack(x, y)
        assert adv.shape == x.shape and 0 <= adv.min() and adv.max() <= 1
    again = load_file(save_checkpoint(loaded, tmp_path / "again") / WEIGHTS)
    first = load_file(folder / WEIGHTS)
    assert again.keys() == first.keys() and all(torch.equal(again[k], first[k]) for k in first)


def test_saved_files_are_readable_like_ordinary_files(tmp_path: Path) -> None:
    """Atomic writes go through mkstemp (mode 0600); the final files must get the usual
    umask-derived mode, or a shared or bundled checkpoint is unreadable to other users."""
    folder = save_checkpoint(ratzoo.build_model(width=2), tmp_path / "ck")
    (tmp_path / "plain").write_text("x")
    want = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    for name in (WEIGHTS, CONFIG, CARD):
        assert stat.S_IMODE((folder / name).stat().st_mode) == want, name
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "temp files left behind"


def test_resave_replaces_files(tmp_path: Path, make_checkpoint) -> None:
    folder = make_checkpoint("ck", seed=0)
    first = sha256_file(folder / WEIGHTS)
    make_checkpoint("ck", seed=1)
    assert sha256_file(folder / WEIGHTS) != first
    load_checkpoint(folder)  # config and weights agree after the overwrite


# --------------------------------------------------------------------------- strict loading


def _assert_error(folder: Path, match: str, file: Path | None = None, **kw) -> CheckpointError:
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(folder, **kw)
    assert str(file or folder) in str(info.value), f"the message must name the file: {info.value}"
    return info.value


def test_corrupt_weights_fail_the_sha_check(make_checkpoint) -> None:
    folder = make_checkpoint()
    raw = bytearray((folder / WEIGHTS).read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside the tensor data
    (folder / WEIGHTS).write_bytes(bytes(raw))
    err = _assert_error(folder, "does not match", folder / WEIGHTS)
    assert CONFIG in str(err) and "re-download" in str(err)


def test_corrupt_header_is_unreadable(make_checkpoint) -> None:
    folder = make_checkpoint()
    raw = bytearray((folder / WEIGHTS).read_bytes())
    raw[8:40] = b"#" * 32  # garbage in the JSON header
    (folder / WEIGHTS).write_bytes(bytes(raw))
    _rehash(folder)
    _assert_error(folder, "not a readable safetensors file", folder / WEIGHTS)


def test_truncated_weights(make_checkpoint) -> None:
    folder = make_checkpoint()
    raw = (folder / WEIGHTS).read_bytes()
    (folder / WEIGHTS).write_bytes(raw[: len(raw) // 2])
    _assert_error(folder, "sha256", folder / WEIGHTS)  # caught by the recorded sha first
    _rehash(folder)  # and without a sha to compare with: safetensors itself refuses it
    _assert_error(folder, "not a readable safetensors file .* truncated", folder / WEIGHTS)


def test_empty_weights_file(make_checkpoint) -> None:
    folder = make_checkpoint()
    (folder / WEIGHTS).write_bytes(b"")
    _rehash(folder)
    _assert_error(folder, "not a readable safetensors file", folder / WEIGHTS)


def test_wrong_sha_in_config(make_checkpoint) -> None:
    folder = make_checkpoint()
    _set_config(folder, weights_sha256="0" * 64)
    err = _assert_error(folder, "does not match 000000000000... recorded in config.json", folder / WEIGHTS)
    assert "corrupt or was replaced" in str(err)


def test_wrong_expected_sha(make_checkpoint) -> None:
    folder = make_checkpoint()
    _assert_error(folder, "recorded in the registry", folder / WEIGHTS, expected_sha256="f" * 64)
    load_checkpoint(folder, expected_sha256=sha256_file(folder / WEIGHTS))  # the right one passes


def test_wrong_shape(make_checkpoint) -> None:
    folder = make_checkpoint(width=2)
    _set_config(folder, model={"width": 3})  # same keys, other shapes; sha still matches
    err = _assert_error(folder, "shape mismatch", folder / WEIGHTS)
    assert "stem.conv.weight: file (2, 3, 3, 3) vs model (3, 3, 3, 3)" in str(err)


def test_missing_key(make_checkpoint) -> None:
    folder = make_checkpoint()
    state = load_file(folder / WEIGHTS)
    del state["head.fc.bias"]
    save_file(state, folder / WEIGHTS)
    _rehash(folder)
    _assert_error(folder, r"missing keys \['head.fc.bias'\]", folder / WEIGHTS)


def test_unexpected_key(make_checkpoint) -> None:
    folder = make_checkpoint()
    state = load_file(folder / WEIGHTS)
    state["noise.log_sigma"] = torch.zeros(2)  # e.g. a LeRAT file whose config says "none"
    save_file(state, folder / WEIGHTS)
    _rehash(folder)
    _assert_error(folder, r"unexpected keys \['noise.log_sigma'\]", folder / WEIGHTS)


def test_learned_config_with_fixed_weights(make_checkpoint) -> None:
    folder = make_checkpoint(noise_kind="fixed", noise_sigma=0.5)
    _set_config(folder, model={"noise_kind": "learned"})
    _assert_error(folder, r"missing keys \['noise.log_sigma'\]", folder / WEIGHTS)


def test_unknown_architecture(make_checkpoint) -> None:
    folder = make_checkpoint()
    _set_config(folder, model={"architecture": "resnet1000"})
    _assert_error(folder, "invalid model config: unknown architecture 'resnet1000'", folder / CONFIG)


def test_invalid_json(make_checkpoint) -> None:
    folder = make_checkpoint()
    (folder / CONFIG).write_text('{"model": {"architecture": ')
    _assert_error(folder, "not valid JSON", folder / CONFIG)


@pytest.mark.parametrize("content", ['["a list"]', '{"name": "x"}', '{"model": 3}', '{"model": {"width": "wide"}}'])
def test_config_without_a_valid_model_section(make_checkpoint, content: str) -> None:
    folder = make_checkpoint()
    (folder / CONFIG).write_text(content)
    _assert_error(folder, "model", folder / CONFIG)


def test_missing_files(make_checkpoint, tmp_path: Path) -> None:
    folder = make_checkpoint()
    (folder / WEIGHTS).unlink()
    _assert_error(folder, "missing weights file", folder / WEIGHTS)
    (folder / CONFIG).unlink()
    _assert_error(folder, "missing", folder / CONFIG)
    _assert_error(tmp_path / "nowhere", "no such checkpoint folder")


def test_a_failed_load_never_returns_a_partial_model(make_checkpoint) -> None:
    folder = make_checkpoint()
    state = load_file(folder / WEIGHTS)
    state = {k: v for k, v in state.items() if not k.startswith("head.blocks.7")}
    save_file(state, folder / WEIGHTS)
    _rehash(folder)
    with pytest.raises(CheckpointError, match=r"missing keys .*\.\.\."):  # many: the list is cut
        ratzoo.load(folder)


# --------------------------------------------------------------------------- the zoo


@pytest.fixture
def empty_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "zoo"
    folder.mkdir()
    monkeypatch.setenv("RATZOO_CHECKPOINTS", str(folder))
    return folder


def test_load_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        ratzoo.load("nope")
    msg = str(info.value)
    assert "unknown model 'nope'" in msg
    for name in ZOO_NAMES:
        assert name in msg


@pytest.mark.parametrize("entry", list(zoo.entries().values()), ids=zoo.names())
def test_every_registry_entry_has_something_to_load(entry: ZooEntry) -> None:
    """A trained entry ships its weights under its own name, pinned by the registry; a defense
    entry wraps a trained entry with a defense ratzoo knows."""
    from ratzoo.defenses import DEFENSES

    if entry.trained:
        assert entry.bundled == entry.name or entry.hub_repo, entry
        if entry.bundled:
            weights = zoo.REPO_CHECKPOINTS / entry.bundled / WEIGHTS
            assert entry.sha256 == sha256_file(weights), f"{entry.name}: run python -m train.register"
    else:
        assert zoo.entries()[entry.base].trained and entry.defense["name"] in DEFENSES
        assert not entry.bundled and not entry.sha256


def test_load_untrained_zoo_name_is_a_clear_error(empty_zoo: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        ratzoo.load("rat")
    msg = str(info.value)
    assert "no trained checkpoint yet" in msg
    assert str(empty_zoo / "rat" / WEIGHTS) in msg
    assert "python -m train --preset rat" in msg


def test_load_bundled_checkpoint(empty_zoo: Path, make_checkpoint) -> None:
    src = make_checkpoint("rat", noise_kind="fixed", noise_sigma=0.5, results=RESULTS)
    shutil.copytree(src, empty_zoo / "rat")
    model = ratzoo.load("rat")
    assert model.config.noise_kind == "fixed" and ratzoo.is_randomized(model) and not model.training
    assert zoo.card_results("rat") == RESULTS


def test_load_path_wins_over_the_name(empty_zoo: Path, make_checkpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_checkpoint("somewhere", width=3)
    assert ratzoo.load(src).config.width == 3
    assert ratzoo.load(str(src)).config.width == 3
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        ratzoo.load(src.parent / "missing" / "folder")


def test_registry_sha_is_verified(empty_zoo: Path, make_checkpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry pins the repository's own checkpoints (here: the repo dir moved to a temp folder)."""
    monkeypatch.delenv("RATZOO_CHECKPOINTS")
    monkeypatch.setattr(zoo, "REPO_CHECKPOINTS", empty_zoo)
    src = make_checkpoint("tiny")
    shutil.copytree(src, empty_zoo / "tiny")
    good = sha256_file(src / WEIGHTS)
    monkeypatch.setitem(zoo._REGISTRY, "tiny", ZooEntry("tiny", "standard", "test", bundled="tiny", sha256="ab" * 32))
    with pytest.raises(CheckpointError, match="recorded in the registry") as info:
        ratzoo.load("tiny")
    assert str(empty_zoo / "tiny" / WEIGHTS) in str(info.value)
    monkeypatch.setitem(zoo._REGISTRY, "tiny", ZooEntry("tiny", "standard", "test", bundled="tiny", sha256=good))
    assert ratzoo.load("tiny").config.width == 2


def test_own_zoo_is_checked_against_its_config_not_the_registry(
        empty_zoo: Path, make_checkpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """$RATZOO_CHECKPOINTS holds the user's own models: a registry-pinned name loads its weights
    (other bytes than the registry's) but a corrupted file is still refused via config.json."""
    shutil.copytree(make_checkpoint("at", width=3), empty_zoo / "at")
    assert zoo.entries()["at"].sha256 != sha256_file(empty_zoo / "at" / WEIGHTS)
    monkeypatch.setitem(zoo._REGISTRY, "at", dataclasses.replace(zoo.entries()["at"], sha256="cd" * 32))
    assert ratzoo.load("at").config.width == 3
    w = empty_zoo / "at" / WEIGHTS
    w.write_bytes(w.read_bytes()[:-8] + bytes(8))
    with pytest.raises(CheckpointError, match="recorded in config.json"):
        ratzoo.load("at")


def test_hub_entry_resolves_from_the_hub_cache(empty_zoo: Path, make_checkpoint,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Not bundled -> huggingface_hub's cache (offline here), with the registry's sha."""
    src = make_checkpoint("hubbed", width=3)
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = Path(os.environ["HF_HOME"]) / "hub" / "models--someone--ratzoo-tiny" / "snapshots" / commit
    shutil.copytree(src, snapshot)
    entry = ZooEntry("hubbed", "rat", "test", hub_repo="someone/ratzoo-tiny", hub_revision=commit,
                     sha256=sha256_file(src / WEIGHTS))
    monkeypatch.setitem(zoo._REGISTRY, "hubbed", entry)
    assert ratzoo.load("hubbed").config.width == 3
    # a bundled copy takes precedence over the Hub
    make_checkpoint("bundled", width=2)
    shutil.copytree(src.parent / "bundled", empty_zoo / "hubbed")
    monkeypatch.setitem(zoo._REGISTRY, "hubbed", ZooEntry("hubbed", "rat", "test", bundled="hubbed",
                                                           hub_repo="someone/ratzoo-tiny", hub_revision=commit))
    assert ratzoo.load("hubbed").config.width == 2


def test_hub_entry_not_in_cache_offline(empty_zoo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(zoo._REGISTRY, "far", ZooEntry("far", "rat", "test", hub_repo="nobody/nothing",
                                                       hub_revision="main"))
    with pytest.raises(CheckpointError, match=r"^hf-hub:nobody/nothing@main: HF_HUB_OFFLINE=1 is set"):
        ratzoo.load("far")


def test_list_models(empty_zoo: Path, make_checkpoint) -> None:
    rows = {r["name"]: r for r in ratzoo.list_models()}
    assert set(ZOO_NAMES) <= set(rows)
    assert all(not rows[n]["bundled"] and rows[n]["results"] == {} for n in ZOO_NAMES)
    shutil.copytree(make_checkpoint("at", results=RESULTS), empty_zoo / "at")
    rows = {r["name"]: r for r in ratzoo.list_models()}
    assert rows["at"]["bundled"] is True
    assert rows["at"]["results"] == {"clean accuracy": 0.8123, "PGD-20 Linf 8/255 (EOT-10)": 0.4}
    assert rows["at"]["noise"] == {"noise_kind": "none", "noise_sigma": 0.0, "noise_layer": 1}
    assert rows["at"]["method"] == "at" and rows["at"]["description"]


def test_list_models_survives_a_broken_config(empty_zoo: Path, make_checkpoint) -> None:
    shutil.copytree(make_checkpoint("rn"), empty_zoo / "rn")
    (empty_zoo / "rn" / CONFIG).write_text("{broken")
    rows = {r["name"]: r for r in ratzoo.list_models()}
    assert "unreadable" in rows["rn"]["error"]


# --------------------------------------------------------------------------- PyTorchModelHubMixin


def test_mixin_save_pretrained_and_from_pretrained(tmp_path: Path, make_checkpoint) -> None:
    """A bare `save_pretrained` (the mixin's config.json = the ModelConfig) loads with ratzoo.load,
    and `from_pretrained` of a ratzoo checkpoint goes through ratzoo's strict loader."""
    folder = make_checkpoint("ck", noise_kind="learned", noise_sigma=0.4)
    model = load_checkpoint(folder)
    model.save_pretrained(tmp_path / "bare")
    assert sorted(p.name for p in (tmp_path / "bare").iterdir()) == sorted([WEIGHTS, CONFIG, CARD])
    assert json.loads((tmp_path / "bare" / CONFIG).read_text())["noise_kind"] == "learned"
    again = RandomizedClassifier.from_pretrained(folder)
    bare = ratzoo.load(tmp_path / "bare")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad(), noise_control(model, enabled=False), noise_control(bare, enabled=False), \
            noise_control(again, enabled=False):
        assert torch.equal(model(x), bare(x)) and torch.equal(model(x), again(x))
    state = load_file(folder / WEIGHTS)
    del state["head.fc.weight"]
    save_file(state, folder / WEIGHTS)
    _rehash(folder)
    with pytest.raises(CheckpointError, match="missing keys.*head.fc.weight"):
        RandomizedClassifier.from_pretrained(folder)  # the mixin's own loader is strict=False


def test_saved_weights_are_deterministic(tmp_path: Path, make_checkpoint) -> None:
    """The same model saved twice gives the same bytes (safetensors alone orders its header
    metadata differently from call to call), so a pushed copy keeps the local sha256."""
    model = load_checkpoint(make_checkpoint())
    digests = {sha256_file(save_checkpoint(model, tmp_path / f"s{i}") / WEIGHTS) for i in range(8)}
    assert len(digests) == 1


# --------------------------------------------------------------------------- model card


def _card_metrics(folder: Path) -> dict[str, float]:
    from huggingface_hub import ModelCard

    card = ModelCard.load(folder / CARD)
    index = card.data.to_dict()["model-index"]
    assert len(index) == 1
    out = {}
    for result in index[0]["results"]:
        assert result["task"]["type"] == "image-classification"
        assert result["dataset"]["type"] == "uoft-cs/cifar10" and result["dataset"]["split"] == "test"
        for m in result["metrics"]:
            out[m["name"]] = m["value"]
    return out


def test_card_metadata_carries_the_results(make_checkpoint) -> None:
    from huggingface_hub import metadata_load

    folder = make_checkpoint("rat", noise_kind="fixed", noise_sigma=0.5, results=RESULTS,
                             training={"method": "rat", "command": "python -m train --preset rat"})
    assert _card_metrics(folder) == {"clean accuracy": 81.23, "PGD-20 Linf 8/255 (EOT-10)": 40.0}
    meta = metadata_load(folder / CARD)
    assert meta["library_name"] == "ratzoo" and meta["license"] == "mit"
    assert "uoft-cs/cifar10" in meta["datasets"]
    assert meta["model-index"][0]["name"] == "ratzoo-rat"
    text = (folder / CARD).read_text()
    assert "python -m train --preset rat" in text
    row = next(line for line in text.splitlines() if line.startswith("| clean accuracy |"))
    assert "81.23" in row and "77.0 - 84.0" in row and row.rstrip().endswith("| 500 |")


def test_card_without_results(make_checkpoint) -> None:
    from huggingface_hub import metadata_load

    folder = make_checkpoint()
    meta = metadata_load(folder / CARD)
    assert "model-index" not in meta
    assert "Not evaluated yet." in (folder / CARD).read_text()


def test_bare_zoo_name_wins_over_a_local_folder_of_that_name(tmp_path, monkeypatch, make_checkpoint):
    """`load("rat")` means the zoo entry even when ./rat exists; "./rat" means the folder."""
    import shutil

    folder = make_checkpoint(name="tiny")
    shutil.copytree(folder, tmp_path / "rat")
    empty = tmp_path / "empty_zoo"
    empty.mkdir()
    monkeypatch.setenv("RATZOO_CHECKPOINTS", str(empty))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ratzoo.CheckpointError, match="no trained checkpoint"):
        ratzoo.load("rat")
    assert ratzoo.load("./rat").config.width == ratzoo.load(folder).config.width


def test_save_checkpoint_refuses_a_foreign_model_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"save_checkpoint writes ratzoo models .*got a Linear\. Nothing was written"):
        save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "ck")
    assert not (tmp_path / "ck").exists()
