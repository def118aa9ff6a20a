"""ratzoo.benchmark, the Record schema, ratzoo.compare and the leaderboard."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import ratzoo
import ratzoo.benchmarking as BENCH
import ratzoo.commands.benchmark as BENCH_CLI
import ratzoo.leaderboard as LB
from ratzoo.judge import derive_seed
from ratzoo.noise import GaussianNoise
from ratzoo.record import Record, compare, mcnemar_exact
from ratzoo.sanity import benchmark_checks

from conftest import PYTHON, REPO_ROOT, train_template_mlp

QUICK = dict(steps=8, eot_samples=4, decision_samples=20, n_target_classes=2)


def timeless(d: dict) -> dict:
    """A record's JSON without what depends on the clock and the run (seconds, command line, layout)."""
    d = {k: v for k, v in d.items() if k not in ("elapsed_s", "command", "layout")}
    d["per_attack"] = {a: {k: v for k, v in c.items() if k != "elapsed_s"} for a, c in d.get("per_attack", {}).items()}
    return d


@pytest.fixture(scope="module")
def noisy() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    base, x, y = train_template_mlp(48)
    return nn.Sequential(base[0], GaussianNoise(3, 0.3), *base[1:]).eval(), x, y


def test_ensemble_is_the_worst_case_and_per_image_outcomes_add_up(noisy) -> None:
    model, x, y = noisy
    rec = ratzoo.benchmark(model, x, y, "Linf", eps=4 / 255, seed=0, part_size=48, **QUICK)
    pi = rec.per_image
    n = rec.n
    assert n == len(x) and rec.attack == "benchmark" and rec.randomized
    assert rec.robust_accuracy == sum(pi["robust"]) / n and rec.clean_accuracy == sum(pi["clean_correct"]) / n
    # robust after the ensemble <= robust after its first attack, image by image
    assert all(r <= a for r, a in zip(pi["robust"], pi["robust_after_apgd_ce"]))
    assert all(r <= c for r, c in zip(pi["robust"], pi["clean_correct"]))
    for c, r, norm, by in zip(pi["clean_correct"], pi["robust"], pi["breaking_norm"], pi["broken_by"]):
        assert (norm is not None) == (by is not None) == (c and not r)
        assert norm is None or norm <= 4 / 255 + 1e-6
    # the same APGD-CE run alone (same seed as the ensemble's first stage) is never stronger
    part_seed = derive_seed(0, BENCH.STREAM_PART)
    alone = ratzoo.run_attack(model, x, y, "apgd-ce", eps=4 / 255, steps=8, eot_samples=4, decision_samples=20,
                              seed=derive_seed(part_seed, 1))
    assert alone.robust.tolist() == pi["robust_after_apgd_ce"]
    assert rec.robust_accuracy <= float(alone.robust.float().mean())
    t_alone = ratzoo.run_attack(model, x, y, "apgd-t", eps=4 / 255, steps=8, eot_samples=4, decision_samples=20,
                                n_target_classes=2, seed=1)
    assert rec.robust_accuracy <= float(t_alone.robust.float().mean()) + 1 / n
    assert 0 <= rec.single_draw_accuracy <= rec.clean_single_draw_accuracy <= 1


def test_deterministic_model_gets_one_pass_per_step() -> None:
    base, x, y = train_template_mlp(32)
    rec = ratzoo.benchmark(base, x, y, "L2", eps=0.1, **QUICK)
    assert rec.randomness["kind"] == "deterministic" and rec.effective_eot_samples == 1
    from ratzoo.eot import bf16_is_fast

    assert rec.params["precision"] == ("bf16" if bf16_is_fast(torch.device("cpu")) else "fp32")
    fp32 = ratzoo.benchmark(base, x, y, "L2", eps=0.1, precision="fp32", **QUICK)
    assert fp32.params["precision"] == "fp32" and LB.leaderboard_entry(fp32).precision == "fp32"
    assert rec.decision_samples == 1 and rec.passes["max_pass"] <= len(x)


def test_parts_make_the_record_independent_of_resume(noisy) -> None:
    model, x, y = noisy
    kw = dict(threat_model="Linf", eps=4 / 255, seed=3, part_size=16, **QUICK)
    whole = ratzoo.benchmark(model, x, y, **kw)
    saved: dict[int, dict] = {}
    ratzoo.benchmark(model, x, y, **kw, only_parts=[0, 2], on_part=lambda j, p: saved.__setitem__(j, p))
    resumed = ratzoo.benchmark(model, x, y, **kw, parts=saved)  # "killed" after parts 0 and 2
    assert timeless(whole.to_json()) == timeless(resumed.to_json())


