"""Randomized-smoothing certificates: the statistics, the Lipschitz bound, the radius
against exact answers on linear classifiers, and soundness against an EOT attack."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ratzoo
from ratzoo.certification import certify, predict
from ratzoo.commands.certify import CertifyConfig, _parse_radii, build_parser
from ratzoo.commands.certify import main as certify_main
from ratzoo.lipschitz import conv_norm_upper_bound, feature_lipschitz, spectral_norm
from ratzoo.record import CertifyRecord
from ratzoo.stats import binomial_lower_bound, binomial_test_pvalue, clopper_pearson

from conftest import REPO_ROOT

PHI = statistics.NormalDist()


def _randomize_stem_bn(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    bn = model.stem.bn
    bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g))
    bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) * 3 + 0.05)


# --------------------------------------------------------------------------- statistics


def test_clopper_pearson_matches_scipy_beta_quantile() -> None:
    beta = pytest.importorskip("scipy.stats").beta
    worst = 0.0
    for n in (1, 7, 100, 1000, 100_000):
        for k in sorted({0, 1, n // 3, n // 2, n // 2 + 1, int(0.9 * n), int(0.999 * n), n - 1, n}):
            for alpha in (0.001, 0.05):
                ref = beta.ppf(alpha, k, n - k + 1) if k > 0 else 0.0
                worst = max(worst, abs(binomial_lower_bound(k, n, alpha) - ref))
    assert worst < 1e-9


def test_clopper_pearson_is_the_exact_binomial_tail_quantile() -> None:
    """Without scipy: at the bound, P(X >= k) = alpha exactly (rational arithmetic)."""
    alpha = Fraction(1, 1000)

    def tail(k: int, n: int, p: Fraction) -> Fraction:
        return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))

    for n, k in ((10, 7), (30, 29), (60, 31), (60, 60)):
        lb = Fraction(binomial_lower_bound(k, n, float(alpha)))
        assert tail(k, n, lb) <= alpha * (1 + Fraction(1, 10**9))  # a valid (conservative) bound
        assert tail(k, n, lb + Fraction(1, 10**6)) > alpha  # and the largest one


def test_two_sided_interval_and_binomial_test_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for n, k in ((20, 0), (20, 13), (500, 250), (500, 499)):
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
        assert clopper_pearson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)
    for n in (1, 6, 25, 1000):
        for k in range(0, n + 1, max(1, n // 13)):
            assert binomial_test_pvalue(k, n) == pytest.approx(stats.binomtest(k, n, 0.5).pvalue, rel=1e-9, abs=1e-15)


def test_bound_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        binomial_lower_bound(11, 10, 0.01)
    with pytest.raises(ValueError, match="alpha"):
        binomial_lower_bound(5, 10, 0.0)


# --------------------------------------------------------------------------- Lipschitz


def _explicit_matrix(linear, shape: tuple[int, ...]) -> torch.Tensor:
    d = math.prod(shape)
    basis = torch.eye(d, dtype=torch.float64).view(d, *shape)
    with torch.no_grad():
        return linear(basis).reshape(d, -1).T  # (out, in)


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 1), (1, 0)])
def test_power_iteration_and_dft_bound_match_explicit_svd(stride: int, padding: int) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, stride=stride, padding=padding, bias=False).double()
    shape = (3, 6, 6)
    exact = float(torch.linalg.svdvals(_explicit_matrix(conv, shape))[0])
    est, _ = spectral_norm(conv, shape, iters=500, tol=1e-13, dtype=torch.float64)
    assert est == pytest.approx(exact, rel=1e-6)
    upper = conv_norm_upper_bound(conv.weight, shape[1:])
    assert exact <= upper * (1 + 1e-12)
    assert upper <= 1.5 * exact  # an upper bound, but not a useless one


def test_feature_lipschitz_bounds_the_models_first_layer() -> None:
    """Normalization, conv and the BN scale all count: compare with the explicit matrix of
    x -> features(x) - features(0) on 3x8x8 inputs."""
    torch.manual_seed(0)
    model = ratzoo.build_model(width=4, noise_kind="fixed", noise_sigma=0.5).eval()
    _randomize_stem_bn(model)
    shape = (3, 8, 8)
    f0 = model.features(torch.zeros(1, *shape)).double()
    exact = float(torch.linalg.svdvals(_explicit_matrix(lambda v: model.features(v.float()).double() - f0, shape))[0])
    bound = feature_lipschitz(model, shape)
    assert bound.power_iteration == pytest.approx(exact, rel=1e-3)
    assert bound.value >= exact * (1 - 1e-6)
    assert bound.upper_bound == bound.value
    assert bound.value <= 1.2 * exact
    # the BN scale matters: shrinking the running variance 4x must double the constant
    model.stem.bn.running_var.mul_(0.25).sub_(0.75 * model.stem.bn.eps)
    assert feature_lipschitz(model, shape).value == pytest.approx(2 * bound.value, rel=1e-4)


def test_lipschitz_and_certify_refuse_unsuitable_models() -> None:
    x = torch.rand(1, 3, 8, 8)
    noisy = ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.5)
    with pytest.raises(ValueError, match="eval"):
        certify(noisy.train(), x, n0=2, n=2)
    with pytest.raises(ValueError, match="eval"):
        feature_lipschitz(noisy.train(), (3, 8, 8))
    noisy.eval()
    with pytest.raises(ValueError, match="deterministic"):
        certify(ratzoo.build_model(width=2).eval(), x, n0=2, n=2)
    with ratzoo.noise_control(noisy, enabled=False), pytest.raises(ValueError, match="deterministic"):
        predict(noisy, x, n=2)
    with pytest.raises(TypeError, match="ratzoo model"):
        certify(nn.Sequential(nn.Flatten(), nn.Linear(192, 2)), x, n0=2, n=2)
    with pytest.raises(ValueError, match="n0"):
        certify(noisy, x, n0=0, n=2)
    noisy.stem = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU()).eval()
    with pytest.raises(NotImplementedError, match="lipschitz="):
        certify(noisy, x, n0=2, n=2)


def test_rse_is_certified_by_its_input_noise_and_pni_is_refused() -> None:
    """RSE smooths with its input noise (std 0.4 on the pixels; its inner noise belongs to the
    base classifier); PNI's weight noise is no additive Gaussian, so no certificate applies."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8)
    rse = ratzoo.build_model(width=2, noise_kind="rse", noise_sigma=0.4, noise_inner=0.1, noise_layer=0).eval()
    certs = certify(rse, x, n0=10, n=200, seed=0)
    assert not all(c.abstained for c in certs)
    for c in certs:
        assert c.sigma == pytest.approx(0.4) and c.lipschitz == 1.0 and c.radius == c.feature_radius
        if not c.abstained:
            assert c.radius == pytest.approx(0.4 * PHI.inv_cdf(c.p_lower))
    rse.noise.enabled = False  # the inner noise alone smooths nothing the certificate knows
    with pytest.raises(ValueError, match="input noise, which is switched off"):
        certify(rse, x, n0=2, n=2)
    pni = ratzoo.build_model(width=2, noise_kind="pni", noise_sigma=0.25).eval()
    for call in (lambda: certify(pni, x, n0=2, n=2), lambda: predict(pni, x, n=2)):
        with pytest.raises(ValueError, match="PNI model: its noise is on the weights"):
            call()


