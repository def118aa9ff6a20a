"""ratzoo.sanity: the one rule by which the evaluator's and the benchmark's checks pass."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ratzoo import sanity

CI = [0.40, 0.60]  # the reference's 95 % interval around 0.50: half-width 0.10


def test_the_rule_is_the_reference_half_width_on_either_side() -> None:
    assert sanity.half_width(CI) == pytest.approx(0.10)
    for value in (0.50, 0.42, 0.58):
        assert sanity.shift(value, 0.50, CI) == "within"
    assert sanity.shift(0.35, 0.50, CI) == "lower"
    assert sanity.shift(0.65, 0.50, CI) == "higher"


def _point(eps: float, acc: float, ci: list[float]) -> dict:
    return {"params": {"eps": eps}, "robust_accuracy": acc, "robust_accuracy_ci95": ci}


@pytest.mark.parametrize("larger,passed", [(0.52, True), (0.30, True), (0.65, False)])
def test_a_larger_budget_may_lower_accuracy_but_not_raise_it(larger: float, passed: bool) -> None:
    out = sanity.check_monotone([_point(2 / 255, 0.50, CI), _point(4 / 255, larger, [larger - 0.1, larger + 0.1])])
    assert out["passed"] is passed and len(out["violations"]) == (not passed)


@pytest.mark.parametrize("doubled,passed", [(0.52, True), (0.35, False), (0.65, False)])
def test_both_clis_doubling_checks_pass_only_within_the_half_width(doubled: float, passed: bool,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Fed the same numbers, the evaluator's convergence check and the benchmark's double_steps agree:
    a doubled attack that lowers the number (not converged) or raises it (suspicious) fails."""
    base = {"attack": "pgd-linf", "seed": 0, "randomized": False, "eot_samples": 1, "decision_samples": 1,
            "params": {"eps": 8 / 255, "steps": 10}, "robust_accuracy": 0.50, "robust_accuracy_ci95": CI}
    monkeypatch.setattr(sanity, "evaluate", lambda *a, **k: {"robust_accuracy": doubled})
    conv = sanity.check_convergence(None, None, None, base, double=("steps",))
    assert conv["passed"] is passed and conv["runs"][0]["delta"] == pytest.approx(doubled - 0.50)

    def fake_benchmark(model, x, y, **kw):
        acc = 0.0 if kw["eps"] == 1.0 else doubled if kw["steps"] == 20 else 0.50
        return SimpleNamespace(robust_accuracy=acc, robust_accuracy_ci95=CI, randomized=False)

    monkeypatch.setattr(sanity, "benchmark", fake_benchmark)
    checks = sanity.benchmark_checks(None, torch.zeros(1, 3, 4, 4), None, None, threat_model="Linf",
                                     eps=8 / 255, steps=10, eot_samples=1)
    assert [c["check"] for c in checks] == ["large_budget", "double_steps"]
    assert checks[0]["passed"] and checks[1]["passed"] is passed
