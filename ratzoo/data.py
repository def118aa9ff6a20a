"""CIFAR-10 from the Hugging Face Hub dataset ``uoft-cs/cifar10`` (or a local copy of it).

The Hub stores the dataset as parquet files with an ``img`` struct column (encoded PNG
bytes) and an int64 ``label``. They are decoded once and the decoded arrays cached
under ``$RATZOO_CACHE`` (default ``~/.cache/ratzoo``), so a second load is a memory map.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np

HUB_DATASET = "uoft-cs/cifar10"
SPLIT_FILES = {
    "train": "plain_text/train-00000-of-00001.parquet",
    "test": "plain_text/test-00000-of-00001.parquet",
}
ENV_DIR = "RATZOO_CIFAR10"


class DatasetError(RuntimeError):
    """The CIFAR-10 files could not be found or read."""


def cache_dir() -> Path:
    """ratzoo's cache and resume state: ``$RATZOO_CACHE`` (unset or empty: ``~/.cache/ratzoo``)."""
    return Path(os.environ.get("RATZOO_CACHE") or Path.home() / ".cache" / "ratzoo")


def _resolve(split: str, root: str | os.PathLike | None) -> Path:
    source = "argument"
    if root is None:
        root = os.environ.get(ENV_DIR) or None
        source = f"${ENV_DIR}"
    rel = SPLIT_FILES[split]
    if root is not None:
        root = Path(root).expanduser()
        for cand in (root / rel, root / Path(rel).name):
            if cand.is_file():
                return cand
        raise DatasetError(
            f"CIFAR-10 {split} file not found: looked for {root / rel} and {root / Path(rel).name} "
            f"(root from {source}). Point root= or ${ENV_DIR} at a folder "
            f"laid out like the Hub dataset {HUB_DATASET} (plain_text/*.parquet)."
        )
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(HUB_DATASET, rel, repo_type="dataset"))
    except Exception as e:  # offline, no cache, network error
        raise DatasetError(
            f"could not get CIFAR-10 {split} from the Hub dataset {HUB_DATASET} ({type(e).__name__}: {e}). "
            f"Offline? Set ${ENV_DIR} (or pass root=...) to a local folder holding {rel}."
        ) from e


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow.parquet as pq
    import pyarrow.types as pa_types
    from PIL import Image

    try:
        table = pq.read_table(path, columns=["img", "label"])
    except Exception as e:
        raise DatasetError(
            f"{path} is not a readable CIFAR-10 parquet file with columns 'img' and 'label' "
            f"({type(e).__name__}: {e}); re-download it or point ${ENV_DIR} at a good copy"
        ) from e
    imgs = table.column("img").to_pylist()
    label_col = table.column("label")
    if label_col.null_count or not pa_types.is_integer(label_col.type):
        raise DatasetError(
            f"{path}: the 'label' column must hold integers 0..9 without nulls, "
            f"got type {label_col.type} with {label_col.null_count} nulls"
        )
    labels = np.asarray(label_col.to_numpy(), dtype=np.int64)
    out = np.empty((len(imgs), 32, 32, 3), dtype=np.uint8)
    for i, rec in enumerate(imgs):
        raw = rec["bytes"] if isinstance(rec, dict) else rec
        try:
            im = Image.open(io.BytesIO(raw)).convert("RGB")
        except Exception as e:
            raise DatasetError(f"{path}: row {i} does not hold a decodable image ({e})") from e
        if im.size != (32, 32):
            raise DatasetError(f"{path}: row {i} is {im.size[0]}x{im.size[1]}, expected 32x32")
        out[i] = np.asarray(im)
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DatasetError(f"{path}: labels outside 0..9")
    return out, labels


def load_cifar10(
    split: str = "test", root: str | os.PathLike | None = None, cache: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load a CIFAR-10 split as uint8 images ``(N, 32, 32, 3)`` and int64 labels ``(N,)``.

    Args:
        split: "train" (50,000 images) or "test" (10,000).
        root: a local folder laid out like the Hub dataset (``plain_text/*.parquet``);
            defaults to ``$RATZOO_CIFAR10``, else the Hub (through huggingface_hub's
            cache, honouring ``HF_HUB_OFFLINE``).
        cache: keep the decoded arrays under ``$RATZOO_CACHE`` for fast reloads.

    Raises:
        DatasetError: the file is missing or malformed (the message says where it
            looked and how to point the loader at a local copy).

    >>> images, labels = load_cifar10("test")
    >>> images.shape, labels[:5]
    ((10000, 32, 32, 3), array([3, 8, 8, 0, 6]))
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(SPLIT_FILES)}, got {split!r}")
    path = _resolve(split, root).resolve()
    if not cache:
        return _decode(path)
    st = path.stat()
    key = hashlib.sha256(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    folder = cache_dir() / "cifar10" / f"{split}-{key}"
    xi, yi = folder / "images.npy", folder / "labels.npy"
    if xi.is_file() and yi.is_file():
        try:
            return np.load(xi, mmap_mode="r"), np.load(yi)
        except Exception:
            pass  # a broken cache entry is rebuilt below
    images, labels = _decode(path)
    folder.mkdir(parents=True, exist_ok=True)
    for arr, dst in ((images, xi), (labels, yi)):
        tmp = dst.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, arr)
        os.replace(tmp, dst)
    return images, labels


def describe_source(root: str | os.PathLike | None = None) -> str:
    """How to name the data ``load_cifar10(root=root)`` reads, next to any number measured on it.

    The Hub dataset is "CIFAR-10"; a local folder whose README says it holds JPEG
    re-encodings (like the offline copy this project is developed with) is "CIFAR-10 (JPEG
    copy)"; any other local folder is "CIFAR-10 (local copy)".
    """
    if root is None:
        root = os.environ.get(ENV_DIR) or None
    if root is None:
        return "CIFAR-10"
    readme = Path(root).expanduser() / "README.md"
    try:
        text = readme.read_text(errors="replace") if readme.is_file() else ""
    except OSError:
        text = ""
    return "CIFAR-10 (JPEG copy)" if "JPEG" in text else "CIFAR-10 (local copy)"


def to_tensor(images: np.ndarray):
    """uint8 ``(N, 32, 32, 3)`` -> float ``(N, 3, 32, 32)`` in [0, 1]."""
    import torch

    arr = np.array(images, dtype=np.uint8, copy=True)  # the cache is a read-only memory map
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255)
