"""The demo's logic as pure functions: no Streamlit in here, so every piece is testable.

The app (``app/streamlit_app.py``) only lays these out. Everything goes through ratzoo's
public API: :func:`ratzoo.load`, :func:`ratzoo.list_models`, :func:`ratzoo.predict_proba`,
:func:`ratzoo.load_cifar10`, ``ratzoo.attacks.make_attack`` and (when present)
``ratzoo.certify``.

Units: images are float ``(1, 3, 32, 32)`` tensors in [0, 1] (or ``(32, 32, 3)`` uint8 arrays
for display); an Linf budget is shown in /255 and stored in [0, 1] pixel units; an L2
budget is in [0, 1] pixel units over the whole 3x32x32 image.

The success rule (README, ``ratzoo.evaluate``): the attack succeeds when the EOT
prediction on the adversarial image, the argmax of the mean softmax over
:data:`EVAL_SAMPLES` = 100 *fresh* noise draws (seeded independently of the attack's own
draws), is not the true label.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ratzoo
from ratzoo.evaluate import STREAM_ADV, STREAM_ATTACK, STREAM_CLEAN, derive_seed
from ratzoo.zoo import PAPER_TABLE2 as PAPER_TABLE2_BY_METHOD

ASSETS = Path(__file__).resolve().parent / "assets"
CLASSES: tuple[str, ...] = tuple(ratzoo.CIFAR10_CLASSES)
IMAGE_SIZE = 32
NUM_VALUES = 3 * IMAGE_SIZE * IMAGE_SIZE  # entries of one image (what L0 counts)

EVAL_SAMPLES = 100  # fresh noise draws of the success rule
L0_TOL = 1e-6  # an entry counts as changed when |delta| > this (float noise is ~1e-8)
BUDGET_TOL = 1e-6  # slack when checking a norm against its budget (float32 rounding)

MAX_UPLOAD_BYTES = 10 * 2**20  # 10 MiB: a 32x32 demo has no use for more
MAX_UPLOAD_PIXELS = 50_000_000  # decoded size limit (a small file can decode to GBs)
FIT_MODES = ("center crop", "stretch", "pad")
MAX_EOT_SAMPLES = 64
ENLARGE = 8  # 32x32 -> 256x256, nearest neighbour

# The paper's Table 2 (ratzoo.zoo.PAPER_TABLE2): a different architecture and protocol from
# the zoo's, shown for context, never mixed into the zoo's charts.
# Each method is named as the zoo names its model (label and reference from the registry).
_PAPER_NAMES = {m["method"]: m["label"] + (f" ({m['reference']})" if m.get("reference") else "")
                for m in ratzoo.list_models()}
PAPER_TABLE2 = tuple(
    {"model": _PAPER_NAMES.get(m, m), "method": m, "Linf (PGD-10, eps 0.3)": linf, "L2 (C&W-40)": l2}
    for m, (linf, l2) in PAPER_TABLE2_BY_METHOD.items()
)


THREADS_ENV = "RATZOO_APP_THREADS"


def configure_threads() -> int:
    """Set torch's CPU threads for the demo: ``$RATZOO_APP_THREADS``, default 1.

    One image's attack is a batch of ``eot_samples`` small images: a second thread buys
    little, and on a CPU shared with anything else (a training job, another visitor's
    attack in the same server) OpenMP threads contend. Measured here with a training
    job on the other core, PGD-20/EOT-10 took 0.41 s with 1 thread and 2.1 s with 2
    (``benchmarks/bench_app.py``). Returns the thread count in effect.
    """
    import os

    raw = os.environ.get(THREADS_ENV, "1")
    try:
        n = max(1, int(raw))
    except ValueError:
        n = 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


class InputError(ValueError):
    """Something the visitor chose or uploaded cannot be used; the message says why and what to do."""


class ModelUnavailable(RuntimeError):
    """A zoo model cannot be loaded (not trained yet, missing or corrupt checkpoint)."""


# --------------------------------------------------------------------------- attacks


@dataclasses.dataclass(frozen=True)
class AttackInfo:
    """How the demo offers one attack.

    Attributes:
        key: the demo's name for it.
        names: ratzoo attack names that implement it, first present wins.
        label: what the visitor sees.
        norm: "Linf" or "L2": the distance the budget (or the minimized norm) is in.
        bounded: False for minimum-norm attacks (C&W) that have no budget.
        eps_default, eps_min, eps_max: the budget in display units (/255 for Linf).
        steps_default, steps_max: gradient steps (``steps_max == 1``: single step).
        blurb: one line for the visitor.
    """

    key: str
    names: tuple[str, ...]
    label: str
    norm: str
    bounded: bool
    eps_default: float
    eps_min: float
    eps_max: float
    steps_default: int
    steps_max: int
    blurb: str
    fixed: tuple[tuple[str, Any], ...] = ()

    @property
    def fixed_kwargs(self) -> dict[str, Any]:
        """Arguments the demo fixes for this attack (e.g. C&W's binary-search steps)."""
        return dict(self.fixed)

    @property
    def eps_unit(self) -> str:
        return "/255" if self.norm == "Linf" else ""

    def eps_to_pixels(self, eps_display: float) -> float:
        """The budget in [0, 1] pixel units."""
        return eps_display / 255.0 if self.norm == "Linf" else float(eps_display)

    def format_eps(self, eps: float) -> str:
        """A budget in pixel units as the visitor reads it: ``8/255`` or ``0.5``."""
        return f"{fmt_num(eps * 255)}/255" if self.norm == "Linf" else fmt_num(eps)


ATTACKS: dict[str, AttackInfo] = {
    a.key: a
    for a in (
        AttackInfo("fgsm", ("fgsm",), "FGSM (Linf, 1 step)", "Linf", True, 8, 0.5, 32, 1, 1,
                   "Fast Gradient Sign Method: one step of size eps along the sign of the gradient."),
        AttackInfo("pgd-linf", ("pgd-linf",), "PGD-Linf", "Linf", True, 8, 0.5, 32, 20, 200,
                   "Projected gradient descent in the Linf ball (random start, step eps/4)."),
        AttackInfo("pgd-l2", ("pgd-l2",), "PGD-L2", "L2", True, 0.5, 0.01, 5.0, 20, 200,
                   "Projected gradient descent in the L2 ball (random start)."),
        AttackInfo("cw-l2", ("cw-l2", "cw"), "C&W-L2 (minimum norm)", "L2", False, 0.5, 0.01, 10.0, 20, 200,
                   "Carlini & Wagner: searches the smallest L2 perturbation that fools the model "
                   "(5 binary-search steps over its constant, each of 'Steps' Adam iterations). "
                   "It has no budget: the L2 value is only a reference.",
                   fixed=(("search_steps", 5),)),
        AttackInfo("apgd", ("apgd-ce", "apgd", "apgd-linf"), "APGD-CE (Linf)", "Linf", True, 8, 0.5, 32, 20, 200,
                   "Auto-PGD (Croce & Hein 2020): PGD with an adaptive step size, no tuning."),
    )
}


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """A validated attack request.

    Attributes:
        attack: key of :data:`ATTACKS`.
        eps: budget in [0, 1] pixel units (for C&W: the reference L2 value).
        steps: gradient steps.
        eot_samples: noise draws per step (1 for a deterministic model).
        seed: the one seed. As in :func:`ratzoo.evaluate.evaluate`, the attack's draws
            and the clean and adversarial decision draws get independent streams derived
            from it, so the demo's verdict is the evaluator's for this image and seed.
    """

    attack: str
    eps: float
    steps: int
    eot_samples: int
    seed: int

    @property
    def info(self) -> AttackInfo:
        return ATTACKS[self.attack]

    @property
    def attack_seed(self) -> int:
        return derive_seed(self.seed, STREAM_ATTACK)

    @property
    def clean_seed(self) -> int:
        return derive_seed(self.seed, STREAM_CLEAN)

    @property
    def adv_seed(self) -> int:
        return derive_seed(self.seed, STREAM_ADV)

    def describe(self) -> str:
        a = self.info
        budget = f"eps {a.format_eps(self.eps)}" if a.bounded else f"reference L2 {fmt_num(self.eps)}"
        search = a.fixed_kwargs.get("search_steps")
        steps = "" if a.steps_max == 1 else (f", {search} x {self.steps} steps" if search else f", {self.steps} steps")
        eot = f", EOT {self.eot_samples}" if self.eot_samples > 1 else ""
        return f"{a.label}: {budget}{steps}{eot}, seed {self.seed}"


def fmt_num(v: float) -> str:
    """Short, exact-looking numbers: 8, 0.5, 1.25, 0.0313."""
    return f"{v:.4g}"


def validate_spec(
    attack: str, eps_display: Any, steps: Any, eot_samples: Any, seed: Any, randomized: bool
) -> AttackSpec:
    """Check the visitor's attack settings and return an :class:`AttackSpec`.

    Args:
        attack: a key of :data:`ATTACKS`.
        eps_display: the budget as typed (Linf in /255, L2 in pixel units).
        steps: gradient steps (ignored for a single-step attack).
        eot_samples: noise draws per step; forced to 1 for a deterministic model.
        seed: a non-negative integer.
        randomized: whether the model draws noise.

    Raises:
        InputError: with what is wrong and the allowed range.
    """
    if attack not in ATTACKS:
        raise InputError(f"unknown attack {attack!r}; choose one of {', '.join(a.label for a in ATTACKS.values())}")
    a = ATTACKS[attack]
    what = "Linf eps (in /255)" if a.norm == "Linf" else ("reference L2 value" if not a.bounded else "L2 eps")
    try:
        e = float(eps_display)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {eps_display!r}") from None
    if not math.isfinite(e) or not a.eps_min <= e <= a.eps_max:
        raise InputError(
            f"{what} = {eps_display!r} is out of range for {a.label}: choose a value between "
            f"{fmt_num(a.eps_min)}{a.eps_unit} and {fmt_num(a.eps_max)}{a.eps_unit}"
        )
    s = 1 if a.steps_max == 1 else _int_in_range(steps, "steps", 1, a.steps_max)
    k = _int_in_range(eot_samples, "EOT samples", 1, MAX_EOT_SAMPLES) if randomized else 1
    sd = _int_in_range(seed, "seed", 0, 2**31 - 1)
    return AttackSpec(attack, a.eps_to_pixels(e), s, k, sd)


def _int_in_range(v: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(v, bool):
        raise InputError(f"{name} must be an integer, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an integer, got {v!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise InputError(f"{name} must be a whole number, got {v!r}")
    if not lo <= int(f) <= hi:
        raise InputError(f"{name} = {int(f)} is out of range: choose between {lo} and {hi}")
    return int(f)


def available_attacks() -> dict[str, AttackInfo]:
    """The demo's attacks that this ratzoo provides, keyed by ratzoo's attack name."""
    try:
        from ratzoo.attacks import ATTACKS as registry
    except ImportError:
        return {}
    out = {}
    for a in ATTACKS.values():
        name = next((n for n in a.names if n in registry), None)
        if name is not None:
            out[a.key] = dataclasses.replace(a, names=(name,))
    return out


def _run_attack(spec: AttackSpec, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                progress: Callable[[int, int], None] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One call of ratzoo's attack (seeded like :func:`ratzoo.evaluate.evaluate`); returns
    the adversarial images and the attack's own norms (``inf`` where C&W found nothing)."""
    from ratzoo.attacks import ATTACKS as registry
    from ratzoo.attacks import attack_arguments, make_attack

    name = next((n for n in spec.info.names if n in registry), None)
    if name is None:
        raise InputError(f"this version of ratzoo has no {spec.info.label} attack; "
                         f"available: {', '.join(a.label for a in available_attacks().values())}")
    wanted: dict[str, Any] = {"eps": spec.eps if spec.info.bounded else None,
                              "steps": spec.steps if spec.info.steps_max > 1 else None,
                              "eot_samples": spec.eot_samples, "seed": spec.attack_seed, "progress": progress,
                              **spec.info.fixed_kwargs}
    # Pass only what the attack takes (FGSM has no steps, C&W no eps): make_attack
    # rejects unknown arguments, and the class defaults are the documented ones.
    accepted = attack_arguments(name)
    kwargs = {k: v for k, v in wanted.items() if k in accepted and v is not None}
    result = make_attack(name, model, **kwargs).run(x, y, estimate_success=False)
    return result.adv_images, result.norms


# --------------------------------------------------------------------------- models


@dataclasses.dataclass
class LoadedModel:
    """A zoo model with the lock that serializes its use: the noise generator lives on
    the module, so two sessions attacking the same cached model at once must take turns."""

    name: str
    model: torch.nn.Module
    randomized: bool
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)
    lipschitz: float | None = None  # the first layer's bound, computed on first certificate


def load_model(name: str) -> LoadedModel:
    """Load a zoo model for the demo (CPU, eval mode, noise on).

    Raises:
        ModelUnavailable: unknown name, not trained yet, missing or corrupt checkpoint;
            the message is ratzoo's, which says where it looked and what to do.
    """
    try:
        model = ratzoo.load(name, device="cpu")
    except KeyError as e:
        raise ModelUnavailable(str(e.args[0]) if e.args else str(e)) from e
    except Exception as e:  # CheckpointError and anything a corrupt file may raise
        raise ModelUnavailable(f"{type(e).__name__}: {e}") from e
    return LoadedModel(name, model, ratzoo.is_randomized(model))


def zoo_rows(models: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The zoo as table rows: name, method, availability, noise and headline numbers (%)."""
    models = ratzoo.list_models() if models is None else models
    rows = []
    for m in models:
        noise = m.get("noise") or {}
        if noise.get("noise_kind", "none") in ("none", None):
            noise_s = "none"
        else:
            where = "input" if noise.get("noise_layer") == 0 else "layer 1"
            noise_s = f"{noise['noise_kind']} sigma={fmt_num(float(noise.get('noise_sigma', 0)))} ({where})"
        row: dict[str, Any] = {
            "model": m["name"],
            "method": m.get("method", ""),
            "available": bool(m.get("bundled")) or bool(m.get("hub_repo")),
            "noise": noise_s if m.get("bundled") else "",
            "description": m.get("description", ""),
        }
        for metric, value in (m.get("results") or {}).items():
            try:
                row[f"{metric} (%)"] = round(100 * float(value), 2)
            except (TypeError, ValueError):
                continue
        if m.get("error"):
            row["problem"] = m["error"]
        rows.append(row)
    return rows


def model_option_label(row: dict[str, Any]) -> str:
    """One line for the model picker: name, method and up to three headline numbers."""
    nums = [f"{k.removesuffix(' (%)')} {v:.1f}%" for k, v in row.items() if k.endswith(" (%)")][:3]
    status = "" if row.get("available") else "  [not trained yet]"
    return f"{row['model']} ({row['method']})" + (f": {'; '.join(nums)}" if nums else "") + status


# --------------------------------------------------------------------------- images


@dataclasses.dataclass(frozen=True)
class PreparedImage:
    """A 32x32 RGB image ready to attack.

    Attributes:
        pixels: ``(32, 32, 3)`` uint8.
        label: the true class index, or ``None`` when unknown (uploads).
        source: where it came from, e.g. "CIFAR-10 test #3" or "upload cat.jpg".
        note: how it was obtained (preprocessing of an upload, gallery fallback, ...).
    """

    pixels: np.ndarray
    label: int | None
    source: str
    note: str = ""

    def tensor(self) -> torch.Tensor:
        return to_tensor(self.pixels)

    def key(self) -> str:
        """Identifies the pixels (and label) for caching and to tell results apart."""
        import hashlib

        h = hashlib.sha256(np.ascontiguousarray(self.pixels).tobytes()).hexdigest()[:16]
        return f"{self.source}|{self.label}|{h}"


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 ``(32, 32, 3)`` -> float ``(1, 3, 32, 32)`` in [0, 1]."""
    return torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1)[None].float().div(255)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float ``(1, 3, H, W)`` or ``(3, H, W)`` in [0, 1] -> uint8 ``(H, W, 3)`` (rounded)."""
    x = x.detach().cpu()
    if x.dim() == 4:
        x = x[0]
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def enlarge(pixels: np.ndarray, factor: int = ENLARGE) -> np.ndarray:
    """Nearest-neighbour upscaling (every pixel becomes a ``factor`` x ``factor`` block), so
    the browser shows the real pixels instead of a smoothed guess."""
    return np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)


def load_gallery(assets: Path = ASSETS) -> tuple[np.ndarray, list[dict[str, Any]], str]:
    """The bundled gallery: ``(N, 32, 32, 3)`` uint8 images, their records, their source.

    Raises:
        InputError: the gallery files are missing or do not match each other.
    """
    from PIL import Image

    try:
        meta = json.loads((assets / "gallery.json").read_text())
        sprite = np.asarray(Image.open(assets / "gallery.png").convert("RGB"))
    except (OSError, ValueError) as e:
        raise InputError(f"the bundled gallery in {assets} is missing or unreadable ({e}); "
                         "regenerate it with `python app/make_gallery.py`") from e
    t = int(meta.get("tile", IMAGE_SIZE))
    images, records = [], []
    for r in meta["images"]:
        tile = sprite[r["row"] * t:(r["row"] + 1) * t, r["col"] * t:(r["col"] + 1) * t]
        if tile.shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise InputError(f"gallery tile {r} lies outside the {sprite.shape[1]}x{sprite.shape[0]} sprite")
        images.append(tile)
        records.append(r)
    return np.stack(images), records, str(meta.get("source", "CIFAR-10 test split"))


def gallery_image(i: int, assets: Path = ASSETS) -> PreparedImage:
    """Gallery entry ``i`` (0-based position in the gallery)."""
    images, records, source = load_gallery(assets)
    if not 0 <= i < len(records):
        raise InputError(f"gallery position {i} is out of range: the gallery holds {len(records)} images")
    r = records[i]
    return PreparedImage(images[i].copy(), int(r["label"]), f"CIFAR-10 test #{r['index']} (gallery)",
                         f"from the bundled gallery ({source})")


def cifar_image(index: int, images: np.ndarray, labels: np.ndarray, source: str = "CIFAR-10") -> PreparedImage:
    """Test image ``index`` of a loaded CIFAR-10 split."""
    n = len(labels)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < n:
        raise InputError(f"test image index must be an integer between 0 and {n - 1}, got {index!r}")
    return PreparedImage(np.array(images[index], dtype=np.uint8), int(labels[index]), f"CIFAR-10 test #{index}",
                         f"from {source}")


def gallery_position_of(index: int, records: list[dict[str, Any]]) -> int | None:
    """Where CIFAR-10 test image ``index`` sits in the gallery, if it is there."""
    for pos, r in enumerate(records):
        if int(r["index"]) == int(index):
            return pos
    return None


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
        raise InputError(f"{name} is {len(data) / 2**20:.1f} MiB; the demo accepts images up to "
                         f"{MAX_UPLOAD_BYTES // 2**20} MiB (it shrinks everything to 32x32 anyway)")
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
        raise InputError(f"{not_image} ({type(e).__name__})") from e

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
    if im.size != (IMAGE_SIZE, IMAGE_SIZE):
        direction = "downsampled" if max(im.size) > IMAGE_SIZE else "upsampled"
        im = im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
        steps.append(f"{direction} to 32x32 (Lanczos)")
    else:
        steps.append("already 32x32")
    pixels = np.asarray(im, dtype=np.uint8).copy()
    return PreparedImage(pixels, None, f"upload {name}", "; ".join(steps))


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


# --------------------------------------------------------------------------- norms


@dataclasses.dataclass(frozen=True)
class Norms:
    """Norms of the perturbation ``adv - x`` of one image, in [0, 1] pixel units.

    Attributes:
        linf: max absolute change of one entry (shown as ``linf * 255`` /255).
        l2: Euclidean norm over the 3x32x32 entries.
        l0: entries changed by more than :data:`L0_TOL` (out of :data:`NUM_VALUES`).
        l0_pixels: pixels with at least one changed channel (out of 1024).
    """

    linf: float
    l2: float
    l0: int
    l0_pixels: int

    @property
    def linf_255(self) -> float:
        return self.linf * 255.0


def perturbation_norms(x: torch.Tensor, adv: torch.Tensor) -> Norms:
    """Linf, L2, L0 of ``adv - x`` for one image ``(1, 3, H, W)``, computed in float64."""
    if x.shape != adv.shape or x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"expected two (1, 3, H, W) tensors of the same shape, got {tuple(x.shape)} and {tuple(adv.shape)}")
    d = adv.detach().double() - x.detach().double()
    changed = d.abs() > L0_TOL
    return Norms(
        linf=float(d.abs().max()) if d.numel() else 0.0,
        l2=float(d.flatten().norm()),
        l0=int(changed.sum()),
        l0_pixels=int(changed.any(dim=1).sum()),
    )


def within_budget(norms: Norms, spec: AttackSpec) -> bool | None:
    """Whether the perturbation respects the budget (``None`` for unbounded attacks)."""
    if not spec.info.bounded:
        return None
    value = norms.linf if spec.info.norm == "Linf" else norms.l2
    return value <= spec.eps + BUDGET_TOL


def perturbation_image(x: torch.Tensor, adv: torch.Tensor) -> tuple[np.ndarray, float]:
    """The perturbation as an image: mid-gray is 0, and it is amplified so that the
    largest change reaches black or white. Returns the uint8 image and the amplification."""
    d = (adv.detach().double() - x.detach().double())[0]
    m = float(d.abs().max()) if d.numel() else 0.0
    amp = 0.5 / m if m > 0 else 1.0
    img = (0.5 + amp * d).clamp(0, 1)
    return (img * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), amp


# --------------------------------------------------------------------------- the attack


@dataclasses.dataclass
class AttackOutcome:
    """Everything the app shows about one attack on one image.

    Attributes:
        model: zoo name. spec: the request. source: the image's origin.
        x, adv: ``(1, 3, 32, 32)`` clean and adversarial images.
        label: the label attacked (true label, or the clean prediction for uploads).
        label_is_true: False when ``label`` is the model's clean prediction (uploads).
        clean, adversarial: EOT predictions over :data:`EVAL_SAMPLES` fresh draws.
        norms: of ``adv - x``. within_budget: None for unbounded attacks.
        success: the adversarial EOT prediction is not ``label``.
        randomized: the model draws noise (else predictions are single passes).
        attack_seconds: wall time of the attack alone; total_seconds: with the predictions.
        certificate: randomized-smoothing certificate of the clean image, if computed.
        found: minimum-norm attacks (C&W) only: whether it found an example that fooled
            its own EOT estimate (if not, ``adv`` is the clean image).
    """

    model: str
    spec: AttackSpec
    source: str
    x: torch.Tensor
    adv: torch.Tensor
    label: int
    label_is_true: bool
    clean: Any
    adversarial: Any
    norms: Norms
    within_budget: bool | None
    success: bool
    randomized: bool
    attack_seconds: float
    total_seconds: float
    certificate: dict[str, Any] | None = None
    found: bool | None = None

    @property
    def clean_label(self) -> int:
        return int(self.clean.label[0])

    @property
    def adv_label(self) -> int:
        return int(self.adversarial.label[0])

    @property
    def clean_correct(self) -> bool:
        return self.clean_label == self.label

    def verdict(self) -> str:
        """One sentence under the documented rule."""
        n = f"the EOT prediction over {self.adversarial.samples} fresh noise draws" if self.randomized \
            else "the prediction (deterministic model)"
        truth = "true label" if self.label_is_true else "clean prediction"
        if not self.clean_correct:
            return (f"Already misclassified before the attack: the clean image is predicted "
                    f"'{CLASSES[self.clean_label]}', the {truth} is '{CLASSES[self.label]}'.")
        if self.success:
            return (f"Attack succeeded: {n} on the adversarial image is '{CLASSES[self.adv_label]}', "
                    f"not the {truth} '{CLASSES[self.label]}'.")
        return f"Attack failed: {n} on the adversarial image is still the {truth} '{CLASSES[self.label]}'."


def predict(model: torch.nn.Module, x: torch.Tensor, seed: int, samples: int = EVAL_SAMPLES):
    """ratzoo's EOT prediction over ``samples`` draws from ``seed``."""
    return ratzoo.predict_proba(model, x, samples=samples, seed=seed)


def run_attack(
    loaded: LoadedModel,
    image: PreparedImage,
    spec: AttackSpec,
    label: int | None = None,
    progress: Callable[[float, str], None] | None = None,
    certify: dict[str, Any] | None = None,
) -> AttackOutcome:
    """Attack one image and judge the result under the documented rule.

    Args:
        loaded: the model (its lock is held for the whole call).
        image: the image; its label is the true label unless ``label`` overrides it.
        spec: a validated :class:`AttackSpec`.
        label: the class to move away from when the image has no known label; by
            default the model's clean EOT prediction.
        progress: ``progress(fraction, text)`` during the attack.
        certify: keyword arguments for :func:`certify_clean` (``None``: no certificate).

    Returns:
        An :class:`AttackOutcome`; the attack and the two predictions are seeded from
        ``spec.seed`` exactly as :func:`ratzoo.evaluate.evaluate` seeds them, so a rerun
        gives the same numbers and the evaluator's verdict on this image is the same.
    """
    model = loaded.model
    x = image.tensor()
    t0 = time.perf_counter()
    with loaded.lock:
        clean = predict(model, x, spec.clean_seed)
        if label is None:
            label = image.label
        label_is_true = image.label is not None and label == image.label
        if label is None:
            label = int(clean.label[0])
        y = torch.tensor([int(label)])

        def tick(done: int, total: int) -> None:
            if progress is not None and total > 0:
                progress(min(1.0, done / total), f"{spec.info.label}: step {done}/{total}")

        t1 = time.perf_counter()
        adv, attack_norms = _run_attack(spec, model, x, y, tick)
        attack_seconds = time.perf_counter() - t1
        if progress is not None:
            progress(1.0, f"Judging: EOT prediction over {EVAL_SAMPLES} fresh noise draws")
        adversarial = predict(model, adv, spec.adv_seed)
        randomized = loaded.randomized
        cert = None
        if certify is not None and randomized:
            if progress is not None:
                progress(1.0, f"Certifying the clean image ({certify.get('n', 1000)} noise draws)")
            cert = certify_clean(loaded, x, seed=spec.seed, **certify)
    norms = perturbation_norms(x, adv)
    return AttackOutcome(
        model=loaded.name, spec=spec, source=image.source, x=x, adv=adv.detach(), label=int(label),
        label_is_true=label_is_true, clean=clean, adversarial=adversarial, norms=norms,
        within_budget=within_budget(norms, spec), success=int(adversarial.label[0]) != int(label),
        randomized=randomized, attack_seconds=attack_seconds, total_seconds=time.perf_counter() - t0,
        certificate=cert, found=None if spec.info.bounded else bool(torch.isfinite(attack_norms).all()),
    )


# --------------------------------------------------------------------------- certificates


def certify_available() -> bool:
    try:
        from ratzoo.certify import certify  # noqa: F401
    except ImportError:
        return False
    return True


STREAM_CERTIFY = 4  # the certificate's draws: a fourth stream, independent of the other three


def certify_clean(loaded: LoadedModel, x: torch.Tensor, n0: int = 100, n: int = 1000,
                  alpha: float = 0.001, seed: int = 0) -> dict[str, Any] | None:
    """ratzoo's randomized-smoothing certificate (Cohen et al.'s CERTIFY) of one image.

    Returns ``None`` when ``ratzoo.certify`` is not available, else a dict with ``label``
    (-1 = abstain), ``radius`` (input-space L2, pixels in [0, 1]), ``p_lower``,
    ``lipschitz`` (the first layer's bound for layer-1 noise), ``sigma``, ``n0``, ``n``,
    ``alpha``. The first layer's Lipschitz bound is computed once per loaded model.
    """
    try:
        from ratzoo.certify import certify, feature_lipschitz
    except ImportError:
        return None
    model = loaded.model
    lip = None
    if getattr(model.config, "noise_layer", 1) == 1:
        if loaded.lipschitz is None:
            loaded.lipschitz = feature_lipschitz(model, tuple(x.shape[1:])).value
        lip = loaded.lipschitz
    (c,) = certify(model, x, n0=n0, n=n, alpha=alpha, seed=derive_seed(seed, STREAM_CERTIFY), lipschitz=lip)
    return {"label": int(c.label), "radius": float(c.radius), "p_lower": float(c.p_lower),
            "lipschitz": float(c.lipschitz), "sigma": float(c.sigma), "n0": n0, "n": n, "alpha": alpha}


def certificate_check(outcome: AttackOutcome) -> tuple[str, str] | None:
    """How the found adversarial relates to the certificate of the clean image.

    The certificate is about the *smoothed* classifier (the class most single noise
    draws predict): it cannot change within the certified L2 radius. So an adversarial
    whose majority vote differs from the certified class and whose L2 norm is below the
    radius contradicts it ("violation"; it may happen with probability alpha, or through
    the sampling error of the 100-draw vote, and otherwise is a bug). Returns
    ``(level, message)`` with level "ok", "info" or "violation", or ``None`` without a
    certificate.
    """
    c = outcome.certificate
    if not c:
        return None
    r, l2 = c["radius"], outcome.norms.l2
    if c["label"] < 0:
        return "info", (f"The smoothed classifier abstains on the clean image (lower bound on the top class's "
                        f"probability {c['p_lower']:.3f} <= 1/2 with n={c['n']}): no certified radius.")
    lab = CLASSES[c["label"]]
    vote = int(outcome.adversarial.majority[0])
    if vote == c["label"]:
        return "info", (f"Certified '{lab}' within L2 radius {r:.4f}. On the adversarial image (L2 {l2:.4f}) the "
                        f"majority of single draws still predicts '{lab}', so the certificate is not put to the test"
                        + (" (the EOT decision changed, but the certificate is about the majority vote)."
                           if outcome.adv_label != outcome.clean_label else "."))
    if l2 >= r:
        return "ok", (f"Consistent: the adversarial changes the majority vote to '{CLASSES[vote]}' with L2 norm "
                      f"{l2:.4f}, outside the certified radius {r:.4f} for '{lab}'. No perturbation inside the "
                      "radius can do that.")
    return "violation", (f"Inconsistent: an adversarial with L2 {l2:.4f}, inside the certified radius {r:.4f} "
                         f"for '{lab}', changes the majority vote to '{CLASSES[vote]}'. The certificate holds "
                         f"with probability 1 - alpha = {1 - c['alpha']} and the vote is a 100-draw estimate; "
                         "if this repeats, it is a bug.")


# --------------------------------------------------------------------------- compare all models


def compare_models(
    names: Iterable[str],
    load: Callable[[str], LoadedModel],
    image: PreparedImage,
    make_spec: Callable[[bool], AttackSpec],
    label: int | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> list[dict[str, Any]]:
    """The same image and attack on every model; one table row per model.

    Args:
        names: zoo names.
        load: ``load(name) -> LoadedModel`` (raises :class:`ModelUnavailable`).
        image: the image.
        make_spec: ``make_spec(randomized) -> AttackSpec`` (EOT draws only for noisy models).
        label: as in :func:`run_attack`.
        progress: ``progress(fraction, text)`` over the whole comparison.

    A model that cannot be loaded gets a row with its ``problem`` instead of numbers.
    """
    names = list(names)
    rows = []
    for i, name in enumerate(names):
        def sub(frac: float, text: str, i: int = i, name: str = name) -> None:
            if progress is not None:
                progress((i + frac) / len(names), f"{name}: {text}")

        sub(0.0, "loading")
        try:
            loaded = load(name)
        except ModelUnavailable as e:
            rows.append({"model": name, "problem": str(e)})
            continue
        spec = make_spec(loaded.randomized)
        out = run_attack(loaded, image, spec, label=label, progress=sub)
        rows.append(comparison_row(out))
    if progress is not None:
        progress(1.0, "done")
    return rows


def comparison_row(out: AttackOutcome) -> dict[str, Any]:
    """One model's line of the comparison. ``robust`` is the evaluator's rule for this
    image (clean and adversarial EOT predictions both right); ``attack succeeded`` is
    only true for an image the model got right before the attack."""
    y = out.label
    return {
        "model": out.model,
        "randomized": out.randomized,
        "EOT samples": out.spec.eot_samples,
        "clean prediction": CLASSES[out.clean_label],
        "P(label) clean": round(float(out.clean.probs[0, y]), 4),
        "adversarial prediction": CLASSES[out.adv_label],
        "P(label) adversarial": round(float(out.adversarial.probs[0, y]), 4),
        "clean correct": out.clean_correct,
        "attack succeeded": out.clean_correct and out.success,
        "robust": out.clean_correct and not out.success,
        "Linf (/255)": round(out.norms.linf_255, 3),
        "L2": round(out.norms.l2, 4),
        "within budget": out.within_budget,
        "seconds": round(out.attack_seconds, 2),
    }


# --------------------------------------------------------------------------- chart data


def probs_table(outcome: AttackOutcome) -> list[dict[str, Any]]:
    """Long-form rows for the probability chart: class, image, mean, spread (std), bounds."""
    rows = []
    for which, p in (("clean", outcome.clean), ("adversarial", outcome.adversarial)):
        for c, name in enumerate(CLASSES):
            m, s = float(p.probs[0, c]), float(p.probs_std[0, c])
            rows.append({"class": name, "image": which, "mean probability": m, "std": s,
                         "low": max(0.0, m - s), "high": min(1.0, m + s),
                         "label": c == outcome.label})
    return rows


def votes_table(outcome: AttackOutcome) -> list[dict[str, Any]]:
    """Long-form rows for the histogram of single-draw predictions (votes) per class."""
    rows = []
    for which, p in (("clean", outcome.clean), ("adversarial", outcome.adversarial)):
        for c, name in enumerate(CLASSES):
            rows.append({"class": name, "image": which, "draws": int(p.votes[0, c]),
                         "fraction": int(p.votes[0, c]) / p.samples})
    return rows


# --------------------------------------------------------------------------- zoo results (JSON files)

RESULTS_FILE = "results.json"  # written by `python -m train.report`


@dataclasses.dataclass
class ZooResults:
    """``checkpoints/results/results.json`` (``python -m train.report``) as chart rows.

    Attributes:
        description, dataset, decision_rule: as in the file.
        table: one row per model and headline metric: ``model``, ``metric``, ``value``
            (accuracy in [0, 1]), ``ci_low``, ``ci_high``, ``n``, ``eot_samples``.
        norms_table: the non-accuracy metrics (C&W median minimal L2 norm), same keys.
        eps_sweep: the paper's Fig. 3: ``model``, ``attack``, ``eps (/255)``, ``accuracy``.
        eot_sweep: the paper's Fig. 4: ``model``, ``attack``, ``EOT samples``, ``accuracy``.
        cw_norms: the paper's Fig. 5: ``model``, ``L2``, one row per C&W example that fooled the
            decision rule (``train.report`` keeps only those when the record says which; older
            records list every image, ``None``/inf where nothing was found, which
            ``cw_not_found`` counts per model).
        certified: randomized-smoothing certificates (``python -m ratzoo.certify``), one row per
            model: ``model``, ``sigma``, ``L`` (first-layer Lipschitz bound, None for input
            noise), ``n``, ``draws``, ``certified @r`` (accuracy in [0, 1]) per radius, and the
            empirical ``PGD-20 L2 0.5`` and ``C&W acc. at L2 0.5`` of the same model.
    """

    description: str = ""
    dataset: str = ""
    decision_rule: str = ""
    table: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    norms_table: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    eps_sweep: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    eot_sweep: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    cw_norms: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    cw_not_found: dict[str, int] = dataclasses.field(default_factory=dict)
    certified: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def load_zoo_results(path: Path) -> ZooResults | None:
    """Read ``results.json``; ``None`` when it does not exist.

    Raises:
        InputError: the file exists but is not JSON or not shaped as ``train.report`` writes it.
    """
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path.name} is not readable JSON ({type(e).__name__}: {e})") from e
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise InputError(f"{path.name} has no 'models' section (expected the output of `python -m train.report`)")
    out = ZooResults(str(data.get("description", "")), str(data.get("dataset", "")), str(data.get("decision_rule") or ""))
    for model, res in models.items():
        if not isinstance(res, dict):
            continue
        for m in res.get("table") or []:
            value = _num(m.get("value")) if isinstance(m, dict) else None
            if value is None:
                continue
            row = {"model": model, "metric": str(m.get("name", "?")), "value": value, "n": m.get("n"),
                   "eot_samples": m.get("eot_samples"), **_ci(m.get("ci95"))}
            (out.norms_table if m.get("unit") == "L2" or m.get("type") == "median_l2_norm" else out.table).append(row)
        for key, target, xname in (("fig3_accuracy_vs_linf_eps_255", out.eps_sweep, "eps (/255)"),
                                   ("fig4_accuracy_vs_eot_samples", out.eot_sweep, "EOT samples")):
            for attack, points in (res.get(key) or {}).items():
                for x, acc in (points or {}).items() if isinstance(points, dict) else ():
                    xv, av = _safe_float(x), _num(acc)
                    if xv is not None and av is not None:
                        target.append({"model": model, "attack": attack, xname: xv, "accuracy": av})
        cert = res.get("certified")
        if isinstance(cert, dict) and isinstance(cert.get("accuracy_at"), dict):
            table = {str(m.get("name")): _num(m.get("value")) for m in res.get("table") or [] if isinstance(m, dict)}
            row: dict[str, Any] = {"model": model, "sigma": _num(cert.get("sigma_min")), "L": _num(cert.get("lipschitz")),
                                   "n": cert.get("n"), "draws": cert.get("draws")}
            for r, acc in sorted(cert["accuracy_at"].items(), key=lambda kv: _safe_float(kv[0]) or 0.0):
                row[f"certified @{r}"] = _num(acc)
            row["PGD-20 L2 0.5"] = table.get("PGD-20 L2 0.5")
            row["C&W acc. at L2 0.5"] = table.get("C&W-L2 accuracy at L2 0.5")
            out.certified.append(row)
        norms = res.get("fig5_cw_norms")
        if isinstance(norms, list):
            finite = [float(v) for v in norms if _num(v) is not None]
            out.cw_norms.extend({"model": model, "L2": v} for v in finite)
            out.cw_not_found[model] = len(norms) - len(finite)
    return out


# --------------------------------------------------------------------------- other JSON files


@dataclasses.dataclass
class ResultFile:
    """One JSON file of ``checkpoints/results/``, as the results page shows it.

    Attributes:
        name: the file name.
        description: its ``description`` field, if any.
        measurements: one row per evaluator record (:func:`ratzoo.evaluate.evaluate`
            output) found anywhere in the file: model, attack, budget, steps, EOT,
            n, clean/robust accuracy with 95% CI; C&W records add one row per L2 threshold.
        tables: other lists of flat objects (e.g. a grid search's rows), by JSON path.
        problem: why the file could not be read (then everything else is empty).
    """

    name: str
    description: str = ""
    measurements: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    problem: str = ""


def load_results(folder: Path, skip: Iterable[str] = ()) -> list[ResultFile]:
    """Read every ``*.json`` in ``folder`` but those named in ``skip`` (no folder: ``[]``).

    A file that is not JSON, or holds nothing recognisable, comes back with its
    ``problem`` set: the page says so and carries on.
    """
    out: list[ResultFile] = []
    skip = set(skip)
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        if skip and path.name in skip:
            continue
        rf = ResultFile(path.name)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            rf.problem = f"not readable JSON ({type(e).__name__}: {e})"
            out.append(rf)
            continue
        if isinstance(data, dict) and isinstance(data.get("description"), str):
            rf.description = data["description"]
        # train.experiments names record files <model>__<key>.json
        _walk(data, "", {"_file_model": path.stem.split("__", 1)[0]} if "__" in path.stem else {}, rf)
        if not rf.measurements and not rf.tables:
            rf.problem = "no evaluator records (objects with 'robust_accuracy') and no tables found"
        out.append(rf)
    return out


def _is_record(node: Any) -> bool:
    return isinstance(node, dict) and _num(node.get("robust_accuracy")) is not None


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _walk(node: Any, path: str, context: dict[str, Any], rf: ResultFile) -> None:
    if _is_record(node):
        rf.measurements.extend(record_rows(node, context))
        return
    if isinstance(node, list):
        flat = [x for x in node if isinstance(x, dict) and not _is_record(x)
                and all(isinstance(v, (str, int, float, bool)) or v is None for v in x.values())]
        if flat and len(flat) == len(node):
            rf.tables[path or "(top level)"] = flat
            return
        for i, x in enumerate(node):
            _walk(x, f"{path}[{i}]", context, rf)
        return
    if isinstance(node, dict):
        ctx = {**context, **{k: v for k, v in node.items() if k in ("model", "name") and isinstance(v, str)}}
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                _walk(v, f"{path}.{k}" if path else k, {**ctx, "_key": k}, rf)


def record_rows(rec: dict[str, Any], context: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Table rows for one evaluator record (two or more for C&W: one per L2 threshold)."""
    context = context or {}
    params = rec.get("params") if isinstance(rec.get("params"), dict) else {}
    attack = str(rec.get("attack") or params.get("attack") or "?")
    eps = _num(params.get("eps", rec.get("eps")))
    norm = str(params.get("norm") or ("L2" if "l2" in attack.lower() else "Linf"))
    model = (context.get("_file_model") or rec.get("model") or context.get("model") or context.get("name")
             or context.get("_key") or "?")
    base = {
        "model": str(model),
        "attack": attack,
        "norm": norm if attack != "none" else "",
        "eps": eps,
        "steps": params.get("steps", rec.get("steps")),
        "eot_samples": rec.get("effective_eot_samples", rec.get("eot_samples")),
        "n": rec.get("n"),
        "clean_accuracy": _num(rec.get("clean_accuracy")),
        "single_draw_accuracy": _num(rec.get("single_draw_accuracy")),
    }
    rows = []
    acc_at = rec.get("accuracy_at")
    if attack.startswith("cw") and isinstance(acc_at, dict) and acc_at:
        for t, v in acc_at.items():
            if isinstance(v, dict) and _num(v.get("accuracy")) is not None:
                rows.append({**base, "eps": _num(_safe_float(t)), "norm": "L2",
                             "robust_accuracy": float(v["accuracy"]), **_ci(v.get("ci95"))})
    if not rows:
        rows.append({**base, "robust_accuracy": float(rec["robust_accuracy"]), **_ci(rec.get("robust_accuracy_ci95"))})
    for r in rows:
        r["setting"] = measurement_label(r)
    return rows


def _safe_float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _ci(ci: Any) -> dict[str, float]:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_num(v) is not None for v in ci):
        return {"ci_low": float(ci[0]), "ci_high": float(ci[1])}
    return {}


def measurement_label(row: dict[str, Any]) -> str:
    """A readable name for a measurement: "clean", "pgd-linf 8/255, 20 steps, EOT 10"..."""
    attack = str(row.get("attack"))
    if attack in ("none", "clean"):
        return "clean"
    parts = [attack]
    eps = row.get("eps")
    if isinstance(eps, (int, float)):
        if attack.startswith("cw"):
            parts = [f"{attack} L2 <= {fmt_num(eps)}"]
        else:
            budget = f"{fmt_num(eps * 255)}/255" if str(row.get("norm", "")).lower() == "linf" else f"L2 {fmt_num(eps)}"
            parts = [f"{attack} {budget}"]
    if isinstance(row.get("steps"), int):
        parts.append(f"{row['steps']} steps")
    if isinstance(row.get("eot_samples"), int) and row["eot_samples"] > 1:
        parts.append(f"EOT {row['eot_samples']}")
    return ", ".join(parts)
