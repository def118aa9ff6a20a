"""What a model *is*, so that a resumed measurement never mixes two models.

The benchmark's finished parts are reused by a later run of the same command; a retrained
checkpoint at the same path, a new push to the same Hub repo or an edited
``module.path:callable`` must not inherit them. :func:`model_identity` says what the model is
from the model itself, never from how it was named:

- ``weights``: sha256 of every parameter and buffer (name, dtype, shape, bytes): exact and the
  same on every machine, so committed parts resume anywhere;
- ``config``: the model's ``config`` (the zoo's noise kind, sigma, layer), which the weights
  may not carry;
- for ``module.path:callable`` only, ``source`` (sha256 of the module's file) and
  ``fingerprint``: the softmax on a fixed probe batch under a fixed seed, rounded, so that a
  change the source does not show (a sigma read from elsewhere) still changes the identity.
  Rounded outputs can differ between CPUs, so it is kept off the zoo's own models, whose
  weights and config say everything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .hub import HUB_PREFIX

PROBE_SHAPE = (4, 3, 32, 32)
PROBE_DECIMALS = 3


def weights_digest(model: nn.Module) -> str:
    """sha256 of the model's state dict: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _config(model: nn.Module) -> Any:
    """The config as the identity hashes it (not :func:`model_config`: a change here re-keys every stored part)."""
    cfg = getattr(model, "config", None)
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return dataclasses.asdict(cfg)
    return cfg if isinstance(cfg, (dict, type(None))) else repr(cfg)


def model_config(model: nn.Module) -> dict[str, Any] | None:
    """The model's configuration as a record states it (None: a model of the user's own code)."""
    cfg = getattr(model, "config", None)
    if hasattr(cfg, "to_dict"):
        return cfg.to_dict()
    return dict(cfg) if isinstance(cfg, dict) else None  # a ratzoo.defenses wrapper's


def model_description(model: nn.Module) -> str:
    """A short name of the model when the caller gave none: its architecture, or its class."""
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "architecture"):
        return f"{cfg.architecture}(width={cfg.width}, noise={cfg.noise_kind}:{cfg.noise_sigma})"
    return type(model).__name__


def _fingerprint(model: nn.Module) -> str | None:
    """Rounded softmax on a fixed probe under seed 0; None when two such calls disagree (the
    model draws from a source no seed reaches), since it would then never match itself."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    probe = torch.rand(PROBE_SHAPE, generator=torch.Generator().manual_seed(0)).to(device)
    outs = []
    for _ in range(2):
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            torch.manual_seed(0)
            out = model(probe)
        outs.append(torch.softmax(out.float(), -1).round(decimals=PROBE_DECIMALS).cpu())
    if not torch.equal(outs[0], outs[1]):
        return None
    return hashlib.sha256(outs[0].numpy().tobytes()).hexdigest()


def model_identity(model: nn.Module, spec: str | None = None) -> dict[str, Any]:
    """The model's identity (see the module docstring) and its ``digest``, a 16-hex key.

    ``spec`` is how the command line named the model; a ``module.path:callable`` adds the
    module's source digest and the behavioural fingerprint.
    """
    ident: dict[str, Any] = {"weights": weights_digest(model), "config": _config(model)}
    if spec and ":" in spec and not spec.startswith(HUB_PREFIX) and not Path(spec).exists():
        module = sys.modules.get(spec.partition(":")[0])
        path = inspect.getsourcefile(module) if module is not None else None
        ident["source"] = hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None
        ident["fingerprint"] = _fingerprint(model)
    ident["digest"] = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return ident
