"""``ratzoo.parts``: a long measurement kept as resumable parts that several processes share.

The ``n`` images are split into parts of ``part_size`` (:func:`part_ranges`); a folder holds
the finished parts of one measurement, and the caller names it by what is measured
(:func:`folder_key`), so another measurement never reuses them. Each finished part is one JSON file
written atomically, so a kill loses at most the parts being measured; a part being measured is
claimed by an ``flock`` on a lock file of its own, so the processes sharing a folder skip it,
and a killed process leaves no stale claim (the kernel drops its locks).

Usage::

    store = Parts(folder, n=1000, part_size=100)
    for j, start, stop in store.unclaimed():  # not another process's, nor finished: held while measured
        store.save(j, measure(start, stop))
    done = store.finished()  # index -> part, every part on disk
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ._io import write_json

BY_INDEX = "part_{index:05d}.json"
"""A part's file name from its index (``python -m ratzoo benchmark``'s parts)."""
BY_IMAGES = "{start:06d}-{stop:06d}.json"
"""A part's file name from its images (``python -m train.experiments --shard``'s parts)."""


def part_ranges(n: int, part_size: int) -> list[tuple[int, int, int]]:
    """``(index, start, stop)`` of each part of ``n`` images: images ``[start, stop)``, fixed
    by ``n`` and ``part_size`` alone, never by the processes that measure them."""
    return [(j, a, min(a + part_size, n)) for j, a in enumerate(range(0, n, part_size))]


def folder_key(what: Any, length: int = 16) -> str:
    """A folder name for the measurement ``what`` (JSON; keys sorted): the first ``length``
    hex digits of its sha256, so anything that changes the measurement changes the folder."""
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:length]


class Parts:
    """The parts of one measurement of ``n`` images in parts of ``part_size``, in ``folder``.

    Args:
        folder: the measurement's folder (created on the first :meth:`save` or :meth:`claim`).
        n: images measured; part_size: images per part.
        name: a part's file name, formatted with its ``index``, ``start`` and ``stop``
            (:data:`BY_INDEX` or :data:`BY_IMAGES`); its lock file has the suffix ``.lock``.
        indent: the part files' JSON indent (None: one line).
    """

    def __init__(self, folder: str | Path, n: int, part_size: int, name: str = BY_INDEX,
                 indent: int | None = None) -> None:
        self.folder = Path(folder)
        self.ranges = part_ranges(n, part_size)
        self.name = name
        self.indent = indent

    def path(self, j: int) -> Path:
        """Part ``j``'s file."""
        _, start, stop = self.ranges[j]
        return self.folder / self.name.format(index=j, start=start, stop=stop)

    def load(self, j: int) -> dict[str, Any] | None:
        """Part ``j`` if it is on disk and covers its images (a last part of another ``n``,
        whose ``"n"`` differs, is not), else None."""
        path = self.path(j)
        if not path.is_file():
            return None
        part = json.loads(path.read_text())
        _, start, stop = self.ranges[j]
        return part if part.get("n") == stop - start else None

    def finished(self) -> dict[int, dict[str, Any]]:
        """Every part of these ranges that is finished on disk, index -> part."""
        return {j: part for j, _, _ in self.ranges if (part := self.load(j)) is not None}

    def save(self, j: int, part: dict[str, Any]) -> None:
        """Write part ``j`` atomically (``NaN`` allowed: a broken model's outcomes may hold it)."""
        write_json(self.path(j), part, indent=self.indent, allow_nan=True)

    def unclaimed(self, indices: Iterable[int] | None = None) -> Iterator[tuple[int, int, int]]:
        """Each part (of ``indices``, default all) that is neither finished nor held by another
        process, as ``(j, start, stop)``, its lock held until the caller asks for the next one."""
        for j in range(len(self.ranges)) if indices is None else indices:
            with self.claim(j) as mine:
                if mine and self.load(j) is None:  # finished meanwhile by another process: skip it
                    yield self.ranges[j]

    @contextlib.contextmanager
    def claim(self, j: int) -> Iterator[bool]:
        """Hold the lock of part ``j`` while measuring it: yields False when another live
        process holds it (then skip the part), True otherwise; the caller still checks
        :meth:`load`, since the part may have been finished since it last looked. A finished
        part's lock file is removed on the way out: nobody claims that part any more."""
        lock = self.path(j).with_suffix(".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # not POSIX: no sharing between processes, one process still works
            yield True
            return
        with open(lock, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
            try:
                yield True
            finally:
                if self.path(j).is_file():
                    lock.unlink(missing_ok=True)
                fcntl.flock(f, fcntl.LOCK_UN)
