"""Progress of the CLIs' long runs, drawn by tqdm (rates, ETA, notebooks, ``disable=``)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class StepBar:
    """A tqdm bar fed by the attacks' ``progress(done, total)`` callback.

    tqdm counts increments; the attacks report a running total (and a total that can grow
    when an attack of the ensemble starts), hence this adapter.
    """

    def __init__(self, desc: str, *, disable: bool = False, unit: str = "step") -> None:
        self.bar = tqdm(total=0, desc=desc, unit=unit, disable=disable, file=sys.stderr, dynamic_ncols=True)

    def update(self, done: int, total: int) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()
