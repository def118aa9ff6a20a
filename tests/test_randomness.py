"""Randomness found by behaviour, EOT that averages independent draws, and the engine's defaults."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import ratzoo
from ratzoo.attacks import PGD, make_attack
from ratzoo.eot import CPU_CHUNK, forward_draws
from ratzoo.noise import GaussianNoise
from ratzoo.randomness import DETERMINISTIC, PER_CALL, PER_SAMPLE, PROBE_CALLS, PROBE_COPIES, randomness_of

from conftest import train_template_mlp


class InputNoise(nn.Module):
    """A foreign per-sample randomized model: Gaussian noise on the input, from torch's RNG."""

    def __init__(self, base: nn.Module, sigma: float = 0.05) -> None:
        super().__init__()
        self.base, self.sigma = base, sigma
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x + self.sigma * torch.randn_like(x))


class SharedNoise(InputNoise):
    """A foreign per-call randomized model: one noise tensor shared by the whole batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x + self.sigma * torch.randn(1, *x.shape[1:], device=x.device))


class NumpyNoise(InputNoise):
    """Per-sample noise from numpy's RNG: torch's seed cannot reach it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.from_numpy(np.random.standard_normal(x.shape).astype(np.float32))
        return self.base(x + self.sigma * noise)


class Counting(nn.Module):
    def __init__(self, base: nn.Module) -> None:
        super().__init__()
        self.base, self.calls = base, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        return self.base(x)


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    return train_template_mlp(64)


def test_the_probe_classifies_every_kind(trained) -> None:
    base, x, _ = trained
    assert randomness_of(base, x).kind == DETERMINISTIC
    assert randomness_of(InputNoise(base), x).kind == PER_SAMPLE
    assert randomness_of(SharedNoise(base), x).kind == PER_CALL
    assert randomness_of(nn.Sequential(nn.Dropout(0.3), base).train(), x).kind == PER_SAMPLE
    own = nn.Sequential(base[0], GaussianNoise(3, 0.5), *base[1:])
    r = randomness_of(own, x)
    assert (r.kind, r.source, r.foreign) == (PER_SAMPLE, "ratzoo-noise", False)
    with ratzoo.noise_control(own, enabled=False):
        assert randomness_of(own, x).kind == DETERMINISTIC
    # ratzoo's noise under a per-call draw: separate calls are needed
    assert randomness_of(SharedNoise(own), x).kind == PER_CALL
    assert ratzoo.is_randomized(InputNoise(base), x) and not ratzoo.is_randomized(base, x)


def test_the_probe_is_cheap_and_runs_once_per_model_and_shape(trained) -> None:
    base, x, _ = trained
    model = Counting(base)
    randomness_of(model, x)
    assert len(model.calls) <= PROBE_CALLS and all(c == PROBE_COPIES for c in model.calls)
    randomness_of(model, x[:3])  # same image shape: cached
    assert len(model.calls) <= PROBE_CALLS
    # and a deterministic model then costs no extra passes: one pass per step, whatever K
    model.calls.clear()
    PGD(model, eps=8 / 255, steps=3, eot_samples=20).run(x[:10], trained[2][:10], estimate_success=False)
    assert model.calls == [10, 10, 10]


def test_seedable_is_measured(trained) -> None:
    base, x, _ = trained
    assert randomness_of(InputNoise(base), x).seedable
    with pytest.warns(UserWarning, match="seed does not reach"):
        assert not randomness_of(NumpyNoise(base), x).seedable


def test_an_unseedable_model_is_flagged_in_its_record_and_leaderboard_entry(trained) -> None:
    """A model whose seed cannot repeat it is never reported as seeded: a warning, the record's
    ``seedable: false`` and the leaderboard's ``unseeded``; a seedable one carries no flag."""
    from ratzoo.leaderboard import leaderboard_entry, leaderboard_markdown

    base, x, y = trained
    kw = dict(threat_model="Linf", steps=2, eot_samples=2, n_target_classes=1, decision_samples=10, seed=0)
    with pytest.warns(UserWarning, match="seed does not reach"):
        rec = ratzoo.benchmark(NumpyNoise(base, sigma=0.05), x[:8], y[:8], **kw)
    assert rec.randomized and rec.randomness["seedable"] is False
    entry = leaderboard_entry(rec)
    assert entry.randomness == "per-sample, unseeded" and "per-sample, unseeded" in leaderboard_markdown([entry])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a seedable model warns nothing
        ok = ratzoo.benchmark(InputNoise(base, sigma=0.05), x[:8], y[:8], **kw)
    assert ok.randomness["seedable"] is True and leaderboard_entry(ok).randomness == "per-sample"


