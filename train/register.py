"""Pin the sha256 of bundled checkpoints in the zoo registry's data (``ratzoo/zoo.json``).

    python -m train.register [names...]

Run after a bundled checkpoint is (re)trained and before committing it: ``ratzoo.load``
verifies the weights against these hashes. It rewrites only the ``sha256`` fields of the
JSON registry (read, set, write back); no source file is edited.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ratzoo import zoo
from ratzoo.checkpoint import WEIGHTS, sha256_file


def pin(names: list[str], registry: Path = zoo.REGISTRY_FILE, checkpoints: Path = zoo.REPO_CHECKPOINTS) -> dict[str, str]:
    """Set each named entry's ``sha256`` to its bundled weights' hash; returns name -> hash.

    Raises:
        KeyError: a name that is not in the registry or has no bundled folder.
        FileNotFoundError: a bundled folder without weights.
    """
    data = json.loads(registry.read_text())
    by_name = {m["name"]: m for m in data["models"]}
    pinned = {}
    for name in names:
        entry = by_name.get(name)
        if entry is None or not entry.get("bundled"):
            raise KeyError(f"{name!r} is not a bundled model of {registry}; bundled: "
                           f"{[m['name'] for m in data['models'] if m.get('bundled')]}")
        weights = checkpoints / entry["bundled"] / WEIGHTS
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: missing; train it first (python -m train --preset {name})")
        entry["sha256"] = pinned[name] = sha256_file(weights)
    tmp = registry.with_name(f".{registry.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(registry)
    return pinned


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = argv or [e.name for e in zoo.entries().values()
                     if e.bundled and (zoo.REPO_CHECKPOINTS / e.bundled / WEIGHTS).is_file()]
    try:
        for name, digest in pin(names).items():
            print(f"{name}: {digest}")
    except (KeyError, FileNotFoundError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