def test_record_round_trip_and_every_committed_record_loads(noisy) -> None:
    model, x, y = noisy
    rec = ratzoo.benchmark(model, x[:16], y[:16], eps=4 / 255, part_size=16, **QUICK)
    assert Record.from_json(json.loads(json.dumps(rec.to_json()))) == rec
    results = REPO_ROOT / "checkpoints" / "results"
    files = sorted(results.glob("records/*.json"))
    assert len(files) > 100
    files += sorted(results.glob("benchmark/*.json")) + sorted(results.glob("benchmark/checks/*.json"))
    for f in files:
        data = json.loads(f.read_text())
        assert Record.from_json(data).to_json() == data, f
    ev = ratzoo.evaluate(model, x[:8], y[:8], attack="fgsm", eps=4 / 255)
    assert Record.from_json(ev).to_json() == ev


def test_target_rank_and_margins_round_trip_and_a_record_before_them_loads(noisy) -> None:
    """Per image: the target rank that broke it, the targets it got, and the decision margin
    after each attack, consistent with the verdicts and kept through JSON; a record written
    before these fields existed still loads unchanged."""
    model, x, y = noisy
    rec = ratzoo.benchmark(model, x, y, eps=4 / 255, part_size=48, **QUICK)
    pi = rec.per_image
    assert Record.from_json(json.loads(json.dumps(rec.to_json()))).per_image == pi
    assert sum(r is not None for r in pi["target_rank"]) > 0 and sum(pi["robust"]) > 0  # both kinds are tested
    for i, (c, ce, r) in enumerate(zip(pi["clean_correct"], pi["robust_after_apgd_ce"], pi["robust"])):
        rank, tried, m_ce, m_t = (pi[k][i] for k in ("target_rank", "targets_tried", "margin_after_apgd_ce",
                                                     "margin_after_apgd_t"))
        assert (rank is not None) == (pi["broken_by"][i] == "apgd-t") == (ce and not r)
        assert (m_ce is None) == (not c) and (m_t is None) == (not ce) and (tried == 0) == (not ce)
        refined = pi["refined"][i]
        assert not refined or ce  # only a survivor of APGD-CE gets the first target again
        assert rank is None or 1 <= rank == (1 if refined else tried) <= tried <= QUICK["n_target_classes"]
        if ce:
            assert m_ce > 0 and (m_t > 0) == r  # a positive margin is a right decision
        elif c:
            assert m_ce <= 0
    old = json.loads((Path(__file__).parent / "data" / "benchmark_record_before_cascade.json").read_text())
    loaded = Record.from_json(old)
    assert loaded.to_json() == old and "target_rank" not in loaded.per_image and loaded.n == 20


@pytest.mark.parametrize("name", ["at", "rat"])
def test_cascade_never_leaves_robust_what_the_full_targeted_phase_breaks(name, cifar_root) -> None:
    """The default APGD-T (fewer draws per step) against every target at the full draws, same
    seed and budget, on bundled models: no image robust only under the cheaper one, at a lower
    cost; the margin cascade (``cascade_after=1``) tries fewer targets."""
    import numpy as np

    from ratzoo.data import to_tensor

    xs, ys = ratzoo.load_cifar10("test", root=cifar_root)
    x, y = to_tensor(np.array(xs[:16])), torch.from_numpy(np.array(ys[:16])).long()
    model = ratzoo.load(name).eval()
    kw = dict(threat_model="Linf", seed=0, steps=10, eot_samples=8, decision_samples=ratzoo.DEFAULT_DECISION_SAMPLES,
              part_size=16)
    full = ratzoo.benchmark(model, x, y, target_eot_samples=8, late_target_eot_samples=8, cascade_after=9, **kw)
    cheap = ratzoo.benchmark(model, x, y, **kw)
    assert cheap.params["cascade_after"] == BENCH.DEFAULT_CASCADE_AFTER == 9
    assert cheap.params["target_eot_samples"] == BENCH.DEFAULT_TARGET_EOT < 8
    assert cheap.params["late_target_eot_samples"] == BENCH.DEFAULT_LATE_TARGET_EOT < BENCH.DEFAULT_TARGET_EOT
    assert cheap.per_image["robust_after_apgd_ce"] == full.per_image["robust_after_apgd_ce"]  # the same first attack
    assert sum(full.per_image["robust_after_apgd_ce"]) > sum(full.robust_per_image()) > 0  # APGD-T has work to do
    only_cheap = [i for i, (c, f) in enumerate(zip(cheap.robust_per_image(), full.robust_per_image())) if c and not f]
    assert only_cheap == []
    if model_is_randomized := cheap.randomized:
        assert cheap.extra["per_attack"]["apgd-t"]["image_draws"] < full.extra["per_attack"]["apgd-t"]["image_draws"]
    assert model_is_randomized == (name == "rat")
    margin = ratzoo.benchmark(model, x, y, cascade_after=1, **kw)
    assert sum(margin.per_image["targets_tried"]) < sum(cheap.per_image["targets_tried"])


