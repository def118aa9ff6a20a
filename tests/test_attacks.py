"""Attacks: budgets, known answers on affine classifiers, strength on a trained model,
EOT gradients (batched == averaged per-draw), seeding, cost, and the registry."""

from __future__ import annotations

import copy
import math
import warnings
import pytest
from conftest import train_template_mlp
import torch
import torch.nn.functional as F
from torch import nn

import ratzoo
from ratzoo import noise_control
from ratzoo.randomness import randomness_of
from ratzoo.attacks import ATTACKS, CW, FGM, FGSM, PGD, PGDL2, make_attack, parse_budget
from ratzoo.attacks.apgd import APGD
from ratzoo.noise import GaussianNoise

# Small budgets of work for every attack (what the budget/shape tests run).
QUICK = {
    "fgsm": {},
    "fgm": {},
    "pgd-linf": {"steps": 3},
    "pgd-l2": {"steps": 3},
    "cw-l2": {"steps": 4, "search_steps": 2},
    "apgd-ce": {"steps": 4},
    "apgd-dlr": {"steps": 4},
    "apgd-t": {"steps": 4, "n_target_classes": 2},
}


def _bn_stats(model: nn.Module, seed: int = 1) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    det = _bn_stats(ratzoo.build_model(width=2)).eval()
    torch.manual_seed(0)
    noisy = _bn_stats(ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.5)).eval()
    return {"deterministic": det, "noisy": noisy}


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 3, 32, 32, generator=g)
    x[0, 0, :4] = 0.0  # pixels at the box edges
    x[1, 1, :4] = 1.0
    return x, torch.tensor([0, 3, 7, 9])


def _delta_norm(adv: torch.Tensor, x: torch.Tensor, norm: str) -> torch.Tensor:
    d = (adv.double() - x.double()).flatten(1)
    return d.abs().amax(1) if norm == "Linf" else d.norm(dim=1)


# --------------------------------------------------------------------------- budgets


@pytest.mark.parametrize("kind", ["deterministic", "noisy"])
@pytest.mark.parametrize("name", list(ATTACKS))
def test_budget_range_shape_dtype(name: str, kind: str, models, batch) -> None:
    model, (x, y) = models[kind], batch
    eps = {"Linf": 8 / 255, "L2": 0.5}
    kw = dict(QUICK[name], eot_samples=3, seed=0)
    norm = ATTACKS[name].norm
    if name != "cw-l2":
        kw["eps"] = eps[norm]
    attack = make_attack(name, model, **kw)
    res = attack.run(x, y)
    adv = res.adv_images
    assert adv.shape == x.shape and adv.dtype == x.dtype and adv.device == x.device
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    assert torch.isfinite(adv).all()
    if name != "cw-l2":
        assert (_delta_norm(adv, x, norm) <= eps[norm] * (1 + 1e-6)).all()
        # in fact exactly, measured in float64 (the final guard undoes float32 rounding)
        assert (_delta_norm(adv, x, norm) <= eps[norm]).all()
        # the attack moved the images (a no-op attack would pass the budget check trivially)
        assert float(_delta_norm(adv, x, norm).max()) > 0.5 * eps[norm]
    else:
        finite = torch.isfinite(res.norms)
        assert torch.allclose(res.norms[finite].double(), _delta_norm(adv, x, "L2")[finite], rtol=1e-4, atol=1e-6)
        assert torch.equal(adv[~finite], x[~finite])
    assert res.fooled.shape == (4,) and res.fooled.dtype == torch.bool


@pytest.mark.parametrize("norm,eps", [("Linf", 8 / 255), ("L2", 0.5)])
def test_projection_then_guard_is_exact(norm: str, eps: float) -> None:
    from ratzoo.attacks.base import enforce_budget, project_l2, project_linf

    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 32, 32, generator=g)
    proj = project_linf if norm == "Linf" else project_l2
    adv = proj(x + torch.randn(x.shape, generator=g), x, eps)
    assert (_delta_norm(adv, x, norm) <= eps * (1 + 1e-6)).all()  # float32 rounding only
    guarded = enforce_budget(adv, x, eps, norm)
    assert (_delta_norm(guarded, x, norm) <= eps).all()
    assert (guarded - adv).abs().max() < 1e-6  # moved by at most a few ulps
    assert guarded.min() >= 0 and guarded.max() <= 1


