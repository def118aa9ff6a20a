"""``python -m train.experiments``: records, resuming, measuring in parts (``--shard``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ratzoo import zoo
from train import experiments


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(experiments, "RESULTS", tmp_path / "results")
    monkeypatch.setenv("RATZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "results"


def _run(root: Path, *extra: str) -> None:
    # the bundled `standard` checkpoint, a cheap C&W on the tiny test split
    assert experiments.main(["--models", "standard", "--stages", "table", "--only", "cw_l2", "--cw-steps", "3",
                             "--cw-search", "2", "--threads", "1", "--data-dir", str(root), *extra]) == 0


def test_shard_measures_parts_resumes_and_merges(results, tiny_cifar_root, monkeypatch) -> None:
    _run(tiny_cifar_root, "--n-cw", "10", "--shard", "4")
    rec = json.loads((results / "records" / "standard__cw_l2.json").read_text())
    assert rec["n"] == 10 and rec["first_n"] == 10
    assert [(p["n"], p["seed"], p["offset"]) for p in rec["parts"]] == [(4, 0, 0), (4, 4, 4), (2, 8, 8)]
    assert len(rec["norms_per_image"]) == len(rec["clean_correct_per_image"]) == 10
    assert "--shard 4" in rec["command"]
    folders = list(experiments.parts_dir().iterdir())
    assert len(folders) == 1
    assert sorted(p.name for p in folders[0].iterdir()) == ["000000-000004.json", "000004-000008.json",
                                                            "000008-000010.json"]

    # a killed run resumes: with the record gone and one part lost, only that part is measured
    (results / "records" / "standard__cw_l2.json").unlink()
    (folders[0] / "000004-000008.json").unlink()
    calls = []
    measure = experiments._measure
    monkeypatch.setattr(experiments, "_measure", lambda *a: calls.append(a[4]) or measure(*a))
    _run(tiny_cifar_root, "--n-cw", "10", "--shard", "4")
    assert calls == [4]  # the seed of the part at offset 4
    again = json.loads((results / "records" / "standard__cw_l2.json").read_text())
    for k in ("robust_accuracy", "clean_accuracy", "accuracy_at", "norms_per_image"):
        assert again[k] == rec[k], k  # the re-measured part is the same measurement

    # other attack arguments never reuse these parts
    (results / "records" / "standard__cw_l2.json").unlink()
    calls.clear()
    _run(tiny_cifar_root, "--n-cw", "10", "--shard", "4", "--cw-search", "1")
    assert calls == [0, 4, 8]


def test_a_record_within_one_shard_equals_the_unsharded_one(results, tiny_cifar_root) -> None:
    _run(tiny_cifar_root, "--n-cw", "4", "--shard", "4")
    a = json.loads((results / "records" / "standard__cw_l2.json").read_text())
    (results / "records" / "standard__cw_l2.json").unlink()
    _run(tiny_cifar_root, "--n-cw", "4")
    b = json.loads((results / "records" / "standard__cw_l2.json").read_text())
    assert "parts" not in a and a["seed"] == b["seed"] == 0
    for k in ("robust_accuracy", "accuracy_at", "norms_per_image", "params"):
        assert a[k] == b[k], k


# every flag of the command line before ExperimentsConfig, with its default then (by its field's name
# today: three were renamed to the library's eot_samples, their old flags kept, RENAMED)
OLD_DEFAULTS = {
    "models": ",".join(zoo.trained_names()), "stages": "table,table2,margin,fig3,fig4", "n": 1000,
    "n_apgd": 1000, "n_cw": 1000, "n_cw_margin": 200, "cw_kappa": (0.25, 1.0), "n_fig2": 100, "n_table2": 500,
    "table2_eot_samples": 50, "n_sweep": 300, "n_cw_sweep": 50, "cw_sweep_max_eot_samples": 20, "threads": 0,
    "eot_samples": 20,
    "apgd_steps": 50, "cw_steps": 40, "cw_search": 5, "data_dir": "", "seed": 0, "only": "", "shard": 0,
}
RENAMED = {"--table2-eot-samples": "--table2-eot", "--cw-sweep-max-eot-samples": "--cw-sweep-max-eot",
           "--eot-samples": "--eot"}


def test_the_parser_keeps_every_flag_and_default() -> None:
    parse = experiments.build_parser().parse_args
    assert vars(parse([])) == OLD_DEFAULTS
    assert experiments.ExperimentsConfig(**vars(parse([]))) == experiments.ExperimentsConfig()
    given = {"models": "rat,rn", "stages": "fig4", "cw_kappa": (0.5, 2.0), "data_dir": "d", "only": "clean,cw_l2",
             "seed": 3, **{k: v + 1 for k, v in OLD_DEFAULTS.items() if isinstance(v, int) and k != "seed"}}
    argv = [a for k, v in given.items() for a in ("--" + k.replace("_", "-"), ",".join(map(str, v))
                                                 if isinstance(v, tuple) else str(v))]
    assert vars(parse(argv)) == given
    old = [RENAMED.get(a, a) for a in argv]
    assert old != argv and vars(parse(old)) == given  # a command line of the old flags: the same config


@pytest.mark.parametrize("argv, said", [
    (["--n", "0"], "argument --n: --n must be a positive integer, got 0"),
    (["--n-cw", "1.5"], "--n-cw must be a positive integer, got '1.5'"),
    (["--table2-eot", "0"], "--table2-eot-samples must be a positive integer, got 0"),
    (["--eot-samples", "0"], "argument --eot-samples/--eot: --eot-samples must be a positive integer, got 0"),
    (["--threads", "-1"], "argument --threads: --threads must be an integer >= 0, got -1"),
    (["--cw-sweep-max-eot", "-2"], "--cw-sweep-max-eot-samples must be an integer >= 0, got -2"),
])
def test_a_bad_count_is_refused_by_the_parser_naming_the_flag(argv, said, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        experiments.build_parser().parse_args(argv)
    assert e.value.code == 2 and said in capsys.readouterr().err


def test_negative_shard_is_a_usage_error(results, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        experiments.main(["--shard", "-1"])
    assert e.value.code == 2 and "--shard must be an integer >= 0, got -1" in capsys.readouterr().err


def test_two_processes_share_a_record(results, tiny_cifar_root, monkeypatch) -> None:
    """A part locked by another live process is skipped; whoever finishes last merges."""
    import fcntl

    from ratzoo import zoo

    kw = dict(attack="cw-l2", steps=3, search_steps=2, eot_samples=20)
    folder = experiments.part_folder("standard", "cw_l2", kw, 0, zoo.entries()["standard"].sha256)
    folder.mkdir(parents=True)
    calls = []
    measure = experiments._measure
    monkeypatch.setattr(experiments, "_measure", lambda *a: calls.append(a[4]) or measure(*a))
    with open(folder / "000004-000008.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # "another process" measures [4, 8)
        _run(tiny_cifar_root, "--n-cw", "10", "--shard", "4")
        assert calls == [0, 8]
        assert not (results / "records" / "standard__cw_l2.json").exists()  # not all parts yet
    _run(tiny_cifar_root, "--n-cw", "10", "--shard", "4")  # the lock is gone: measured, merged
    assert calls == [0, 8, 4]
    assert json.loads((results / "records" / "standard__cw_l2.json").read_text())["n"] == 10


def test_a_record_of_other_images_or_arguments_is_measured_again(results, tiny_cifar_root, monkeypatch) -> None:
    calls = []
    measure = experiments._measure
    monkeypatch.setattr(experiments, "_measure", lambda *a: calls.append(len(a[2])) or measure(*a))
    _run(tiny_cifar_root, "--n-cw", "4")
    _run(tiny_cifar_root, "--n-cw", "4")  # up to date: skipped
    assert calls == [4]
    _run(tiny_cifar_root, "--n-cw", "6")  # more images than the record has
    assert calls == [4, 6]
    assert json.loads((results / "records" / "standard__cw_l2.json").read_text())["n"] == 6
    _run(tiny_cifar_root, "--n-cw", "6", "--cw-steps", "4")  # other attack arguments
    assert calls == [4, 6, 6]
    _run(tiny_cifar_root, "--n-cw", "6", "--cw-steps", "4")
    assert calls == [4, 6, 6]


def test_margin_stage_measures_cw_with_kappa(results, tiny_cifar_root) -> None:
    assert experiments.main(["--models", "standard", "--stages", "margin", "--cw-kappa", "0.5,2", "--n-cw-margin", "4",
                             "--cw-steps", "3", "--cw-search", "2", "--threads", "1",
                             "--data-dir", str(tiny_cifar_root)]) == 0
    for key, kappa in (("cw_l2_kappa0.5", 0.5), ("cw_l2_kappa2", 2.0)):
        rec = json.loads((results / "records" / f"standard__{key}.json").read_text())
        assert rec["stage"] == "margin" and rec["attack"] == "cw-l2" and rec["n"] == 4
        assert rec["params"]["kappa"] == kappa


@pytest.mark.parametrize("bad", ["0", "-1", "x", "", "nan", "1,inf"])
def test_bad_kappa_is_a_usage_error(results, capsys, bad) -> None:
    with pytest.raises(SystemExit):
        experiments.main(["--cw-kappa", bad])
    assert "--cw-kappa" in capsys.readouterr().err
