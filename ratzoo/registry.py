"""The zoo's registry: ``ratzoo/zoo.json``, the one list of zoo models, read once.

A leaf (it imports nothing from ratzoo), so that the modules below :mod:`ratzoo.zoo` can ask it:
:mod:`ratzoo.checkpoint` whether a name is a zoo name (for the model card's load line),
:mod:`ratzoo.hub` which revision and sha256 a registry entry gives a Hub repo. Everything else
reaches the registry through :mod:`ratzoo.zoo`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

REGISTRY_FILE = Path(__file__).resolve().with_name("zoo.json")


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """Metadata of one zoo model (one object of ``zoo.json``'s ``models`` list).

    Attributes:
        name: the short name passed to :func:`ratzoo.load` (also its ``hubconf.py`` entry point and
            its ``python -m train --preset``).
        method: training method ("standard", "at", "rn", "rat", "lerat").
        description: one line for humans.
        label: how reports, the README and the demo name it ("RAT", "R.N.").
        reference: who introduced the method ("Madry et al."), when it is not the paper's own.
        bundled: folder name under ``checkpoints/`` when it ships with the repository.
        hub_repo: Hugging Face Hub repo id holding the same checkpoint, if any.
        hub_revision: the Hub revision (commit or tag) to download (None: ``main``).
        sha256: sha256 of ``model.safetensors``, verified on load (None: not yet trained).
        base: for a defense that wraps another zoo model at inference (no weights of its own),
            that model's name.
        defense: that defense: ``{"name": <a ratzoo.defenses name>, **its parameters}``.
    """

    name: str
    method: str
    description: str
    label: str = ""
    reference: str | None = None
    bundled: str | None = None
    hub_repo: str | None = None
    hub_revision: str | None = None
    sha256: str | None = None
    base: str | None = None
    defense: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)
        if (self.base is None) != (self.defense is None):
            raise ValueError(f"zoo entry {self.name!r}: a wrapper needs both base and defense")

    @property
    def trained(self) -> bool:
        """Whether the entry has weights of its own (a wrapper borrows its base's)."""
        return self.defense is None


def read_registry(path: Path = REGISTRY_FILE) -> dict[str, ZooEntry]:
    """The registry file's entries, in order; a malformed file says what is wrong."""
    try:
        models = json.loads(path.read_text())["models"]
        out = {m["name"]: ZooEntry(**m) for m in models}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RuntimeError(f"{path}: not a valid zoo registry ({type(e).__name__}: {e}); "
                           f"each model needs the fields of ratzoo.zoo.ZooEntry") from e
    if len(out) != len(models):
        raise RuntimeError(f"{path}: a model name appears twice")
    for e in out.values():
        if e.base is not None and (e.base not in out or not out[e.base].trained):
            raise RuntimeError(f"{path}: {e.name!r} wraps {e.base!r}, which is not a trained zoo entry")
    return out


REGISTRY: dict[str, ZooEntry] = read_registry()  # name -> entry, in the zoo's order


def hub_entry(repo_id: str, revision: str | None) -> ZooEntry | None:
    """The registry entry that names this Hub repo (and revision), whose revision and sha256 then apply."""
    for e in REGISTRY.values():
        if e.hub_repo == repo_id and (revision is None or revision == e.hub_revision):
            return e
    return None