def test_float64_images_keep_their_dtype(models, batch) -> None:
    model = models["noisy"]
    m64 = ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.5).eval()
    m64.load_state_dict(model.state_dict())
    m64 = m64.double()
    x, y = batch
    adv = PGD(m64, eps=8 / 255, steps=2, eot_samples=2)(x.double(), y)
    assert adv.dtype == torch.float64
    assert (_delta_norm(adv, x.double(), "Linf") <= 8 / 255 * (1 + 1e-6)).all()


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_attacks_never_switch_mode_or_noise(mode: str, models, batch, monkeypatch) -> None:
    model = copy.deepcopy(models["noisy"])  # train mode updates batch-norm statistics
    model.train(mode == "train")
    try:
        def forbidden(*a, **k):
            raise AssertionError("an attack called model.train()/model.eval()")

        monkeypatch.setattr(model, "train", forbidden)
        monkeypatch.setattr(model, "eval", forbidden)
        x, y = batch
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for name in ATTACKS:
                make_attack(name, model, **QUICK[name], eot_samples=2)(x, y)
        told = any("BatchNorm layers in training mode" in str(w.message) for w in caught)
        assert told == (mode == "train"), "a model in train mode is warned about, and only then"
        assert model.training == (mode == "train")
        assert model.noise.enabled and model.noise.generator is None  # noise switch restored
        assert all(p.grad is None for p in model.parameters())  # input gradients only
    finally:
        monkeypatch.undo()


# --------------------------------------------------------------------------- known answers


class Affine(nn.Module):
    """Two classes, ``logits = [0, w.x + b]``: class 1 iff ``w.x + b > 0``."""

    def __init__(self, d: tuple[int, ...], seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(d, generator=g))
        self.b = nn.Parameter(torch.zeros(()))

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1) + self.b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.score(x)
        return torch.stack([torch.zeros_like(s), s], 1)


@pytest.fixture(scope="module")
def affine() -> tuple[Affine, torch.Tensor, torch.Tensor]:
    """An affine classifier and interior points (no box clipping within the budgets used)
    at known distances from its decision boundary."""
    d = (3, 4, 4)
    model = Affine(d, seed=0)
    g = torch.Generator().manual_seed(1)
    x = 0.3 + 0.4 * torch.rand(6, *d, generator=g)
    with torch.no_grad():
        wn = model.w.norm()
        # put the points at signed L2 distances +-0.1 .. 0.3 from the boundary
        target = torch.tensor([0.1, -0.15, 0.2, -0.25, 0.3, -0.12])
        s = model.score(x)
        x = x + ((target * wn - s) / wn**2)[:, None, None, None] * model.w
    assert x.min() > 0.05 and x.max() < 0.95
    y = (model.score(x) > 0).long()
    return model, x, y


