"""The generated blocks of README.md and ``docs/*.md``: their markers, their bodies (the zoo
table with its caption, notes and commands, the comparison with the paper's Table 2, the
certified accuracies, the paper's Figure 2 on the zoo) and :func:`replace_block`, which
``python -m train.report`` and ``python -m train.leaderboard`` write them with, never by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ratzoo import DEFAULT_DECISION_SAMPLES
from ratzoo.benchmarking import THREAT_MODELS
from ratzoo.geometry import FIGURE2_EPS, REGION_WORDS, figure2
from ratzoo.leaderboard import eps_text
from ratzoo.record import Record
from ratzoo.zoo import PAPER_TABLE2  # (Linf, L2) robust accuracy per method
from train.metrics import (BENCHMARK_METRICS, BENCHMARK_WORDS, CW_AT_05, CW_NOT_FOOLED_NAME, CW_THRESHOLDS, LABELS,
                           MODELS, PAPER_LINF_NAME, PGD_L2_05, REPO_ROOT, RESULTS, TABLE, load_records)

MARK_START, MARK_END = "<!-- zoo-table:start -->", "<!-- zoo-table:end -->"
PAPER_START, PAPER_END = "<!-- paper-table:start -->", "<!-- paper-table:end -->"
CERT_START, CERT_END = "<!-- certify-table:start -->", "<!-- certify-table:end -->"
FIND_START, FIND_END = "<!-- findings:start -->", "<!-- findings:end -->"
NOTES_START, NOTES_END = "<!-- zoo-notes:start -->", "<!-- zoo-notes:end -->"
COMMANDS_START, COMMANDS_END = "<!-- zoo-commands:start -->", "<!-- zoo-commands:end -->"
FIG2_START, FIG2_END = "<!-- figure2:start -->", "<!-- figure2:end -->"
DOCS = REPO_ROOT / "docs"


def replace_block(text: str, start_mark: str, end_mark: str, body: str, path: Path) -> str:
    """``text`` with everything between ``start_mark`` and ``end_mark`` replaced by ``body``
    (on lines of its own; the markers stay).

    Raises:
        SystemExit: a marker is missing from ``text`` (the message names ``path`` and the markers).
    """
    if start_mark not in text or end_mark not in text:
        raise SystemExit(f"{path}: markers {start_mark} ... {end_mark} missing")
    start, end = text.index(start_mark) + len(start_mark), text.index(end_mark)
    return text[:start] + "\n" + body + "\n" + text[end:]


TABLE_COLUMNS = [*zip([name for _, name, _ in TABLE], ["clean", "FGSM 8/255", "PGD-20 8/255", "PGD-20 L2 0.5",
                                                      "APGD-CE 8/255"], strict=True),
                 *((name, f"benchmark {eps_text(t, THREAT_MODELS[t]) if t == 'Linf' else BENCHMARK_WORDS[t]}")
                   for t, (name, _) in BENCHMARK_METRICS.items()),
                 *((f"C&W-L2 accuracy at L2 {t}", f"C&W @{t}") for t in CW_THRESHOLDS),
                 ("C&W-L2 median minimal norm", "C&W median L2")]
"""The README zoo table's columns: (metric name, header), in order."""


def fmt_metric(m: dict[str, Any]) -> str:
    """How a metric is written in the README table (the test parses this back)."""
    if m.get("unit") == "L2":
        return f"{m['value']:.2f}"
    return f"{100 * m['value']:.1f}"


def _cell(by: dict[str, dict[str, Any]], name: str) -> str:
    """A metric as the README writes it, or "-" when it was not measured."""
    return fmt_metric(by[name]) if name in by else "-"


def readme_table(results: dict[str, Any]) -> str:
    names, short = zip(*TABLE_COLUMNS)
    lines = ["| model | " + " | ".join(short) + " |", "| --- " * (len(short) + 1) + "|"]
    ns: dict[str, set[int]] = {}
    for model, res in results["models"].items():
        by = {m["name"]: m for m in res["table"]}
        cells = [_cell(by, n) for n in names]
        lines.append(f"| {LABELS.get(model, model)} | " + " | ".join(cells) + " |")
        for m in res["table"]:
            ns.setdefault(m["name"], set()).add(m["n"])
    lines.append("| *images (n)* | " + " | ".join("/".join(map(str, sorted(ns.get(n, ())))) or "-" for n in names) + " |")
    return "\n".join(lines)


