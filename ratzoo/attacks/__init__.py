"""EOT-aware, seeded, untargeted white-box attacks (one attack per file).

=============  =======  ============================================  ==================
name           norm     class                                         paper
=============  =======  ============================================  ==================
``fgsm``       Linf     :class:`~ratzoo.attacks.fgsm.FGSM`            Goodfellow et al. 2015
``fgm``        L2       :class:`~ratzoo.attacks.fgm.FGM`              Goodfellow et al. 2015
``pgd-linf``   Linf     :class:`~ratzoo.attacks.pgd.PGD`              Madry et al. 2018
``pgd-l2``     L2       :class:`~ratzoo.attacks.pgd_l2.PGDL2`         Madry et al. 2018
``cw-l2``      L2       :class:`~ratzoo.attacks.cw.CW` (min. norm)    Carlini & Wagner 2017
``apgd-ce``    Linf/L2  :class:`~ratzoo.attacks.apgd.APGD`            Croce & Hein 2020
``apgd-dlr``   Linf/L2  :class:`~ratzoo.attacks.apgd.APGDDLR`         Croce & Hein 2020
``apgd-t``     Linf/L2  :class:`~ratzoo.attacks.apgd_t.APGDT`         Croce & Hein 2020 (targeted)
=============  =======  ============================================  ==================

All attacks take images in [0, 1] (NCHW float) and integer labels, and return
adversarial images of the same shape, dtype and device (``attack(images, labels)``), or
an :class:`AttackResult` with norms (``attack.run(images, labels)``). The EOT objective
(mean softmax over batched noise draws) is explained in :mod:`ratzoo.attacks.base`.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from .base import COMMON_ARGUMENTS, Attack, AttackResult, parse_budget
from .apgd import APGD, APGDDLR
from .apgd_t import APGDT
from .cw import CW
from .fgm import FGM
from .fgsm import FGSM
from .pgd import PGD
from .pgd_l2 import PGDL2

ATTACKS: dict[str, type[Attack]] = {
    "fgsm": FGSM,
    "fgm": FGM,
    "pgd-linf": PGD,
    "pgd-l2": PGDL2,
    "cw-l2": CW,
    "apgd-ce": APGD,
    "apgd-dlr": APGDDLR,
    "apgd-t": APGDT,
}
"""Registry: attack name -> class."""

ALIASES = {"pgd": "pgd-linf", "cw": "cw-l2", "apgd": "apgd-ce", "fgsm-linf": "fgsm", "fgm-l2": "fgm"}


def canonical_name(name: str) -> str:
    """The registry key of an attack name or alias (case-insensitive); unknown names pass through."""
    key = str(name).lower()
    return ALIASES.get(key, key)


def attack_arguments(name: str) -> set[str]:
    """The keyword arguments the attack registered as ``name`` takes (besides ``model``):
    its own and the ones every attack shares (:data:`~ratzoo.attacks.base.COMMON_ARGUMENTS`)."""
    key = canonical_name(name)
    if key not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known attacks: {', '.join(ATTACKS)}")
    names: set[str] = set()
    for cls in ATTACKS[key].__mro__:  # a class passing **kwargs on takes its parent's arguments too
        if "__init__" not in vars(cls):
            continue
        params = inspect.signature(cls.__init__).parameters
        names |= {n for n, prm in params.items() if prm.kind is not inspect.Parameter.VAR_KEYWORD}
        if not any(prm.kind is inspect.Parameter.VAR_KEYWORD for prm in params.values()):
            break
    return (names | set(COMMON_ARGUMENTS)) - {"self", "model"}


def make_attack(name: str, model: nn.Module, **kwargs: Any) -> Attack:
    """Build the attack registered as ``name`` for ``model``.

    Keyword arguments are the attack class's (``eps``, ``steps``, ``eot_samples``,
    ``seed``, ``progress``, ...; see each class). Arguments passed as ``None`` are
    dropped (the class default applies), so a caller may pass one set of keywords to
    every attack; an argument that the attack does not take raises ``TypeError``.

    >>> attack = make_attack("pgd-linf", model, eps="8/255", steps=20, eot_samples=10, seed=0)
    >>> adv = attack(images, labels)

    Raises:
        ValueError: unknown attack name (the message lists the known ones) or bad values.
        TypeError: an argument the attack does not take.
    """
    accepted = attack_arguments(name)
    key = canonical_name(name)
    cls = ATTACKS[key]
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise TypeError(
            f"attack {key!r} does not take {', '.join(unknown)}; it takes: {', '.join(sorted(accepted))}"
        )
    return cls(model, **kwargs)


__all__ = [
    "ALIASES", "ATTACKS", "APGD", "APGDDLR", "APGDT", "Attack", "AttackResult", "CW", "FGM", "FGSM", "PGD", "PGDL2",
    "attack_arguments", "canonical_name", "make_attack", "parse_budget",
]
