"""Checkpoint folders: ``model.safetensors`` + ``config.json`` + ``README.md`` (model card).

The folder is what huggingface_hub's :class:`~huggingface_hub.PyTorchModelHubMixin` writes
(:meth:`RandomizedClassifier.save_pretrained`): :func:`save_checkpoint` calls it with ratzoo's
``config.json`` (architecture, storage dtype, the weights' sha256, the training record, the
measured results) and model card. What stays ratzoo's own here, because the mixin lacks it:

- the weights' sha256 recorded in ``config.json`` and checked on every load (the mixin checks
  none: a corrupted or swapped file loads silently);
- strict loading with errors that name the file and the problem (the mixin loads with
  ``strict=False`` by default and lets safetensors' and json's exceptions through);
- half-precision storage (``dtype=torch.bfloat16``) restored to float32 on load;
- :func:`update_results`: new measured results into ``config.json`` and the card, weights untouched.

Weights are never unpickled.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ._io import atomic_write as _atomic_write, atomic_write_text as _atomic_write_text, umask_mode as _umask_mode
from .models import ModelConfig, RandomizedClassifier

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
FORMAT_VERSION = 1
# safetensors header metadata of every weights file ratzoo writes (part of the sha256)
WEIGHTS_METADATA = {"format": "pt", "ratzoo_format": str(FORMAT_VERSION)}


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, malformed or does not match its model."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_bytes(model: torch.nn.Module) -> bytes:
    """The exact bytes of ``model.safetensors`` for ``model``: its state dict, contiguous, on
    the CPU, in the tensors' own dtype, with :data:`WEIGHTS_METADATA` in that order.

    Deterministic, so that a re-saved (or pushed) model has the same sha256 as its file.
    safetensors alone is not: it writes the header's ``__metadata__`` from a Rust hash map,
    whose order changes between calls (measured with safetensors 0.8.0: 2 different sha256 in
    20 calls of the same model); the header is rewritten here with the keys in a fixed order
    (same length, so the tensors' offsets do not move).
    """
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    return canonical_header(save(state, metadata=WEIGHTS_METADATA))


def canonical_header(blob: bytes) -> bytes:
    """``blob`` (safetensors bytes) with the header's ``__metadata__`` keys in
    :data:`WEIGHTS_METADATA`'s order (same length: the tensors' offsets do not move)."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    if set(header.get("__metadata__") or {}) != set(WEIGHTS_METADATA):
        return blob
    header["__metadata__"] = {k: header["__metadata__"][k] for k in WEIGHTS_METADATA}
    text = json.dumps(header, separators=(",", ":")).encode()
    return blob[:8] + text.ljust(n) + blob[8 + n :] if len(text) <= n else blob


def write_weights(model: torch.nn.Module, path: Path) -> None:
    """Write :func:`weights_bytes` to ``path`` atomically."""
    _atomic_write(path, weights_bytes(model))