def _worst_linf_score(model: Affine, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    # the true class's margin is (2y - 1) * score; the worst case lowers it by eps * ||w||_1
    return model.score(x) - (2 * y - 1) * eps * model.w.abs().sum()


@pytest.mark.parametrize("cls", [FGSM, PGD])
def test_linf_attacks_reach_the_analytic_worst_case(cls, affine) -> None:
    model, x, y = affine
    eps = 4 / 255
    adv = cls(model, eps=eps)(x, y).detach()
    with torch.no_grad():
        expected = x - (2 * y - 1)[:, None, None, None] * eps * model.w.sign()
        assert torch.allclose(adv, expected, atol=1e-6)
        assert torch.allclose(model.score(adv), _worst_linf_score(model, x, y, eps), atol=1e-4)


def test_pgd_l2_reaches_the_analytic_worst_case(affine) -> None:
    model, x, y = affine
    eps = 0.05
    adv = PGDL2(model, eps=eps, steps=40)(x, y).detach()
    with torch.no_grad():
        worst = model.score(x) - (2 * y - 1) * eps * model.w.norm()
        assert torch.allclose(model.score(adv), worst, atol=1e-3 * float(model.w.norm()))
    # FGM is exact on an affine model (one step along the normalized gradient)
    adv = FGM(model, eps=eps)(x, y).detach()
    with torch.no_grad():
        assert torch.allclose(model.score(adv), worst, atol=1e-4)


def test_cw_finds_the_exact_distance_to_the_boundary(affine) -> None:
    model, x, y = affine
    exact = (model.score(x).abs() / model.w.norm()).detach()
    res = CW(model, steps=100, search_steps=9).run(x, y)
    assert torch.isfinite(res.norms).all() and res.fooled.all()
    # never below the true minimum (the norm is measured, not guessed) ...
    assert (res.norms >= exact * (1 - 1e-3)).all()
    # ... and within a few percent of it
    assert (res.norms <= exact * 1.03).all(), (res.norms / exact)


# --------------------------------------------------------------------------- strength


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """An undefended MLP on faint-template 8x8 images (conftest.train_template_mlp)."""
    model, x, y = train_template_mlp(200)
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.9
    return model, x, y


@pytest.mark.parametrize("name,kw", [("pgd-linf", {"steps": 20}), ("apgd-ce", {"steps": 20}),
                                     ("apgd-dlr", {"steps": 20}), ("apgd-t", {"steps": 20})])
def test_linf_attacks_break_an_undefended_model(name, kw, trained) -> None:
    model, x, y = trained
    adv = make_attack(name, model, eps=8 / 255, seed=0, **kw)(x, y)
    with torch.no_grad():
        acc = (model(adv).argmax(1) == y).float().mean().item()
    assert acc < 0.05, f"{name}: accuracy {acc:.3f} under 8/255"


def test_cw_fools_an_undefended_model(trained) -> None:
    model, x, y = trained
    x, y = x[:100], y[:100]
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    res = CW(model).run(x, y)  # the paper's 9 search steps x 40 iterations
    with torch.no_grad():
        fooled = (model(res.adv_images).argmax(1) != y) & correct
    assert fooled.sum() / correct.sum() > 0.95
    assert torch.isfinite(res.norms[correct]).all()
    # PGD-L2 at the median C&W norm x 1.5 must also fool most (the norms are not nonsense)
    assert float(res.norms[correct].median()) < 1.0


# --------------------------------------------------------------------------- EOT


def test_eot_gradient_is_the_average_of_per_draw_gradients(models, batch) -> None:
    """Batched EOT (one pass over K draws) == a loop over the same K draws, for the
    gradient of the mean softmax and for the chain rule through the loss of it."""
    model, (x, y) = models["noisy"], batch
    k = 5
    attack = PGD(model, eps=8 / 255, eot_samples=k, precision="fp32")  # exact arithmetic compared below
    attack._k, attack._chunk = k, k * len(x)  # what run() sets: K draws, all images in one pass

    def p_true(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return logits.exp().gather(1, y[idx, None]).squeeze(1)

    with noise_control(model, seed=11):
        p_bar, g_p, _ = attack.loss_and_grad(x, p_true)
    with noise_control(model, seed=11):
        _, g_ce, _ = attack.loss_and_grad(x, lambda z, i: F.cross_entropy(z, y[i], reduction="none"))

    per_p, per_g = [], []
    with noise_control(model, seed=11):
        for _ in range(k):  # the loop the batched pass replaces, same draws in the same order
            xi = x.clone().requires_grad_(True)
            p = model(xi).softmax(-1).gather(1, y[:, None]).squeeze(1)
            (g,) = torch.autograd.grad(p.sum(), xi)
            per_p.append(p.detach())
            per_g.append(g)
    mean_p, mean_g = torch.stack(per_p).mean(0), torch.stack(per_g).mean(0)
    assert torch.allclose(p_bar, mean_p, rtol=1e-5, atol=1e-7)
    assert torch.allclose(g_p, mean_g, rtol=1e-4, atol=1e-7)
    # d(-log p_bar[y])/dx = -(1/p_bar[y]) * mean_k d p_k[y]/dx
    assert torch.allclose(g_ce, -mean_g / mean_p[:, None, None, None], rtol=1e-4, atol=1e-6)
    # and it is not the average of per-draw CE gradients (a different estimator)
    assert not torch.allclose(g_ce, -(torch.stack(per_g) / torch.stack(per_p)[..., None, None, None]).mean(0),
                              rtol=1e-3, atol=1e-6)


class _Counter:
    def __init__(self, module: nn.Module) -> None:
        self.sizes: list[int] = []
        self.h = module.register_forward_hook(lambda m, i, o: self.sizes.append(i[0].shape[0]))

    def close(self) -> None:
        self.h.remove()


@pytest.mark.parametrize("kind,expected_batch", [("noisy", 4 * 6), ("deterministic", 4)])
def test_one_batched_pass_per_step_and_no_waste_on_deterministic(kind, expected_batch, models, batch) -> None:
    model, (x, y) = models[kind], batch
    randomness_of(model, x)  # the probe runs once per model and shape (tests/test_randomness.py counts it)
    c = _Counter(model)
    try:
        PGD(model, eps=8 / 255, steps=5, eot_samples=6, early_stop=False).run(x, y, estimate_success=False)
    finally:
        c.close()
    assert c.sizes == [expected_batch] * 5


def test_chunking_splits_images_not_draws(models, batch) -> None:
    model, (x, y) = models["noisy"], batch
    randomness_of(model, x)
    c = _Counter(model)
    try:
        PGD(model, eps=8 / 255, steps=2, eot_samples=6, chunk_size=12).run(x, y, estimate_success=False)
    finally:
        c.close()
    assert c.sizes == [12] * 4  # 2 sub-batches of 2 images x 6 draws, 2 steps each


@pytest.mark.parametrize("name", list(ATTACKS))
def test_seeded_attack_repeats_exactly(name, trained) -> None:
    # the trained MLP with noise injected after its input normalization
    model = nn.Sequential(trained[0][0], GaussianNoise(3, 0.5), *trained[0][1:]).eval()
    x, y = trained[1][:8], trained[2][:8]
    kw = dict(QUICK[name], eot_samples=2)
    a = make_attack(name, model, **kw, seed=5)(x, y)
    b = make_attack(name, model, **kw, seed=5)(x, y)
    c = make_attack(name, model, **kw, seed=6)(x, y)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_eot_one_draw_on_a_deterministic_model_is_the_plain_attack(models, batch) -> None:
    model, (x, y) = models["deterministic"], batch
    a = PGD(model, eps=8 / 255, steps=3, eot_samples=1, seed=0)(x, y)
    b = PGD(model, eps=8 / 255, steps=3, eot_samples=16, seed=0)(x, y)
    assert torch.equal(a, b)
    # and one step of plain FGSM on the raw logits, by hand
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xi), y), xi)
    ref = (x + 8 / 255 * g.sign()).clamp(0, 1)
    assert torch.allclose(FGSM(model, eps=8 / 255, precision="fp32")(x, y), ref, atol=1e-6)


