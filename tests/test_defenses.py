"""The literature's randomized defenses (ratzoo.defenses, issue 27): each is found by behaviour
as its docstring says, switching its randomness off gives back the base model exactly, a seed
repeats a benchmark bit for bit, and each loads by name from the registry, offline."""

from __future__ import annotations

import contextlib

import pytest
import torch

import ratzoo
from ratzoo import zoo
from ratzoo.defenses import DEFENSES, RandomResizePad, StochasticActivationPruning, build_defense
from ratzoo.randomness import randomness_of

WRAPPERS = [e for e in zoo.entries().values() if e.defense is not None]
KIND = {"random-resize-pad": "per-call", "sap": "per-sample"}  # as each docstring states


def _x(n: int = 4) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("entry", WRAPPERS, ids=lambda e: e.name)
def test_each_defense_entry_loads_by_name_and_is_found_by_behaviour(entry, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = ratzoo.load(entry.name)
    assert isinstance(model, DEFENSES[entry.defense["name"]]) and not model.training
    r = randomness_of(model, _x())
    assert r.kind == KIND[entry.defense["name"]] and r.source == "probe" and r.seedable, r
    row = next(m for m in ratzoo.list_models() if m["name"] == entry.name)
    assert row["base"] == entry.base and row["bundled"] and row["defense"]["summary"]


@pytest.mark.parametrize("name", list(DEFENSES))
def test_randomness_off_gives_back_the_base_models_logits(name) -> None:
    base = ratzoo.load("standard")
    model = build_defense(name, base).eval()
    x = _x()
    with torch.no_grad():
        on = model(x)
        model.enabled = False
        off = model(x)
    assert torch.equal(off, base(x))
    assert not torch.allclose(on, off)  # and on, it changes the output


def test_sap_keeps_the_layer_unbiased_and_prunes_small_activations_more() -> None:
    """The expected pruned activation is the activation (inverse-propensity scaling), and the
    larger of two activations is kept more often."""
    lin = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.Flatten(), torch.nn.Linear(4, 1))
    sap = StochasticActivationPruning(lin, sample_fraction=0.5)
    h = torch.tensor([[4.0, 1.0, 0.5, 0.0]])
    torch.manual_seed(0)
    outs = []
    for _ in range(20000):
        sap._last = None  # a new forward each time (within one, one activation is pruned once)
        outs.append(sap._prune(lin[2], (h,))[0])
    outs = torch.cat(outs)
    assert sap._prune(lin[2], (h,))[0] is sap._prune(lin[2], (h,))[0]  # two consumers, one mask
    assert torch.allclose(outs.mean(0), h[0], atol=0.05)
    kept = (outs != 0).float().mean(0)
    assert kept[0] > kept[1] > kept[2] > 0 and kept[3] == 0


def test_resize_pad_draws_one_transform_per_call_within_the_papers_range() -> None:
    sizes = []
    model = RandomResizePad(lambda x: sizes.append(x) or x.new_zeros(len(x), 10))
    x = torch.ones(3, 3, 32, 32)
    torch.manual_seed(0)
    for _ in range(50):
        model(x)
    for out in sizes:
        assert out.shape[-2:] == (36, 36)
        side = int((out[0, 0] == 1).sum(1).max())  # the resized image's side, the rest is 0 padding
        assert 32 <= side <= 35 and all(torch.equal(out[0], out[i]) for i in range(3))  # one draw per call
    assert len({int((o[0, 0] == 1).sum()) for o in sizes}) > 1


@pytest.mark.parametrize("name", list(DEFENSES))
def test_the_same_seed_repeats_a_benchmark_exactly(name) -> None:
    model = ratzoo.load(f"{'rp' if name == 'random-resize-pad' else 'sap'}_standard")
    x, y = _x(2), torch.tensor([3, 8])
    kw = dict(threat_model="Linf", steps=2, eot_samples=2, n_target_classes=1, decision_samples=8, seed=5)
    a, b = (ratzoo.benchmark(model, x, y, **kw).to_json() for _ in range(2))
    assert a["robust_per_image"] == b["robust_per_image"] and a["params"] == b["params"]
    assert a["randomness"]["kind"] == KIND[name] and a["randomness"]["seedable"]
    assert a["model_config"]["defense"] == name and a["model_config"]["base"]["noise_kind"] == "none"