# --------------------------------------------------------------------------- exact answers


class _LinearHead(nn.Module):
    """Two logits whose difference is ``w . flatten(h) + b``."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.register_buffer("w", w.flatten())
        self.b = b

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        m = h.flatten(1) @ self.w + self.b
        return torch.stack([-m / 2, m / 2], 1)


@pytest.mark.parametrize("kind", ["fixed", "learned"])
def test_linear_classifier_input_noise_radius_is_just_below_the_exact_distance(kind: str) -> None:
    """For f(x) = sign(g . x + c) and input noise, the smoothed classifier is f itself and
    its exact robust radius is |g . x + c| / ||g||: Cohen's radius with the true pA.

    ``learned``: per-channel stds (0.25, 0.6, 0.9) and g supported on channel 0 only, so
    the votes see std 0.25 and only the *smallest* std gives the exact radius (using a
    larger one would certify up to 3.6x too far)."""
    sigma, shape = 0.25, (3, 8, 8)
    model = ratzoo.build_model(width=2, noise_kind=kind, noise_sigma=sigma, noise_layer=0).eval()
    model.stem = nn.Identity()
    w = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    if kind == "learned":
        with torch.no_grad():
            model.noise.log_sigma.copy_(torch.tensor([0.25, 0.6, 0.9]).log())
        w[1:] = 0
    x0 = torch.full((1, *shape), 0.5)
    z0 = (x0 - model.mean) / model.std
    model.head = _LinearHead(w, -float((z0.flatten() * w.flatten()).sum()))  # boundary through x0
    model.eval()
    g = (w / model.std[0]).flatten()  # gradient of the margin in pixel space
    u = (g / g.norm()).view(1, *shape)
    dist = torch.tensor([0.05, 0.3, 0.7, 1.0, 1.6, 2.2, 2.6, -0.4, -1.3]) * sigma
    x = x0 + dist.view(-1, 1, 1, 1) * u
    certs = certify(model, x, n0=100, n=100_000, alpha=0.001, chunk_size=20_000, seed=0)
    for c, d in zip(certs, dist.tolist()):
        assert c.label == (1 if d > 0 else 0)
        assert c.radius <= abs(d)  # never beyond the exact distance
        assert abs(d) - c.radius < 0.06 * sigma  # and close to it with 100k draws
        assert c.lipschitz == 1.0 and c.sigma == pytest.approx(sigma)
    assert (predict(model, x, n=2000, seed=1) == torch.tensor([c.label for c in certs])).sum() >= 7


def test_linear_head_after_layer_one_radius_is_below_the_exact_distance() -> None:
    """Layer-1 noise on a linear head: the smoothed classifier's exact input-space radius
    is |w . stem(x) + c| / ||A^T w|| (A: the stem's linear part); ours divides by L >= ||A^T w|| / ||w||."""
    sigma, shape = 0.5, (3, 8, 8)
    torch.manual_seed(0)
    model = ratzoo.build_model(width=4, noise_kind="fixed", noise_sigma=sigma).eval()
    _randomize_stem_bn(model, 1)
    w = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(2))
    x0 = torch.full((1, *shape), 0.5)
    with torch.no_grad():
        h0 = model.features(x0)
    model.head = _LinearHead(w, -float((h0.flatten() * w.flatten()).sum()))
    model.eval()
    x = x0 + 0.05 * torch.randn(8, *shape, generator=torch.Generator().manual_seed(3))
    x.requires_grad_(True)
    margin = model.head.w @ model.features(x).flatten(1).T + model.head.b
    (grad,) = torch.autograd.grad(margin.sum(), x)  # A^T w, per image
    exact = (margin.detach().abs() / grad.flatten(1).norm(dim=1)).tolist()
    certs = certify(model, x.detach(), n0=100, n=20_000, seed=0)
    assert sum(c.radius > 0 for c in certs) >= 4
    for c, d in zip(certs, exact):
        assert c.radius <= d
        assert c.feature_radius == pytest.approx(c.radius * c.lipschitz)


