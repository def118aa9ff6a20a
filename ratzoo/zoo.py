"""The model zoo: the registry (``ratzoo/zoo.json``, the one list of zoo models, read by
:mod:`ratzoo.registry`) and :func:`load`.

A name resolves in one documented order, as in timm: an explicit folder > the checkpoint
bundled with the repository (``checkpoints/<name>/``) > the Hugging Face Hub, through
huggingface_hub's own cache (``HF_HOME``; ``HF_HUB_OFFLINE=1`` serves from it with no network
call). ``"hf-hub:OWNER/NAME"`` or ``"hf-hub:OWNER/NAME@REVISION"`` loads any Hub repo holding a
ratzoo checkpoint (what :func:`ratzoo.push_to_hub` and ``python -m train --push-to-hub`` publish).

Every weights file is checked against a sha256 before a tensor is read: the registry's pin
(``sha256`` in ``zoo.json``, written by ``python -m train.register``) for the repository's own
checkpoints and for registry entries on the Hub, and always the one recorded in the
checkpoint's own ``config.json`` (which catches a truncated, corrupted or swapped file).

``$RATZOO_CHECKPOINTS`` points ratzoo at another zoo folder (your own retrained models, a
mirror): its checkpoints are yours, so they are verified against their own ``config.json``,
not against the registry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CONFIG, WEIGHTS, CheckpointError, load_checkpoint
from .defenses import DEFENSES, build_defense
from .hub import HUB_PREFIX, download, load_from_hub, parse_hub_name
from .registry import REGISTRY as _REGISTRY
from .registry import REGISTRY_FILE, read_registry  # noqa: F401 (re-exported: ratzoo.zoo is the registry's API)
from .registry import ZooEntry, hub_entry

ENV_CHECKPOINTS = "RATZOO_CHECKPOINTS"

# The paper's Table 2 (Araujo et al., arXiv:1903.10219), robust accuracy per method (Linf, L2) in
# PAPER_TABLE2_SETTING: reference numbers the README and the demo compare the zoo with.
PAPER_TABLE2: dict[str, tuple[float, float]] = {
    "at": (0.400, 0.056), "rn": (0.356, 0.489), "rat": (0.409, 0.499), "lerat": (0.400, 0.296),
}
PAPER_TABLE2_SETTING = ("CIFAR-10, WideResNet-28-10, EOT with 50 draws; Linf: PGD-10 at eps 0.3 on inputs in "
                        "[-1, 1] (0.15 on [0, 1]); L2: C&W with 40 iterations, unbounded")


def literature() -> list[dict[str, Any]]:
    """The literature's randomized defenses (``zoo.json``'s ``literature``): per defense its
    ``title``, the ``zoo`` entries implementing it and its published ``claims`` (who, setting,
    claim, differs, source)."""
    return list(json.loads(REGISTRY_FILE.read_text()).get("literature", []))


# The repository's own bundled zoo, whose files the registry's sha256 pins.
REPO_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def checkpoints_dir() -> Path:
    """Where bundled checkpoints live: ``$RATZOO_CHECKPOINTS`` or the repository's ``checkpoints/``."""
    env = os.environ.get(ENV_CHECKPOINTS)
    return Path(env) if env else REPO_CHECKPOINTS


def entries() -> dict[str, ZooEntry]:
    """The registry: name -> entry, in the zoo's order."""
    return dict(_REGISTRY)


def names() -> list[str]:
    """The zoo's model names, in order."""
    return list(_REGISTRY)


def trained_names() -> list[str]:
    """The names of the entries with weights of their own (what ``train`` trains and cards describe)."""
    return [e.name for e in _REGISTRY.values() if e.trained]


def labels() -> dict[str, str]:
    """Display labels by model name, in the zoo's order."""
    return {e.name: e.label for e in _REGISTRY.values()}


def pinned_sha256(folder: Path, entry: ZooEntry | None) -> str | None:
    """The registry sha256 that a local ``folder`` must match: the entry's for the repository's
    own checkpoints; None for a path or a ``$RATZOO_CHECKPOINTS`` zoo (those are checked against
    their own ``config.json`` by :func:`load_checkpoint`). Hub downloads are pinned by
    :func:`ratzoo.hub.load_from_hub`."""
    if entry is None or entry.sha256 is None:
        return None
    if os.environ.get(ENV_CHECKPOINTS) and entry.bundled and folder == checkpoints_dir() / entry.bundled:
        return None
    return entry.sha256