def test_override_and_bad_override(trained) -> None:
    base, x, _ = trained
    assert randomness_of(base, x, "per-call").kind == PER_CALL
    with pytest.raises(ValueError, match="randomness must be one of"):
        randomness_of(base, x, "sometimes")
    with pytest.raises(ValueError, match="randomness must be one of"):
        PGD(base, randomness="sometimes")


def test_per_call_eot_averages_k_distinct_draws(trained) -> None:
    base, x, _ = trained
    model = SharedNoise(base, sigma=0.1)
    z = forward_draws(model, x[:4], 8, per_call=True)
    flat = z[:, 0].round(decimals=5)
    assert len({tuple(r.tolist()) for r in flat}) == 8, "8 draws, 8 distinct outputs"
    # the wrong way (copies in one call) gives one draw 8 times: what the probe prevents
    wrong = forward_draws(model, x[:4], 8, per_call=False)[:, 0].round(decimals=5)
    assert len({tuple(r.tolist()) for r in wrong}) == 1
    # and an attack on it makes K separate calls per step
    counted = Counting(model)
    atk = PGD(counted, eps=8 / 255, steps=2, eot_samples=8)
    atk.run(x[:4], trained[2][:4], estimate_success=False)
    assert atk.randomness_found.kind == PER_CALL and atk.eot_draws == 8
    assert counted.calls[-16:] == [4] * 16  # 2 steps x 8 calls of the 4 images


def test_per_sample_copies_differ(trained) -> None:
    base, x, _ = trained
    z = forward_draws(InputNoise(base), x[:2], 6)
    assert len({tuple(r.round(decimals=5).tolist()) for r in z[:, 0]}) == 6


@pytest.mark.parametrize("wrapper,kind", [(InputNoise, PER_SAMPLE), (SharedNoise, PER_CALL)])
def test_evaluate_on_a_foreign_randomized_model_is_recorded_and_repeats(wrapper, kind, trained) -> None:
    base, x, y = trained
    model = wrapper(base, sigma=0.05)
    kw = dict(attack="pgd-linf", eps=8 / 255, steps=3, eot_samples=5, decision_samples=20, seed=3)
    a = ratzoo.evaluate(model, x[:16], y[:16], **kw)
    b = ratzoo.evaluate(model, x[:16], y[:16], **kw)
    assert a["randomized"] and a["randomness"]["kind"] == kind and a["randomness"]["seedable"]
    assert a["effective_eot_samples"] == 5 and a["decision_samples"] == 20
    for rec in (a, b):
        rec.pop("elapsed_s")
    assert a == b
    c = ratzoo.evaluate(model, x[:16], y[:16], **{**kw, "seed": 4})
    assert c["single_draw_accuracy"] != a["single_draw_accuracy"] or c["robust_per_image"] != a["robust_per_image"] \
        or c["linf_per_image"] != a["linf_per_image"]


def test_deterministic_record_says_so(trained) -> None:
    base, x, y = trained
    rec = ratzoo.evaluate(base, x[:8], y[:8], attack="fgsm", eot_samples=10)
    assert rec["randomness"]["kind"] == DETERMINISTIC and rec["effective_eot_samples"] == 1
    assert rec["decision_samples"] == 1