def test_the_default_targets_break_what_a_margin_cascade_left_robust(cifar_root) -> None:
    """Test images 235 and 296 of the JPEG copy, standard under L2 0.5: away from the boundary
    after the likeliest target (margins 0.43 and 0.30), broken by the 8th and 4th ranks. The
    margin cascade left them robust in the n = 1,000 zoo run and here; the default tries every target."""
    import numpy as np

    from ratzoo.data import to_tensor

    xs, ys = ratzoo.load_cifar10("test", root=cifar_root)
    idx = [235, 296]
    x, y = to_tensor(np.array([xs[i] for i in idx])), torch.from_numpy(np.array([ys[i] for i in idx])).long()
    model = ratzoo.load("standard").eval()
    rec = ratzoo.benchmark(model, x, y, threat_model="L2", seed=0)
    assert rec.per_image["robust_after_apgd_ce"] == [True, True]  # APGD-CE alone does not break them
    assert rec.robust_per_image() == [False, False], rec.per_image["target_rank"]
    assert all(r > 1 for r in rec.per_image["target_rank"])
    cascade = ratzoo.benchmark(model, x, y, threat_model="L2", seed=0, cascade_after=1)
    assert cascade.robust_per_image() == [True, True]


class _Constant(nn.Module):
    """Ignores its input: "robust" on the images of one class at any budget."""

    def __init__(self, cls: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.nn.functional.one_hot(torch.tensor(cls), 10).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), 10) + 0 * x.flatten(1).sum(1, keepdim=True)


def test_sanity_checks_flag_a_number_the_attacks_cannot_move(noisy) -> None:
    """Carlini et al.'s checks: at a budget covering the whole cube a real model falls to ~0,
    an input-blind one does not (flagged); the base measurement is reused, not redone."""
    model, x, y = noisy
    kw = dict(threat_model="Linf", eps=4 / 255, seed=0, **QUICK)
    rec = ratzoo.benchmark(model, x[:16], y[:16], part_size=16, **kw)
    saved: dict[int, dict] = {}
    ratzoo.benchmark(model, x[:16], y[:16], part_size=16, on_part=lambda j, p: saved.__setitem__(j, p), **kw)
    checks = {c["check"]: c for c in benchmark_checks(model, x[:16], y[:16], rec, base_part=saved[0], **kw)}
    assert set(checks) == {"large_budget", "double_steps", "double_eot_samples"}
    assert checks["large_budget"]["passed"] and checks["large_budget"]["robust_accuracy"] <= 0.05
    assert all("delta" in checks[c] and "ci_half_width" in checks[c] for c in ("double_steps", "double_eot_samples"))
    blind = _Constant(int(y[0])).eval()
    brec = ratzoo.benchmark(blind, x[:16], y[:16], part_size=16, **kw)
    assert brec.robust_accuracy == brec.clean_accuracy > 0.05  # nothing moves it
    bchecks = {c["check"]: c for c in benchmark_checks(blind, x[:16], y[:16], brec, **kw)}
    assert not bchecks["large_budget"]["passed"] and "gradient masking" in bchecks["large_budget"]["message"]
    assert "double_eot_samples" not in bchecks  # a deterministic model has no draws to double


def test_bad_records_and_arguments_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="not a ratzoo record"):
        Record.from_json({"model": "x"})
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="bad.json"):
        Record.load(bad)
    base, x, y = train_template_mlp(4)
    with pytest.raises(ValueError, match="threat_model must be one of"):
        ratzoo.benchmark(base, x, y, threat_model="L1")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        ratzoo.benchmark(base, x, y, steps=0)
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        ratzoo.benchmark(base, x, y, precision="fp16")
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        ratzoo.benchmark(base, x * 255, y)
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\), one per image, got \(3,\)"):
        ratzoo.benchmark(base, x, y[:3])
    with pytest.raises(ValueError, match=r"cascade_margin must be in \[0, 1\]"):
        ratzoo.benchmark(base, x, y, cascade_margin=1.5)
    with pytest.raises(ValueError, match="target_eot_samples must be a positive integer"):
        ratzoo.benchmark(base, x, y, target_eot_samples=0)
    with pytest.raises(ValueError, match="n_target_classes .* must be at most 9: the model has 10 classes"):
        ratzoo.benchmark(base, x, y, n_target_classes=10)
    assert ratzoo.benchmark(base, x, y, threat_model="l2", steps=1, n_target_classes=1).threat_model == "L2"
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        ratzoo.run_attack(base, x * 255, y, "fgsm", eps=8 / 255)


# --------------------------------------------------------------------------- compare