# --------------------------------------------------------------------------- soundness


def _tiny_task(n: int, seed: int, shape: tuple[int, ...] = (3, 8, 8)) -> tuple[torch.Tensor, torch.Tensor]:
    """Four classes: the label sets the mean grey level (0.03 apart) of a noisy image, so
    the class boundaries lie at L2 distances comparable to the certified radii."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = 0.5 + 0.03 * (y.view(-1, 1, 1, 1) - 1.5) + 0.3 * (torch.rand(n, *shape, generator=g) - 0.5)
    return x.clamp(0, 1), y


def _train_tiny_noisy_model(noise_layer: int, sigma: float) -> nn.Module:
    torch.manual_seed(0)
    model = ratzoo.build_model(width=4, num_classes=4, noise_kind="fixed", noise_sigma=sigma, noise_layer=noise_layer)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = _tiny_task(2048, seed=0)
    with ratzoo.noise_control(model, seed=0):
        for step in range(120):
            i = torch.randint(0, len(y), (64,), generator=torch.Generator().manual_seed(step))
            loss = F.cross_entropy(model(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def _smoothed_is_not(model: nn.Module, x: torch.Tensor, label: torch.Tensor, draws: int, seed: int) -> torch.Tensor:
    """True where, with confidence 1 - 1e-3, the smoothed classifier's top class is not ``label``
    (the probability of ``label`` is below 1/2 by a one-sided Clopper-Pearson bound)."""
    p = ratzoo.predict_proba(model, x, samples=draws, seed=seed)
    hits = p.votes.gather(1, label.view(-1, 1)).squeeze(1).tolist()
    return torch.tensor([1 - binomial_lower_bound(draws - k, draws, 1e-3) < 0.5 for k in hits])


def _attack_ladder_respects_radius(model: nn.Module, xs: torch.Tensor, labels: torch.Tensor, radius: torch.Tensor,
                                   budgets: tuple[float, ...], steps: int, draws: int) -> tuple[int, float]:
    """EOT PGD-L2 at each budget; asserts that wherever the smoothed prediction provably changed,
    the perturbation is at least the certified radius. Returns (number of such changes, the
    smallest ratio perturbation norm / radius among them)."""
    from ratzoo.attacks import PGDL2

    flips, closest = 0, math.inf
    for eps in budgets:
        adv = PGDL2(model, eps=eps, steps=steps, eot_samples=8, seed=1)(xs, labels)
        norm = (adv - xs).flatten(1).norm(dim=1)
        flipped = _smoothed_is_not(model, adv, labels, draws=draws, seed=2)
        flips += int(flipped.sum())
        assert not bool((flipped & (norm < radius)).any()), (
            f"eps={eps}: the smoothed prediction changed inside the certified radius: "
            f"norms {norm[flipped].tolist()} vs radii {radius[flipped].tolist()}"
        )
        if flipped.any():
            closest = min(closest, float((norm / radius)[flipped].min()))
    return flips, closest


@pytest.mark.parametrize("noise_layer, sigma", [(0, 0.25), (1, 1.0)])
def test_attacks_never_change_the_smoothed_prediction_inside_the_certified_radius(
    noise_layer: int, sigma: float
) -> None:
    """EOT PGD-L2 at a ladder of budgets against a small trained noisy model: wherever the
    smoothed prediction provably changed, the perturbation is at least the certified radius.
    (Measured here: the closest such perturbation is ~1.4x the radius for input noise and
    ~1.8x for layer-1 noise, so a certificate 1.5-2x too large fails this test.)"""
    model = _train_tiny_noisy_model(noise_layer, sigma)
    x, y = _tiny_task(24, seed=1)
    certs = certify(model, x, n0=100, n=4000, alpha=0.001, seed=0)
    keep = [i for i, c in enumerate(certs) if c.label >= 0]
    # not vacuous: at least half the images get a certificate (14 of 24 on an AVX2 AMD EPYC)
    assert len(keep) >= len(x) // 2
    xs, labels = x[keep], torch.tensor([certs[i].label for i in keep])
    radius = torch.tensor([certs[i].radius for i in keep])
    flips, closest = _attack_ladder_respects_radius(model, xs, labels, radius, (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4,
                                                                                0.5, 0.7), steps=15, draws=500)
    assert flips >= 10, "the attack hardly changed the smoothed prediction: the check above proved little"
    print(f"noise layer {noise_layer}: {flips} flips, smallest flip norm / certified radius = {closest:.2f}")


def test_certificates_of_the_bundled_rn_hold_against_eot_pgd_on_cifar(cifar_root: Path) -> None:
    """The same soundness check on a real model: the bundled R.N. (noise after its trained
    first layer, Lipschitz bound ~33) on CIFAR-10 test images. A certificate that forgot to
    divide by the first layer's Lipschitz constant would be ~33x too large and fail here.
    (Measured with these settings on the first 12 test images: radii 0.005-0.074, 12 provable
    flips, the closest at 3.4x its radius, so a certificate over 3.4x too large fails.)"""
    from ratzoo.data import to_tensor
    from ratzoo.zoo import checkpoints_dir

    if not (checkpoints_dir() / "rn" / "model.safetensors").is_file():
        pytest.skip("the bundled rn checkpoint is not in this checkout")
    model = ratzoo.load("rn")
    xs, ys = ratzoo.load_cifar10("test", root=cifar_root)
    x = to_tensor(xs[:12])
    certs = certify(model, x, n0=100, n=1000, alpha=0.001, seed=0)
    keep = [i for i, c in enumerate(certs) if c.label >= 0]
    assert len(keep) >= 8, "most images get a certificate"
    xs_k, labels = x[keep], torch.tensor([certs[i].label for i in keep])
    radius = torch.tensor([certs[i].radius for i in keep])
    assert float(radius.max()) < 0.2, "first-layer noise with L ~ 33 certifies only small radii"
    flips, _ = _attack_ladder_respects_radius(model, xs_k, labels, radius, (0.05, 0.25, 0.5), steps=10,
                                              draws=400)
    assert flips >= 5, "the attack hardly changed the smoothed prediction: the check above proved little"


# --------------------------------------------------------------------------- CLI


def test_cli_writes_certified_accuracy_json(tmp_path: Path, tiny_cifar_root: Path, subprocess_env) -> None:
    torch.manual_seed(0)
    model = ratzoo.build_model(width=2, noise_kind="learned", noise_sigma=0.5).eval()
    ck = ratzoo.save_checkpoint(model, tmp_path / "noisy")
    out = tmp_path / "cert.json"
    cmd = [sys.executable, "-m", "ratzoo", "certify", "--model", str(ck), "--draws", "200", "--draws0", "20",
           "--n", "6", "--radii", "0,0.05,0.1", "--data-dir", str(tiny_cifar_root),
           "--out", str(out), "--quiet", "--chunk-size", "200"]
    subprocess.run(cmd, env=subprocess_env, check=True, capture_output=True, text=True, timeout=120)
    rec = json.loads(out.read_text())
    assert rec["complete"] and rec["n"] == 6 and (rec["params"]["n"], rec["params"]["n0"]) == (200, 20)
    assert [r["index"] for r in rec["images"]] == list(range(6))
    assert set(rec["certified_accuracy"]) == {"0", "0.05", "0.1"}
    for r, v in rec["certified_accuracy"].items():
        assert v == sum(i["correct"] and i["radius"] >= float(r) for i in rec["images"]) / 6
    assert rec["lipschitz"]["value"] >= rec["lipschitz"]["power_iteration"] > 0
    assert rec["noise"]["per_channel"] and rec["versions"]["torch"] == torch.__version__
    assert list(rec) == list(CertifyRecord(model="m", n=0).to_json())  # the typed record, every key in order
    first = rec["images"]
    again = subprocess.run(cmd, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "pass --resume" in again.stderr  # finished parts are never silently redone
    subprocess.run(cmd + ["--resume"], env=subprocess_env, check=True, capture_output=True, text=True, timeout=120)
    assert json.loads(out.read_text())["images"] == first


def _without_seconds(images: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in images]


def test_cli_resumes_from_its_parts_and_from_a_record_written_before_them(
        tmp_path: Path, tiny_cifar_root: Path, subprocess_env) -> None:
    torch.manual_seed(1)
    ck = ratzoo.save_checkpoint(ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.5).eval(),
                                tmp_path / "noisy")
    out = tmp_path / "cert.json"
    env = {**subprocess_env, "RATZOO_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "ratzoo", "certify", "--model", str(ck), "--draws", "200", "--draws0", "20",
           "--n", "5", "--part-size", "2", "--data-dir", str(tiny_cifar_root), "--out", str(out), "--quiet",
           "--batch-size", "200", "--resume"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=120)
    first = json.loads(out.read_text())
    parts = sorted((tmp_path / "cache" / "certify").glob("*/*.json"))
    assert first["complete"] and [p.name for p in parts] == ["000000-000002.json", "000002-000004.json",
                                                             "000004-000005.json"]
    parts[1].unlink()  # a kill while the middle part was certified
    run = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=120)
    assert "2 of 3 parts done" in run.stderr
    again = json.loads(out.read_text())
    assert _without_seconds(again["images"]) == _without_seconds(first["images"])  # seeds are per image
    assert [r["seconds"] for r in again["images"][:2]] == [r["seconds"] for r in first["images"][:2]]  # reused
    # a record written before the parts store (no parts on disk) gives its whole parts back
    for p in parts[0].parent.glob("*.json"):
        p.unlink()
    run = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=120)
    assert "3 parts taken from the images already certified" in run.stderr
    assert json.loads(out.read_text())["images"] == again["images"]


def _config(argv: list[str]) -> CertifyConfig:
    return CertifyConfig(**vars(build_parser().parse_args(["--model", "rat", *argv])))


@pytest.mark.parametrize("argv", [["--n", "7"], ["--n-images", "7"], ["--n-im", "7"], ["--n=7"]])
def test_cli_n_counts_images_and_n_images_is_the_same_flag(argv: list[str]) -> None:
    cfg = _config([*argv, "--draws", "300", "--draws0", "30"])
    assert (cfg.n, cfg.draws, cfg.draws0) == (7, 300, 30)
    assert cfg.params(64)["n"] == 300 and cfg.params(64)["n0"] == 30  # the record's names for the draws
    assert (_config([]).n, _config([]).draws, _config([]).draws0) == (500, 100_000, 100)


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "checkpoints" / "results").glob("certify_*.json")),
                         ids=lambda p: p.stem)
def test_the_documented_command_resumes_the_committed_certificates(path: Path) -> None:
    rec = CertifyRecord.load(path)
    doc = (REPO_ROOT / "docs" / "certified.md").read_text()
    argv = doc.split("python -m ratzoo certify --model rn,rat,lerat")[1].splitlines()[0].rstrip("\\").split()
    assert _config(argv).params(rec.params["batch_size"]) == rec.params  # so --resume keeps its images


@pytest.mark.parametrize("argv, said", [
    (["--n0", "20"], "--n0 is now --draws0"),
    (["--n0"], "--n0 is now --draws0"),
    (["--n", "2000", "--n-images", "200"], "the draws per image are --draws"),  # the committed records' command
    (["--n-im", "200", "--n", "2000"], "the draws per image are --draws"),
    (["--draws", "0"], "--draws must be a positive integer, got 0"),
    (["--n", "-5"], "--n must be a positive integer, got -5"),
    (["--chunk-size", "-1"], "--chunk-size must be an integer >= 0, got -1"),
    (["--batch-size", "-1"], "--chunk-size must be an integer >= 0, got -1"),
])
def test_cli_refuses_the_draws_written_as_before_with_the_new_flag_named(argv, said, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        certify_main(["--model", "rat", *argv])
    assert e.value.code == 2 and said in capsys.readouterr().err


def test_cli_refuses_more_images_than_the_split_has(tiny_cifar_root: Path, tmp_path: Path, capsys) -> None:
    argv = ["--model", "rat", "--data-dir", str(tiny_cifar_root), "--out", str(tmp_path / "c.json"), "--quiet"]
    assert certify_main([*argv, "--n", "100000"]) == 2  # an old command's draws, now 100000 images of 64
    err = capsys.readouterr().err
    assert "--n 100000 is more than the 64 images of the test split" in err and "--draws" in err, err
    assert not (tmp_path / "c.json").exists()


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "checkpoints" / "results").glob("certify_*.json")),
                         ids=lambda p: p.stem)
def test_every_committed_certificate_loads_and_is_written_back_byte_for_byte(path: Path, tmp_path: Path) -> None:
    rec = CertifyRecord.load(path)
    assert rec.n == len(rec.images) > 0 and rec.complete and set(rec.certified_accuracy) == {f"{r:g}" for r in rec.radii}
    rec.save(tmp_path / path.name)
    assert (tmp_path / path.name).read_bytes() == path.read_bytes()


def test_a_certificate_with_a_key_the_schema_does_not_know_is_refused() -> None:
    data = CertifyRecord(model="m", n=0).to_json()
    assert CertifyRecord.from_json(data) == CertifyRecord(model="m", n=0)
    with pytest.raises(ValueError, match="unknown key.s. radius_max"):
        CertifyRecord.from_json({**data, "radius_max": 1.0})
    with pytest.raises(ValueError, match="missing key.s. model"):
        CertifyRecord.from_json({k: v for k, v in data.items() if k != "model"})
    with pytest.raises(ValueError, match="not a ratzoo certify record"):
        CertifyRecord.from_json({**data, "kind": "benchmark"})


@pytest.mark.parametrize("text", ["nan", "0,nan", "-0.1", "0,inf", "x", ""])
def test_bad_radii_are_refused_with_the_flag_named(text: str) -> None:
    with pytest.raises(ValueError, match="--radii"):
        _parse_radii(text)
    assert _parse_radii("0.5, 0,0.25") == [0.0, 0.25, 0.5]


def test_batch_size_is_chunk_sizes_old_name_and_warns() -> None:
    torch.manual_seed(0)
    model = ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.5).eval()
    x = torch.rand(2, 3, 8, 8)
    new = certify(model, x, n0=10, n=50, chunk_size=40, seed=0)
    with pytest.warns(FutureWarning, match="now chunk_size"):
        old = certify(model, x, n0=10, n=50, batch_size=40, seed=0)
    assert [c.counts for c in old] == [c.counts for c in new]  # the same chunks, so the same draws
    with pytest.raises(TypeError, match="chunk_size only"):
        predict(model, x, n=50, chunk_size=40, batch_size=40)
    assert _config(["--batch-size", "7"]).chunk_size == 7 == _config(["--chunk-size", "7"]).chunk_size