def test_default_cpu_pass_size_reaches_every_entry_point(trained) -> None:
    """The restated-default bug: make_attack and evaluate must run CPU_CHUNK image-draws per pass."""
    base, x, y = trained
    model = nn.Sequential(base[0], GaussianNoise(3, 0.1), *base[1:]).eval()
    k = 8
    per = CPU_CHUNK // k
    atk = make_attack("pgd-linf", model, steps=1, eot_samples=k)
    assert atk.chunk_size is None
    atk.run(x, y, estimate_success=False)
    assert atk.stats.max_pass == per * k <= CPU_CHUNK
    rec = ratzoo.evaluate(model, x, y, attack="apgd-ce", steps=2, eot_samples=k, decision_samples=4)
    assert rec["passes"]["max_pass"] == per * k
    for name in ratzoo.attacks.ATTACKS:  # no attack class restates a shared default
        import inspect
        assert "chunk_size" not in inspect.signature(ratzoo.attacks.ATTACKS[name].__init__).parameters


def test_dropping_resolved_images_never_beats_the_full_run(trained) -> None:
    """Same images, same seed: the early-stopping run (with confirm-or-continue) is at least as
    strong as the full run, paired per image."""
    base, x, y = trained
    model = nn.Sequential(base[0], GaussianNoise(3, 0.3), *base[1:]).eval()
    kw = dict(eps=4 / 255, steps=10, eot_samples=8, decision_samples=50, seed=0)
    fast = ratzoo.run_attack(model, x, y, "pgd-linf", **kw)
    full = ratzoo.run_attack(model, x, y, "pgd-linf", early_stop=False, **kw)
    assert fast.stopped_early.any(), "the test needs images that resolve early"
    assert fast.stats.image_draws < full.stats.image_draws
    only_fast_robust = int((fast.robust & ~full.robust).sum())
    assert fast.robust.sum() <= full.robust.sum() and only_fast_robust <= 1
    assert full.stopped_early is not None and not full.stopped_early.any()