def _rec(robust: list[bool], offset: int = 0) -> dict:
    n = len(robust)
    return {"model": "m", "attack": "a", "n": n, "robust_accuracy": sum(robust) / n, "offset": offset,
            "clean_accuracy": 1.0, "robust_per_image": robust}


def test_mcnemar_matches_a_hand_computed_example_and_scipy() -> None:
    from scipy.stats import binomtest

    # 10 discordant pairs, 8 vs 2: P(X <= 2) for Bin(10, 1/2) = (1 + 10 + 45) / 1024, two-sided x2
    assert mcnemar_exact(8, 2) == pytest.approx(2 * 56 / 1024)
    for a, b in ((8, 2), (0, 5), (13, 7), (30, 31), (0, 0), (1, 0)):
        expect = binomtest(a, a + b, 0.5).pvalue if a + b else 1.0
        assert mcnemar_exact(a, b) == pytest.approx(expect, rel=1e-12)


def test_compare_counts_the_shared_images_only() -> None:
    a = _rec([True] * 8 + [False] * 2 + [True] * 5, offset=0)  # images 0..14
    b = _rec([True] * 10 + [False] * 5, offset=5)  # images 5..19
    c = compare(a, b)  # shared: images 5..14
    assert c.n == 10
    # a on 5..14: [T,T,T,F,F,T,T,T,T,T]; b on 5..14: [T]*10
    assert (c.both, c.only_a, c.only_b, c.neither) == (8, 0, 2, 0)
    assert c.difference == pytest.approx(-0.2) and c.difference_ci95[0] < -0.2 < c.difference_ci95[1]
    assert c.p_value == pytest.approx(0.5)
    assert "no clear difference" in c.verdict()
    strong = compare(_rec([True] * 40 + [False] * 60), _rec([False] * 100))
    assert strong.p_value < 1e-6 and strong.verdict().startswith("A is more robust")
    with pytest.raises(ValueError, match="share no image"):
        compare(_rec([True]), _rec([True], offset=3))
    with pytest.raises(ValueError, match="no per-image outcomes"):
        compare({"model": "m", "attack": "pgd-linf", "n": 2, "robust_accuracy": 0.5}, _rec([True, False]))


# --------------------------------------------------------------------------- CLI


FOREIGN = textwrap.dedent('''
    import torch
    from torch import nn
    import ratzoo


    class InputNoise(nn.Module):
        def __init__(self, base, per_call):
            super().__init__()
            self.base, self.per_call = base, per_call

        def forward(self, x):
            shape = (1, *x.shape[1:]) if self.per_call else x.shape
            return self.base(x + 0.05 * torch.randn(shape, device=x.device))


    def _base():
        torch.manual_seed(0)
        return ratzoo.build_model(width=2).eval()


    def per_sample():
        return InputNoise(_base(), False).eval()


    def per_call():
        return InputNoise(_base(), True).eval()
''')


@pytest.fixture
def foreign_module(tmp_path: Path) -> Path:
    (tmp_path / "my_defense.py").write_text(FOREIGN)
    return tmp_path


