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

The file names and the weights' exact bytes are :mod:`ratzoo.fileformat`'s. Weights are never unpickled.
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

from ._io import atomic_write_text, umask_mode
from .fileformat import CARD, CONFIG, FORMAT_VERSION, WEIGHTS, sha256_file, weights_bytes
from .models import ModelConfig, RandomizedClassifier
from .registry import REGISTRY


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, malformed or does not match its model."""


def _in_zoo(config: dict[str, Any]) -> bool:
    """Whether the checkpoint's name is a zoo name (its card then loads it by name)."""
    return config.get("name") in REGISTRY


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
        results: measured results, as written by :mod:`ratzoo.evaluation`
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
        stored.save_pretrained(staging, config=config,
                               model_card_kwargs={"checkpoint": config, "in_zoo": _in_zoo(config)})
        if sha256_file(staging / WEIGHTS) != config["weights_sha256"]:
            raise CheckpointError(f"{folder}: the weights written differ from the bytes hashed; nothing replaced")
        for f in (WEIGHTS, CONFIG, CARD):
            os.chmod(staging / f, umask_mode())
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
    atomic_write_text(folder / CONFIG, json.dumps(config, indent=2) + "\n")
    card = model_card(config, RandomizedClassifier._hub_mixin_info, in_zoo=_in_zoo(config))
    atomic_write_text(folder / CARD, card.content)
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
    # channels_last: the faster layout for these convolutions on CPU and GPU (benchmarks/bench_layout.py)
    return model.to(device, memory_format=torch.channels_last).eval()