def _bundled_folder(entry: ZooEntry) -> Path | None:
    if entry.bundled is None:
        return None
    folder = checkpoints_dir() / entry.bundled
    return folder if (folder / WEIGHTS).is_file() else None


def _resolve(name_or_path: str | os.PathLike) -> tuple[Path | tuple[str, str | None], ZooEntry | None]:
    """(a local folder, or the Hub ``(repo_id, revision)`` to fetch; the registry entry or None)."""
    if isinstance(name_or_path, str) and name_or_path.startswith(HUB_PREFIX):
        repo_id, revision = parse_hub_name(name_or_path)
        return (repo_id, revision), hub_entry(repo_id, revision)
    path = Path(name_or_path)
    # A bare registry name always means the zoo entry (pass "./rat" for a local folder "rat").
    is_name = isinstance(name_or_path, str) and os.sep not in name_or_path and name_or_path in _REGISTRY
    if not is_name and (isinstance(name_or_path, os.PathLike) or os.sep in str(name_or_path) or path.is_dir()):
        if not path.is_dir():
            raise CheckpointError(f"{path}: no such checkpoint folder")
        return path, None
    name = str(name_or_path)
    if name not in _REGISTRY:
        raise KeyError(
            f"unknown model {name!r}; available: {', '.join(_REGISTRY)} "
            f"(or pass the path of a checkpoint folder, or {HUB_PREFIX}OWNER/NAME for a Hub repo)"
        )
    entry = _REGISTRY[name]
    folder = _bundled_folder(entry)
    if folder is not None:
        return folder, entry
    if entry.hub_repo:
        return (entry.hub_repo, entry.hub_revision), entry
    raise CheckpointError(
        f"model {name!r} has no trained checkpoint yet: expected {checkpoints_dir() / (entry.bundled or name)}"
        f"/{WEIGHTS} (train it with `python -m train --preset {name}`) and it has no Hub repo"
    )


def resolve(name_or_path: str | os.PathLike) -> tuple[Path, ZooEntry | None]:
    """The checkpoint folder for a zoo name, an ``hf-hub:`` name or a path, and its registry
    entry (if any). Hub checkpoints are downloaded into huggingface_hub's cache first."""
    where, entry = _resolve(name_or_path)
    return (where if isinstance(where, Path) else download(*where)), entry


def load(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a zoo model by name (``"rat"``), a Hub repo (``"hf-hub:OWNER/NAME[@REVISION]"``)
    or a checkpoint folder by path.

    The model is in ``eval()`` mode with its noise ON: a randomized model stays
    randomized. Use :func:`ratzoo.predict_proba` for EOT predictions and
    :func:`ratzoo.noise_control` to switch the noise off or seed it.

    Args:
        name_or_path: a name from :func:`list_models`, an ``hf-hub:`` name or a checkpoint folder.
        device: where to put the model.

    Raises:
        KeyError: unknown name (the message lists the available ones).
        CheckpointError: missing, corrupt or mismatched checkpoint, or a Hub repo that cannot
            be fetched; the message names the file or repo and what to do.

    A defense entry (``base`` and ``defense`` in the registry, e.g. ``"sap_at"``) is its base
    model, loaded the same way, inside the :mod:`ratzoo.defenses` module the entry names. A Hub
    checkpoint is loaded by :func:`ratzoo.hub.load_from_hub`, as
    ``RandomizedClassifier.from_pretrained`` loads one.

    >>> model = ratzoo.load("rat")
    >>> model = ratzoo.load("hf-hub:you/ratzoo-rat@main")
    """
    wrapper = _REGISTRY.get(name_or_path) if isinstance(name_or_path, str) else None
    if wrapper is not None and wrapper.defense is not None:
        params = {k: v for k, v in wrapper.defense.items() if k != "name"}
        return build_defense(wrapper.defense["name"], load(wrapper.base, device=device), **params).to(device).eval()
    where, entry = _resolve(name_or_path)
    if isinstance(where, Path):
        return load_checkpoint(where, device=device, expected_sha256=pinned_sha256(where, entry))
    return load_from_hub(*where, device=device)


def load_model_spec(spec: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The model a command line names: a zoo name, a checkpoint folder, ``hf-hub:OWNER/NAME``
    (all through :func:`load`) or ``module.path:callable``, the user's own code imported from
    the working directory and called with no arguments (the CLIs' ``--model``).

    The model comes back in ``eval()`` mode (BatchNorm must not train while it is attacked).
    Where that switches off ``nn.Dropout`` layers the callable left on, it warns: dropout
    meant as the defense's randomness must be kept on in the model itself.

    Raises:
        KeyError: an unknown name (the message lists the zoo and the other forms).
        ValueError: the callable cannot be imported or does not return an ``nn.Module``.
        CheckpointError: as :func:`load`.
    """
    import importlib
    import sys
    import warnings

    if ":" not in spec or Path(spec).exists() or spec.startswith(HUB_PREFIX):
        try:
            return load(spec, device=device).eval()
        except KeyError as e:
            raise KeyError(f"{e.args[0]}, or module.path:callable for a model of your own code") from None
    mod_name, _, fn_name = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # torchrun does not put the working directory on the path
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot import {spec!r} ({e}); give module.path:callable importable from "
                         f"{os.getcwd()}") from None
    required = _required_parameters(fn)
    if required is None:
        raise ValueError(f"{spec} is a {type(fn).__name__}, not a callable: name a function or class that builds "
                         "the model")
    if required:
        raise ValueError(f"{spec} needs argument(s) {', '.join(required)}, but ratzoo calls it with none: give them "
                         f"defaults, or name a function without arguments (def make(): return {fn_name}(...))")
    model = fn()
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    dropout_on = sum(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.training for m in model.modules())
    if dropout_on:
        warnings.warn(f"{spec} returned a model in training mode; it is evaluated in eval() mode, which switches off "
                      f"its {dropout_on} nn.Dropout layer(s). If dropout is your defense's randomness, keep it on in "
                      "the model (F.dropout(x, p, training=True) in forward): ratzoo then finds and attacks it.",
                      UserWarning, stacklevel=2)
    return model.to(device).eval()


