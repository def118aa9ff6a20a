"""The trainer's one configuration dataclass, its presets, and the CLI built from it."""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from ratzoo import cli
from ratzoo.data import cache_dir
from ratzoo.judge import DEFAULT_EOT

METHODS = ("standard", "at", "rn", "rat", "lerat", "rse", "pni")
ATTACKS = ("fgsm_rs", "pgd")


# fields added after runs were recorded: left out of the fingerprint at their defaults, so those
# runs' states still resume and their checkpoints' recorded configs still match their presets
_LATER_FIELDS = frozenset({"noise_inner"})


@dataclasses.dataclass
class TrainConfig:
    """How to train one model (saved next to every checkpoint as ``training``)."""

    method: str = cli.option("standard", f"training method: one of {METHODS}")
    architecture: str = cli.option("preact_resnet18", "architecture name (ratzoo.models.ARCHITECTURES)")
    width: int = cli.option(16, "PreActResNet base width (64 = standard model) or WRN widen factor",
                            type=cli.positive_int("--width"))
    noise_sigma: float = cli.option(0.0, "noise std for rn/rat (initial value for lerat), in units of the unit-variance "
                                         "first-layer features; rse: the std on the input pixels; pni: the initial "
                                         "alpha (in units of each layer's weight std)")
    noise_layer: int = cli.option(1, "1 = noise after the first layer (paper), 0 = on input pixels (rse: 0)")
    noise_inner: float = cli.option(0.0, "rse: the noise std before every convolution but the first")
    epochs: int = cli.option(15, "number of epochs", type=cli.positive_int("--epochs"))
    batch_size: int = cli.option(128, "global batch size (split over DDP ranks)",
                                 type=cli.positive_int("--batch-size"))
    lr: float = cli.option(0.2, "peak learning rate of the one-cycle (triangular) schedule")
    warmup: float = cli.option(0.3, "fraction of the steps spent ramping the LR up from 0")
    momentum: float = cli.option(0.9, "SGD (Nesterov) momentum")
    weight_decay: float = cli.option(5e-4, "weight decay (not applied to batch-norm, biases and the noise's std / "
                                           "alpha)")
    label_smoothing: float = cli.option(0.0, "cross-entropy label smoothing")
    attack: str = cli.option("fgsm_rs", f"training attack for at/rat/lerat/pni: one of {ATTACKS}")
    eps: float = cli.option(8 / 255, "Linf budget of the training attack on [0, 1] images (accepts 8/255)")
    step_size: float = cli.option(10 / 255, "attack step size (FGSM-RS: 1.25 eps per Wong et al. 2020)")
    attack_steps: int = cli.option(1, "PGD steps (ignored by fgsm_rs)", type=cli.positive_int("--attack-steps"))
    val_size: int = cli.option(1000, "training images held out for per-epoch validation (clean + PGD guard)",
                               type=cli.nonnegative_int("--val-size"))
    co_guard: bool = cli.option(True, "stop when PGD accuracy on the held-out set collapses (catastrophic "
                                      "overfitting)")
    data_dir: str = cli.option("", "local CIFAR-10 folder (Hub layout); default $RATZOO_CIFAR10, else the Hub")
    train_subset: int = cli.option(0, "train on the first N images only (0 = all; for tests)",
                                   type=cli.nonnegative_int("--train-subset"))
    max_steps: int = cli.option(0, "stop after this many optimizer steps in total (0 = no limit; for tests)",
                                type=cli.nonnegative_int("--max-steps"))
    seed: int = cli.option(0, "seed of everything: init, data order, augmentation, noise, attacks")
    out: str = cli.option("", "checkpoint folder to write at the end (default checkpoints/<name>)")
    name: str = cli.option("", "model name (default: the preset or method)")
    state_dir: str = cli.option("", "where the resumable training state lives (default ~/.cache/ratzoo/runs/<name>)")
    resume: bool = cli.option(False, "continue from the training state in state_dir")
    eval_n: int = cli.option(1000, "test images for the final evaluation (0 = skip it)",
                             type=cli.nonnegative_int("--eval-n"))
    # eval_eot (--eval-eot) in the config.json of the checkpoints trained before it took the library's
    # name; not in the fingerprint, so their resumes and preset checks do not depend on it
    eval_eot_samples: int = cli.option(DEFAULT_EOT, "EOT draws of the final evaluation's attacks on noisy models",
                                       flags=("--eval-eot-samples", "--eval-eot"),
                                       type=cli.positive_int("--eval-eot-samples"))
    device: str = cli.option("auto", "cpu, cuda, cuda:N or auto")
    threads: int = cli.option(0, "CPU threads (0 = all cores)", type=cli.nonnegative_int("--threads"))
    channels_last: str = cli.option("auto", "auto (on for CUDA, off for CPU where it measured slower), on, off")
    amp: str = cli.option("auto", "bf16 autocast: auto (CUDA only), on, off")
    push_to_hub: str = cli.option("", "OWNER/NAME: publish the checkpoint folder to the Hub at the end")
    preset: str = cli.option("", "start from a named preset (see --list-presets); explicit flags override it")

    def validate(self) -> None:
        """Raise ValueError, with what to do, before any work starts."""
        errs = cli.range_errors(self)
        if self.method not in METHODS:
            errs.append(f"unknown method {self.method!r}; choose one of {METHODS}")
        from ratzoo.models import ARCHITECTURES

        if self.architecture not in ARCHITECTURES:
            errs.append(f"unknown architecture {self.architecture!r}; choose one of {sorted(ARCHITECTURES)}")
        if self.attack not in ATTACKS:
            errs.append(f"unknown training attack {self.attack!r}; choose one of {ATTACKS}")
        for field in ("eps", "step_size", "lr"):
            v = getattr(self, field)
            if not math.isfinite(v) or v <= 0:
                errs.append(f"{field} must be > 0, got {v}")
        if self.noise_sigma < 0 or not math.isfinite(self.noise_sigma):
            errs.append(f"noise_sigma must be >= 0, got {self.noise_sigma}")
        if self.noise_kind != "none" and self.noise_sigma <= 0:
            errs.append(f"method {self.method!r} injects noise: give --noise-sigma > 0")
        if self.noise_kind == "none" and self.noise_sigma > 0:
            errs.append(f"method {self.method!r} is deterministic: drop --noise-sigma (use rn/rat/lerat)")
        if self.method == "rse":
            if not self.noise_inner > 0 or not math.isfinite(self.noise_inner):
                errs.append(f"method 'rse' adds noise before every convolution: give --noise-inner > 0, got {self.noise_inner}")
            if self.noise_layer != 0:
                errs.append("method 'rse' puts its first noise on the input pixels: give --noise-layer 0 (or use --preset rse)")
        elif self.noise_inner != 0:
            errs.append(f"--noise-inner is RSE's: drop it for method {self.method!r}")
        if self.data_dir and not Path(self.data_dir).expanduser().is_dir():
            errs.append(f"data folder {self.data_dir} does not exist; point --data-dir at a CIFAR-10 copy in the Hub layout")
        if self.noise_layer not in (0, 1):
            errs.append(f"noise_layer must be 0 (input pixels) or 1 (after the first layer), got {self.noise_layer}")
        for field in ("channels_last", "amp"):
            if getattr(self, field) not in ("auto", "on", "off"):
                errs.append(f"{field} must be auto, on or off, got {getattr(self, field)!r}")
        if self.device != "auto":
            import torch

            try:
                dev = torch.device(self.device)
            except (RuntimeError, ValueError):
                errs.append(f"unknown device {self.device!r}; use cpu, cuda, cuda:N or auto")
            else:
                if dev.type == "cuda" and not torch.cuda.is_available():
                    errs.append(f"device {self.device!r} asked for, but CUDA is not available here; use --device cpu")
        if self.push_to_hub and (self.push_to_hub.count("/") != 1 or not all(self.push_to_hub.split("/"))):
            errs.append(f"--push-to-hub wants a repo id OWNER/NAME, got {self.push_to_hub!r} "
                        "(checked now so that it does not fail after the training)")
        if errs:
            raise ValueError("invalid training configuration:\n  - " + "\n  - ".join(errs))

    @property
    def adversarial(self) -> bool:
        return self.method in ("at", "rat", "lerat", "pni")

    @property
    def noise_kind(self) -> str:
        return {"rn": "fixed", "rat": "fixed", "lerat": "learned", "rse": "rse", "pni": "pni"}.get(self.method, "none")

    def run_name(self) -> str:
        return self.name or self.preset or self.method

    def fingerprint(self) -> dict[str, Any]:
        """The fields that define the training run (a resume must match them)."""
        skip = {"resume", "device", "threads", "push_to_hub", "out", "state_dir", "eval_n", "eval_eot_samples",
                "data_dir", "name", "preset"}
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k not in skip and not (k in _LATER_FIELDS and v == defaults[k])}


