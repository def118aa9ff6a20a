"""Randomized defenses of the literature, each an ordinary ``nn.Module`` built from a base
model and taking images in [0, 1], so ratzoo's engine meets them as it meets a user's model:
their randomness is found by behaviour (:mod:`ratzoo.randomness`), never by type.

One defense a file, its docstring citing the paper and stating its randomness and parameters.
The zoo's registry (``ratzoo/zoo.json``) names a wrapper entry's base model and parameters;
:func:`ratzoo.load` builds it through :func:`build_defense`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .resize_pad import RandomResizePad
from .sap import StochasticActivationPruning

DEFENSES: dict[str, type[nn.Module]] = {
    "random-resize-pad": RandomResizePad,
    "sap": StochasticActivationPruning,
}


def build_defense(name: str, base: nn.Module, **params: Any) -> nn.Module:
    """The defense registered as ``name`` around ``base``, with the given parameters.

    Raises:
        KeyError: an unknown defense (the message lists the known ones).
        TypeError: a parameter the defense does not take.
    """
    if name not in DEFENSES:
        raise KeyError(f"unknown defense {name!r}; known: {', '.join(DEFENSES)}")
    model = DEFENSES[name](base, **params)
    base_config = getattr(base, "config", None)
    # what the model is, for records and the benchmark's parts (ratzoo.identity): the base's
    # weights alone would not tell two defenses of one base apart
    model.config = {"defense": name, **params,
                    "base": base_config.to_dict() if hasattr(base_config, "to_dict") else base_config}
    return model


__all__ = ["DEFENSES", "RandomResizePad", "StochasticActivationPruning", "build_defense"]