def _required_parameters(fn: Any) -> list[str] | None:
    """The parameters ``fn`` cannot be called without (``None``: not callable). Checked before the
    call, so that a ``TypeError`` raised inside the user's code is never mistaken for this one."""
    import inspect

    if not callable(fn):
        return None
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: let the call say
        return []
    return [p.name for p in params if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def card_results(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """The measured results recorded in a checkpoint's ``config.json`` (empty if none)."""
    folder, _ = resolve(name_or_path)
    return json.loads((folder / CONFIG).read_text()).get("results", {})


def list_models() -> list[dict[str, Any]]:
    """The zoo: one dict per entry with its name, label, method, description, availability
    and headline numbers (from the checkpoint's measured results, where available).

    A bundled entry also has ``metrics`` (the card's measured metrics, each with its
    ``type``: ``"accuracy"``, ``"robust_accuracy"``, ``"certified_accuracy"`` or
    ``"median_l2_norm"``, an L2 distance, not a fraction) and ``noise`` (kind, std, layer;
    for a learned std also ``learned_sigma_mean`` / ``learned_sigma_min``, where training
    ended, as ``noise_sigma`` is only its initial value). A defense entry has ``base`` (the
    zoo model it wraps) and ``defense`` (its name, parameters and a ``summary`` in words) and
    is available where its base is."""
    out = []
    for entry in _REGISTRY.values():
        row: dict[str, Any] = {
            "name": entry.name,
            "label": entry.label,
            "reference": entry.reference,
            "method": entry.method,
            "description": entry.description,
            "bundled": _bundled_folder(entry) is not None,
            "hub_repo": entry.hub_repo,
            "results": {},
        }
        if entry.defense is not None:  # a defense on another entry: available where its base is
            base = _REGISTRY[entry.base]
            row.update(bundled=_bundled_folder(base) is not None, hub_repo=base.hub_repo, base=entry.base,
                       defense={**entry.defense, "summary": DEFENSES[entry.defense["name"]].summary})
        folder = _bundled_folder(entry)
        if folder is not None:
            try:
                cfg = json.loads((folder / CONFIG).read_text())
                row["results"] = {m["name"]: m["value"] for m in cfg.get("results", {}).get("metrics", [])}
                row["noise"] = {k: cfg["model"][k] for k in ("noise_kind", "noise_sigma", "noise_layer")}
                row["metrics"] = list(cfg.get("results", {}).get("metrics", []))
                log = (cfg.get("training") or {}).get("final_epoch_log") or {}
                if cfg["model"]["noise_kind"] == "learned" and "sigma_mean" in log:
                    # what training ended at; noise_sigma is only the initial value
                    row["noise"]["learned_sigma_mean"] = float(log["sigma_mean"])
                    row["noise"]["learned_sigma_min"] = float(log.get("sigma_min", log["sigma_mean"]))
            except (OSError, ValueError, KeyError):
                row["error"] = f"unreadable {CONFIG}"
        out.append(row)
    return out