# CPU-sized zoo schedule: PreActResNet-18 at width 16, one-cycle LR, FGSM-RS adversarial
# training (Wong et al. 2020). Noise std: the grid search's choice (`python -m train.grid`,
# checkpoints/results/sigma_grid.json: "chosen_sigma": 1.0), which the bundled rn / rat / lerat
# were trained with. A zoo model's preset is its registry name (ratzoo/zoo.json) and must
# reproduce its bundled config.json's training fields (tests/test_zoo_bundled.py checks it).
ZOO_SIGMA = 1.0
PRESETS: dict[str, dict[str, Any]] = {
    "standard": dict(method="standard", epochs=25, lr=0.2, label_smoothing=0.1),
    "at": dict(method="at", epochs=20, lr=0.2),
    "rn": dict(method="rn", epochs=25, lr=0.2, noise_sigma=ZOO_SIGMA, label_smoothing=0.1),
    "rat": dict(method="rat", epochs=20, lr=0.2, noise_sigma=ZOO_SIGMA),
    "lerat": dict(method="lerat", epochs=20, lr=0.2, noise_sigma=ZOO_SIGMA),
    # randomized smoothing's base classifier (Cohen et al. 2019): Gaussian noise of std 0.25 on the
    # [0, 1] input pixels at training and inference, otherwise the recipe of rn
    "gaussian": dict(method="rn", noise_layer=0, noise_sigma=0.25, epochs=25, lr=0.2, label_smoothing=0.1),
    # RSE (Liu et al. 2018): the authors' CIFAR-10 noise, std 0.4 on the [0, 1] input and 0.1 before
    # every other convolution (their train_rse.sh), trained clean with the noise on; rn's recipe
    "rse": dict(method="rse", epochs=25, lr=0.2, noise_layer=0, noise_sigma=0.4, noise_inner=0.1, label_smoothing=0.1),
    # PNI-W (Rakin et al. 2019): layer-wise weight noise, alpha initialised to 0.25 and learned, with
    # adversarial training; the paper's is PGD-7, ours at's FGSM-RS recipe
    "pni": dict(method="pni", epochs=20, lr=0.2, noise_sigma=0.25),
    # The paper's section 5.4, translated to [0, 1] inputs: their inputs live in [-1, 1],
    # so PGD intensity 0.03 -> eps 0.015 and step 0.02 -> 0.01; 1 PGD iteration with a
    # random start; noise N(0, 1) -> sigma 1.0; WRN-28-10, batch 200, lr 0.1, wd 0.002.
    "paper": dict(method="rat", architecture="wide_resnet28_10", width=10, attack="pgd", attack_steps=1,
                  eps=0.015, step_size=0.01, noise_sigma=1.0, epochs=200, batch_size=200, lr=0.1,
                  weight_decay=2e-3),
}


