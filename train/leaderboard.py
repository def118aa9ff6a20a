"""The README's leaderboard block, generated from ``checkpoints/results/leaderboard.json``.

``python -m train.leaderboard`` rewrites the block between ``<!-- leaderboard -->`` and
``<!-- /leaderboard -->`` in README.md (``python -m train.report`` does it too); a test checks
that the README equals what this module generates, so the table cannot drift from the file.
Entries are added by ``python -m ratzoo benchmark ... --leaderboard checkpoints/results/leaderboard.json``
(``train/benchmark_zoo.sh`` measures the whole zoo).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from ratzoo import DEFAULT_DECISION_SAMPLES, Record, compare, zoo
from ratzoo.benchmarking import THREAT_MODELS, describe_ensemble, ensemble_params
from ratzoo.judge import DEFAULT_EOT
from ratzoo.leaderboard import LeaderboardEntry, eps_text, leaderboard_markdown, load_leaderboard
from train.blocks import replace_block

ROOT = Path(__file__).resolve().parent.parent
LEADERBOARD = ROOT / "checkpoints" / "results" / "leaderboard.json"
README = ROOT / "README.md"
DOCS = ROOT / "docs" / "leaderboard.md"
CHECKS = ROOT / "checkpoints" / "results" / "benchmark" / "checks"
START, END = "<!-- leaderboard -->", "<!-- /leaderboard -->"
LITERATURE_N = 500  # the cheaper ensemble missed its cost target, so the literature's entries get half the zoo's images

def rule(entries: list[LeaderboardEntry]) -> str:
    """The decision rule and today's attacks, then those of any older ensemble an entry ran
    (such entries are marked with a dagger in the table)."""
    today = describe_ensemble(ensemble_params())
    older = [d for d in dict.fromkeys(describe_ensemble(ensemble_of(e)) for e in entries) if d != today]
    return ("**Leaderboard** (`python -m ratzoo benchmark`, the same attacks for every model): an image counts as "
            f"robust when the model's prediction, the average softmax over {DEFAULT_DECISION_SAMPLES} fresh noise draws "
            f"for a randomized model, is right on the clean image and on every attack's example. The attacks: {today}."
            + "".join(f" Entries marked † were measured by an older ensemble: {d}." for d in older)
            + (" Entries marked ‡: an adaptive check (`benchmarks/bench_adaptive.py`, in docs/leaderboard.md) "
               "broke images this ensemble left robust, so their robust % is an upper bound."
               if any(broken_by_checks(e.name, e.threat_model) for e in entries) else "")
            + " *one draw*: the accuracy of a single call of the model on the same examples. CIFAR-10 (JPEG copy) "
            "test images, the first n.")


def adaptive_checks(name: str, threat: str) -> list[tuple[Path, Record]]:
    """The committed adaptive checks of one entry (``benchmarks/bench_adaptive.py``): the check
    records that name the dataset images they attacked, in file order."""
    found = [(f, Record.load(f)) for f in sorted(CHECKS.glob(f"{name}_{threat}_*.json"))]
    return [(f, r) for f, r in found if "dataset_indices" in r.extra]


def broken_by_checks(name: str, threat: str) -> set[int]:
    """The dataset indices some adaptive check of the entry broke."""
    return {i for _, r in adaptive_checks(name, threat)
            for i, robust in zip(r.extra["dataset_indices"], r.robust_per_image()) if not robust}


def worst_case(entry: LeaderboardEntry) -> Record:
    """The entry's record with every image an adaptive check broke counted as broken."""
    rec = Record.load(ROOT / entry.record)
    broken = broken_by_checks(entry.name, entry.threat_model)
    robust = [r and i not in broken for i, r in zip(rec.image_indices, rec.robust_per_image())]
    return dataclasses.replace(rec, per_image={**rec.per_image, "robust": robust})


