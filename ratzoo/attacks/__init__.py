"""EOT-aware, seeded, untargeted white-box attacks (one attack per file).

=============  =======  ============================================  ==================
name           norm     class                                         paper
=============  =======  ============================================  ==================
``pgd-linf``   Linf     :class:`~ratzoo.attacks.pgd.PGD`              Madry et al. 2018
``pgd-l2``     L2       :class:`~ratzoo.attacks.pgd_l2.PGDL2`         Madry et al. 2018
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

from .base import Attack, AttackResult, parse_budget
from .pgd import PGD
from .pgd_l2 import PGDL2

ATTACKS: dict[str, type[Attack]] = {
    "pgd-linf": PGD,
    "pgd-l2": PGDL2,
}
"""Registry: attack name -> class."""

ALIASES = {"pgd": "pgd-linf"}


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
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known attacks: {', '.join(ATTACKS)}")
    cls = ATTACKS[key]
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "model"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise TypeError(
            f"attack {key!r} does not take {', '.join(unknown)}; it takes: {', '.join(sorted(accepted))}"
        )
    return cls(model, **kwargs)


__all__ = ["ALIASES", "ATTACKS", "Attack", "AttackResult", "PGD", "PGDL2", "make_attack", "parse_budget"]