def parse_fraction(text: str) -> float:
    """'8/255' -> 0.0313...; plain numbers pass through. Clear error on nonsense."""
    try:
        v = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a fraction like 8/255, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    """The CLI, one flag per :class:`TrainConfig` field; a flag not given is None, so that the
    flags given override ``--preset``'s values (:func:`config_from_args`)."""
    p = cli.ArgumentParser(
        prog="python -m train",
        description="Train a standard / AT / R.N. / RAT / LeRAT / RSE / PNI CIFAR-10 model and write a ratzoo checkpoint.",
    )
    p.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    cli.add_options(p, TrainConfig, unset_defaults=True, bool_values=True, types={"float": parse_fraction})
    return p


def config_from_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    parser = build_parser()
    args = parser.parse_args(argv)
    explicit = {k: v for k, v in vars(args).items() if v is not None and k != "list_presets"}
    base: dict[str, Any] = {}
    if explicit.get("preset"):
        if explicit["preset"] not in PRESETS:
            parser.error(f"unknown preset {explicit['preset']!r}; choose one of {sorted(PRESETS)}")
        base = dict(PRESETS[explicit["preset"]])
    cfg = TrainConfig(**{**base, **explicit})
    return cfg, args


def command_line(argv: list[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else argv
    return "python -m train " + " ".join(shlex.quote(a) for a in argv)


def default_state_dir(cfg: TrainConfig) -> Path:
    root = cache_dir()
    return Path(cfg.state_dir) if cfg.state_dir else root / "runs" / cfg.run_name()