def save_checkpoint(
    model: RandomizedClassifier,
    folder: str | os.PathLike,
    *,
    name: str | None = None,
    training: dict[str, Any] | None = None,
    results: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write ``model`` as a checkpoint folder (weights, config, model card) with the mixin's
    ``save_pretrained``.

    Args:
        model: the classifier to save (left untouched).
        folder: destination folder (created if needed; each file replaced atomically).
        name: the model's short name (for the card), defaults to the folder name.
        training: how it was trained: method, hyperparameters, the exact command.
        results: measured results, as written by :mod:`ratzoo.evaluate`
            (``{"dataset": ..., "metrics": [{"name", "value", ...}, ...]}``).
        dtype: storage dtype of floating-point weights (loading restores float32).

    Returns:
        The folder path.

    Raises:
        TypeError: ``model`` is not a ratzoo model (nothing is written).
    """
    if not isinstance(model, RandomizedClassifier):
        raise TypeError(
            f"save_checkpoint writes ratzoo models (from ratzoo.build_model or ratzoo.load), whose config.json "
            f"rebuilds them; got a {type(model).__name__}. Nothing was written. Save your own nn.Module's weights "
            "with safetensors.torch.save_model(model, path) and rebuild it in your code; ratzoo's functions take it "
            "as it is, and the benchmark and evaluate CLIs as --model module.path:callable")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    floats = {v.dtype for v in model.state_dict().values() if v.is_floating_point()}
    stored = model if floats <= {dtype} else copy.deepcopy(model).to(dtype)
    config = {
        "format_version": FORMAT_VERSION,
        "name": name or folder.name,
        "model": model.config.to_dict(),
        "storage_dtype": str(dtype).replace("torch.", ""),
        # the bytes _save_pretrained writes (weights_bytes is deterministic), checked below
        "weights_sha256": hashlib.sha256(weights_bytes(stored)).hexdigest(),
        "training": training or {},
        "results": results or {},
    }
    # The mixin writes into a fresh folder (it keeps an existing README.md), then each file is
    # moved into place: a reader never sees new weights with an old config.
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".save-"))
    try:
        stored.save_pretrained(staging, config=config, model_card_kwargs={"checkpoint": config})
        if sha256_file(staging / WEIGHTS) != config["weights_sha256"]:
            raise CheckpointError(f"{folder}: the weights written differ from the bytes hashed; nothing replaced")
        for f in (WEIGHTS, CONFIG, CARD):
            os.chmod(staging / f, _umask_mode())
            os.replace(staging / f, folder / f)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def update_results(folder: str | os.PathLike, results: dict[str, Any]) -> dict[str, Any]:
    """Replace the measured results of a checkpoint (``config.json`` and the model card),
    leaving the weights untouched. Returns the new config."""
    from .card import model_card

    folder = Path(folder)
    config = read_config(folder)
    config["results"] = results
    _atomic_write_text(folder / CONFIG, json.dumps(config, indent=2) + "\n")
    _atomic_write_text(folder / CARD, model_card(config).content)
    return config


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a checkpoint folder's ``config.json``."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; a checkpoint folder holds {WEIGHTS}, {CONFIG} and {CARD}")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e
    if isinstance(config, dict) and "model" not in config and "architecture" in config:
        # a bare `model.save_pretrained(folder)`: the mixin's config.json is the ModelConfig itself
        config = {"model": config}
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(f"{path}: no 'model' section describing the architecture")
    try:
        ModelConfig.from_dict(config["model"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid model config: {e}") from e
    return config


def load_checkpoint(
    folder: str | os.PathLike,
    device: str | torch.device = "cpu",
    expected_sha256: str | None = None,
) -> RandomizedClassifier:
    """Load a checkpoint folder into a float32 model in ``eval()`` mode (noise on).

    Args:
        folder: a folder written by :func:`save_checkpoint`.
        device: where to put the model.
        expected_sha256: if given, the weights file must have this sha256.

    Raises:
        CheckpointError: with the file and the problem, for any mismatch.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoint folder")
    config = read_config(folder)
    wpath = folder / WEIGHTS
    if not wpath.is_file():
        raise CheckpointError(f"{wpath}: missing weights file")
    digest = sha256_file(wpath)
    for want, source in ((expected_sha256, "the registry"), (config.get("weights_sha256"), CONFIG)):
        if want and digest != want:
            raise CheckpointError(
                f"{wpath}: sha256 {digest[:12]}... does not match {want[:12]}... recorded in {source}; "
                "the file is corrupt or was replaced: re-download or re-export it"
            )
    try:
        state = load_file(wpath)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{wpath}: not a readable safetensors file ({e}); it may be truncated") from e
    model = RandomizedClassifier(ModelConfig.from_dict(config["model"]))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{wpath}: weights do not match the architecture in {CONFIG}: "
            f"missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    bad = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
           for k, v in expected.items() if state[k].shape != v.shape]
    if bad:
        raise CheckpointError(f"{wpath}: shape mismatch for {len(bad)} tensors, e.g. {bad[:3]}")
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    # channels_last: PreActResNet-18 w16 at 1 CPU thread, beside another job, measured 1.0-1.7x
    # (mostly 1.2-1.5x) the forward + input-gradient passes per second of the default layout at
    # 64-256 images per pass over three runs (benchmarks/bench_layout.py), and it is the fast
    # layout on GPUs. Inputs need no conversion (a conv follows its weight's layout); logits
    # agree with the default layout to 1e-6.
    return model.to(device, memory_format=torch.channels_last).eval()
