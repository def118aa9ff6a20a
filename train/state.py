"""The resumable training state: one file, written atomically (temp file + rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .config import TrainConfig


class StateError(RuntimeError):
    """The training state cannot be used for this run."""


def save_state(path: Path, cfg: TrainConfig, model, opt, sched, epoch: int, step: int,
               history: list, best: dict, finished: bool, stopped: str | None) -> None:
    """Write everything needed to continue bit-for-bit: weights, optimizer, scheduler,
    counters, RNG states. A SIGKILL at any moment leaves either the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "fingerprint": cfg.fingerprint(),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": epoch,
        "step": step,
        "history": history,
        "best": best,
        "finished": finished,
        "stopped": stopped,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_state(path: Path, cfg: TrainConfig) -> dict[str, Any]:
    """Read a state file and check it belongs to this configuration."""
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise StateError(f"{path}: unreadable training state ({type(e).__name__}: {e}); "
                         "delete it to start over") from e
    want, have = cfg.fingerprint(), st.get("fingerprint", {})
    diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
    if diff:
        detail = ", ".join(f"{k}: saved {a!r} vs now {b!r}" for k, (a, b) in sorted(diff.items()))
        raise StateError(f"--resume: {path} was written by another configuration ({detail}); "
                         "use the same flags, or another --state-dir / --name")
    return st


def peek_state(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)
