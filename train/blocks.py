"""The generated blocks of README.md and ``docs/*.md``: a body between two markers, rewritten
by ``python -m train.report`` and ``python -m train.leaderboard``, never by hand."""

from __future__ import annotations

from pathlib import Path


def replace_block(text: str, start_mark: str, end_mark: str, body: str, path: Path) -> str:
    """``text`` with everything between ``start_mark`` and ``end_mark`` replaced by ``body``
    (on lines of its own; the markers stay).

    Raises:
        SystemExit: a marker is missing from ``text`` (the message names ``path`` and the markers).
    """
    if start_mark not in text or end_mark not in text:
        raise SystemExit(f"{path}: markers {start_mark} ... {end_mark} missing")
    start, end = text.index(start_mark) + len(start_mark), text.index(end_mark)
    return text[:start] + "\n" + body + "\n" + text[end:]
