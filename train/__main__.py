"""``python -m train``: train a model, evaluate it, write its checkpoint, push it."""

from __future__ import annotations

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
