"""ratzoo.parts: the resumable parts store, and that every committed parts folder still resumes."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

import ratzoo.benchmarking as BENCH
import ratzoo.commands.benchmark as BENCH_CLI
from ratzoo.parts import BY_IMAGES, Parts, part_ranges

from conftest import PYTHON, REPO_ROOT

COMMITTED = REPO_ROOT / "checkpoints" / "results" / "benchmark"


def test_part_ranges_cover_the_images_once() -> None:
    assert part_ranges(250, 100) == [(0, 0, 100), (1, 100, 200), (2, 200, 250)]
    assert part_ranges(0, 100) == []


def _committed_runs(monkeypatch) -> list[tuple[dict, Path, int]]:
    """(record, parts folder, part size) of each committed benchmark record whose parts are committed;
    the folder is the one today's CLI computes from the record's own command line."""
    monkeypatch.setenv("RATZOO_BENCHMARK_PARTS", str(COMMITTED / "parts" / "benchmark"))
    runs = []
    for path in sorted(COMMITTED.glob("*.json")):
        rec = json.loads(path.read_text())
        argv = shlex.split(rec["command"])  # python -m ratzoo benchmark ARGS (python -m ratzoo.benchmark before)
        argv = argv[argv.index("benchmark" if "benchmark" in argv else "ratzoo.benchmark") + 1:]
        cfg = BENCH_CLI.BenchmarkConfig(**vars(BENCH_CLI.build_parser().parse_args(argv)))
        folder = cfg.parts_dir(rec["model_identity"]["digest"])
        if folder.is_dir():
            runs.append((rec, folder, cfg.part_size))
    return runs


def test_every_committed_parts_folder_is_found_and_loads(monkeypatch) -> None:
    """The CLI's key still names the folder of every committed record of today's ensemble, and the
    store loads every part of it: the per-image outcomes, in order, are the committed record's."""
    runs = _committed_runs(monkeypatch)
    today = [json.loads(p.read_text()) for p in sorted(COMMITTED.glob("*.json"))]
    today = [r["model"] + "_" + r["threat_model"] for r in today
             if {k: r["params"].get(k) for k in BENCH.ensemble_params()} == BENCH.ensemble_params()]
    # every record of today's ensemble finds its folder (a folder without a record is a run in progress)
    assert len(today) >= 10
    assert set(today) <= {r["model"] + "_" + r["threat_model"] for r, _, _ in runs}
    for rec, folder, part_size in runs:
        store = Parts(folder, rec["n"], part_size)
        parts = store.finished()
        assert sorted(parts) == [j for j, _, _ in store.ranges], folder
        assert [v for j in sorted(parts) for v in parts[j]["robust"]] == rec["robust_per_image"], folder


def test_a_copied_committed_folder_resumes_byte_for_byte(monkeypatch, tmp_path) -> None:
    """Copied into tmp_path, a committed folder is listed whole, its last part of another n is
    not one, a part saved again is the same bytes, and a claim of a finished part leaves no lock."""
    rec, folder, part_size = _committed_runs(monkeypatch)[0]
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    store = Parts(copy, rec["n"], part_size)
    assert sorted(store.finished()) == list(range(rec["n"] // part_size))
    shorter = Parts(copy, rec["n"] - part_size // 2, part_size)  # its last part has other images
    assert sorted(shorter.finished()) == list(range(len(shorter.ranges) - 1))
    again = Parts(tmp_path / "again", rec["n"], part_size)
    for j, part in store.finished().items():
        again.save(j, part)
        assert again.path(j).read_bytes() == (folder / f"part_{j:05d}.json").read_bytes()
        assert again.path(j).name == f"part_{j:05d}.json"
    with store.claim(0) as mine:
        assert mine
    assert not list(copy.glob("*.lock"))


def test_two_handles_never_claim_the_same_part(tmp_path) -> None:
    a, b = Parts(tmp_path, 10, 4, name=BY_IMAGES), Parts(tmp_path, 10, 4, name=BY_IMAGES)
    with a.claim(1) as first:
        with b.claim(1) as second, b.claim(2) as other:
            assert first and not second and other
        assert a.path(1).with_suffix(".lock").name == "000004-000008.lock"
    with b.claim(1) as later:  # released: free again, and unfinished, so its lock file stays
        assert later and a.path(1).with_suffix(".lock").exists()


def test_a_part_held_by_another_process_is_skipped(tmp_path) -> None:
    """Another live process holds part 1: this one measures parts 0 and 2 only; once that
    process is gone (killed: it never saved), the part is free again."""
    holder = subprocess.Popen(
        [PYTHON, "-c", "import sys\nfrom ratzoo.parts import Parts\n"
                       f"with Parts({str(tmp_path)!r}, 10, 4).claim(1) as mine:\n"
                       "    print(mine, flush=True)\n    sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert holder.stdout.readline().strip() == "True"
        store = Parts(tmp_path, 10, 4)
        measured = []
        for j, start, stop in store.unclaimed():
            store.save(j, {"n": stop - start, "start": start})
            measured.append(j)
        assert measured == [0, 2] and sorted(store.finished()) == [0, 2]
    finally:
        holder.kill()
        holder.wait()
    with store.claim(1) as mine:
        assert mine