def ensemble_of(entry: LeaderboardEntry) -> dict:
    """The entry's ``ensemble_params``; entries written before they were stored ran the full APGD-T."""
    return entry.ensemble_params or {"steps": entry.steps, "eot_samples": DEFAULT_EOT,
                                     "n_target_classes": entry.n_target_classes}


def block(entries: list[LeaderboardEntry]) -> str:
    """The Markdown between the markers."""
    if not entries:
        return rule(entries) + "\n\nNo model has been benchmarked yet: `bash train/benchmark_zoo.sh`."
    today = ensemble_params()
    marked = [dataclasses.replace(e, name=e.name + (" †" if ensemble_of(e) != today else "")
                                  + (" ‡" if broken_by_checks(e.name, e.threat_model) else "")) for e in entries]
    return rule(entries) + "\n\n" + leaderboard_markdown(marked) + "\n\n" + cost(entries)


def cost(entries: list[LeaderboardEntry]) -> str:
    """What measuring the entries took, summed from their records' seconds (one thread each)."""
    hours = sum(e.seconds or 0.0 for e in entries) / 3600
    return (f"Measuring these {len(entries)} entries took {hours:.1f} core-hours (the sum of their records' "
            "seconds; `train/benchmark_zoo.sh` runs one thread per process).")


def fill(readme: str, entries: list[LeaderboardEntry]) -> str:
    """``readme`` with its leaderboard block regenerated (:func:`train.blocks.replace_block`).

    Raises:
        SystemExit: the README has no leaderboard block (its message names the markers).
    """
    return replace_block(readme, START, END, block(entries), README)


def entries(path: Path = LEADERBOARD) -> list[LeaderboardEntry]:
    return load_leaderboard(path)


def claimed_vs_measured(entries: list[LeaderboardEntry]) -> str:
    """Per defense of the literature (``ratzoo.zoo.literature``; R.N.'s numbers from the RAT
    paper's Table 2): what was published on it, then the zoo's measurement of each entry
    implementing it, with the paired test against the entry's base model (a wrapper) or the
    defense's ``closest`` zoo model (a trained defense)."""
    rn = {"defense": "rn", "title": "Noise injection, R.N. (Pinot et al. 2019)", "zoo": ["rn"], "claims": [{
        "who": "The RAT paper's Table 2 (Araujo et al. 2019)", "setting": zoo.PAPER_TABLE2_SETTING,
        "claim": f"{100 * zoo.PAPER_TABLE2['rn'][0]:.1f} % (Linf), {100 * zoo.PAPER_TABLE2['rn'][1]:.1f} % (L2)",
        "differs": "WideResNet-28-10 vs PreActResNet-18 w16; Linf 0.15 vs 8/255; unbounded C&W vs APGD at L2 0.5",
        "source": "https://arxiv.org/abs/1903.10219"}]}
    registry = zoo.entries()
    out = []
    for d in zoo.literature() + [rn]:
        out.append(f"### {d['title']}\n")
        out += [f"- **{c['who']}** ({c['setting']}): {c['claim']}. *Differs from ours:* {c['differs']}. "
                f"[source]({c['source']})" for c in d["claims"]]
        names = [n for n in d["zoo"] if n in registry]
        measured = [e for e in entries if e.name in names]
        if not names:
            out.append(f"\nNot in the zoo yet (planned: {', '.join(f'`{n}`' for n in d['zoo'])}).\n")
            continue
        out += ["", "| zoo entry | threat model | n | robust % [95 % CI] | one draw % | paired against the closest zoo model |",
                "|---|---|---|---|---|---|"]
        for e in measured:
            ci = e.robust_acc_ci95
            older = " †" if ensemble_of(e) != ensemble_params() else ""
            out.append(f"| `{e.name}`{older} | {e.threat_model} {eps_text(e.threat_model, e.eps)} | {e.n} | "
                       f"{e.robust_acc:.1f} [{ci[0]:.1f}, {ci[1]:.1f}] | {e.single_draw_acc:.1f} | "
                       f"{paired(e, entries, registry, d.get('closest'))} |")
        out += pending(names, measured)
        for e in measured:
            if adaptive_checks(e.name, e.threat_model):
                out += ["", checks_text(e, entries, registry, d.get("closest"))]
        out.append("")
    return "\n".join(out)


