"""Atomic file writes: a kill mid-write never leaves half a file (checkpoints, records, parts).

A leaf module (standard library only), so that :mod:`ratzoo.checkpoint`, :mod:`ratzoo.record`
and the command lines share one writer without importing each other.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def umask_mode() -> int:
    """The mode ``open()`` gives a new file: mkstemp's 0600 would make a shared or
    bundled checkpoint unreadable to other users."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, umask_mode())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, text.encode())


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = None, allow_nan: bool = False) -> None:
    """Write ``obj`` as JSON (one trailing newline) to ``path`` atomically, creating its folder.

    ``allow_nan=False`` refuses ``NaN`` and ``inf`` (not JSON); callers whose floats may be
    non-finite pass them through :func:`ratzoo.record._json_safe` first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=allow_nan) + "\n")