def paper_table(results: dict[str, Any]) -> str:
    """Our zoo against the paper's Table 2, cell by cell (the test parses this back)."""
    lines = ["| model | paper: Linf | ours: Linf, same setting | paper: L2 (C&W) | ours: C&W not fooled "
             "| ours: PGD-20 Linf 8/255 | ours: C&W acc. at L2 0.5 |", "| --- " * 7 + "|"]
    for model, res in results["models"].items():
        by = {m["name"]: m for m in res["table"]}
        paper = PAPER_TABLE2.get(model)
        cells = [f"{100 * paper[0]:.1f}" if paper else "-",
                 _cell(by, PAPER_LINF_NAME),
                 f"{100 * paper[1]:.1f}" if paper else "-",
                 _cell(by, CW_NOT_FOOLED_NAME), _cell(by, "PGD-20 Linf 8/255"), _cell(by, CW_AT_05)]
        lines.append(f"| {LABELS.get(model, model)} | " + " | ".join(cells) + " |")
    ns = {name: sorted({m["n"] for r in results["models"].values() for m in r["table"] if m["name"] == name})
          for name in (PAPER_LINF_NAME, CW_NOT_FOOLED_NAME, "PGD-20 Linf 8/255", CW_AT_05)}
    lines.append("| *images (n)* | not stated | " + " | ".join(
        ["/".join(map(str, ns[PAPER_LINF_NAME])) or "-", "not stated", "/".join(map(str, ns[CW_NOT_FOOLED_NAME])) or "-",
         "/".join(map(str, ns["PGD-20 Linf 8/255"])) or "-", "/".join(map(str, ns[CW_AT_05])) or "-"])
        + " |")
    return "\n".join(lines)


