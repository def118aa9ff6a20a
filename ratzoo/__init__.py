"""ratzoo: randomized adversarial robustness for CIFAR-10 (RAT, LeRAT, AT, R.N.).

The public API (everything else is private):

- :func:`load`, :func:`list_models`: the model zoo (names, ``hf-hub:OWNER/NAME[@REVISION]``, folders).
- :func:`push_to_hub`: publish a checkpoint folder to the Hugging Face Hub.
- :func:`predict_proba`: EOT prediction (mean softmax over noise draws, spread, votes).
- :func:`noise_control`: switch a model's noise on/off or seed it (never via ``.eval()``).
- :mod:`ratzoo.attacks`: FGSM, FGM, PGD, PGDL2, CW, APGD (EOT-aware), :func:`make_attack`.
- :func:`run_attack`: attack images and judge each by the decision rule (the one path
  that :func:`evaluate`, the benchmark and the demo share).
- :class:`Record`, :func:`compare`: the one record schema (``Record.load_folder`` reads a folder of
  them); an exact paired test between two records.
- :func:`benchmark`: one robustness number for any model (APGD-CE + APGD-T, EOT, the
  decision rule, worst case per image; CLI ``python -m ratzoo benchmark``, leaderboard).
- :func:`evaluate`: robust accuracy under ratzoo's decision rule (CLI: ``python -m ratzoo evaluate``).
- :func:`norm_regions`: where minimal L2 examples lie relative to an Linf ball (the paper's Figure 2);
  :func:`figure2`: that figure for the zoo from its C&W records (the demo's and the report's).
- :func:`is_randomized`: whether any model is random, found by behaviour (:mod:`ratzoo.randomness`).
- :func:`load_cifar10`: CIFAR-10 from the Hub (or a local copy).
- :func:`build_model`, :class:`ModelConfig`, :func:`save_checkpoint`, :func:`load_checkpoint`.

All functions take images in [0, 1], NCHW, float; normalization is inside the model.
"""

from __future__ import annotations

from .benchmarking import benchmark  # the function; the CLI is `python -m ratzoo benchmark`
from .certification import certify
from . import attacks
from .attacks import make_attack
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import DatasetError, load_cifar10
from .eot import DEFAULT_DECISION_SAMPLES, EOTPrediction, predict_proba
from .geometry import figure2, norm_regions
from .hub import HubError, push_to_hub
from .evaluation import evaluate  # the function; the CLI is `python -m ratzoo evaluate`
from .judge import AttackOutcome, run_attack
from .models import CIFAR10_CLASSES, ModelConfig, build_model
from .noise import noise_control
from .record import Comparison, Record, compare
from .randomness import is_randomized
from .zoo import list_models, load

__version__ = "0.1.0"

__all__ = [
    "AttackOutcome",
    "CIFAR10_CLASSES",
    "CheckpointError",
    "DEFAULT_DECISION_SAMPLES",
    "Comparison",
    "DatasetError",
    "EOTPrediction",
    "HubError",
    "ModelConfig",
    "Record",
    "attacks",
    "benchmark",
    "build_model",
    "evaluate",
    "certify",
    "compare",
    "figure2",
    "is_randomized",
    "list_models",
    "load",
    "load_checkpoint",
    "load_cifar10",
    "make_attack",
    "noise_control",
    "norm_regions",
    "predict_proba",
    "push_to_hub",
    "run_attack",
    "save_checkpoint",
]