def _cli(args: list[str], cwd: Path, env: dict[str, str], torchrun: int = 0) -> subprocess.CompletedProcess:
    cmd = [PYTHON, "-m", "ratzoo", "benchmark"] if not torchrun else [
        PYTHON, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}",
        "-m", "ratzoo", "benchmark"]
    return subprocess.run(cmd + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


CLI_ARGS = ["--n-images", "12", "--part-size", "4", "--steps", "3", "--eot-samples", "3", "--targets", "2",
            "--decision-samples", "10", "--eps", "8/255", "--no-progress"]


@pytest.mark.parametrize("fn,kind", [("per_sample", "per-sample"), ("per_call", "per-call")])
def test_cli_benchmarks_a_foreign_randomized_model(fn, kind, foreign_module, tiny_cifar_root, subprocess_env) -> None:
    out = foreign_module / "rec.json"
    board = foreign_module / "board.json"
    r = _cli(["--model", f"my_defense:{fn}", "--data-dir", str(tiny_cifar_root), "--out", str(out),
              "--leaderboard", str(board), "--sanity", *CLI_ARGS], foreign_module, subprocess_env)
    assert r.returncode == 0, r.stderr
    rec = Record.load(out)
    assert {c["check"] for c in rec.extra["sanity"]} == {"large_budget", "double_steps", "double_eot_samples"}
    assert rec.randomness["kind"] == kind and rec.effective_eot_samples == 3 and rec.decision_samples == 10
    assert rec.n == 12 and len(rec.per_image["robust"]) == 12 and rec.passes["image_draws"] > 0
    assert rec.params["ensemble"] == ["apgd-ce", "apgd-t"] and rec.extra["command"].startswith("python -m ratzoo benchmark")
    entry = json.loads(board.read_text())[0]
    assert entry["name"] == f"my_defense:{fn}" and entry["randomness"] == kind
    assert entry["robust_acc"] == pytest.approx(100 * rec.robust_accuracy, abs=0.01)


def test_cli_refuses_bad_input_in_words(foreign_module, tiny_cifar_root, subprocess_env) -> None:
    r = _cli(["--model", "no_such_module:build", "--data-dir", str(tiny_cifar_root), *CLI_ARGS], foreign_module,
             subprocess_env)
    assert r.returncode == 2 and "cannot import 'no_such_module:build'" in r.stderr and "Traceback" not in r.stderr
    r = _cli(["--model", "my_defense:per_call", "--steps", "0"], foreign_module, subprocess_env)
    assert r.returncode == 2 and "--steps must be a positive integer, got 0" in r.stderr


def test_cli_refuses_more_targets_than_wrong_classes_before_measuring(foreign_module, tiny_cifar_root, monkeypatch,
                                                                     capsys) -> None:
    from ratzoo.commands.benchmark import build_parser, main

    monkeypatch.chdir(foreign_module)
    monkeypatch.setenv("RATZOO_CACHE", str(foreign_module / "cache"))
    monkeypatch.delenv("RATZOO_BENCHMARK_PARTS", raising=False)
    code = main(["--model", "my_defense:per_sample", "--data-dir", str(tiny_cifar_root), *CLI_ARGS, "--targets", "10"])
    err = capsys.readouterr().err
    assert code == 2 and "must be at most 9" in err and "Traceback" not in err, err
    assert not list((foreign_module / "cache").glob("benchmark/*/*/part_*.json"))  # nothing was measured
    for budget, said in ((["--eps", "8"], "did you mean 8/255"), (["--threat-model", "L2", "--eps", "60"], "diameter")):
        assert main(["--model", "my_defense:per_sample", "--data-dir", str(tiny_cifar_root), *CLI_ARGS, *budget]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, err
    assert main(["--model", "ratt", "--data-dir", str(tiny_cifar_root), *CLI_ARGS]) == 2
    assert "module.path:callable" in capsys.readouterr().err  # the unknown name's error lists every form
    assert build_parser().parse_args(["--model", "m", "--threat-model", "l2"]).threat_model == "L2"


def test_evaluate_cli_takes_your_own_model_too(foreign_module, tiny_cifar_root, monkeypatch) -> None:
    from ratzoo.commands.evaluate import build_parser, main

    monkeypatch.chdir(foreign_module)
    out = foreign_module / "eval.json"
    threads = torch.get_num_threads()
    try:
        code = main(["--model", "my_defense:per_call", "--attack", "fgsm", "--n", "4", "--eot", "2",
                     "--decision-samples", "4", "--data-dir", str(tiny_cifar_root), "--threads", "1",
                     "--out", str(out), "--no-progress"])
    finally:
        torch.set_num_threads(threads)
    rec = Record.load(out)
    assert code == 0 and rec.n == 4 and rec.randomness["kind"] == "per-call" and rec.model == "my_defense:per_call"
    assert build_parser().parse_args(["--model", "m", "--norm", "linf"]).norm == "Linf"


def test_cli_resume_and_two_ranks_give_the_same_record(foreign_module, tiny_cifar_root, subprocess_env) -> None:
    def run(name: str, extra: list[str], torchrun: int = 0) -> dict:
        out = foreign_module / f"{name}.json"
        r = _cli(["--model", "my_defense:per_sample", "--data-dir", str(tiny_cifar_root), "--out", str(out),
                  *CLI_ARGS, *extra], foreign_module, subprocess_env, torchrun)
        assert r.returncode == 0, r.stderr
        return timeless(json.loads(out.read_text()))

    env = subprocess_env
    env["RATZOO_CACHE"] = str(foreign_module / "cache")  # this test's own parts
    one = run("one", [])
    parts = sorted(Path(env["RATZOO_CACHE"]).glob("benchmark/*/*/part_*.json"))
    folder = parts[0].parent
    assert len(parts) == 3 and not list(folder.glob("*.lock"))  # a finished run leaves no locks behind
    assert json.loads((folder / "model.json").read_text())["digest"] == folder.name == one["model_identity"]["digest"]
    assert run("again", []) == one  # the identical finished command gives its record back
    (folder / "part_00001.json").unlink()  # as if killed while measuring part 1
    partial = _cli(["--model", "my_defense:per_sample", "--data-dir", str(tiny_cifar_root), *CLI_ARGS],
                   foreign_module, env)
    assert partial.returncode == 2 and "--resume" in partial.stderr  # nothing silently reused
    assert run("resumed", ["--resume"]) == one
    shutil.rmtree(folder)
    assert run("ranks", [], torchrun=2) == one


def test_a_changed_model_never_reuses_the_parts_of_another(foreign_module, tiny_cifar_root, subprocess_env) -> None:
    """The same command on an edited module (its noise 0.05 -> 2.0), and on the same source whose
    noise scale comes from outside it: each a new model, measured afresh and said so; the old
    model's parts are left alone."""
    env = {**subprocess_env, "RATZOO_CACHE": str(foreign_module / "cache")}

    def run(name: str) -> tuple[dict, subprocess.CompletedProcess]:
        out = foreign_module / f"{name}.json"
        r = _cli(["--model", "my_defense:per_sample", "--data-dir", str(tiny_cifar_root), "--out", str(out),
                  "--resume", *CLI_ARGS], foreign_module, env)
        assert r.returncode == 0, r.stderr
        return json.loads(out.read_text()), r

    small, _ = run("small")
    (foreign_module / "my_defense.py").write_text(FOREIGN.replace("0.05 * torch.randn", "2.0 * torch.randn"))
    big, r = run("big")
    assert "another model" in r.stderr and "not reused" in r.stderr and "already done" in r.stderr
    assert "; 0 already done" in r.stderr
    assert big["model_identity"]["source"] != small["model_identity"]["source"]
    assert big["model_identity"]["weights"] == small["model_identity"]["weights"]  # the source tells them apart
    (foreign_module / "my_defense.py").write_text(FOREIGN.replace(
        "0.05 * torch.randn", "float(__import__('os').environ['SIGMA']) * torch.randn"))
    env["SIGMA"] = "0.05"
    outside, _ = run("outside")
    env["SIGMA"] = "3.0"
    outside_big, r = run("outside_big")
    assert outside_big["model_identity"]["source"] == outside["model_identity"]["source"]
    assert outside_big["model_identity"]["fingerprint"] != outside["model_identity"]["fingerprint"]
    assert "; 0 already done" in r.stderr  # only the fingerprint tells them apart
    assert len(list((foreign_module / "cache").glob("benchmark/*/*/part_*.json"))) == 4 * 3


def test_cli_default_layout_on_cpu_is_one_process_per_core(foreign_module, tiny_cifar_root, subprocess_env) -> None:
    """By default the CLI on CPU shares the parts among one single-threaded process per core,
    the layout ``benchmarks/bench_benchmark.py layout`` measured faster than one process with a
    thread per core; the record and the log say which layout ran, and it equals ``--procs 1``'s."""
    env = subprocess_env
    env["RATZOO_CACHE"] = str(foreign_module / "cache")
    recs = {}
    for name, extra in (("default", []), ("one", ["--procs", "1", "--threads", "2"])):
        out = foreign_module / f"{name}.json"
        r = _cli(["--model", "my_defense:per_sample", "--data-dir", str(tiny_cifar_root), "--out", str(out),
                  "--resume", *CLI_ARGS, *extra], foreign_module, env)
        assert r.returncode == 0, r.stderr
        recs[name] = json.loads(out.read_text())
        shutil.rmtree(foreign_module / "cache" / "benchmark")  # the next run measures every part again
    cores = BENCH_CLI._cpu_count()
    expected = {"processes": min(cores, 3), "threads": 1} if cores > 1 else {"processes": 1, "threads": cores}
    assert recs["default"]["layout"] == expected, recs["default"]["layout"]
    assert recs["one"]["layout"] == {"processes": 1, "threads": 2}
    assert timeless(recs["default"]) == timeless(recs["one"])


def test_parts_folder_is_keyed_by_what_defines_the_measurement(monkeypatch, tmp_path) -> None:
    """Runs that measure the same parts share a folder (n, resume, output and threads do not
    matter); a different seed, budget, attack setting or precision gets its own."""
    monkeypatch.setenv("RATZOO_CACHE", str(tmp_path))
    cfg = BENCH_CLI.BenchmarkConfig
    base = cfg(model="rat").parts_dir()
    assert base.parent == tmp_path / "benchmark"
    assert cfg(model="rat", n=100, resume=True, out="x.json", threads=1, sanity=True).parts_dir() == base
    assert cfg(model="rat", eps="8/255", precision="auto").parts_dir() == base
    for other in (dict(seed=1), dict(eps="4/255"), dict(threat_model="L2"), dict(steps=50), dict(eot_samples=10),
                  dict(targets=3), dict(precision="fp32"), dict(offset=100), dict(model="at")):
        assert cfg(**{"model": "rat", **other}).parts_dir() != base, other
    parsed = BENCH_CLI.build_parser().parse_args(["--model", "rat", "--n-images", "7", "--part-size", "5", "--resume"])
    assert cfg(**vars(parsed)) == cfg(model="rat", n=7, part_size=5, resume=True)
    monkeypatch.setenv("RATZOO_BENCHMARK_PARTS", str(tmp_path / "parts"))  # the parts alone, not the data cache
    assert cfg(model="rat").parts_dir() == tmp_path / "parts" / base.name


@pytest.mark.parametrize("flag", ["--part-size", "--n-images", "--late-target-eot-samples", "--late-target-eot", "--decision-samples"])
def test_a_count_below_one_is_refused_by_the_parser_naming_the_flag(flag: str, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        BENCH_CLI.build_parser().parse_args(["--model", "rat", flag, "0"])
    said = {"--n-images": "--n", "--late-target-eot": "--late-target-eot-samples"}.get(flag, flag)  # the first name
    assert e.value.code == 2 and f"{said} must be a positive integer, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--offset", "--threads", "--procs"])
def test_a_negative_offset_or_thread_count_is_refused_by_the_parser_naming_the_flag(flag: str, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        BENCH_CLI.build_parser().parse_args(["--model", "rat", flag, "-1"])
    assert e.value.code == 2 and f"argument {flag}: {flag} must be an integer >= 0, got -1" in capsys.readouterr().err
    assert getattr(BENCH_CLI.build_parser().parse_args(["--model", "rat", flag, "0"]), flag[2:]) == 0


def test_readme_leaderboard_equals_the_leaderboard_file() -> None:
    from train import leaderboard

    readme = (REPO_ROOT / "README.md").read_text()
    entries = leaderboard.entries()
    assert readme == leaderboard.fill(readme, entries), "run python -m train.leaderboard"
    timed = [dataclasses.replace(entries[0], seconds=s) for s in (3600.0, 1800.0, None)]
    assert "took 1.5 core-hours" in leaderboard.cost(timed)
    for e in entries:  # every entry is a committed benchmark record's
        rec = Record.load(REPO_ROOT / e.record)
        assert rec.attack == "benchmark" and rec.n == e.n and e.threat_model == rec.threat_model
        assert e.robust_acc == pytest.approx(100 * rec.robust_accuracy, abs=0.005)
        marks = ("" if leaderboard.ensemble_of(e) == BENCH.ensemble_params() else " †") + (
            " ‡" if leaderboard.broken_by_checks(e.name, e.threat_model) else "")
        assert f"| {e.name}{marks} |" in readme


def test_every_committed_leaderboard_entry_round_trips_and_a_wrong_key_is_refused(tmp_path) -> None:
    """The typed entry holds the file byte for byte; an entry with a key too many or too few is
    refused by name."""
    path = REPO_ROOT / "checkpoints" / "results" / "leaderboard.json"
    raw = json.loads(path.read_text())
    entries = LB.load_leaderboard(path)
    assert len(entries) == len(raw) > 0 and [e.to_json() for e in entries] == raw
    copy = tmp_path / "board.json"
    shutil.copy(path, copy)
    LB.update_leaderboard(copy, entries[-1])  # replaces an entry by itself
    assert copy.read_bytes() == path.read_bytes()
    with pytest.raises(ValueError, match="unknown key.s. autoattack_acc"):
        LB.LeaderboardEntry.from_json({**raw[0], "autoattack_acc": 50.0})
    copy.write_text(json.dumps([{k: v for k, v in raw[0].items() if k != "robust_acc_ci95"}]))
    with pytest.raises(ValueError, match=r"board\.json: .*missing key.s. robust_acc_ci95"):
        LB.load_leaderboard(copy)


def test_docs_leaderboard_equals_the_file_and_sets_each_claim_beside_the_measurement() -> None:
    """docs/leaderboard.md is what train.leaderboard generates; every claim names its source and how
    its setting differs; a defense entry's row carries the paired test against its base model (a
    wrapper) or the closest zoo model (a trained defense)."""
    from ratzoo import compare, zoo
    from train import leaderboard

    entries = leaderboard.entries()
    assert (REPO_ROOT / "docs" / "leaderboard.md").read_text() == leaderboard.docs_page(entries), \
        "run python -m train.leaderboard"
    lit = zoo.literature()
    assert {"random-resize-pad", "sap", "rse", "pni", "gaussian-augmentation"} <= {d["defense"] for d in lit}
    page = leaderboard.claimed_vs_measured(entries)
    assert "\n\n\n" not in leaderboard.docs_page(entries), "one blank line between paragraphs"
    for d in lit:
        assert d["claims"] and d["zoo"] and f"### {d['title']}" in page
        for c in d["claims"]:
            assert c["source"].startswith("https://") and c["differs"] and c["setting"], c
            assert c["claim"] in page
        for n in d["zoo"]:  # a zoo entry implements what it claims to
            e = zoo.entries().get(n)
            assert e is None or e.defense is None or e.defense["name"] == d["defense"], n
    base = next(e for e in entries if e.name == "at")  # a defense entry, made up from at's record
    fake = dataclasses.replace(base, name="sap_at")
    row = leaderboard.paired(fake, [base, fake], zoo.entries())
    c = compare(Record.load(REPO_ROOT / base.record), Record.load(REPO_ROOT / base.record))
    assert row.startswith(f"`at` {100 * c.accuracy_b:.1f} % on the same {c.n} images: 0 robust only with")
    assert leaderboard.paired(base, [base], zoo.entries()) == "(a trained model: no closest zoo model)"
    trained = dataclasses.replace(base, name="rse")  # a trained defense is paired against its closest model
    assert leaderboard.paired(trained, [base, trained], zoo.entries(), "at").startswith(f"`at` {100 * c.accuracy_b:.1f} %")
    assert leaderboard.paired(trained, [trained], zoo.entries(), "at") == "`at` not measured"
    assert {d["defense"]: d.get("closest") for d in lit if d["defense"] in ("rse", "pni")} == {"rse": "rn", "pni": "at"}
    # every entry and threat model not measured yet has its row and the command that measures it
    assert leaderboard.pending(["sap_at"], [dataclasses.replace(base, name="sap_at", threat_model="Linf")]) == [
        f"| `sap_at` | L2 0.5 | | not measured yet | | `MODELS=sap_at THREATS=L2 N={leaderboard.LITERATURE_N} "
        "bash train/benchmark_zoo.sh` |"]
    done = [dataclasses.replace(base, name="sap_at", threat_model=t) for t in ("Linf", "L2")]
    assert leaderboard.pending(["sap_at"], done) == []
    for d in lit:
        for n in d["zoo"]:
            for t in BENCH.THREAT_MODELS:
                assert (any(e.name == n and e.threat_model == t for e in entries)
                        or f"`MODELS={n} THREATS={t} " in page), (n, t)


def test_the_leaderboard_says_which_ensemble_each_entry_ran() -> None:
    """Entries of the ensemble before the cascade are marked and their attacks said apart."""
    from train import leaderboard

    entry = LB.load_leaderboard(REPO_ROOT / "checkpoints" / "results" / "leaderboard.json")[0]
    old = dataclasses.replace(entry, name="old", eot_samples=20, steps=100, n_target_classes=9, ensemble_params=None)
    new = dataclasses.replace(old, name="new", ensemble_params=BENCH.ensemble_params())
    block = leaderboard.block([old, new])
    assert "| old † |" in block and "| new |" in block
    assert BENCH.describe_ensemble(BENCH.ensemble_params()) in block
    assert "Entries marked † were measured by an older ensemble: APGD-CE" in block
    assert "100 iterations at 20 draws each" in block  # the full APGD-T, one call over all targets
    only_new = leaderboard.block([new])
    assert "†" not in only_new and "100 iterations at 20 draws each" not in only_new


def test_an_adaptive_check_that_breaks_images_marks_the_entry_and_lowers_its_worst_case(tmp_path, monkeypatch) -> None:
    """A check record (``benchmarks/bench_adaptive.py``) naming the images it attacked: those it
    broke count as broken in the entry's worst case, the entry gets its ‡ and the docs its line;
    a check that broke nothing leaves the table unmarked."""
    from ratzoo import zoo
    from train import leaderboard

    entries = leaderboard.entries()
    e = next(x for x in entries if x.name == "at" and x.threat_model == "Linf")
    rec = Record.load(REPO_ROOT / e.record)
    robust = [i for i, r in zip(rec.image_indices, rec.robust_per_image()) if r][:3]
    monkeypatch.setattr(leaderboard, "CHECKS", tmp_path)
    check = dataclasses.replace(rec, n=3, per_image={"robust": [False, True, True]},
                                extra={"dataset_indices": robust, "command": "python benchmarks/bench_adaptive.py at"})
    check.save(tmp_path / "at_Linf_bpda.json")
    worst = leaderboard.worst_case(e)
    assert sum(worst.robust_per_image()) == sum(rec.robust_per_image()) - 1
    assert not worst.robust_per_image()[robust[0] - rec.first_index]
    assert "| at ‡ |" in leaderboard.block([e]) and "Entries marked ‡" in leaderboard.block([e])
    text = leaderboard.checks_text(e, entries, zoo.entries(), None)
    assert "1 of the 3 images it attacked broken" in text and "at_Linf_bpda.json" in text
    check.per_image["robust"] = [True, True, True]
    check.save(tmp_path / "at_Linf_bpda.json")
    assert "‡" not in leaderboard.block([e]) and leaderboard.broken_by_checks("at", "Linf") == set()
    (tmp_path / "at_Linf_bpda.json").unlink()
    dataclasses.replace(rec, extra={}).save(tmp_path / "at_Linf_fp32.json")  # a check of another kind is not one
    assert leaderboard.adaptive_checks("at", "Linf") == []
