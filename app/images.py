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
    """Turn an uploaded file of any size and mode into a 32x32 RGB image.

    Grayscale (and 16-bit/float) images are copied into the three channels, transparent
    ones are composited onto white, EXIF rotation is applied, animations use their
    first frame. ``fit`` decides the aspect ratio: ``"center crop"`` keeps the central
    square, ``"stretch"`` squashes the whole image, ``"pad"`` adds gray borders. The
    result is downsampled with a Lanczos filter (antialiased). The returned ``note`` says
    exactly what was done.

    Raises:
        InputError: empty, too large, not a decodable image, or an unknown ``fit``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if fit not in FIT_MODES:
        raise InputError(f"unknown resize mode {fit!r}; choose one of {', '.join(FIT_MODES)}")
    if not data:
        raise InputError(f"{name} is empty (0 bytes): upload a PNG, JPEG, GIF, BMP, TIFF or WebP image")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"{name} is {len(data) / 2**20:.1f} MB; the demo accepts images up to "
                         f"{MAX_UPLOAD_MB} MB (it shrinks everything to 32x32 anyway)")
    not_image = (f"{name} is not an image the demo can read: upload a PNG, JPEG, GIF, BMP, TIFF "
                 "or WebP file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > MAX_UPLOAD_PIXELS or w < 1 or h < 1:
                raise InputError(f"{name} is {w}x{h} pixels; the demo accepts images of at most "
                                 f"{MAX_UPLOAD_PIXELS // 10**6} megapixels")
            frames = getattr(im, "n_frames", 1)
            im.load()
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{name} decodes to too many pixels ({e}); upload a smaller image") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct_error()) as e:
        raise InputError(not_image) from e

    steps = [f"{name}: {w}x{h} {im.mode}"]
    if frames > 1:
        steps.append(f"first of {frames} frames")
    try:
        rotated = ImageOps.exif_transpose(im)
        if rotated.size != im.size or rotated is not im and rotated.tobytes() != im.tobytes():
            steps.append("rotated as its EXIF orientation says")
        im = rotated
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        pass
    im, mode_note = _to_rgb(im)
    if mode_note:
        steps.append(mode_note)
    w, h = im.size
    if w != h:
        if fit == "center crop":
            s = min(w, h)
            left, top = (w - s) // 2, (h - s) // 2
            im = im.crop((left, top, left + s, top + s))
            steps.append(f"center-cropped to {s}x{s}")
        elif fit == "pad":
            s = max(w, h)
            canvas = Image.new("RGB", (s, s), (128, 128, 128))
            canvas.paste(im, ((s - w) // 2, (s - h) // 2))
            im = canvas
            steps.append(f"padded with gray to {s}x{s}")
        else:
            steps.append("stretched to a square (aspect ratio not kept)")
    if im.size != (32, 32):
        direction = "downsampled" if max(im.size) > 32 else "upsampled"
        im = im.resize((32, 32), Image.Resampling.LANCZOS)
        steps.append(f"{direction} to 32x32 (Lanczos)")
    else:
        steps.append("already 32x32")
    pixels = np.asarray(im, dtype=np.uint8).copy()
    return PreparedImage(pixels, None, f"your image {name}", "; ".join(steps))


def struct_error() -> type[Exception]:
    import struct

    return struct.error


def _to_rgb(im: Any) -> tuple[Any, str]:
    """Any Pillow mode -> RGB, and a note on what that took."""
    from PIL import Image

    mode = im.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = a.max() if a.size else 0.0
        scale = 255.0 / (65535.0 if top > 255 else 255.0)
        g = np.clip(np.nan_to_num(a) * scale, 0, 255).round().astype(np.uint8)
        return Image.fromarray(np.stack([g] * 3, -1), "RGB"), f"{mode} grayscale scaled to 8 bits and copied to R, G, B"
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        alpha = np.asarray(rgba)[..., 3]
        if alpha.min() < 255:
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            out = Image.alpha_composite(white, rgba).convert("RGB")
            gray = " (grayscale copied to R, G, B)" if mode in ("LA", "La") else ""
            return out, f"transparent areas composited onto white{gray}"
        return rgba.convert("RGB"), "opaque alpha channel dropped"
    if mode in ("1", "L"):
        return im.convert("RGB"), "grayscale copied to R, G, B"
    if mode == "RGB":
        return im, ""
    return im.convert("RGB"), f"converted from {mode} to RGB"
