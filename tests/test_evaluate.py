"""The evaluator: decision rule, CIs, C&W thresholds, sanity checks, the CLI."""

from __future__ import annotations

import inspect
import json
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

import ratzoo
import ratzoo.commands.evaluate as ev_cli
import ratzoo.evaluation as ev
from ratzoo import cli, sanity
from ratzoo.commands.evaluate import main
from ratzoo.evaluation import evaluate, wilson_interval
from ratzoo.judge import DEFAULT_DECISION_SAMPLES, DEFAULT_EOT
from ratzoo.sanity import check_large_budget, check_monotone

from conftest import PYTHON, REPO_ROOT, train_template_mlp


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """An undefended MLP on faint-template 8x8 images (conftest.train_template_mlp)."""
    model, x, y = train_template_mlp(100)
    return model, x, y


@pytest.fixture(scope="module")
def noisy() -> nn.Module:
    torch.manual_seed(0)
    return ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.3).eval()


REQUIRED = ("model", "attack", "params", "n", "seed", "clean_accuracy", "clean_accuracy_ci95", "robust_accuracy",
            "robust_accuracy_ci95", "single_draw_accuracy", "decision_samples", "decision_rule", "ci_method",
            "elapsed_s", "versions")


# --------------------------------------------------------------------------- statistics


def test_wilson_interval_known_values() -> None:
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_derived_seeds_are_independent_streams() -> None:
    s = {ev.derive_seed(0, k) for k in (1, 2, 3)} | {ev.derive_seed(1, 1)}
    assert len(s) == 4 and all(0 <= v < 2**63 for v in s)


# --------------------------------------------------------------------------- evaluate


def test_the_training_jobs_calls(noisy, trained) -> None:
    """What train/main.py calls, and the fields it reads: each number is what the record's
    per-image outcomes say (the accuracies their means, the intervals their Wilson intervals),
    the attacks break images the clean pass got right, and the noise stays on."""
    model, x, y = trained
    foreign = _InputNoise(model, 0.1).eval()
    x, y = x[:40], y[:40]
    for m in (foreign, noisy):
        xm = x if m is foreign else torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        ym = y if m is foreign else torch.arange(6)
        clean = evaluate(m, xm, ym, seed=0, attack="none")
        for kw in (dict(attack="none"), dict(attack="pgd-linf", eps=8 / 255, steps=2, eot_samples=2),
                   dict(attack="pgd-l2", eps=0.5, steps=2, eot_samples=2)):
            rec = evaluate(m, xm, ym, seed=0, **kw)
            assert set(REQUIRED) <= set(rec) and rec["n"] == len(ym) and rec["randomized"]
            per_image = {"clean": rec["clean_correct_per_image"],  # no attack: robust is the clean verdict
                         "robust": rec.get("robust_per_image", rec["clean_correct_per_image"])}
            assert ("robust_per_image" in rec) == (kw["attack"] != "none")
            for key in ("clean", "robust"):
                k = sum(per_image[key])
                assert rec[f"{key}_accuracy"] == k / len(ym)
                assert rec[f"{key}_accuracy_ci95"] == pytest.approx(list(wilson_interval(k, len(ym))))
            assert rec["clean_correct_per_image"] == clean["clean_correct_per_image"]  # one clean verdict per seed
            assert all(c or not r for c, r in zip(per_image["clean"], per_image["robust"]))
            assert 0 <= rec["single_draw_accuracy"] <= 1
            json.dumps(rec, allow_nan=False)
            if m is foreign and kw["attack"] != "none":
                assert 0 < rec["robust_accuracy"] < rec["clean_accuracy"]  # the attack did break images
    assert not noisy.training and noisy.noise.enabled


def test_undefended_model_numbers(trained) -> None:
    model, x, y = trained
    clean = evaluate(model, x, y, attack="none")
    assert clean["clean_accuracy"] > 0.9 and clean["robust_accuracy"] == clean["clean_accuracy"]
    assert clean["decision_samples"] == 1  # deterministic: one pass decides
    rec = evaluate(model, x, y, attack="pgd-linf", eps="8/255", steps=20)
    assert rec["robust_accuracy"] < 0.05
    assert rec["params"]["eps"] == pytest.approx(8 / 255) and rec["params"]["steps"] == 20
    # a zero budget changes nothing
    assert evaluate(model, x, y, attack="pgd-linf", eps=0.0, steps=2)["robust_accuracy"] == clean["clean_accuracy"]


