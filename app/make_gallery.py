"""Build the demo's offline gallery: 4 CIFAR-10 test images per class, one PNG sprite.

The app must run without a network and without the CIFAR-10 files, so it ships a small
gallery: ``app/assets/gallery.png`` (a lossless PNG sprite, one row per class, ``per_class``
32x32 tiles per row) and ``app/assets/gallery.json`` (each tile's test-set index, label and
position, plus where the pixels came from). The images are the first ``per_class`` test
images of each class, in canonical test-set order.

Run from the repository root::

    python app/make_gallery.py --root ../shared/data/cifar10

``--root`` is a folder in the Hub layout of ``uoft-cs/cifar10`` (default: ``$RATZOO_CIFAR10``,
else the Hub). Say which copy was used with ``--source`` (it is written into the JSON and
shown in the app): this project's offline copy is a JPEG re-encoding of CIFAR-10.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ASSETS = Path(__file__).resolve().parent / "assets"
TILE = 32


def build(images: np.ndarray, labels: np.ndarray, per_class: int) -> tuple[np.ndarray, list[dict]]:
    """The sprite ``(10 * 32, per_class * 32, 3)`` uint8 and one record per tile."""
    import ratzoo

    classes = ratzoo.CIFAR10_CLASSES
    sprite = np.zeros((len(classes) * TILE, per_class * TILE, 3), dtype=np.uint8)
    records = []
    for c, name in enumerate(classes):
        idx = np.flatnonzero(labels == c)[:per_class]
        if len(idx) < per_class:
            raise SystemExit(f"only {len(idx)} test images of class {name!r}, need {per_class}")
        for j, i in enumerate(idx):
            sprite[c * TILE:(c + 1) * TILE, j * TILE:(j + 1) * TILE] = images[i]
            records.append({"index": int(i), "label": c, "class": name, "row": c, "col": j})
    return sprite, records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=None, help="CIFAR-10 folder in the Hub layout (default: $RATZOO_CIFAR10 or the Hub)")
    ap.add_argument("--per-class", type=int, default=4, help="images per class (default 4)")
    ap.add_argument("--source", default="CIFAR-10 (JPEG copy) test split",
                    help="where the pixels come from, shown in the app")
    ap.add_argument("--out", type=Path, default=ASSETS, help="output folder (default app/assets)")
    args = ap.parse_args(argv)

    import ratzoo

    try:
        images, labels = ratzoo.load_cifar10("test", root=args.root)
    except ratzoo.DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sprite, records = build(np.asarray(images), np.asarray(labels), args.per_class)
    args.out.mkdir(parents=True, exist_ok=True)
    # optimize=True only changes the zlib effort: PNG is lossless whatever the setting.
    Image.fromarray(sprite, "RGB").save(args.out / "gallery.png", optimize=True)
    meta = {"source": args.source, "split": "test", "tile": TILE, "per_class": args.per_class,
            "classes": list(ratzoo.CIFAR10_CLASSES), "images": records}
    # One tile per line: small, diffable, still plain JSON.
    head = json.dumps({k: v for k, v in meta.items() if k != "images"})[:-1]
    rows = ",\n  ".join(json.dumps(r) for r in records)
    (args.out / "gallery.json").write_text(f'{head}, "images": [\n  {rows}\n]}}\n')
    print(f"wrote {args.out / 'gallery.png'} ({sprite.shape[1]}x{sprite.shape[0]}) and gallery.json ({len(records)} images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