def certify_table(results: dict[str, Any]) -> str:
    """Certified accuracy per radius next to the empirical L2 robust accuracy."""
    certs = {m: r["certified"] for m, r in results["models"].items() if r.get("certified")}
    if not certs:
        return "*No certificates yet: run `python -m ratzoo certify` (command below).*"
    radii = sorted({r for c in certs.values() for r in c["accuracy_at"]}, key=float)
    head = ["model", "sigma", "L", "max radius", *[f"cert. @{r}" for r in radii], "PGD-20 L2 0.5 (empirical)",
            "C&W acc. at L2 0.5", "n", "draws", "s/image"]
    lines = ["| " + " | ".join(head) + " |", "| --- " * len(head) + "|"]
    for model, c in certs.items():
        by = {m["name"]: m for m in results["models"][model]["table"]}
        cells = [f"{c['sigma_min']:.3g}", f"{c['lipschitz']:.1f}" if c.get("lipschitz") else "1 (input)",
                 f"{c['radius_ceiling']:.3f}" if c.get("radius_ceiling") is not None else "-",
                 *[f"{100 * c['accuracy_at'][r]:.1f}" if r in c["accuracy_at"] else "-" for r in radii],
                 _cell(by, PGD_L2_05), _cell(by, CW_AT_05),
                 str(c["n"]), str(c["draws"]),
                 f"{c['seconds_per_image']:.1f}" if c.get("seconds_per_image") is not None else "-"]
        lines.append(f"| {LABELS.get(model, model)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def zoo_caption(results: dict[str, Any]) -> str:
    eots = sorted({m.get("eot_samples") for r in results["models"].values() if r.get("randomized")
                   for m in r["table"] if m.get("eot_samples")})
    eot_text = (f"noisy models are attacked with EOT-{'/'.join(map(str, eots))} and " if eots else "")
    its = _iterations()
    its_text = (f" APGD-CE: {'/'.join(map(str, its['apgd']))} iterations; C&W: "
                f"{'/'.join(map(str, its['cw']))} Adam iterations x {'/'.join(map(str, its['search']))} "
                "binary-search steps." if its["apgd"] and its["cw"] else "")
    return (f"Accuracies in %, measured on {results['dataset']} test images (the first n of the test split) by "
            f"`python -m train.experiments`; {eot_text}an example counts as robust when the EOT prediction over "
            f"{DEFAULT_DECISION_SAMPLES} fresh draws is the true label. C&W columns: accuracy at an L2 threshold (minimal adversarial norm "
            "above it, or not fooled) and the median minimal norm, an L2 distance (not a percentage)." + its_text)


def _iterations() -> dict[str, list[int]]:
    """The iterations the table's APGD-CE and C&W records ran, read from the records themselves."""
    out: dict[str, set[int]] = {"apgd": set(), "cw": set(), "search": set()}
    for model, recs in load_records().items():
        if "apgd_ce_linf_8" in recs:
            out["apgd"].add(int(recs["apgd_ce_linf_8"]["params"]["steps"]))
        if "cw_l2" in recs:
            out["cw"].add(int(recs["cw_l2"]["params"]["steps"]))
            out["search"].add(int(recs["cw_l2"]["params"]["search_steps"]))
    return {k: sorted(v) for k, v in out.items()}


def zoo_notes(results: dict[str, Any]) -> str:
    """The measuring time per model (the records' elapsed times) and where the intervals are."""
    minutes = {m: sum(r.get("elapsed_minutes", {}).values()) for m, r in results["models"].items()}
    body = ("95% confidence intervals are in `checkpoints/results/results.json` and in each model card.")
    if minutes:
        total = sum(minutes.values())
        body += ("\n\nMeasuring took (minutes of one CPU core, the records' elapsed times, all stages): "
                 + ", ".join(f"{LABELS.get(m, m)} {v:.0f}" for m, v in minutes.items())
                 + f"; {total:.0f} in all (about {total / 60:.0f} core-hours).")
    return body


def zoo_commands() -> str:
    """The exact training command of each bundled checkpoint (from its config.json)."""
    commands = []
    for model in MODELS:
        cfg_path = REPO_ROOT / "checkpoints" / model / "config.json"
        if cfg_path.is_file():
            cfg = json.loads(cfg_path.read_text())
            last = cfg.get("training", {}).get("final_epoch_log", {})
            commands.append(f"# {model}: {cfg.get('training', {}).get('epochs_completed')} epochs, "
                            f"{last.get('images_per_second', '?')} images/s in its last epoch\n"
                            + cfg.get("training", {}).get("command", "?"))
    if not commands:
        return "No bundled checkpoint yet."
    return ("Each checkpoint was produced by exactly this command (also in its `config.json`), "
            "on a 2-core CPU:\n\n```bash\n" + "\n".join(commands) + "\n```")


FIG2_RATIOS = (0, 3, 6, 9, 12)  # columns of the Figure 2 table: positions in ratzoo.geometry.figure2_radii


def figure2_block(folder: Path = RESULTS / "records") -> str:
    """The paper's Figure 2 on the zoo as tables (one per Linf radius) and whether its reading holds.

    Read from the C&W records by :func:`ratzoo.figure2`, the same rows the demo's results tab draws."""
    fig2 = figure2(Record.load_folder(folder)[0].values(), LABELS)
    rows, missing = fig2.rows, fig2.missing
    if not rows:
        return "No C&W record with per-image Linf norms yet (`python -m train.experiments --stages table,fig2`)."
    out = []
    for eps_name in FIGURE2_EPS:
        sub = [r for r in rows if r["Linf radius"] == eps_name]
        ratios = sorted({r["L2 radius / Linf radius"] for r in sub})
        cols = [ratios[i] for i in FIG2_RATIOS if i < len(ratios)]
        out.append(f"**Linf radius {eps_name}.** Share (%) of the C&W examples that fooled the model: inside the "
                   "Linf ball, then in the cap (outside the Linf ball, inside the L2 ball) as the L2 radius grows "
                   "from the Linf radius to the Linf radius x sqrt(d), d = 3072.\n")
        out.append("| model | images (n) | examples | inside the Linf ball | "
                   + " | ".join(f"cap, L2 {c:g}x" for c in cols) + f" | beyond, L2 {cols[-1]:g}x |")
        out.append("| --- " * (len(cols) + 5) + "|")
        for model in LABELS.values():
            pts = [r for r in sub if r["model"] == model]
            if not pts:
                continue
            get = {(r["L2 radius / Linf radius"], r["region"]): r["share (%)"] for r in pts}
            inside = get[(cols[0], REGION_WORDS["inside"])]
            out.append(f"| {model} | {pts[0]['images']} | {pts[0]['examples']} | {inside:.1f} | "
                       + " | ".join(f"{get[(c, REGION_WORDS['cap'])]:.1f}" for c in cols)
                       + f" | {get[(cols[-1], REGION_WORDS['beyond'])]:.1f} |")
        out.append("")
    if fig2.reading:
        out.append(fig2.reading)
    if missing:
        out.append(f"\nNot measured with per-image Linf norms yet: {', '.join(missing)}.")
    return "\n".join(out).strip()
