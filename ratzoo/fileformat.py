"""The checkpoint folder's file format: its file names, the exact bytes of its weights file, sha256.

A leaf: it imports nothing from ratzoo but the standard-library writers of :mod:`ratzoo._io`, so that :mod:`ratzoo.models` (which writes the weights for
the mixin's ``save_pretrained``), :mod:`ratzoo.checkpoint` and :mod:`ratzoo.hub` share one
definition of what a checkpoint folder holds.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from ._io import atomic_write

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CARD = "README.md"
FILES = [WEIGHTS, CONFIG, CARD]  # all a checkpoint folder (or Hub repo) holds, and all a load fetches
FORMAT_VERSION = 1
# safetensors header metadata of every weights file ratzoo writes (part of the sha256)
WEIGHTS_METADATA = {"format": "pt", "ratzoo_format": str(FORMAT_VERSION)}


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_bytes(model: torch.nn.Module) -> bytes:
    """The exact bytes of ``model.safetensors`` for ``model``: its state dict, contiguous, on
    the CPU, in the tensors' own dtype, with :data:`WEIGHTS_METADATA` in that order.

    Deterministic, so that a re-saved (or pushed) model has the same sha256 as its file:
    safetensors writes the header's ``__metadata__`` in no fixed order, so
    :func:`canonical_header` puts it in one.
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


def write_weights(model: torch.nn.Module, folder: str | os.PathLike) -> None:
    """Write :func:`weights_bytes` to ``folder``/:data:`WEIGHTS` atomically."""
    atomic_write(Path(folder) / WEIGHTS, weights_bytes(model))
