"""Images for the demo: the bundled gallery, CIFAR-10 test images and uploads, prepared as 32x32 RGB."""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

ASSETS = Path(__file__).resolve().parent / "assets"
MAX_UPLOAD_MB = 10  # what the uploader shows ("Limit 10MB per file") and enforces, in MiB
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 2**20
MAX_UPLOAD_PIXELS = 50_000_000  # a small file can decode to gigabytes
FIT_MODES = ("center crop", "stretch", "pad")
ENLARGE = 8  # 32x32 -> 256x256, nearest neighbour


class InputError(ValueError):
    """Something the visitor chose or uploaded cannot be used; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class PreparedImage:
    """A 32x32 RGB image: ``pixels`` uint8 ``(32, 32, 3)``, ``label`` (``None`` for uploads)."""

    pixels: np.ndarray
    label: int | None
    source: str
    note: str = ""

    def tensor(self) -> torch.Tensor:
        return torch.from_numpy(np.array(self.pixels, dtype=np.uint8)).permute(2, 0, 1)[None].float().div(255)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float ``(1, 3, H, W)`` in [0, 1] -> uint8 ``(H, W, 3)``."""
    return (x.detach()[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def enlarge(pixels: np.ndarray, factor: int = ENLARGE) -> np.ndarray:
    """Nearest-neighbour upscaling, so the browser shows the real pixels."""
    return np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)


def perturbation_image(x: torch.Tensor, adv: torch.Tensor) -> tuple[np.ndarray, float]:
    """The change as an image (mid-gray = none), amplified until the largest change is black or
    white; returns the image and the amplification."""
    d = (adv.detach().double() - x.detach().double())[0]
    m = float(d.abs().max()) if d.numel() else 0.0
    amp = 0.5 / m if m > 0 else 1.0
    return ((0.5 + amp * d).clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), amp


def load_gallery(assets: Path = ASSETS) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The bundled gallery (CIFAR-10 test images): ``(N, 32, 32, 3)`` uint8 and one record each."""
    from PIL import Image

    try:
        meta = json.loads((assets / "gallery.json").read_text())
        sprite = np.asarray(Image.open(assets / "gallery.png").convert("RGB"))
    except (OSError, ValueError) as e:
        raise InputError(f"the bundled image gallery is missing or unreadable ({type(e).__name__}); "
                         "regenerate it with `python app/make_gallery.py`") from e
    t = int(meta.get("tile", 32))
    tiles = [sprite[r["row"] * t:(r["row"] + 1) * t, r["col"] * t:(r["col"] + 1) * t] for r in meta["images"]]
    return np.stack(tiles), list(meta["images"])


def gallery_image(i: int) -> PreparedImage:
    images, records = load_gallery()
    if not 0 <= i < len(records):
        raise InputError(f"gallery image {i} does not exist: choose 0 to {len(records) - 1}")
    return PreparedImage(images[i].copy(), int(records[i]["label"]), f"CIFAR-10 test image #{records[i]['index']}")


def cifar_image(index: int, images: np.ndarray, labels: np.ndarray) -> PreparedImage:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(labels):
        raise InputError(f"the test image number must be between 0 and {len(labels) - 1}, got {index!r}")
    return PreparedImage(np.array(images[index], dtype=np.uint8), int(labels[index]), f"CIFAR-10 test image #{index}")


def preprocess_upload(data: bytes, name: str = "upload", fit: str = "center crop") -> PreparedImage:
    """Any image file -> 32x32 RGB (EXIF rotation, first frame, transparency on white, grayscale
    copied to R, G, B, ``fit`` for the aspect ratio, Lanczos resize); ``note`` says what was done.

    Raises:
        InputError: empty, larger than :data:`MAX_UPLOAD_MB` MiB, not an image, unknown ``fit``.
    """
    from PIL import Image, ImageOps

    if fit not in FIT_MODES:
        raise InputError(f"unknown resize mode {fit!r}; choose one of {', '.join(FIT_MODES)}")
    if not data:
        raise InputError(f"{name} is empty: upload a PNG, JPEG, GIF, BMP, TIFF or WebP image")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"{name} is {len(data) / 2**20:.1f} MB; the demo takes images up to {MAX_UPLOAD_MB} MB "
                         "(it shrinks everything to 32x32 anyway)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > MAX_UPLOAD_PIXELS:
                raise InputError(f"{name} is {w}x{h} pixels; the demo takes at most {MAX_UPLOAD_PIXELS // 10**6} megapixels")
            im.load()
    except InputError:
        raise
    except Exception as e:  # Pillow raises many kinds for files that are not images
        raise InputError(f"{name} is not an image the demo can read: upload a PNG, JPEG, GIF, BMP, TIFF or "
                         f"WebP file ({type(e).__name__})") from e
    steps = [f"{name}: {w}x{h} {im.mode}"]
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        pass
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.nan_to_num(np.asarray(im, dtype=np.float64))
        a = np.clip(a * (255.0 / (65535.0 if a.max(initial=0) > 255 else 255.0)), 0, 255).astype(np.uint8)
        im, _ = Image.fromarray(np.stack([a] * 3, -1), "RGB"), steps.append("high-depth grayscale scaled to 8 bits")
    elif "A" in im.mode or im.mode == "P" and "transparency" in im.info:
        im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im.convert("RGBA")).convert("RGB")
        steps.append("transparent areas put on white")
    elif im.mode != "RGB":
        im = im.convert("RGB")
        steps.append(f"converted from {steps[0].rsplit(' ', 1)[-1]} to RGB")
    w, h = im.size
    if w != h and fit == "center crop":
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        steps.append(f"center-cropped to {s}x{s}")
    elif w != h and fit == "pad":
        canvas = Image.new("RGB", (max(w, h),) * 2, (128, 128, 128))
        canvas.paste(im, ((max(w, h) - w) // 2, (max(w, h) - h) // 2))
        im = canvas
        steps.append("padded with gray to a square")
    elif w != h:
        steps.append("stretched to a square")
    if im.size != (32, 32):
        im = im.resize((32, 32), Image.Resampling.LANCZOS)
        steps.append("resized to 32x32")
    return PreparedImage(np.asarray(im, dtype=np.uint8).copy(), None, f"your upload {name}", "; ".join(steps))


