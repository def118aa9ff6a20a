"""Record the sha256 of each bundled checkpoint in the zoo registry (ratzoo/zoo.py).

    python -m train.register [names...]

Run after a bundled checkpoint is (re)trained and before committing it: ``ratzoo.load``
verifies the weights against these hashes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ratzoo.checkpoint import sha256_file

REPO_ROOT = Path(__file__).resolve().parent.parent
ZOO = REPO_ROOT / "ratzoo" / "zoo.py"


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or ["standard", "at", "rn", "rat", "lerat"]
    text = ZOO.read_text()
    for name in names:
        weights = REPO_ROOT / "checkpoints" / name / "model.safetensors"
        if not weights.is_file():
            continue
        digest = sha256_file(weights)
        pattern = re.compile(r'(register\(ZooEntry\("' + re.escape(name) + r'",.*?sha256=)(None|"[0-9a-f]{64}")(\)\))')
        text, count = pattern.subn(lambda m: f'{m.group(1)}"{digest}"{m.group(3)}', text)
        if count != 1:
            print(f"error: no single registry entry for {name!r} in {ZOO}", file=sys.stderr)
            return 1
        print(f"{name}: {digest}")
    ZOO.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
