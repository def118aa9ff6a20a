"""Shared fixtures: tiny checkpoints, a tiny CIFAR-like parquet dataset, the shared copy.

Every test session gets its own ``$RATZOO_CACHE`` (decoded datasets, training states)
under a temporary folder, so tests never write to ``~/.cache``; torch runs on one
thread so that timings stay sane on a 2-core machine that may be training a model.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Before torch is imported anywhere: one thread (also inherited by subprocesses).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# One cache per test session, never ~/.cache/ratzoo: set at import time so that even
# module-level code and subprocesses spawned by tests see it.
_SESSION_CACHE = tempfile.mkdtemp(prefix="ratzoo-test-cache-")
os.environ["RATZOO_CACHE"] = _SESSION_CACHE
# No network and no cached Hub token: huggingface_hub reads these at import time, so they
# are set before anything imports it. Tests that want an (unreachable) endpoint use a
# subprocess with their own environment.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = os.path.join(_SESSION_CACHE, "hf_home")
os.environ.pop("HF_TOKEN", None)
for _var in ("HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
    os.environ.pop(_var, None)

import torch  # noqa: E402

torch.set_num_threads(1)

import ratzoo  # noqa: E402
from ratzoo.models import RandomizedClassifier  # noqa: E402


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import shutil

    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def session_cache() -> Path:
    """The per-session ``$RATZOO_CACHE``."""
    return Path(_SESSION_CACHE)


@pytest.fixture(scope="session")
def cifar_root() -> Path:
    """The shared CIFAR-10 copy (``$RATZOO_CIFAR10`` or ``<repo>/../shared/data/cifar10``)."""
    root = Path(os.environ.get("RATZOO_CIFAR10") or REPO_ROOT.parent / "shared" / "data" / "cifar10")
    if not (root / "plain_text" / "test-00000-of-00001.parquet").is_file():
        pytest.skip(
            f"no local CIFAR-10 copy at {root} (expected plain_text/*.parquet); "
            "set RATZOO_CIFAR10 to a folder in the Hub layout to run this test"
        )
    return root


CheckpointFactory = Callable[..., Path]


@pytest.fixture
def make_checkpoint(tmp_path: Path) -> CheckpointFactory:
    """Build a tiny model (PreActResNet-18, width 2 by default) and save it as a checkpoint.

    Call ``make_checkpoint(name="ck", **model_config_overrides)``; keyword ``training`` and
    ``results`` go to :func:`ratzoo.save_checkpoint`. Returns the folder.
    """

    def make(name: str = "ck", *, training: dict[str, Any] | None = None,
             results: dict[str, Any] | None = None, seed: int = 0, **overrides: Any) -> Path:
        overrides.setdefault("width", 2)
        torch.manual_seed(seed)
        model = ratzoo.build_model(**overrides)
        _randomize_bn(model, seed)
        return ratzoo.save_checkpoint(model, tmp_path / name, training=training, results=results)

    return make


def _randomize_bn(model: RandomizedClassifier, seed: int) -> None:
    """Give batch-norm buffers non-default values so that a lost buffer changes the logits."""
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def write_cifar_parquet(path: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write ``images`` (N, 32, 32, 3) uint8 and ``labels`` in the Hub schema of uoft-cs/cifar10."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    img = pa.array(
        [{"bytes": png_bytes(im), "path": f"{i}.png"} for i, im in enumerate(images)],
        type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )
    pq.write_table(pa.table({"img": img, "label": pa.array(labels, type=pa.int64())}), path)
    return path


def tiny_cifar_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable-ish random images: the label sets the mean colour of the image."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    base = (labels[:, None, None, None] * 25).astype(np.int64)
    noise = rng.integers(0, 40, (n, 32, 32, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8), labels.astype(np.int64)


@pytest.fixture(scope="session")
def tiny_cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CIFAR-10-shaped folder (Hub layout) with 320 train and 64 test images."""
    root = tmp_path_factory.mktemp("tiny_cifar")
    for split, n, seed in (("train", 320, 0), ("test", 64, 1)):
        x, y = tiny_cifar_arrays(n, seed)
        write_cifar_parquet(root / "plain_text" / f"{split}-00000-of-00001.parquet", x, y)
    return root


@pytest.fixture
def subprocess_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for ``python -m ...`` subprocesses: this repo importable, one thread,
    the session cache, an empty HF home (no cached token) and the Hub offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        PYTHONPATH=str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        RATZOO_CACHE=_SESSION_CACHE,
        HF_HOME=str(tmp_path / "hf_home"),
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONUNBUFFERED="1",
    )
    yield env


PYTHON = sys.executable


def train_template_mlp(n_test: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """An undefended MLP trained here (about a second) on 8x8 images whose class is a
    faint +-1 template under noise: ~100% clean accuracy, with a margin an 8/255 attack can
    erase. Returns the model (eval mode, no grads left) and ``n_test`` held-out examples."""
    import torch.nn.functional as F
    from torch import nn

    class Standardize(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x - 0.5) / 0.1

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    d = (3, 8, 8)
    templates = torch.randint(0, 2, (10, *d), generator=g).float() * 2 - 1

    def data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        gg = torch.Generator().manual_seed(seed)
        y = torch.randint(0, 10, (n,), generator=gg)
        return (0.5 + 0.025 * templates[y] + 0.05 * torch.randn(n, *d, generator=gg)).clamp(0, 1), y

    xtr, ytr = data(2000, 1)
    model = nn.Sequential(Standardize(), nn.Flatten(), nn.Linear(192, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(8):
        perm = torch.randperm(2000)
        for i in range(0, 2000, 100):
            idx = perm[i : i + 100]
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    for p in model.parameters():
        p.grad = None
    x, y = data(n_test, 2)
    return model.eval(), x, y