def pending(names: list[str], measured: list[LeaderboardEntry]) -> list[str]:
    """A row for each zoo entry and threat model the leaderboard has not measured yet, with the
    command that measures it (resumable: it continues from the committed parts)."""
    done = {(e.name, e.threat_model) for e in measured}
    return [f"| `{n}` | {t} {eps_text(t, THREAT_MODELS[t])} | | not measured yet | | "
            f"`MODELS={n} THREATS={t} N={LITERATURE_N} bash train/benchmark_zoo.sh` |"
            for n in names for t in THREAT_MODELS if (n, t) not in done]


def checks_text(entry: LeaderboardEntry, entries: list[LeaderboardEntry], registry: dict, closest: str | None) -> str:
    """What the entry's adaptive checks broke, and the worst case of the leaderboard and the checks."""
    done = []
    for f, r in adaptive_checks(entry.name, entry.threat_model):
        broken = sum(not v for v in r.robust_per_image())
        done.append(f"{r.model}: {broken} of the {r.n} images it attacked broken (`{r.extra['command']}`, "
                    f"`{os.path.relpath(f, ROOT)}`)")
    worst = worst_case(entry)
    return (f"**Adaptive checks of `{entry.name}` under {entry.threat_model} {eps_text(entry.threat_model, entry.eps)}**, "
            "each on the images robust under the leaderboard and left by the checks before it; its examples judged by "
            "the same decision rule: " + "; ".join(done) + ". The worst case of the leaderboard's attacks and the checks: "
            f"{100 * sum(worst.robust_per_image()) / worst.n:.1f} % of {worst.n} (an upper bound); "
            + paired(entry, entries, registry, closest, record=worst) + ".")


def paired(entry: LeaderboardEntry, entries: list[LeaderboardEntry], registry: dict,
           closest: str | None = None, record: Record | None = None) -> str:
    """The exact McNemar test of ``entry`` (its ``record``, default the committed one) against its
    base model's entry (a wrapper) or the ``closest`` zoo model's (a trained defense) under the same threat."""
    base = registry[entry.name].base or closest
    other = next((e for e in entries if e.name == base and e.threat_model == entry.threat_model), None)
    if base is None or other is None:
        return f"`{base}` not measured" if base else "(a trained model: no closest zoo model)"
    c = compare(record or Record.load(ROOT / entry.record), Record.load(ROOT / other.record))
    return (f"`{base}` {100 * c.accuracy_b:.1f} % on the same {c.n} images: {c.only_a} robust only with the "
            f"defense, {c.only_b} only without; exact McNemar p = {c.p_value:.2g}")


def docs_page(entries: list[LeaderboardEntry]) -> str:
    """``docs/leaderboard.md``: the leaderboard, then each literature defense's claims beside our numbers."""
    return ("# Leaderboard\n\n<!-- generated by `python -m train.leaderboard` from "
            "checkpoints/results/leaderboard.json, its records and ratzoo/zoo.json's claims: do not edit -->\n\n"
            + block(entries) + "\n\n## Claimed vs measured\n\n"
            "Each randomized defense's own published number, and an independent evaluation's where one exists, "
            "as the source states it, beside ratzoo's benchmark of the zoo entry (the leaderboard's attacks and "
            "decision rule, CIFAR-10 test images, the first n). The settings differ, so read a row as *what "
            "the claim becomes under one honest rule*, not as a reproduction of the paper's exact setup.\n\n"
            + claimed_vs_measured(entries))


def main() -> int:
    README.write_text(fill(README.read_text(), entries()))
    DOCS.write_text(docs_page(entries()))
    print(f"README.md, docs/leaderboard.md: leaderboard from {LEADERBOARD.relative_to(ROOT)} ({len(entries())} entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