def test_a_wrapper_entry_needs_a_trained_base(tmp_path) -> None:
    bad = tmp_path / "zoo.json"
    bad.write_text('{"models": [{"name": "x", "method": "sap", "description": "d", "base": "nope", '
                   '"defense": {"name": "sap"}}]}')
    with pytest.raises(RuntimeError, match="wraps 'nope', which is not a trained zoo entry"):
        zoo.read_registry(bad)
    with pytest.raises(KeyError, match="unknown defense 'blur'; known: random-resize-pad, sap"):
        build_defense("blur", torch.nn.Identity())


def test_a_second_copy_of_the_adaptive_check_shares_its_parts(cifar_root, tmp_path, monkeypatch, capsys) -> None:
    """Two copies of ``bench_adaptive.py`` (one per core) split the parts through their locks:
    a copy skips the part the other holds, writes no record while a part is missing, and the
    record is assembled from every part without attacking again."""
    from conftest import REPO_ROOT

    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    import bench_adaptive

    held = {0}  # part 0 is being measured by the other copy

    class Shared(bench_adaptive.Parts):
        @contextlib.contextmanager
        def claim(self, j):
            yield j not in held

    class Assembled(Exception):
        pass

    measured, assembled = [], []

    def fake_benchmark(model, x, y, threat, *, only_parts=None, parts=None, on_part=None, part_size, **kw):
        if only_parts is None:
            assembled.append(sorted(parts))
            raise Assembled  # stop before the record is written into the repository
        for j in only_parts:
            measured.append(j)
            on_part(j, {"n": min(part_size, len(x) - j * part_size)})

    monkeypatch.setattr(bench_adaptive, "Parts", Shared)
    monkeypatch.setattr(bench_adaptive, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(bench_adaptive.ratzoo, "benchmark", fake_benchmark)
    args = ("sap_at", "Linf", "at", False, "eot", 50, 500)  # 11 images: two parts of 10
    bench_adaptive.run(*args)
    assert measured == [1] and not assembled
    assert "the other parts are being measured by another copy" in capsys.readouterr().out
    held.clear()
    next(iter(tmp_path.glob("bench_adaptive/*/part_00001.json")))  # the part it measured is on disk
    with pytest.raises(Assembled):
        bench_adaptive.run(*args)
    assert measured == [1, 0] and assembled == [[0, 1]]


@pytest.mark.parametrize("name", list(DEFENSES))
def test_the_adaptive_checks_bpda_takes_the_defenses_value_and_the_bases_gradient(name, monkeypatch) -> None:
    """``benchmarks/bench_adaptive.py``'s BPDA: forward a fresh defense draw, backward the base
    model's input gradient, and without gradient the defense alone (what the decision rule sees)."""
    from conftest import REPO_ROOT

    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    from bench_adaptive import BPDA

    model = build_defense(name, ratzoo.load("standard")).eval()

    def undefended(x: torch.Tensor) -> torch.Tensor:  # SAP hooks the base itself: switch it off, do not call base
        model.enabled = False
        try:
            return model(x)
        finally:
            model.enabled = True

    x = _x(2).requires_grad_(True)
    torch.manual_seed(0)
    out = BPDA(model)(x)
    (g,) = torch.autograd.grad(out[:, 0].sum(), x)
    torch.manual_seed(0)
    with torch.no_grad():
        assert torch.allclose(out.detach(), model(x))  # the defense's draw, under the same seed
        assert not torch.allclose(out.detach(), undefended(x))
    xb = x.detach().requires_grad_(True)
    (gb,) = torch.autograd.grad(undefended(xb)[:, 0].sum(), xb)
    assert torch.allclose(g, gb) and model.enabled
    with torch.no_grad():
        torch.manual_seed(1)
        a = BPDA(model)(x)
        torch.manual_seed(1)
        assert torch.equal(a, model(x))
