"""The trainer: bad input, a tiny run end to end, SIGKILL + resume, DDP, push failure,
batched augmentation.

Every run trains PreActResNet-18 at width 2 on a tiny CIFAR-shaped dataset written by the
test (320 training images: 32 held out, 9 steps of 32 per epoch), on one CPU thread.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import PYTHON, REPO_ROOT
from safetensors.torch import load_file

import ratzoo
from ratzoo.checkpoint import CARD, CONFIG, WEIGHTS, sha256_file

TIMEOUT = 300


def tiny_args(data: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["--data-dir", str(data), "--batch-size", "32", "--val-size", "32", "--width", "2",
            "--eval-n", "0", "--threads", "1", "--seed", "0", "--co-guard", "off",
            "--state-dir", str(run_dir / "state"), "--out", str(run_dir / "out"), *extra]


LERAT_3_EPOCHS = ("--method", "lerat", "--noise-sigma", "0.3", "--epochs", "3")


def run_train(args: list[str], env: dict[str, str], module: tuple[str, ...] = ("-m", "train")
              ) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, *module, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"


# --------------------------------------------------------------------------- bad input


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to start training fail the test."""
    import train.loop

    def refuse(*a, **k):
        raise AssertionError("training started although the input was invalid")

    monkeypatch.setattr(train.loop, "train", refuse)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "sgd"], "unknown method 'sgd'; choose one of"),
        (["--architecture", "resnet50"], "unknown architecture 'resnet50'; choose one of"),
        (["--method", "at", "--eps=-0.1"], "eps must be > 0, got -0.1"),
        (["--method", "at", "--eps=-8/255"], "eps must be > 0"),
        (["--method", "rat", "--noise-sigma=-0.5"], "noise_sigma must be >= 0, got -0.5"),
        (["--method", "rat"], "give --noise-sigma > 0"),
        (["--method", "at", "--noise-sigma", "0.5"], "is deterministic: drop --noise-sigma"),
        (["--attack", "cw"], "unknown training attack 'cw'"),
        (["--noise-layer", "2"], "noise_layer must be 0 (input pixels) or 1"),
        (["--amp", "maybe"], "amp must be auto, on or off, got 'maybe'"),
        (["--device", "tpu:banana"], "unknown device 'tpu:banana'"),
        (["--push-to-hub", "just-a-name"], "--push-to-hub wants a repo id OWNER/NAME, got 'just-a-name'"),
        (["--push-to-hub", "a/b/c"], "--push-to-hub wants a repo id OWNER/NAME"),
        (["--method", "pni"], "method 'pni' injects noise: give --noise-sigma > 0"),
        (["--method", "rse", "--noise-sigma", "0.4", "--noise-layer", "0"], "give --noise-inner > 0"),
        (["--method", "rse", "--noise-sigma", "0.4", "--noise-inner", "0.1"], "give --noise-layer 0"),
        (["--method", "rn", "--noise-sigma", "1", "--noise-inner", "0.1"], "--noise-inner is RSE's"),
    ],
)
def test_bad_input_exits_2_before_any_work(argv, message, tiny_cifar_root: Path, tmp_path: Path,
                                           no_training, capsys: pytest.CaptureFixture) -> None:
    from train.main import main

    state_dir = tmp_path / "state"
    rc = main([*argv, "--data-dir", str(tiny_cifar_root), "--state-dir", str(state_dir)])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.startswith("error: ")
    assert not state_dir.exists()


def test_several_errors_are_reported_together(tiny_cifar_root: Path, no_training, capsys) -> None:
    from train.main import main

    assert main(["--method", "sgd", "--architecture", "vgg", "--lr=-1"]) == 2
    err = capsys.readouterr().err
    assert "unknown method" in err and "unknown architecture" in err and "lr must be > 0" in err


