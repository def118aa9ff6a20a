"""The model zoo: a readable registry of named checkpoints and :func:`load`.

Weights resolve in one documented order: an explicit folder > the checkpoint bundled
with the repository (``checkpoints/<name>/``) > the Hugging Face Hub (through
huggingface_hub's cache, honouring ``HF_HUB_OFFLINE``). The sha256 of every weights file
that ships with the repository or comes from the Hub is recorded here and verified on load.

``$RATZOO_CHECKPOINTS`` points ratzoo at another zoo folder (your own retrained models, a
mirror): its checkpoints are yours, so they are verified against the sha256 recorded in their
own ``config.json`` (which still catches truncated or swapped files), not against the registry.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CARD, CONFIG, WEIGHTS, CheckpointError, load_checkpoint
from .models import RandomizedClassifier

ENV_CHECKPOINTS = "RATZOO_CHECKPOINTS"


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """Metadata of one zoo model.

    Attributes:
        name: the short name passed to :func:`load`.
        method: training method ("standard", "at", "rn", "rat", "lerat").
        description: one line for humans.
        bundled: folder name under ``checkpoints/`` when it ships with the repository.
        hub_repo: Hugging Face Hub repo id holding the same folder layout, if any.
        hub_revision: the Hub revision (commit or tag) to download.
        sha256: sha256 of ``model.safetensors``, verified on load (None: not yet trained).
    """

    name: str
    method: str
    description: str
    bundled: str | None = None
    hub_repo: str | None = None
    hub_revision: str | None = None
    sha256: str | None = None


_REGISTRY: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    _REGISTRY[entry.name] = entry
    return entry


# The bundled zoo: PreActResNet-18 at width 16, trained on this project's CPU machines
# with `python -m train` (the exact command is in each checkpoint's config.json).
register(ZooEntry("standard", "standard", "PreActResNet-18 (w16), clean training", bundled="standard", sha256="92b9d8d32906a4330b6de8c0a73a1507c60f5d0b61ad9bd613c3ac7fe8c711e8"))
register(ZooEntry("at", "at", "PreActResNet-18 (w16), Linf adversarial training (Madry et al.)", bundled="at", sha256="0ea32a9982e4b9b1a47d41a52980d660b56fd5f28e554dc09398db04922f5fda"))
register(ZooEntry("rn", "rn", "PreActResNet-18 (w16), noise injection, clean training (Pinot et al.)", bundled="rn", sha256="dcfc1afe8a6ed7d45bce0b98c77573ac821321116239bef8209b345addb5e9da"))
register(ZooEntry("rat", "rat", "PreActResNet-18 (w16), Randomized Adversarial Training", bundled="rat", sha256="771d8f63a0d4de5ec8bb14ca1a91b32c11989cb752990a787baad71bd1e87937"))
register(ZooEntry("lerat", "lerat", "PreActResNet-18 (w16), RAT with a learned noise std", bundled="lerat", sha256="9fb24aed32bc63b05159a3bed4d7565facd937e6a5ab513b9754fc7eb577b379"))
# Larger Hub-hosted variants (e.g. a WideResNet-28-10 RAT) register here with hub_repo/hub_revision.

# The paper's Table 2 (Araujo et al., arXiv:1903.10219; WideResNet-28-10, CIFAR-10, EOT with 50
# draws), robust accuracy per method: (Linf = PGD-10 at eps 0.3 on inputs in [-1, 1],
# L2 = C&W with 40 iterations). Reference numbers the README and the demo compare the zoo with.
PAPER_TABLE2: dict[str, tuple[float, float]] = {
    "at": (0.400, 0.056), "rn": (0.356, 0.489), "rat": (0.409, 0.499), "lerat": (0.400, 0.296),
}


# The repository's own bundled zoo, whose files the registry's sha256 pins.
REPO_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def checkpoints_dir() -> Path:
    """Where bundled checkpoints live: ``$RATZOO_CHECKPOINTS`` or the repository's ``checkpoints/``."""
    env = os.environ.get(ENV_CHECKPOINTS)
    return Path(env) if env else REPO_CHECKPOINTS