class Scripted(nn.Module):
    """A per-call random model whose k-th call returns the k-th row of ``logits`` for every image."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits, self.k = logits, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.logits[self.k % len(self.logits)].expand(x.shape[0], -1)
        self.k += 1
        return out


@pytest.mark.parametrize("late_class_wins", [False, True])
def test_sequential_decision_is_exactly_the_full_rule(late_class_wins) -> None:
    from ratzoo.judge import decide

    # 100 draws: the first 40 put all mass on class 3; the last 60 on class 5 (enough to win
    # only when late_class_wins, with the leading class ahead by > remaining until the end)
    n_late = 61 if late_class_wins else 30
    rows = [torch.full((10,), -30.0).index_fill(0, torch.tensor([3]), 30.0)] * (100 - n_late)
    rows += [torch.full((10,), -30.0).index_fill(0, torch.tensor([5]), 30.0)] * n_late
    logits = torch.stack(rows)
    model = Scripted(logits)
    x, y = torch.rand(2, 3, 4, 4), torch.tensor([3, 5])
    d = decide(model, x, y, samples=100, seed=0, randomness="per-call")
    full = logits.softmax(-1).mean(0).argmax().item()
    assert d.label.tolist() == [full, full]
    if late_class_wins:
        # class 3 leads for the first 39 draws but never by more than the draws left: no early
        # verdict for it; class 5 is decided only once it leads by more than the draws left
        assert all(v >= 80 for v in d.draws.tolist())
    else:
        # rounds of 10: after 60 draws class 3 leads by 60 with 40 left (50 after 50 is a tie
        # with 50 left): decided there, the rest skipped
        assert d.draws.tolist() == [60, 60]
        assert d.single.tolist()[0] == 1.0  # of the draws made, all said 3


class _BNDropoutNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.drop = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5)
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.bn(self.conv(x)).relu().mean((2, 3))))


def test_batchnorm_in_training_mode_is_warned_not_silently_changed() -> None:
    """A model left in training mode: BatchNorm updates its statistics on every call. ratzoo
    says so (it does not call .eval() itself: that would switch dropout off too)."""
    torch.manual_seed(0)
    model, x = _BNDropoutNet(), torch.rand(2, 3, 32, 32)
    with pytest.warns(UserWarning, match=r"_BNDropoutNet has BatchNorm layers in training mode.*model.eval\(\)"):
        ratzoo.predict_proba(model, x, samples=2, seed=0)
    model.eval()
    assert not ratzoo.is_randomized(model, x)  # the probe answers for the model as it is now, not as cached
    model.drop.train()  # the documented way to keep dropout as the randomness
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ratzoo.is_randomized(model, x)  # no warning, and dropout still counts


def test_a_callable_returning_a_training_model_is_told_what_eval_switched_off(tmp_path, monkeypatch) -> None:
    from ratzoo.zoo import load_model_spec

    (tmp_path / "bn_defense.py").write_text(
        "from test_randomness import _BNDropoutNet\n\ndef build():\n    return _BNDropoutNet()\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    with pytest.warns(UserWarning, match=r"switches off its 1 nn.Dropout layer\(s\).*training=True"):
        model = load_model_spec("bn_defense:build")
    assert not model.training and not ratzoo.is_randomized(model, torch.rand(1, 3, 32, 32))
    with pytest.raises(KeyError, match="module.path:callable"):
        load_model_spec("no_such_zoo_name")


def test_a_callable_that_needs_arguments_is_refused_in_words(tmp_path, monkeypatch) -> None:
    """``--model mod:Net`` where ``Net(width)`` needs an argument: a ValueError naming it, not the
    raw TypeError; a TypeError raised inside a callable without parameters is the user's own."""
    from ratzoo.zoo import load_model_spec

    (tmp_path / "argdefense.py").write_text(
        "import torch\n\nclass Net(torch.nn.Linear):\n    def __init__(self, width, *, bias=True):\n"
        "        super().__init__(width, 10, bias)\n\nSIGMA = 0.1\n\ndef broken():\n    return Net(1, 2, 3)\n\n"
        "def ok(width=4):\n    return Net(width)\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"argdefense:Net needs argument\(s\) width, but ratzoo calls it with none"):
        load_model_spec("argdefense:Net")
    with pytest.raises(ValueError, match=r"argdefense:SIGMA is a float, not a callable"):
        load_model_spec("argdefense:SIGMA")
    with pytest.raises(TypeError):  # the user's bug, left as Python raised it
        load_model_spec("argdefense:broken")
    assert isinstance(load_model_spec("argdefense:ok"), torch.nn.Linear)


@pytest.mark.parametrize("kind", ["rse", "pni"])
def test_zoo_defenses_get_independent_draws_from_the_decision_rule_and_eot(kind) -> None:
    """RSE draws per image: K draws are one batch of K copies. PNI draws its weights once per
    call: K draws must be K calls, which the decision rule and the attacks then make."""
    torch.manual_seed(0)
    extra = dict(noise_sigma=0.4, noise_inner=0.1, noise_layer=0) if kind == "rse" else dict(noise_sigma=0.25)
    model = Counting(ratzoo.build_model(width=2, noise_kind=kind, **extra).eval())
    x, y = torch.rand(3, 3, 32, 32), torch.tensor([0, 1, 2])
    r = randomness_of(model, x)
    assert (r.kind, r.source) == ({"rse": PER_SAMPLE, "pni": PER_CALL}[kind], "ratzoo-noise")
    model.calls.clear()
    p = ratzoo.predict_proba(model, x, samples=6, seed=0)
    assert model.calls == ([18] if kind == "rse" else [3] * 6)
    assert (p.probs_std.amax(1) > 0).all(), "6 distinct draws per image"
    assert torch.equal(p.probs, ratzoo.predict_proba(model, x, samples=6, seed=0).probs)
    model.calls.clear()
    PGD(model, eps=8 / 255, steps=2, eot_samples=4).run(x, y, estimate_success=False)
    assert model.calls == ([12, 12] if kind == "rse" else [3] * 8)


def test_own_per_call_noise_beside_per_sample_noise_needs_separate_calls(trained) -> None:
    from ratzoo.noise import NoiseSource

    class SharedOwn(NoiseSource):
        per_sample = False

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 0.1 * self._randn(x[:1]) if self.enabled else x

    base, x, _ = trained
    model = nn.Sequential(base[0], GaussianNoise(3, 0.1), SharedOwn(), *base[1:]).eval()
    assert randomness_of(model, x).kind == PER_CALL
    model[1].enabled = False
    assert randomness_of(model, x).kind == PER_CALL
    model[1].enabled, model[2].enabled = True, False
    assert randomness_of(model, x).kind == PER_SAMPLE
