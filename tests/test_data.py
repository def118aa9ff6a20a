"""The CIFAR-10 loader: Hub-schema parquet files, the decoded-array cache, clear errors."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import png_bytes, tiny_cifar_arrays, write_cifar_parquet

from ratzoo import DatasetError, load_cifar10
from ratzoo.data import to_tensor


@pytest.fixture
def parquet_root(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    x, y = tiny_cifar_arrays(40, seed=3)
    write_cifar_parquet(tmp_path / "plain_text" / "test-00000-of-00001.parquet", x, y)
    return tmp_path, x, y


def test_reads_a_hub_schema_parquet(parquet_root) -> None:
    root, x, y = parquet_root
    images, labels = load_cifar10("test", root=root, cache=False)
    assert images.shape == (40, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (40,) and labels.dtype == np.int64
    np.testing.assert_array_equal(images, x)  # PNG is lossless
    np.testing.assert_array_equal(labels, y)


def test_flat_layout_and_env_var(parquet_root, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, x, y = parquet_root
    flat = tmp_path / "flat"
    flat.mkdir()
    os.link(root / "plain_text" / "test-00000-of-00001.parquet", flat / "test-00000-of-00001.parquet")
    monkeypatch.setenv("RATZOO_CIFAR10", str(flat))
    images, labels = load_cifar10("test", cache=False)
    np.testing.assert_array_equal(labels, y)


def test_cache_makes_the_second_load_fast_and_equal(parquet_root, session_cache: Path) -> None:
    root, x, y = parquet_root
    t0 = time.perf_counter()
    a_img, a_lab = load_cifar10("test", root=root)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    b_img, b_lab = load_cifar10("test", root=root)
    second = time.perf_counter() - t0
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, b_lab)
    np.testing.assert_array_equal(b_img, x)
    assert isinstance(b_img, np.memmap), "the second load must come from the cache"
    assert second < 0.5 and second < first
    cached = list((session_cache / "cifar10").glob("test-*/images.npy"))
    assert cached, f"no cache entry under {session_cache}"


def test_cache_is_invalidated_when_the_file_changes(parquet_root) -> None:
    root, x, y = parquet_root
    load_cifar10("test", root=root)
    path = root / "plain_text" / "test-00000-of-00001.parquet"
    write_cifar_parquet(path, x[:10], (y[:10] + 1) % 10)
    images, labels = load_cifar10("test", root=root)
    assert len(images) == 10
    np.testing.assert_array_equal(labels, (y[:10] + 1) % 10)


def test_broken_cache_entry_is_rebuilt(parquet_root, session_cache: Path) -> None:
    root, x, y = parquet_root
    load_cifar10("test", root=root)
    for f in (session_cache / "cifar10").glob("test-*/images.npy"):
        f.write_bytes(b"not a numpy file")
    images, _ = load_cifar10("test", root=root)
    np.testing.assert_array_equal(images, x)


def test_to_tensor() -> None:
    x, _ = tiny_cifar_arrays(3, seed=0)
    t = to_tensor(x)
    assert t.shape == (3, 3, 32, 32) and t.dtype == torch.float32
    assert 0 <= t.min() and t.max() <= 1
    assert torch.equal(t[1, 2, 5, 7], torch.tensor(x[1, 5, 7, 2] / 255, dtype=torch.float32))


# --------------------------------------------------------------------------- errors


def test_missing_folder_says_where_and_how(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_dir"
    with pytest.raises(DatasetError) as info:
        load_cifar10("train", root=missing)
    msg = str(info.value)
    assert str(missing / "plain_text" / "train-00000-of-00001.parquet") in msg
    assert "RATZOO_CIFAR10" in msg
    assert "root from argument" in msg


def test_missing_folder_from_env_names_the_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATZOO_CIFAR10", str(tmp_path / "gone"))
    with pytest.raises(DatasetError, match="from \\$RATZOO_CIFAR10") as info:
        load_cifar10("test")
    assert str(tmp_path / "gone") in str(info.value)


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "plain_text" / "test-00000-of-00001.parquet"
    path.parent.mkdir()
    path.write_bytes(b"PAR1 this is not parquet at all")
    with pytest.raises(DatasetError, match="not a readable CIFAR-10 parquet file") as info:
        load_cifar10("test", root=tmp_path)
    assert str(path) in str(info.value) and "RATZOO_CIFAR10" in str(info.value)


def test_wrong_columns(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(pa.table({"image": [b"x"], "label": [1]}), path)
    with pytest.raises(DatasetError, match="columns 'img' and 'label'") as info:
        load_cifar10("test", root=tmp_path)
    assert str(path) in str(info.value)


def _write_rows(path: Path, rows: list[bytes | None], labels: list) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    img = pa.array([{"bytes": b, "path": None} for b in rows],
                   type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    pq.write_table(pa.table({"img": img, "label": pa.array(labels)}), path)


def test_undecodable_image_names_the_row(tmp_path: Path) -> None:
    good = png_bytes(np.zeros((32, 32, 3), np.uint8))
    path = tmp_path / "test-00000-of-00001.parquet"
    _write_rows(path, [good, b"garbage"], [1, 2])
    with pytest.raises(DatasetError, match="row 1 does not hold a decodable image") as info:
        load_cifar10("test", root=tmp_path)
    assert str(path) in str(info.value)


def test_wrong_image_size(tmp_path: Path) -> None:
    path = tmp_path / "test-00000-of-00001.parquet"
    _write_rows(path, [png_bytes(np.zeros((16, 16, 3), np.uint8))], [1])
    with pytest.raises(DatasetError, match="row 0 is 16x16, expected 32x32"):
        load_cifar10("test", root=tmp_path)


@pytest.mark.parametrize("labels", [[3, 10], [-1, 0], [3, None], ["cat", "dog"]], ids=["10", "-1", "null", "str"])
def test_bad_labels(tmp_path: Path, labels: list) -> None:
    good = png_bytes(np.zeros((32, 32, 3), np.uint8))
    path = tmp_path / "test-00000-of-00001.parquet"
    _write_rows(path, [good, good], labels)
    with pytest.raises(DatasetError, match="label") as info:
        load_cifar10("test", root=tmp_path, cache=False)
    assert str(path) in str(info.value)


def test_unknown_split(parquet_root) -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        load_cifar10("validation", root=parquet_root[0])


# --------------------------------------------------------------------------- the shared copy


def test_shared_copy(cifar_root: Path) -> None:
    images, labels = load_cifar10("test", root=cifar_root)
    assert images.shape == (10_000, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and labels.dtype == np.int64
    assert labels[:5].tolist() == [3, 8, 8, 0, 6]
    assert np.bincount(labels, minlength=10).tolist() == [1000] * 10
    train_images, train_labels = load_cifar10("train", root=cifar_root)
    assert train_images.shape == (50_000, 32, 32, 3)
    assert np.bincount(train_labels, minlength=10).tolist() == [5000] * 10
    assert 0.3 < images.mean() / 255 < 0.7  # real pictures, not zeros


def test_describe_source_names_the_jpeg_copy(tmp_path, monkeypatch):
    """Numbers measured on a JPEG re-encoding must say so; the Hub is plain CIFAR-10."""
    from ratzoo.data import describe_source

    monkeypatch.delenv("RATZOO_CIFAR10", raising=False)
    assert describe_source(None) == "CIFAR-10"
    (tmp_path / "README.md").write_text("assembled from a public JPEG re-encoding")
    assert describe_source(tmp_path) == "CIFAR-10 (JPEG copy)"
    other = tmp_path / "other"
    other.mkdir()
    assert describe_source(other) == "CIFAR-10 (local copy)"
    monkeypatch.setenv("RATZOO_CIFAR10", str(tmp_path))
    assert describe_source(None) == "CIFAR-10 (JPEG copy)"