class _InputNoise(nn.Module):
    """A foreign randomized model: Gaussian noise on the input, from torch's global RNG."""

    def __init__(self, base: nn.Module, sigma: float) -> None:
        super().__init__()
        self.base, self.sigma = base, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x + self.sigma * torch.randn_like(x))


def test_evaluate_is_reproducible_and_seeded(trained) -> None:
    """The same seed repeats every per-image outcome of an attack that broke some images and not
    others; another seed draws other noise (its perturbations differ), so the seed is used."""
    model, x, y = trained
    noisy = _InputNoise(model, 0.1).eval()
    kw = dict(attack="pgd-linf", eps=8 / 255, steps=3, eot_samples=3, decision_samples=20)
    a, b, c = (evaluate(noisy, x[:32], y[:32], seed=s, **kw) for s in (4, 4, 5))
    assert a["passes"]["image_draws"] > 0 and 0 < a["robust_accuracy"] < a["clean_accuracy"]  # the attack had work
    for k in ("clean_accuracy", "robust_accuracy", "single_draw_accuracy", "clean_single_draw_accuracy",
              "clean_correct_per_image", "robust_per_image", "linf_per_image", "l2_per_image", "passes"):
        assert a[k] == b[k], k
    assert a["l2_per_image"] != c["l2_per_image"]  # the negative control: the seed reaches the draws


def test_cw_thresholds_follow_the_norms(trained) -> None:
    model, x, y = trained
    x, y = x[:40], y[:40]
    rec = evaluate(model, x, y, attack="cw-l2", steps=20, search_steps=5, thresholds=(0.05, 0.2, 0.5, 5.0))
    norms = torch.tensor([float("inf") if v is None else v for v in rec["norms_per_image"]])
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    accs = [rec["accuracy_at"][k]["accuracy"] for k in ("0.05", "0.2", "0.5", "5")]
    assert accs == sorted(accs, reverse=True)  # non-increasing in the threshold
    for t, acc in zip((0.05, 0.2, 0.5, 5.0), accs):
        # deterministic model: a found example is a decision-rule success
        assert acc == pytest.approx(float((correct & (norms > t)).float().mean()))
    assert accs[-1] == rec["robust_accuracy"] == 0.0
    assert {"median", "mean", "q25", "q75", "found_fraction"} <= set(rec["norms"])
    assert rec["norms"]["q25"] <= rec["norms"]["median"] <= rec["norms"]["q75"]


def test_train_mode_model_gets_a_warning(trained) -> None:
    model, x, y = trained
    model.train()
    try:
        with pytest.warns(UserWarning, match="train"):
            evaluate(model, x[:4], y[:4], attack="none")
        assert model.training  # warned, not switched
    finally:
        model.eval()


def test_unknown_attack_raises(trained) -> None:
    model, x, y = trained
    with pytest.raises(ValueError, match="unknown attack"):
        evaluate(model, x, y, attack="deepfool")


# --------------------------------------------------------------------------- sanity checks


def _rec(eps: float, acc: float, n: int = 100) -> dict:
    k = round(acc * n)
    return {"params": {"eps": eps}, "robust_accuracy": acc, "robust_accuracy_ci95": list(wilson_interval(k, n))}


def test_monotone_check_flags_an_increase() -> None:
    ok = check_monotone([_rec(2 / 255, 0.6), _rec(4 / 255, 0.45), _rec(8 / 255, 0.47)])
    assert ok["passed"]  # +2 points is within the noise of n = 100
    bad = check_monotone([_rec(8 / 255, 0.6), _rec(2 / 255, 0.7), _rec(4 / 255, 0.3)])
    assert not bad["passed"] and "INCREASES" in bad["message"]
    assert bad["violations"][0]["eps_small"] == pytest.approx(4 / 255)