def test_missing_data_dir(tmp_path: Path, no_training, capsys) -> None:
    from train.main import main

    missing = tmp_path / "nowhere"
    assert main(["--data-dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"data folder {missing} does not exist" in err


def test_data_dir_without_cifar_files(tmp_path: Path, no_training, capsys) -> None:
    from train.main import main

    assert main(["--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "CIFAR-10 train file not found" in err and str(tmp_path) in err


def test_missing_data_dir_from_env(tmp_path: Path, no_training, capsys, monkeypatch) -> None:
    from train.main import main

    monkeypatch.setenv("RATZOO_CIFAR10", str(tmp_path / "gone"))
    assert main(["--state-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "RATZOO_CIFAR10" in err and str(tmp_path / "gone") in err


def test_argparse_rejects_nonsense(no_training, capsys) -> None:
    from train.main import main

    for argv in (["--eps", "eight"], ["--preset", "nope"], ["--epochs", "1.5"], ["--resume", "maybe"],
                 ["--epochs", "0"], ["--width", "-2"], ["--eval-eot", "0"], ["--max-steps=-1"], ["--val-size", "-3"],
                 ["--train-subset", "x"], ["--eval-n=-1"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2, argv
    err = capsys.readouterr().err
    assert "expected a number or a fraction like 8/255, got 'eight'" in err
    assert "unknown preset 'nope'" in err
    assert "--epochs must be a positive integer, got '1.5'" in err and "--width must be a positive integer, got -2" in err
    assert "argument --epochs: --epochs must be a positive integer, got 0" in err
    assert "argument --eval-eot-samples/--eval-eot: --eval-eot-samples must be a positive integer, got 0" in err
    assert "argument --max-steps: --max-steps must be an integer >= 0, got -1" in err
    assert "--val-size must be an integer >= 0, got -3" in err and "--eval-n must be an integer >= 0, got -1" in err
    assert "--train-subset must be an integer >= 0, got 'x'" in err


def test_a_config_built_in_python_is_range_checked_as_its_flags_are() -> None:
    """The flags' count parsers are the one home of the ranges: a TrainConfig built in Python
    (a preset, a script) is refused for what ``--epochs 0`` or ``--max-steps=-1`` is refused."""
    from train.config import TrainConfig

    TrainConfig().validate()  # the defaults pass
    with pytest.raises(ValueError) as info:
        TrainConfig(epochs=0, max_steps=-1, eval_n=-2, width=3).validate()
    msg = str(info.value)
    assert "epochs must be a positive integer, got 0" in msg and "max_steps must be an integer >= 0, got -1" in msg
    assert "eval_n must be an integer >= 0, got -2" in msg and "width" not in msg


def test_explicit_flags_override_a_preset_and_switches_take_an_optional_value() -> None:
    from train.config import TrainConfig, build_parser, config_from_args

    cfg, args = config_from_args(["--preset", "rat", "--epochs", "3", "--co-guard", "false", "--resume",
                                  "--eps", "4/255"])
    assert cfg == TrainConfig(method="rat", epochs=3, lr=0.2, noise_sigma=1.0, co_guard=False, resume=True,
                              eps=4 / 255, preset="rat")
    assert args.lr is None and args.attack_steps is None and not args.list_presets  # the preset's, not the default
    cfg, _ = config_from_args(["--preset", "paper", "--lr", "1/20", "--co-guard", "on"])
    assert cfg == TrainConfig(method="rat", architecture="wide_resnet28_10", width=10, attack="pgd", attack_steps=1,
                              eps=0.015, step_size=0.01, noise_sigma=1.0, epochs=200, batch_size=200, lr=0.05,
                              weight_decay=2e-3, preset="paper")
    assert config_from_args(["--resume", "true"])[0] == TrainConfig(resume=True)
    assert config_from_args(["--co-guard", "off", "--resume", "no"])[0] == TrainConfig(co_guard=False)
    assert config_from_args([])[0] == TrainConfig()
    assert (TrainConfig().co_guard, TrainConfig().resume, TrainConfig().eps) == (True, False, 8 / 255)
    text = " ".join(build_parser().format_help().split())
    for said in ("number of epochs (default 15)", "(catastrophic overfitting) (default True)", "--list-presets",
                 "training method: one of ('standard', 'at', 'rn', 'rat', 'lerat', 'rse', 'pni') (default standard)"):
        assert said in text, said
    assert text.endswith("explicit flags override it")  # an empty default is not shown


def test_fingerprint_of_the_default_and_of_the_presets() -> None:
    """The fields a resume and a bundled checkpoint are matched on (a later field at its default is left out)."""
    from train.config import PRESETS, TrainConfig

    assert TrainConfig().fingerprint() == {
        "method": "standard", "architecture": "preact_resnet18", "width": 16, "noise_sigma": 0.0, "noise_layer": 1,
        "epochs": 15, "batch_size": 128, "lr": 0.2, "warmup": 0.3, "momentum": 0.9, "weight_decay": 5e-4,
        "label_smoothing": 0.0, "attack": "fgsm_rs", "eps": 8 / 255, "step_size": 10 / 255, "attack_steps": 1,
        "val_size": 1000, "co_guard": True, "train_subset": 0, "max_steps": 0, "seed": 0, "channels_last": "auto",
        "amp": "auto"}
    rse = TrainConfig(**PRESETS["rse"]).fingerprint()
    assert (rse["noise_inner"], rse["noise_layer"], rse["noise_sigma"]) == (0.1, 0, 0.4)
    assert list(TrainConfig().fingerprint()) == [k for k in list(rse) if k != "noise_inner"]


def _write_state(path: Path, **cfg_fields) -> None:
    from train.config import TrainConfig
    from train.loop import one_cycle
    from train.state import save_state

    cfg = TrainConfig(**cfg_fields)
    model = ratzoo.build_model(width=cfg.width)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, one_cycle(10, 0.3))
    save_state(path, cfg, model, opt, sched, 1, 9, [], {}, False, None)


def test_resume_of_another_configuration(tiny_cifar_root: Path, tmp_path: Path, no_training, capsys) -> None:
    from train.main import main

    state = tmp_path / "state" / "state.pt"
    _write_state(state, lr=0.1, epochs=3, width=2)
    before = state.read_bytes()
    rc = main(["--resume", "--state-dir", str(state.parent), "--data-dir", str(tiny_cifar_root),
               "--lr", "0.2", "--epochs", "3", "--width", "2"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "was written by another configuration (lr: saved 0.1 vs now 0.2)" in err
    assert str(state) in err
    assert state.read_bytes() == before, "a refused resume must not touch the state"


def test_resume_of_an_unreadable_state(tiny_cifar_root: Path, tmp_path: Path, no_training, capsys) -> None:
    from train.main import main

    state = tmp_path / "state" / "state.pt"
    state.parent.mkdir()
    state.write_bytes(b"garbage")
    assert main(["--resume", "--state-dir", str(state.parent), "--data-dir", str(tiny_cifar_root)]) == 2
    assert "unreadable training state" in capsys.readouterr().err


def test_cli_exit_code_and_no_traceback(tmp_path: Path, subprocess_env) -> None:
    proc = run_train(["--method", "nope", "--state-dir", str(tmp_path / "s")], subprocess_env)
    assert proc.returncode == 2
    assert "error: invalid training configuration" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "s").exists()


# --------------------------------------------------------------------------- a tiny run


@pytest.fixture(scope="module")
def reference_run(tiny_cifar_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 3-epoch LeRAT run (FGSM-RS, learned noise) on the tiny dataset."""
    run_dir = tmp_path_factory.mktemp("reference")
    # os.environ already holds the session's RATZOO_CACHE, HF_HOME and HF_HUB_OFFLINE
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    proc = run_train(tiny_args(tiny_cifar_root, run_dir, *LERAT_3_EPOCHS), env)
    _ok(proc)
    return run_dir


def test_tiny_run_writes_a_loadable_checkpoint(reference_run: Path) -> None:
    out = reference_run / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted([WEIGHTS, CONFIG, CARD])
    model = ratzoo.load(out)
    assert model.config.noise_kind == "learned" and model.config.width == 2
    assert ratzoo.is_randomized(model)
    cfg = json.loads((out / CONFIG).read_text())
    training = cfg["training"]
    assert training["command"].startswith("python -m train ")
    assert "--method lerat" in training["command"] and "--epochs 3" in training["command"]
    assert training["config"]["method"] == "lerat" and training["config"]["epochs"] == 3
    assert training["config"]["noise_sigma"] == 0.3 and training["config"]["batch_size"] == 32
    assert training["epochs_completed"] == 3 and training["stopped_early"] is None
    assert cfg["weights_sha256"] == sha256_file(out / WEIGHTS)
    # the learned std moved away from its initial value, and stayed positive
    assert model.noise.min_sigma() > 0
    assert not torch.allclose(model.noise.sigma, torch.full_like(model.noise.sigma, 0.3))
    log = [json.loads(line) for line in (reference_run / "state" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3] and [r["step"] for r in log] == [9, 18, 27]
    assert all("val_pgd10_acc" in r and "sigma_min" in r for r in log)
    assert log[-1]["lr"] == 0.0, "the one-cycle schedule ends at 0"
    assert "README.md" in {p.name for p in out.iterdir()} and "python -m train" in (out / CARD).read_text()


def test_final_state_is_finished(reference_run: Path) -> None:
    st = torch.load(reference_run / "state" / "state.pt", weights_only=True)
    assert st["finished"] and st["epoch"] == 3 and st["step"] == 27
    assert st["fingerprint"]["method"] == "lerat"


# --------------------------------------------------------------------------- the RSE and PNI presets

KIND = {"rse": "per-sample", "pni": "per-call"}  # as ratzoo/models.py's docstring states


@pytest.mark.parametrize("preset", ["rse", "pni"])
def test_defense_preset_smoke_run(preset: str, tiny_cifar_root: Path, tmp_path: Path, subprocess_env) -> None:
    """Two steps of the zoo's own preset (width 16) on 256 images: a loadable checkpoint of
    the right kind, and for PNI learned alphas that moved and are logged."""
    from train.config import PRESETS

    out = tmp_path / "out"
    proc = run_train(["--preset", preset, "--data-dir", str(tiny_cifar_root), "--train-subset", "256",
                      "--val-size", "32", "--max-steps", "2", "--eval-n", "0", "--threads", "1",
                      "--state-dir", str(tmp_path / "state"), "--out", str(out)], subprocess_env)
    _ok(proc)
    model = ratzoo.load(out)
    assert model.config.noise_kind == preset and model.config.width == 16
    assert ratzoo.randomness.randomness_of(model, torch.rand(2, 3, 32, 32)).kind == KIND[preset]
    training = json.loads((out / CONFIG).read_text())["training"]
    assert training["config"]["preset"] == preset and training["config"]["method"] == PRESETS[preset]["method"]
    (log,) = [json.loads(line) for line in (tmp_path / "state" / "log.jsonl").read_text().splitlines()]
    assert log["step"] == 2
    if preset == "pni":
        alphas = [m.alpha.item() for m in ratzoo.noise.noise_modules(model)]
        assert len(alphas) == 21 and any(a != 0.25 for a in alphas)
        assert log["alpha_mean"] == pytest.approx(sum(alphas) / 21) and "val_pgd10_acc" in log
    else:
        assert model.config.noise_inner == 0.1 and model.noise.channels == 3 and "val_pgd10_acc" not in log


def test_pni_alphas_are_not_weight_decayed() -> None:
    from train.loop import _param_groups

    from ratzoo.models import build_model

    model = build_model(width=2, noise_kind="pni", noise_sigma=0.25)
    decay, no_decay = _param_groups(model, 5e-4)
    alphas = {id(m.alpha) for m in ratzoo.noise.noise_modules(model)}
    assert len(alphas) == 21 and no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 5e-4
    assert alphas <= {id(p) for p in no_decay["params"]} and not alphas & {id(p) for p in decay["params"]}
    convs = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Conv2d)}
    assert convs <= {id(p) for p in decay["params"]}


# --------------------------------------------------------------------------- SIGKILL + resume


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "train", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def _kill_when(proc: subprocess.Popen, condition, timeout: float = TIMEOUT) -> None:
    t0 = time.time()
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before it could be killed")
        if time.time() - t0 > timeout:
            proc.kill()
            pytest.fail("timed out waiting to kill the run")
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def _state_epoch(path: Path) -> int:
    st = torch.load(path, map_location="cpu", weights_only=True)  # never corrupt
    assert set(st) >= {"model", "optimizer", "scheduler", "epoch", "step", "rng_cpu", "fingerprint"}
    return st["epoch"]


def test_sigkill_and_resume_reach_the_same_weights(reference_run: Path, tiny_cifar_root: Path,
                                                   tmp_path: Path, subprocess_env) -> None:
    args = tiny_args(tiny_cifar_root, tmp_path, *LERAT_3_EPOCHS)
    state = tmp_path / "state" / "state.pt"

    # 1. kill right after the first epoch's state appears
    proc = _start(args, subprocess_env, tmp_path / "run1.log")
    _kill_when(proc, state.is_file)
    assert _state_epoch(state) in (1, 2), "killed too late to test a resume"
    assert not (tmp_path / "out").exists()

    # 2. resume, and kill again at a random moment (startup, mid-epoch or mid-save)
    proc = _start([*args, "--resume"], subprocess_env, tmp_path / "run2.log")
    try:
        proc.wait(timeout=random.Random(os.getpid()).uniform(1.0, 4.0))
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    _state_epoch(state)
    # the export is all or nothing: a folder exists only with its weights and config
    if (tmp_path / "out").exists():  # it finished before the kill: start the last leg over
        assert (tmp_path / "out" / "config.json").is_file()
        (tmp_path / "out" / WEIGHTS).unlink()

    # 3. resume to the end
    final = run_train([*args, "--resume"], subprocess_env)
    _ok(final)
    assert "resumed" in final.stderr or not state.is_file()
    ref = load_file(reference_run / "out" / WEIGHTS)
    got = load_file(tmp_path / "out" / WEIGHTS)
    assert ref.keys() == got.keys()
    diff = [k for k in ref if not torch.equal(ref[k], got[k])]
    assert not diff, f"resumed run differs from the uninterrupted one in {diff[:5]}"
    assert _state_epoch(state) == 3


def test_resume_of_a_finished_run_only_exports(reference_run: Path, tiny_cifar_root: Path,
                                               tmp_path: Path, subprocess_env) -> None:
    import shutil

    shutil.copytree(reference_run / "state", tmp_path / "state")
    proc = run_train(tiny_args(tiny_cifar_root, tmp_path, *LERAT_3_EPOCHS, "--resume"), subprocess_env)
    _ok(proc)
    assert "ep 1/3" not in proc.stderr, "a finished run must not train again"
    ref = load_file(reference_run / "out" / WEIGHTS)
    got = load_file(tmp_path / "out" / WEIGHTS)
    assert all(torch.equal(ref[k], got[k]) for k in ref)


# --------------------------------------------------------------------------- DDP


def test_ddp_two_cpu_ranks_hold_identical_weights(tiny_cifar_root: Path, tmp_path: Path,
                                                  subprocess_env) -> None:
    dump = tmp_path / "ranks"
    env = {**subprocess_env, "RATZOO_DEBUG_DUMP_RANK_WEIGHTS": str(dump)}
    args = tiny_args(tiny_cifar_root, tmp_path, "--method", "lerat", "--noise-sigma", "0.3",
                     "--epochs", "1", "--max-steps", "2")
    proc = run_train(args, env, module=("-m", "torch.distributed.run", "--standalone",
                                        "--nproc_per_node=2", "-m", "train"))
    _ok(proc)
    r0, r1 = torch.load(dump / "rank0.pt"), torch.load(dump / "rank1.pt")
    torch.manual_seed(0)  # the trainer's init: same seed, same config
    init = ratzoo.build_model(width=2, noise_kind="learned", noise_sigma=0.3)
    params = [k for k, _ in init.named_parameters()]
    assert "noise.log_sigma" in params
    for k in params:
        assert torch.equal(r0[k], r1[k]), f"ranks disagree on {k}"
    moved = [k for k in params if not torch.equal(r0[k], init.state_dict()[k])]
    assert len(moved) > len(params) // 2, "the optimizer steps did not change the weights"
    # rank 0 alone wrote the checkpoint, with its weights, after exactly 2 steps
    saved = load_file(tmp_path / "out" / WEIGHTS)
    assert all(torch.equal(saved[k], r0[k]) for k in params)
    log = [json.loads(line) for line in (tmp_path / "state" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["step"] == 2


# --------------------------------------------------------------------------- push


def test_push_to_unreachable_hub_keeps_the_checkpoint(tiny_cifar_root: Path, tmp_path: Path,
                                                      subprocess_env) -> None:
    env = {k: v for k, v in subprocess_env.items() if k != "HF_HUB_OFFLINE"}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    proc = run_train(tiny_args(tiny_cifar_root, tmp_path, "--method", "standard", "--epochs", "1",
                               "--max-steps", "1", "--push-to-hub", "someone/ratzoo-tiny"), env)
    assert proc.returncode == 4, proc.stderr[-3000:]
    assert "error: could not push" in proc.stderr and "someone/ratzoo-tiny" in proc.stderr
    assert "local checkpoint is intact" in proc.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted([WEIGHTS, CONFIG, CARD])
    assert json.loads((out / CONFIG).read_text())["weights_sha256"] == sha256_file(out / WEIGHTS)
    ratzoo.load(out)


# --------------------------------------------------------------------------- augmentation


def _padded(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.pad(x, (4, 4, 4, 4))


def test_augment_shape_dtype_windows_and_flips() -> None:
    from train.loop import augment, seeded

    n = 400
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = augment(x, seeded(0, 1, 2))
    assert out.shape == x.shape and out.dtype == torch.uint8
    pad = _padded(x)
    flips, offsets = 0, set()
    for i in range(n):
        found = None
        for oy in range(9):
            for ox in range(9):
                win = pad[i, :, oy : oy + 32, ox : ox + 32]
                if torch.equal(out[i], win):
                    found = (oy, ox, False)
                elif torch.equal(out[i], win.flip(-1)):
                    found = (oy, ox, True)
                if found:
                    break
            if found:
                break
        assert found is not None, f"image {i} is not a (flipped) 32x32 window of its padded image"
        flips += found[2]
        offsets.add(found[:2])
    assert 0.4 < flips / n < 0.6, f"{flips}/{n} flipped"
    assert len(offsets) > 60, "crops should use most of the 81 offsets"
    # same generator seed -> same augmentation; another seed -> another one
    assert torch.equal(augment(x, seeded(0, 1, 2)), out)
    assert not torch.equal(augment(x, seeded(0, 1, 3)), out)


def test_seeded_generators_are_independent_of_history() -> None:
    from train.loop import seeded

    a = torch.randn(3, generator=seeded(5, 2, 1))
    torch.randn(100)  # global RNG use must not matter
    assert torch.equal(torch.randn(3, generator=seeded(5, 2, 1)), a)
    assert not torch.equal(torch.randn(3, generator=seeded(5, 3, 1)), a)
    assert not torch.equal(torch.randn(3, generator=seeded(5, 1, 2)), a)


def test_narrow_networks_get_contiguous_inputs_on_cpu() -> None:
    """The width-2 test runs abort in oneDNN with channels-last inputs; width 16 keeps them."""
    from train.loop import channels_last_is_safe

    from ratzoo.models import ModelConfig, build_model

    cpu = torch.device("cpu")

    assert not channels_last_is_safe(build_model(ModelConfig(width=2)), cpu)
    assert channels_last_is_safe(build_model(ModelConfig(width=16)), cpu)
    assert channels_last_is_safe(build_model(ModelConfig(width=2)), torch.device("cuda"))
