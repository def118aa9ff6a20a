"""``python -m train.grid``: its flags, and a finished grid that is not run again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train import grid


def test_the_parser_keeps_every_flag_and_default() -> None:
    parse = grid.build_parser().parse_args
    assert vars(parse([])) == {"sigmas": (0.25, 0.5, 1.0), "grid_epochs": 3, "data_dir": "", "n": 500,
                               "out": str(grid.REPO_ROOT / "checkpoints" / "results" / "sigma_grid.json"), "seed": 0}
    assert vars(parse(["--sigmas", "0.5,2", "--grid-epochs", "1", "--data-dir", "d", "--n", "7", "--out", "o.json",
                       "--seed", "4"])) == {"sigmas": (0.5, 2.0), "grid_epochs": 1, "data_dir": "d", "n": 7,
                                            "out": "o.json", "seed": 4}


@pytest.mark.parametrize("argv, said", [
    (["--sigmas", "0.5,x"], "--sigmas takes comma-separated float values, got '0.5,x'"),
    (["--grid-epochs", "0"], "argument --grid-epochs: --grid-epochs must be a positive integer, got 0"),
    (["--n", "-1"], "--n must be a positive integer, got -1"),
])
def test_a_bad_value_is_refused_by_the_parser_naming_the_flag(argv, said, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        grid.main(argv)
    assert e.value.code == 2 and said in capsys.readouterr().err


def test_a_finished_grid_of_the_same_sigmas_and_epochs_is_reused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sigma_grid.json"
    out.write_text(json.dumps({"sigmas": [1.0, 0.25], "grid_epochs": 2, "chosen_sigma": 0.25}))
    assert grid.main(["--sigmas", "0.25,1", "--grid-epochs", "2", "--out", str(out)]) == 0
    assert capsys.readouterr().out == "0.25\n"  # nothing trained: no data was given or loaded


def test_each_candidate_trains_the_rat_preset_and_is_scored_by_the_mean_accuracy(tmp_path, monkeypatch) -> None:
    import subprocess

    import torch

    import ratzoo
    import ratzoo.evaluation

    monkeypatch.setenv("RATZOO_CACHE", str(tmp_path / "cache"))
    ran, accuracy = [], {"none": 0.9, "pgd-linf": 0.3, "pgd-l2": 0.6}
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: ran.append(cmd))
    monkeypatch.setattr(ratzoo, "load", lambda folder: folder)
    monkeypatch.setattr(ratzoo.evaluation, "evaluate",
                        lambda model, x, y, seed, attack, **kw: {"robust_accuracy": accuracy[attack]})
    cfg = grid.GridConfig(grid_epochs=2, data_dir="d", seed=5)
    row = grid._candidate(cfg, 0.5, torch.zeros(1, 3, 32, 32), torch.zeros(1, dtype=torch.long))
    folder = tmp_path / "cache" / "runs" / "grid-rat-sigma0.5" / "checkpoint"
    assert ran[0][1:] == ["-m", "train", "--preset", "rat", "--noise-sigma", "0.5", "--epochs", "2", "--name",
                          "grid-rat-sigma0.5", "--out", str(folder), "--eval-n", "0", "--resume", "--seed", "5",
                          "--data-dir", "d"]
    assert row == {"sigma": 0.5, "checkpoint_state": str(folder), "clean": 0.9, "pgd10_linf_8_255_eot8": 0.3,
                   "pgd10_l2_0.5_eot8": 0.6, "score": pytest.approx(0.6)}