class _Masked(nn.Module):
    """Gradient masking by construction: the input is quantized (zero gradient)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * 4) / 4)


def test_large_budget_check_passes_on_a_real_model_and_flags_masking(trained) -> None:
    model, x, y = trained
    good = check_large_budget(model, x[:50], y[:50], "pgd-linf", steps=10)
    assert good["passed"] and good["eps"] == 1.0
    masked = _Masked(model).eval()
    with torch.no_grad():
        assert (masked(x).argmax(1) == y).float().mean() > 0.5  # still accurate
    bad = check_large_budget(masked, x[:50], y[:50], "pgd-linf", steps=10)
    assert not bad["passed"] and "gradient masking" in bad["message"]


def test_convergence_check_logic(monkeypatch) -> None:
    base = {"attack": "pgd-linf", "seed": 0, "randomized": True, "eot_samples": 5, "decision_samples": 100,
            "params": {"eps": 8 / 255, "steps": 10, "step_size": 2 / 255, "restarts": 1},
            "robust_accuracy": 0.50, "robust_accuracy_ci95": [0.40, 0.60]}

    def fake(model, x, y, attack, seed, decision_samples, **kw):
        acc = 0.5 - (0.2 if kw["steps"] == 20 else 0.0) + (0.15 if kw["eot_samples"] == 10 else 0.0)
        return {"robust_accuracy": acc}

    monkeypatch.setattr(sanity, "evaluate", fake)
    out = sanity.check_convergence(None, None, None, base)
    status = {r["doubled"]: r["status"] for r in out["runs"]}
    assert status == {"steps": "not_converged", "eot_samples": "suspicious_increase"}
    assert not out["passed"] and "has not converged" in out["message"]

    monkeypatch.setattr(sanity, "evaluate", lambda *a, **k: {"robust_accuracy": 0.47})
    assert sanity.check_convergence(None, None, None, base)["passed"]


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def noisy_checkpoint(make_checkpoint) -> Path:
    return make_checkpoint("noisy", noise_kind="fixed", noise_sigma=0.5)


def test_cli_end_to_end(noisy_checkpoint, tiny_cifar_root, tmp_path, subprocess_env) -> None:
    out = tmp_path / "res" / "r.json"
    cmd = [PYTHON, "-m", "ratzoo", "evaluate", "--model", str(noisy_checkpoint), "--attack", "pgd-linf",
           "--eps", "8/255", "--steps", "2", "--eot-samples", "3", "--n", "6", "--decision-samples", "10",
           "--data-dir", str(tiny_cifar_root), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "attack: 100%|" in proc.stderr and "robust accuracy" in proc.stderr  # tqdm bar done, summary
    rec = json.loads(out.read_text())
    assert set(REQUIRED) <= set(rec)
    assert rec["model"] == str(noisy_checkpoint) and rec["attack"] == "pgd-linf" and rec["n"] == 6
    assert rec["params"]["eps"] == pytest.approx(8 / 255) and rec["params"]["eot_samples"] == 3
    assert rec["randomized"] and rec["decision_samples"] == 10
    assert {"torch", "python", "ratzoo"} <= set(rec["versions"])


def test_cli_cw_and_sweeps(noisy_checkpoint, tiny_cifar_root, tmp_path) -> None:
    common = ["--model", str(noisy_checkpoint), "--n", "4", "--eot", "2", "--decision-samples", "10",
              "--data-dir", str(tiny_cifar_root), "--no-progress"]
    out = tmp_path / "cw.json"
    assert main([*common, "--attack", "cw-l2", "--steps", "3", "--search-steps", "2", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert {"norms", "accuracy_at", "norms_per_image"} <= set(rec) and set(rec["accuracy_at"]) == {"0.25", "0.5", "1"}
    fooled = rec["fooled_per_image"]  # clean-correct = robust + fooled, image by image
    assert len(fooled) == 4 and rec["robust_accuracy"] + sum(fooled) / 4 == pytest.approx(rec["clean_accuracy"])

    out = tmp_path / "sweep.json"
    assert main([*common, "--attack", "fgsm", "--sweep-eps", "1/255,4/255,8/255", "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["sweep"] == "eps" and len(rec["points"]) == 3
    assert [p["params"]["eps"] for p in rec["points"]] == pytest.approx([1 / 255, 4 / 255, 8 / 255])
    assert rec["sanity"][0]["check"] == "monotone_in_eps"

    out = tmp_path / "sweep_eot.json"
    assert main([*common, "--attack", "pgd-linf", "--steps", "2", "--sweep-eot", "1,2", "--sanity",
                 "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert [p["eot_samples"] for p in rec["points"]] == [1, 2]
    assert {c["check"] for c in rec["sanity"]} == {"monotone_in_eot_samples", "large_budget"}


@pytest.mark.parametrize("args,message", [
    (["--attack", "deepfool"], "unknown attack 'deepfool'"),
    (["--eps", "-0.1"], "eps must be a finite number >= 0"),
    (["--eps", "8/0"], "divides by zero"),
    (["--eps", "eight"], "not a number"),
    (["--steps", "0"], "--steps must be a positive integer"),
    (["--attack", "cw-l2", "--eps", "0.5"], "unbounded"),
    (["--sweep-eps", "1/255,", "--sweep-eot", "1"], "not both"),
    (["--eps", "8"], "did you mean 8/255 = 0.0314?"),
    (["--attack", "fgsm", "--sweep-eps", "2/255,16"], "--sweep-eps=16 is an Linf budget larger than"),
    (["--attack", "pgd-l2", "--eps", "128"], "larger than the diameter of the image space (55.4"),
])
def test_cli_bad_arguments(args, message, noisy_checkpoint, capsys) -> None:
    assert main(["--model", str(noisy_checkpoint), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("args,message", [
    (["--model", "m", "--n", "ten"], "argument --n: --n must be a positive integer, got 'ten'"),
    (["--model", "m", "--n", "0"], "--n must be a positive integer, got 0"),
    (["--model", "m", "--eot-samples", "0"], "--eot-samples must be a positive integer, got 0"),
    (["--model", "m", "--restarts", "1.5"], "--restarts must be a positive integer, got '1.5'"),
    (["--model", "m", "--attack", "none", "--eot", "0"], "--eot-samples must be a positive integer, got 0"),
    (["--model", "m", "--decision-samples", "-3"], "--decision-samples must be a positive integer, got -3"),
    (["--model", "m", "--offset", "-1"], "--offset must be an integer >= 0, got -1"),
    (["--model", "m", "--sweep-eot", "1,0"], "--sweep-eot must be a positive integer, got 0"),
    (["--model", "m", "--thresholds", ","], "--thresholds is empty"),
    (["--eot", "2"], "the following arguments are required: --model"),
])
def test_cli_refuses_a_bad_flag_by_name_before_loading_anything(args, message, monkeypatch, capsys) -> None:
    loaded = []
    monkeypatch.setattr(cli, "load_model", lambda *a: loaded.append(a))
    monkeypatch.setattr(cli, "load_data", lambda *a: loaded.append(a))
    assert main(args) == 2  # returned, as every refusal, also where argparse refuses the value
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert loaded == []


def test_cli_defaults_are_the_library_constants_and_values_are_typed() -> None:
    parse = ev_cli.build_parser().parse_args
    cfg = ev_cli.EvaluateConfig(**vars(parse(["--model", "m"])))
    assert cfg == ev_cli.EvaluateConfig(model="m")
    assert (cfg.eot_samples, cfg.decision_samples) == (DEFAULT_EOT, DEFAULT_DECISION_SAMPLES)
    signature = inspect.signature(evaluate).parameters  # the function's defaults are the CLI's
    assert (cfg.attack, cfg.thresholds) == (signature["attack"].default, signature["thresholds"].default)
    assert cfg.validate() == ("pgd-linf", {"eot_samples": DEFAULT_EOT}, {})
    cfg = ev_cli.EvaluateConfig(**vars(parse(["--model", "m", "--attack", "pgd", "--eps", "8/255", "--steps", "5",
                                          "--sweep-eot", "1, 2", "--thresholds", "1/4,1"])))
    assert (cfg.eps, cfg.steps, cfg.sweep_eot, cfg.thresholds) == (8 / 255, 5, (1, 2), (0.25, 1.0))
    assert cfg.validate() == ("pgd-linf", {"eps": 8 / 255, "steps": 5, "eot_samples": DEFAULT_EOT},
                              {"key": "eot_samples", "values": [1, 2]})


def test_cli_unknown_model(capsys) -> None:
    assert main(["--model", "no-such-model"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


# --------------------------------------------------------------------------- merging parts


def test_cw_found_fraction_counts_images_with_no_example(trained) -> None:
    model, x, y = trained
    # one Adam step at a tiny c: most attacked images get no adversarial example
    rec = evaluate(model, x[:40], y[:40], attack="cw-l2", steps=1, search_steps=1, initial_const=1e-6)
    attacked = [v for v, ok in zip(rec["norms_per_image"], rec["clean_correct_per_image"]) if ok]
    found = sum(v is not None for v in attacked)
    assert found < len(attacked)  # the setting above must leave some images without an example
    assert rec["norms"]["found_fraction"] == pytest.approx(found / len(attacked))
    assert rec["clean_correct_per_image"].count(True) == round(rec["clean_accuracy"] * 40)


@pytest.mark.parametrize("attack,kw", [("pgd-linf", dict(eps=0.1, steps=5)),
                                       ("cw-l2", dict(steps=10, search_steps=3, thresholds=(0.1, 0.3, 1.0)))])
def test_merged_parts_read_like_one_record(trained, attack, kw) -> None:
    """Deterministic model: the parts [0, 15) + [15, 40) merge into the record of [0, 40)."""
    model, x, y = trained
    x, y = x[:40], y[:40]
    whole = evaluate(model, x, y, attack=attack, seed=0, **kw)
    parts = [evaluate(model, x[:15], y[:15], attack=attack, seed=0, **kw),
             evaluate(model, x[15:], y[15:], attack=attack, seed=15, **kw)]
    merged = ev.merge_records(parts)
    assert set(REQUIRED) <= set(merged)
    assert merged["n"] == 40 and merged["seed"] is None and merged["params"]["seed"] is None
    assert [p["n"] for p in merged["parts"]] == [15, 25] and [p["seed"] for p in merged["parts"]] == [0, 15]
    for k in ("clean_accuracy", "robust_accuracy", "single_draw_accuracy", "clean_single_draw_accuracy"):
        assert merged[k] == pytest.approx(whole[k], abs=1e-9), k
    assert merged["robust_accuracy_ci95"] == pytest.approx(whole["robust_accuracy_ci95"])
    assert merged["elapsed_s"] == pytest.approx(parts[0]["elapsed_s"] + parts[1]["elapsed_s"], abs=1e-3)
    if attack == "cw-l2":
        assert merged["accuracy_at"].keys() == whole["accuracy_at"].keys()
        for t in whole["accuracy_at"]:
            assert merged["accuracy_at"][t]["accuracy"] == pytest.approx(whole["accuracy_at"][t]["accuracy"], abs=0.026)
        assert merged["norms"]["median"] == pytest.approx(whole["norms"]["median"], rel=0.05)
        assert len(merged["norms_per_image"]) == len(merged["fooled_per_image"]) == 40
        assert merged["clean_correct_per_image"] == parts[0]["clean_correct_per_image"] + parts[1]["clean_correct_per_image"]


def test_merge_refuses_parts_of_different_measurements(trained) -> None:
    model, x, y = trained
    a = evaluate(model, x[:10], y[:10], attack="pgd-linf", eps=0.1, steps=3)
    b = evaluate(model, x[10:20], y[10:20], attack="pgd-linf", eps=0.2, steps=3, seed=10)
    with pytest.raises(ValueError, match="params"):
        ev.merge_records([a, b])
    with pytest.raises(ValueError, match="at least one"):
        ev.merge_records([])
    c = evaluate(model, x[:10], y[:10], attack="cw-l2", steps=2, search_steps=1)
    d = evaluate(model, x[10:20], y[10:20], attack="cw-l2", steps=2, search_steps=1, seed=10)
    del d["clean_correct_per_image"]  # as in records written before the field existed
    with pytest.raises(ValueError, match="re-measure"):
        ev.merge_records([c, d])
