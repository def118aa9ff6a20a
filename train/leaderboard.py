"""The README's leaderboard block, generated from ``checkpoints/results/leaderboard.json``.

``python -m train.leaderboard`` rewrites the block between ``<!-- leaderboard -->`` and
``<!-- /leaderboard -->`` in README.md (``python -m train.report`` does it too); a test checks
that the README equals what this module generates, so the table cannot drift from the file.
Entries are added by ``python -m ratzoo.benchmark ... --leaderboard checkpoints/results/leaderboard.json``
(``train/benchmark_zoo.sh`` measures the whole zoo).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ratzoo import DEFAULT_DECISION_SAMPLES
from ratzoo.benchmark import DEFAULT_EOT, describe_ensemble, ensemble_params, leaderboard_markdown
from train.blocks import replace_block

ROOT = Path(__file__).resolve().parent.parent
LEADERBOARD = ROOT / "checkpoints" / "results" / "leaderboard.json"
README = ROOT / "README.md"
START, END = "<!-- leaderboard -->", "<!-- /leaderboard -->"

def rule(entries: list[dict]) -> str:
    """The decision rule and today's attacks, then those of any older ensemble an entry ran
    (such entries are marked with a dagger in the table)."""
    today = describe_ensemble(ensemble_params())
    older = [d for d in dict.fromkeys(describe_ensemble(ensemble_of(e)) for e in entries) if d != today]
    return ("**Leaderboard** (`python -m ratzoo.benchmark`, the same attacks for every model): an image counts as "
            f"robust when the model's prediction, the average softmax over {DEFAULT_DECISION_SAMPLES} fresh noise draws "
            f"for a randomized model, is right on the clean image and on every attack's example. The attacks: {today}."
            + "".join(f" Entries marked † were measured by an older ensemble: {d}." for d in older)
            + " *one draw*: the accuracy of a single call of the model on the same examples. CIFAR-10 (JPEG copy) "
            "test images, the first n.")


def ensemble_of(entry: dict) -> dict:
    """The entry's ``ensemble_params``; entries written before they were stored ran the full APGD-T."""
    return entry.get("ensemble_params") or {"steps": entry["steps"], "eot_samples": DEFAULT_EOT,
                                            "n_target_classes": entry["n_target_classes"]}


def block(entries: list[dict]) -> str:
    """The Markdown between the markers."""
    if not entries:
        return rule(entries) + "\n\nNo model has been benchmarked yet: `bash train/benchmark_zoo.sh`."
    today = ensemble_params()
    marked = [{**e, "name": e["name"] + (" †" if ensemble_of(e) != today else "")} for e in entries]
    return rule(entries) + "\n\n" + leaderboard_markdown(marked) + "\n\n" + cost(entries)


def cost(entries: list[dict]) -> str:
    """What measuring the entries took, summed from their records' seconds (one thread each)."""
    hours = sum(e.get("seconds") or 0.0 for e in entries) / 3600
    return (f"Measuring these {len(entries)} entries took {hours:.1f} core-hours (the sum of their records' "
            "seconds; `train/benchmark_zoo.sh` runs one thread per process).")


def fill(readme: str, entries: list[dict]) -> str:
    """``readme`` with its leaderboard block regenerated (:func:`train.blocks.replace_block`).

    Raises:
        SystemExit: the README has no leaderboard block (its message names the markers).
    """
    return replace_block(readme, START, END, block(entries), README)


def entries(path: Path = LEADERBOARD) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


def main() -> int:
    README.write_text(fill(README.read_text(), entries()))
    print(f"README.md: leaderboard block from {LEADERBOARD.relative_to(ROOT)} ({len(entries())} entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