# --------------------------------------------------------------------------- APGD schedule


def test_apgd_checkpoints_are_the_published_ones() -> None:
    # p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 -> ceil(p * 100)
    assert APGD.checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]


def test_apgd_halves_the_step_when_the_loss_stalls(affine) -> None:
    """Constant loss: condition (1) holds at all 8 checkpoints, so the step is halved 8
    times and the result is the best (= starting) point. Affine model: the loss rises at
    every step until the corner of the ball is reached, then stalls."""

    class Flat(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros(x.shape[0], 10) + 0 * x.flatten(1)[:, :10]

    eps = 8 / 255
    x, y = torch.full((1, 3, 4, 4), 0.5), torch.tensor([0])
    atk = APGD(Flat(), eps=eps, steps=100)
    atk(x, y)
    assert atk.final_step_size.tolist() == pytest.approx([2 * eps / 2**8])
    model, xa, ya = affine
    atk = APGD(model, eps=eps / 4, steps=100)
    adv = atk(xa, ya)
    with torch.no_grad():
        assert torch.allclose(model.score(adv), _worst_linf_score(model, xa, ya, eps / 4), atol=1e-4)


# --------------------------------------------------------------------------- registry & errors


def test_make_attack_errors_are_clear(models) -> None:
    with pytest.raises(ValueError, match="unknown attack 'nope'.*pgd-linf"):
        make_attack("nope", models["noisy"])
    with pytest.raises(TypeError, match="does not take kappa"):
        make_attack("pgd-linf", models["noisy"], kappa=1.0)
    with pytest.raises(ValueError, match="one-step"):
        make_attack("fgsm", models["noisy"], steps=20)
    with pytest.raises(ValueError, match="unbounded"):
        make_attack("cw-l2", models["noisy"], eps=0.5)
    with pytest.raises(ValueError, match="eot_samples"):
        make_attack("pgd-linf", models["noisy"], eot_samples=0)
    # None means "the default": one keyword set fits every attack
    assert make_attack("fgsm", models["noisy"], steps=None, eps="8/255").eps == pytest.approx(8 / 255)


@pytest.mark.parametrize("text,value", [("8/255", 8 / 255), (" 0.5 ", 0.5), ("2e-2", 0.02), (0.1, 0.1), ("0", 0.0)])
def test_parse_budget(text, value) -> None:
    assert parse_budget(text) == pytest.approx(value)


@pytest.mark.parametrize("text,match", [("8/0", "divides by zero"), ("-1", ">= 0"), ("abc", "not a number"),
                                        ("nan", "finite"), (True, "number")])
def test_parse_budget_rejects(text, match) -> None:
    with pytest.raises(ValueError, match=match):
        parse_budget(text)


@pytest.mark.parametrize("kw,match", [({"kappa": float("nan")}, "kappa must be a finite number >= 0"),
                                      ({"kappa": -0.5}, "kappa must be a finite number >= 0"),
                                      ({"kappa": float("inf")}, "kappa"), ({"kappa": True}, "kappa"),
                                      ({"initial_const": 0.0}, "initial_const must be a finite number > 0"),
                                      ({"initial_const": float("inf")}, "initial_const"),
                                      ({"lr": float("nan")}, "lr must be a finite number > 0")])
def test_cw_rejects_bad_numbers(models, kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        make_attack("cw-l2", models["noisy"], **kw)


def test_bad_inputs_are_refused(models) -> None:
    atk = PGD(models["noisy"], steps=1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        atk(torch.full((1, 3, 32, 32), 2.0), torch.tensor([0]))
    with pytest.raises(ValueError, match="labels"):
        atk(torch.rand(2, 3, 32, 32), torch.tensor([0]))


def test_progress_callback_counts_steps(models, batch) -> None:
    seen: list[tuple[int, int]] = []
    x, y = batch
    PGD(models["noisy"], steps=4, eot_samples=2, progress=lambda d, t: seen.append((d, t)))(x, y)
    assert seen == [(i, 4) for i in range(1, 5)]


def test_noise_modules_are_the_only_randomness(models, batch) -> None:
    """Sanity of the fixture: the noisy model really is random and the other is not."""
    x, _ = batch
    n = [m for m in models["noisy"].modules() if isinstance(m, GaussianNoise)]
    assert n and not [m for m in models["deterministic"].modules() if isinstance(m, GaussianNoise)]
    with torch.no_grad():
        assert not torch.equal(models["noisy"](x), models["noisy"](x))
        assert torch.equal(models["deterministic"](x), models["deterministic"](x))


def test_out_of_memory_retries_with_a_smaller_chunk(models, batch) -> None:
    """A (simulated) CUDA OOM on big passes: the run is redone with half the chunk, and
    equals a run that used the smaller chunk from the start."""

    class Limited(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] > 6:
                raise torch.OutOfMemoryError("simulated")
            return self.inner(x)

    model, (x, y) = Limited(models["noisy"]).eval(), batch
    with pytest.warns(UserWarning, match="chunk_size=6"):
        a = PGD(model, steps=2, eot_samples=3, chunk_size=12, seed=1)(x, y)
    b = PGD(model, steps=2, eot_samples=3, chunk_size=6, seed=1)(x, y)
    assert torch.equal(a, b)


def test_precision_auto_takes_bf16_only_where_native_and_never_for_cw(models, batch) -> None:
    from ratzoo.eot import bf16_is_fast

    model, (x, y) = models["noisy"], batch
    pgd = PGD(model, eps=8 / 255, steps=2, eot_samples=2)
    pgd.run(x, y)
    assert pgd.params()["precision"] == ("bf16" if bf16_is_fast(x.device) else "fp32")
    cw = make_attack("cw-l2", model, steps=2, search_steps=1)
    cw.run(x, y)
    assert cw.params()["precision"] == "fp32"
    forced = PGD(model, eps=8 / 255, steps=2, precision="fp32")
    forced.run(x, y)
    assert forced.params()["precision"] == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        PGD(model, precision="fp16")


def test_budgets_that_cannot_be_meant_are_refused_and_a_likely_slip_warned() -> None:
    """eps=8 (the /255 forgotten) allows any image and is refused before any pass; an L2 budget
    beyond the image cube's diameter too; the L2 default 0.5 given to Linf runs with a warning."""
    from ratzoo.attacks.base import check_budget

    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    x, y = torch.rand(2, 3, 4, 4), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"did you mean 8/255 = 0\.0314\?"):
        ratzoo.run_attack(model, x, y, "pgd-linf", eps=8, steps=1)
    wrong = model(x).argmax(1) + 1  # every image misclassified when clean: none is attacked, still refused
    with pytest.raises(ValueError, match=r"did you mean 8/255"):
        ratzoo.run_attack(model, x, wrong % 3, "pgd-linf", eps=8, steps=1)
    with pytest.raises(ValueError, match=r"diameter of the image space \(6\.9 for 48 values"):
        ratzoo.run_attack(model, x, y, "pgd-l2", eps=7.0, steps=1)
    ratzoo.run_attack(model, x, y, "pgd-l2", eps=6.9, steps=1)  # within the diameter: allowed
    with pytest.warns(UserWarning, match=r"= 128/255\) is a very large Linf budget"):
        ratzoo.run_attack(model, x, y, "pgd-linf", eps=0.5, steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_budget(64 / 255, "Linf")  # the warning starts above 64/255
        check_budget(1.0, "Linf")  # the whole cube, as the sanity checks ask, is meant
        check_budget(math.sqrt(48), "L2", 48)