def pinned_sha256(folder: Path, entry: ZooEntry | None) -> str | None:
    """The registry sha256 that ``folder`` must match: the entry's for the repository's own
    checkpoints and for Hub downloads; None for a path or a ``$RATZOO_CHECKPOINTS`` zoo (those
    are checked against their own ``config.json`` by :func:`load_checkpoint`)."""
    if entry is None or entry.sha256 is None:
        return None
    if os.environ.get(ENV_CHECKPOINTS) and entry.bundled and folder == checkpoints_dir() / entry.bundled:
        return None
    return entry.sha256


def entries() -> dict[str, ZooEntry]:
    return dict(_REGISTRY)


def _bundled_folder(entry: ZooEntry) -> Path | None:
    if entry.bundled is None:
        return None
    folder = checkpoints_dir() / entry.bundled
    return folder if (folder / WEIGHTS).is_file() else None


def _hub_folder(entry: ZooEntry) -> Path:
    from huggingface_hub import hf_hub_download

    paths = [
        hf_hub_download(entry.hub_repo, f, revision=entry.hub_revision, library_name="ratzoo")
        for f in (CONFIG, WEIGHTS, CARD)
    ]
    return Path(paths[0]).parent


def resolve(name_or_path: str | os.PathLike) -> tuple[Path, ZooEntry | None]:
    """The checkpoint folder for a zoo name or path, and its registry entry (if any)."""
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
            f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))} "
            "(or pass the path of a checkpoint folder)"
        )
    entry = _REGISTRY[name]
    folder = _bundled_folder(entry)
    if folder is not None:
        return folder, entry
    if entry.hub_repo:
        try:
            return _hub_folder(entry), entry
        except Exception as e:
            raise CheckpointError(
                f"model {name!r} is not bundled and could not be fetched from the Hub repo "
                f"{entry.hub_repo} ({type(e).__name__}: {e}); check your connection or HF_HUB_OFFLINE"
            ) from e
    raise CheckpointError(
        f"model {name!r} has no trained checkpoint yet: expected {checkpoints_dir() / (entry.bundled or name)}"
        f"/{WEIGHTS} (train it with `python -m train --preset {name}`) and it has no Hub repo"
    )


def load(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> RandomizedClassifier:
    """Load a zoo model by name (``"rat"``) or a checkpoint folder by path.

    The model is in ``eval()`` mode with its noise ON: a randomized model stays
    randomized. Use :func:`ratzoo.predict_proba` for EOT predictions and
    :func:`ratzoo.noise_control` to switch the noise off or seed it.

    Args:
        name_or_path: a name from :func:`list_models` or a checkpoint folder.
        device: where to put the model.

    Raises:
        KeyError: unknown name (the message lists the available ones).
        CheckpointError: missing, corrupt or mismatched checkpoint.

    >>> model = ratzoo.load("rat")
    """
    folder, entry = resolve(name_or_path)
    return load_checkpoint(folder, device=device, expected_sha256=pinned_sha256(folder, entry))


def card_results(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """The measured results recorded in a checkpoint's ``config.json`` (empty if none)."""
    folder, _ = resolve(name_or_path)
    return json.loads((folder / CONFIG).read_text()).get("results", {})


def list_models() -> list[dict[str, Any]]:
    """The zoo: one dict per entry with its name, method, description, availability and
    headline numbers (from the checkpoint's measured results, where available)."""
    out = []
    for entry in _REGISTRY.values():
        row: dict[str, Any] = {
            "name": entry.name,
            "method": entry.method,
            "description": entry.description,
            "bundled": _bundled_folder(entry) is not None,
            "hub_repo": entry.hub_repo,
            "results": {},
        }
        folder = _bundled_folder(entry)
        if folder is not None:
            try:
                cfg = json.loads((folder / CONFIG).read_text())
                row["results"] = {m["name"]: m["value"] for m in cfg.get("results", {}).get("metrics", [])}
                row["noise"] = {k: cfg["model"][k] for k in ("noise_kind", "noise_sigma", "noise_layer")}
            except (OSError, ValueError, KeyError):
                row["error"] = f"unreadable {CONFIG}"
        out.append(row)
    return out
